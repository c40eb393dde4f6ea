"""A user's own code by reference: ``"my_models:small_resnet(width=32)"``.

The command line names a user's model, dataset or surrogate the way an entry
point does: ``MODULE:ATTRIBUTE``, the module imported from ``sys.path`` (the
working directory included), optionally called with keyword arguments written
as Python literals, as a registry spec is (parsed, never evaluated). Every way
this can fail, a module that does not import, a missing attribute, a syntax
error in the user's file, is one ``ValueError`` naming the reference, so the
command line prints one line and exits with status 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from activations import parse_spec


class Reference(NamedTuple):
  """``module:attribute(keyword=value, ...)`` split into its parts."""

  module: str
  attribute: str
  options: dict[str, Any]


def is_reference(spec: Any) -> bool:
  """Whether ``spec`` names user code (``module:attribute``) rather than a built-in.

  Examples:
    >>> is_reference("my_models:small_resnet(width=8)"), is_reference("resnet20")
    (True, False)
  """
  return isinstance(spec, str) and ":" in spec.split("(", 1)[0]


def parse_reference(spec: str, *, what: str = "reference") -> Reference:
  """Splits ``"pkg.module:name(key=value)"`` into module, attribute and options.

  Examples:
    >>> parse_reference("my_surrogates:revive(slope=[0.1, 0.2])")
    Reference(module='my_surrogates', attribute='revive', options={'slope': [0.1, 0.2]})
  """
  head, _, _ = spec.partition("(")
  module, _, attribute = head.partition(":")
  module, attribute = module.strip(), attribute.strip()
  valid_module = module and all(part.isidentifier() for part in module.split("."))
  if not (valid_module and attribute.isidentifier()):
    raise ValueError(
        f"{what} {spec!r} is not of the form MODULE:NAME or MODULE:NAME(key=value, ...),"
        " e.g. 'my_models:small_resnet' for small_resnet in my_models.py."
    )
  try:
    _, options = parse_spec(attribute + spec.strip()[len(head.strip()):])
  except ValueError as error:
    raise ValueError(f"{what} {spec!r}: {error}") from None
  return Reference(module, attribute, options)


def load_object(spec: str, *, what: str = "reference") -> tuple[Any, dict[str, Any]]:
  """Imports what ``spec`` names; returns it and the spec's keyword options.

  The working directory is searched first, as ``python -m`` does, so
  ``--model my_models:net`` finds ``./my_models.py``.

  Raises:
    ValueError: one line naming the reference and what went wrong.

  Examples:
    >>> function, options = load_object("math:dist")
    >>> function([0, 0], [3, 4]), options
    (5.0, {})
    >>> load_object("math:distance", what="--model")
    Traceback (most recent call last):
    ...
    ValueError: --model 'math:distance': module 'math' has no attribute 'distance'. ...
  """
  reference = parse_reference(spec, what=what)
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.insert(0, os.getcwd())
  try:
    module = importlib.import_module(reference.module)
  except ModuleNotFoundError as error:
    if error.name and reference.module.startswith(error.name):
      raise ValueError(
          f"{what} {spec!r}: no module named {reference.module!r} on the Python path"
          f" (the working directory {os.getcwd()!r} included)."
      ) from None
    raise ValueError(f"{what} {spec!r}: importing {reference.module!r} failed: {error}") from None
  except Exception as error:  # the user's module raised while importing: say where
    raise ValueError(
        f"{what} {spec!r}: importing {reference.module!r} failed:"
        f" {type(error).__name__}: {error}"
    ) from None
  if not hasattr(module, reference.attribute):
    public = sorted(name for name in vars(module) if not name.startswith("_"))
    raise ValueError(
        f"{what} {spec!r}: module {reference.module!r} has no attribute"
        f" {reference.attribute!r}. It has: {', '.join(public[:20]) or 'nothing public'}."
    )
  return getattr(module, reference.attribute), reference.options


def describe(value: Any) -> Any:
  """A callable as ``module:qualname`` (for ``config.json``); anything else unchanged.

  Examples:
    >>> import math
    >>> describe(math.dist), describe("resnet20")
    ('math:dist', 'resnet20')
  """
  if isinstance(value, str) or not callable(value):
    return value
  module = getattr(value, "__module__", None) or "?"
  name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or repr(value)
  return f"{module}:{name}"


def check_callable(value: Any, spec: str, what: str) -> Callable[..., Any]:
  """``value`` if callable, else a ``ValueError`` naming the reference."""
  if not callable(value):
    raise ValueError(f"{what} {spec!r} names {value!r} (of type {type(value).__name__}), not a function.")
  return value
