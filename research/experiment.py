"""Experiments: from configs to a folder of results. ``compare`` is the main one.

Validate everything first (fail before any training), load the data, open the
output folder (locked: one writer), drop damaged rows, skip the runs the folder
already holds, train each part's grids as one program (one per grid where runs
are batched with ``vmap``), write the rows as soon as a program finishes, then
summarise and plot.

A study is the same with several *parts* (:class:`Part`): engine configs that
differ in dataset, optimizer, depth... trained into one folder, each run's rows
carrying its part's columns. :func:`prepare_parts` and :func:`train_pending`
are what a study calls; :func:`compare` is the one-part case with its summary.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
import tqdm

from research import config as config_lib
from research import (
    atomic, data, devices, findings, fingerprint, grid, memory, model_spec, plots, programs,
    progress, results, summary, tables, train,
)
from research import tensorboard as tensorboard_lib
from research.command import check_interrupt, command_line, record_progress, uninterrupted
from research.checkpoints import Checkpoints, Schedule
from research.config import Config


class Comparison(NamedTuple):
  """What :func:`compare` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  tables: tables.Tables  # runs, history, layers, grids as pandas DataFrames
  findings: findings.Findings  # the answers and the main table, as data
  summary: str  # summary.md

  @property
  def runs(self) -> pd.DataFrame:
    """One row per run (``runs.csv``)."""
    return self.tables.runs

  @property
  def history(self) -> pd.DataFrame:
    """One row per run and evaluation (``history.csv``)."""
    return self.tables.history

  @property
  def layers(self) -> pd.DataFrame:
    """One row per run, evaluation and layer (``layers.csv``)."""
    return self.tables.layers


