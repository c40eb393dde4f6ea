"""``compare(config)``: the main job, from a config to a folder of results.

Validate everything first (fail before any training), load the data, skip the
runs the output folder already holds, train each activation's grid as one
program, write its rows as soon as it finishes, then summarise and plot.
"""

from __future__ import annotations

import datetime
import os
import pathlib
from typing import Any, NamedTuple

import jax
import tqdm

from research import config as config_lib
from research import data, grid, plots, results, summary, train
from research.config import Config


class Comparison(NamedTuple):
  """What :func:`compare` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # one row per run (runs.csv)
  history: list[dict[str, Any]]  # one row per run and evaluation (history.csv)
  summary: str  # summary.md


def default_out() -> pathlib.Path:
  """``results/compare-<timestamp>`` under the working directory."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return pathlib.Path("results") / f"compare-{stamp}"


def _say(message: str, quiet: bool) -> None:
  if not quiet:
    tqdm.tqdm.write(message)


def _check_model_fits(config: Config, dataset: data.Dataset) -> None:
  """Builds the model abstractly, so a model/data mismatch fails before training."""
  first = grid.expand(config)[0]
  try:
    train.grid_functions(config, dataset, first)
  except ValueError as error:
    raise ValueError(f"{config.model} does not fit dataset {config.dataset!r}: {error}") from None


class Prepared(NamedTuple):
  """A validated comparison, ready to train: nothing has been trained yet."""

  config: Config
  dataset: data.Dataset
  folder: results.ResultsFolder
  grids: tuple[grid.Grid, ...]
  pending: list[tuple[grid.Grid, list[grid.Run]]]  # runs the folder does not hold yet


def prepare(config: Config) -> Prepared:
  """Checks ``config`` and the data, and opens (or resumes) the output folder.

  Everything that can be wrong with a config fails here, with a message that
  names the valid choices, before any training starts.
  """
  config_lib.validate(config)
  grids = grid.expand(config)
  dataset = data.load(config.dataset, seed=config.data_seed)
  _check_model_fits(config, dataset)
  out = pathlib.Path(config.out) if config.out else default_out()
  folder = results.ResultsFolder(
      out, config_lib.to_dict(config), ignore=config_lib.NOT_PART_OF_THE_EXPERIMENT
  )
  finished = folder.finished_run_ids()
  pending = [(g, [r for r in g.runs if r.run_id not in finished]) for g in grids]
  return Prepared(config, dataset, folder, grids, [(g, runs) for g, runs in pending if runs])


def run(prepared: Prepared) -> Comparison:
  """Trains what :func:`prepare` found pending, then summarises and plots."""
  config, dataset, folder, grids, pending = prepared
  out = folder.path
  skipped = sum(len(g.runs) for g in grids) - sum(len(runs) for _, runs in pending)
  _say(f"Writing to {out}", config.quiet)
  _say(f"{dataset}; {jax.device_count()} {jax.devices()[0].platform} device(s)", config.quiet)
  if skipped:
    _say(f"Resuming: {skipped} finished run(s) skipped.", config.quiet)
  bar = tqdm.tqdm(
      total=config.steps * len(pending), unit="step", disable=config.quiet, dynamic_ncols=True
  )
  with bar:
    for number, (this_grid, runs) in enumerate(pending, start=1):
      bar.set_description(f"[{number}/{len(pending)}] {this_grid.spec} x {len(runs)} runs")

      def on_chunk(steps: int, mean_loss: float) -> None:
        bar.update(steps)
        bar.set_postfix(loss=f"{mean_loss:.4f}")

      result = train.train_grid(config, dataset, this_grid, runs, on_chunk=on_chunk)
      folder.add(result.runs, result.history)

  all_runs, history = folder.runs(), folder.history()
  title = f"Comparison on {config.dataset}: {', '.join(config.activations)}"
  report = summary.summary_markdown(all_runs, title=title, config=config_lib.to_dict(config))
  results.write_text_atomic(out / "summary.md", report)
  plots.write_plots(out, all_runs, history)
  _say("\n" + summary.summary_table(all_runs), config.quiet)
  return Comparison(out, all_runs, history, report)


def compare(config: Config) -> Comparison:
  """Trains every activation x seed x learning rate of ``config`` and reports.

  Results are written to ``config.out`` as each activation's grid finishes:
  ``config.json``, ``runs.csv``, ``history.csv``, then ``summary.md`` and PNG
  plots. Rerunning with the same ``out`` resumes, skipping finished runs; a
  different config for an existing folder is refused.

  Examples:
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> result = compare(Config(activations=("relu", "necro_relu"), seeds=2, steps=20,
    ...                         eval_every=10, width=8, out=out, quiet=True))
    >>> len(result.runs), sorted({row["activation"] for row in result.runs})
    (4, ['necro_relu', 'relu'])
  """
  return run(prepare(config))


def main_from_cli(prepared: Prepared) -> Comparison:
  """The command line's ``compare``: the same, printing the table even when quiet."""
  config = prepared.config
  comparison = run(prepared)
  if config.quiet:
    print(summary.summary_table(comparison.runs))
  print(f"\nResults: {comparison.out}{os.sep}")
  return comparison
