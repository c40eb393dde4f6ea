"""Activations by name: ``get("necro_relu(negative_slope=0.05)")``.

The registry maps a name to an activation function ``f(x, **hyperparameters)``.
A *spec* is a name, optionally called with keyword arguments written as Python
literals: ``"leaky_relu"``, ``"necro_relu(negative_slope=0.05)"``,
``"gelu(approximate=False, impl='jvp')"``. Specs are parsed with :mod:`ast`, never
evaluated. The same registry drives the tests (each registered name is tested)
and the catalogue table in the README (:func:`catalogue_markdown`).

A *combinator* is built from other specs: ``"mixed(activations='relu, abs')"``
sends half the units through relu and half through abs. :func:`get` and
:func:`hyperparameters` know combinators, so research grids train them; they
are not catalogue entries (:func:`names`), since what one computes is its
parts', each tested as an entry.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from activations import baselines, relu_family, revival, spiking
from activations._core import IMPLS
from activations.definition import Definition, Hyperparameter, check_value
from activations.spec import parse_spec

RELU_FORWARD = "ReLU forward, surrogate backward"  # the kind of ReLU's own surrogates
_MODULES = (
    (baselines, "true derivative"),
    (relu_family, RELU_FORWARD),
    (revival, RELU_FORWARD),
    (spiking, "step forward, surrogate backward"),
)


@dataclasses.dataclass(frozen=True)
class Entry:
  """One registered activation.

  Attributes:
    function: ``function(x, **hyperparameters)``.
    kind: the kind of backward pass, as the catalogue shows it.
    defaults: each keyword argument with its default (``None`` if required).
    description: the first paragraph of the docstring.
    hyperparameters: valid ranges of catalogue entries (none for user ones).
    check: a combinator's check of the keyword arguments given, together.
  """

  function: Callable[..., Any]
  kind: str
  defaults: dict[str, Any]
  description: str
  hyperparameters: tuple[Hyperparameter, ...] = ()
  check: Callable[..., None] | None = None

  @classmethod
  def of(
      cls, function: Callable[..., Any], kind: str, check: Callable[..., None] | None = None
  ) -> Entry:
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1:]  # the first is x
    defaults = {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in parameters
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    definition = getattr(function, "definition", None)
    ranges = definition.hyperparameters if isinstance(definition, Definition) else ()
    return cls(function, kind, defaults, _summary(function), ranges, check)


# The catalogue, in the order of the tables. ``register`` adds to it: the one
# piece of module state, as in jax's own registries of pytrees and primitives.
_REGISTRY: dict[str, Entry] = {}


def register(
    name: str, fn: Callable[..., Any], *, overwrite: bool = False
) -> Callable[..., Any]:
  """Adds ``fn`` to the registry under ``name`` and returns it.

  Args:
    name: a Python identifier, used in specs.
    fn: an activation ``fn(x, **hyperparameters)``.
    overwrite: replace an existing entry instead of raising.

  Examples:
    >>> import functools, jax
    >>> import activations
    >>> slow_leak = activations.register(
    ...     "slow_leak",
    ...     activations.surrogate(
    ...         jax.nn.relu, functools.partial(jax.nn.leaky_relu, negative_slope=0.01)),
    ...     overwrite=True)
    >>> "slow_leak" in activations.names()
    True
    >>> activations.unregister("slow_leak")
  """
  if not isinstance(name, str) or not name.isidentifier():
    raise ValueError(f"An activation name must be a Python identifier, got {name!r}.")
  if not callable(fn):
    raise TypeError(f"register({name!r}, ...) needs a callable, got {fn!r}.")
  if name in _REGISTRY and not overwrite:
    raise ValueError(
        f"{name!r} is already registered; pass overwrite=True to replace it."
    )
  _REGISTRY[name] = Entry.of(fn, "user")
  return fn


def unregister(name: str) -> None:
  """Removes ``name`` from the registry (for tests and notebooks).

  Examples:
    >>> import activations
    >>> _ = activations.register("scratch", activations.relu)
    >>> activations.unregister("scratch")
    >>> "scratch" in activations.names()
    False
  """
  _lookup(name)
  if name not in _REGISTRY:
    raise ValueError(f"{name!r} is a combinator, not a registered activation: it cannot be removed.")
  del _REGISTRY[name]


def names() -> tuple[str, ...]:
  """Every registered name, in catalogue order.

  Examples:
    >>> import activations
    >>> activations.names()[:3]
    ('relu', 'leaky_relu', 'relu6')
  """
  return tuple(_REGISTRY)


def kind(name: str) -> str:
  """What kind of backward pass ``name`` has, as shown in the catalogue."""
  return _lookup(name).kind


def impls(name: str) -> tuple[str, ...]:
  """The ``impl`` values an entry accepts: ``("vjp", "jvp")``, ``("vjp",)``, or ``()`` without one.

  Examples:
    >>> impls("necro_relu"), impls("revival_relu")
    (('vjp', 'jvp'), ('vjp',))
  """
  function = _lookup(name).function
  if "impl" not in inspect.signature(function).parameters:
    return ()
  return tuple(getattr(inspect.getmodule(function), "IMPLS", IMPLS))


def relu_forward(name: str) -> bool:
  """Whether ``name`` computes ReLU in its forward pass: relu itself or one of its surrogates.

  Examples:
    >>> relu_forward("relu"), relu_forward("sugar_nelu"), relu_forward("leaky_relu")
    (True, True, False)
  """
  return name == "relu" or kind(name) == RELU_FORWARD


COMBINATOR = "combinator"  # the kind of an activation built from other specs


_COMBINATORS: dict[str, Entry] = {}  # filled by the modules that define them (functional: mixed)


def register_combinator(
    name: str, function: Callable[..., Any], check: Callable[..., None]
) -> None:
  """Adds a combinator: ``function(x, **texts)``, and ``check(**texts)`` run on a spec's texts.

  :mod:`activations.functional` registers ``mixed`` this way, so the registry
  never imports the code that resolves its parts with :func:`get`.
  """
  _COMBINATORS[name] = Entry.of(function, COMBINATOR, check)


def _combinators() -> dict[str, Entry]:
  """The combinators by name (see the module docstring)."""
  return _COMBINATORS


def _lookup(name: str) -> Entry:
  if name in _REGISTRY:
    return _REGISTRY[name]
  if name in _combinators():
    return _combinators()[name]
  close = difflib.get_close_matches(name, [*_REGISTRY, *_combinators()], n=3, cutoff=0.5)
  hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
  raise ValueError(
      f"Unknown activation {name!r}.{hint} Registered: {', '.join(_REGISTRY)};"
      f" combinators: {', '.join(_combinators())}."
  )


def hyperparameters(name: str) -> dict[str, Any]:
  """The keyword arguments ``name`` accepts, with their defaults.

  Examples:
    >>> hyperparameters("necro_relu")
    {'negative_slope': 0.1, 'impl': 'vjp'}
  """
  return dict(_lookup(name).defaults)


def _keywords_or_empty(name: str) -> list[str]:
  try:
    return [k for k in hyperparameters(name) if k != "impl"]
  except ValueError:
    return []


def parse_activation_spec(spec: str) -> tuple[str, dict[str, Any]]:
  """:func:`activations.parse_spec`, with the activation's keywords in hints."""
  return parse_spec(spec, keywords_for=_keywords_or_empty)