def default_out(command: str = "compare") -> pathlib.Path:
  """``results/<command>-<timestamp>`` under the working directory."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return pathlib.Path("results") / f"{command}-{stamp}"


def say(message: str, quiet: bool) -> None:
  """Prints ``message`` above the progress bar, unless ``quiet``."""
  if not quiet:
    tqdm.tqdm.write(message)


def _check_model_fits(config: Config, dataset: data.Dataset, first: grid.Grid) -> None:
  """Builds and calls the model abstractly, so a model/data mismatch fails before training."""
  program = train.Program.of(config, dataset, first)
  try:
    model_spec.check_model(train.model_builder(program), config.model, first.activation(),
                           dataset.input_shape, dataset.num_outputs)
  except ValueError as error:
    if model_spec.is_built_in(config.model):
      raise ValueError(f"{config.model} does not fit dataset {config.dataset!r}: {error}") from None
    raise


def _grids(config: Config, dataset: data.Dataset) -> tuple[grid.Grid, ...]:
  """The config's grids, each run's id covering the traced code and the data (:mod:`research.fingerprint`)."""
  grids = grid.expand(config)
  _check_model_fits(config, dataset, grids[0])
  identities = {
      g.spec: {"code": fingerprint.code(train.Program.of(config, dataset, g)),
               "data": dataset.fingerprint}
      for g in grids
  }
  return grid.expand(config, identities)


class Part(NamedTuple):
  """One engine config of an experiment, and the columns that tell its runs apart.

  ``compare`` has one part with no columns; a study has several (one per
  dataset and optimizer, say), and ``keys`` such as ``{"dataset": "mnist1d"}``
  go into every row of its runs, right after the ``run_id``.
  """

  keys: dict[str, Any]
  config: Config


class Prepared(NamedTuple):
  """A validated experiment, ready to train: nothing has been trained yet."""

  parts: tuple[Part, ...]
  datasets: tuple[data.Dataset, ...]  # one per part
  folder: results.ResultsFolder
  grids: tuple[tuple[grid.Grid, ...], ...]  # per part
  pending: list[tuple[int, grid.Grid, list[grid.Run]]]  # (part, grid, runs not yet held)
  dropped: list[results.Damage]  # damaged rows removed from the folder: their runs retrain


def _refuse_foreign_runs(folder: results.ResultsFolder, expected: set[str]) -> None:
  """Refuses a folder whose runs this experiment does not produce (config.json lost?)."""
  foreign = sorted(folder.finished_run_ids() - expected)
  if foreign:
    raise ValueError(
        f"'{folder.path / results.RUNS_FILE}' holds {len(foreign)} run(s) that this"
        f" configuration does not produce, e.g. {foreign[0]!r}: they belong to another"
        " configuration (was config.json deleted?). Choose another output folder (--out)."
    )


def prepare_parts(
    parts: Sequence[Part],
    settings: Mapping[str, Any],
    out: str | os.PathLike | None = None,
    *,
    name: str = "compare",
) -> Prepared:
  """Checks every part and its data, and opens (or resumes) the output folder.

  Everything that can be wrong fails here, with a message that names the
  valid choices, before any training starts; so does an output folder that
  cannot be written or that another process is writing.

  Args:
    parts: the engine configs to train, each with the columns of its rows.
    settings: what ``config.json`` records: the study's own configuration.
    out: the folder; default ``results/<name>-<timestamp>``.
    name: the command, for the default folder.
  """
  parts = tuple(parts)
  if not parts:
    raise ValueError("An experiment needs at least one part to train.")
  loaded: dict[tuple[str, int], data.Dataset] = {}
  datasets, grids = [], []
  for part in parts:
    config_lib.validate(part.config)
    memory.run_counts(part.config)  # the activation specs, before any data is loaded or run listed
    key = (part.config.dataset, part.config.data_seed)
    if key not in loaded:
      loaded[key] = data.load(part.config.dataset, seed=part.config.data_seed)
    datasets.append(loaded[key])
    memory.check_fits(part.config, loaded[key], name=name)  # before the runs are listed or compiled
    grids.append(_grids(part.config, loaded[key]))
  expected = {run.run_id for part_grids in grids for g in part_grids for run in g.runs}
  if len(expected) < sum(len(g.runs) for part_grids in grids for g in part_grids):
    raise ValueError("Two parts of this experiment train the same runs; give each its own settings.")
  devices.check_same_runs(sorted(expected))  # every process of a job trains the same runs
  path = pathlib.Path(out) if out else default_out(name)
  writes = devices.writes_results()  # process 0 alone reads and writes the folder
  folder = results.ResultsFolder(path, settings, read_only=not writes)
  try:
    dropped = folder.drop_damaged() if writes else []
    if writes:
      _refuse_foreign_runs(folder, expected)
    finished = devices.process_zero_choice(folder.finished_run_ids() if writes else set(),
                                           sorted(expected))
  except BaseException:
    folder.close()
    raise
  record_progress(folder.path, len(finished), len(expected))  # for Ctrl-C's line
  pending = [
      (index, g, [r for r in g.runs if r.run_id not in finished])
      for index, part_grids in enumerate(grids) for g in part_grids
  ]
  return Prepared(
      parts, tuple(datasets), folder, tuple(grids),
      [(index, g, runs) for index, g, runs in pending if runs], dropped,
  )


def prepare(config: Config, out: str | os.PathLike | None = None) -> Prepared:
  """:func:`prepare_parts` for a comparison: one part, ``config.json`` is ``config``."""
  return prepare_parts([Part({}, config)], config_lib.to_dict(config), out)


class Trained(NamedTuple):
  """Every row of the folder once training is done."""

  out: pathlib.Path
  runs: list[dict[str, Any]]
  history: list[dict[str, Any]]
  layers: list[dict[str, Any]]
  grids: list[dict[str, Any]]  # grids.csv: devices and seconds per trained program
  repaired: tuple[str, ...] = ()  # damaged rows this call dropped (their runs trained again)


def _with_keys(rows: Sequence[dict[str, Any]], keys: Mapping[str, Any]) -> list[dict[str, Any]]:
  """``rows`` with the part's columns right after ``run_id``."""
  if not keys:
    return list(rows)
  return [{"run_id": row["run_id"], **keys, **row} for row in rows]


