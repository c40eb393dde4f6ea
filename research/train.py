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

from research import augment, devices, metrics, model_spec, observe, optimizers
from research.config import Config
from research.data import Dataset
from research.grid import Grid, activation_function

EVAL_BATCH = 1000  # examples per evaluation batch, to bound memory per run


@dataclasses.dataclass(frozen=True)
class Branch:
  """One activation of a program: a registry name and how its hyperparameters travel."""

  name: str  # registry name, or a reference MODULE:FUNCTION to a user's surrogate
  static: tuple[tuple[str, Any], ...] = ()  # non-float hyperparameters, fixed at trace time
  swept: tuple[str, ...] = ()  # float hyperparameters, arrays on the runs axis

  @classmethod
  def of(cls, grid: Grid) -> Branch:
    """The branch that computes ``grid``'s activation."""
    return cls(grid.name, grid.static, grid.swept)


# Config fields that never split a compiled program: seeds and learning rates
# are arrays on the runs axis, the activations are the program's branches, the
# data an argument, evaluations come between calls, epochs become steps.
_PER_RUN = {"dataset": "", "activations": (), "seeds": 0, "learning_rates": (),
            "eval_every": 0, "data_seed": 0, "epochs": 0}


@dataclasses.dataclass(frozen=True)
class Program:
  """Everything that determines a grid's compiled programs, and nothing else.

  The config, with what does not change the compiled code normalised away
  (seeds, learning rates and swept hyperparameters are arrays on the runs
  axis, the data are arguments), so grids that differ only in them share their
  programs; the dataset's shapes; and the activations.
  """

  config: Config  # steps resolved, batching resolved, the fields of _PER_RUN normalised
  input_shape: tuple[int, ...]
  num_outputs: int
  task: str  # "classification" or "regression"
  steps_per_epoch: int  # 0: mini-batches drawn with replacement; else shuffled epochs
  branches: tuple[Branch, ...]  # the activations; each run picks one by its ``branch``

  @classmethod
  def of(cls, config: Config, dataset: Dataset, grids: Grid | Sequence[Grid]) -> Program:
    """The program of ``grids`` (one or several) under ``config`` for ``dataset``'s shapes."""
    grids = (grids,) if isinstance(grids, Grid) else tuple(grids)
    normalised = dataclasses.replace(
        config, **_PER_RUN, steps=resolved_steps(config, dataset),
        batching=devices.resolved_batching(config.batching),
    )
    return cls(
        normalised, dataset.input_shape, dataset.num_outputs, dataset.task,
        steps_per_epoch(config, dataset) if config.epochs else 0,
        tuple(Branch.of(grid) for grid in grids),
    )


def steps_per_epoch(config: Config, dataset: Dataset) -> int:
  """Full mini-batches in one pass over the training set (the last partial one is dropped)."""
  return max(1, len(dataset.x_train) // config.batch_size)


def resolved_steps(config: Config, dataset: Dataset) -> int:
  """``config.steps``, or ``epochs`` passes over the training set when ``epochs`` is set."""
  return config.epochs * steps_per_epoch(config, dataset) if config.epochs else config.steps


def make_optimizer(program: Program, learning_rate: Array) -> optax.GradientTransformation:
  """The run's Optax optimizer (:func:`research.optimizers.make_optimizer`)."""
  return optimizers.make_optimizer(program.config, learning_rate)


class RunInputs(NamedTuple):
  """What distinguishes the runs of a grid; each leaf has a leading runs axis."""

  init_key: Array
  data_key: Array
  noise_key: Array  # augmentation and dropout, folded with each step
  learning_rate: Array
  branch: Array  # int32: which of the program's activations the run uses
  hyperparameters: tuple[dict[str, Array], ...]  # per branch, its swept hyperparameters


class RunState(NamedTuple):
  """Everything a run carries from one chunk of steps to the next."""

  params: nnx.State
  model_state: nnx.State  # the model's other state: BatchNorm's averages, Dropout's streams
  opt_state: optax.OptState
  ever_inactive: tuple[Array, ...]  # per activation call: units inactive at any evaluation so far
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

  Under ``batching="map"`` it is always a ``lax.switch`` on the run's
  ``branch``, which computes the run's own activation only: a single grid's
  program then has the same structure as several grids' (XLA fuses nothing
  across the switch either way), so a run's numbers are the same bit for bit
  whichever activations train beside it, also for models with BatchNorm.
  Under ``vmap`` a batched switch would compute every branch: one grid, no switch.
  """
  functions = [
      functools.partial(activation_function(branch.name), **dict(branch.static), **values)
      for branch, values in zip(program.branches, inputs.hyperparameters, strict=True)
  ]
  if len(functions) == 1 and program.config.batching != "map":
    return functions[0]
  if len(functions) == 1:
    functions = functions * 2  # lax.switch calls a lone branch directly
  return lambda z: jax.lax.switch(inputs.branch, functions, z)


def model_builder(program: Program) -> observe.Builder:
  """``build(activation, key)``: a freshly initialised model of the program's architecture."""
  config = program.config
  return model_spec.builder(
      config.model, program.input_shape, program.num_outputs, width=config.width,
      depth=config.depth, residual=config.residual, init=config.init,
      bias_init=config.bias_init, norm=config.norm,
  )


