"""The machinery every activation here is built on.

An activation is a pair: the ``forward`` function that computes values, and the
derivative that backprop multiplies the incoming cotangent by. Here the two are
chosen independently. Three builders cover the cases, from the most convenient to
the most general:

* :func:`surrogate` -- give a forward function and a ``backward`` function; the
  gradient is the derivative of ``backward``, found by JAX.
* :func:`with_derivative` -- give the derivative itself, as a function of the
  input, of the output, or of a smaller residual such as the sign mask.
* :func:`custom_backward` -- give a full backward rule, for backward passes that
  are not a per-element multiply (clipping or noising the cotangent).

Every function these return takes ``(x, *hyperparameters)``. Hyperparameters are
turned into arrays, so they can be traced, swept with ``jax.vmap`` and changed
without a new trace. A hyperparameter gets its true gradient where
``with_derivative`` is given one (``hyperparameter_derivatives``, as the
catalogue's leaky_relu, elu and celu are); one that only shapes the backward
pass (NecroReLU's slope, SUGAR's alpha) gets zero. The output and gradient keep the
dtype of ``x``. Derivatives of float16 and bfloat16 inputs are computed in float32
and cast back, so they do not overflow. A NaN input gives a NaN output and a NaN
gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

Impl = Literal["vjp", "jvp"]
IMPLS: tuple[Impl, ...] = ("vjp", "jvp")
Wrt = Literal["input", "output"] | Callable[..., Array]
Activation = Callable[..., Array]


def check_input(x: Any, name: str = "activation") -> Array:
  """Returns ``x`` as a floating-point array, or raises a ``TypeError``.

  Python numbers become float arrays; integer, boolean and complex arrays are
  refused, because a gradient with respect to them means nothing.

  Examples:
    >>> check_input(2)
    Array(2., dtype=float32, weak_type=True)
    >>> check_input(jnp.array([1, 2]), "necro_relu")
    Traceback (most recent call last):
    ...
    TypeError: necro_relu expects a floating-point array, got int32; convert it first, e.g. x.astype(jnp.float32).
  """
  if isinstance(x, bool):
    raise TypeError(f"{name} expects a floating-point array, got a Python bool.")
  if isinstance(x, int):
    x = float(x)
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"{name} expects a floating-point array, got {x.dtype}; convert it"
        " first, e.g. x.astype(jnp.float32)."
    )
  return x


def compute_dtype(dtype: Any) -> jnp.dtype:
  """The dtype derivatives are computed in: float32 for 16-bit inputs."""
  dtype = jnp.dtype(dtype)
  return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else dtype


def _hyperparameter(value: Any, dtype: Any, name: str) -> Array:
  if isinstance(value, bool) or getattr(value, "dtype", None) == jnp.bool_:
    return jnp.asarray(value, jnp.bool_)
  try:
    array = jnp.asarray(value)
  except TypeError:
    array = None
  if array is None or not (
      jnp.issubdtype(array.dtype, jnp.floating)
      or jnp.issubdtype(array.dtype, jnp.integer)
  ):
    raise TypeError(
        f"{name}: hyperparameters must be real numbers or booleans, got"
        f" {value!r}."
    )
  return array.astype(dtype)


def _like(hyperparameters: tuple[Array, ...], dtype: Any) -> tuple[Array, ...]:
  """Casts floating hyperparameters to ``dtype``, leaving booleans alone."""
  return tuple(
      h.astype(dtype) if jnp.issubdtype(h.dtype, jnp.floating) else h
      for h in hyperparameters
  )


def _upcast(residual: Array) -> Array:
  if jnp.issubdtype(residual.dtype, jnp.floating):
    return residual.astype(compute_dtype(residual.dtype))
  return residual


def _nan_where(x: Array, value: Array) -> Array:
  """``value``, but NaN wherever ``x`` is NaN."""
  return jnp.where(jnp.isnan(x), jnp.asarray(jnp.nan, value.dtype), value)


class _SignMask(NamedTuple):
  """A boolean residual that also remembers NaN inputs, in one byte.

  ``code`` is 1 where the mask is true, 0 where false and -1 where the input
  was NaN, so a lean mask still gives a NaN gradient for a NaN input.
  """

  code: Array

  @classmethod
  def encode(cls, mask: Array, x: Array) -> _SignMask:
    code = jnp.where(jnp.isnan(x), -1, mask.astype(jnp.int8))
    return cls(code.astype(jnp.int8))


def _check_impl(impl: Any) -> Impl:
  if impl not in IMPLS:
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}.")
  return impl


def _check_wrt(wrt: Any) -> Wrt:
  if wrt in ("input", "output") or callable(wrt):
    return wrt
  raise ValueError(
      "wrt must be 'input', 'output' or a function of the input that returns"
      f" the residual the derivative needs, got {wrt!r}."
  )


def _describe(function: Callable[..., Any]) -> str:
  return getattr(function, "__name__", type(function).__name__)


def with_derivative(
    forward: Callable[..., Array],
    derivative: Callable[..., Array],
    *,
    wrt: Wrt = "input",
    impl: Impl = "vjp",
    name: str | None = None,
    hyperparameter_derivatives: Sequence[Callable[..., Array] | None] = (),
) -> Activation:
  r"""An elementwise activation whose backward pass multiplies by ``derivative``.

  The returned function computes ``y = forward(x, *hyperparameters)``; backprop
  multiplies the cotangent by ``derivative(r, *hyperparameters)``, where the
  residual ``r`` saved by the forward pass is chosen by ``wrt``:

  * ``"input"``: ``r = x``, a float copy of the input;
  * ``"output"``: ``r = y``, which the next layer keeps anyway, so it costs no
    memory (tanh: ``1 - y**2``);
  * a function ``wrt(x, *hyperparameters)``: the smallest thing the derivative
    needs, e.g. the sign mask ``lambda x: x >= 0`` (one byte per element).

  Args:
    forward: elementwise function ``forward(x, *hyperparameters)``.
    derivative: elementwise function ``derivative(r, *hyperparameters)``.
    wrt: what the derivative is a function of (see above).
    impl: ``"vjp"`` builds on ``jax.custom_vjp`` and saves only the residual.
      ``"jvp"`` builds on ``jax.custom_jvp``, so forward mode (``jax.jvp``,
      ``jax.jacfwd``, ``jax.hessian``) works too; reverse-mode gradients are
      identical, but reverse mode then saves the float derivative.
    name: the name used in error messages and recorded in a jaxpr, where
      :func:`activations.swap` finds calls by name; ``None`` for a generic one.
    hyperparameter_derivatives: for a true-derivative activation, one function
      ``d(x, *hyperparameters)`` per hyperparameter giving the derivative of the
      output with respect to it (``None`` for none); those hyperparameters then
      receive their true gradient, and the input is saved (``wrt`` must be
      ``"input"``). Without it every hyperparameter gets a zero gradient.

  Returns:
    A function ``f(x, *hyperparameters)`` with the dtype and shape of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> tanh = with_derivative(jnp.tanh, lambda y: 1 - y**2, wrt="output")
    >>> x = jnp.array([-1.0, 0.0, 2.0])
    >>> jax.grad(lambda x: tanh(x).sum())(x)
    Array([0.41997433, 1.        , 0.07065082], dtype=float32)
  """
  _check_wrt(wrt)
  hyperparameter_derivatives = tuple(hyperparameter_derivatives)
  if hyperparameter_derivatives and wrt != "input":
    raise ValueError(
        "hyperparameter_derivatives need the input, so wrt must be 'input',"
        f" got {wrt!r}."
    )
  core_name = name or "with_derivative"
  name = name or f"with_derivative({_describe(forward)}, {_describe(derivative)})"
  rule = _Rule(forward, derivative, wrt, hyperparameter_derivatives)
  build = _vjp_core if _check_impl(impl) == "vjp" else _jvp_core
  return _with_checked_inputs(build(rule, core_name), name)


class _Rule(NamedTuple):
  """What :func:`with_derivative` was given, and the pieces its custom rules share."""

  forward: Callable[..., Array]
  derivative: Callable[..., Array]
  wrt: Wrt
  hyperparameter_derivatives: tuple[Callable[..., Array] | None, ...]

  def values(self, x: Array, hyperparameters: tuple[Array, ...]) -> Array:
    """``forward(x, *hyperparameters)`` in ``x``'s dtype, NaN where ``x`` is NaN."""
    y = jnp.asarray(self.forward(x, *_like(hyperparameters, x.dtype)))
    return _nan_where(x, y.astype(x.dtype))

  def residual(self, x: Array, y: Array, hyperparameters: tuple[Array, ...]) -> Array:
    """What the derivative is a function of, as ``wrt`` says."""
    if self.wrt == "input":
      return x
    if self.wrt == "output":
      return y
    return jnp.asarray(self.wrt(x, *_like(hyperparameters, x.dtype)))

  def slope(self, residual: Array, hyperparameters: tuple[Array, ...]) -> Array:
    """``derivative(residual, *hyperparameters)``, 16-bit residuals in float32."""
    return jnp.asarray(self.derivative(_upcast(residual), *hyperparameters))

  def hyperparameter_gradients(
      self, x: Array, cotangent: Array, hyperparameters: tuple[Array, ...]
  ) -> list[Array | None]:
    """The true cotangent of each hyperparameter that has a derivative."""
    gradients = []
    for index, h in enumerate(hyperparameters):
      d = (self.hyperparameter_derivatives[index]
           if index < len(self.hyperparameter_derivatives) else None)
      if d is None or not jnp.issubdtype(h.dtype, jnp.floating):
        gradients.append(None)
        continue
      wide = _upcast(x)
      partial = jnp.asarray(d(wide, *_like(hyperparameters, wide.dtype)))
      partial = _nan_where(x, partial.astype(wide.dtype))
      gradients.append(
          _sum_to_shape(_upcast(cotangent) * partial, h.shape).astype(h.dtype)
      )
    return gradients

  def core_forward(self, x: Array, *hyperparameters: Array) -> tuple[Array, Any]:
    """``custom_vjp``'s forward: the values, and the residual (a boolean one in one byte)."""
    y = self.values(x, hyperparameters)
    saved = self.residual(x, y, hyperparameters)
    if saved.dtype == jnp.bool_:
      saved = _SignMask.encode(saved, x)
    return y, (saved, hyperparameters)

  def core_backward(self, residuals: Any, cotangent: Array) -> tuple[Array | None, ...]:
    """``custom_vjp``'s backward: the cotangent times the derivative."""
    saved, hyperparameters = residuals
    if isinstance(saved, _SignMask):
      slope = self.slope(saved.code > 0, hyperparameters)
      slope = jnp.where(saved.code < 0, jnp.asarray(jnp.nan, slope.dtype), slope)
    else:
      slope = _nan_where(saved, self.slope(saved, hyperparameters))
    gradient = (_upcast(cotangent) * slope).astype(cotangent.dtype)
    if self.hyperparameter_derivatives:
      return (gradient, *self.hyperparameter_gradients(saved, cotangent, hyperparameters))
    return (gradient, *(None for _ in hyperparameters))

  def core_jvp(self, primals: tuple[Array, ...], tangents: tuple[Array, ...]) -> tuple[Array, Array]:
    """``custom_jvp``'s rule: the values and the tangent, linear in the input tangent."""
    x, *hyperparameters = primals
    hyperparameters = tuple(hyperparameters)
    y = self.values(x, hyperparameters)
    slope = self.slope(self.residual(x, y, hyperparameters), hyperparameters)
    # NaN enters through the slope, not the product: the tangent must stay
    # linear in the input tangent for reverse mode to transpose it.
    tangent = _upcast(tangents[0]) * _nan_where(x, slope)
    for index, d in enumerate(self.hyperparameter_derivatives):
      h, h_tangent = hyperparameters[index], tangents[1 + index]
      if d is None or not jnp.issubdtype(h.dtype, jnp.floating):
        continue
      wide = _upcast(x)
      partial = jnp.asarray(d(wide, *_like(hyperparameters, wide.dtype)))
      tangent = tangent + partial.astype(tangent.dtype) * _upcast(h_tangent)
    return y, tangent.astype(x.dtype)


