"""Pure functions behind the Flax modules: PReLU, RReLU, Maxout, mixed groups.

``activations.nnx`` and ``activations.linen`` only hold parameters and
hyperparameters and call these, so the two APIs share one implementation.
Unlike the surrogates, every function here uses its true derivative: plain
``jax.numpy``, no custom gradient. Each checks that ``x`` is floating point.

:func:`mixed_from_specs` is :func:`mixed` with its groups written as text: the
registry's ``mixed`` combinator, so that one spec names a mixed layer.
"""

from __future__ import annotations

import ast
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from activations._core import check_input
from activations.registry import get, register_combinator

__all__ = ["prelu", "rrelu", "maxout", "mixed", "mixed_from_specs"]


def prelu(x: ArrayLike, negative_slope: ArrayLike) -> Array:
  r"""Parametric ReLU (He et al. 2015): a leaky ReLU whose slope is learned.

  .. math::
    f(x) = \begin{cases} x & x \ge 0 \\ a\,x & x < 0 \end{cases}, \qquad
    \frac{\partial f}{\partial x} = \begin{cases} 1 & x \ge 0 \\ a & x < 0
    \end{cases}, \qquad
    \frac{\partial f}{\partial a} = \begin{cases} 0 & x \ge 0 \\ x & x < 0
    \end{cases}

  The gradient with respect to both ``x`` and ``negative_slope`` is the true
  one, so the slope ``a`` can be trained.

  Args:
    x: floating-point input; the last axis holds the channels.
    negative_slope: a scalar shared by all channels, or one slope per channel
      (shape ``(x.shape[-1],)``). It is cast to ``x.dtype``, as Flax's own
      PReLU does, so a float32 parameter works with bfloat16 activations.

  Returns:
    An array with the shape and dtype of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([[-2.0, 3.0], [-1.0, -4.0]])
    >>> slope = jnp.array([0.1, 0.5])
    >>> prelu(x, slope)
    Array([[-0.2,  3. ], [-0.1, -2. ]], dtype=float32)
    >>> jax.grad(lambda slope: prelu(x, slope).sum())(slope)
    Array([-3., -4.], dtype=float32)

  References:
    He, Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers".
  """
  x = check_input(x, "prelu")
  slope = _slope_like(x, negative_slope)
  return jnp.where(x >= 0, x, slope * x)


def _slope_like(x: Array, negative_slope: ArrayLike) -> Array:
  """The slope cast to ``x.dtype`` and shaped to broadcast over ``x``."""
  slope = jnp.asarray(negative_slope)
  if not (
      jnp.issubdtype(slope.dtype, jnp.floating)
      or jnp.issubdtype(slope.dtype, jnp.integer)
  ):
    raise TypeError(
        f"prelu: negative_slope must be a real number or array, got dtype"
        f" {slope.dtype}."
    )
  slope = slope.astype(x.dtype)
  if slope.ndim == 0:
    return slope
  channels = x.shape[-1] if x.ndim else None
  if slope.ndim != 1 or slope.shape[0] != channels:
    raise ValueError(
        f"prelu: negative_slope must be a scalar or have shape ({channels},),"
        f" one slope per channel of the last axis of x (shape {x.shape}); got"
        f" shape {slope.shape}."
    )
  # Explicit reshape: implicit rank promotion is refused by strict configs.
  return slope.reshape((1,) * (x.ndim - 1) + slope.shape)


def check_bounds(
    lower: Any, upper: Any, owner: str = "rrelu"
) -> tuple[float, float]:
  """``(lower, upper)`` as floats, or a clear error if they are not valid."""
  for name, value in (("lower", lower), ("upper", upper)):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
      raise TypeError(f"{owner}: {name} must be a Python number, got {value!r}.")
  lower, upper = float(lower), float(upper)
  if not 0.0 <= lower <= upper:
    raise ValueError(
        f"{owner} needs 0 <= lower <= upper, got lower={lower} and upper={upper}."
    )
  return lower, upper


