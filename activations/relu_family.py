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

Hyperparameters here shape only the backward pass, so they receive no
gradient. Surrogate derivatives have finite limits at ±inf (SiLU's 0 and 1).

Convention at 0: the sign-mask surrogates take the positive branch
(``necro_relu'(0) = 1``, as ``jax.nn.leaky_relu``); SUGAR derivatives are smooth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from activations._core import elementwise_derivative
from activations.definition import Definition, Hyperparameter, define

__all__ = [
    "relu_with_leaky_backward",
    "necro_relu",
    "windowed_necro_relu",
    "sugar_bsilu",
    "sugar_nelu",
    "sugar_elu",
    "sugar_selu",
    "sugar_gelu",
    "sugar_silu",
    "sugar_softplus",
]

def _relu(x: Array, *unused: Array) -> Array:
  del unused
  return jax.nn.relu(x)


def _leaky_derivative(non_negative: Array, slope: Array) -> Array:
  return jnp.where(non_negative, 1.0, slope)


def _windowed_derivative(x: Array, slope: Array, window: Array) -> Array:
  return jnp.where(x >= 0, 1.0, jnp.where(x >= -window, slope, 0.0))


def _b_silu(x: Array, alpha: Array) -> Array:
  return (x + alpha) * jax.nn.sigmoid(x) - alpha / 2


def _nelu_derivative(x: Array, alpha: Array) -> Array:
  # 2 alpha x / (1 + x^2)^2, split so that huge |x| gives 0, not inf / inf.
  ratio = x / (1 + jnp.square(x))
  return jnp.where(x > 0, 1.0, 2 * alpha * ratio / (1 + jnp.square(x)))


def _sugar(derivative):
  """ReLU's forward with ``derivative(x, *parameters)`` backward.

  The last parameter is ``below_zero_only``; ±inf is clipped to the dtype's
  largest value first, so the derivative has its finite limits, not NaN.
  """

  def surrogate_derivative(x: Array, *parameters: Array) -> Array:
    *parameters, below_zero_only = parameters
    largest = jnp.finfo(x.dtype).max
    value = derivative(jnp.clip(x, -largest, largest), *parameters)
    return jnp.where(below_zero_only & (x > 0), 1.0, value)

  return surrogate_derivative


_SLOPE = Hyperparameter("negative_slope", 0.01)
_BELOW_ZERO_ONLY = Hyperparameter("below_zero_only", False)


relu_with_leaky_backward = define(
    Definition(
        name='relu_with_leaky_backward',
        forward=_relu,
        derivative=_leaky_derivative,
        wrt=lambda x, slope: x >= 0,
        hyperparameters=(_SLOPE,),
        doc=r"""ReLU forward; backward of LeakyReLU with ``negative_slope``.

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
  """,
    ),
    __name__,
)

necro_relu = define(
    Definition(
        name='necro_relu',
        forward=_relu,
        derivative=_leaky_derivative,
        wrt=lambda x, slope: x >= 0,
        hyperparameters=(Hyperparameter("negative_slope", 0.1),),
        doc=r"""NecroReLU: ReLU forward, derivative 0.1 (not 0) below zero backward.

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
  """,
    ),
    __name__,
)

windowed_necro_relu = define(
    Definition(
        name='windowed_necro_relu',
        forward=_relu,
        derivative=_windowed_derivative,
        hyperparameters=(
            Hyperparameter("negative_slope", 0.1, "non_negative"),
            Hyperparameter("window", 3.0, "non_negative"),
        ),
        doc=r"""Windowed NecroReLU: NecroReLU's 0.1 backward only within ``window`` below zero.

  .. math::
    f(x) = \max(x, 0), \qquad
    g(x) = \begin{cases} 1 & x \ge 0 \\
      \text{negative\_slope} & -\text{window} \le x < 0 \\
      0 & x < -\text{window} \end{cases}

  Why. NecroReLU's gradient below zero is not the gradient of any loss: while
  a unit's pre-activation is negative, moving it changes nothing in the
  forward pass, so nothing stops the optimizer from following that gradient
  for ever. In the ``dying`` study (``python -m research dying``: MNIST-1D,
  MLP 40-100-100-10, Adam at learning rate 0.03) the negative pre-activations
  of NecroReLU's second hidden layer ran away geometrically (mean -8 after 50
  steps, about -15000 after 450), the kernels feeding them grew with them
  (weight norm 10 -> about 600) until the loss exploded, while ReLU only lost
  units and LeakyReLU(0.1), whose backward is the same but is a true
  gradient, stayed stable. Adam normalises each step, so a surrogate
  derivative that merely *shrinks* far below zero would still move weights
  by a full learning rate each step: it has to be exactly 0 there. Here a
  unit just below zero (within ``window``, where a few steps can bring it
  back) gets NecroReLU's gradient and can revive; a unit pushed further down
  gets none, so the non-gradient update can lower a pre-activation to about
  ``-window``, not without bound. The price: a unit below ``-window`` on every
  example is dead, as a ReLU unit is (``window=inf`` is NecroReLU,
  ``window=0`` is ReLU's backward with derivative 1 at 0). In the same setting
  windows 0.5, 1 and 3 all stopped the divergence; 3 left the fewest units
  dead, hence the default.

  Args:
    x: floating-point input.
    negative_slope: derivative in the window, in [0, 1] in practice
      (default NecroReLU's 0.1).
    window: width of the band below zero that gets it, >= 0, in units of
      the pre-activation (default 3.0: about three standard deviations of a
      pre-activation at LeCun/He initialisation; 0.5 to 3 were measured).
    impl: ``"vjp"`` (``jax.custom_vjp``) or ``"jvp"`` (``jax.custom_jvp``).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-4.0, -0.5, 0.0, 3.0])
    >>> windowed_necro_relu(x)
    Array([0., 0., 0., 3.], dtype=float32)
    >>> jax.grad(lambda x: windowed_necro_relu(x).sum())(x)
    Array([0. , 0.1, 1. , 1. ], dtype=float32)
  """,
    ),
    __name__,
)

sugar_bsilu = define(
    Definition(
        name='sugar_bsilu',
        forward=_relu,
        derivative=_sugar(elementwise_derivative(_b_silu)),
        hyperparameters=(Hyperparameter("alpha", 1.67, "non_negative"), _BELOW_ZERO_ONLY),
        doc=r"""SUGAR with B-SiLU: ReLU forward, derivative of B-SiLU backward.

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
  """,
    ),
    __name__,
)

sugar_nelu = define(
    Definition(
        name='sugar_nelu',
        forward=_relu,
        derivative=_sugar(_nelu_derivative),
        hyperparameters=(Hyperparameter("alpha", 0.2, "non_negative"), _BELOW_ZERO_ONLY),
        doc=r"""SUGAR with NeLU: ReLU forward, derivative of NeLU backward.

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
  """,
    ),
    __name__,
)

sugar_elu = define(
    Definition(
        name='sugar_elu',
        forward=_relu,
        derivative=_sugar(elementwise_derivative(jax.nn.elu)),
        hyperparameters=(Hyperparameter("alpha", 1.0, "non_negative"), _BELOW_ZERO_ONLY),
        doc=r"""SUGAR with ELU: ReLU forward, :math:`\alpha e^x` below zero backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_elu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.36787945, 1.        ], dtype=float32)
  """,
    ),
    __name__,
)

sugar_selu = define(
    Definition(
        name='sugar_selu',
        forward=_relu,
        derivative=_sugar(elementwise_derivative(jax.nn.selu)),
        hyperparameters=(_BELOW_ZERO_ONLY,),
        doc=r"""SUGAR with SELU: ReLU forward, SELU's derivative backward.

  Everywhere (the default), the derivative above zero is SELU's scale 1.0507.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_selu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.6468, 1.0507 ], dtype=float32)
  """,
    ),
    __name__,
)

sugar_gelu = define(
    Definition(
        name='sugar_gelu',
        forward=_relu,
        derivative=_sugar(elementwise_derivative(lambda x: jax.nn.gelu(x, approximate=False))),
        hyperparameters=(_BELOW_ZERO_ONLY,),
        doc=r"""SUGAR with GELU: ReLU forward, exact (erf) GELU's derivative backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_gelu(x).sum())(jnp.array([-1.0, 1.0]))
    Array([-0.0833,  1.0833 ], dtype=float32)
  """,
    ),
    __name__,
)

sugar_silu = define(
    Definition(
        name='sugar_silu',
        forward=_relu,
        derivative=_sugar(elementwise_derivative(jax.nn.silu)),
        hyperparameters=(_BELOW_ZERO_ONLY,),
        doc=r"""SUGAR with SiLU: ReLU forward, SiLU's derivative backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_silu(x, below_zero_only=True).sum())(
    ...     jnp.array([-1.0, 1.0]))
    Array([0.07232949, 1.        ], dtype=float32)
  """,
    ),
    __name__,
)

sugar_softplus = define(
    Definition(
        name='sugar_softplus',
        forward=_relu,
        derivative=_sugar(jax.nn.sigmoid),
        hyperparameters=(_BELOW_ZERO_ONLY,),
        doc=r"""SUGAR with softplus: ReLU forward, :math:`\sigma(x)` backward.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> jax.grad(lambda x: sugar_softplus(x).sum())(jnp.array([0.0]))
    Array([0.5], dtype=float32)
  """,
    ),
    __name__,
)

__test__ = {name: globals()[name] for name in __all__}  # doctests of built functions
