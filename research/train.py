"""Training a grid of runs as one compiled program.

Read top to bottom: the optimizer, a run's state, :func:`grid_functions` with
the three per-run functions (``init``, ``train_steps``, ``evaluate``) vmapped
over the runs axis and sharded over the devices, and :func:`train_grid`, which
loops over evaluation chunks. Within a chunk the steps run in a ``lax.scan``.

Each run draws its initial weights from ``key(seed)`` and its mini-batches
(with replacement) from ``fold_in(key(seed), step)``, so runs with the same
seed share their initialisation and data order across activations and learning
rates: comparisons are paired. Same config, same numbers, bit for bit on CPU.

A run whose loss becomes non-finite, or whose training loss at an evaluation
exceeds ``divergence_factor`` times its initial loss, is marked diverged and
frozen: its parameters stop changing, the other runs go on.
"""

from __future__ import annotations

import dataclasses
import functools
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

from research import devices, metrics, models
from research.config import Config
from research.data import Dataset
from research.grid import Grid, Run

_EVAL_BATCH = 1000  # examples per evaluation batch, to bound memory per run


def make_optimizer(config: Config, learning_rate: Array) -> optax.GradientTransformation:
  """The Optax optimizer for one run; ``learning_rate`` may be a traced array.

  Examples:
    >>> tx = make_optimizer(Config(optimizer="sgd"), jnp.asarray(0.1))
    >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))
    >>> updates["w"]
    Array([-0.1, -0.1], dtype=float32)
  """
  if config.schedule == "cosine":
    rate = optax.cosine_decay_schedule(learning_rate, config.steps)
  elif config.schedule == "warmup_cosine":
    rate = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(1, config.steps // 20), config.steps
    )
  else:
    rate = learning_rate
  if config.optimizer == "sgd":
    return optax.sgd(rate)
  if config.optimizer == "momentum":
    return optax.sgd(rate, momentum=config.momentum)
  if config.optimizer == "adamw":
    return optax.adamw(rate, weight_decay=config.weight_decay)
  return optax.adam(rate)


class RunInputs(NamedTuple):
  """What distinguishes the runs of a grid; each leaf has a leading runs axis."""

  init_key: Array
  data_key: Array
  learning_rate: Array
  hyperparameters: dict[str, Array]


class RunState(NamedTuple):
  """Everything a run carries from one chunk of steps to the next."""

  params: nnx.State
  opt_state: optax.OptState
  ever_dead: tuple[Array, ...]  # per hidden layer: units dead at any evaluation so far
  diverged: Array  # bool
  diverged_step: Array  # int32, -1 while the run is healthy
  initial_loss: Array  # the training loss at step 0


class Arrays(NamedTuple):
  """The dataset on the devices, replicated."""

  x_train: Array
  y_train: Array
  x_test: Array
  y_test: Array
  x_probe: Array
  y_probe: Array


def _where(condition: Array, if_true: Any, if_false: Any) -> Any:
  return jax.tree.map(lambda a, b: jnp.where(condition, a, b), if_true, if_false)


