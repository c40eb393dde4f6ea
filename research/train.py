"""Training a grid of runs as one compiled program.

Read top to bottom, as a Flax example: the optimizer; what a run carries; build
a run (:func:`init_run`); one optimizer step (:func:`train_step`) and a chunk of
them (:func:`train_chunk`); evaluate and probe a run on the whole data
(:func:`evaluate`); then :func:`compile_grid`, which turns these per-run
functions into programs over a grid's leading "runs" axis, and
:func:`train_grid`, the loop over evaluation chunks.

Each run draws its initial weights from ``key(seed)`` and its mini-batches
(with replacement) from ``fold_in(key(seed), step)``, so runs with the same
seed share their initialisation and data order across activations and learning
rates: comparisons are paired.

Several grids of one config (relu, leaky_relu and necro_relu, say) can train
as one program (:func:`train_grids`): the activation is a ``lax.switch`` over
the grids' activations on each run's ``branch``. Under ``batching="map"`` a
switch runs only the run's own branch, and each run's numbers are the same, bit
for bit, as in its own grid's program; so a comparison compiles one training
program and one evaluation instead of one of each per activation.

The runs axis is sharded over the devices. Each device trains its share of the
runs either one after another inside the program (``batching="map"``,
``jax.lax.map``: every run is computed exactly as if trained alone, so its
numbers do not depend on the grid or the device count) or batched
(``"vmap"``: what fills a GPU or TPU, rounding differently from a single run).

A run whose loss becomes non-finite, or whose training loss at an evaluation
exceeds ``divergence_factor`` times its initial loss, is marked diverged and
frozen: its parameters stop changing, the other runs go on. Its final row
holds the metrics of its last evaluation before it diverged.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import activations
from research import devices, metrics, models
from research.config import Config
from research.data import Dataset
from research.grid import Grid, Run

EVAL_BATCH = 1000  # examples per evaluation batch, to bound memory per run


@dataclasses.dataclass(frozen=True)
class Branch:
  """One activation of a program: a registry name and how its hyperparameters travel."""

  name: str  # registry name
  static: tuple[tuple[str, Any], ...] = ()  # non-float hyperparameters, fixed at trace time
  swept: tuple[str, ...] = ()  # float hyperparameters, arrays on the runs axis

  @classmethod
  def of(cls, grid: Grid) -> Branch:
    """The branch that computes ``grid``'s activation."""
    return cls(grid.name, grid.static, grid.swept)


@dataclasses.dataclass(frozen=True)
class Program:
  """Everything that determines a grid's compiled programs, and nothing else.

  Seeds, learning rates and swept hyperparameters are arrays on the runs axis,
  and the data are arguments, so neither is here: grids that differ only in
  them share their programs.
  """

  model: str
  width: int
  depth: int
  residual: bool
  init: str
  bias_init: float
  input_shape: tuple[int, ...]
  num_outputs: int
  task: str
  optimizer: str
  schedule: str
  momentum: float
  weight_decay: float
  steps: int
  batch_size: int
  divergence_factor: float
  branches: tuple[Branch, ...]  # the activations; each run picks one by its ``branch``
  batching: str  # "map" or "vmap"

  @classmethod
  def of(cls, config: Config, dataset: Dataset, grids: Grid | Sequence[Grid]) -> Program:
    """The program of ``grids`` (one or several) under ``config`` for ``dataset``'s shapes."""
    grids = (grids,) if isinstance(grids, Grid) else tuple(grids)
    return cls(
        model=config.model, width=config.width, depth=config.depth,
        residual=config.residual, init=config.init, bias_init=config.bias_init,
        input_shape=dataset.input_shape, num_outputs=dataset.num_outputs,
        task=dataset.task, optimizer=config.optimizer, schedule=config.schedule,
        momentum=config.momentum, weight_decay=config.weight_decay,
        steps=config.steps, batch_size=config.batch_size,
        divergence_factor=config.divergence_factor,
        branches=tuple(Branch.of(grid) for grid in grids),
        batching=devices.resolved_batching(config.batching),
    )


