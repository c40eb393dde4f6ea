"""RevivalReLU: a ReLU whose dead units are pulled back up, and never pushed further down.

NecroReLU (:func:`activations.necro_relu`) keeps every unit alive, but the
``dying`` study measured why it diverges at high Adam rates: below zero its
gradient moves an inactive unit's weights without changing the loss, Adam
turns those small, consistent gradients into full steps, and inactive units
are driven ever further below zero until the weights they share blow the loss
up. Two changes to its backward pass remove that direction:

* it acts only on a unit that is inactive on the whole batch (every example,
  and every position of a convolution's channel): a unit that fires anywhere
  already has ReLU's true gradient;
* it passes only the part of the cotangent that asks the unit to go up
  (``negative_slope * min(g, 0)``; gradient descent then raises the
  pre-activation), so it can bring a dead unit back but never push it down.

The forward values, and so the exact zeros and the first training step's
numbers, are ReLU's. The backward pass is not elementwise (it reads the whole
batch) and not linear in the cotangent (it reads its sign), so it has a
reverse-mode rule only (``impl="vjp"``).

Where it helps and where it fails (``python -m research dying``, MLP 100-100,
1500 steps, 3 seeds, AMD EPYC CPU): at the Adam rates where ReLU loses 43-52%
of its units it ends with 0.0-0.1% dead, and its lowest per-layer
pre-activation stays within 10x ReLU's (NecroReLU's runs 160x below). It does
not make a ReLU network train like a LeakyReLU one at Adam 0.1 (MNIST-1D:
32% against LeakyReLU's 52%; every ReLU-forward backward tried did worse,
and LeakyReLU's own backward under a ReLU forward pass trains far worse:
the forward pass is what it has; docs/studies.md, "Designs tried"), one of
three MNIST-5k runs at Adam 0.1 diverged (on an AMD EPYC family 26 model 2,
one of LeakyReLU's three did too), and with plain SGD at the highest rates it
diverges more often than ReLU. Under BatchNorm no channel is dead on a whole
batch, so it equals ReLU there (``python -m research depth``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from activations._core import check_input
from activations.definition import Hyperparameter, check_value

__all__ = ["revival_relu"]

_SLOPE = Hyperparameter("negative_slope", 0.3, "non_negative")
IMPLS = ("vjp",)  # the only rule it has: see the module docstring


def _dead_units(active: Array) -> Array:
  """True for each unit (last axis) inactive at every other index: on the whole batch."""
  batch_axes = tuple(range(active.ndim - 1))
  return jnp.logical_not(jnp.any(active, axis=batch_axes, keepdims=True))


@jax.custom_vjp
def _revival_relu(x: Array, negative_slope: Array) -> Array:
  return jax.nn.relu(x)


def _forward(x: Array, negative_slope: Array):
  # One byte per element, as ReLU's mask: 1 active, 0 inactive, -1 NaN (a NaN gradient).
  code = jnp.where(jnp.isnan(x), -1, (x > 0).astype(jnp.int8)).astype(jnp.int8)
  return jax.nn.relu(x), (code, negative_slope)


def _backward(residual, cotangent: Array):
  code, negative_slope = residual
  active = code > 0
  upward = negative_slope * jnp.minimum(cotangent, 0)  # only "go up" survives
  gradient = jnp.where(active, cotangent, jnp.where(_dead_units(active), upward, 0))
  gradient = jnp.where(code < 0, jnp.nan, gradient)
  return gradient.astype(cotangent.dtype), jnp.zeros_like(negative_slope)


_revival_relu.defvjp(_forward, _backward)
_revival_relu.__name__ = "revival_relu"  # the name activations.swap finds in a jaxpr


def revival_relu(x: ArrayLike, negative_slope: ArrayLike = 0.3, *, impl: str = "vjp") -> Array:
  r"""RevivalReLU: ReLU forward; a unit dead on the whole batch gets only the "go up" part of its gradient.

  .. math::
    f(x) = \max(x, 0), \qquad
    \bar{x}_{b,u} = \begin{cases}
      \bar{y}_{b,u} & x_{b,u} > 0 \\
      \text{negative\_slope} \cdot \min(\bar{y}_{b,u}, 0) & x_{b',u} \le 0 \text{ for every } b' \\
      0 & \text{otherwise (ReLU's own)}
    \end{cases}

  where ``u`` indexes the last axis (units; a convolution's channels) and
  ``b`` every other axis (examples, positions). Its backward reads the batch,
  so under ``jax.vmap`` over examples each example is its own batch;
  :func:`activations.testing.check_activation` reports it as not elementwise.
  ``negative_slope`` shapes only the backward pass and gets no gradient.

  Args:
    x: floating-point input, units on the last axis.
    negative_slope: the factor on a dead unit's upward cotangent (>= 0).
    impl: ``"vjp"`` only: a rule that reads the cotangent's sign has no
      forward-mode (``custom_jvp``) form.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([[-1.0, -2.0, 3.0],
    ...                [-4.0,  5.0, -6.0]])   # unit 0 is dead on this batch
    >>> revival_relu(x)
    Array([[0., 0., 3.],
           [0., 5., 0.]], dtype=float32)
    >>> cotangent = jnp.array([[-1.0, -1.0, -1.0],
    ...                        [ 2.0, -1.0, -1.0]])
    >>> _, pullback = jax.vjp(revival_relu, x)
    >>> pullback(cotangent)[0]   # unit 0: 0.3 * min(g, 0); units 1, 2: ReLU's
    Array([[-0.3,  0. , -1. ],
           [ 0. , -1. ,  0. ]], dtype=float32)
  """
  if impl not in IMPLS:
    raise ValueError(
        f"revival_relu has impl='vjp' only, got impl={impl!r}: its backward reads the sign of the"
        " cotangent and the whole batch, which no forward-mode (custom_jvp) rule can.")
  x = check_input(x, "revival_relu")
  check_value("revival_relu", _SLOPE, negative_slope)
  return _revival_relu(x, jnp.asarray(negative_slope, x.dtype))
