"""A catalogue entry as data: the table row every public activation is built from.

Each of ``baselines``, ``relu_family`` and ``spiking`` is a table of
:class:`Definition` rows; :func:`define` turns a row into the public function
(``necro_relu``), with a real signature (so ``inspect.signature`` and
``activations.hyperparameters`` work), its docstring, one compiled-once
``custom_vjp`` / ``custom_jvp`` pair per ``impl``, range checks on concrete
hyperparameter values and a shape check on array ones.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Literal

import jax
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from activations._core import (
    IMPLS,
    Impl,
    Wrt,
    check_broadcast,
    check_input,
    with_derivative,
)

__all__ = ["Definition", "Hyperparameter", "check_value", "define"]

Valid = Literal["any", "positive", "non_negative"]
_VALID_TEXT = {"positive": "> 0", "non_negative": ">= 0"}


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
  """One hyperparameter of a catalogue entry.

  Attributes:
    name: the keyword.
    default: its default (a float, or a bool fixed at trace time if static).
    valid: ``"any"``, ``"positive"`` or ``"non_negative"``; concrete values
      outside it raise a ``ValueError`` (traced values are not checked).
    derivative: for a true-derivative baseline, ``d(x, *hyperparameters)``,
      the derivative of the output with respect to this hyperparameter, so it
      gets its true gradient; ``None``: it shapes only the backward pass and
      gets no gradient.
    static: a Python value fixed at trace time (``gelu``'s ``approximate``),
      passed to ``forward`` and ``derivative`` as a keyword.
  """

  name: str
  default: float | bool
  valid: Valid = "any"
  derivative: Callable[..., Array] | None = None
  static: bool = False


@dataclasses.dataclass(frozen=True)
class Definition:
  """A catalogue row: the forward function, the derivative backprop uses, docs.

  Attributes:
    name: the public name.
    forward: ``forward(x, *hyperparameters)``.
    derivative: ``derivative(r, *hyperparameters)`` of the residual ``wrt``.
    doc: the public docstring, with doctested examples.
    wrt: ``"input"``, ``"output"`` or a mask function, as in
      :func:`activations.with_derivative`.
    hyperparameters: the keyword arguments after ``x``, in order.
  """

  name: str
  forward: Callable[..., Array]
  derivative: Callable[..., Array]
  doc: str
  wrt: Wrt = "input"
  hyperparameters: tuple[Hyperparameter, ...] = ()


def check_value(owner: str, hyperparameter: Hyperparameter, value: Any) -> None:
  """Raises a ``ValueError`` naming the valid range for a concrete bad value.

  Traced values (inside ``jit`` or ``vmap``) are not checked: they have no
  value yet.

  Examples:
    >>> check_value("heaviside_gaussian", Hyperparameter("sigma", 0.5, "positive"), 0.0)
    Traceback (most recent call last):
    ...
    ValueError: heaviside_gaussian: sigma must be > 0, got 0.0.
  """
  if hyperparameter.valid == "any" or isinstance(value, jax.core.Tracer):
    return
  array = np.asarray(value)
  if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
    return  # the type is checked where the value becomes an array
  ok = array > 0 if hyperparameter.valid == "positive" else array >= 0
  if not np.all(ok | np.isnan(array)):
    shown = value if array.ndim == 0 else f"an array holding {array[~ok].ravel()[:3]}"
    raise ValueError(
        f"{owner}: {hyperparameter.name} must be"
        f" {_VALID_TEXT[hyperparameter.valid]}, got {shown}."
    )


def _signature(definition: Definition) -> inspect.Signature:
  parameters = [
      inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ArrayLike)
  ]
  for h in definition.hyperparameters:
    parameters.append(
        inspect.Parameter(
            h.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=h.default,
            annotation=bool if isinstance(h.default, bool) else ArrayLike,
        )
    )
  parameters.append(
      inspect.Parameter("impl", inspect.Parameter.KEYWORD_ONLY, default="vjp", annotation=Impl)
  )
  return inspect.Signature(parameters, return_annotation=Array)


def define(definition: Definition, module: str) -> Callable[..., Array]:
  """The public activation a :class:`Definition` describes.

  Args:
    definition: the table row.
    module: the ``__module__`` the function reports (its home in the docs).

  Returns:
    ``fn(x, *hyperparameters, impl="vjp")``, named ``definition.name``.
  """
  signature = _signature(definition)
  static = [h for h in definition.hyperparameters if h.static]
  dynamic = [h for h in definition.hyperparameters if not h.static]
  built: dict[tuple[Impl, tuple[Any, ...]], Callable[..., Array]] = {}

  def activation(*args: Any, **kwargs: Any) -> Array:
    arguments = _checked_arguments(definition, signature, args, kwargs)
    static_values = tuple(bool(arguments[h.name]) for h in static)
    key = (arguments["impl"], static_values)
    if key not in built:  # one custom rule per impl and static values, built once
      fixed = {h.name: v for h, v in zip(static, static_values)}
      built[key] = _build(definition, arguments["impl"], fixed)
    return built[key](arguments["x"], *(arguments[h.name] for h in dynamic))

  activation.__name__ = activation.__qualname__ = definition.name
  activation.__doc__ = definition.doc
  activation.__module__ = module
  activation.__signature__ = signature  # type: ignore[attr-defined]
  activation.definition = definition  # type: ignore[attr-defined]
  return activation


def _checked_arguments(
    definition: Definition, signature: inspect.Signature, args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
  """A call's arguments by name, defaults applied, each checked; ``x`` as an array."""
  try:
    bound = signature.bind(*args, **kwargs)
  except TypeError as error:
    raise TypeError(f"{definition.name}{signature}: {error}") from None
  bound.apply_defaults()
  arguments = dict(bound.arguments)
  impl = arguments["impl"]
  if impl not in IMPLS:
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}.")
  x = check_input(arguments["x"], definition.name)
  for h in definition.hyperparameters:
    check_value(definition.name, h, arguments[h.name])
    if not h.static:
      check_broadcast(x, arguments[h.name], definition.name, h.name)
  return {**arguments, "x": x}


def _build(definition: Definition, impl: Impl, fixed: dict[str, Any]) -> Callable[..., Array]:
  """The activation's custom rule for ``impl``, its static hyperparameters ``fixed``."""
  dynamic = [h for h in definition.hyperparameters if not h.static]

  def forward(x, *hyperparameters):
    return definition.forward(x, *hyperparameters, **fixed)

  def derivative(r, *hyperparameters):
    return definition.derivative(r, *hyperparameters, **fixed)

  wrt = definition.wrt
  if callable(wrt):
    mask = wrt
    wrt = lambda x, *hyperparameters: mask(x, *hyperparameters, **fixed)  # noqa: E731
  return with_derivative(
      forward,
      derivative,
      wrt=wrt,
      impl=impl,
      name=definition.name,
      hyperparameter_derivatives=tuple(
          None if h.derivative is None else _with_fixed(h.derivative, fixed)
          for h in dynamic
      ) if any(h.derivative for h in dynamic) else (),
  )


def _with_fixed(function: Callable[..., Array], fixed: dict[str, Any]) -> Callable[..., Array]:
  if not fixed:
    return function
  return lambda x, *hyperparameters: function(x, *hyperparameters, **fixed)
