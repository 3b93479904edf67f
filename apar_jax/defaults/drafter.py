"""Default sections for speculative decoding (`config.speculative`) and drafter training
(`config.drafter`).

`speculative` names the drafter checkpoints a decoding mode loads and the tree it verifies;
`drafter` drives `python -m apar_jax train_drafter` (see docs/speculative.md).
"""

import ml_collections


def speculative_config(**overrides) -> ml_collections.ConfigDict:
  """The `speculative` section: drafters per mode, tree, acceptance rule."""
  spec = ml_collections.ConfigDict(dict(
      medusa_path='checkpoints/drafters/smollm2_135m_medusa',       # orbax drafter checkpoint
      hidden_transfer_path='checkpoints/drafters/smollm2_135m_hidden_transfer',
      hidden_transfer_variant='verify',   # 'verify' (pseudo tokens in the verify forward) | 'extra_pass'
      # 'auto' (from the checkpoint's measured acceptance and the measured step time), 'chain', or
      # paths as a string, e.g. '(0,),(1,),(0,0)'.
      tree='auto',
      max_tree_nodes=8,       # Q: query tokens per slot and step, root included (a static capacity)
      # tree='auto' with cost_model: each row bucket verifies the tree with the most expected tokens
      # per second from the drafter's acceptance and the step time measured on this backend (none
      # at all where drafting does not pay); False: the best max_tree_nodes tree everywhere.
      cost_model=True,
      # measured step times: 'default' = ~/.cache/apar_jax/step_costs.json ($APAR_JAX_CACHE_DIR if
      # set), '' = not kept, or a file
      step_cost_cache='default',
      remeasure_step_cost=False,  # measure again even if the cache has this backend and model
      # with cost_model: a bucket's chunk drafts only while the acceptance measured on the running
      # requests pays for its tree; otherwise every probe_every-th such chunk drafts to re-measure
      probe_every=16,
      step_cost_context=256,  # committed tokens per row while measuring
      # prompt lookup's acceptance per drafted level (the last repeats): a chain of 4 kept 1.47
      # tokens per step on 26 held-out prompts of 13 kinds (greedy SmolLM2, 128 tokens), fitted as
      # 1 + a + a^2 + a^3 + a^4; it varies far more per prompt than a trained drafter's.
      lookup_acceptance=(0.33,),
      topk=4,                 # guesses kept per drafted position
      lookup_num_draft=4,     # prompt lookup: drafted tokens (a chain)
      lookup_max_ngram=3,
      lookup_min_ngram=1,
      # token recycling (training-free): tree depth and table width (candidates kept per token);
      # its context match reuses lookup_max_ngram / lookup_min_ngram. The planner's acceptance per
      # (level, rank), the last level repeated, until the running requests measure it
      # (draft_control): fitted to a teacher-forced run of SmolLM2's greedy answers to 26 held-out
      # prompts (1 node kept 1.24 tokens per step, 4 nodes 1.40, 20 nodes 1.57).
      recycling_depth=4,
      recycling_topk=4,
      recycling_acceptance=((0.24, 0.07, 0.04, 0.03), (0.40, 0.10, 0.05, 0.03)),
      # a JSON of acceptance per (level, rank) measured while decoding (`python -m
      # apar_jax.bench.spec_modes --acceptance_out=F`): where it has a figure for the drafter, the
      # tree planner uses it instead of the priors above or the checkpoint's table ('' = none)
      acceptance_file='',
      acceptance='exact',     # 'exact' (greedy / rejection sampling: lossless) | 'typical' (LOSSY)
  ))
  spec.update(overrides)
  return spec


def drafter_train_config(**overrides) -> ml_collections.ConfigDict:
  """The `drafter` section of `train_drafter`."""
  drafter = ml_collections.ConfigDict(dict(
      kind='medusa',            # 'medusa' | 'hidden_transfer'
      num_heads=3,              # future tokens drafted (Medusa heads / HT pseudo tokens)
      transfer_layer=20,        # hidden_transfer: layers run before the transfer (0 = embeddings)
      data_path='runs/drafter_data/selfdistill.jsonl',   # ShareGPT JSONL (self-distilled answers)
      data_where='',            # only records with these settings, e.g. 'temperature=0'
      generate_answers=0,       # > 0: first distil this many answers into data_path if it is missing
      distill_max_new_tokens=192,
      distill_batch=8,
      seq_len=256,              # prompt + answer tokens per row
      max_prompt=64,            # prompt tokens kept (the last ones)
      eval_fraction=0.1,        # rows held out for the acceptance measurement
      steps=300,
      batch=256,                # medusa: positions per step
      rows_per_step=2,          # hidden_transfer: rows per step
      anchors_per_row=32,       # hidden_transfer: anchor positions per row
      learning_rate=1e-3,
      warmup_steps=20,
      weight_decay=0.0,
      save_every=50,
      topk_eval=4,
      work_dir='runs/train_drafter',   # resumable train state
      output='',                # final drafter checkpoint ('' = checkpoints/drafters/<model>_<kind>)
      overwrite=False,
  ))
  drafter.update(overrides)
  return drafter
