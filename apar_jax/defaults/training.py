"""Default `config.train` and `config.distill` sections (a config file overrides what it needs)."""

import ml_collections

# the projections LoRA may adapt (every one by default)
LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


def train_defaults() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      # data
      data_path='',                 # ShareGPT .json/.jsonl (e.g. the distill output)
      distill_first=False,          # `train` first completes `distill` into data_path (one command)
      max_exchanges=0,              # use only the first N answers (0 = all)
      unfinished='drop',            # answers cut at the distill budget: 'drop' | 'trim' (last blank line)
      layout='packed',              # 'packed' (trees in one row) | 'branch_rows' (APAR's layout)
      plain_fraction=0.5,           # share of plain (unstructured) chat examples
      tree_kinds=('list', 'paragraphs'),  # structures trained to fork
      excluded_trees='plain',       # a tree of another kind: 'plain' (trains unforked) | 'drop'
      salvage_budget_cuts=False,    # distilled answers cut at the budget: keep complete blocks that
                                    # pass the filters (needs unfinished='trim'; budget_salvage.py)
      list_demo_only=False,         # leave out list answers distilled without distill.list_demo
      list_demo_name='',            # with list_demo_only: only this demonstration's ('' = any)
      list_answers_where='',        # list answers distilled so only, e.g. 'temperature=0'
      list_answers_counted=False,   # list answers that write the number of items they announce only
      seq_len=512,                  # tokens per packed row
      max_branches=32,              # branches per packed row (trees and plain examples count)
      max_depth=2,                  # branch levels, root included (APAR data: 2)
      # method
      method='lora',                # 'lora' | 'full'
      lora=ml_collections.ConfigDict(dict(rank=8, alpha=16.0, targets=LORA_TARGETS,
                                          impl='merge')),  # 'merge' | 'intercept' (same maths)
      # optimisation
      learning_rate=2e-4,
      token_rows_lr_scale=1.0,      # LoRA: the [Fork]/[Child] rows learn this many times faster
      fork_loss_weight=1.0,         # a [Fork] target counts this many times in the mean loss
      root_loss_weight=1.0,         # every target of a tree's root branch counts this many times
      list_end_weight=1.0,          # the targets that end a root's list (after its last [Fork])
      root_unlikelihood_weight=0.0,  # > 0: unlikelihood against a root repeating its own tokens
      unlikelihood_candidates='all',  # 'all' earlier answer tokens | 'words' (no list syntax)
      end_lr_fraction=0.1,          # cosine decays to learning_rate * this
      warmup_steps=10,
      total_steps=100,
      batch_size=8,                 # rows per optimizer step
      grad_accum=1,                 # micro-batches per step (batch_size / grad_accum rows each)
      weight_decay=0.0,
      grad_clip=1.0,
      seed=0,
      attention_impl='auto',        # packed_tree_attention impl
      # outputs
      checkpoint_dir='runs/train/checkpoints',
      save_every=10,
      keep_checkpoints=2,
      log_dir='runs/train/logs',    # TensorBoard events + metrics.jsonl
      log_every=1,
      export_dir='',                # final adapter (lora) / params (full); '' = do not export
      plot_path='',                 # loss-curve PNG written at the end ('' = none)
  ))


def distill_defaults() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      num_prompts=2000,             # requests from the shipped generator
      prompt_seed=0,
      split='train',                # the generator's split ('heldout' is for evaluation only)
      kind_shares='',               # request kinds drawn, e.g. 'list=0.6,plain=0.4' ('' = all)
      list_demo='',                 # format demonstration the teacher sees before a list request
                                    # (apar_data/format_demos.py); '' = none
      max_attempts=3,               # answers drawn per request until one passes the filters
      output='runs/distill/sharegpt.jsonl',
      batch_size=8,                 # answers decoded together (engine: slots of continuous batching)
      max_new_tokens=320,
      temperature=0.0,
      top_p=1.0,
      top_k=0,
      repetition_penalty=1.0,       # against each answer's own tokens (1.0 = off; engine backend)
      no_repeat_ngram=0,            # no token n-gram twice in an answer (0 = off; engine backend)
      penalize_symbols=True,        # False: the penalty spares tokens without a letter (list marks)
      seed=0,
      backend='auto',               # 'auto' (engine if present) | 'engine' | 'dense'
  ))
