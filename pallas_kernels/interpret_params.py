"""Interpret-mode settings for running the TPU kernels on CPU (`impl='pallas_interpret'`)."""

from __future__ import annotations

from jax.experimental.pallas import tpu as pltpu


def tpu_interpret_params(*, detect_races: bool = False) -> pltpu.InterpretParams:
  """Uninitialised VMEM reads as NaN, so a kernel that reads memory it never wrote shows it.

  Race detection is off by default (it slows interpretation); the kernel tests switch it on.
  """
  return pltpu.InterpretParams(uninitialized_memory="nan", detect_races=detect_races)