def rrelu(
    x: ArrayLike,
    key: Array | None,
    lower: float = 1 / 8,
    upper: float = 1 / 3,
    *,
    deterministic: bool = False,
) -> Array:
  r"""Randomized leaky ReLU (Xu et al. 2015): a random slope in training.

  .. math::
    f(x) = \begin{cases} x & x \ge 0 \\ a\,x & x < 0 \end{cases}, \qquad
    a \sim U(\text{lower}, \text{upper}) \text{ per element in training}, \qquad
    a = \frac{\text{lower} + \text{upper}}{2} \text{ when deterministic.}

  The gradient is the true derivative of the function sampled: ``a`` below
  zero, 1 above. The defaults 1/8 and 1/3 are the paper's (its slopes
  ``1/U(3, 8)``), also PyTorch's.

  Args:
    x: floating-point input.
    key: a PRNG key for the slopes; may be ``None`` only when deterministic.
    lower: smallest slope, a Python number with ``0 <= lower <= upper``.
    upper: largest slope.
    deterministic: use the mean slope ``(lower + upper) / 2`` (evaluation)
      instead of random slopes (training). A Python bool.

  Returns:
    An array with the shape and dtype of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-4.0, 2.0])
    >>> rrelu(x, None, 0.1, 0.3, deterministic=True)
    Array([-0.8,  2. ], dtype=float32)
    >>> y = rrelu(x, jax.random.key(0), 0.1, 0.3)
    >>> bool(-1.2 <= y[0] <= -0.4), y[1]
    (True, Array(2., dtype=float32))

  References:
    Xu, Wang, Chen, Li 2015, "Empirical Evaluation of Rectified Activations
    in Convolutional Network".
  """
  x = check_input(x, "rrelu")
  lower, upper = check_bounds(lower, upper)
  slope = _rrelu_slope(x, key, lower, upper, deterministic)
  return jnp.where(x >= 0, x, slope * x)


def _rrelu_slope(
    x: Array, key: Array | None, lower: float, upper: float, deterministic: Any
) -> Array:
  """:func:`rrelu`'s negative slope: the mean, or one uniform draw per element."""
  if not isinstance(deterministic, (bool, jnp.bool_)):
    raise TypeError(
        f"rrelu: deterministic must be True or False, got {deterministic!r}."
    )
  if deterministic:
    return jnp.asarray((lower + upper) / 2, x.dtype)
  if key is None:
    raise ValueError(
        "rrelu draws random slopes when deterministic=False, so it needs a PRNG"
        " key, e.g. rrelu(x, jax.random.key(0)); pass deterministic=True for"
        " the mean slope."
    )
  return jax.random.uniform(key, x.shape, x.dtype, minval=lower, maxval=upper)


def check_positive_integer(value: Any, name: str, owner: str) -> int:
  if isinstance(value, bool):
    raise TypeError(f"{owner}: {name} must be a positive integer, got {value!r}.")
  try:
    value = operator.index(value)
  except TypeError:
    raise TypeError(
        f"{owner}: {name} must be a positive integer, got {value!r}."
    ) from None
  if value < 1:
    raise ValueError(f"{owner}: {name} must be a positive integer, got {value}.")
  return value