def make_optimizer(program: Program | Config, learning_rate: Array) -> optax.GradientTransformation:
  """The Optax optimizer for one run; ``learning_rate`` may be a traced array.

  The schedule is built with peak 1 and scaled by the run's learning rate, so
  that a traced rate never reaches Optax's schedule code.

  Examples:
    >>> tx = make_optimizer(Config(optimizer="sgd"), jnp.asarray(0.1))
    >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))
    >>> updates["w"]
    Array([-0.1, -0.1], dtype=float32)
  """
  if program.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(1.0, program.steps)
  elif program.schedule == "warmup_cosine":
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, 1.0, max(1, program.steps // 20), program.steps
    )
  else:
    schedule = 1.0
  if program.optimizer == "sgd":
    base = optax.sgd(schedule)
  elif program.optimizer == "momentum":
    base = optax.sgd(schedule, momentum=program.momentum)
  elif program.optimizer == "adamw":
    base = optax.adamw(schedule, weight_decay=program.weight_decay)
  else:
    base = optax.adam(schedule)
  return optax.chain(base, optax.scale(learning_rate))


class RunInputs(NamedTuple):
  """What distinguishes the runs of a grid; each leaf has a leading runs axis."""

  init_key: Array
  data_key: Array
  learning_rate: Array
  branch: Array  # int32: which of the program's activations the run uses
  hyperparameters: tuple[dict[str, Array], ...]  # per branch, its swept hyperparameters


class RunState(NamedTuple):
  """Everything a run carries from one chunk of steps to the next."""

  params: nnx.State
  opt_state: optax.OptState
  ever_inactive: tuple[Array, ...]  # per hidden layer: units inactive at any evaluation so far
  diverged: Array  # bool
  diverged_step: Array  # int32, -1 while the run is healthy
  initial_loss: Array  # the training loss at step 0


class Arrays(NamedTuple):
  """The dataset on the devices, replicated: for sampling and in evaluation batches."""

  x_train: Array
  y_train: Array
  train_batches: tuple[Array, Array, Array]  # inputs, targets, weights (0 for padding)
  test_batches: tuple[Array, Array, Array]


def _in_batches(x: np.ndarray, y: np.ndarray) -> tuple[Array, Array, Array]:
  """``x`` and ``y`` cut into equal batches, the last padded with weight 0."""
  count = x.shape[0]
  size = min(EVAL_BATCH, count)
  batches = -(-count // size)
  padding = batches * size - count

  def cut(a: np.ndarray) -> Array:
    a = np.concatenate([a, np.zeros((padding, *a.shape[1:]), a.dtype)])
    return jnp.asarray(a.reshape(batches, size, *a.shape[1:]))

  return cut(x), cut(y), cut(np.ones(count, np.float32))


def device_arrays(dataset: Dataset) -> Arrays:
  """The dataset as JAX arrays, for sampling and cut into evaluation batches."""
  return Arrays(
      jnp.asarray(dataset.x_train),
      jnp.asarray(dataset.y_train),
      _in_batches(dataset.x_train, dataset.y_train),
      _in_batches(dataset.x_test, dataset.y_test),
  )


# --- one run ------------------------------------------------------------------


def bound_activation(program: Program, inputs: RunInputs) -> Callable[[Array], Array]:
  """The run's activation ``f(z)``, its hyperparameters (maybe traced) bound.

  With several branches, a ``lax.switch`` on the run's ``branch``: under
  ``lax.map`` it computes the run's own activation only.
  """
  functions = [
      functools.partial(activations.get(branch.name), **dict(branch.static), **values)
      for branch, values in zip(program.branches, inputs.hyperparameters, strict=True)
  ]
  if len(functions) == 1:
    return functions[0]
  return lambda z: jax.lax.switch(inputs.branch, functions, z)


def build_model(program: Program, activation: Callable[[Array], Array], key: Array) -> models.Model:
  """A freshly initialised model of the program's architecture."""
  return models.build(
      program.model, program.input_shape, program.num_outputs,
      width=program.width, depth=program.depth, activation=activation,
      residual=program.residual, init=program.init, bias_init=program.bias_init,
      rngs=nnx.Rngs(params=key),
  )


def _model(program: Program, inputs: RunInputs, params: nnx.State) -> models.Model:
  """The run's model with ``params``, its activation bound to the run's values."""
  activation = bound_activation(program, inputs)
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: build_model(program, activation, jax.random.key(0))))
  return nnx.merge(graphdef, params)