RunColumns = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def train_pending(
    prepared: Prepared, *, quiet: bool = False, run_columns: RunColumns | None = None,
    close: bool = True, checkpoints: Schedule = Schedule(), tensorboard: bool = False,
) -> Trained:
  """Trains what :func:`prepare_parts` found pending, writing each program's runs as it finishes.

  Closes (unlocks) the folder when done, whether training finished or not;
  with ``close=False`` only on an error, and the caller closes it after
  writing its own files (summary, plots), so no other writer gets in between.

  Args:
    prepared: what :func:`prepare_parts` returned.
    quiet: no progress bar and no line per finished program
      (:func:`research.progress.program_line`).
    run_columns: a study's own columns for ``runs.csv``, computed from each
      finished run's row (with its part's columns) and written with it, e.g.
      ``lambda row: {"solved": int(row["test_accuracy"] >= 0.99)}``.
    checkpoints: when to save each program's state inside the folder, so that
      a rerun after a kill resumes it mid-run (:mod:`research.checkpoints`).
    tensorboard: also write each finished run's history as a TensorBoard
      event file under ``<out>/tensorboard`` (:mod:`research.tensorboard`).
  """
  try:
    if tensorboard:
      tensorboard_lib.require()  # before any training
    trained = _train_pending(prepared, quiet, run_columns, checkpoints, tensorboard)
  except OSError as error:  # a full disk: the grids written so far are intact
    prepared.folder.close()
    raise results.ResultsWriteError(prepared.folder.path) from error
  except BaseException:
    prepared.folder.close()
    raise
  if close:
    prepared.folder.close()
  return trained


Batch = list[tuple[grid.Grid, list[grid.Run]]]


def program_batches(prepared: Prepared) -> list[tuple[int, Batch]]:
  """The pending runs as ``(part, [(grid, runs), ...])``, one entry per program to train.

  Under ``batching="map"`` a part's grids train as one program
  (:func:`research.programs.train_grids`): the same numbers as one program per
  grid, compiled once instead of once per activation. Under ``vmap`` each grid
  is its own program, since a batched switch would compute every activation.
  """
  batches: list[tuple[int, Batch]] = []
  for index, this_grid, runs in prepared.pending:
    together = programs.grids_share_a_program(prepared.parts[index].config)
    if together and batches and batches[-1][0] == index:
      batches[-1][1].append((this_grid, runs))
    else:
      batches.append((index, [(this_grid, runs)]))
  return batches


