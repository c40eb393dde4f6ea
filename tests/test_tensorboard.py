"""--tensorboard: one event file per run, the scalars of history.csv and layers.csv, never twice."""

from __future__ import annotations

import csv
import dataclasses
import pathlib
import sys

import numpy as np
import pytest

from research import cli, experiment, tensorboard
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # trains with optax

# test_checkpoints.py's: one program under map (its compilation shared), six runs, 40 steps.
CONFIG = Config(
    dataset="moons(num_train=128, num_test=64)", width=8, depth=1,
    activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])"), seeds=2, steps=40,
    eval_every=10, batch_size=16, batching="map",
)


def _csv(out: pathlib.Path, name: str) -> list[dict[str, str]]:
  with open(out / name, newline="") as file:
    return list(csv.DictReader(file))


def _expected(out: pathlib.Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
  """The scalars history.csv and layers.csv hold, as float32, by run folder."""
  expected: dict[str, dict[str, list[tuple[int, float]]]] = {}

  def add(row: dict[str, str], tag: str, column: str) -> None:
    if row[column] != "":
      points = expected.setdefault(tensorboard.run_folder(row["run_id"]), {}).setdefault(tag, [])
      points.append((int(row["step"]), float(np.float32(row[column]))))

  for row in _csv(out, "history.csv"):
    for column in ("test_accuracy", "train_accuracy", "test_loss", "train_loss",
                   "inactive_fraction", "dead_fraction", "revived_fraction", "sparsity"):
      add(row, column, column)
  for row in _csv(out, "layers.csv"):
    for column in ("inactive_fraction", "dead_fraction"):
      add(row, f"{column}/layer_{row['layer']}", column)
  return expected


def test_every_run_s_scalars_are_those_of_its_rows_and_a_rerun_writes_none_twice(tmp_path):
  out = tmp_path / "out"
  experiment.train_pending(experiment.prepare(CONFIG, out), quiet=True, tensorboard=True)
  found = tensorboard.read(out)
  expected = _expected(out)
  assert len(found) == 6 and found == expected
  some_run = next(iter(found.values()))
  assert [step for step, _ in some_run["test_accuracy"]] == [0, 10, 20, 30, 40]
  assert {"dead_fraction/layer_1", "inactive_fraction/layer_1", "train_loss",
          "test_loss"} <= set(some_run)

  files = sorted((out / "tensorboard").rglob(tensorboard.FILE))
  content = {path: path.read_bytes() for path in files}
  files[0].unlink()  # lost, as if killed between the rows and the event file
  experiment.train_pending(experiment.prepare(CONFIG, out), quiet=True, tensorboard=True)
  assert sorted((out / "tensorboard").rglob(tensorboard.FILE)) == files
  assert all(path.read_bytes() == content[path] for path in files[1:])  # not rewritten
  assert tensorboard.read(out) == expected  # the lost one written again, from the folder's rows


def test_a_study_part_s_columns_name_its_runs_folders(tmp_path):
  parts = [experiment.Part({"data_seed": seed}, dataclasses.replace(CONFIG, data_seed=seed))
           for seed in (0, 1)]
  prepared = experiment.prepare_parts(parts, {"data_seeds": [0, 1]}, tmp_path)
  experiment.train_pending(prepared, quiet=True, tensorboard=True)
  found = tensorboard.read(tmp_path)
  rows = _csv(tmp_path, "runs.csv")
  assert len(rows) == 12 and sorted(found) == sorted(
      tensorboard.run_folder(row["run_id"], {"data_seed": int(row["data_seed"])}) for row in rows)
  assert sum(folder.startswith("data_seed=1/relu,seed=0,learning_rate=0.01,") for folder in found) == 1


def test_without_tensorboardx_the_flag_is_one_line_before_any_training(tmp_path, capsys,
                                                                       monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
  out = tmp_path / "out"
  status = cli.main(["compare", "--dataset", "xor", "--activations", "relu", "--seeds", "1",
                     "--steps", "10", "--eval-every", "5", "--tensorboard", "--out", str(out)])
  error = capsys.readouterr().err
  assert status == 2 and len(error.strip().splitlines()) == 1
  assert "pip install surrogate-activations[tensorboard]" in error
  assert not (out / "runs.csv").exists()