def init_run(program: Program, inputs: RunInputs) -> RunState:
  """A run's state before its first step."""
  model = build_model(program, bound_activation(program, inputs), inputs.init_key)
  params = nnx.state(model, nnx.Param)
  opt_state = make_optimizer(program, inputs.learning_rate).init(params)
  ever_inactive = tuple(jnp.zeros(layer.kernel.shape[-1], bool) for layer in model.hidden)
  return RunState(
      params, opt_state, ever_inactive, jnp.array(False), jnp.array(-1, jnp.int32),
      jnp.array(jnp.inf, jnp.float32),
  )


def _where(condition: Array, if_true: Any, if_false: Any) -> Any:
  return jax.tree.map(lambda a, b: jnp.where(condition, a, b), if_true, if_false)


def batch_indices(program: Program, data: Arrays, inputs: RunInputs, step: Array) -> Array:
  """The training examples of the run's mini-batch at ``step``, drawn with replacement."""
  key = jax.random.fold_in(inputs.data_key, step)
  return jax.random.randint(key, (program.batch_size,), 0, data.x_train.shape[0])


def train_step(
    program: Program, data: Arrays, inputs: RunInputs, state: RunState,
    step_and_indices: tuple[Array, Array],
) -> tuple[RunState, Array]:
  """One optimizer step on a mini-batch; a run whose loss turns non-finite freezes."""
  step, indices = step_and_indices

  def batch_loss(params: nnx.State) -> Array:
    outputs = _model(program, inputs, params)(data.x_train[indices])
    return metrics.loss(outputs, data.y_train[indices], program.task)

  loss, grads = jax.value_and_grad(batch_loss)(state.params)
  optimizer = make_optimizer(program, inputs.learning_rate)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  diverges = ~state.diverged & ~jnp.isfinite(loss)
  frozen = state.diverged | diverges
  state = state._replace(
      params=_where(frozen, state.params, params),
      opt_state=_where(frozen, state.opt_state, opt_state),
      diverged=frozen,
      diverged_step=jnp.where(diverges, step, state.diverged_step),
  )
  return state, jnp.where(frozen, jnp.nan, loss)


def train_chunk(
    program: Program, data: Arrays, inputs: RunInputs, state: RunState, first_step: Array,
    num_steps: int,
) -> tuple[RunState, Array]:
  """``num_steps`` steps in a ``lax.scan``; returns the state and each step's loss.

  The chunk's mini-batch indices are drawn up front, for every step at once:
  the same integers as one step at a time, with a few large random-number
  computations instead of many small ones.
  """
  steps = first_step + jnp.arange(num_steps)
  indices = jax.vmap(lambda step: batch_indices(program, data, inputs, step))(steps)
  step = functools.partial(train_step, program, data, inputs)
  return jax.lax.scan(step, state, (steps, indices))


def _train_set_pass(program: Program, data: Arrays, inputs: RunInputs, params: nnx.State):
  """Loss, accuracy, gradient and activation counts summed over the training set."""
  activation = bound_activation(program, inputs)

  def batch(params: nnx.State, x: Array, y: Array, weights: Array):
    forward = _model(program, inputs, params).forward(x)
    loss_sum = jnp.sum(metrics.per_example_loss(forward.outputs, y, program.task) * weights)
    return loss_sum, forward

  def accumulate(totals, batch_arrays):
    x, y, weights = batch_arrays
    (loss_sum, forward), grads = jax.value_and_grad(batch, has_aux=True)(params, x, y, weights)
    correct = jnp.sum(metrics.per_example_correct(forward.outputs, y, program.task) * weights)
    counts = metrics.unit_counts(activation, forward.preactivations, forward.activations, weights)
    new = (loss_sum, correct, grads, counts)
    if totals is None:
      return new
    return (
        totals[0] + loss_sum, totals[1] + correct, jax.tree.map(jnp.add, totals[2], grads),
        metrics.merge_counts(totals[3], counts),
    )

  first = jax.tree.map(lambda a: a[0], data.train_batches)
  rest = jax.tree.map(lambda a: a[1:], data.train_batches)
  totals, _ = jax.lax.scan(lambda t, b: (accumulate(t, b), None), accumulate(None, first), rest)
  return totals