def _named_core(rule: _Rule, name: str) -> Callable[..., Array]:
  """``rule``'s values as a function named ``name``: the name a jaxpr records."""

  def core(x: Array, *hyperparameters: Array) -> Array:
    return rule.values(x, hyperparameters)

  core.__name__ = core.__qualname__ = name
  return core


def _vjp_core(rule: _Rule, name: str) -> Callable[..., Array]:
  """``rule`` on ``jax.custom_vjp``: saves only the residual."""
  core = jax.custom_vjp(_named_core(rule, name))
  core.defvjp(rule.core_forward, rule.core_backward)
  return core


def _jvp_core(rule: _Rule, name: str) -> Callable[..., Array]:
  """``rule`` on ``jax.custom_jvp``: forward mode works too."""
  core = jax.custom_jvp(_named_core(rule, name))
  core.defjvp(rule.core_jvp)
  return core


def _sum_to_shape(gradient: Array, shape: tuple[int, ...]) -> Array:
  """Sums a broadcast gradient back to a hyperparameter's ``shape``."""
  leading = gradient.ndim - len(shape)
  gradient = gradient.sum(axis=tuple(range(leading)))
  axes = tuple(i for i, size in enumerate(shape) if size == 1 and gradient.shape[i] != 1)
  return gradient.sum(axis=axes, keepdims=True).reshape(shape)


