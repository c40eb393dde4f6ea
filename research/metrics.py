"""Pure metrics: loss, accuracy, dying units, sparsity, norms.

Every function works on one run's arrays and is vmapped over runs by the
trainer. Per-layer metrics come back as a flat dict with namespaced keys
(``dead/layer_0``, ``sparsity/layer_1``, ``grad_norm/output``), the layer
averages under plain names (``dead_fraction``, ``sparsity``).

Definitions (the brief's claims 1-3):

* a hidden unit is **dead** when its pre-activation is ``<= 0`` on every example
  of the probe set (and every position, for a convolution channel), so ReLU
  gives it no gradient;
* a unit is **revived** when it was dead at some earlier evaluation and is not
  now;
* **sparsity** is the fraction of the activation's outputs that are exactly 0;
* **weight norm** and **gradient norm** are the Frobenius norms of a layer's
  kernel and of the loss gradient with respect to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import optax
from jax import Array


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


def dead_units(preactivation: Array) -> Array:
  """Which units (last axis) have a pre-activation ``<= 0`` everywhere.

  Examples:
    >>> dead_units(jnp.array([[-1.0, 2.0, 0.0], [-3.0, -1.0, 0.0]]))
    Array([ True, False,  True], dtype=bool)
  """
  return jnp.all(preactivation.reshape(-1, preactivation.shape[-1]) <= 0, axis=0)


def sparsity(outputs: Array) -> Array:
  """Fraction of exact zeros among a layer's activations.

  Examples:
    >>> sparsity(jnp.array([[0.0, 1.0], [0.0, 0.0]]))
    Array(0.75, dtype=float32)
  """
  return jnp.mean(outputs == 0)


def hidden_layer_metrics(
    preactivations: Sequence[Array],
    outputs: Sequence[Array],
    ever_dead: Sequence[Array],
) -> tuple[dict[str, Array], tuple[Array, ...]]:
  """Dead, revived and sparse fractions per hidden layer, and their averages.

  Args:
    preactivations: each hidden layer's pre-activations on the probe set.
    outputs: the activation's outputs for the same layers.
    ever_dead: per layer, the units dead at any earlier evaluation.

  Returns:
    The metrics and the updated ``ever_dead`` masks.

  Examples:
    >>> pre = [jnp.array([[-1.0, 1.0], [-2.0, 3.0]])]
    >>> metrics, ever = hidden_layer_metrics(pre, [jnp.maximum(pre[0], 0)],
    ...                                      [jnp.array([False, True])])
    >>> {k: float(v) for k, v in metrics.items() if k.endswith("layer_0")}
    {'dead/layer_0': 0.5, 'revived/layer_0': 0.5, 'sparsity/layer_0': 0.5, 'preactivation_mean/layer_0': 0.25}
  """
  metrics: dict[str, Array] = {}
  new_ever_dead = []
  for index, (pre, out, before) in enumerate(zip(preactivations, outputs, ever_dead)):
    dead = dead_units(pre)
    metrics[f"dead/layer_{index}"] = jnp.mean(dead)
    metrics[f"revived/layer_{index}"] = jnp.mean(before & ~dead)
    metrics[f"sparsity/layer_{index}"] = sparsity(out)
    metrics[f"preactivation_mean/layer_{index}"] = jnp.mean(pre)
    new_ever_dead.append(before | dead)
  for name, prefix in (("dead_fraction", "dead/"), ("revived_fraction", "revived/"), ("sparsity", "sparsity/")):
    metrics[name] = jnp.mean(jnp.stack([v for k, v in metrics.items() if k.startswith(prefix)]))
  return metrics, tuple(new_ever_dead)


def norms(prefix: str, kernels: Mapping[str, Array]) -> dict[str, Array]:
  """Frobenius norm of each named kernel, as ``{prefix}/{name}``.

  Examples:
    >>> norms("weight_norm", {"layer_0": jnp.array([[3.0, 4.0]])})
    {'weight_norm/layer_0': Array(5., dtype=float32)}
  """
  return {f"{prefix}/{name}": jnp.linalg.norm(kernel.reshape(-1)) for name, kernel in kernels.items()}