def _test_set_pass(program: Program, data: Arrays, inputs: RunInputs, params: nnx.State):
  """Loss and accuracy summed over the test set."""
  model = _model(program, inputs, params)

  def batch(_, batch_arrays):
    x, y, weights = batch_arrays
    outputs = model(x)
    loss_sum = jnp.sum(metrics.per_example_loss(outputs, y, program.task) * weights)
    correct = jnp.sum(metrics.per_example_correct(outputs, y, program.task) * weights)
    return None, jnp.stack([loss_sum, correct])

  _, sums = jax.lax.scan(batch, None, data.test_batches)
  return jnp.sum(sums, axis=0)


def evaluate(
    program: Program, data: Arrays, inputs: RunInputs, state: RunState, step: Array
) -> tuple[RunState, dict[str, Array], dict[str, Array]]:
  """Run metrics and layer metrics on the whole training and test sets.

  Returns the state (divergence and inactive units updated), the run metrics
  (scalars) and the layer metrics (one value per layer, the output last; the
  activation metrics are NaN for the output layer, which has none).
  """
  train_count = jnp.sum(data.train_batches[2])
  test_count = jnp.sum(data.test_batches[2])
  loss_sum, correct, grads, counts = _train_set_pass(program, data, inputs, state.params)
  test_loss_sum, test_correct = _test_set_pass(program, data, inputs, state.params)
  activation_values, ever_inactive = metrics.activation_metrics(counts, state.ever_inactive)
  model = _model(program, inputs, state.params)
  gradients = nnx.merge(nnx.graphdef(model), jax.tree.map(lambda g: g / train_count, grads))
  layers = metrics.kernel_metrics(model.kernels(), gradients.kernels())
  for name, values in activation_values.items():
    layers[name] = jnp.append(values, jnp.nan)  # the output layer has no activation
  train_loss = loss_sum / train_count
  run_values = {
      "train_loss": train_loss,
      "train_accuracy": correct / train_count,
      "test_loss": test_loss_sum / test_count,
      "test_accuracy": test_correct / test_count,
      **metrics.run_averages(activation_values),
  }
  initial_loss = jnp.where(step == 0, train_loss, state.initial_loss)
  diverges = ~state.diverged & (
      ~jnp.isfinite(train_loss) | (train_loss > program.divergence_factor * initial_loss)
  )
  state = state._replace(
      ever_inactive=ever_inactive,
      initial_loss=initial_loss,
      diverged=state.diverged | diverges,
      diverged_step=jnp.where(diverges, step, state.diverged_step),
  )
  return state, run_values, layers


# --- a grid of runs -------------------------------------------------------------


def _over_runs(program: Program, per_run: Callable[..., Any]) -> Callable[..., Any]:
  """``per_run(state, inputs, *shared)`` over a device's runs: ``lax.map`` or ``vmap``."""
  if program.batching == "vmap":
    return lambda state, inputs, *shared: jax.vmap(
        lambda s, i: per_run(s, i, *shared))(state, inputs)
  return lambda state, inputs, *shared: jax.lax.map(
      lambda both: per_run(both[0], both[1], *shared), (state, inputs))


class GridPrograms(NamedTuple):
  """A grid's compiled pieces, each over the (sharded) runs axis."""

  init: Callable[[RunInputs], RunState]
  train_chunk: Callable[..., tuple[RunState, Array]]
  evaluate: Callable[..., tuple[RunState, dict[str, Array], dict[str, Array]]]


