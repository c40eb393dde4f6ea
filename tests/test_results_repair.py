"""End to end: a damaged results folder is repaired by rerunning its command (issue 20, 1 and 6).

Each test damages a copy of one tiny comparison's folder as a user would
(``rm layers.csv``, ``truncate -s 50 runs.csv``, a deleted history row, an
edited ``grids.csv`` row), reruns ``compare`` on it, and checks that it said
what it repaired (on stderr, even when quiet), trained again exactly the runs
concerned, and left rows equal to the undamaged folder's.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from collections.abc import Callable

import pytest

import research
from research import csv_rows, programs, results
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # optax's adam mixes dtypes

TINY = Config(dataset="xor(num_train=64, num_test=32)", width=4, depth=1,
              activations=("relu", "necro_relu"), seeds=2, steps=10, eval_every=5, batch_size=16)


def _rows(folder: pathlib.Path) -> dict[str, list[dict]]:
  """The folder's runs, history and layers, in a fixed order; and its grids without timing."""
  with results.ResultsFolder(folder, json.loads((folder / "config.json").read_text()),
                             read_only=True) as opened:
    assert opened.damage() == []
    found = {"runs": opened.runs(), "history": opened.history(), "layers": opened.layers()}
    grids = opened.grids()
  order = lambda row: (row["run_id"], row.get("step", 0), row.get("layer", 0))  # noqa: E731
  found = {name: sorted(rows, key=order) for name, rows in found.items()}
  # A program's seconds, devices and command differ from one call to the next.
  found["grids"] = [(row["grid"], row["runs"]) for row in grids]
  return found


@pytest.fixture(scope="module")
def undamaged(tmp_path_factory) -> pathlib.Path:
  out = tmp_path_factory.mktemp("undamaged") / "compare"
  research.compare(TINY, out=out, quiet=True)
  return out


def _line(path: pathlib.Path, number: int, change: Callable[[str], str]) -> None:
  lines = path.read_text().splitlines(keepends=True)
  lines[number - 1] = change(lines[number - 1])
  path.write_text("".join(lines))


DAMAGE = {
    "layers.csv deleted": lambda out: (out / "layers.csv").unlink(),
    "history.csv emptied": lambda out: (out / "history.csv").write_text(""),
    "a history row deleted": lambda out: _line(out / "history.csv", 3, lambda line: ""),
    "runs.csv header cut": lambda out: os.truncate(out / "runs.csv", 50),
    "layers.csv header cut": lambda out: os.truncate(out / "layers.csv", 30),
    "a grids.csv row edited": lambda out: _line(out / "grids.csv", 2,
                                                lambda line: line.replace(",cpu,", ",tpu,")),
}
# What each damage says on stderr, and how many runs it trains again.
TOLD = {
    "layers.csv deleted": ("layers.csv: is missing (deleted?), though runs.csv records rows in it"
                           " for 4 run(s); 4 run(s) will be trained again", 4),
    "history.csv emptied": ("history.csv: is empty (emptied?), though runs.csv records rows in it"
                            " for 4 run(s); 4 run(s) will be trained again", 4),
    "a history row deleted": ("history.csv: does not hold the rows runs.csv records for 1 run(s)"
                              " (deleted or added by hand?), e.g. run 'relu|seed=1|", 1),
    "runs.csv header cut": ("runs.csv line 1: has no valid header", 4),
    "layers.csv header cut": ("layers.csv line 1: has no valid header", 4),
    "a grids.csv row edited": ("grids.csv: has no intact row for the program that trained 4 run(s)", 4),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_rerun_repairs_the_damage_says_so_and_gives_the_undamaged_rows(
    undamaged, tmp_path, monkeypatch, capsys, damage):
  # Regression: a deleted layers.csv (or history.csv, or one of its rows) was
  # not noticed and the summary said the runs blew up before their first
  # evaluation; a cut header refused the whole folder; a damaged grids row
  # was dropped for good.
  out = tmp_path / "compare"
  shutil.copytree(undamaged, out)
  DAMAGE[damage](out)
  trained = []
  train = programs.train_grids
  monkeypatch.setattr(programs, "train_grids", lambda config, dataset, batch, **kwargs: (
      trained.extend(run.run_id for _, runs in batch for run in runs),
      train(config, dataset, batch, **kwargs))[1])
  capsys.readouterr()
  research.compare(TINY, out=out, quiet=True)
  told, retrained = TOLD[damage]
  error = capsys.readouterr().err
  assert told in error, error
  assert len(trained) == retrained
  before, after = _rows(undamaged), _rows(out)
  for name in ("runs", "history", "layers"):
    assert after[name] == before[name], name
  # The repaired program's row is back; a partly repaired one keeps its row beside the new one.
  assert after["grids"] == before["grids"] + ([("relu", 1)] if retrained == 1 else [])
  summary = (out / "summary.md").read_text()
  assert "repaired by this call" in summary


def _as_legacy(folder: pathlib.Path) -> None:
  """Rewrites ``folder`` as a version before the row counts wrote it: no bookkeeping columns."""
  for name in (results.RUNS_FILE, results.GRIDS_FILE):
    table = csv_rows.read_table(folder / name)
    drop = {"history_rows", "layers_rows", "grids_rows", "run_ids", csv_rows.CHECKSUM}
    rows = [{key: value for key, value in csv_rows.as_text(row).items() if key not in drop}
            for row in table.rows]
    csv_rows.write_table(folder / name, [c for c in table.header if c not in drop], rows)


def test_a_folder_from_before_the_row_counts_resumes_without_training_and_is_still_repaired(
    undamaged, tmp_path, monkeypatch, capsys):
  out = tmp_path / "compare"
  shutil.copytree(undamaged, out)
  _as_legacy(out)
  trained = []
  train = programs.train_grids
  monkeypatch.setattr(programs, "train_grids", lambda config, dataset, batch, **kwargs: (
      trained.extend(run.run_id for _, runs in batch for run in runs),
      train(config, dataset, batch, **kwargs))[1])
  research.compare(TINY, out=out, quiet=True)
  assert trained == []  # counts unknown: nothing retrained
  (out / "layers.csv").unlink()  # but a run without a single row is known to miss them
  capsys.readouterr()
  research.compare(TINY, out=out, quiet=True)
  assert "layers.csv: is missing (deleted?)" in capsys.readouterr().err
  assert len(trained) == 4
  before, after = _rows(undamaged), _rows(out)
  for name in ("runs", "history", "layers", "grids"):
    assert after[name] == before[name], name
