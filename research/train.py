"""One training run: what the compiled programs of a grid compute for each run.

Read top to bottom, as a Flax example: the optimizer; what a run carries; build
a run (:func:`init_run`); one optimizer step (:func:`train_step`) and a chunk of
them (:func:`train_chunk`); evaluate and probe a run on the whole data
(:func:`evaluate`). :mod:`research.programs` turns these per-run functions
into compiled programs over a grid's leading "runs" axis and runs the loop
over evaluation chunks.

Each run draws its initial weights from ``key(seed)`` and its mini-batches
(with replacement) from ``fold_in(key(seed), step)``, so runs with the same
seed share their initialisation and data order across activations and learning
rates: comparisons are paired.

Several grids of one config (relu, leaky_relu and necro_relu, say) can train
as one program (:func:`research.programs.train_grids`): the activation is a
``lax.switch`` over the grids' activations on each run's ``branch``. Under ``batching="map"`` a
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

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array

import activations
from research import devices, metrics, models
from research.config import Config
from research.data import Dataset
from research.grid import Grid

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