def _batched_mean(function: Callable[[Array, Array], Array], x: Array, y: Array) -> Array:
  """Mean of per-example ``function`` over the dataset, a batch at a time."""
  count = x.shape[0]
  batch = min(_EVAL_BATCH, count)
  batches = -(-count // batch)
  padding = batches * batch - count

  def in_batches(a: Array) -> Array:
    a = jnp.concatenate([a, jnp.zeros((padding, *a.shape[1:]), a.dtype)])
    return a.reshape(batches, batch, *a.shape[1:])

  weights = in_batches(jnp.ones(count))  # zero for the padding
  totals = jax.lax.map(
      lambda b: jnp.sum(function(b[0], b[1]) * b[2][:, None], axis=0),
      (in_batches(x), in_batches(y), weights),
  )
  return jnp.sum(totals, axis=0) / count


class GridFunctions(NamedTuple):
  init: Callable[..., RunState]
  train_steps: Callable[..., tuple[RunState, Array]]
  evaluate: Callable[..., tuple[RunState, dict[str, Array]]]


def grid_functions(
    config: Config, dataset: Dataset, grid: Grid, mesh: Mesh | None = None
) -> GridFunctions:
  """The per-run init, training chunk and evaluation for one grid, vmapped and jitted.

  Every array with a runs axis is sharded over ``mesh`` (default: all
  devices), data and step counters replicated; fixing the shardings means each
  program compiles once. Cached, so training the same grid again (a resumed
  sweep, runs one by one) reuses the compiled programs.
  """
  mesh = devices.runs_mesh() if mesh is None else mesh
  return _grid_functions(dataclasses.replace(config, out="", quiet=False), dataset, grid, mesh)


@functools.lru_cache(maxsize=16)
def _grid_functions(config: Config, dataset: Dataset, grid: Grid, mesh: Mesh) -> GridFunctions:
  activation = grid.activation()
  task = dataset.task

  def new_model(key: Array) -> models.Model:
    return models.build(
        config.model,
        dataset.input_shape,
        dataset.num_outputs,
        width=config.width,
        depth=config.depth,
        activation=activation,
        residual=config.residual,
        init=config.init,
        bias_init=config.bias_init,
        rngs=nnx.Rngs(params=key),
    )

  graphdef = nnx.graphdef(nnx.eval_shape(lambda: new_model(jax.random.key(0))))

  def forward(params: nnx.State, x: Array, inputs: RunInputs) -> models.Forward:
    return nnx.merge(graphdef, params).forward(x, **inputs.hyperparameters)

  def batch_loss(params: nnx.State, x: Array, y: Array, inputs: RunInputs) -> Array:
    return metrics.loss(forward(params, x, inputs).outputs, y, task)

  def init(inputs: RunInputs) -> RunState:
    params = nnx.state(new_model(inputs.init_key), nnx.Param)
    opt_state = make_optimizer(config, inputs.learning_rate).init(params)
    ever_dead = tuple(
        jnp.zeros(layer.kernel.shape[-1], bool)
        for layer in nnx.merge(graphdef, params).hidden
    )
    return RunState(params, opt_state, ever_dead, jnp.array(False), jnp.array(-1, jnp.int32), jnp.array(jnp.inf, jnp.float32))

  def train_steps(state: RunState, inputs: RunInputs, data: Arrays, first_step: Array, num_steps: int):
    optimizer = make_optimizer(config, inputs.learning_rate)
    size = data.x_train.shape[0]

    def step(state: RunState, step_index: Array) -> tuple[RunState, Array]:
      key = jax.random.fold_in(inputs.data_key, step_index)
      indices = jax.random.randint(key, (config.batch_size,), 0, size)
      loss, grads = jax.value_and_grad(batch_loss)(
          state.params, data.x_train[indices], data.y_train[indices], inputs
      )
      updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      diverges = ~state.diverged & ~jnp.isfinite(loss)
      frozen = state.diverged | diverges
      new_state = state._replace(
          params=_where(frozen, state.params, params),
          opt_state=_where(frozen, state.opt_state, opt_state),
          diverged=frozen,
          diverged_step=jnp.where(diverges, step_index, state.diverged_step),
      )
      return new_state, jnp.where(frozen, jnp.nan, loss)

    return jax.lax.scan(step, state, first_step + jnp.arange(num_steps))

  def evaluate(state: RunState, inputs: RunInputs, data: Arrays, step_index: Array):
    def loss_and_correct(x: Array, y: Array) -> Array:
      outputs = forward(state.params, x, inputs).outputs
      return jnp.stack(
          [metrics.per_example_loss(outputs, y, task), metrics.per_example_correct(outputs, y, task)],
          axis=-1,
      )

    train = _batched_mean(loss_and_correct, data.x_train, data.y_train)
    test = _batched_mean(loss_and_correct, data.x_test, data.y_test)
    probe = forward(state.params, data.x_probe, inputs)
    layer_metrics, ever_dead = metrics.hidden_layer_metrics(
        probe.preactivations, probe.activations, state.ever_dead
    )
    grads = jax.grad(batch_loss)(state.params, data.x_probe, data.y_probe, inputs)
    model, gradient_model = nnx.merge(graphdef, state.params), nnx.merge(graphdef, grads)
    results = {
        "train_loss": train[0],
        "train_accuracy": train[1],
        "test_loss": test[0],
        "test_accuracy": test[1],
        **layer_metrics,
        **metrics.norms("weight_norm", model.kernels()),
        **metrics.norms("grad_norm", gradient_model.kernels()),
    }
    initial_loss = jnp.where(step_index == 0, train[0], state.initial_loss)
    diverges = ~state.diverged & (
        ~jnp.isfinite(train[0]) | (train[0] > config.divergence_factor * initial_loss)
    )
    state = state._replace(
        ever_dead=ever_dead,
        initial_loss=initial_loss,
        diverged=state.diverged | diverges,
        diverged_step=jnp.where(diverges, step_index, state.diverged_step),
    )
    return state, results

  # The runs axis: state and inputs are batched, data and step counters shared.
  def train_all(state, inputs, data, first_step, num_steps):
    return jax.vmap(lambda s, i: train_steps(s, i, data, first_step, num_steps))(state, inputs)

  def evaluate_all(state, inputs, data, step_index):
    return jax.vmap(lambda s, i: evaluate(s, i, data, step_index))(state, inputs)

  runs, shared = devices.runs_sharding(mesh), devices.replicated_sharding(mesh)
  init_one = jax.jit(init)

  def init_all(inputs: RunInputs) -> RunState:
    # One run at a time, stacked: the random initialisers compile several
    # times faster for one run than under vmap, and init runs only once.
    count = inputs.learning_rate.shape[0]
    states = [init_one(jax.tree.map(lambda a: a[i], inputs)) for i in range(count)]
    return jax.device_put(jax.tree.map(lambda *leaves: jnp.stack(leaves), *states), runs)

  return GridFunctions(
      init=init_all,
      train_steps=jax.jit(
          train_all,
          static_argnums=4,
          in_shardings=(runs, runs, shared, shared),
          out_shardings=runs,
      ),
      evaluate=jax.jit(
          evaluate_all, in_shardings=(runs, runs, shared, shared), out_shardings=runs
      ),
  )


def run_inputs(runs: Sequence[Run], grid: Grid) -> RunInputs:
  """The runs axis of a grid: keys from seeds, rates, hyperparameter arrays."""
  seeds = jnp.array([run.seed for run in runs], jnp.uint32)
  base = jax.vmap(jax.random.key)(seeds)
  return RunInputs(
      init_key=jax.vmap(lambda k: jax.random.fold_in(k, 0))(base),
      data_key=jax.vmap(lambda k: jax.random.fold_in(k, 1))(base),
      learning_rate=jnp.array([run.learning_rate for run in runs], jnp.float32),
      hyperparameters={
          name: jnp.array([dict(run.hyperparameters)[name] for run in runs], jnp.float32)
          for name in grid.swept
      },
  )


def device_arrays(config: Config, dataset: Dataset) -> Arrays:
  """The dataset as JAX arrays, with the probe set: the first training examples."""
  probe = min(config.probe_size, dataset.x_train.shape[0])
  return Arrays(
      *(jnp.asarray(a) for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)),
      jnp.asarray(dataset.x_train[:probe]),
      jnp.asarray(dataset.y_train[:probe]),
  )