def _init_program(program: Program) -> Program:
  """``program`` without what initialisation ignores (the activation, batching...).

  A run's initial weights and optimizer state do not depend on its
  activation, so every grid of a comparison shares one compiled init.
  """
  return dataclasses.replace(
      program, branches=(Branch("identity"),), batching="map", task="", divergence_factor=0.0,
  )


@functools.lru_cache(maxsize=32)
def _init_one(program: Program) -> Callable[[RunInputs], RunState]:
  """One run's :func:`init_run`, jitted, for an :func:`_init_program`."""
  return jax.jit(functools.partial(init_run, program))


def _without_hyperparameters(inputs: RunInputs) -> RunInputs:
  """What an :func:`_init_program` takes: one branch, no hyperparameters."""
  return inputs._replace(branch=jnp.zeros_like(inputs.branch), hyperparameters=({},))


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

  init_one = _init_one(_init_program(program))
  runs = devices.runs_sharding(mesh)

  def init_all(inputs: RunInputs) -> RunState:
    # One run at a time, stacked: the random initialisers compile several
    # times faster for one run than over a runs axis, and init runs once.
    inputs = _without_hyperparameters(inputs)
    count = inputs.learning_rate.shape[0]
    states = [init_one(jax.tree.map(lambda a: a[i], inputs)) for i in range(count)]
    # Stacked on the host: a copy, bit for bit, without a compiled stack per leaf shape.
    stacked = jax.tree.map(lambda *leaves: np.stack(jax.device_get(leaves)), *states)
    return jax.device_put(stacked, runs)

  return GridPrograms(
      init=init_all,
      train_chunk=jax.jit(
          lambda state, inputs, data, first_step, num_steps: sharded(
              lambda s, i, d, f: chunk(s, i, d, f, num_steps), 2)(state, inputs, data, first_step),
          static_argnums=4,
      ),
      evaluate=jax.jit(sharded(assess, 2)),
  )


_PRECOMPILED: set[tuple[Any, ...]] = set()


def _cpu_cores() -> int:
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, cores or 1)


def _precompile(
    program: Program, mesh: Mesh, programs: GridPrograms, inputs: RunInputs, data: Arrays,
    chunk: int,
) -> None:
  """Compiles the grid's init, training chunk and evaluation at once, one per core.

  Tracing and lowering run here one after another (they hold Python's lock);
  XLA's compilations, most of the time, run in threads side by side. The
  programs land in the same caches as a first call's, so training then starts
  at once. Done once per program, mesh, run count and chunk length.
  """
  count = inputs.learning_rate.shape[0]
  key = (program, mesh, count, chunk)
  if key in _PRECOMPILED:
    return
  bare = _without_hyperparameters(inputs)
  one_run = jax.tree.map(lambda a: a[0], bare)
  init_one = _init_one(_init_program(program))
  shapes = jax.eval_shape(init_one, one_run)
  runs = devices.runs_sharding(mesh)
  state = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct((count, *s.shape), s.dtype, sharding=runs), shapes)
  step = jnp.asarray(0)
  # Each compiles as soon as it is lowered, while the next one is traced (in
  # Python, on one core): the init, quick to trace, first; then the longest.
  lowerings = [
      lambda: init_one.lower(one_run),
      lambda: programs.evaluate.lower(state, inputs, data, step),
      lambda: programs.train_chunk.lower(state, inputs, data, step, chunk),
  ]
  with concurrent.futures.ThreadPoolExecutor(max_workers=min(3, _cpu_cores())) as pool:
    futures = [pool.submit(lower().compile) for lower in lowerings]
    for future in futures:
      future.result()
  _PRECOMPILED.add(key)


def clear_compiled() -> None:
  """Forgets every compiled program, so the next grid compiles as in a fresh process."""
  compile_grid.cache_clear()
  _init_one.cache_clear()
  _PRECOMPILED.clear()
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

  init_key, data_key = _seed_keys(np.array([run.seed for run in runs], np.uint32))
  return RunInputs(
      init_key=init_key,
      data_key=data_key,
      learning_rate=np.array([run.learning_rate for run in runs], np.float32),
      branch=np.array([index[run.grid] for run in runs], np.int32),
      hyperparameters=tuple({name: values(grid, name) for name in grid.swept} for grid in grids),
  )


