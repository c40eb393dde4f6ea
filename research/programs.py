"""A grid's runs as compiled programs on the devices, and the loop that trains them.

:func:`compile_grid` turns the per-run functions of :mod:`research.train`
(initialise, a chunk of steps, evaluate) into programs over a leading "runs"
axis sharded over the devices; :func:`train_grids` trains the runs of one or
several grids with them, chunk after chunk, and turns each evaluation into the
rows of ``history.csv`` and ``layers.csv``.

The runs axis is sharded over the devices. Each device trains its share of the
runs either one after another inside the program (``batching="map"``,
``jax.lax.map``: every run is computed exactly as if trained alone) or batched
(``"vmap"``). Under ``map`` the grids of one config share one program, each
run's activation a ``lax.switch`` (:func:`research.train.bound_activation`).

How the programs are compiled ahead and the runs initialised, for XLA:CPU's
sake, is :mod:`research.precompile`'s business.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from research import devices, metrics, observe, precompile
from research.checkpoints import Checkpoints, ProgramCheckpoints
from research.config import Config
from research.data import Dataset
from research.grid import Grid, Run
from research.train import (
    Program, RunInputs, RunState, device_arrays, evaluate, model_builder, train_chunk,
)


def _over_runs(program: Program, per_run: Callable[..., Any]) -> Callable[..., Any]:
  """``per_run(state, inputs, *shared)`` over a device's runs: ``lax.map`` or ``vmap``."""
  if program.config.batching == "vmap":
    return lambda state, inputs, *shared: jax.vmap(
        lambda s, i: per_run(s, i, *shared))(state, inputs)
  return lambda state, inputs, *shared: jax.lax.map(
      lambda both: per_run(both[0], both[1], *shared), (state, inputs))


class GridPrograms(NamedTuple):
  """A grid's compiled pieces, each over the (sharded) runs axis."""

  init: Callable[[RunInputs], RunState]
  train_chunk: Callable[..., tuple[RunState, Array]]
  evaluate: Callable[..., tuple[RunState, dict[str, Array], dict[str, Array]]]


@functools.lru_cache(maxsize=32)
def compile_grid(program: Program, mesh: Mesh) -> GridPrograms:
  """The grid's init, training chunk and evaluation, sharded over ``mesh``.

  Every array with a runs axis is split over the mesh, the data and step
  counters replicated. Cached on what determines the computation only
  (:class:`Program`, the mesh), so a resumed sweep, runs one by one and other
  seeds or rates reuse the compiled programs; the init is shared by every
  program that differs only in the activation.
  """

  def chunk(state, inputs, data, first_step, num_steps):
    return train_chunk(program, data, inputs, state, first_step, num_steps)

  def assess(state, inputs, data, step):
    return evaluate(program, data, inputs, state, step)

  def sharded(per_run: Callable[..., Any], num_shared: int) -> Callable[..., Any]:
    return jax.shard_map(
        _over_runs(program, per_run), mesh=mesh,
        in_specs=(P("runs"), P("runs"), *[P()] * num_shared), out_specs=P("runs"),
    )

  return GridPrograms(
      init=precompile.init_runs(program, mesh),
      train_chunk=jax.jit(
          lambda state, inputs, data, first_step, num_steps: sharded(
              lambda s, i, d, f: chunk(s, i, d, f, num_steps), 2)(state, inputs, data, first_step),
          static_argnums=4,
      ),
      evaluate=jax.jit(sharded(assess, 2)),
  )


def clear_compiled() -> None:
  """Forgets every compiled program, so the next grid compiles as in a fresh process."""
  compile_grid.cache_clear()
  precompile.forget()
  jax.clear_caches()


def run_inputs(runs: Sequence[Run], grids: Grid | Sequence[Grid]) -> RunInputs:
  """The runs axis of a program: keys from seeds, rates, branches, hyperparameter arrays.

  Each run's ``branch`` is the index of its grid in ``grids``. A branch's
  hyperparameter arrays hold its own runs' values, and its first run's value
  for the runs of other branches, which never use it.
  """
  grids = (grids,) if isinstance(grids, Grid) else tuple(grids)
  index = {grid.spec: number for number, grid in enumerate(grids)}
  unknown = sorted({run.grid for run in runs} - set(index))
  if unknown:
    raise ValueError(f"Runs of {unknown} are not in the grids {sorted(index)}.")

  def values(grid: Grid, name: str) -> np.ndarray:
    default = dict(grid.runs[0].hyperparameters)[name]
    return np.array(
        [dict(run.hyperparameters)[name] if run.grid == grid.spec else default for run in runs],
        np.float32,
    )

  init_key, data_key, noise_key = _seed_keys(np.array([run.seed for run in runs], np.uint32))
  return RunInputs(
      init_key=init_key,
      data_key=data_key,
      noise_key=noise_key,
      learning_rate=np.array([run.learning_rate for run in runs], np.float32),
      branch=np.array([index[run.grid] for run in runs], np.int32),
      hyperparameters=tuple({name: values(grid, name) for name in grid.swept} for grid in grids),
  )


