"""A study: a declaration (its settings and the engine parts they make) plus a pure analysis.

Every study of :mod:`research.studies` is one :class:`Study`. Its settings are
a frozen dataclass holding the study's own axes (the depths, the datasets...)
and ``base``, the engine's :class:`research.config.Config` that every part
starts from; the command line overrides it as ``--base.steps 300``. The study
says which engine configs to train (``parts``) and what the rows mean
(``analyse``: :class:`research.tables.Tables` in,
:class:`research.findings.Findings` out). :func:`run` does the rest the same
way for every study: validate, train into a resumable folder, analyse, write
``summary.md``, ``findings.json``, the derived tables and the plots.

Examples:
  >>> import dataclasses, tempfile
  >>> from research import experiment, findings
  >>> from research.config import Config
  >>> @dataclasses.dataclass(frozen=True)
  ... class Settings:
  ...   widths: tuple[int, ...] = (4, 8)
  ...   base: Config = Config(dataset="xor", activations=("relu",), seeds=1, steps=10,
  ...                         eval_every=5)
  >>> def parts(settings):
  ...   return [experiment.Part({"width": w}, dataclasses.replace(settings.base, width=w))
  ...           for w in settings.widths]
  >>> def analyse(settings, tables):
  ...   accuracy = tables.runs.groupby("width")["test_accuracy"].mean()
  ...   return findings.Findings("Does width help?", tuple(
  ...       findings.Answer(f"width {w}: {{}}.", (findings.Estimate(a, kind="percent"),))
  ...       for w, a in accuracy.items()))
  >>> demo = Study("demo", "Does width help?", Settings, parts, analyse, owns=("width",))
  >>> outcome = demo.run(Settings(), out=tempfile.mkdtemp(), quiet=True)
  >>> len(outcome.tables.runs), sorted(p.name for p in outcome.out.glob("*.json"))
  (2, ['config.json', 'findings.json'])
"""

import dataclasses
import os
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, NamedTuple

import pandas as pd
import tyro

from research import checkpoints as checkpoints_lib
from research import config as config_lib
from research import devices, distributed, experiment, findings, tables
from research import tensorboard as tensorboard_lib
from research.command import command_line, run_command
from research.run_options import RunOptions

Parts = Callable[[Any], Sequence[experiment.Part]]
Analyse = Callable[[Any, tables.Tables], findings.Findings]
Plots = Callable[[Any, tables.Tables, pathlib.Path], None]
Measure = Callable[[Any, pathlib.Path, bool], Mapping[str, pd.DataFrame]]


def _no_checks(settings: Any) -> None:
  del settings


@dataclasses.dataclass(frozen=True)
class Study:
  """A study, declared.

  Attributes:
    name: its subcommand and default folder, e.g. ``"born-dead"``.
    question: what it asks, one line (the summary's title and ``--help``).
    settings: its settings class: a frozen dataclass of its own axes and
      ``base: Config``, defaulting to the full study.
    parts: the engine configs to train, each with the columns of its rows.
    analyse: the rows (and measurements) in, the findings out; pure.
    validate: raises a ``ValueError`` naming a bad setting and the valid values.
    plots: draws the figures into the folder (names listed in the findings).
    run_columns: the study's own ``runs.csv`` columns, from each run's row.
    measure: measurements outside the engine (a Monte Carlo count, say),
      written and resumed by the study itself in the folder, by table name.
    owns: fields of ``base`` that the study's axes set per part; setting one
      of them on the command line is refused rather than silently ignored.
  """

  name: str
  question: str
  settings: type
  parts: Parts
  analyse: Analyse
  validate: Callable[[Any], None] = _no_checks
  plots: Plots | None = None
  run_columns: Callable[[Any], experiment.RunColumns] | None = None
  measure: Measure | None = None
  owns: tuple[str, ...] = ()

  def run(self, settings: Any = None, *, out: str | os.PathLike | None = None,
          quiet: bool = False, command: str = "",
          checkpoints: checkpoints_lib.Schedule = checkpoints_lib.Schedule(),
          tensorboard: bool = False) -> "Outcome":
    """:func:`run` of this study; ``settings`` default to the full study."""
    return run(self, self.settings() if settings is None else settings, out=out, quiet=quiet,
               command=command, checkpoints=checkpoints, tensorboard=tensorboard)


class Outcome(NamedTuple):
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  tables: tables.Tables  # its rows, as DataFrames
  findings: findings.Findings  # what the analysis found
  summary: str  # summary.md

  @property
  def runs(self) -> pd.DataFrame:
    return self.tables.runs


