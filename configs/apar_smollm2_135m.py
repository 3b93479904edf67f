"""SmolLM2-135M-Instruct with the bundled APAR adapter, and the recipe that trains that adapter.

Decoding (`generate --mode=apar`): the base GGUF plus the LoRA adapter in `weights.adapter` (merged
at load time with `apar_jax.weights.lora.apply_adapter`).

The recipe (2-core CPU; see docs/apar_training.md for the measured sizes and the loss curve) is one
command: `train` first completes the self-distillation (`distill_first`), then trains the LoRA adapter
and the [Fork]/[Child] rows. It resumes after an interruption (re-run it); run it in the background:
  mkdir -p runs && nohup python -m apar_jax train --config=configs/apar_smollm2_135m.py \
      > runs/apar_smollm2_135m.log 2>&1 &
(`python -m apar_jax distill --config=...` runs the first stage alone.)
"""

import os

from apar_jax.defaults import distill_defaults, engine_config, presets, train_defaults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_DIR = os.path.join(REPO, 'runs', 'apar_smollm2_135m')
ADAPTER = os.path.join(REPO, 'data', 'adapters', 'apar_smollm2_135m')


def get_config():
  config = presets.smollm2_135m(REPO)
  config.name = 'apar_smollm2_135m'
  config.weights.adapter = ADAPTER  # LoRA + control-token rows; '' = base model only
  # Distillation answers up to 384 tokens; the engine's per-branch buffer must hold them.
  config.engine = engine_config(max_new_tokens=384, max_requests=16)

  config.distill = distill_defaults()
  # Greedy, without the repetition penalty, each list request after the counted format
  # demonstration (docs/apar_training.md section 3, "Sampling for fluency"): the base model's NLL of
  # such answers is 0.90 per token against 1.67 for answers sampled at T 0.7 with penalty 1.15, and
  # the fine-tune writes like what it was shown. Every answer is filtered
  # (apar_data/distill_filter.py). Greedy draws one answer per request (another attempt would
  # repeat it). The distilled file ships in data/distill/ so training can start from a fresh clone;
  # it also holds earlier sampled sittings: `train` below takes their plain answers, not their
  # lists.
  config.distill.update(
      num_prompts=5000,
      split='train',
      output=os.path.join(REPO, 'data', 'distill', 'smollm2_sharegpt.jsonl'),
      batch_size=16,
      max_new_tokens=384,
      temperature=0.0,
      repetition_penalty=1.0,
      no_repeat_ngram=6,
      penalize_symbols=False,
      max_attempts=1,
      # list and plain requests only (the recipe trains list trees against plain answers); a list
      # request is answered after a demonstration that announces its count ("Here are 4 ways ...:")
      # and gives each item two sentences of detail (the branches' parallel work)
      kind_shares='list=0.6,plain=0.4',
      list_demo='counted_details',
  )

  config.train = train_defaults()
  # Trial r16 (docs/apar_training.md section 5, "Recipe trials"): the greedy list trees distilled
  # after the counted demonstration with two-sentence details, against as many plain answers
  # (2026-12-07: 247 + 247).
  config.train.update(
      data_path=config.distill.get_ref('output'),
      distill_first=True,            # `train` runs (or resumes) the distillation first
      unfinished='trim',             # answers cut at 384 tokens keep their complete blocks
      salvage_budget_cuts=True,      # ... and come back if those blocks pass the filters
      layout='packed',
      tree_kinds=('list',),          # fork lists only (paragraph trees made plain requests fork)
      excluded_trees='drop',         # ... and leave paragraph trees out (not trained unforked)
      list_demo_only=True,           # list answers distilled after that demonstration only
      list_demo_name='counted_details',
      list_answers_where='temperature=0,repetition_penalty=1',  # ... greedily, without the penalty
      plain_fraction=0.5,            # as many plain answers as trees (the larger side subsampled)
      list_end_weight=4.0,           # the root's stop after its last [Fork] counts 4x
      seq_len=512,
      max_branches=32,
      method='lora',
      learning_rate=4e-4,
      token_rows_lr_scale=10.0,      # the new [Fork]/[Child] rows at 4e-3: at 4e-4 the first fork was not learned
      end_lr_fraction=0.1,
      warmup_steps=10,
      total_steps=200,
      batch_size=2,                  # 2 rows x 512 tokens per step
      grad_accum=1,
      weight_decay=0.0,
      grad_clip=1.0,
      checkpoint_dir=os.path.join(RUN_DIR, 'checkpoints'),
      save_every=10,
      keep_checkpoints=2,
      log_dir=os.path.join(RUN_DIR, 'logs'),
      export_dir=ADAPTER,
      plot_path=os.path.join(REPO, 'docs', 'apar_training_loss.png'),
  )
  config.train.lora.update(rank=16, alpha=32.0, impl='merge')
  return config