def sharded_inputs(runs: Sequence[Run], grids: Grid | Sequence[Grid], mesh: Mesh) -> RunInputs:
  """:func:`run_inputs` split over ``mesh``, the runs padded to a multiple of its devices.

  The padding repeats the last run; its results are dropped.
  """
  runs = list(runs)
  padded = runs + runs[-1:] * (devices.padded_size(len(runs), mesh.size) - len(runs))
  return devices.shard_runs(run_inputs(padded, grids), mesh)


@jax.jit
def _seed_keys(seeds: Array) -> tuple[Array, Array, Array]:
  """Each seed's initialisation key ``fold_in(key(seed), 0)``, data key (``1``), noise key (``2``).

  The noise key draws augmentation and dropout: from the seed alone, so runs
  of one seed see the same augmented batches and dropout masks whatever their
  activation.
  """
  base = jax.vmap(jax.random.key)(seeds)
  return tuple(jax.vmap(lambda k: jax.random.fold_in(k, number))(base) for number in range(3))


def shortest(value: Any) -> float:
  """A float32 metric as the shortest decimal that reads back to it (``0.602``).

  Examples:
    >>> shortest(np.float32(0.602))
    0.602
  """
  return float(str(np.float32(value)))


def run_keys(run: Run) -> dict[str, Any]:
  """The columns that say which run a row belongs to; every CSV starts with them."""
  return {
      "run_id": run.run_id,
      "activation": run.activation,
      "name": run.name,
      "grid": run.grid,
      "seed": run.seed,
      "learning_rate": run.learning_rate,
      **dict(run.hyperparameters),
  }


class GridResult(NamedTuple):
  """Per run: final metrics, every evaluation, every layer; and the grid's timing."""

  runs: list[dict[str, Any]]  # runs.csv rows
  history: list[dict[str, Any]]  # history.csv rows: run metrics per evaluation
  layers: list[dict[str, Any]]  # layers.csv rows: layer metrics per evaluation and layer
  timing: dict[str, Any]  # grids.csv row: what is per trained program (devices, seconds)


class _Recorder:
  """Turns each evaluation into history and layer rows, and keeps the last healthy one."""

  def __init__(self, runs: Sequence[Run]):
    self.runs = list(runs)
    self.keys = [run_keys(run) for run in self.runs]
    self.history: list[dict[str, Any]] = []
    self.layers: list[dict[str, Any]] = []
    self.last_healthy: list[dict[str, Any] | None] = [None] * len(self.runs)

  def record(self, step: int, run_values: dict, layer_values: dict, diverged: Array) -> None:
    run_values, layer_values, diverged = devices.to_host((run_values, layer_values, diverged))
    for index, keys in enumerate(self.keys):
      row = {
          **keys, "step": step, "diverged": bool(diverged[index]),
          **{name: shortest(run_values[name][index]) for name in metrics.RUN_METRICS if name in run_values},
      }
      self.history.append(row)
      if not row["diverged"]:
        self.last_healthy[index] = row
      num_layers = next(iter(layer_values.values())).shape[1]
      for layer in range(num_layers):
        self.layers.append({
            **keys, "step": step, "layer": layer + 1,
            **{name: _finite_or_none(layer_values[name][index, layer])
               for name in metrics.LAYER_METRICS if name in layer_values},
        })

  def saved(self, training_seconds: float) -> dict[str, Any]:
    """The rows so far, JSON-ready, for a checkpoint (:meth:`restore` reads them back)."""
    position = {id(row): index for index, row in enumerate(self.history)}
    return {"history": self.history, "layers": self.layers, "training_seconds": training_seconds,
            "last_healthy": [None if row is None else position[id(row)]
                             for row in self.last_healthy]}

  def restore(self, saved: dict[str, Any]) -> float:
    """Takes back the rows of :meth:`saved`; returns its training seconds."""
    self.history, self.layers = list(saved["history"]), list(saved["layers"])
    self.last_healthy = [None if index is None else self.history[index]
                         for index in saved["last_healthy"]]
    return float(saved["training_seconds"])


