"""What the engine measures: each metric described once, and the pure functions.

:data:`METRICS` is the one description of every metric (its label, whether it is
a fraction shown in percent, whether higher is better, what it means). The
summary tables, the plots and the report read it; nothing else keeps a list.

Run metrics (``runs.csv``, ``history.csv``) describe a whole run; layer metrics
(``layers.csv``) one layer, counted from 1 nearest the input. The engine
records every call of the activation it hands the model
(:mod:`research.observe`), so any model is measured, a user's too: layer ``k``
holds the ``k``-th activation call's metrics and the ``k``-th kernel's (the
parameters of two or more axes, in the order the forward pass reads them);
where a model has more kernels than activation calls, as the output layer of
the built-in models, the activation metrics of the extra rows are empty. The
activation metrics are measured on the **whole training set**, a batch at a
time, in evaluation mode (BatchNorm on its running averages), on the
activation's own input ``z`` and output ``f(z)`` whatever the architecture (a
residual block's ``h + f(z)`` is not the activation's output). A *unit* is an
entry of the last axis: a neuron of a dense layer, a **channel** of a
convolution, whose every position of every example counts:

* a unit is **inactive** when ``z <= 0`` for every training example (and every
  position, for a convolution channel): the forward view, ReLU outputs 0;
* a unit is **dead** when the activation's backward derivative ``f'(z)`` is 0
  for every training example: the backward view, no gradient reaches its
  weights. For ReLU the two coincide; NecroReLU's and LeakyReLU's inactive
  units still learn, so they are never dead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import optax
from jax import Array

import activations


@dataclasses.dataclass(frozen=True)
class Metric:
  """How a metric is named, shown and compared."""

  name: str  # the column name
  label: str  # for tables and axes
  description: str  # one line: what it measures
  percent: bool = False  # a fraction in [0, 1], shown as a percentage
  higher_is_better: bool | None = None  # None: neither (a diagnostic)


def _metrics(*items: Metric) -> dict[str, Metric]:
  return {item.name: item for item in items}


RUN_METRICS = _metrics(
    Metric("test_accuracy", "test accuracy", "fraction of test examples classified right", True, True),
    Metric("test_loss", "test loss", "mean cross-entropy (or squared error) on the test set", False, False),
    Metric("train_accuracy", "train accuracy", "fraction of training examples classified right", True, True),
    Metric("train_loss", "train loss", "mean cross-entropy (or squared error) on the training set", False, False),
    Metric("inactive_fraction", "inactive units", "hidden units with z <= 0 on every training example (mean over layers)", True),
    Metric("dead_fraction", "dead units", "hidden units with backward derivative 0 on every training example (mean over layers)", True),
    Metric("revived_fraction", "revived units", "hidden units inactive at an earlier evaluation and active now (mean over layers)", True),
    Metric("sparsity", "sparsity", "fraction of the activations' outputs that are exactly 0 (mean over layers)", True),
)
LAYER_METRICS = _metrics(
    Metric("sparsity", "sparsity", "fraction of this layer's activation outputs that are exactly 0", True),
    Metric("inactive_fraction", "inactive units", "units with z <= 0 on every training example (a conv unit is a channel: at every position too)", True),
    Metric("dead_fraction", "dead units", "units whose backward derivative is 0 on every training example (and position, for a channel)", True),
    Metric("revived_fraction", "revived units", "units inactive at an earlier evaluation and active now", True),
    Metric("preactivation_mean", "mean pre-activation", "mean of z over the training set"),
    Metric("gradient_norm", "gradient norm", "Frobenius norm of the training loss's gradient w.r.t. the kernel"),
    Metric("weight_norm", "weight norm", "Frobenius norm of the kernel"),
    Metric("max_abs_weight", "largest weight", "largest absolute entry of the kernel"),
)
METRICS = RUN_METRICS | {f"layer/{name}": metric for name, metric in LAYER_METRICS.items()}


def describe(name: str) -> Metric:
  """The description of a run or layer metric; a plain one for unknown names.

  Examples:
    >>> describe("test_accuracy").percent, describe("test_loss").higher_is_better
    (True, False)
  """
  if name in RUN_METRICS:
    return RUN_METRICS[name]
  if name in LAYER_METRICS:
    return LAYER_METRICS[name]
  return Metric(name, name.replace("_", " "), name)


def per_example_loss(outputs: Array, targets: Array, task: str) -> Array:
  """Cross-entropy (classification) or squared error (regression), per example.

  Examples:
    >>> per_example_loss(jnp.array([[1.0], [3.0]]), jnp.array([[1.0], [1.0]]), "regression")
    Array([0., 4.], dtype=float32)
  """
  if task == "classification":
    return optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
  return jnp.mean(jnp.square(outputs - targets), axis=-1)


def per_example_correct(outputs: Array, targets: Array, task: str) -> Array:
  """1.0 where the argmax prediction is right; NaN for regression.

  Examples:
    >>> per_example_correct(jnp.array([[0.0, 1.0], [1.0, 0.0]]), jnp.array([1, 1]), "classification")
    Array([1., 0.], dtype=float32)
  """
  if task == "classification":
    return (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)
  return jnp.full(outputs.shape[:1], jnp.nan, jnp.float32)


def loss(outputs: Array, targets: Array, task: str) -> Array:
  """Mean cross-entropy (classification) or mean squared error (regression).

  Examples:
    >>> loss(jnp.array([[0.0, 0.0]]), jnp.array([1]), "classification")
    Array(0.6931472, dtype=float32)
  """
  return jnp.mean(per_example_loss(outputs, targets, task))


def accuracy(outputs: Array, targets: Array, task: str) -> Array:
  """Fraction of correct argmax predictions; NaN for regression.

  Examples:
    >>> accuracy(jnp.array([[0.0, 1.0], [1.0, 0.0]]), jnp.array([1, 1]), "classification")
    Array(0.5, dtype=float32)
  """
  return jnp.mean(per_example_correct(outputs, targets, task))


def unit_counts(
    activation: Callable[[Array], Array],
    preactivations: Sequence[Array],
    outputs: Sequence[Array],
    weights: Array,
) -> dict[str, tuple[Array, ...]]:
  """One batch's contribution to the activation metrics of each hidden layer.

  Args:
    activation: the elementwise activation, hyperparameters bound.
    preactivations: per layer, the activation's input ``z``, units last.
    outputs: per layer, the activation's output ``f(z)``.
    weights: per example, 1 for a real example and 0 for padding.

  Returns:
    Per layer: ``active`` (units with ``z > 0`` somewhere), ``learning`` (units
    with a non-zero backward derivative somewhere), ``zeros`` (count of exact
    zero outputs), ``values`` (count of outputs) and ``preactivation_sum``.

  Examples:
    >>> z = [jnp.array([[-1.0, 2.0], [-3.0, -1.0]])]
    >>> counts = unit_counts(activations.necro_relu, z, [jnp.maximum(z[0], 0)], jnp.ones(2))
    >>> counts["active"], counts["learning"], counts["zeros"]
    ((Array([False,  True], dtype=bool),), (Array([ True,  True], dtype=bool),), (Array(3., dtype=float32),))
  """
  derivative = activations.backward_derivative(activation)
  counts: dict[str, list[Array]] = {
      "active": [], "learning": [], "zeros": [], "values": [], "preactivation_sum": []
  }
  for pre, out in zip(preactivations, outputs):
    real = weights.reshape(-1, *([1] * (pre.ndim - 1))) > 0  # broadcast over positions, units
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731  (examples x positions, units)
    real_flat = flat(jnp.broadcast_to(real, pre.shape))
    counts["active"].append(jnp.any(flat(pre > 0) & real_flat, axis=0))
    counts["learning"].append(jnp.any(flat(derivative(pre) != 0) & real_flat, axis=0))
    counts["zeros"].append(jnp.sum(jnp.where(real_flat, flat(out == 0), False), dtype=jnp.float32))
    counts["values"].append(jnp.sum(real_flat, dtype=jnp.float32))
    counts["preactivation_sum"].append(jnp.sum(jnp.where(real_flat, flat(pre), 0.0)))
  return {key: tuple(values) for key, values in counts.items()}


def merge_counts(
    first: dict[str, tuple[Array, ...]], second: dict[str, tuple[Array, ...]]
) -> dict[str, tuple[Array, ...]]:
  """Two batches' :func:`unit_counts` as one: "somewhere" is or, counts add."""
  merged = {}
  for key in first:
    combine = jnp.logical_or if key in ("active", "learning") else jnp.add
    merged[key] = tuple(combine(a, b) for a, b in zip(first[key], second[key]))
  return merged


