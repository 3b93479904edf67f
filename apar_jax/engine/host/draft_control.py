"""Drafting only while it pays, judged by the acceptance the running requests actually reach.

The tree plan (`tree_plan`) expects E(T) tokens per row and step from the drafter's acceptance table
and knows what a step of each bucket costs with its tree (c, relative to the no-draft step). On the
running workload a drafter keeps more or fewer tokens than its table says (prompt lookup: 1.1 to 3
tokens per step depending on the prompt). So the host measures, over the chunks that drafted, the
quality q = (tokens - row steps) / (row steps x (E - 1)) (1 = as planned; a decaying sum, recent
chunks weigh most), and a drafting bucket drafts in its next chunk only while 1 + q (E - 1) >= c;
otherwise the chunk verifies the root alone, and every `probe_every`-th such chunk drafts anyway
to measure again. Greedy or sampled, every chunk is lossless either way: this only moves speed.
"""

import dataclasses
from typing import Sequence

from apar_jax.engine.setup.tree_plan import BucketChoice


@dataclasses.dataclass
class DraftControl:
  """Host state of the draft / no-draft choice per chunk (one per engine, kept across runs)."""
  expected: dict[int, float]  # rows -> E(T) of the bucket's tree (tokens per row-step)
  cost: dict[int, float]  # rows -> its step cost over the no-draft step
  probe_every: int = 16
  decay: float = 0.7  # weight of the past per observed chunk
  gained: float = 0.0  # decayed sum of tokens beyond one per row-step
  planned: float = 0.0  # decayed sum of what the plan expected beyond one per row-step
  since_draft: int = 0  # chunks without draft since the last drafting one
  chunks_drafted: int = 0
  chunks_skipped: int = 0
  counters: tuple[int, int] = (0, 0)  # the state's cumulative `SpecSlots.drafted` last seen

  @classmethod
  def from_plan(cls, plan: Sequence[BucketChoice], probe_every: int) -> 'DraftControl':
    if probe_every < 1:
      raise ValueError(f'config.speculative.probe_every must be >= 1, got {probe_every}')
    drafting = [c for c in plan if c.tree.num_nodes > 1]
    return cls({c.rows: c.expected_tokens for c in drafting},
               {c.rows: c.expected_tokens / c.speedup for c in drafting}, probe_every)

  @property
  def quality(self) -> float:
    """Measured gain over planned gain (1.0 before any drafting chunk)."""
    return self.gained / self.planned if self.planned > 0 else 1.0

  def pays(self, rows: int) -> bool:
    """Whether the bucket's tree is expected to beat the no-draft step at the measured quality."""
    return 1.0 + self.quality * (self.expected[rows] - 1.0) >= self.cost[rows]

  def draft(self, rows: int) -> bool:
    """The next chunk on `rows` rows drafts (call once per chunk; False = verify the root alone)."""
    if rows not in self.expected:  # the plan has no draft for this bucket: nothing to decide
      return True
    go = bool(self.pays(rows)) or self.since_draft + 1 >= self.probe_every
    self.since_draft = 0 if go else self.since_draft + 1
    self.chunks_drafted += go
    self.chunks_skipped += not go
    return go

  def observe(self, rows: int, row_steps: int, tokens: int) -> None:
    """A drafting chunk on `rows` rows ran `row_steps` live row-steps that emitted `tokens`."""
    if rows not in self.expected or row_steps <= 0:
      return
    self.gained = self.decay * self.gained + (tokens - row_steps)
    self.planned = self.decay * self.planned + row_steps * (self.expected[rows] - 1.0)

  def observe_counters(self, rows: int, drafted: Sequence[int]) -> None:
    """After a chunk on `rows` rows: the state's cumulative (row steps, tokens) of drafting steps,
    summed over the shards. A state built anew (its counters restart) counts from zero."""
    steps, tokens = int(drafted[0]), int(drafted[1])
    before = self.counters if steps >= self.counters[0] else (0, 0)
    self.counters = (steps, tokens)
    self.observe(rows, steps - before[0], tokens - before[1])

  def stats(self) -> dict[str, float]:
    return {'draft_chunks': self.chunks_drafted, 'no_draft_chunks': self.chunks_skipped,
            'draft_quality': round(self.quality, 3)}