def check_broadcast(
    x: Array, hyperparameter: Array, name: str, hyperparameter_name: str
) -> None:
  """Raises a ``ValueError`` unless ``hyperparameter`` broadcasts to ``x.shape``.

  Examples:
    >>> check_broadcast(jnp.ones((4, 3)), jnp.ones(2), "necro_relu", "negative_slope")
    Traceback (most recent call last):
    ...
    ValueError: necro_relu: negative_slope has shape (2,), which does not broadcast to the input's shape (4, 3); give a scalar or an array of a shape such as (3,) or (4, 3).
  """
  shape = tuple(np.shape(hyperparameter))
  try:
    fits = jnp.broadcast_shapes(shape, x.shape) == x.shape
  except ValueError:
    fits = False
  if not fits:
    raise ValueError(
        f"{name}: {hyperparameter_name} has shape {shape}, which does not"
        f" broadcast to the input's shape {x.shape}; give a scalar or an array"
        f" of a shape such as {x.shape[-1:]} or {x.shape}."
    )


def _with_checked_inputs(core: Callable[..., Array], name: str) -> Activation:
  def activation(x: ArrayLike, *hyperparameters: ArrayLike) -> Array:
    x = check_input(x, name)
    dtype = compute_dtype(x.dtype)
    arrays = tuple(_hyperparameter(h, dtype, name) for h in hyperparameters)
    for index, h in enumerate(arrays):
      check_broadcast(x, h, name, f"hyperparameter {index + 1}")
    return core(x, *arrays)

  activation.__name__ = activation.__qualname__ = name
  return activation


