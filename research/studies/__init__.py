"""Studies: each answers a question of the research brief with one command.

A study is a module here with a ``STUDY``, a :class:`research.study.Study`:
its settings (its own axes and the engine's ``Config`` as ``base``), the
engine parts they make, and a pure analysis of the rows into findings. One
runner (:func:`research.study.run`) and one command builder
(:func:`research.study.command`) serve them all. Modules are found by name:
adding a study needs no edit elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from research import study as study_lib
from research.study import Study


def all_studies() -> dict[str, Study]:
  """``{name: study}`` for every study module of this package (its ``STUDY``), in name order."""
  found = {}
  for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not module_info.name.startswith("_"):
      module = importlib.import_module(f"{__name__}.{module_info.name}")
      found[module.STUDY.name] = module.STUDY
  return found


def table_markdown() -> str:
  """The studies as a Markdown table (command, question), for the README; a test keeps it in sync."""
  lines = ["| command | question |", "|---|---|"]
  lines += [f"| `python -m research {name}` | {declared.question} |"
            for name, declared in all_studies().items()]
  return "\n".join(lines)


def commands() -> dict[str, Callable[..., Any]]:
  """``{name: command}`` for every study, in name order."""
  return {name: study_lib.command(declared) for name, declared in all_studies().items()}


def run(name: str | Study, settings: Any = None, *, out: str | None = None, quiet: bool = False,
        command: str = "") -> study_lib.Outcome:
  """Runs a study by name (``"dying"``) or declaration; ``settings`` default to the full study.

  Examples:
    >>> run("dyng")
    Traceback (most recent call last):
    ...
    ValueError: No study named 'dyng'. Choose from: born-dead, depth, dying, gradient-flow, init, slope-sweep, sparsity, surrogates, xor.
  """
  studies = all_studies()
  if isinstance(name, str):
    if name not in studies:
      raise ValueError(f"No study named {name!r}. Choose from: {', '.join(studies)}.")
    name = studies[name]
  return name.run(settings, out=out, quiet=quiet, command=command)
