"""True-derivative baselines: the usual activations, with a lean backward pass.

Each backward pass uses the true derivative, so these are the reference points
every surrogate is compared against. They are built with the same machinery as
the surrogates, which buys two things over ``jax.nn``: the forward pass saves
only what the derivative needs (a one-byte mask for piecewise-linear functions,
the output for tanh and sigmoid, the input where a hyperparameter is learnable
or the derivative must be exact in 16 bits), and every function also comes as
``impl="jvp"`` for forward-mode differentiation. Float hyperparameters
(``leaky_relu``'s slope, ``elu``'s and ``celu``'s alpha) get their true
gradients, as in ``jax.nn``.

Conventions at the kinks follow ``jax.nn``: ``relu'(0) = 0``,
``leaky_relu'(0) = 1``, ``relu6'(0) = relu6'(6) = 0``, ``hard_tanh'(±1) = 1``,
``abs'(0) = 0`` and ``elu'(0) = alpha``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from activations._core import elementwise_derivative
from activations.definition import Definition, Hyperparameter, define

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


def _finite(x: Array) -> Array:
  """``x`` with ±inf clipped to the dtype's largest value (NaN stays NaN)."""
  largest = jnp.finfo(x.dtype).max
  return jnp.clip(x, -largest, largest)


def _elu_derivative(x: Array, alpha: Array) -> Array:
  # From the input, in float32 for 16-bit inputs: y + alpha from a rounded
  # output would not cancel at saturation.
  return jnp.where(x > 0, 1.0, alpha * jnp.exp(x))


def _celu_derivative(x: Array, alpha: Array) -> Array:
  return jnp.where(x > 0, 1.0, jnp.exp(x / alpha))


def _celu_alpha_derivative(x: Array, alpha: Array) -> Array:
  ratio = jnp.minimum(x, 0.0) / alpha
  return jnp.where(x > 0, 0.0, jnp.expm1(ratio) - ratio * jnp.exp(ratio))


def _selu_derivative(x: Array) -> Array:
  return _SELU_SCALE * jnp.where(x > 0, 1.0, _SELU_ALPHA * jnp.exp(x))


def _silu_derivative(x: Array) -> Array:
  # s(x) + x s(x) s(-x), with ±inf clipped: the limits are 1 and 0, not NaN.
  x = _finite(x)
  return jax.nn.sigmoid(x) * (1 + x * jax.nn.sigmoid(-x))


def _gelu(x: Array, *, approximate: bool) -> Array:
  return jax.nn.gelu(x, approximate=approximate)


def _gelu_derivative(x: Array, *, approximate: bool) -> Array:
  # Beyond |x| = 10 the derivative is 0 or 1 to float64 precision; the clip
  # keeps the tanh form's x**3 from overflowing into 0 * inf.
  return elementwise_derivative(lambda x: jax.nn.gelu(x, approximate=approximate))(
      jnp.clip(x, -10.0, 10.0)
  )


relu = define(
    Definition(
        name='relu',
        forward=jax.nn.relu,
        derivative=_indicator,
        wrt=lambda x: x > 0,
        doc=r"""Rectified linear unit, :math:`\max(x, 0)`, with derivative 0 at 0.

  Saves a one-byte mask for the backward pass, as ``jax.nn.relu`` does.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 0.0, 2.0])
    >>> relu(x)
    Array([0., 0., 2.], dtype=float32)
    >>> jax.grad(lambda x: relu(x).sum())(x)
    Array([0., 0., 1.], dtype=float32)
  """,
    ),
    __name__,
)

leaky_relu = define(
    Definition(
        name='leaky_relu',
        forward=jax.nn.leaky_relu,
        derivative=lambda x, slope: jnp.where(x >= 0, 1.0, slope),
        hyperparameters=(
            Hyperparameter(
                "negative_slope",
                0.01,
                derivative=lambda x, slope: jnp.where(x >= 0, 0.0, x),
            ),
        ),
        doc=r"""Leaky ReLU: :math:`x` for :math:`x \ge 0`, ``negative_slope * x`` below.

  Same values and gradients as ``jax.nn.leaky_relu``, including the
  gradient with respect to ``negative_slope``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 2.0])
    >>> leaky_relu(x, negative_slope=0.1)
    Array([-0.2,  0. ,  2. ], dtype=float32)
    >>> jax.grad(lambda x: leaky_relu(x, 0.1).sum())(x)
    Array([0.1, 1. , 1. ], dtype=float32)
  """,
    ),
    __name__,
)

relu6 = define(
    Definition(
        name='relu6',
        forward=jax.nn.relu6,
        derivative=_indicator,
        wrt=lambda x: (x > 0) & (x < 6),
        doc=r"""ReLU capped at 6, :math:`\min(\max(x, 0), 6)`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 3.0, 7.0])
    >>> relu6(x)
    Array([0., 3., 6.], dtype=float32)
    >>> jax.grad(lambda x: relu6(x).sum())(x)
    Array([0., 1., 0.], dtype=float32)
  """,
    ),
    __name__,
)

hard_tanh = define(
    Definition(
        name='hard_tanh',
        forward=jax.nn.hard_tanh,
        derivative=_indicator,
        wrt=lambda x: jnp.abs(x) <= 1,
        doc=r"""Hard tanh, :math:`\mathrm{clip}(x, -1, 1)`; derivative 1 on :math:`[-1, 1]`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.5, 1.0])
    >>> hard_tanh(x)
    Array([-1. ,  0.5,  1. ], dtype=float32)
    >>> jax.grad(lambda x: hard_tanh(x).sum())(x)
    Array([0., 1., 1.], dtype=float32)
  """,
    ),
    __name__,
)

