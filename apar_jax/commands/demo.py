"""`python -m apar_jax demo` (`make demo`): one question answered in AR, APAR, a speculative mode and
APAR + that drafter, each streamed as it decodes, then a table of what each mode cost.

AR and the speculative mode decode the base model; the APAR modes decode it with the APAR adapter
merged (`config.weights.apar_adapter`, as `generate --mode=apar` does). Every engine is compiled on a
throwaway request before its timed answer, so tokens/s is decoding speed (prefill included, compile
not). `--mode=<drafter>` (lookup, medusa, hidden_transfer) picks the speculative mode; medusa by default.
"""

import contextlib
import dataclasses
import io
import sys
import time
from typing import Callable

import ml_collections

from apar_jax import cli_flags
from apar_jax.engine import DoneEvent, Request, Result, TokensEvent
from apar_jax.engine.setup.build import engine_for
from apar_jax.engine.host.stable_text import AnswerText
from apar_jax.mode_weights import config_for_mode
from apar_jax.modes import SPEC_MODES, is_apar_mode
from apar_jax.runtime import Runtime, load_runtime
from apar_jax.tokenization import encode_user_prompt

# A list request the bundled APAR adapter forks on (5 forks); how it does on requests in general:
# `python -m apar_jax.bench.apar_eval` (docs/benchmarks.md).
QUESTION = 'Suggest five hobbies that can be done at home.'
MAX_NEW_TOKENS = 128  # per branch
APAR_SLOTS = 8  # branch slots of the APAR modes (every slot is a row of every step on a CPU)
DEFAULT_DRAFTER = 'medusa'


@dataclasses.dataclass
class Answer:
  mode: str
  result: Result
  compile_s: float
  trees: str = '-'  # tree nodes per row bucket chosen from the measured step cost ('-': no drafter)


def planned_trees(plan: tuple) -> str:
  """'1 row: no draft; 2 rows: 3 nodes' from an engine's `tree_plan` ('-' without one)."""
  what = lambda c: 'no draft' if c.tree.num_nodes == 1 else f'{c.tree.num_nodes} nodes'  # noqa: E731
  return '; '.join(f'{c.rows} row{"s" if c.rows > 1 else ""}: {what(c)}' for c in plan) or '-'


def drafter_from_flags() -> str:
  mode = cli_flags.MODE.value
  if mode in ('ar', 'apar'):
    return DEFAULT_DRAFTER
  drafter = mode[len('apar_'):] if mode.startswith('apar_') else mode
  if drafter not in SPEC_MODES:
    raise ValueError(f'demo --mode picks the speculative mode: one of {", ".join(SPEC_MODES)}; '
                     f'got {mode!r}')
  return drafter


def answer(runtime: Runtime, mode: str, ids: list[int],
           write: Callable[[str], None]) -> Answer:
  """Compiles `mode`'s engine on a throwaway request, then decodes `ids`, streaming its text."""
  t0 = time.perf_counter()
  slots = APAR_SLOTS if is_apar_mode(mode) else 1
  engine = engine_for(runtime, mode, max_prompt_len=len(ids), max_new_tokens=MAX_NEW_TOKENS,
                      slots=slots, requests=1)
  engine.warmup()
  compile_s = time.perf_counter() - t0
  ctl = engine.ids
  text = AnswerText(runtime.tokenizer, ctl.fork, ctl.child, ctl.stop)
  result = None
  for event in engine.stream([Request(token_ids=ids, max_new_tokens=MAX_NEW_TOKENS)]):
    if isinstance(event, TokensEvent):
      write(text.add(event))
    elif isinstance(event, DoneEvent):
      write(text.finish(event.result))
      result = event.result
  return Answer(mode, result, compile_s, planned_trees(engine.tree_plan))


def table(answers: list[Answer]) -> str:
  """Markdown: tokens, steps, tokens per step, decode tokens/s and speed-up over AR, forks."""
  ar = answers[0].result
  ar_tps = ar.num_generated_tokens / ar.wall_time_s
  lossless = {a.mode: a.result for a in answers}
  lines = ['| mode | tokens | decode steps | tokens / step | decode tokens/s | speed-up vs AR | '
           'forks | same tokens as | draft tree per row bucket |',
           '|---|---:|---:|---:|---:|---:|---:|---|---|']
  for a in answers:
    r = a.result
    n, steps, tps = r.num_generated_tokens, r.decode_steps, r.num_generated_tokens / r.wall_time_s
    reference = 'apar' if a.mode.startswith('apar_') else 'ar' if a.mode in SPEC_MODES else None
    same = '-'
    if reference in lossless:
      same = f'{reference}: {"yes" if r.token_ids == lossless[reference].token_ids else "no"}'
    lines.append(f'| {a.mode} | {n} | {steps} | {n / steps:.2f} | {tps:.1f} | '
                 f'{tps / ar_tps:.2f}x | {r.forks} | {same} | {a.trees} |')
  return '\n'.join(lines)


def run(config: ml_collections.ConfigDict) -> None:
  drafter = drafter_from_flags()
  modes = ['ar', 'apar', drafter, f'apar_{drafter}']
  t0 = time.perf_counter()
  with contextlib.redirect_stderr(io.StringIO()):  # the weight loaders' progress bars
    base = load_runtime(config)
    apar_config = config_for_mode(config, 'apar', announce=False)
    apar = base if apar_config is config else load_runtime(apar_config)
  adapter = apar_config.weights.get('adapter', '') or 'none: the base model (it rarely forks)'
  print(f'[demo] loaded {config.name} ({config.model.n_layers} layers, d {config.model.d_model}) '
        f'and the APAR adapter ({adapter}) in {time.perf_counter() - t0:.1f}s', file=sys.stderr)
  tok = base.tokenizer
  ids = encode_user_prompt(tok, QUESTION, config.tokenizer)

  def write(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()

  answers: list[Answer] = []
  for mode in modes:
    print(f'\n=== {mode} ===\nUser: {QUESTION}\nAssistant: ', end='', flush=True)
    answers.append(answer(apar if is_apar_mode(mode) else base, mode, ids, write))
    r = answers[-1].result
    print(flush=True)
    print(f'[demo] {mode}: {r.num_generated_tokens} tokens in {r.decode_steps} steps, '
          f'{r.num_generated_tokens / r.wall_time_s:.1f} tokens/s (compiled first in '
          f'{answers[-1].compile_s:.1f}s)', file=sys.stderr, flush=True)
  print(f'\nBatch 1, fp32, greedy, {MAX_NEW_TOKENS} new tokens per branch; decode tokens/s from the '
        'request to its last token, compilation excluded. APAR modes decode the APAR fine-tune, '
        'the others the base model. Draft trees are chosen per row bucket from the step cost '
        'measured on this machine ("no draft" where drafting does not pay).\n')
  print(table(answers))
