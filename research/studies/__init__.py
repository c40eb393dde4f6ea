"""Studies: each answers a question of the research brief with one command.

A study is a module here with a ``NAME`` (its subcommand, e.g. ``"dying"``), a
frozen dataclass of its settings (the flags of ``compare`` where they apply,
plus its own, defaulting to the full study), a function ``run(settings,
out=None, quiet=False)`` built on the engine
(:func:`research.experiment.prepare_parts` and
:func:`research.experiment.train_pending`: grids of runs as one compiled
program, a resumable output folder, a progress bar), and ``command``, the
command-line entry, derived from the dataclass by tyro. Modules are found by
name: adding a study needs no edit elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any


def commands() -> dict[str, Callable[..., Any]]:
  """``{name: command}`` for every study module in this package, in name order."""
  found = {}
  for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if module_info.name.startswith("_"):
      continue
    module = importlib.import_module(f"{__name__}.{module_info.name}")
    found[module.NAME] = module.command
  return found