def activation_metrics(
    counts: dict[str, tuple[Array, ...]], ever_inactive: Sequence[Array]
) -> tuple[dict[str, Array], tuple[Array, ...]]:
  """Per-layer fractions from the whole training set's counts.

  Args:
    counts: :func:`unit_counts` merged over every training batch.
    ever_inactive: per layer, the units inactive at any earlier evaluation.

  Returns:
    ``{metric: array of one value per hidden layer}`` for sparsity,
    inactive_fraction, dead_fraction, revived_fraction, preactivation_mean;
    and the updated ``ever_inactive`` masks.

  Examples:
    >>> counts = {"active": (jnp.array([False, True]),), "learning": (jnp.array([False, True]),),
    ...           "zeros": (jnp.array(3.0),), "values": (jnp.array(4.0),),
    ...           "preactivation_sum": (jnp.array(-2.0),)}
    >>> values, ever = activation_metrics(counts, (jnp.array([False, True]),))
    >>> {key: float(value[0]) for key, value in values.items()}
    {'sparsity': 0.75, 'inactive_fraction': 0.5, 'dead_fraction': 0.5, 'revived_fraction': 0.5, 'preactivation_mean': -0.5}
  """
  per_layer: dict[str, list[Array]] = {name: [] for name in (
      "sparsity", "inactive_fraction", "dead_fraction", "revived_fraction", "preactivation_mean")}
  new_ever = []
  for index, before in enumerate(ever_inactive):
    inactive = ~counts["active"][index]
    values = counts["values"][index]
    per_layer["sparsity"].append(counts["zeros"][index] / values)
    per_layer["inactive_fraction"].append(jnp.mean(inactive))
    per_layer["dead_fraction"].append(jnp.mean(~counts["learning"][index]))
    per_layer["revived_fraction"].append(jnp.mean(before & ~inactive))
    per_layer["preactivation_mean"].append(counts["preactivation_sum"][index] / values)
    new_ever.append(before | inactive)
  return {name: jnp.stack(values) for name, values in per_layer.items()}, tuple(new_ever)