_HEADLINE = (
    "test_accuracy", "test_loss", "train_accuracy", "train_loss",
    "dead_fraction", "sparsity", "revived_fraction",
)


def _metric_order(values: dict[str, Any]) -> list[str]:
  """Headline metrics first, then the per-layer ones grouped by metric."""
  return [k for k in _HEADLINE if k in values] + sorted(k for k in values if k not in _HEADLINE)


def _shortest(value: Any) -> float:
  """A float32 metric as the shortest decimal that reads back to it."""
  return float(str(np.float32(value)))


class GridResult(NamedTuple):
  """Per run: the final metrics (rows) and every evaluation (history rows)."""

  runs: list[dict[str, Any]]
  history: list[dict[str, Any]]


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
    One row of final metrics per run and one history row per run and
    evaluation, as plain Python values.
  """
  runs = list(grid.runs if runs is None else runs)
  started = time.perf_counter()
  mesh = devices.runs_mesh()
  functions = grid_functions(config, dataset, grid, mesh)
  size = devices.padded_size(len(runs), mesh.size)
  inputs = devices.shard_runs(devices.pad_runs(run_inputs(runs, grid), size), mesh)
  data = devices.replicate(device_arrays(config, dataset), mesh)
  state = functions.init(inputs)

  history: list[dict[str, Any]] = []

  def record(step: int, results: dict[str, Array], diverged: Array) -> None:
    values, diverged = devices.to_host((results, diverged))
    values = {key: values[key] for key in metric_keys}
    for index, run in enumerate(runs):
      history.append(
          {
              "run_id": run.run_id,
              "activation": run.activation,
              "seed": run.seed,
              "learning_rate": run.learning_rate,
              "step": step,
              "diverged": bool(diverged[index]),
              **{key: _shortest(value[index]) for key, value in values.items()},
          }
      )

  state, results = functions.evaluate(state, inputs, data, jnp.asarray(0))
  metric_keys = _metric_order(results)
  record(0, results, state.diverged)
  step = 0
  while step < config.steps:
    chunk = min(config.eval_every, config.steps - step)
    state, losses = functions.train_steps(state, inputs, data, jnp.asarray(step), chunk)
    step += chunk
    state, results = functions.evaluate(state, inputs, data, jnp.asarray(step))
    record(step, results, state.diverged)
    if on_chunk is not None:
      healthy = np.asarray(devices.to_host(losses))[: len(runs)]
      mean = float(np.nanmean(healthy)) if np.isfinite(healthy).any() else float("nan")
      on_chunk(chunk, mean)

  seconds = time.perf_counter() - started
  final = history[-len(runs):]
  diverged_step = devices.to_host(state.diverged_step)
  rows = []
  for index, (run, last) in enumerate(zip(runs, final)):
    metrics_only = {k: last[k] for k in metric_keys}
    rows.append(
        {
            "run_id": run.run_id,
            "activation": run.activation,
            "name": run.name,
            "grid": run.grid,
            "seed": run.seed,
            "learning_rate": run.learning_rate,
            **{key: value for key, value in run.hyperparameters},
            "diverged": last["diverged"],
            "diverged_step": int(diverged_step[index]) if last["diverged"] else None,
            **metrics_only,
            "train_seconds": seconds,
        }
    )
  return GridResult(rows, history)
