"""Compiling a grid's programs side by side, and initialising its runs one at a time.

Two workarounds for XLA:CPU's compile times, kept apart so that
:mod:`research.programs` reads as a training loop:

* XLA:CPU compiles one program at a time, on one core, and a grid needs three
  (its initialisation, a chunk of training steps, an evaluation).
  :func:`compile_ahead` lowers the three one after another (tracing holds
  Python's lock) and hands each to a small thread pool as soon as it is
  lowered, so their XLA compilations overlap. The compiled programs land in
  the same caches as a first call's, so training then starts at once.
* The random initialisers compile several times faster for one run than over
  a runs axis, and initialisation runs once per grid: :func:`init_runs`
  initialises each run alone with one compiled program and stacks the states.

Neither changes what is computed: the compiled programs are those a first
call would compile, and each run's initial state comes from its own key alone.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import Mesh

from research import devices
from research.train import Arrays, Branch, Program, RunInputs, RunState, init_run


def _init_program(program: Program) -> Program:
  """``program`` without what initialisation ignores (the activation, batching...).

  A run's initial weights and optimizer state do not depend on its
  activation, so every grid of a comparison shares one compiled init.
  """
  config = dataclasses.replace(program.config, batching="map", divergence_factor=0.0)
  return dataclasses.replace(program, config=config, branches=(Branch("identity"),), task="")


@functools.lru_cache(maxsize=32)
def _init_one(program: Program) -> Callable[[RunInputs], RunState]:
  """One run's :func:`research.train.init_run`, jitted, for an :func:`_init_program`."""
  return jax.jit(functools.partial(init_run, program))


def _without_hyperparameters(inputs: RunInputs) -> RunInputs:
  """What an :func:`_init_program` takes, on the host: one branch, no hyperparameters.

  On the host (random keys on the default device), so that picking one run's
  inputs is not an op-by-op gather across the mesh: on XLA:CPU such an
  all-gather between two devices could wait forever for the second device
  (seen on a busy 2-core machine: the rendezvous never completed).
  """
  inputs = inputs._replace(branch=jnp.zeros_like(inputs.branch), hyperparameters=({},))
  return jax.tree.map(_to_host, inputs)


def _to_host(leaf: Array) -> Any:
  return devices.key_or_array_to_host(leaf)  # gathered from every process of a job


def init_runs(program: Program, mesh: Mesh) -> Callable[[RunInputs], RunState]:
  """``init(inputs)``: every run's initial state, one run at a time, stacked over ``mesh``."""
  init_one = _init_one(_init_program(program))

  def init(inputs: RunInputs) -> RunState:
    inputs = _without_hyperparameters(inputs)
    count = inputs.learning_rate.shape[0]
    states = [init_one(jax.tree.map(lambda a: a[i], inputs)) for i in range(count)]
    return devices.shard_runs(jax.tree.map(_stack, *states), mesh)

  return init


def _stack(*leaves: Array) -> Any:
  """One leaf per run stacked on a new runs axis.

  On the host, a copy bit for bit without a compiled stack per leaf shape;
  random keys (Dropout's streams) have no NumPy dtype and stack in JAX.
  """
  if devices.is_random_key(leaves[0]):
    return jnp.stack(leaves)
  return np.stack(jax.device_get(leaves))


def _one_run(inputs: RunInputs) -> RunInputs:
  """The first run's inputs, without the hyperparameters its initialisation does not read."""
  return jax.tree.map(lambda a: a[0], _without_hyperparameters(inputs))


def abstract_state(program: Program, mesh: Mesh, inputs: RunInputs) -> RunState:
  """Every run's initial state as shapes and dtypes, sharded over ``mesh`` by runs; nothing computed.

  What :func:`init_runs` would return, for lowering the grid's programs
  before any state exists.
  """
  shapes = jax.eval_shape(_init_one(_init_program(program)), _one_run(inputs))
  count = inputs.learning_rate.shape[0]
  runs = devices.runs_sharding(mesh)
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct((count, *s.shape), s.dtype, sharding=runs), shapes)


# (program, mesh, run count, chunk length) of every grid compiled ahead so far.
_COMPILED: set[tuple[Any, ...]] = set()


def compile_ahead(
    program: Program, mesh: Mesh, inputs: RunInputs, data: Arrays, chunk: int, *,
    evaluate: jax.stages.Wrapped, train_chunk: jax.stages.Wrapped,
) -> None:
  """Compiles the grid's init, ``train_chunk`` and ``evaluate`` at once, in threads.

  ``evaluate`` and ``train_chunk`` are the grid's jitted programs
  (:func:`research.programs.compile_grid`); ``chunk`` is the number of steps
  per call of ``train_chunk``. Done once per program, mesh, run count and
  chunk length; each later call returns at once.
  """
  count = inputs.learning_rate.shape[0]
  key = (program, mesh, count, chunk)
  if key in _COMPILED:
    return
  state = abstract_state(program, mesh, inputs)
  one_run = _one_run(inputs)
  init_one = _init_one(_init_program(program))  # cached: the function abstract_state traced
  step = jnp.asarray(0)
  # Each compiles as soon as it is lowered, while the next one is traced (in
  # Python, on one core): the init, quick to trace, first; then the longest.
  lowerings = [
      lambda: init_one.lower(one_run),
      lambda: evaluate.lower(state, inputs, data, step),
      lambda: train_chunk.lower(state, inputs, data, step, chunk),
  ]
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(3, devices.cpu_cores()))
  try:
    futures = [pool.submit(lower().compile) for lower in lowerings]
    for future in futures:
      future.result()
  except BaseException:
    # Ctrl-C (or a failed compilation): return now, not when the other
    # compilations end; XLA cannot stop them, they finish unseen.
    pool.shutdown(wait=False, cancel_futures=True)
    raise
  pool.shutdown()
  _COMPILED.add(key)


def forget() -> None:
  """Forgets what was compiled ahead (see :func:`research.programs.clear_compiled`)."""
  _init_one.cache_clear()
  _COMPILED.clear()
