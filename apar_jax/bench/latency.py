"""The latency benchmark: every contender answers every prompt, one request at a time, repeatedly.

Repetitions are interleaved (rep -> prompt -> contender, the contender order rotating each rep), so
a burst of load from other processes on this shared machine hits every contender alike. A contender
that fails (setup or any run) is marked failed with its reason and dropped; the others go on.
"""

import dataclasses
import sys
import traceback
from typing import Optional, Sequence

from tqdm.auto import tqdm

from apar_jax.bench.contender import Contender, Sample


@dataclasses.dataclass
class ContenderRun:
  """What one contender produced: samples[rep][prompt], or a failure."""
  name: str
  kind: str
  status: str = 'ok'  # 'ok' | 'failed' | 'skipped'
  reason: Optional[str] = None
  compile_s: Optional[float] = None
  describe: dict = dataclasses.field(default_factory=dict)
  samples: list[list[Sample]] = dataclasses.field(default_factory=list)

  def fail(self, err: BaseException, where: str) -> None:
    self.status = 'failed'
    self.reason = f'{where}: {type(err).__name__}: {err}'
    self.samples = []
    print(f'[bench] {self.name} failed ({self.reason})', file=sys.stderr)
    if not isinstance(err, ValueError):
      traceback.print_exception(err, file=sys.stderr)


def run_latency(contenders: Sequence[Contender], prompt_ids: Sequence[Sequence[int]],
                max_new_tokens: int, repeats: int, progress: bool = True) -> list[ContenderRun]:
  """Sets up every contender, then runs the interleaved repetitions; one `ContenderRun` each."""
  runs = [ContenderRun(c.name, c.kind) for c in contenders]
  for c, run in zip(contenders, runs):
    print(f'[bench] warming up {c.name} (compile excluded from timings)', file=sys.stderr)
    try:
      run.compile_s = c.setup()
      run.describe = c.describe()
    except Exception as e:  # a mode that is unavailable or broken: reported, not fatal
      run.fail(e, 'setup')
  live = [i for i, r in enumerate(runs) if r.status == 'ok']
  total = repeats * len(prompt_ids) * len(live)
  bar = tqdm(total=total, desc='latency', unit='answer', disable=not progress, file=sys.stderr)
  for rep in range(repeats):
    for i in live:
      runs[i].samples.append([])
    for p, ids in enumerate(prompt_ids):
      k = rep % max(len(live), 1)
      for i in live[k:] + live[:k]:
        run, c = runs[i], contenders[i]
        bar.update(1)
        if run.status != 'ok':
          continue
        try:
          sample = c.run(ids, max_new_tokens)
          sample.ttft_s = c.first_token_s(ids)
          run.samples[rep].append(sample)
        except Exception as e:
          run.fail(e, f'repetition {rep}, prompt {p}')
  bar.close()
  return runs