def _train_pending(prepared: Prepared, quiet: bool, run_columns: RunColumns | None,
                   checkpoints: Schedule = Schedule(), tensorboard: bool = False) -> Trained:
  parts, datasets, folder, grids, pending, dropped = prepared
  machine, command = devices.machine_description(), command_line()
  say(f"Writing to {folder.path}", quiet)
  say(machine, quiet)
  for damage in dropped:  # even when quiet: a repair is never silent
    tqdm.tqdm.write(damage.notice, file=sys.stderr)
  total = sum(len(g.runs) for part_grids in grids for g in part_grids)
  skipped = total - sum(len(runs) for _, _, runs in pending)
  if skipped:
    say(f"Resuming: {skipped} finished run(s) skipped.", quiet)
  finished = skipped
  batches = program_batches(prepared)
  run_ids = [[run.run_id for _, runs in batch for run in runs] for _, batch in batches]
  saver = Checkpoints.of(folder.path, checkpoints)  # None unless this process alone writes
  if saver is not None:
    saver.keep_only(run_ids)  # only the programs in flight keep checkpoints
  part_keys = _part_keys(prepared) if tensorboard and devices.writes_results() else None
  if part_keys is not None:  # runs finished without --tensorboard, or before a kill
    tensorboard_lib.catch_up(folder, part_keys.get)
  bar = tqdm.tqdm(
      total=sum(train.resolved_steps(parts[index].config, datasets[index]) for index, _ in batches),
      unit="step",
      disable=quiet, dynamic_ncols=True,
  )
  with bar:
    for number, (index, batch) in enumerate(batches, start=1):
      check_interrupt()  # a Ctrl-C that Python lost stops here, between programs
      keys = parts[index].keys
      count = sum(len(runs) for _, runs in batch)
      bar.set_description(_description(number, len(batches), keys, batch))

      def on_chunk(steps: int, mean_loss: float) -> None:
        check_interrupt()  # and between chunks
        bar.update(steps)
        bar.set_postfix(loss=f"{mean_loss:.4f}")

      def on_resume(step: int) -> None:
        bar.total -= step  # restored, not trained: the ETA counts the steps left only
        bar.refresh()

      result = programs.train_grids(parts[index].config, datasets[index], batch, on_chunk=on_chunk,
                                    checkpoints=saver, on_resume=on_resume)
      if devices.writes_results():
        with uninterrupted():  # a Ctrl-C lets the program's rows reach all four files
          folder.add(*_program_rows(result, keys, run_columns,
                                    {"machine": machine, "command": command}))
          finished += count
          record_progress(folder.path, finished, total)  # before the Ctrl-C's line is written
        if saver is not None:
          saver.finished(run_ids[number - 1])  # the rows are written: its checkpoints go
        if part_keys is not None:  # from the rows just written, so that both agree exactly
          tensorboard_lib.write(folder.path, result.history, result.layers, part_keys.get)
        say(progress.program_line(number, len(batches), keys, result.runs,
                                  result.timing["seconds"]), quiet)
  if not devices.writes_results():  # the rows are process 0's, on its disk
    return Trained(folder.path, [], [], [], [])
  return Trained(folder.path, folder.runs(), folder.history(), folder.layers(), folder.grids(),
                 tuple(str(damage) for damage in dropped))


def _description(number: int, programs_count: int, keys: Mapping[str, Any],
                 batch: Batch) -> str:
  """The progress bar's label of a program: its number, part, grids and run count."""
  label = " ".join(f"{value}" for value in keys.values())
  specs = ", ".join(this_grid.spec for this_grid, _ in batch)
  count = sum(len(runs) for _, runs in batch)
  return f"[{number}/{programs_count}] {label} {specs} x {count} runs".replace("  ", " ").strip()


def _program_rows(result: programs.GridResult, keys: Mapping[str, Any],
                  run_columns: RunColumns | None, context: Mapping[str, Any]) -> tuple[Any, ...]:
  """A program's runs, history, layers and grids rows, as ResultsFolder.add takes them."""
  runs_rows = _with_keys(result.runs, keys)
  if run_columns is not None:
    runs_rows = [{**row, **run_columns(row)} for row in runs_rows]
  return (runs_rows, _with_keys(result.history, keys), _with_keys(result.layers, keys),
          {**keys, **result.timing, **context})


def _part_keys(prepared: Prepared) -> dict[str, Mapping[str, Any]]:
  """Each run id's part columns (``{"depth": 4}``), for its TensorBoard folder."""
  return {run.run_id: prepared.parts[index].keys
          for index, part_grids in enumerate(prepared.grids) for g in part_grids for run in g.runs}

def write_report(folder: pathlib.Path, name: str, text: str) -> None:
  """Writes a report file into a results folder; OS errors become :class:`results.ResultsWriteError`."""
  try:
    atomic.write_text_atomic(folder / name, text)
  except OSError as error:
    raise results.ResultsWriteError(folder) from error
  check_interrupt()  # one held back while the file was written

def write_outputs(
    folder: pathlib.Path, texts: Mapping[str, str], plots: Callable[[pathlib.Path], None]
) -> None:
  """Writes an experiment's own files (``{name: text}``: its tables, ``summary.md``) and plots.

  Only the process that writes results does (:func:`devices.writes_results`);
  an OS error such as a full disk becomes :class:`results.ResultsWriteError`.
  """
  if not devices.writes_results():
    return
  for name, text in texts.items():
    write_report(folder, name, text)
  try:
    plots(folder)
  except OSError as error:
    raise results.ResultsWriteError(folder) from error
  check_interrupt()

