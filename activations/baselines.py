"""True-derivative baselines: the usual activations, with a lean backward pass.

Each backward pass uses the true derivative, so these are the reference points
every surrogate is compared against. They are built with the same machinery as
the surrogates, which buys two things over ``jax.nn``: the forward pass saves
only what the derivative needs (a one-byte mask for piecewise-linear functions,
the output for tanh, sigmoid and the ELU family), and every function also comes
as ``impl="jvp"`` for forward-mode differentiation.

Conventions at the kinks follow ``jax.nn``: ``relu'(0) = 0``,
``leaky_relu'(0) = 1``, ``relu6'(0) = relu6'(6) = 0``, ``hard_tanh'(±1) = 1``,
``abs'(0) = 0`` and ``elu'(0) = alpha``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from activations._core import Impl, elementwise_derivative, for_each_impl, select_impl

__all__ = [
    "relu",
    "leaky_relu",
    "relu6",
    "hard_tanh",
    "abs",
    "identity",
    "elu",
    "celu",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "tanh",
    "sigmoid",
]

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def _ones(x: Array, *unused: Array) -> Array:
  del unused
  return jnp.ones_like(x)


def _indicator(mask: Array, *unused: Array) -> Array:
  del unused
  return jnp.where(mask, 1.0, 0.0)


_RELU = for_each_impl(jax.nn.relu, _indicator, wrt=lambda x: x > 0)
_LEAKY_RELU = for_each_impl(
    jax.nn.leaky_relu,
    lambda non_negative, slope: jnp.where(non_negative, 1.0, slope),
    wrt=lambda x, slope: x >= 0,
)
_RELU6 = for_each_impl(jax.nn.relu6, _indicator, wrt=lambda x: (x > 0) & (x < 6))
_HARD_TANH = for_each_impl(
    jax.nn.hard_tanh, _indicator, wrt=lambda x: jnp.abs(x) <= 1
)
_ABS = for_each_impl(jnp.abs, lambda x: jnp.sign(x))
_IDENTITY = for_each_impl(lambda x: x, _ones, wrt="output")
_ELU = for_each_impl(
    jax.nn.elu, lambda y, alpha: jnp.where(y > 0, 1.0, y + alpha), wrt="output"
)
_CELU = for_each_impl(
    jax.nn.celu, lambda y, alpha: jnp.where(y > 0, 1.0, y / alpha + 1), wrt="output"
)
_SELU = for_each_impl(
    jax.nn.selu,
    lambda y: jnp.where(y > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA),
    wrt="output",
)
_TANH = for_each_impl(jnp.tanh, lambda y: 1 - y**2, wrt="output")
_SIGMOID = for_each_impl(jax.nn.sigmoid, lambda y: y * (1 - y), wrt="output")
_SILU = for_each_impl(jax.nn.silu, elementwise_derivative(jax.nn.silu))
_SOFTPLUS = for_each_impl(jax.nn.softplus, lambda x: jax.nn.sigmoid(x))
_GELU = {
    approximate: for_each_impl(
        lambda x, a=approximate: jax.nn.gelu(x, approximate=a),
        # Beyond |x| = 10 the derivative is 0 or 1 to float64 precision; the
        # clip keeps the tanh form's x**3 from overflowing into 0 * inf.
        lambda x, a=approximate: elementwise_derivative(
            lambda x: jax.nn.gelu(x, approximate=a)
        )(jnp.clip(x, -10.0, 10.0)),
    )
    for approximate in (True, False)
}


def relu(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""Rectified linear unit, :math:`\max(x, 0)`, with derivative 0 at 0.

  Saves a one-byte mask for the backward pass, as ``jax.nn.relu`` does.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 0.0, 2.0])
    >>> relu(x)
    Array([0., 0., 2.], dtype=float32)
    >>> jax.grad(lambda x: relu(x).sum())(x)
    Array([0., 0., 1.], dtype=float32)
  """
  return select_impl(_RELU, impl)(x)


def leaky_relu(
    x: ArrayLike, negative_slope: ArrayLike = 0.01, *, impl: Impl = "vjp"
) -> Array:
  r"""Leaky ReLU: :math:`x` for :math:`x \ge 0`, ``negative_slope * x`` below.

  Same values and gradients as ``jax.nn.leaky_relu``, but the backward pass
  saves a one-byte mask instead of float copies of the input.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 2.0])
    >>> leaky_relu(x, negative_slope=0.1)
    Array([-0.2,  0. ,  2. ], dtype=float32)
    >>> jax.grad(lambda x: leaky_relu(x, 0.1).sum())(x)
    Array([0.1, 1. , 1. ], dtype=float32)
  """
  return select_impl(_LEAKY_RELU, impl)(x, negative_slope)