def check_hyperparameters(name: str, kwargs: dict[str, Any]) -> None:
  """Raises a ``ValueError`` naming the problem if ``kwargs`` do not fit ``name``.

  A value must have the type of the parameter's default: a number for a float,
  ``True``/``False`` for a bool, one of ``'vjp'``/``'jvp'`` for ``impl``; and
  be in the valid range of a catalogue entry (``sigma > 0``).
  """
  valid = hyperparameters(name)
  for key, value in kwargs.items():
    if key not in valid:
      close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
      hint = f" Did you mean {close[0]!r}?" if close else ""
      raise ValueError(
          f"{name} has no parameter {key!r}.{hint} Valid parameters:"
          f" {', '.join(valid) or 'none'}."
      )
    default = valid[key]
    if key == "impl":
      ok = value in IMPLS
      expected = f"one of {IMPLS}"
    elif isinstance(default, bool):
      ok = isinstance(value, bool)
      expected = "True or False"
    elif isinstance(default, (int, float)):
      ok = isinstance(value, (int, float)) and not isinstance(value, bool)
      expected = "a number"
    else:
      ok, expected = True, ""
    if not ok:
      raise ValueError(f"{name}: {key} must be {expected}, got {value!r}.")
  entry = _lookup(name)
  for hyperparameter in entry.hyperparameters:
    if hyperparameter.name in kwargs:
      check_value(name, hyperparameter, kwargs[hyperparameter.name])
  if entry.check is not None:
    entry.check(**kwargs)


def get(spec: str | Callable[..., Any]) -> Callable[..., Any]:
  """The activation a spec names, with its keyword arguments bound.

  A callable is returned unchanged, so code can accept either.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import activations
    >>> fn = activations.get("necro_relu(negative_slope=0.05)")
    >>> jax.grad(lambda x: fn(x).sum())(jnp.array([-1.0, 1.0]))
    Array([0.05, 1.  ], dtype=float32)
    >>> activations.get("necro_rleu")
    Traceback (most recent call last):
    ...
    ValueError: Unknown activation 'necro_rleu'. Did you mean 'necro_relu', ...? ...
  """
  if callable(spec):
    return spec
  name, kwargs = parse_activation_spec(spec)
  fn = _lookup(name).function
  for key, value in kwargs.items():
    if isinstance(value, (list, tuple)):
      raise ValueError(
          f"{name}: {key}={value!r} is a list; a single activation takes one value"
          " (research grids sweep lists)."
      )
  check_hyperparameters(name, kwargs)
  if not kwargs:
    return fn
  bound = functools.partial(fn, **kwargs)
  functools.update_wrapper(bound, fn)
  return bound


def _summary(fn: Callable[..., Any]) -> str:
  doc = inspect.getdoc(fn) or ""
  return doc.split("\n\n")[0].replace("\n", " ").strip()


def catalogue_markdown() -> str:
  """The catalogue as a Markdown table: name, hyperparameters, backward, summary.

  Examples:
    >>> print(catalogue_markdown().splitlines()[0])
    | name | hyperparameters (defaults) | backward | description |
  """
  rows = [
      "| name | hyperparameters (defaults) | backward | description |",
      "|---|---|---|---|",
  ]
  for name in names():
    params = ", ".join(
        f"{k}={v!r}" for k, v in hyperparameters(name).items() if k != "impl"
    )
    entry = _REGISTRY[name]
    summary = entry.description.replace("|", "\\|")
    rows.append(f"| `{name}` | {params or '-'} | {entry.kind} | {summary} |")
  return "\n".join(rows)


def _register_catalogue() -> None:
  for module, description in _MODULES:
    for name in module.__all__:
      _REGISTRY[name] = Entry.of(getattr(module, name), description)


_register_catalogue()