def build_model(program: Program, activation: Callable[[Array], Array], key: Array) -> nnx.Module:
  """A freshly initialised model of the program's architecture."""
  return model_builder(program)(activation, key)


def _example(program: Program) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct((1, *program.input_shape), jnp.float32)


def init_run(program: Program, inputs: RunInputs) -> RunState:
  """A run's state before its first step."""
  build, activation = model_builder(program), bound_activation(program, inputs)
  params, model_state = observe.split(build(activation, inputs.init_key))
  opt_state = make_optimizer(program, inputs.learning_rate).init(params)
  calls = jax.eval_shape(lambda x: observe.call(
      build, activation, params, model_state, x, training=False), _example(program))
  ever_inactive = tuple(jnp.zeros(z.shape[-1], bool) for z in calls.preactivations)
  return RunState(
      params, model_state, opt_state, ever_inactive, jnp.array(False),
      jnp.array(-1, jnp.int32), jnp.array(jnp.inf, jnp.float32),
  )


def _where(condition: Array, if_true: Any, if_false: Any) -> Any:
  return jax.tree.map(lambda a, b: jnp.where(condition, a, b), if_true, if_false)


def batch_indices(program: Program, data: Arrays, inputs: RunInputs, step: Array) -> Array:
  """The training examples of the run's mini-batch at ``step``.

  Drawn with replacement from ``fold_in(data_key, step)``; with epochs, the
  next slice of the epoch's permutation, drawn from ``fold_in(data_key, epoch)``.
  """
  count, batch_size = data.x_train.shape[0], program.config.batch_size
  if not program.steps_per_epoch:
    key = jax.random.fold_in(inputs.data_key, step)
    return jax.random.randint(key, (batch_size,), 0, count)
  epoch, position = jnp.divmod(step, program.steps_per_epoch)
  order = jax.random.permutation(jax.random.fold_in(inputs.data_key, epoch), count)
  return jax.lax.dynamic_slice(order, (position * batch_size,), (batch_size,))


def _training_inputs(program: Program, data: Arrays, key: Array, indices: Array) -> Array:
  """The mini-batch's inputs, augmented from the run's key if the program augments."""
  x = data.x_train[indices]
  return augment.random_crop_and_flip(key, x) if program.config.augment else x