def relu6(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""ReLU capped at 6, :math:`\min(\max(x, 0), 6)`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 3.0, 7.0])
    >>> relu6(x)
    Array([0., 3., 6.], dtype=float32)
    >>> jax.grad(lambda x: relu6(x).sum())(x)
    Array([0., 1., 0.], dtype=float32)
  """
  return select_impl(_RELU6, impl)(x)


def hard_tanh(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""Hard tanh, :math:`\mathrm{clip}(x, -1, 1)`; derivative 1 on :math:`[-1, 1]`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.5, 1.0])
    >>> hard_tanh(x)
    Array([-1. ,  0.5,  1. ], dtype=float32)
    >>> jax.grad(lambda x: hard_tanh(x).sum())(x)
    Array([0., 1., 1.], dtype=float32)
  """
  return select_impl(_HARD_TANH, impl)(x)


def abs(x: ArrayLike, *, impl: Impl = "vjp") -> Array:  # noqa: A001 (the name users search for)
  r"""Absolute value, :math:`|x|`, derivative :math:`\mathrm{sign}(x)`.

  Good on XOR-like problems, where the class depends on the sign pattern.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 3.0])
    >>> abs(x)
    Array([2., 0., 3.], dtype=float32)
    >>> jax.grad(lambda x: abs(x).sum())(x)
    Array([-1.,  0.,  1.], dtype=float32)
  """
  return select_impl(_ABS, impl)(x)


def identity(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  """The identity, for linear networks and ablations; saves nothing.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: identity(x).sum())(jnp.array([-2.0, 3.0]))
    Array([1., 1.], dtype=float32)
  """
  return select_impl(_IDENTITY, impl)(x)


def elu(x: ArrayLike, alpha: ArrayLike = 1.0, *, impl: Impl = "vjp") -> Array:
  r"""Exponential linear unit: :math:`x` above 0, :math:`\alpha(e^x - 1)` below.

  The derivative below 0 is :math:`y + \alpha`, computed from the output.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 2.0])
    >>> elu(x)
    Array([-0.63212055,  2.        ], dtype=float32)
    >>> jax.grad(lambda x: elu(x).sum())(x)
    Array([0.36787945, 1.        ], dtype=float32)
  """
  return select_impl(_ELU, impl)(x, alpha)


def celu(x: ArrayLike, alpha: ArrayLike = 1.0, *, impl: Impl = "vjp") -> Array:
  r"""Continuously differentiable ELU: :math:`\alpha(e^{x/\alpha} - 1)` below 0.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 2.0])
    >>> jax.grad(lambda x: celu(x, alpha=2.0).sum())(x)
    Array([0.60653067, 1.        ], dtype=float32)
  """
  return select_impl(_CELU, impl)(x, alpha)


def selu(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""Scaled ELU (Klambauer et al. 2017), self-normalising with LeCun init.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 2.0])
    >>> selu(x)
    Array([-1.1113307,  2.101402 ], dtype=float32)
    >>> jax.grad(lambda x: selu(x).sum())(x)
    Array([0.6468, 1.0507  ], dtype=float32)
  """
  return select_impl(_SELU, impl)(x)


def gelu(x: ArrayLike, approximate: bool = True, *, impl: Impl = "vjp") -> Array:
  r"""Gaussian error linear unit, :math:`x \Phi(x)`, as ``jax.nn.gelu``.

  ``approximate`` (a Python bool, fixed at trace time) picks the tanh
  approximation, JAX's default; ``False`` gives the exact erf form. The
  backward pass saves only the input and recomputes the derivative.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 1.0])
    >>> jax.grad(lambda x: gelu(x, approximate=False).sum())(x)
    Array([-0.0833,  1.0833 ], dtype=float32)
  """
  return select_impl(_GELU[bool(approximate)], impl)(x)


def silu(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""SiLU / swish, :math:`x\,\sigma(x)`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: silu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.0723, 0.9277], dtype=float32)
  """
  return select_impl(_SILU, impl)(x)


def softplus(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""Softplus, :math:`\log(1 + e^x)`: a smooth ReLU without exact zeros.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: softplus(x).sum())(jnp.array([0.0]))
    Array([0.5], dtype=float32)
  """
  return select_impl(_SOFTPLUS, impl)(x)


def tanh(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""Hyperbolic tangent; the backward uses :math:`1 - y^2` from the output.

  Computing the derivative from the output saves nothing beyond the output,
  which the next layer keeps anyway.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: tanh(x).sum())(jnp.array([0.0, 1.0]))
    Array([1.        , 0.41997433], dtype=float32)
  """
  return select_impl(_TANH, impl)(x)


def sigmoid(x: ArrayLike, *, impl: Impl = "vjp") -> Array:
  r"""Logistic sigmoid; the backward uses :math:`y(1 - y)`, at most 0.25.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sigmoid(x).sum())(jnp.array([0.0, 2.0]))
    Array([0.25 , 0.105], dtype=float32)
  """
  return select_impl(_SIGMOID, impl)(x)
