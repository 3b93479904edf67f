"""Training checkpoints: an orbax CheckpointManager over the train state, resumable after a stop."""

import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp


class TrainCheckpoints:
  """Saves the state every `save_every` steps (and at the end), keeps the newest `keep`."""

  def __init__(self, directory: str, save_every: int, keep: int):
    if save_every < 1 or keep < 1:
      raise ValueError(f'need train.save_every >= 1 and train.keep_checkpoints >= 1, got '
                       f'{save_every} and {keep}')
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every,
                                           create=True, enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def restore(self, step: int, target: Any) -> Any:
    """The state saved at `step`, placed like `target` (a state pytree of arrays)."""
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def save(self, step: int, state: Any, force: bool = False) -> bool:
    return self._manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