def elementwise_derivative(function: Callable[..., Array]) -> Callable[..., Array]:
  """The derivative of an elementwise ``function``, found by forward-mode AD.

  Examples:
    >>> import jax.numpy as jnp
    >>> elementwise_derivative(jnp.sin)(jnp.array([0.0]))
    Array([1.], dtype=float32)
  """

  def derivative(x: Array, *hyperparameters: Array) -> Array:
    return jax.jvp(
        lambda x: function(x, *hyperparameters), (x,), (jnp.ones_like(x),)
    )[1]

  derivative.__name__ = f"derivative_of_{_describe(function)}"
  return derivative


def surrogate(
    forward: Callable[..., Array],
    backward: Callable[..., Array],
    *,
    impl: Impl = "vjp",
    name: str | None = None,
) -> Activation:
  r"""Values of ``forward``, gradients of ``backward``: a surrogate in one line.

  .. math::
    f(x) = \mathrm{forward}(x), \qquad
    \frac{\partial f}{\partial x} := \mathrm{backward}'(x).

  The derivative of ``backward`` is found by JAX, so no derivative is written
  by hand. The forward pass saves ``x``; where the derivative only needs the
  sign of ``x``, :func:`with_derivative` with a mask residual is leaner.

  Args:
    forward: elementwise function ``forward(x, *hyperparameters)``.
    backward: elementwise function ``backward(x, *hyperparameters)`` whose
      derivative backprop uses.
    impl: ``"vjp"`` (``jax.custom_vjp``) or ``"jvp"`` (``jax.custom_jvp``,
      forward mode too); see :func:`with_derivative`.
    name: the name in error messages and jaxprs (for :func:`activations.swap`).

  Returns:
    A function ``f(x, *hyperparameters)``.

  Examples:
    NecroReLU: ReLU forward, LeakyReLU(0.1) backward.

    >>> import functools, jax, jax.numpy as jnp
    >>> necro = surrogate(
    ...     jax.nn.relu, functools.partial(jax.nn.leaky_relu, negative_slope=0.1))
    >>> x = jnp.array([-2.0, 3.0])
    >>> necro(x)
    Array([0., 3.], dtype=float32)
    >>> jax.grad(lambda x: necro(x).sum())(x)
    Array([0.1, 1. ], dtype=float32)
  """
  return with_derivative(
      forward, elementwise_derivative(backward), wrt="input", impl=impl, name=name
  )


