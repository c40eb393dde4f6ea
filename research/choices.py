"""One way to reject a name: say what was given, the closest valid names, and all of them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def hint(value: str, valid: Iterable[str], count: int = 1) -> str:
  """`` Did you mean 'adam'?`` for the closest valid names, or ``""``.

  Examples:
    >>> hint("adma", ("sgd", "adam"))
    " Did you mean 'adam'?"
    >>> hint("xyz", ("sgd", "adam"))
    ''
  """
  close = difflib.get_close_matches(str(value), list(valid), n=count, cutoff=0.5)
  return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def check(field: str, value: str, valid: tuple[str, ...]) -> None:
  """A ``ValueError`` naming ``field``, the closest valid value and every valid one.

  Examples:
    >>> check("optimizer", "adma", ("sgd", "adam"))
    Traceback (most recent call last):
    ...
    ValueError: optimizer='adma' is not valid. Did you mean 'adam'? Choose from: sgd, adam.
  """
  if value not in valid:
    raise ValueError(
        f"{field}={value!r} is not valid.{hint(value, valid)} Choose from: {', '.join(valid)}.")
