"""Step functions with surrogate gradients, for spiking and binarised networks.

A spiking neuron emits ``heaviside(v - threshold)``, whose true derivative is
zero almost everywhere. Surrogate-gradient learning keeps the step in the
forward pass and backpropagates through a smooth bump instead (Neftci, Mostafa
and Zenke 2019). Every ``heaviside_*`` function below has the forward

.. math:: H(x) = 1 \\text{ if } x > 0 \\text{ else } 0 \\quad (H(0) = 0)

and differs only in the derivative :math:`g` used backward. Scale parameters
follow the common libraries (snnTorch, SpikingJelly, Norse); bumps with a width
parameter are normalised to integrate to 1, the height of the step.
Scale and width parameters must be positive (a concrete value outside the
range raises a ``ValueError``; a traced one is not checked) and receive no
gradient. :func:`sign_straight_through` is the binarisation of BinaryConnect/BinaryNet.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from activations.definition import Definition, Hyperparameter, define

__all__ = [
    "heaviside_straight_through",
    "heaviside_fast_sigmoid",
    "heaviside_arctan",
    "heaviside_sigmoid",
    "heaviside_triangle",
    "heaviside_boxcar",
    "heaviside_gaussian",
    "sign_straight_through",
]


def _step(x: Array, *unused: Array) -> Array:
  del unused
  return (x > 0).astype(x.dtype)


def _fast_sigmoid(x: Array, slope: Array) -> Array:
  return 1 / jnp.square(1 + slope * jnp.abs(x))


def _arctan(x: Array, alpha: Array) -> Array:
  return (alpha / 2) / (1 + jnp.square(jnp.pi / 2 * alpha * x))


def _sigmoid(x: Array, slope: Array) -> Array:
  # s(z) s(-z), not s(z)(1 - s(z)): 1 - s(z) cancels above zero.
  return slope * jax.nn.sigmoid(slope * x) * jax.nn.sigmoid(-slope * x)


def _triangle(x: Array, width: Array) -> Array:
  return jnp.maximum(0.0, 1 - jnp.abs(x) / width) / width


def _gaussian(x: Array, sigma: Array) -> Array:
  return jnp.exp(-0.5 * jnp.square(x / sigma)) / (sigma * jnp.sqrt(2 * jnp.pi))


def _sign(x: Array) -> Array:
  return jnp.where(x >= 0, 1, -1).astype(x.dtype)


heaviside_straight_through = define(
    Definition(
        name='heaviside_straight_through',
        forward=_step,
        derivative=lambda y: jnp.ones_like(y),
        wrt="output",
        doc=r"""Step forward, identity backward: the straight-through estimator.

  :math:`g(x) = 1`. Saves nothing beyond the output.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 0.0, 2.0])
    >>> heaviside_straight_through(x)
    Array([0., 0., 1.], dtype=float32)
    >>> jax.grad(lambda x: heaviside_straight_through(x).sum())(x)
    Array([1., 1., 1.], dtype=float32)
  """,
    ),
    __name__,
)

heaviside_fast_sigmoid = define(
    Definition(
        name='heaviside_fast_sigmoid',
        forward=_step,
        derivative=_fast_sigmoid,
        hyperparameters=(Hyperparameter("slope", 25.0, "positive"),),
        doc=r"""Step forward, SuperSpike's fast sigmoid backward (Zenke & Ganguli 2018).

  :math:`g(x) = 1 / (1 + \text{slope}\,|x|)^2`, peak 1 at 0 (snnTorch's
  ``fast_sigmoid``, default slope 25).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: heaviside_fast_sigmoid(x).sum())(jnp.array([0.0, 0.04]))
    Array([1.  , 0.25], dtype=float32)
  """,
    ),
    __name__,
)

heaviside_arctan = define(
    Definition(
        name='heaviside_arctan',
        forward=_step,
        derivative=_arctan,
        hyperparameters=(Hyperparameter("alpha", 2.0, "positive"),),
        doc=r"""Step forward, arctan surrogate backward (SpikingJelly's ``ATan``).

  :math:`g(x) = (\alpha/2) / (1 + (\pi \alpha x / 2)^2)`, the derivative of
  :math:`\arctan(\pi \alpha x / 2)/\pi + 1/2`; integrates to 1.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: heaviside_arctan(x).sum())(jnp.array([0.0]))
    Array([1.], dtype=float32)
  """,
    ),
    __name__,
)

heaviside_sigmoid = define(
    Definition(
        name='heaviside_sigmoid',
        forward=_step,
        derivative=_sigmoid,
        hyperparameters=(Hyperparameter("slope", 25.0, "positive"),),
        doc=r"""Step forward, derivative of :math:`\sigma(\text{slope}\,x)` backward.

  :math:`g(x) = \text{slope}\,\sigma(\text{slope}\,x)(1 - \sigma(\text{slope}\,x))`,
  peak ``slope / 4``; integrates to 1 (snnTorch's ``sigmoid``).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: heaviside_sigmoid(x, slope=4.0).sum())(jnp.array([0.0]))
    Array([1.], dtype=float32)
  """,
    ),
    __name__,
)

heaviside_triangle = define(
    Definition(
        name='heaviside_triangle',
        forward=_step,
        derivative=_triangle,
        hyperparameters=(Hyperparameter("width", 1.0, "positive"),),
        doc=r"""Step forward, triangular bump backward (Esser et al. 2016, Bellec et al. 2018).

  :math:`g(x) = \max(0, 1 - |x| / \text{width}) / \text{width}`; zero outside
  ``[-width, width]``, integrates to 1.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: heaviside_triangle(x).sum())(jnp.array([0.0, 0.5, 2.0]))
    Array([1. , 0.5, 0. ], dtype=float32)
  """,
    ),
    __name__,
)

heaviside_boxcar = define(
    Definition(
        name='heaviside_boxcar',
        forward=_step,
        derivative=lambda inside, width: jnp.where(inside, 1 / width, 0.0),
        wrt=lambda x, width: jnp.abs(x) < width / 2,
        hyperparameters=(Hyperparameter("width", 1.0, "positive"),),
        doc=r"""Step forward, rectangular window backward (Wu et al. 2018).

  :math:`g(x) = 1/\text{width}` for :math:`|x| < \text{width}/2`, else 0;
  integrates to 1. Saves a one-byte mask.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: heaviside_boxcar(x).sum())(jnp.array([0.2, 0.5, 1.0]))
    Array([1., 0., 0.], dtype=float32)
  """,
    ),
    __name__,
)

heaviside_gaussian = define(
    Definition(
        name='heaviside_gaussian',
        forward=_step,
        derivative=_gaussian,
        hyperparameters=(Hyperparameter("sigma", 0.5, "positive"),),
        doc=r"""Step forward, Gaussian bump backward.

  :math:`g(x) = \exp(-x^2 / 2\sigma^2) / (\sigma\sqrt{2\pi})`, the normal
  density; integrates to 1.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: heaviside_gaussian(x).sum())(jnp.array([0.0]))
    Array([0.7978846], dtype=float32)
  """,
    ),
    __name__,
)

sign_straight_through = define(
    Definition(
        name='sign_straight_through',
        forward=_sign,
        derivative=lambda inside: jnp.where(inside, 1.0, 0.0),
        wrt=lambda x: jnp.abs(x) <= 1,
        doc=r"""Binarisation: sign forward (+1 at 0), hard-tanh-clipped identity backward.

  :math:`f(x) = +1` for :math:`x \ge 0`, :math:`-1` below;
  :math:`g(x) = 1` for :math:`|x| \le 1`, else 0 (Courbariaux et al. 2016).
  Saves a one-byte mask.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 0.5])
    >>> sign_straight_through(x)
    Array([-1.,  1.,  1.], dtype=float32)
    >>> jax.grad(lambda x: sign_straight_through(x).sum())(x)
    Array([0., 1., 1.], dtype=float32)
  """,
    ),
    __name__,
)

__test__ = {name: globals()[name] for name in __all__}  # doctests of built functions
