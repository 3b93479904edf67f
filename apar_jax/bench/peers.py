"""Peers: what a user would otherwise run, on the same weights and prompts.

- `hf_generate`: transformers `generate`, fp32, greedy, batch 1.
- `hf_prompt_lookup`: the same with prompt-lookup assisted generation (`prompt_lookup_num_tokens`).

Both get our params converted to a `LlamaForCausalLM` (`hf_export.py`), our stop ids as EOS and the
APAR control tokens suppressed, exactly like our AR mode. Decode steps are counted as calls of the
model's forward (prefill included: it produces the first token, as our first decode step does).

Threads: torch runs on one thread unless told otherwise (`peer_threads`). On this shared 2-core
machine, under the load of other jobs, SmolLM2 `generate` took 87 ms/token with 1 thread and
600-1040 ms/token with torch's default of 2 (its OpenMP workers spin-wait against the other
processes); one thread is the fair setting here. JAX keeps its own thread pool.
"""

import sys
import time
from typing import Any, Sequence

from apar_jax.bench.contender import Sample


class HFContender:
  """One transformers generation strategy over a shared model."""
  kind = 'peer'

  def __init__(self, name: str, model: Any, stop_ids: Sequence[int], banned_ids: Sequence[int],
               extra: dict[str, Any]):
    self.name, self.model, self.extra = name, model, dict(extra)
    self.stop_ids, self.banned_ids = [int(i) for i in stop_ids], [int(i) for i in banned_ids]
    self._forwards = 0
    model.register_forward_hook(self._count)

  def _count(self, *_: Any) -> None:
    self._forwards += 1

  def _generate(self, prompt_ids: Sequence[int],
                max_new_tokens: int) -> tuple[list[int], int, float]:
    import torch
    from transformers import GenerationConfig
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                              eos_token_id=self.stop_ids, pad_token_id=self.stop_ids[0],
                              suppress_tokens=self.banned_ids or None, **self.extra)
    inputs = torch.tensor([list(prompt_ids)], dtype=torch.long)
    self._forwards = 0
    t0 = time.perf_counter()
    with torch.no_grad():
      out = self.model.generate(inputs, attention_mask=torch.ones_like(inputs),
                                generation_config=config)
    wall = time.perf_counter() - t0
    return out[0, inputs.shape[1]:].tolist(), self._forwards, wall

  def setup(self) -> float:
    t0 = time.perf_counter()
    self._generate([self.stop_ids[0], self.stop_ids[0]], 4)
    return time.perf_counter() - t0

  def run(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Sample:
    tokens, forwards, wall = self._generate(prompt_ids, max_new_tokens)
    return Sample(token_ids=tokens, num_tokens=len(tokens), decode_steps=forwards, wall_s=wall,
                  mean_accepted_tokens=len(tokens) / max(forwards, 1))

  def first_token_s(self, prompt_ids: Sequence[int]) -> float:
    return self._generate(prompt_ids, 1)[2]

  def describe(self) -> dict[str, Any]:
    import torch
    import transformers
    return {'library': f'transformers {transformers.__version__}, torch {torch.__version__}',
            'dtype': 'float32', 'threads': torch.get_num_threads(), **self.extra}


def hf_peers(runtime: Any, lookup_tokens: int,
             threads: int = 1) -> tuple[list[HFContender], dict[str, str]]:
  """The transformers peers, or none and {peer name: reason} when transformers cannot run them."""
  names = ('hf_generate', 'hf_prompt_lookup')
  try:
    import torch
    import transformers  # noqa: F401
  except ImportError as e:
    reason = f'transformers/torch not installed ({e})'
    print(f'[bench] peers skipped: {reason}', file=sys.stderr)
    return [], {n: reason for n in names}
  if threads > 0:
    torch.set_num_threads(threads)
  try:
    from apar_jax.bench.hf_export import to_hf_llama
    model = to_hf_llama(runtime.config.model, runtime.params)
  except Exception as e:  # a model transformers' Llama cannot express
    reason = f'could not build the transformers model: {type(e).__name__}: {e}'
    print(f'[bench] peers skipped: {reason}', file=sys.stderr)
    return [], {n: reason for n in names}
  tok = runtime.tokenizer
  banned = [i for i in (getattr(tok, 'fork_id', None), getattr(tok, 'child_id', None))
            if i is not None]
  stops = list(tok.stop_ids)
  return [HFContender('hf_generate', model, stops, banned, {}),
          HFContender('hf_prompt_lookup', model, stops, banned,
                      {'prompt_lookup_num_tokens': int(lookup_tokens)})], {}