def train_step(
    program: Program, data: Arrays, inputs: RunInputs, state: RunState,
    step_and_indices: tuple[Array, Array],
) -> tuple[RunState, Array]:
  """One optimizer step on a mini-batch; a run whose loss turns non-finite freezes."""
  step, indices = step_and_indices
  build, activation = model_builder(program), bound_activation(program, inputs)
  augment_key, dropout_key = jax.random.split(jax.random.fold_in(inputs.noise_key, step))
  x = _training_inputs(program, data, augment_key, indices)

  def batch_loss(params: nnx.State) -> tuple[Array, nnx.State]:
    observed = observe.call(
        build, activation, params, state.model_state, x, training=True,
        dropout_key=dropout_key, dtype=jnp.dtype(program.config.dtype))
    return metrics.loss(observed.outputs, data.y_train[indices], program.task), observed.model_state

  (loss, model_state), grads = jax.value_and_grad(batch_loss, has_aux=True)(state.params)
  optimizer = make_optimizer(program, inputs.learning_rate)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  diverges = ~state.diverged & ~jnp.isfinite(loss)
  frozen = state.diverged | diverges
  state = state._replace(
      params=_where(frozen, state.params, params),
      model_state=_where(frozen, state.model_state, model_state),
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


def _observed(program: Program, inputs: RunInputs, params: nnx.State, model_state: nnx.State,
              x: Array) -> observe.Observed:
  """The model in evaluation mode on ``x``, each activation call recorded."""
  return observe.call(model_builder(program), bound_activation(program, inputs), params,
                      model_state, x, training=False, dtype=jnp.dtype(program.config.dtype))


def _train_set_pass(program: Program, data: Arrays, inputs: RunInputs, state: RunState):
  """Loss, accuracy, gradient and activation counts summed over the training set."""
  activation = bound_activation(program, inputs)

  def batch(params: nnx.State, x: Array, y: Array, weights: Array):
    observed = _observed(program, inputs, params, state.model_state, x)
    loss_sum = jnp.sum(metrics.per_example_loss(observed.outputs, y, program.task) * weights)
    return loss_sum, observed

  def accumulate(totals, batch_arrays):
    x, y, weights = batch_arrays
    (loss_sum, observed), grads = jax.value_and_grad(batch, has_aux=True)(state.params, x, y, weights)
    correct = jnp.sum(metrics.per_example_correct(observed.outputs, y, program.task) * weights)
    counts = metrics.unit_counts(activation, observed.preactivations, observed.activations, weights)
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


def _test_set_pass(program: Program, data: Arrays, inputs: RunInputs, state: RunState):
  """Loss and accuracy summed over the test set."""

  def batch(_, batch_arrays):
    x, y, weights = batch_arrays
    outputs = _observed(program, inputs, state.params, state.model_state, x).outputs
    loss_sum = jnp.sum(metrics.per_example_loss(outputs, y, program.task) * weights)
    correct = jnp.sum(metrics.per_example_correct(outputs, y, program.task) * weights)
    return None, jnp.stack([loss_sum, correct])

  _, sums = jax.lax.scan(batch, None, data.test_batches)
  return jnp.sum(sums, axis=0)


@functools.lru_cache(maxsize=64)
def kernel_paths(program: Program) -> tuple[tuple[Any, ...], ...]:
  """The model's kernels in order of use: the rows of ``layers.csv``'s weight metrics."""
  return observe.kernel_order(model_builder(program), _identity, _example(program))


def _identity(z: Array) -> Array:
  return z


def _layer_values(activation_values: dict[str, Array], kernel_values: dict[str, Array]) -> dict[str, Array]:
  """Per layer: the k-th activation call's metrics beside the k-th kernel's, NaN where one is missing.

  The built-in models have a kernel per hidden layer and the output layer's
  last, whose activation metrics are NaN.
  """
  count = max(len(next(iter(values.values()))) for values in (activation_values, kernel_values))
  padded = lambda values: jnp.concatenate([values, jnp.full(count - len(values), jnp.nan)])  # noqa: E731
  return {name: padded(values) for name, values in (kernel_values | activation_values).items()}


def evaluate(
    program: Program, data: Arrays, inputs: RunInputs, state: RunState, step: Array
) -> tuple[RunState, dict[str, Array], dict[str, Array]]:
  """Run metrics and layer metrics on the whole training and test sets.

  Returns the state (divergence and inactive units updated), the run metrics
  (scalars) and the layer metrics (one value per layer: the k-th activation
  call and the k-th kernel in order of use; NaN where a model has fewer calls
  than kernels, as the output layer of the built-in models).
  """
  train_count = jnp.sum(data.train_batches[2])
  test_count = jnp.sum(data.test_batches[2])
  loss_sum, correct, grads, counts = _train_set_pass(program, data, inputs, state)
  test_loss_sum, test_correct = _test_set_pass(program, data, inputs, state)
  activation_values, ever_inactive = metrics.activation_metrics(counts, state.ever_inactive)
  paths = kernel_paths(program)
  gradients = jax.tree.map(lambda g: g / train_count, grads)
  kernel_values = metrics.kernel_metrics(
      observe.kernels(state.params, paths), observe.kernels(gradients, paths))
  layers = _layer_values(activation_values, kernel_values)
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
      ~jnp.isfinite(train_loss) | (train_loss > program.config.divergence_factor * initial_loss)
  )
  state = state._replace(
      ever_inactive=ever_inactive,
      initial_loss=initial_loss,
      diverged=state.diverged | diverges,
      diverged_step=jnp.where(diverges, step, state.diverged_step),
  )
  return state, run_values, layers
