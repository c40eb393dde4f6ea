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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from research import config as config_lib
from research import devices
from research import study as study_lib
from research.command import command_line, run_command
from research.study import Study


def all_studies() -> dict[str, Study]:
  """``{name: study}`` for every study module of this package (its ``STUDY``), in name order."""
  found = {}
  for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if module_info.name.startswith("_"):
      continue
    module = importlib.import_module(f"{__name__}.{module_info.name}")
    if hasattr(module, "STUDY"):
      found[module.STUDY.name] = module.STUDY
  return found


def table_markdown() -> str:
  """The studies as a Markdown table (command, question), for the README; a test keeps it in sync."""
  lines = ["| command | question |", "|---|---|"]
  lines += [f"| `python -m research {name}` | {(command.__doc__ or '').strip().splitlines()[0]} |"
            for name, command in commands().items()]
  return "\n".join(lines)


def commands() -> dict[str, Callable[..., Any]]:
  """``{name: command}`` for every study module in this package, in name order."""
  found = {}
  for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if module_info.name.startswith("_"):
      continue
    module = importlib.import_module(f"{__name__}.{module_info.name}")
    if hasattr(module, "STUDY"):
      found[module.STUDY.name] = study_lib.command(module.STUDY)
    else:
      found[module.NAME] = module.command
  return found


def run(name: str | Study, settings: Any = None, *, out: str | None = None, quiet: bool = False,
        command: str = "") -> study_lib.Outcome:
  """Runs a study by name (``"dying"``) or declaration; ``settings`` default to the full study."""
  studies = all_studies()
  if isinstance(name, str):
    if name not in studies:
      raise ValueError(f"No study named {name!r}. Choose from: {', '.join(studies)}.")
    name = studies[name]
  return name.run(settings, out=out, quiet=quiet, command=command)


def settings_record(name: str, settings: Any) -> dict[str, Any]:
  """What a study's ``config.json`` records: its name and its settings, JSON-ready.

  Examples:
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Settings:
    ...   depths: tuple[int, ...] = (2, 5)
    >>> settings_record("demo", Settings())
    {'study': 'demo', 'depths': [2, 5]}
  """
  return {"study": name, **config_lib.to_dict(settings)}


def python_call(settings: Any) -> str:
  """How a Python caller ran a study, for its summary when there is no command line.

  The study is the module that defines the settings' class.
  """
  return f"{type(settings).__module__}.run({settings!r})"


def reproduce_lines(
    name: str, settings: Any, command: str, seconds: float, grids: Sequence[Mapping[str, Any]],
    *, what: str = "",
) -> list[str]:
  """A study summary's closing "Reproduce" section, as markdown lines.

  The command (or the Python call when there is none), the machine, the wall
  time of this call with the training seconds summed over ``grids.csv`` (one
  row per trained program), and the settings ``config.json`` records; ``what``
  says what else the wall time covers.

  Examples:
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Settings:
    ...   seeds: int = 3
    >>> lines = reproduce_lines("demo", Settings(), "python -m research demo", 12.34,
    ...                         [{"seconds": 4.0}, {"seconds": 6.0}])
    >>> for line in lines:
    ...   print(line)
    ## Reproduce
    <BLANKLINE>
    - command: `python -m research demo`
    - machine: ...
    - wall time of this call: 12.3 s (training 10.0 s, summed over every trained program of this folder (grids.csv))
    - settings: `{'study': 'demo', 'seeds': 3}`
    <BLANKLINE>
  """
  training = sum(grid["seconds"] for grid in grids)
  covers = f"{what}; " if what else ""
  return [
      "## Reproduce", "",
      f"- command: `{command or python_call(settings)}`",
      f"- machine: {devices.machine_description()}",
      f"- wall time of this call: {seconds:.1f} s ({covers}training {training:.1f} s,"
      " summed over every trained program of this folder (grids.csv))",
      f"- settings: `{settings_record(name, settings)}`", "",
  ]


def run_from_command_line(run: Callable[..., Any], settings: Any, out: str, quiet: bool) -> int:
  """The body of every study's ``command``: runs it and says where its results are.

  A user's mistake, a busy folder or a full disk is one line and an exit code
  (:func:`research.command.run_command`), never a traceback.
  """
  def work() -> None:
    outcome = run(settings, out=out or None, quiet=quiet, command=command_line())
    print(f"\nResults: {outcome.out}/")

  return run_command(work, out=out)