abs = define(
    Definition(
        name='abs',
        forward=jnp.abs,
        derivative=lambda x: jnp.sign(x),
        doc=r"""Absolute value, :math:`|x|`, derivative :math:`\mathrm{sign}(x)`.

  Good on XOR-like problems, where the class depends on the sign pattern.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-2.0, 0.0, 3.0])
    >>> abs(x)
    Array([2., 0., 3.], dtype=float32)
    >>> jax.grad(lambda x: abs(x).sum())(x)
    Array([-1.,  0.,  1.], dtype=float32)
  """,
    ),
    __name__,
)

identity = define(
    Definition(
        name='identity',
        forward=lambda x: x,
        derivative=_ones,
        wrt="output",
        doc=r"""The identity, for linear networks and ablations; saves nothing.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: identity(x).sum())(jnp.array([-2.0, 3.0]))
    Array([1., 1.], dtype=float32)
  """,
    ),
    __name__,
)

elu = define(
    Definition(
        name='elu',
        forward=jax.nn.elu,
        derivative=_elu_derivative,
        hyperparameters=(
            Hyperparameter(
                "alpha",
                1.0,
                derivative=lambda x, alpha: jnp.where(x > 0, 0.0, jnp.expm1(jnp.minimum(x, 0.0))),
            ),
        ),
        doc=r"""Exponential linear unit: :math:`x` above 0, :math:`\alpha(e^x - 1)` below.

  The derivative below 0, :math:`\alpha e^x`, is computed from the input (in
  float32 for 16-bit inputs); ``alpha`` gets its true gradient.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 2.0])
    >>> elu(x)
    Array([-0.63212055,  2.        ], dtype=float32)
    >>> jax.grad(lambda x: elu(x).sum())(x)
    Array([0.36787945, 1.        ], dtype=float32)
  """,
    ),
    __name__,
)

celu = define(
    Definition(
        name='celu',
        forward=jax.nn.celu,
        derivative=_celu_derivative,
        hyperparameters=(Hyperparameter("alpha", 1.0, "positive", derivative=_celu_alpha_derivative),),
        doc=r"""Continuously differentiable ELU: :math:`\alpha(e^{x/\alpha} - 1)` below 0.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 2.0])
    >>> jax.grad(lambda x: celu(x, alpha=2.0).sum())(x)
    Array([0.60653067, 1.        ], dtype=float32)
  """,
    ),
    __name__,
)

selu = define(
    Definition(
        name='selu',
        forward=jax.nn.selu,
        derivative=_selu_derivative,
        doc=r"""Scaled ELU (Klambauer et al. 2017), self-normalising with LeCun init.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 2.0])
    >>> selu(x)
    Array([-1.1113307,  2.101402 ], dtype=float32)
    >>> jax.grad(lambda x: selu(x).sum())(x)
    Array([0.6468, 1.0507  ], dtype=float32)
  """,
    ),
    __name__,
)

gelu = define(
    Definition(
        name='gelu',
        forward=_gelu,
        derivative=_gelu_derivative,
        hyperparameters=(Hyperparameter("approximate", True, static=True),),
        doc=r"""Gaussian error linear unit, :math:`x \Phi(x)`, as ``jax.nn.gelu``.

  ``approximate`` (a Python bool, fixed at trace time) picks the tanh
  approximation, JAX's default; ``False`` gives the exact erf form. The
  backward pass saves only the input and recomputes the derivative.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, 1.0])
    >>> jax.grad(lambda x: gelu(x, approximate=False).sum())(x)
    Array([-0.0833,  1.0833 ], dtype=float32)
  """,
    ),
    __name__,
)

silu = define(
    Definition(
        name='silu',
        forward=jax.nn.silu,
        derivative=_silu_derivative,
        doc=r"""SiLU / swish, :math:`x\,\sigma(x)`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: silu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.0723, 0.9277], dtype=float32)
  """,
    ),
    __name__,
)

softplus = define(
    Definition(
        name='softplus',
        forward=jax.nn.softplus,
        derivative=lambda x: jax.nn.sigmoid(x),
        doc=r"""Softplus, :math:`\log(1 + e^x)`: a smooth ReLU without exact zeros.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: softplus(x).sum())(jnp.array([0.0]))
    Array([0.5], dtype=float32)
  """,
    ),
    __name__,
)

tanh = define(
    Definition(
        name='tanh',
        forward=jnp.tanh,
        derivative=lambda y: 1 - y**2,
        wrt="output",
        doc=r"""Hyperbolic tangent; the backward uses :math:`1 - y^2` from the output.

  Computing the derivative from the output saves nothing beyond the output,
  which the next layer keeps anyway.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: tanh(x).sum())(jnp.array([0.0, 1.0]))
    Array([1.        , 0.41997433], dtype=float32)
  """,
    ),
    __name__,
)

sigmoid = define(
    Definition(
        name='sigmoid',
        forward=jax.nn.sigmoid,
        derivative=lambda y: y * (1 - y),
        wrt="output",
        doc=r"""Logistic sigmoid; the backward uses :math:`y(1 - y)`, at most 0.25.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sigmoid(x).sum())(jnp.array([0.0, 2.0]))
    Array([0.25 , 0.105], dtype=float32)
  """,
    ),
    __name__,
)

__test__ = {name: globals()[name] for name in __all__}  # doctests of built functions
