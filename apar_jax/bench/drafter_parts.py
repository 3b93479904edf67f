"""Speculative decoding figures on the current backend (a command that prints, not a test).

    python -m apar_jax.bench.drafter_parts --config=configs/smollm2_135m.py \
        [--medusa=DIR] [--hidden_transfer=DIR] [--prompts=8] [--max_new=96] [--parts=steps,ht,decode]

1. steps: time of one verification forward with T query tokens (T = 1, 2, 4, ..., 32) and the
   tree the automatic builder picks from it for each drafter's measured acceptance table.
2. ht: the Hidden Transfer design point: plain verification + extra pass vs verification with pseudo
   tokens from every node.
3. decode: greedy speculative decoding with the reference decoder for each drafter (trees of 4 and 8
   nodes built from its measured acceptance, and the automatic choice) vs AR (dense loop) on the same
   prompts: token identity, mean accepted tokens per step, wall time (compile
   excluded by a warm-up run).
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from apar_jax.generate import DenseGenerator
from apar_jax.model import PagedCache, PagedSpec
from apar_jax.speculative import auto_tree, hidden_transfer
from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.drafter_io import load_drafter
from apar_jax.speculative.layer_runner import forward_with_layer_hidden
from apar_jax.testing.speculative_reference import SpeculativeReferenceDecoder
from apar_jax.speculative.tree import TokenTree


MEDUSA = flags.DEFINE_string('medusa', '', 'A Medusa drafter checkpoint directory ("" = none).')
HIDDEN_TRANSFER = flags.DEFINE_string('hidden_transfer', '', 'A Hidden Transfer drafter checkpoint '
                                      'directory ("" = none).')
PROMPTS = flags.DEFINE_integer('prompts', 8, 'Held-out prompts decoded by `decode`.')
MAX_NEW = flags.DEFINE_integer('max_new', 96, 'Tokens per answer in `decode`.')
MAX_NODES = flags.DEFINE_integer('max_nodes', 32, 'Largest tree the automatic builder may pick.')
PARTS = flags.DEFINE_list('parts', ['steps', 'ht', 'decode'], 'Which measurements to run.')


def _timed(fns, repeats=7):
  """Fastest of `repeats` runs of each function, timed round-robin (robust to other load)."""
  for fn in fns.values():
    jax.block_until_ready(fn())
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      times[name].append(time.perf_counter() - t0)
  return {name: float(np.min(v)) for name, v in times.items()}


def bench_ht_variants(model, params, ht, layer, tree, context=256, page_size=16):
  """Seconds per step: plain verify, verify + extra pass, verify with transfer (batch 1)."""
  cfg = model.cfg
  k = hidden_transfer.num_pseudo_of(ht)
  q = tree.num_nodes * (1 + k)
  pages = -(-(context + q) // page_size)
  tables = jnp.arange(pages, dtype=jnp.int32)[None]
  caches = tuple(PagedCache.zeros(pages, page_size, cfg.n_kv_heads, cfg.head_dim, jnp.float32)
                 for _ in range(cfg.n_layers))
  lengths = jnp.asarray([context], jnp.int32)
  cand = jnp.ones((1, tree.num_nodes), jnp.int32)
  make_spec = lambda m: PagedSpec(tables, lengths, m)  # noqa: E731

  plain = jax.jit(lambda p, c: forward_with_layer_hidden(
      model, p, cand, tree.positions(lengths), make_spec(tree.block_mask(1)), c, layer))
  extra = jax.jit(lambda p, d, c, h: hidden_transfer.propose_extra_pass(
      p, cfg, d, h, lengths + 1, PagedSpec(tables, lengths + 1), c, layer, 4))
  verify = jax.jit(lambda p, d, c: hidden_transfer.verify_with_transfer(
      model, p, d, cand, lengths, tree, make_spec, c, layer, 4))
  h = plain(params, caches)[1][:, 0]
  t = _timed({'plain': lambda: plain(params, caches),
              'extra': lambda: extra(params, ht, caches, h),
              'verify': lambda: verify(params, ht, caches)})
  return {'plain_verify_s': t['plain'], 'extra_pass_s': t['extra'],
          'verify_plus_extra_pass_s': t['plain'] + t['extra'], 'verify_with_transfer_s': t['verify']}


def bench_decode(model, params, tok, prompts, max_new, drafters):
  """Greedy AR vs each speculative drafter on the same prompts (batch = all prompts)."""
  ar_gen = DenseGenerator(model, params, stop_ids=tok.stop_ids, chunk_steps=32)
  ar_gen.generate(prompts, max_new)  # warm-up (compile)
  t0 = time.perf_counter()
  ar = ar_gen.generate(prompts, max_new)
  ar_s = time.perf_counter() - t0
  rows = [{'mode': 'ar', 'wall_s': ar_s, 'decode_steps': ar['decode_steps'],
           'mean_accepted_tokens': 1.0, 'identical': True}]
  for name, (drafter, dparams, tree) in drafters.items():
    dec = SpeculativeReferenceDecoder(model, params, drafter, dparams, tree, stop_ids=tok.stop_ids,
                                      attention_impl='auto')
    dec.generate(prompts, max_new)  # warm-up
    t0 = time.perf_counter()
    out = dec.generate(prompts, max_new)
    rows.append({'mode': name, 'tree_nodes': tree.num_nodes, 'wall_s': time.perf_counter() - t0,
                 'decode_steps': max(out['steps']),
                 'mean_accepted_tokens': out['mean_accepted_tokens'],
                 'identical': out['tokens'] == ar['tokens']})
  return rows


def run(config) -> None:
  from apar_jax.runtime import load_runtime
  rt = load_runtime(config)
  model, params, tok = rt.model, rt.params, rt.tokenizer
  parts = set(PARTS.value)
  loaded = {}
  for kind, path in (('medusa', MEDUSA.value), ('hidden_transfer', HIDDEN_TRANSFER.value)):
    if path:
      loaded[kind] = load_drafter(path, params, config.model, kind=kind)
  report = {'backend': jax.default_backend()}
  sizes = [1, 2, 4, 8, 16, 32]
  if 'steps' in parts:
    times = auto_tree.measure_step_times(model, params, sizes)
    report['step_time_s'] = times
    report['auto_trees'] = {}
    for kind, (_, meta) in loaded.items():
      acc = np.asarray(meta['train']['acceptance'])
      tree, info = auto_tree.build_auto_tree(acc, times, MAX_NODES.value)
      report['auto_trees'][kind] = {**info, 'paths': [list(p) for p in tree.paths]}
    print(json.dumps(report), file=sys.stderr)
  trees = {kind: TokenTree.from_paths([tuple(p) for p in report['auto_trees'][kind]['paths']])
           for kind in report.get('auto_trees', {})}
  if 'ht' in parts and 'hidden_transfer' in loaded:
    ht, meta = loaded['hidden_transfer']
    tree4 = TokenTree.from_paths(auto_tree.greedy_paths(np.asarray(meta['train']['acceptance']), 4))
    report['ht_variants'] = {'tree_nodes': tree4.num_nodes, **bench_ht_variants(
        model, params, ht, meta['transfer_layer'], tree4)}
    print(json.dumps(report['ht_variants']), file=sys.stderr)
  if 'decode' in parts:
    from apar_jax.training.drafter.prompt_bank import prompt_bank
    from apar_jax.tokenization import encode_user_prompt
    texts = prompt_bank(400, seed=0)[-PROMPTS.value:]  # the held-out end of the distilled bank
    prompts = [encode_user_prompt(tok, p, config.tokenizer) for p in texts]
    drafters = {'lookup': (Drafter('lookup', 4, 1), None, TokenTree.chain(4))}
    for kind, (dparams, meta) in loaded.items():
      acc = np.asarray(meta['train']['acceptance'])
      auto = trees.get(kind)
      sizes = sorted({4, 8} | ({auto.num_nodes} if auto is not None else set()))
      for size in sizes:
        tree = TokenTree.from_paths(auto_tree.greedy_paths(acc, size))
        drafters[f'{kind}_T{tree.num_nodes}'] = (
            Drafter(kind, meta['num_heads'], max(tree.topk_needed(), 1),
                    transfer_layer=meta.get('transfer_layer', 0)), dparams, tree)
    report['decode'] = bench_decode(model, params, tok, prompts, MAX_NEW.value, drafters)
  print(json.dumps(report, indent=1))


if __name__ == '__main__':
  from apar_jax.cli_standalone import run_standalone
  run_standalone(run)