def _finite_or_none(value: Any) -> float | None:
  """NaN marks "not measured" (the output layer's activation): an empty field."""
  return None if np.isnan(value) else shortest(value)


@functools.lru_cache(maxsize=64)
def parameter_count(program: Program) -> int:
  """How many numbers each run of ``program`` trains: ``runs.csv``'s ``parameters``."""
  return observe.parameter_count(model_builder(program), _identity)


def _identity(z: Array) -> Array:
  return z


def grids_share_a_program(config: Config) -> bool:
  """Whether ``config``'s grids train as one program: yes under ``batching="map"``.

  Under ``"vmap"`` a switch on a batched branch computes every activation, so
  each grid is better trained on its own.
  """
  return devices.resolved_batching(config.batching) == "map"


def train_grid(
    config: Config,
    dataset: Dataset,
    grid: Grid,
    runs: Sequence[Run] | None = None,
    *,
    on_chunk: Callable[[int, float], None] | None = None,
) -> GridResult:
  """Trains ``runs`` (default: all of the grid's) together and measures them.

  Args:
    config: the comparison's configuration.
    dataset: the data, as loaded by :func:`research.data.load`.
    grid: the grid the runs belong to (they share its activation function).
    runs: a subset of ``grid.runs`` (e.g. those a resumed sweep still needs).
    on_chunk: called after each chunk of steps with the number of steps done
      and the mean training loss of the healthy runs over the chunk.

  Returns:
    The rows of ``runs.csv``, ``history.csv``, ``layers.csv`` for these runs, as
    plain Python values, and the grid's row of ``grids.csv``.
  """
  return train_grids(config, dataset, [(grid, grid.runs if runs is None else runs)],
                     on_chunk=on_chunk)