def check(study: Study, settings: Any) -> None:
  """The study's own checks, then that ``base`` leaves the study's axes alone."""
  if not isinstance(settings, study.settings):
    raise TypeError(f"{study.name} needs {study.settings.__name__}, got {type(settings).__name__}.")
  study.validate(settings)
  default = study.settings().base
  for field in study.owns:
    if getattr(settings.base, field) != getattr(default, field):
      raise ValueError(
          f"base.{field} is set per part by the {study.name} study from its own settings;"
          f" change those instead (python -m research {study.name} --help).")


def record(study: Study, settings: Any) -> dict[str, Any]:
  """What a study's ``config.json`` records: its name and its settings, JSON-ready."""
  return {"study": study.name, **config_lib.to_dict(settings)}


def run(study: Study, settings: Any, *, out: str | os.PathLike | None = None,
        quiet: bool = False, command: str = "",
        checkpoints: checkpoints_lib.Schedule = checkpoints_lib.Schedule(),
        tensorboard: bool = False) -> Outcome:
  """Trains a study's parts into ``out`` (resuming it), analyses the rows and writes the findings.

  Writes the engine's files, then ``summary.md``, ``findings.json``, each
  derived table as ``<name>.csv`` and the plots, into ``out`` (default
  ``results/<name>-<timestamp>``); with ``tensorboard``, each run's event
  file too (:mod:`research.tensorboard`).
  """
  check(study, settings)
  if tensorboard:
    tensorboard_lib.require()  # before the data is loaded or anything measured
  started = time.perf_counter()
  prepared = experiment.prepare_parts(study.parts(settings), record(study, settings), out,
                                      name=study.name)
  run_columns = study.run_columns(settings) if study.run_columns else None
  writes = devices.writes_results()  # process 0 alone measures, analyses and writes
  try:
    measured = (study.measure(settings, prepared.folder.path, quiet)
                if study.measure and writes else {})
    trained = experiment.train_pending(prepared, quiet=quiet, run_columns=run_columns, close=False,
                                       checkpoints=checkpoints, tensorboard=tensorboard)
    if not writes:  # its share of the runs is trained; the rows are process 0's
      return Outcome(trained.out, tables.Tables.of([]), findings.Findings(study.question), "")
    return _conclude(study, settings, trained, measured, started, quiet, command)
  finally:
    prepared.folder.close()  # only now: another writer must not come in before the summary


def _conclude(study: Study, settings: Any, trained: experiment.Trained,
              measured: Mapping[str, pd.DataFrame], started: float, quiet: bool,
              command: str) -> Outcome:
  """Analyses the rows and writes summary, findings, tables and plots into the locked folder."""
  found_tables = tables.Tables.of(trained.runs, trained.history, trained.layers, trained.grids,
                                  measured)
  found = study.analyse(settings, found_tables)
  context = experiment.context(
      command or f"research.studies.run({study.name!r}, {settings!r})",
      time.perf_counter() - started, trained, record(study, settings))
  summary = findings.to_markdown(found, name=study.name, reproduce=findings.reproduce_lines(context))
  texts = {f"{name}.csv": data.to_csv(index=False) for name, data in found.data.items()}
  texts |= {"summary.md": summary,
            "findings.json": findings.to_json(found, name=study.name, record=context)}
  draw = (lambda folder: study.plots(settings, found_tables, folder)) if study.plots else (
      lambda folder: None)
  experiment.write_outputs(trained.out, texts, draw)
  experiment.say(summary, quiet)
  return Outcome(trained.out, found_tables, found, summary)


def command(study: Study) -> Callable[..., int]:
  """The study's subcommand: its settings as flags (``--base.steps`` for the engine's), tyro-derived."""

  def study_command(settings: Any = None, out: str = "", quiet: bool = False,
                    options: RunOptions = RunOptions()) -> int:
    def work() -> None:
      distributed.join(options.processes())  # before JAX computes anything
      writes = devices.writes_results()
      outcome = study.run(settings, out=out or None, quiet=quiet or not writes,
                          command=command_line(), checkpoints=options.checkpoints(),
                          tensorboard=options.tensorboard)
      print(f"\nResults: {outcome.out}/" if writes else distributed.done_line())

    return distributed.run(lambda: run_command(work, out=out))

  study_command.__defaults__ = (study.settings(), "", False, RunOptions())
  study_command.__annotations__ = {
      "settings": Annotated[study.settings, tyro.conf.arg(name="")], "out": str, "quiet": bool,
      "options": Annotated[RunOptions, tyro.conf.arg(name="")], "return": int}
  study_command.__name__ = study.name.replace("-", "_")
  study_command.__doc__ = (
      f"{study.question}\n\nArgs:\n  settings: the study (--base.* are the engine's settings).\n"
      f"  out: output folder; empty means results/{study.name}-<timestamp>. Rerunning with the"
      " same folder resumes.\n  quiet: no progress bar and no line per finished program.\n"
      "  options: how the command runs, never what it computes (research.run_options).\n")
  return study_command