@jax.jit
def _seed_keys(seeds: Array) -> tuple[Array, Array]:
  """Each seed's initialisation key ``fold_in(key(seed), 0)`` and data key (``1``)."""
  base = jax.vmap(jax.random.key)(seeds)
  return (jax.vmap(lambda k: jax.random.fold_in(k, 0))(base),
          jax.vmap(lambda k: jax.random.fold_in(k, 1))(base))


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


def _finite_or_none(value: Any) -> float | None:
  """NaN marks "not measured" (the output layer's activation): an empty field."""
  return None if np.isnan(value) else shortest(value)


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
) -> GridResult:
  """Trains the runs of several grids of ``config`` as one program.

  Each run computes its own grid's activation (a ``lax.switch``, see
  :func:`bound_activation`). Under ``batching="map"`` every run's numbers are
  those of :func:`train_grid` on its grid alone, bit for bit, while the
  grids share one compiled training chunk and one evaluation. Under
  ``"vmap"`` a switch on a batched branch computes every branch, so there
  each grid is better trained on its own.

  Args:
    config: the comparison's configuration.
    dataset: the data, as loaded by :func:`research.data.load`.
    grids_and_runs: each grid with the runs of it to train (all, or those a
      resumed sweep still needs); grids without runs are left out.
    on_chunk: as for :func:`train_grid`.

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
  programs = compile_grid(program, mesh)
  # Padded with copies of the last run, whose results are dropped.
  padded = runs + runs[-1:] * (devices.padded_size(len(runs), mesh.size) - len(runs))
  inputs = devices.shard_runs(run_inputs(padded, grids), mesh)
  data = devices.replicate(device_arrays(dataset), mesh)
  _precompile(program, mesh, programs, inputs, data, min(config.eval_every, config.steps))
  state = programs.init(inputs)
  recorder = _Recorder(runs)

  state, run_values, layer_values = programs.evaluate(state, inputs, data, jnp.asarray(0))
  recorder.record(0, run_values, layer_values, state.diverged)
  step = 0
  while step < config.steps:
    chunk = min(config.eval_every, config.steps - step)
    state, losses = programs.train_chunk(state, inputs, data, jnp.asarray(step), chunk)
    step += chunk
    state, run_values, layer_values = programs.evaluate(state, inputs, data, jnp.asarray(step))
    recorder.record(step, run_values, layer_values, state.diverged)
    if on_chunk is not None:
      healthy = np.asarray(devices.to_host(losses))[: len(runs)]
      mean = float(np.nanmean(healthy)) if np.isfinite(healthy).any() else float("nan")
      on_chunk(chunk, mean)

  diverged_step = devices.to_host(state.diverged_step)
  rows = []
  for index, (run, last) in enumerate(zip(runs, recorder.last_healthy)):
    diverged = bool(recorder.history[-len(runs) + index]["diverged"])
    final = {name: (last or {}).get(name) for name in metrics.RUN_METRICS}
    rows.append({
        **run_keys(run),
        "diverged": diverged,
        "diverged_step": int(diverged_step[index]) if diverged else None,
        "metrics_step": last["step"] if last else None,
        **final,
    })
  timing = {
      "grid": " + ".join(grid.spec for grid in grids),
      "runs": len(runs),
      "devices": mesh.size,
      "platform": mesh.devices.flat[0].platform,
      "batching": program.batching,
      "steps": config.steps,
      "seconds": round(time.perf_counter() - started, 3),
  }
  # Rows grid by grid, as if each grid had trained alone (the runs' order within each).
  grid_of = {run.run_id: number for number, (_, grid_runs) in enumerate(pairs) for run in grid_runs}
  by_grid = lambda row: grid_of[row["run_id"]]  # noqa: E731
  return GridResult(rows, sorted(recorder.history, key=by_grid),
                    sorted(recorder.layers, key=by_grid), timing)