def train_grids(
    config: Config,
    dataset: Dataset,
    grids_and_runs: Sequence[tuple[Grid, Sequence[Run]]],
    *,
    on_chunk: Callable[[int, float], None] | None = None,
    checkpoints: Checkpoints | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> GridResult:
  """Trains the runs of several grids of ``config`` as one program.

  Each run computes its own grid's activation (a ``lax.switch``, see
  :func:`research.train.bound_activation`). Under ``batching="map"`` every
  run's numbers are those of :func:`train_grid` on its grid alone, bit for
  bit, while the grids share one compiled training chunk and one evaluation;
  under ``"vmap"`` see :func:`grids_share_a_program`.

  Args:
    config: the comparison's configuration.
    dataset: the data, as loaded by :func:`research.data.load`.
    grids_and_runs: each grid with the runs of it to train (all, or those a
      resumed sweep still needs); grids without runs are left out.
    on_chunk: as for :func:`train_grid`.
    checkpoints: where to save the program's state as it trains (see
      :mod:`research.checkpoints`) and resume it from; the caller deletes them
      (:meth:`~research.checkpoints.Checkpoints.finished`) once the rows are
      written. None: no checkpoints.
    on_resume: called with the step the program resumes at, if it resumes
      from a checkpoint: the steps before it are not trained (nor reported to
      ``on_chunk``).

  Returns:
    The rows of every run, in the order given, and one ``grids.csv`` row for
    the program: its ``grid`` names the grids joined by `` + ``.
  """
  pairs = [(grid, list(runs)) for grid, runs in grids_and_runs if runs]
  if not pairs:
    raise ValueError("train_grids needs at least one grid with runs to train.")
  grids = [grid for grid, _ in pairs]
  runs = [run for _, grid_runs in pairs for run in grid_runs]
  started = time.perf_counter()
  mesh = devices.runs_mesh()
  program = Program.of(config, dataset, grids)
  saver = None if checkpoints is None else checkpoints.program([run.run_id for run in runs])
  try:
    state, recorder, training_seconds = _train(
        program, mesh, dataset, grids, runs, config.eval_every, on_chunk, saver, on_resume)
  finally:
    if saver is not None:
      saver.close()
  rows = _final_rows(program, runs, recorder, state)
  timing = _grids_row(program, mesh, grids, len(runs), time.perf_counter() - started,
                      training_seconds)
  # Rows grid by grid, as if each grid had trained alone (the runs' order within each).
  grid_of = {run.run_id: number for number, (_, grid_runs) in enumerate(pairs) for run in grid_runs}
  by_grid = lambda row: grid_of[row["run_id"]]  # noqa: E731
  return GridResult(rows, sorted(recorder.history, key=by_grid),
                    sorted(recorder.layers, key=by_grid), timing)


def _grids_row(program: Program, mesh: Mesh, grids: Sequence[Grid], runs: int,
               seconds: float, training_seconds: float) -> dict[str, Any]:
  """The program's ``grids.csv`` row: what it trained, where, and how fast."""
  return {
      "grid": " + ".join(grid.spec for grid in grids),
      "runs": runs,
      "devices": mesh.size,
      "platform": mesh.devices.flat[0].platform,
      "batching": program.config.batching,
      "steps": program.config.steps,
      "seconds": round(seconds, 3),
      "examples_per_second_per_run": round(
          program.config.steps * program.config.batch_size / max(training_seconds, 1e-9), 1),
  }


def _train(
    program: Program, mesh: Mesh, dataset: Dataset, grids: Sequence[Grid], runs: Sequence[Run],
    eval_every: int, on_chunk: Callable[[int, float], None] | None,
    saver: ProgramCheckpoints | None = None, on_resume: Callable[[int], None] | None = None,
) -> tuple[RunState, _Recorder, float]:
  """Trains ``runs`` chunk by chunk, evaluating before the first and after each.

  With ``saver``, starts from the program's latest checkpoint if it has one
  (training only the steps after it) and saves one after the evaluations the
  saver's schedule asks for.

  Returns the final state, the evaluations' rows and the seconds spent in
  the training chunks alone.
  """
  programs = compile_grid(program, mesh)
  inputs = sharded_inputs(runs, grids, mesh)
  data = devices.replicate(device_arrays(dataset), mesh)
  precompile.compile_ahead(
      program, mesh, inputs, data, min(eval_every, program.config.steps),
      evaluate=programs.evaluate, train_chunk=programs.train_chunk)
  state = programs.init(inputs)
  recorder = _Recorder(runs)
  step, training_seconds = 0, 0.0
  resumed = None if saver is None else saver.restore(state)
  if resumed is None:
    state, run_values, layer_values = programs.evaluate(state, inputs, data, jnp.asarray(0))
    recorder.record(0, run_values, layer_values, state.diverged)
  else:
    step, state = resumed.step, resumed.state
    training_seconds = recorder.restore(resumed.record)
    if on_resume is not None:
      on_resume(step)
  while step < program.config.steps:
    chunk = min(eval_every, program.config.steps - step)
    chunk_started = time.perf_counter()
    state, losses = programs.train_chunk(state, inputs, data, jnp.asarray(step), chunk)
    jax.block_until_ready(losses)
    training_seconds += time.perf_counter() - chunk_started
    step += chunk
    state, run_values, layer_values = programs.evaluate(state, inputs, data, jnp.asarray(step))
    recorder.record(step, run_values, layer_values, state.diverged)
    if saver is not None and saver.due(step, eval_every, program.config.steps):
      saver.save(step, state, recorder.saved(training_seconds))
    if on_chunk is not None:
      on_chunk(chunk, _mean_healthy_loss(losses, len(runs)))
  return state, recorder, training_seconds


def _mean_healthy_loss(losses: Array, count: int) -> float:
  """The mean training loss over a chunk of the runs that have not diverged (NaN if none)."""
  healthy = np.asarray(devices.to_host(losses))[:count]
  return float(np.nanmean(healthy)) if np.isfinite(healthy).any() else float("nan")


def _final_rows(
    program: Program, runs: Sequence[Run], recorder: _Recorder, state: RunState
) -> list[dict[str, Any]]:
  """The ``runs.csv`` rows: each run's last healthy evaluation and whether it diverged."""
  diverged_step = devices.to_host(state.diverged_step)
  parameters = parameter_count(program)
  rows = []
  for index, (run, last) in enumerate(zip(runs, recorder.last_healthy)):
    diverged = bool(recorder.history[-len(runs) + index]["diverged"])
    final = {name: (last or {}).get(name) for name in metrics.RUN_METRICS}
    rows.append({
        **run_keys(run),
        "diverged": diverged,
        "diverged_step": int(diverged_step[index]) if diverged else None,
        "metrics_step": last["step"] if last else None,
        "parameters": parameters,
        **final,
    })
  return rows
