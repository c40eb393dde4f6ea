"""Activations by name: ``get("necro_relu(negative_slope=0.05)")``.

The registry maps a name to an activation function ``f(x, **hyperparameters)``.
A *spec* is a name, optionally called with keyword arguments written as Python
literals: ``"leaky_relu"``, ``"necro_relu(negative_slope=0.05)"``,
``"gelu(approximate=False, impl='jvp')"``. Specs are parsed with :mod:`ast`, never
evaluated. The same registry drives the tests (each registered name is tested)
and the catalogue table in the README (:func:`catalogue_markdown`).
"""

from __future__ import annotations

import ast
import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from activations import baselines, relu_family, spiking
from activations._core import IMPLS

_MODULES = (
    (baselines, "true derivative"),
    (relu_family, "ReLU forward, surrogate backward"),
    (spiking, "step forward, surrogate backward"),
)

# The catalogue, in the order of the tables. ``register`` adds to it: the one
# piece of module state, as in jax's own registries of pytrees and primitives.
_REGISTRY: dict[str, Callable[..., Any]] = {}
_KIND: dict[str, str] = {}


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
  _REGISTRY[name] = fn
  _KIND.setdefault(name, "user")
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
  del _REGISTRY[name], _KIND[name]


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
  _lookup(name)
  return _KIND[name]


def _lookup(name: str) -> Callable[..., Any]:
  if name in _REGISTRY:
    return _REGISTRY[name]
  close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
  hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
  raise ValueError(
      f"Unknown activation {name!r}.{hint} Registered: {', '.join(_REGISTRY)}."
  )


def hyperparameters(name: str) -> dict[str, Any]:
  """The keyword arguments ``name`` accepts, with their defaults.

  Examples:
    >>> hyperparameters("necro_relu")
    {'negative_slope': 0.1, 'impl': 'vjp'}
  """
  signature = inspect.signature(_lookup(name))
  parameters = list(signature.parameters.values())[1:]  # the first is x
  return {
      p.name: (None if p.default is inspect.Parameter.empty else p.default)
      for p in parameters
      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
  }


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
  """Splits a spec into its name and keyword arguments, without evaluating it.

  Values must be Python literals: numbers, booleans, strings, or lists of them
  (a list is what a research grid sweeps; :func:`get` refuses lists).

  Examples:
    >>> parse_spec("necro_relu(negative_slope=0.05)")
    ('necro_relu', {'negative_slope': 0.05})
    >>> parse_spec("relu")
    ('relu', {})
  """
  if not isinstance(spec, str):
    raise TypeError(f"An activation spec must be a string, got {spec!r}.")
  try:
    tree = ast.parse(spec.strip(), mode="eval").body
  except SyntaxError:
    raise ValueError(
        f"Cannot parse activation spec {spec!r}; write a name such as 'relu' or"
        " a call with keyword arguments such as 'necro_relu(negative_slope=0.05)'."
    ) from None
  if isinstance(tree, ast.Name):
    return tree.id, {}
  if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
    raise ValueError(
        f"Activation spec {spec!r} must be a name or name(keyword=value, ...)."
    )
  if tree.args or any(k.arg is None for k in tree.keywords):
    raise ValueError(
        f"Activation spec {spec!r}: give hyperparameters as keywords, e.g."
        f" {tree.func.id}({', '.join(f'{k}=...' for k in _names_or_empty(tree.func.id))})."
    )
  kwargs = {}
  for keyword in tree.keywords:
    try:
      kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except ValueError:
      raise ValueError(
          f"Activation spec {spec!r}: the value of {keyword.arg!r} must be a"
          f" Python literal (a number, True/False or a quoted string), got"
          f" {ast.unparse(keyword.value)!r}."
      ) from None
  return tree.func.id, kwargs


def _names_or_empty(name: str) -> list[str]:
  try:
    return [k for k in hyperparameters(name) if k != "impl"]
  except ValueError:
    return []


def check_hyperparameters(name: str, kwargs: dict[str, Any]) -> None:
  """Raises a ``ValueError`` naming the problem if ``kwargs`` do not fit ``name``.

  A value must have the type of the parameter's default: a number for a float,
  ``True``/``False`` for a bool, one of ``'vjp'``/``'jvp'`` for ``impl``.
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
    ValueError: Unknown activation 'necro_rleu'. Did you mean 'necro_relu'? ...
  """
  if callable(spec):
    return spec
  name, kwargs = parse_spec(spec)
  fn = _lookup(name)
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
    summary = _summary(_REGISTRY[name]).replace("|", "\\|")
    rows.append(f"| `{name}` | {params or '-'} | {_KIND[name]} | {summary} |")
  return "\n".join(rows)


def _register_catalogue() -> None:
  for module, description in _MODULES:
    for name in module.__all__:
      _REGISTRY[name] = getattr(module, name)
      _KIND[name] = description


_register_catalogue()
