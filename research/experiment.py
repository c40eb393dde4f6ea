"""``compare(config, out=...)``: the main job, from a config to a folder of results.

Validate everything first (fail before any training), load the data, open the
output folder (locked: one writer), drop damaged rows, skip the runs the folder
already holds, train each activation's grid as one program, write its rows as
soon as it finishes, then summarise and plot.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import time
from typing import Any, NamedTuple

import jax
import tqdm
from flax import nnx

from research import config as config_lib
from research import data, devices, grid, plots, results, summary, train
from research.config import Config


class Comparison(NamedTuple):
  """What :func:`compare` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # one row per run (runs.csv)
  history: list[dict[str, Any]]  # one row per run and evaluation (history.csv)
  layers: list[dict[str, Any]]  # one row per run, evaluation and layer (layers.csv)
  summary: str  # summary.md


def default_out(command: str = "compare") -> pathlib.Path:
  """``results/<command>-<timestamp>`` under the working directory."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return pathlib.Path("results") / f"{command}-{stamp}"


def _say(message: str, quiet: bool) -> None:
  if not quiet:
    tqdm.tqdm.write(message)


def _check_model_fits(config: Config, dataset: data.Dataset, first: grid.Grid) -> None:
  """Builds the model abstractly, so a model/data mismatch fails before training."""
  program = train.Program.of(config, dataset, first)
  try:
    nnx.eval_shape(lambda: train.build_model(program, first.activation(), jax.random.key(0)))
  except ValueError as error:
    raise ValueError(f"{config.model} does not fit dataset {config.dataset!r}: {error}") from None


class Prepared(NamedTuple):
  """A validated comparison, ready to train: nothing has been trained yet."""

  config: Config
  dataset: data.Dataset
  folder: results.ResultsFolder
  grids: tuple[grid.Grid, ...]
  pending: list[tuple[grid.Grid, list[grid.Run]]]  # runs the folder does not hold yet
  dropped: list[results.Damage]  # damaged rows removed from the folder: their runs retrain


def _refuse_foreign_runs(folder: results.ResultsFolder, grids: tuple[grid.Grid, ...]) -> None:
  """Refuses a folder whose runs this config does not produce (config.json lost?)."""
  expected = {run.run_id for g in grids for run in g.runs}
  foreign = sorted(folder.finished_run_ids() - expected)
  if foreign:
    raise ValueError(
        f"'{folder.path / results.RUNS_FILE}' holds {len(foreign)} run(s) that this"
        f" configuration does not produce, e.g. {foreign[0]!r}: they belong to another"
        " configuration (was config.json deleted?). Choose another output folder (--out)."
    )


def prepare(config: Config, out: str | os.PathLike | None = None) -> Prepared:
  """Checks ``config`` and the data, and opens (or resumes) the output folder.

  Everything that can be wrong with a config fails here, with a message that
  names the valid choices, before any training starts; so does an output
  folder that cannot be written or that another process is writing.
  """
  config_lib.validate(config)
  grids = grid.expand(config)
  dataset = data.load(config.dataset, seed=config.data_seed)
  _check_model_fits(config, dataset, grids[0])
  path = pathlib.Path(out) if out else default_out()
  folder = results.ResultsFolder(
      path, config_lib.to_dict(config), read_only=not devices.writes_results()
  )
  try:
    dropped = folder.drop_damaged() if devices.writes_results() else []
    _refuse_foreign_runs(folder, grids)
    finished = folder.finished_run_ids()
  except BaseException:
    folder.close()
    raise
  pending = [(g, [r for r in g.runs if r.run_id not in finished]) for g in grids]
  return Prepared(
      config, dataset, folder, grids, [(g, runs) for g, runs in pending if runs], dropped
  )


def run(prepared: Prepared, *, quiet: bool = False, command: str = "") -> Comparison:
  """Trains what :func:`prepare` found pending, then summarises and plots.

  Closes (unlocks) the folder when done, whether training finished or not.
  """
  config, dataset, folder, grids, pending, dropped = prepared
  try:
    return _run(config, dataset, folder, grids, pending, dropped, quiet, command)
  finally:
    folder.close()


def _run(config, dataset, folder, grids, pending, dropped, quiet, command) -> Comparison:
  out = folder.path
  started = time.perf_counter()
  skipped = sum(len(g.runs) for g in grids) - sum(len(runs) for _, runs in pending)
  _say(f"Writing to {out}", quiet)
  _say(f"{dataset}; {devices.machine_description()}", quiet)
  for damage in dropped:
    _say(f"Dropped a damaged row, {damage}; its run will be trained again.", quiet)
  if skipped:
    _say(f"Resuming: {skipped} finished run(s) skipped.", quiet)
  bar = tqdm.tqdm(
      total=config.steps * len(pending), unit="step", disable=quiet, dynamic_ncols=True
  )
  with bar:
    for number, (this_grid, runs) in enumerate(pending, start=1):
      bar.set_description(f"[{number}/{len(pending)}] {this_grid.spec} x {len(runs)} runs")

      def on_chunk(steps: int, mean_loss: float) -> None:
        bar.update(steps)
        bar.set_postfix(loss=f"{mean_loss:.4f}")

      result = train.train_grid(config, dataset, this_grid, runs, on_chunk=on_chunk)
      if devices.writes_results():
        folder.add(result.runs, result.history, result.layers, result.timing)

  all_runs, history, layers = folder.runs(), folder.history(), folder.layers()
  title = f"Comparison on {config.dataset}: {', '.join(config.activations)}"
  context = {
      "command": command or "research.compare(...)",
      "machine": devices.machine_description(),
      "training seconds (all grids)": round(sum(g["seconds"] for g in folder.grids()), 1),
  }
  report = summary.summary_markdown(
      all_runs, title=title, config=config_lib.to_dict(config), context=context
  )
  if devices.writes_results():
    results.write_text_atomic(out / "summary.md", report)
    plots.write_plots(out, all_runs, history, layers)
  _say("\n" + summary.summary_table(all_runs), quiet)
  _say(f"({time.perf_counter() - started:.1f} s)", quiet)
  return Comparison(out, all_runs, history, layers, report)


def compare(
    config: Config, *, out: str | os.PathLike | None = None, quiet: bool = False
) -> Comparison:
  """Trains every activation x seed x learning rate of ``config`` and reports.

  Results are written to ``out`` (default ``results/compare-<timestamp>``) as
  each activation's grid finishes: ``config.json``, ``runs.csv``,
  ``history.csv``, ``layers.csv``, ``grids.csv``, then ``summary.md`` and PNG
  plots. Rerunning with the same ``out`` resumes, skipping finished runs; a
  different config for an existing folder is refused, and so is a second
  process writing it at the same time.

  Examples:
    >>> import tempfile
    >>> result = compare(Config(activations=("relu", "necro_relu"), seeds=2, steps=20,
    ...                         eval_every=10, width=8), out=tempfile.mkdtemp(), quiet=True)
    >>> len(result.runs), sorted({row["activation"] for row in result.runs})
    (4, ['necro_relu', 'relu'])
  """
  return run(prepare(config, out), quiet=quiet)