def custom_backward(
    forward: Callable[..., tuple[Array, Any]],
    backward_rule: Callable[[Any, Array], Array],
) -> Activation:
  """An activation with a full backward rule, built on ``jax.custom_vjp``.

  For backward passes that are not a per-element multiply: clipping or
  normalising the cotangent, adding noise, gradient reversal. Forward mode is
  not available (a backward rule need not be linear in the cotangent).

  Args:
    forward: ``forward(x, *hyperparameters) -> (y, residuals)``; ``residuals``
      is any pytree of arrays the backward rule needs.
    backward_rule: ``backward_rule(residuals, cotangent) -> input cotangent``;
      the result is cast to the input's dtype.

  Returns:
    A function ``f(x, *hyperparameters)``.

  Examples:
    ReLU forward whose backward passes the cotangent clipped to [-1, 1]:

    >>> import jax, jax.numpy as jnp
    >>> clipped = custom_backward(
    ...     lambda x: (jax.nn.relu(x), None),
    ...     lambda residuals, g: jnp.clip(g, -1.0, 1.0))
    >>> jax.grad(lambda x: 5.0 * clipped(x))(2.0)
    Array(1., dtype=float32)
  """
  name = f"custom_backward({_describe(forward)}, {_describe(backward_rule)})"

  def forward_values(x, hyperparameters):
    y, residuals = forward(x, *_like(hyperparameters, x.dtype))
    return _nan_where(x, jnp.asarray(y).astype(x.dtype)), residuals

  def core(x, *hyperparameters):
    return forward_values(x, hyperparameters)[0]

  core.__name__ = core.__qualname__ = "custom_backward"
  core = jax.custom_vjp(core)

  def core_forward(x, *hyperparameters):
    y, residuals = forward_values(x, hyperparameters)
    # Hyperparameters travel along only so the backward knows how many zero
    # cotangents to return.
    return y, (residuals, hyperparameters)

  def core_backward(residuals, cotangent):
    residuals, hyperparameters = residuals
    gradient = jnp.asarray(backward_rule(residuals, cotangent))
    return (gradient.astype(cotangent.dtype), *(None for _ in hyperparameters))

  core.defvjp(core_forward, core_backward)
  return _with_checked_inputs(core, name)


def backward_derivative(fn: Callable[..., Array]) -> Callable[..., Array]:
  """The elementwise derivative that backprop will actually use for ``fn``.

  For plots and tests: ``backward_derivative(fn)(x, *args, **kwargs)`` is the
  gradient of ``sum(fn(x, *args, **kwargs))`` with respect to ``x``, which for
  an elementwise ``fn`` is the per-element derivative backprop multiplies by.

  Examples:
    >>> import jax.numpy as jnp
    >>> from activations import necro_relu
    >>> backward_derivative(necro_relu)(jnp.array([-1.0, 0.0, 1.0]))
    Array([0.1, 1. , 1. ], dtype=float32)
  """

  def derivative(x: ArrayLike, *args: Any, **kwargs: Any) -> Array:
    x = check_input(x, "backward_derivative")
    y, pullback = jax.vjp(lambda x: fn(x, *args, **kwargs), x)
    return pullback(jnp.ones_like(y))[0]

  return derivative


def for_each_impl(
    forward: Callable[..., Array],
    derivative: Callable[..., Array],
    *,
    wrt: Wrt = "input",
) -> dict[Impl, Activation]:
  """:func:`with_derivative` built once per ``impl``, for the catalogue."""
  return {
      impl: with_derivative(forward, derivative, wrt=wrt, impl=impl)
      for impl in IMPLS
  }


def select_impl(built: dict[Impl, Activation], impl: Any) -> Activation:
  """Picks the ``impl`` variant, with a clear error for a bad one."""
  return built[_check_impl(impl)]