def context(command: str, seconds: float, trained: Trained,
            settings: Mapping[str, Any]) -> dict[str, Any]:
  """How an experiment was run, for ``findings.json``: command, machine, runs, times, settings.

  ``training_seconds`` sums every program the folder holds (``grids.csv``),
  over every call that added to it; ``wall_seconds`` is this call's.
  """
  seeds = sorted({row["seed"] for row in trained.runs})
  contiguous = seeds == list(range(len(seeds)))
  return {
      "command": command,
      "machine": devices.machine_description(),
      "runs": len(trained.runs),
      "seeds": f"0..{seeds[-1]}" if seeds and contiguous else ", ".join(map(str, seeds)),
      "wall_seconds": round(seconds, 1),
      "training_seconds": round(sum(grid["seconds"] for grid in trained.grids), 1),
      "repaired": list(trained.repaired),
      "settings": dict(settings),
  }

def run(prepared: Prepared, *, quiet: bool = False, command: str = "",
        checkpoints: Schedule = Schedule(), tensorboard: bool = False) -> Comparison:
  """Trains what :func:`prepare` found pending, then summarises and plots."""
  started = time.perf_counter()
  try:
    trained = train_pending(prepared, quiet=quiet, close=False, checkpoints=checkpoints,
                            tensorboard=tensorboard)
    if not devices.writes_results():  # its share of the runs is trained; the rows are process 0's
      return Comparison(trained.out, tables.Tables.of([]), findings.Findings(""), "")
    return _summarise(prepared, trained, started, quiet=quiet, command=command)
  finally:
    prepared.folder.close()  # only now: another writer must not come in before the summary

def _summarise(prepared: Prepared, trained: Trained, started: float, *, quiet: bool,
               command: str) -> Comparison:
  """A comparison's findings, summary and plots, written into its still-locked folder."""
  config = prepared.parts[0].config
  found = summary.comparison_findings(
      trained.runs, question=f"how do {', '.join(config.activations)} compare on {config.dataset}?")
  record = context(command or command_line(), time.perf_counter() - started, trained,
                   config_lib.to_dict(config))
  text = findings.to_markdown(found, name="compare", reproduce=findings.reproduce_lines(record))
  write_outputs(trained.out, {"summary.md": text,
                              "findings.json": findings.to_json(found, name="compare", record=record)},
                lambda folder: plots.write_plots(folder, trained.runs, trained.history, trained.layers))
  say("\n" + summary.summary_table(trained.runs), quiet)
  say(f"({time.perf_counter() - started:.1f} s)", quiet)
  return Comparison(trained.out, tables.Tables.of(trained.runs, trained.history, trained.layers,
                                                  trained.grids), found, text)

def compare(
    config: Config, *, out: str | os.PathLike | None = None, quiet: bool = False
) -> Comparison:
  """Trains every activation x seed x learning rate of ``config`` and reports.

  Results are written to ``out`` (default ``results/compare-<timestamp>``) as
  each compiled program finishes (on a CPU one for all the activations, see
  :func:`program_batches`): ``config.json``, ``runs.csv``,
  ``history.csv``, ``layers.csv``, ``grids.csv``, then ``summary.md`` and PNG
  plots. Rerunning with the same ``out`` resumes, skipping finished runs; a
  different config for an existing folder is refused, and so is a second
  process writing it at the same time.

  Examples:
    >>> import tempfile
    >>> result = compare(Config(activations=("relu", "necro_relu"), seeds=2, steps=20,
    ...                         eval_every=10, width=8), out=tempfile.mkdtemp(), quiet=True)
    >>> len(result.runs), sorted(result.runs["activation"].unique())
    (4, ['necro_relu', 'relu'])
    >>> result.runs.groupby("activation")["test_accuracy"].count().to_dict()
    {'necro_relu': 2, 'relu': 2}
  """
  return run(prepare(config, out), quiet=quiet)
