"""The memory estimate against XLA's own count of the program it compiles.

:func:`research.memory.estimate` sizes a config's largest program before
anything is built; :func:`compare` compiles that very program (the engine's
training chunk and evaluation, lowered as :mod:`research.programs` lowers
them, sharded over the same devices, nothing trained) and reads XLA's
``memory_analysis()`` beside the estimate's :attr:`~research.memory.Estimate.program`.

What both count, per device, is what one device holds while the larger of the
two programs runs: its arguments (the device's share of the runs' state and
inputs, and the whole data, also the arrays ``jax.jit`` leaves out of a
program that does not read them, as they stay on the device), its outputs
(the new state) and its temporaries, less what outputs share with arguments.
XLA's runtime, the compilation and the host's copies are not in it (the
estimate's total adds them on a CPU).

Examples:
  >>> from research import data
  >>> from research.config import Config
  >>> config = Config(dataset="xor", width=8, activations=("relu",), seeds=2, steps=10,
  ...                 eval_every=10)
  >>> found = compare(config, data.load("xor(num_train=100, num_test=100)"))
  >>> 0.8 <= found.ratio <= 1.25
  True
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from research import devices, grid, memory, memory_trace, precompile, programs, train
from research.config import Config
from research.data import Dataset


class Measured(NamedTuple):
  """XLA's ``memory_analysis()`` of one compiled program, per device, in bytes."""

  arguments: int  # what the program reads (argument_size_in_bytes)
  unread: int  # arrays passed but left out by jax.jit: on the device all the same
  outputs: int
  temporaries: int
  aliased: int  # outputs that reuse an argument's buffer

  @property
  def total(self) -> int:
    """What the device holds while the program runs."""
    return self.arguments + self.unread + self.outputs + self.temporaries - self.aliased


class Comparison(NamedTuple):
  """The estimate of one device's largest program beside XLA's count of each program."""

  estimate: memory.Estimate
  measured: dict[str, Measured]  # by program: train_chunk, evaluate

  @property
  def largest(self) -> str:
    """The program that holds most."""
    return max(self.measured, key=lambda name: self.measured[name].total)

  @property
  def ratio(self) -> float:
    """The estimate over XLA's count of the larger program (1: exact)."""
    return self.estimate.program / self.measured[self.largest].total


def _device_bytes(tree: Any) -> int:
  """Bytes of ``tree`` on one device: a runs-sharded leaf's share, a replicated leaf whole."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    shape = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
    total += memory_trace.nbytes([jax.ShapeDtypeStruct(shape, leaf.dtype)])
  return total


def _measured(compiled: jax.stages.Compiled, passed: int) -> Measured:
  analysis = compiled.memory_analysis()
  return Measured(
      arguments=int(analysis.argument_size_in_bytes),
      unread=max(0, passed - int(analysis.argument_size_in_bytes)),
      outputs=int(analysis.output_size_in_bytes),
      temporaries=int(analysis.temp_size_in_bytes),
      aliased=int(analysis.alias_size_in_bytes),
  )


def compile_largest(config: Config, dataset: Dataset) -> dict[str, Measured]:
  """XLA's count of the training chunk and the evaluation of ``config``'s largest program.

  The program holding the most runs: every grid's under ``batching="map"``
  (one program), the largest grid under ``"vmap"``. Compiled on this
  process's devices, as the engine would, with the state abstract: nothing
  is initialised or trained.
  """
  grids = tuple(grid.expand(config))
  if not programs.grids_share_a_program(config):
    grids = (max(grids, key=lambda g: len(g.runs)),)
  runs = [run for g in grids for run in g.runs]
  mesh = devices.runs_mesh()
  program = train.Program.of(config, dataset, grids)
  compiled = programs.compile_grid(program, mesh)
  inputs = programs.sharded_inputs(runs, grids, mesh)
  replicated = devices.replicated_sharding(mesh)
  data = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
                      jax.eval_shape(lambda: train.device_arrays(dataset)))
  state = precompile.abstract_state(program, mesh, inputs)
  step = jnp.asarray(0)
  passed = _device_bytes((state, inputs, data)) + step.nbytes
  chunk = min(config.eval_every, program.config.steps)
  lowered = {"train_chunk": compiled.train_chunk.lower(state, inputs, data, step, chunk),
             "evaluate": compiled.evaluate.lower(state, inputs, data, step)}
  # Side by side, as the engine compiles them (research.precompile): XLA:CPU
  # compiles one program on one core.
  with concurrent.futures.ThreadPoolExecutor(max_workers=len(lowered)) as pool:
    futures = {name: pool.submit(program.compile) for name, program in lowered.items()}
    return {name: _measured(future.result(), passed) for name, future in futures.items()}


def compare(config: Config, dataset: Dataset) -> Comparison:
  """The estimate of ``config``'s largest program beside XLA's count of it, per device.

  Compiles two programs: seconds for an MLP, a minute for a ResNet-20 on a CPU.
  """
  estimate = memory.estimate(config, dataset)
  return Comparison(estimate, compile_largest(config, dataset))


def record(comparison: Comparison) -> dict[str, Any]:
  """A comparison as JSON-ready numbers (MiB), for the bench."""
  mib = lambda size: round(size / 2**20, 3)  # noqa: E731
  found = comparison.estimate
  return {
      "runs": found.runs,
      "runs_per_device": found.runs_per_device,
      "parameters": found.parameters,
      "estimate_mib": mib(found.program),
      "measured_mib": mib(comparison.measured[comparison.largest].total),
      "largest": comparison.largest,
      "ratio": round(comparison.ratio, 3),
      "programs": {name: {field: mib(value) for field, value in measured._asdict().items()}
                   for name, measured in comparison.measured.items()},
  }


def within(ratio: float, tolerance: float = 0.25) -> bool:
  """Whether an estimate/measured ratio is within ``tolerance``: 0.8 to 1.25 for 25%.

  Examples:
    >>> within(0.81), within(1.25), within(0.79)
    (True, True, False)
  """
  return 1 / (1 + tolerance) <= ratio <= 1 + tolerance

