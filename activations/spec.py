"""Specs: ``name`` or ``name(key=value, ...)``, parsed without evaluating them.

A neutral parser for anything chosen by name with keyword arguments:
activations (``"necro_relu(negative_slope=0.05)"``) and research datasets
(``"moons(noise=0.1)"``) alike. What the name means is the caller's business,
so errors here say "spec", not what the spec is for.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["parse_spec"]


def parse_spec(
    spec: str, *, keywords_for: Callable[[str], Sequence[str]] | None = None
) -> tuple[str, dict[str, Any]]:
  """Splits a spec into its name and keyword arguments, without evaluating it.

  Values must be Python literals: numbers, booleans, strings, or lists of them
  (a list is what a research grid sweeps; :func:`activations.get` refuses
  lists). A keyword given twice is refused, as Python refuses it in a call.

  Args:
    spec: ``"name"`` or ``"name(key=value, ...)"``.
    keywords_for: the keywords ``name`` takes, for the hint when values are
      given positionally.

  Returns:
    ``(name, kwargs)``.

  Examples:
    >>> parse_spec("necro_relu(negative_slope=0.05)")
    ('necro_relu', {'negative_slope': 0.05})
    >>> parse_spec("moons")
    ('moons', {})
    >>> parse_spec("moons(noise=0.1, noise=0.2)")
    Traceback (most recent call last):
    ...
    ValueError: Spec 'moons(noise=0.1, noise=0.2)': keyword 'noise' is repeated.
  """
  if not isinstance(spec, str):
    raise TypeError(f"A spec must be a string, got {spec!r}.")
  try:
    tree = ast.parse(spec.strip(), mode="eval").body
  except SyntaxError:
    raise ValueError(
        f"Cannot parse spec {spec!r}; write a name such as 'relu' or a call with"
        " keyword arguments such as 'necro_relu(negative_slope=0.05)'."
    ) from None
  if isinstance(tree, ast.Name):
    return tree.id, {}
  if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
    raise ValueError(f"Spec {spec!r} must be a name or name(keyword=value, ...).")
  name = tree.func.id
  if tree.args or any(k.arg is None for k in tree.keywords):
    keywords = list(keywords_for(name)) if keywords_for else []
    example = ", ".join(f"{k}=..." for k in keywords) or "keyword=..."
    raise ValueError(
        f"Spec {spec!r}: give values as keywords, e.g. {name}({example})."
    )
  kwargs: dict[str, Any] = {}
  for keyword in tree.keywords:
    if keyword.arg in kwargs:
      raise ValueError(f"Spec {spec!r}: keyword {keyword.arg!r} is repeated.")
    try:
      kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except ValueError:
      raise ValueError(
          f"Spec {spec!r}: the value of {keyword.arg!r} must be a Python literal"
          " (a number, True/False, a quoted string or a list of them), got"
          f" {ast.unparse(keyword.value)!r}."
      ) from None
  return name, kwargs