def frobenius_norm(x: Array) -> Array:
  """The Frobenius norm of ``x``, also where its squares would underflow or overflow float32.

  ``sqrt(sum(x**2))`` reads 0 once every entry is below about 1e-19 (the
  squares underflow) and inf above about 1e19: exactly where vanishing and
  exploding gradients live. There the norm is taken of ``x / max|x|`` and
  scaled back; elsewhere it is the plain formula. (Inside a larger program
  XLA may fuse the two and round the sum of squares differently: up to one
  float32 ulp from what ``jnp.linalg.norm`` alone gives.)

  Examples:
    >>> float(frobenius_norm(jnp.array([3e-30, -4e-30])))
    5e-30
    >>> float(frobenius_norm(jnp.array([3.0, -4.0])))
    5.0
  """
  x = x.reshape(-1)
  largest = jnp.max(jnp.abs(x))
  plain = jnp.linalg.norm(x)
  safe_largest = jnp.where(largest > 0, largest, 1)
  scaled = largest * jnp.linalg.norm(x / safe_largest)
  in_range = (largest > 1e-15) & (largest < 1e18)  # squares far from float32's limits
  return jnp.where(in_range | (largest == 0), plain, scaled)


def kernel_metrics(kernels: Sequence[Array], gradients: Sequence[Array]) -> dict[str, Array]:
  """Weight norm, largest weight and gradient norm of each layer's kernel.

  Examples:
    >>> values = kernel_metrics([jnp.array([[3.0, -4.0]])], [jnp.array([[0.0, 2.0]])])
    >>> {key: float(value[0]) for key, value in values.items()}
    {'weight_norm': 5.0, 'max_abs_weight': 4.0, 'gradient_norm': 2.0}
  """
  return {
      "weight_norm": jnp.stack([frobenius_norm(k) for k in kernels]),
      "max_abs_weight": jnp.stack([jnp.max(jnp.abs(k)) for k in kernels]),
      "gradient_norm": jnp.stack([frobenius_norm(g) for g in gradients]),
  }


def run_averages(layer_values: dict[str, Array]) -> dict[str, Array]:
  """The run metrics that average a layer metric over the hidden layers.

  Examples:
    >>> run_averages({"sparsity": jnp.array([0.5, 0.7]), "dead_fraction": jnp.array([0.0, 0.5])})
    {'sparsity': Array(0.6, dtype=float32), 'dead_fraction': Array(0.25, dtype=float32)}
  """
  averaged = ("inactive_fraction", "dead_fraction", "revived_fraction", "sparsity")
  return {name: jnp.mean(values) for name, values in layer_values.items() if name in averaged}
