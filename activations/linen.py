"""Flax Linen modules for the activations that hold parameters or state.

Fixed activations need no module: ``activations.necro_relu`` drops into
``nn.Sequential``, or into a module field such as ``activation_fn``, as it is.
The classes here mirror :mod:`activations.nnx` (same names, arguments and
defaults) over the same :mod:`activations.functional`; the one Linen-specific
difference is :class:`RReLU`'s ``deterministic``, which follows ``nn.Dropout``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from activations import functional
from activations.functional import (
    check_bounds,
    check_positive_integer,
    check_group_sizes,
    resolve_activations,
)
from activations.registry import get

__all__ = ["Activation", "PReLU", "RReLU", "Maxout", "MixedActivation"]


class Activation(nn.Module):
  """Any registered activation, or any callable, as a module.

  Attributes:
    activation: a registry spec such as ``"necro_relu(negative_slope=0.05)"``,
      or a callable, used unchanged.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from activations.linen import Activation
    >>> layer = Activation("necro_relu(negative_slope=0.05)")
    >>> x = jnp.array([-1.0, 2.0])
    >>> layer.apply({}, x)
    Array([0., 2.], dtype=float32)
    >>> jax.grad(lambda x: layer.apply({}, x).sum())(x)
    Array([0.05, 1.  ], dtype=float32)
  """

  activation: str | Callable[..., Array]

  def __post_init__(self) -> None:
    get(self.activation)  # a misspelt name fails here, not at the first call
    super().__post_init__()

  def __call__(self, x: ArrayLike) -> Array:
    return get(self.activation)(x)


class PReLU(nn.Module):
  """Parametric ReLU with a learned negative slope, scalar or per channel.

  Takes ``flax.linen.PReLU``'s attributes in its order (``param_dtype``,
  ``negative_slope_init``; the parameter is ``negative_slope``), and adds
  keyword-only ``dtype`` (as ``flax.nnx.PReLU``) and ``num_features``, one
  slope per channel of the last axis. See :func:`activations.functional.prelu`.

  Attributes:
    param_dtype: dtype of the stored slope.
    negative_slope_init: the slope's initial value.
    dtype: the dtype of the computation; ``None``: the input's (keyword-only).
    num_features: channels on the last axis for one slope each; ``None`` for
      a single shared slope (keyword-only).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from activations.linen import PReLU
    >>> layer = PReLU(negative_slope_init=0.1, num_features=2)
    >>> x = jnp.array([[-2.0, 3.0]])
    >>> variables = layer.init(jax.random.key(0), x)
    >>> variables["params"]["negative_slope"].shape
    (2,)
    >>> layer.apply(variables, x)
    Array([[-0.2,  3. ]], dtype=float32)
  """

  param_dtype: Any = jnp.float32
  negative_slope_init: float = 0.01
  dtype: Any = dataclasses.field(default=None, kw_only=True)
  num_features: int | None = dataclasses.field(default=None, kw_only=True)

  def __post_init__(self) -> None:
    if self.num_features is not None:
      check_positive_integer(self.num_features, "num_features", "PReLU")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: ArrayLike) -> Array:
    shape = () if self.num_features is None else (self.num_features,)
    negative_slope = self.param(
        "negative_slope",
        lambda key, shape, dtype: jnp.full(shape, self.negative_slope_init, dtype),
        shape,
        self.param_dtype,
    )
    if self.dtype is not None:
      x = jnp.asarray(x, self.dtype)
    return functional.prelu(x, negative_slope)


class RReLU(nn.Module):
  """Randomized leaky ReLU: random slopes in training, the mean in evaluation.

  Follows ``nn.Dropout``: ``deterministic`` is given either as a field or to
  the call (exactly one of them), and random slopes use the
  ``rng_collection`` stream, e.g. ``apply(..., rngs={"dropout": key})``. See
  :func:`activations.functional.rrelu`.

  Attributes:
    lower: smallest slope, with ``0 <= lower <= upper``.
    upper: largest slope.
    deterministic: use the mean slope ``(lower + upper) / 2`` (keyword-only).
    rng_collection: the rng stream the slopes are drawn from (keyword-only).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from activations.linen import RReLU
    >>> layer = RReLU(0.1, 0.3)
    >>> x = jnp.array([-4.0, 2.0])
    >>> layer.apply({}, x, deterministic=True)
    Array([-0.8,  2. ], dtype=float32)
    >>> y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    >>> bool(-1.2 <= y[0] <= -0.4)
    True
  """

  lower: float = 1 / 8
  upper: float = 1 / 3
  deterministic: bool | None = dataclasses.field(default=None, kw_only=True)
  rng_collection: str = dataclasses.field(default="dropout", kw_only=True)

  def __post_init__(self) -> None:
    check_bounds(self.lower, self.upper, "RReLU")
    super().__post_init__()

  def __call__(self, x: ArrayLike, deterministic: bool | None = None) -> Array:
    """Applies RReLU; ``deterministic`` here or as a field, not both."""
    deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
    if deterministic:
      return functional.rrelu(x, None, self.lower, self.upper, deterministic=True)
    key = self.make_rng(self.rng_collection)
    return functional.rrelu(x, key, self.lower, self.upper)


class Maxout(nn.Module):
  """Maxout over groups of ``num_pieces`` consecutive features.

  The layer before it should be ``num_pieces`` times wider than the units
  wanted. See :func:`activations.functional.maxout`.

  Attributes:
    num_pieces: features per group.
    axis: the feature axis.

  Examples:
    >>> import jax.numpy as jnp
    >>> from activations.linen import Maxout
    >>> Maxout(2).apply({}, jnp.array([[1.0, -2.0, 0.5, 3.0]]))
    Array([[1., 3.]], dtype=float32)
  """

  num_pieces: int
  axis: int = -1

  def __post_init__(self) -> None:
    check_positive_integer(self.num_pieces, "num_pieces", "Maxout")
    super().__post_init__()

  def __call__(self, x: ArrayLike) -> Array:
    return functional.maxout(x, self.num_pieces, self.axis)


class MixedActivation(nn.Module):
  """Consecutive groups of features, each through its own activation.

  See :func:`activations.functional.mixed`.

  Attributes:
    activations: one registry spec or callable per group.
    group_sizes: features per group; ``None`` for equal groups.

  Examples:
    >>> import jax.numpy as jnp
    >>> from activations.linen import MixedActivation
    >>> layer = MixedActivation(["relu", "abs"])
    >>> layer.apply({}, jnp.array([-1.0, -2.0, -3.0, -4.0]))
    Array([0., 0., 3., 4.], dtype=float32)
  """

  activations: Sequence[str | Callable[..., Array]]
  group_sizes: Sequence[int] | None = None

  def __post_init__(self) -> None:
    # Checked now, so a misspelt name fails here rather than at the first call.
    functions = resolve_activations(self.activations, "MixedActivation")
    sizes = check_group_sizes(self.group_sizes, len(functions), None, "MixedActivation")
    # Tuples, not lists, so the module stays hashable (jit static arguments).
    object.__setattr__(self, "activations", tuple(self.activations))
    object.__setattr__(self, "group_sizes", sizes)
    super().__post_init__()

  def __call__(self, x: ArrayLike) -> Array:
    return functional.mixed(x, self.activations, self.group_sizes)
