"""What a long run prints: a line per finished program, a bar whose ETA skips restored steps."""

from __future__ import annotations

import csv
import os
import re
import signal

import pytest

from research import command, data, experiment, programs
from research.checkpoints import Checkpoints, Schedule, _check_manifest
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # trains with optax

# test_checkpoints.py's: one program under map (its compilation shared), six runs, 40 steps.
CONFIG = Config(
    dataset="moons(num_train=128, num_test=64)", width=8, depth=1,
    activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])"), seeds=2, steps=40,
    eval_every=10, batch_size=16, batching="map",
)
EVERY_TEN = Schedule(every_steps=10, minutes=0)


def _bar_counts(error: str) -> list[tuple[int, int]]:
  """Each ``n/total`` the progress bar drew on stderr."""
  return [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+) \[", error)]


def _rows(out, name: str = "runs.csv") -> list[dict[str, str]]:
  with open(out / name, newline="") as file:
    return list(csv.DictReader(file))


def test_a_resumed_program_s_bar_counts_only_the_steps_it_trains_and_ends_in_one_line(
    tmp_path, capsys):
  out = tmp_path / "out"
  prepared = experiment.prepare(CONFIG, out)
  (index, batch), = experiment.program_batches(prepared)
  # Train the program with checkpoints and "lose" its rows, as a kill after step 30 would.
  programs.train_grids(CONFIG, prepared.datasets[index], batch,
                       checkpoints=Checkpoints(out, EVERY_TEN, say=lambda line: None))
  prepared.folder.close()
  capsys.readouterr()

  experiment.train_pending(experiment.prepare(CONFIG, out), checkpoints=EVERY_TEN)
  printed = capsys.readouterr()
  counts = _bar_counts(printed.err)
  assert counts and counts[-1] == (10, 10)  # restored at step 30: 10 of 40 steps left to train
  assert {total for _, total in counts} <= {40, 10}

  rows = _rows(out)
  accuracy = 100 * sum(float(row["test_accuracy"]) for row in rows) / len(rows)
  (grid,) = _rows(out, "grids.csv")  # the resumed program's
  lines = [line for line in printed.out.splitlines() if line.startswith("program ")]
  assert lines == [f"program 1/1 done: 6 runs (relu, necro_relu; lr 0.01)"
                   f" in {float(grid['seconds']):.1f} s,"
                   f" mean final test accuracy {accuracy:.1f}%, 0 diverged"]


def test_quiet_prints_neither_bar_nor_program_lines(tmp_path, capsys):
  experiment.train_pending(experiment.prepare(CONFIG, tmp_path), quiet=True)
  printed = capsys.readouterr()
  assert printed.out == "" and printed.err == ""
  assert len(_rows(tmp_path)) == 6


def test_ctrl_c_during_a_checkpoint_save_lets_it_finish_whole_then_stops(tmp_path, monkeypatch):
  from research import checkpoints as checkpoints_lib

  dataset = data.load(CONFIG.dataset, seed=CONFIG.data_seed)
  batch = [(each, each.runs) for each in experiment._grids(CONFIG, dataset)]
  write_manifest = checkpoints_lib._write_manifest

  def ctrl_c_then_write(folder):  # Ctrl-C lands between Orbax's rename and the file list
    os.kill(os.getpid(), signal.SIGINT)
    write_manifest(folder)

  monkeypatch.setattr(checkpoints_lib, "_write_manifest", ctrl_c_then_write)
  saver = Checkpoints(tmp_path, EVERY_TEN, say=lambda line: None)
  status = command.run_command(lambda: programs.train_grids(CONFIG, dataset, batch,
                                                            checkpoints=saver))
  assert status == command.INTERRUPTED
  saved = list((tmp_path / "checkpoints").glob("*/10"))  # stopped after the first save
  assert len(saved) == 1 and sorted(p.name for p in saved[0].parent.iterdir()) == ["10"]
  assert (saved[0] / "files.json").exists() and _check_manifest(saved[0]) is None
