"""Flax NNX modules for the activations that hold parameters or state.

Fixed activations need no module: ``activations.necro_relu`` drops into
``nnx.Sequential`` or any ``__call__`` as it is. The classes here are for what
a plain function cannot hold: a learned slope (:class:`PReLU`), a random
stream and a train/eval switch (:class:`RReLU`), or a hyperparameter fixed at
construction (:class:`Activation`, :class:`Maxout`, :class:`MixedActivation`).
Each is a thin shell over :mod:`activations.functional`, with the same names
and defaults as its twin in :mod:`activations.linen`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
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


class Activation(nnx.Module):
  """Any registered activation, or any callable, as a module.

  Args:
    activation: a registry spec such as ``"necro_relu(negative_slope=0.05)"``,
      or a callable, used unchanged.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from activations.nnx import Activation
    >>> layer = Activation("necro_relu(negative_slope=0.05)")
    >>> x = jnp.array([-1.0, 2.0])
    >>> layer(x)
    Array([0., 2.], dtype=float32)
    >>> jax.grad(lambda x: layer(x).sum())(x)
    Array([0.05, 1.  ], dtype=float32)
  """

  def __init__(self, activation: str | Callable[..., Array]):
    self.activation = activation
    self.function = get(activation)

  def __call__(self, x: ArrayLike) -> Array:
    return self.function(x)


class PReLU(nnx.Module):
  """Parametric ReLU with a learned negative slope, scalar or per channel.

  Takes ``flax.nnx.PReLU``'s arguments (``negative_slope_init`` first, then
  keyword-only ``dtype`` and ``param_dtype``; the parameter is
  ``negative_slope``) and adds ``num_features``, one slope per channel of the
  last axis. See :func:`activations.functional.prelu`.

  Args:
    negative_slope_init: the slope's initial value.
    dtype: the dtype of the computation; ``None`` computes in the input's
      dtype, the slope cast to it (as Flax does).
    param_dtype: dtype of the stored slope.
    num_features: channels on the last axis for one slope each; ``None`` for
      a single shared slope, as in Flax.

  Examples:
    >>> import jax.numpy as jnp
    >>> from activations.nnx import PReLU
    >>> PReLU(0.25)(jnp.array([-2.0, 3.0]))
    Array([-0.5,  3. ], dtype=float32)
    >>> layer = PReLU(0.1, num_features=2)
    >>> layer.negative_slope.shape
    (2,)
    >>> layer(jnp.array([[-2.0, 3.0]]))
    Array([[-0.2,  3. ]], dtype=float32)
  """

  def __init__(
      self,
      negative_slope_init: float = 0.01,
      *,
      dtype: Any = None,
      param_dtype: Any = jnp.float32,
      num_features: int | None = None,
  ):
    if num_features is None:
      shape: tuple[int, ...] = ()
    else:
      shape = (check_positive_integer(num_features, "num_features", "PReLU"),)
    self.num_features = num_features
    self.dtype = dtype
    self.param_dtype = param_dtype
    self.negative_slope = nnx.Param(
        jnp.full(shape, negative_slope_init, param_dtype)
    )

  def __call__(self, x: ArrayLike) -> Array:
    if self.dtype is not None:
      x = jnp.asarray(x, self.dtype)
    return functional.prelu(x, self.negative_slope[...])


class RReLU(nnx.Module):
  """Randomized leaky ReLU: random slopes in training, the mean in evaluation.

  Follows ``nnx.Dropout``: ``model.train()`` and ``model.eval()`` set
  ``deterministic``; random slopes come from a stream forked from ``rngs`` at
  construction, or from ``rngs`` passed to the call. See
  :func:`activations.functional.rrelu`.

  Args:
    lower: smallest slope, with ``0 <= lower <= upper``.
    upper: largest slope.
    deterministic: use the mean slope ``(lower + upper) / 2``.
    rng_collection: the stream of ``rngs`` the slopes are drawn from.
    rngs: an ``nnx.Rngs`` or ``nnx.RngStream``; may be ``None`` if keys are
      passed to each call or the module is only used deterministically.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from activations.nnx import RReLU
    >>> layer = RReLU(0.1, 0.3, rngs=nnx.Rngs(dropout=0))
    >>> x = jnp.array([-4.0, 2.0])
    >>> bool(-1.2 <= layer(x)[0] <= -0.4)
    True
    >>> layer.eval()
    >>> layer(x)
    Array([-0.8,  2. ], dtype=float32)
  """

  def __init__(
      self,
      lower: float = 1 / 8,
      upper: float = 1 / 3,
      *,
      deterministic: bool = False,
      rng_collection: str = "dropout",
      rngs: nnx.Rngs | nnx.RngStream | None = None,
  ):
    self.lower, self.upper = check_bounds(lower, upper, "RReLU")
    self.deterministic = deterministic
    self.rng_collection = rng_collection
    # A forked stream, as nnx.Dropout keeps: this layer's keys do not depend
    # on how many keys other layers drew.
    if isinstance(rngs, nnx.Rngs):
      self.rngs = rngs[rng_collection].fork()
    elif isinstance(rngs, nnx.RngStream):
      self.rngs = rngs.fork()
    elif rngs is None:
      self.rngs = nnx.data(None)
    else:
      raise TypeError(
          f"RReLU: rngs must be an nnx.Rngs, an nnx.RngStream or None, got"
          f" {type(rngs).__name__}."
      )

  def __call__(
      self,
      x: ArrayLike,
      *,
      deterministic: bool | None = None,
      rngs: nnx.Rngs | nnx.RngStream | Array | None = None,
  ) -> Array:
    """Applies RReLU; ``deterministic`` and ``rngs`` override the attributes."""
    if deterministic is None:
      deterministic = self.deterministic
    if deterministic:
      return functional.rrelu(x, None, self.lower, self.upper, deterministic=True)
    rngs = self.rngs if rngs is None else rngs
    if isinstance(rngs, nnx.Rngs):
      key = rngs[self.rng_collection]()
    elif isinstance(rngs, nnx.RngStream):
      key = rngs()
    elif isinstance(rngs, jax.Array):
      key = rngs
    elif rngs is None:
      raise ValueError(
          "RReLU is in training mode (deterministic=False) but has no rngs: pass"
          " rngs=nnx.Rngs(dropout=0) to the constructor or the call, or call"
          " model.eval() for the mean slope."
      )
    else:
      raise TypeError(
          f"RReLU: rngs must be an nnx.Rngs, an nnx.RngStream or a key, got"
          f" {type(rngs).__name__}."
      )
    return functional.rrelu(x, key, self.lower, self.upper)

  def set_view(self, deterministic: bool | None = None) -> None:
    """Lets ``nnx.view(model, deterministic=...)`` switch this layer."""
    if deterministic is not None:
      self.deterministic = deterministic


class Maxout(nnx.Module):
  """Maxout over groups of ``num_pieces`` consecutive features.

  The layer before it should be ``num_pieces`` times wider than the units
  wanted. See :func:`activations.functional.maxout`.

  Args:
    num_pieces: features per group.
    axis: the feature axis.

  Examples:
    >>> import jax.numpy as jnp
    >>> from activations.nnx import Maxout
    >>> Maxout(2)(jnp.array([[1.0, -2.0, 0.5, 3.0]]))
    Array([[1., 3.]], dtype=float32)
  """

  def __init__(self, num_pieces: int, axis: int = -1):
    self.num_pieces = check_positive_integer(num_pieces, "num_pieces", "Maxout")
    self.axis = axis

  def __call__(self, x: ArrayLike) -> Array:
    return functional.maxout(x, self.num_pieces, self.axis)


class MixedActivation(nnx.Module):
  """Consecutive groups of features, each through its own activation.

  See :func:`activations.functional.mixed`.

  Args:
    activations: one registry spec or callable per group.
    group_sizes: features per group; ``None`` for equal groups.

  Examples:
    >>> import jax.numpy as jnp
    >>> from activations.nnx import MixedActivation
    >>> layer = MixedActivation(["relu", "abs"])
    >>> layer(jnp.array([-1.0, -2.0, -3.0, -4.0]))
    Array([0., 0., 3., 4.], dtype=float32)
  """

  def __init__(
      self,
      activations: Sequence[str | Callable[..., Array]],
      group_sizes: Sequence[int] | None = None,
  ):
    # Resolved now, so a misspelt name fails here rather than at the first call.
    self.activations = resolve_activations(activations, "MixedActivation")
    self.group_sizes = check_group_sizes(
        group_sizes, len(self.activations), None, "MixedActivation"
    )

  def __call__(self, x: ArrayLike) -> Array:
    return functional.mixed(x, self.activations, self.group_sizes)
