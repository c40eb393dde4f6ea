"""Surrogate ReLUs: ReLU in the forward pass, another derivative in the backward.

The forward values, and so the exact zeros (sparsity), are ReLU's. Only the
derivative backprop uses changes, so a unit whose pre-activation is negative on
every example still receives a gradient and can come back to life.

* :func:`necro_relu` -- the backward of LeakyReLU(0.1): a ReLU that cannot die.
* :func:`relu_with_leaky_backward` -- the same with any ``negative_slope``.
* ``sugar_*`` -- SUGAR (Horuz et al. 2025, "The Resurrection of the ReLU"): the
  derivative of a smooth function (B-SiLU, NeLU, ELU, SELU, GELU, SiLU,
  softplus). By default the surrogate derivative is used everywhere, as in the
  paper's forward-gradient-injection formulation and its reference code; with
  ``below_zero_only=True`` it is used only for ``x <= 0`` and ReLU's own
  derivative 1 above zero.

Convention at 0: the sign-mask surrogates take the positive branch
(``necro_relu'(0) = 1``, as ``jax.nn.leaky_relu``); SUGAR derivatives are smooth.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from activations._core import Impl, elementwise_derivative, for_each_impl, select_impl

__all__ = [
    "relu_with_leaky_backward",
    "necro_relu",
    "sugar_bsilu",
    "sugar_nelu",
    "sugar_elu",
    "sugar_selu",
    "sugar_gelu",
    "sugar_silu",
    "sugar_softplus",
]

_RELU_WITH_LEAKY_BACKWARD = for_each_impl(
    lambda x, slope: jax.nn.relu(x),
    lambda non_negative, slope: jnp.where(non_negative, 1.0, slope),
    wrt=lambda x, slope: x >= 0,
)


def relu_with_leaky_backward(
    x: ArrayLike, negative_slope: ArrayLike = 0.01, *, impl: Impl = "vjp"
) -> Array:
  r"""ReLU forward; backward of LeakyReLU with ``negative_slope``.

  .. math::
    f(x) = \max(x, 0), \qquad
    g(x) = \begin{cases} 1 & x \ge 0 \\ \text{negative\_slope} & x < 0 \end{cases}

  The forward pass saves a one-byte sign mask, exactly as ``jax.nn.relu``
  does, so it costs ReLU's memory, not LeakyReLU's.

  Args:
    x: floating-point input.
    negative_slope: derivative used below zero (default: LeakyReLU's 0.01); a
      float or an array, so it can be swept with ``jax.vmap``.
    impl: ``"vjp"`` (``jax.custom_vjp``) or ``"jvp"`` (``jax.custom_jvp``).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 3.0])
    >>> relu_with_leaky_backward(x, 0.3)
    Array([0., 0., 3.], dtype=float32)
    >>> jax.grad(lambda x: relu_with_leaky_backward(x, 0.3).sum())(x)
    Array([0.3, 1. , 1. ], dtype=float32)
  """
  return select_impl(_RELU_WITH_LEAKY_BACKWARD, impl)(x, negative_slope)


def necro_relu(
    x: ArrayLike, negative_slope: ArrayLike = 0.1, *, impl: Impl = "vjp"
) -> Array:
  r"""NecroReLU: ReLU forward, derivative 0.1 (not 0) below zero backward.

  A ReLU that cannot die: forward values and exact zeros are ReLU's, gradients
  flow as through LeakyReLU(0.1). Equal in values and gradients to
  ``surrogate(jax.nn.relu, partial(jax.nn.leaky_relu, negative_slope=0.1))``
  but saves a one-byte mask instead of the input.

  .. math::
    f(x) = \max(x, 0), \qquad
    g(x) = \begin{cases} 1 & x \ge 0 \\ 0.1 & x < 0 \end{cases}

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 3.0])
    >>> necro_relu(x)
    Array([0., 0., 3.], dtype=float32)
    >>> jax.grad(lambda x: necro_relu(x).sum())(x)
    Array([0.1, 1. , 1. ], dtype=float32)
  """
  return relu_with_leaky_backward(x, negative_slope, impl=impl)


def _b_silu(x: Array, alpha: Array) -> Array:
  return (x + alpha) * jax.nn.sigmoid(x) - alpha / 2


def _nelu_derivative(x: Array, alpha: Array) -> Array:
  # 2 alpha x / (1 + x^2)^2, split so that huge |x| gives 0, not inf / inf.
  ratio = x / (1 + jnp.square(x))
  return jnp.where(x > 0, 1.0, 2 * alpha * ratio / (1 + jnp.square(x)))


def _sugar(derivative: Callable[..., Array]) -> dict[Impl, Callable[..., Array]]:
  """ReLU forward with ``derivative(x, *parameters)`` backward."""

  def surrogate_derivative(x: Array, *parameters: Array) -> Array:
    *parameters, below_zero_only = parameters
    return jnp.where(below_zero_only & (x > 0), 1.0, derivative(x, *parameters))

  return for_each_impl(lambda x, *unused: jax.nn.relu(x), surrogate_derivative)


_SUGAR_BSILU = _sugar(elementwise_derivative(_b_silu))
_SUGAR_NELU = _sugar(_nelu_derivative)
_SUGAR_ELU = _sugar(elementwise_derivative(jax.nn.elu))
_SUGAR_SELU = _sugar(elementwise_derivative(jax.nn.selu))
_SUGAR_GELU = _sugar(
    elementwise_derivative(lambda x: jax.nn.gelu(x, approximate=False))
)
_SUGAR_SILU = _sugar(elementwise_derivative(jax.nn.silu))
_SUGAR_SOFTPLUS = _sugar(jax.nn.sigmoid)


def sugar_bsilu(
    x: ArrayLike,
    alpha: ArrayLike = 1.67,
    below_zero_only: bool = False,
    *,
    impl: Impl = "vjp",
) -> Array:
  r"""SUGAR with B-SiLU: ReLU forward, derivative of B-SiLU backward.

  .. math::
    \mathrm{B\text{-}SiLU}(x) = (x + \alpha)\,\sigma(x) - \alpha / 2, \qquad
    g(x) = \sigma(x) + (x + \alpha)\,\sigma(x)(1 - \sigma(x))

  with :math:`\alpha = 1.67` (Horuz et al. 2025), the surrogate that gave
  their largest gains on VGG-16 and ResNet-18.

  Args:
    x: floating-point input.
    alpha: B-SiLU's offset.
    below_zero_only: use the surrogate only for ``x <= 0`` (1 above).
    impl: ``"vjp"`` or ``"jvp"``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 0.0, 1.0])
    >>> sugar_bsilu(x)
    Array([0., 0., 1.], dtype=float32)
    >>> jax.grad(lambda x: sugar_bsilu(x).sum())(x)
    Array([0.4007, 0.9175 , 1.256 ], dtype=float32)
  """
  return select_impl(_SUGAR_BSILU, impl)(x, alpha, below_zero_only)


def sugar_nelu(
    x: ArrayLike,
    alpha: ArrayLike = 0.2,
    below_zero_only: bool = False,
    *,
    impl: Impl = "vjp",
) -> Array:
  r"""SUGAR with NeLU: ReLU forward, derivative of NeLU backward.

  .. math::
    \mathrm{NeLU}(x) = \begin{cases} x & x > 0 \\
      -\alpha / (1 + x^2) & x \le 0 \end{cases}, \qquad
    g(x) = \begin{cases} 1 & x > 0 \\ 2 \alpha x / (1 + x^2)^2 & x \le 0 \end{cases}

  Below zero the surrogate derivative is small and negative. ``alpha = 0.2``
  follows the authors' reference code. NeLU's derivative is already 1 above
  zero, so ``below_zero_only`` changes nothing; it is kept for a uniform API.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 0.0, 1.0])
    >>> jax.grad(lambda x: sugar_nelu(x).sum())(x)
    Array([-0.1,  0. ,  1. ], dtype=float32)
  """
  return select_impl(_SUGAR_NELU, impl)(x, alpha, below_zero_only)


def sugar_elu(
    x: ArrayLike,
    alpha: ArrayLike = 1.0,
    below_zero_only: bool = False,
    *,
    impl: Impl = "vjp",
) -> Array:
  r"""SUGAR with ELU: ReLU forward, :math:`\alpha e^x` below zero backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_elu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.36787945, 1.        ], dtype=float32)
  """
  return select_impl(_SUGAR_ELU, impl)(x, alpha, below_zero_only)


def sugar_selu(
    x: ArrayLike, below_zero_only: bool = False, *, impl: Impl = "vjp"
) -> Array:
  r"""SUGAR with SELU: ReLU forward, SELU's derivative backward.

  Everywhere (the default), the derivative above zero is SELU's scale 1.0507.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_selu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.6468, 1.0507 ], dtype=float32)
  """
  return select_impl(_SUGAR_SELU, impl)(x, below_zero_only)


def sugar_gelu(
    x: ArrayLike, below_zero_only: bool = False, *, impl: Impl = "vjp"
) -> Array:
  r"""SUGAR with GELU: ReLU forward, exact (erf) GELU's derivative backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_gelu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([-0.0833,  1.0833 ], dtype=float32)
  """
  return select_impl(_SUGAR_GELU, impl)(x, below_zero_only)


def sugar_silu(
    x: ArrayLike, below_zero_only: bool = False, *, impl: Impl = "vjp"
) -> Array:
  r"""SUGAR with SiLU: ReLU forward, SiLU's derivative backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_silu(x, below_zero_only=True).sum())(
    ...     jnp.array([-1.0, 1.0]))
    Array([0.07232949, 1.        ], dtype=float32)
  """
  return select_impl(_SUGAR_SILU, impl)(x, below_zero_only)


def sugar_softplus(
    x: ArrayLike, below_zero_only: bool = False, *, impl: Impl = "vjp"
) -> Array:
  r"""SUGAR with softplus: ReLU forward, :math:`\sigma(x)` backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_softplus(x).sum())(jnp.array([0.0]))
    Array([0.5], dtype=float32)
  """
  return select_impl(_SUGAR_SOFTPLUS, impl)(x, below_zero_only)