def maxout(x: ArrayLike, num_pieces: int, axis: int = -1) -> Array:
  r"""Maxout (Goodfellow et al. 2013): the max over groups of features.

  The feature axis is split into groups of ``num_pieces`` consecutive
  features, and each group is replaced by its maximum, so the axis shrinks by
  a factor ``num_pieces``:

  .. math::
    f(x)_i = \max_{0 \le j < k} x_{i k + j}, \qquad k = \text{num\_pieces}.

  A layer of width ``k * m`` followed by ``maxout(k)`` gives ``m`` units: the
  piecewise-linear unit costs ``k`` times the parameters.

  Args:
    x: floating-point input.
    num_pieces: features per group, a positive integer that divides
      ``x.shape[axis]``.
    axis: the feature axis.

  Returns:
    ``x`` with ``x.shape[axis] // num_pieces`` features along ``axis``.

  Examples:
    >>> import jax.numpy as jnp
    >>> maxout(jnp.array([[1.0, -2.0, 0.5, 3.0]]), num_pieces=2)
    Array([[1., 3.]], dtype=float32)

  References:
    Goodfellow, Warde-Farley, Mirza, Courville, Bengio 2013, "Maxout
    Networks".
  """
  x = check_input(x, "maxout")
  num_pieces = check_positive_integer(num_pieces, "num_pieces", "maxout")
  if x.ndim == 0:
    raise ValueError("maxout needs an array with a feature axis, got a scalar.")
  try:
    axis = operator.index(axis)
  except TypeError:
    raise TypeError(f"maxout: axis must be an integer, got {axis!r}.") from None
  if not -x.ndim <= axis < x.ndim:
    raise ValueError(
        f"maxout: axis {axis} is out of range for an array of shape {x.shape}."
    )
  axis %= x.ndim
  features = x.shape[axis]
  if features % num_pieces:
    raise ValueError(
        f"maxout: the {features} features along axis {axis} cannot be split into"
        f" groups of num_pieces={num_pieces}; num_pieces must divide the number"
        " of features."
    )
  grouped = x.reshape(
      x.shape[:axis] + (features // num_pieces, num_pieces) + x.shape[axis + 1 :]
  )
  return jnp.max(grouped, axis=axis + 1)


def check_group_sizes(
    group_sizes: Sequence[int] | None,
    num_groups: int,
    features: int | None,
    owner: str = "mixed",
) -> tuple[int, ...] | None:
  """Checks ``group_sizes``; with ``features``, also that they fit ``x``."""
  if group_sizes is None:
    if features is None:
      return None
    if features % num_groups:
      raise ValueError(
          f"{owner}: {features} features cannot be split equally between"
          f" {num_groups} activations; pass group_sizes that sum to {features}."
      )
    return (features // num_groups,) * num_groups
  if isinstance(group_sizes, (str, bytes)) or not isinstance(group_sizes, Sequence):
    raise TypeError(
        f"{owner}: group_sizes must be a sequence of positive integers or None,"
        f" got {group_sizes!r}."
    )
  sizes = tuple(
      check_positive_integer(size, "each group size", owner)
      for size in group_sizes
  )
  if len(sizes) != num_groups:
    raise ValueError(
        f"{owner}: got {num_groups} activations but {len(sizes)} group sizes;"
        " give one size per activation."
    )
  if features is not None and sum(sizes) != features:
    raise ValueError(
        f"{owner}: group_sizes {sizes} sum to {sum(sizes)}, but x has {features}"
        " features on its last axis; they must be equal."
    )
  return sizes


def resolve_activations(
    activations: Any, owner: str = "mixed"
) -> tuple[Callable[..., Array], ...]:
  """Each spec or callable in ``activations``, resolved with the registry."""
  if isinstance(activations, (str, bytes)) or not isinstance(activations, Sequence):
    raise TypeError(
        f"{owner}: activations must be a sequence of registry specs or callables,"
        f" e.g. ['relu', 'tanh'], got {activations!r}."
    )
  if not activations:
    raise ValueError(f"{owner} needs at least one activation, got none.")
  return tuple(get(activation) for activation in activations)


def mixed(
    x: ArrayLike,
    activations: Sequence[str | Callable[..., Array]],
    group_sizes: Sequence[int] | None = None,
) -> Array:
  r"""Groups of features through different activations, in one layer.

  The last axis is split into consecutive groups; group ``i`` goes through
  ``activations[i]`` and the results are concatenated back, so the shape is
  unchanged:

  .. math::
    f(x) = [\,f_1(x_{G_1}),\ f_2(x_{G_2}),\ \dots\,].

  Args:
    x: floating-point input; the last axis holds the features.
    activations: one elementwise activation per group: registry specs such
      as ``"necro_relu(negative_slope=0.05)"`` or callables.
    group_sizes: features per group, summing to ``x.shape[-1]``; ``None``
      splits the features equally (their number must then be divisible by
      the number of activations).

  Returns:
    An array with the shape and dtype of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([-1.0, -1.0, -1.0, 2.0])
    >>> mixed(x, ["relu", "tanh", "abs"], group_sizes=[1, 1, 2])
    Array([ 0.       , -0.7615942,  1.       ,  2.       ], dtype=float32)
    >>> jax.grad(lambda x: mixed(x, ["necro_relu", "identity"]).sum())(x)
    Array([0.1, 0.1, 1. , 1. ], dtype=float32)
  """
  x = check_input(x, "mixed")
  functions = resolve_activations(activations)
  if x.ndim == 0:
    raise ValueError("mixed needs an array with a feature axis, got a scalar.")
  sizes = check_group_sizes(group_sizes, len(functions), x.shape[-1])
  outputs = []
  start = 0
  for function, size in zip(functions, sizes):
    group = x[..., start : start + size]
    start += size
    output = jnp.asarray(function(group))
    if output.shape != group.shape or output.dtype != group.dtype:
      raise ValueError(
          f"mixed: activation {getattr(function, '__name__', function)!r} must be"
          f" elementwise, keeping shape and dtype; it turned {group.shape}"
          f" {group.dtype} into {output.shape} {output.dtype}."
      )
    outputs.append(output)
  return jnp.concatenate(outputs, axis=-1)


def split_specs(text: str, owner: str = "mixed") -> tuple[str, ...]:
  """The specs in a comma-separated text; commas inside brackets belong to a spec.

  Examples:
    >>> split_specs("relu, necro_relu(negative_slope=0.05)")
    ('relu', 'necro_relu(negative_slope=0.05)')
  """
  if not isinstance(text, str):
    raise TypeError(f"{owner}: activations must be a text of comma-separated specs, got {text!r}.")
  source = f"({text},)"
  try:
    tree = ast.parse(source, mode="eval").body
  except SyntaxError:
    tree = None
  if not isinstance(tree, ast.Tuple) or not tree.elts:
    raise ValueError(
        f"{owner}: cannot read {text!r} as comma-separated activation specs, e.g. 'relu, abs'."
    )
  return tuple(ast.get_source_segment(source, element) for element in tree.elts)


def _group_sizes_from_text(text: str | None, owner: str) -> tuple[int, ...] | None:
  if text is None:
    return None
  try:
    sizes = ast.literal_eval(f"({text},)") if isinstance(text, str) else None
  except (SyntaxError, ValueError):
    sizes = None
  if not isinstance(sizes, tuple):
    raise ValueError(
        f"{owner}: group_sizes must be a text of comma-separated positive integers such as"
        f" '1, 3', or None for equal groups; got {text!r}."
    )
  return sizes


def check_mixed_specs(activations: str | None = None, group_sizes: str | None = None) -> None:
  """Checks the text arguments of :func:`mixed_from_specs` that are given.

  What the registry runs on a spec before any input exists: the parts must be
  known activations, the sizes positive integers, one per part.

  Examples:
    >>> check_mixed_specs("relu, abz")
    Traceback (most recent call last):
    ...
    ValueError: Unknown activation 'abz'. Did you mean 'abs'? ...
  """
  if activations is not None and not isinstance(activations, str):
    raise ValueError(f"mixed: activations must be a text of comma-separated specs, got {activations!r}.")
  functions = None if activations is None else resolve_activations(split_specs(activations))
  sizes = _group_sizes_from_text(group_sizes, "mixed")
  check_group_sizes(sizes, len(functions) if functions else len(sizes or ()), None)


def mixed_from_specs(
    x: ArrayLike, activations: str, group_sizes: str | None = None
) -> Array:
  r""":func:`mixed` with its groups written as text, so that one spec names it.

  ``activations.get("mixed(activations='relu, abs')")`` is this function with
  the text bound: the registry's ``mixed`` combinator. A research grid trains
  it like any other activation (a text is a static hyperparameter, fixed at
  trace time), e.g. ``--activations "relu,mixed(activations='relu,abs')"``.
  Its derivative is its parts' (each a catalogue entry, tested there).

  Args:
    x: floating-point input; the last axis holds the features.
    activations: comma-separated specs, one per group of consecutive features,
      e.g. ``"relu, necro_relu(negative_slope=0.05)"``.
    group_sizes: comma-separated features per group, e.g. ``"1, 3"``; ``None``
      splits the features equally.

  Returns:
    ``mixed(x, activations, group_sizes)`` with both read from their text.

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([-1.0, -2.0, -3.0, 4.0])
    >>> mixed_from_specs(x, "relu, abs")
    Array([0., 0., 3., 4.], dtype=float32)
    >>> mixed_from_specs(x, "relu, abs", group_sizes="1, 3")
    Array([0., 2., 3., 4.], dtype=float32)
  """
  specs = split_specs(activations)
  return mixed(x, specs, _group_sizes_from_text(group_sizes, "mixed"))


register_combinator("mixed", mixed_from_specs, check_mixed_specs)
