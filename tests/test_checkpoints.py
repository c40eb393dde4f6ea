"""Checkpoints inside a run: kill -9 mid-program, rerun, the same rows from fewer steps."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import jax
import pytest

from research import checkpoints, cli, data, experiment, programs, results
from research.checkpoints import Checkpoints, Schedule
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # trains with optax

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Two grids, one program under map (CPU): six runs, 40 steps.
CONFIG = Config(
    dataset="moons(num_train=128, num_test=64)", width=8, depth=1,
    activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])"), seeds=2, steps=40,
    eval_every=10, batch_size=16, batching="map",
)
EVERY_TEN = Schedule(every_steps=10, minutes=0)


@pytest.fixture(scope="module")
def program():
  """The config's data, its one program's grids and runs, and the rows of an uninterrupted run."""
  dataset = data.load(CONFIG.dataset, seed=CONFIG.data_seed)
  batch = [(each, each.runs) for each in experiment._grids(CONFIG, dataset)]
  return dataset, batch, programs.train_grids(CONFIG, dataset, batch)


def _train(program, saver: Checkpoints) -> tuple[programs.GridResult, int]:
  """Trains the program with ``saver``; returns its result and how many steps it trained."""
  dataset, batch, _ = program
  trained = []
  result = programs.train_grids(CONFIG, dataset, batch, checkpoints=saver,
                                on_chunk=lambda steps, loss: trained.append(steps))
  return result, sum(trained)


def _same_rows(result: programs.GridResult, reference: programs.GridResult) -> None:
  assert result.runs == reference.runs
  assert result.history == reference.history
  assert result.layers == reference.layers


def _steps(folder: pathlib.Path) -> list[int]:
  """The steps of the checkpoints in ``folder/checkpoints``, of every program."""
  return sorted(int(path.name) for path in (folder / "checkpoints").glob("*/*")
                if path.name.isdigit())


def _notices(saver_folder: pathlib.Path) -> tuple[Checkpoints, list[str]]:
  """Checkpoints every 10 steps into ``saver_folder``, and the lines they would print."""
  lines: list[str] = []
  return Checkpoints(saver_folder, EVERY_TEN, say=lines.append), lines


def test_a_program_resumes_from_its_last_checkpoint_bit_for_bit(program, tmp_path):
  saver, lines = _notices(tmp_path)
  first, trained = _train(program, saver)
  _same_rows(first, program[2])
  assert trained == 40 and lines == []
  assert _steps(tmp_path) == [20, 30]  # the last two; none at the end, when the rows are written

  resumed, trained = _train(program, saver)
  _same_rows(resumed, program[2])
  assert trained == 10  # only the steps after the checkpoint
  assert len(lines) == 1 and "at step 30" in lines[0]

  saver.finished([run.run_id for _, runs in program[1] for run in runs])
  assert _steps(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_checkpoint_is_reported_and_the_one_before_used(program, tmp_path, damage):
  saver, lines = _notices(tmp_path)
  _train(program, saver)
  latest = next((tmp_path / "checkpoints").glob("*/30"))
  files = sorted((path for path in (latest / "state").rglob("*") if path.is_file()),
                 key=lambda path: path.stat().st_size)
  if damage == "truncated":  # the largest file (the arrays), cut in half
    data_file = files[-1]
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
  else:  # a file of the state gone, as after a crash on a file system without atomic renames
    for path in files:
      if path.name == "manifest.ocdbt":
        path.unlink()
  resumed, trained = _train(program, saver)
  _same_rows(resumed, program[2])
  assert trained == 20  # from step 20
  assert len(lines) == 2, lines
  assert "is unusable" in lines[0] and "using step 20's" in lines[0]
  assert "at step 20" in lines[1]
  assert _steps(tmp_path) == [20, 30]  # the damaged one deleted, then saved afresh


def test_with_every_checkpoint_damaged_the_program_starts_afresh(program, tmp_path):
  saver, lines = _notices(tmp_path)
  _train(program, saver)
  for step in (20, 30):
    for path in next((tmp_path / "checkpoints").glob(f"*/{step}")).rglob("*"):
      if path.is_file() and path.parent.name == "record":
        path.write_text("{")  # the record unreadable
  resumed, trained = _train(program, saver)
  _same_rows(resumed, program[2])
  assert trained == 40
  assert len(lines) == 2 and "starting the program afresh" in lines[1]


def test_a_checkpoint_of_other_runs_is_never_used(program, tmp_path):
  dataset, batch, reference = program
  saver, lines = _notices(tmp_path)
  _train(program, saver)
  fewer = [(each, each.runs[:1]) for each, _ in batch]  # another program: other run ids
  result = programs.train_grids(CONFIG, dataset, fewer, checkpoints=saver)
  assert lines == []
  assert result.runs == [row for row in reference.runs
                         if row["run_id"] in {runs[0].run_id for _, runs in fewer}]


def test_saves_by_minutes_of_training(program, tmp_path):
  saver = Checkpoints(tmp_path, Schedule(every_steps=0, minutes=1e-9), say=lambda line: None)
  _train(program, saver)
  assert _steps(tmp_path) == [20, 30]  # after every evaluation but the last, the last two kept


def test_by_default_short_programs_write_no_checkpoint(program, tmp_path):
  assert Schedule().every_steps == 0 and Schedule().minutes == 5.0
  _train(program, Checkpoints(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_finished_programs_leave_no_checkpoints_and_stale_ones_go(tmp_path):
  out = tmp_path / "out"
  stale = out / "checkpoints" / "0123456789abcdef" / "10"
  stale.mkdir(parents=True)  # of a program that is not pending
  prepared = experiment.prepare(CONFIG, out)
  experiment.train_pending(prepared, quiet=True, checkpoints=EVERY_TEN)
  assert not (out / "checkpoints").exists()
  assert "checkpoint" not in json.dumps(results.read_config(out))


BOOKKEEPING = {"checksum", "history_rows", "layers_rows", "grids_rows", "program"}  # not results


def _table(out: pathlib.Path, name: str) -> list[dict[str, str]]:
  """A CSV's rows as their exact text, without the folder's bookkeeping columns."""
  with open(out / name, newline="") as file:
    rows = [{key: value for key, value in row.items() if key not in BOOKKEEPING}
            for row in csv.DictReader(file)]
  return sorted(rows, key=lambda row: (row["run_id"], row.get("step", ""), row.get("layer", "")))


# Long enough to be killed mid-program, small enough to compile fast: two runs.
SLOW = dataclasses.replace(CONFIG, activations=("relu", "necro_relu"), seeds=1, steps=400,
                           eval_every=20)
FLAGS = [
    "--dataset", SLOW.dataset, "--width", "8", "--depth", "1",
    "--activations", ",".join(SLOW.activations), "--seeds", "1", "--steps", "400",
    "--eval-every", "20", "--batch-size", "16", "--batching", "map", "--quiet",
]


def _command(out: pathlib.Path, *flags: str) -> list[str]:
  return [sys.executable, "-m", "research", "compare", *FLAGS, *flags, "--out", str(out)]


@pytest.mark.slow
def test_kill_9_mid_program_then_rerun_resumes_to_the_same_rows_training_fewer_steps(
    tmp_path, monkeypatch, capsys):
  environment = {
      **os.environ, "SURROGATE_COMPILATION_CACHE": "off",
      "XLA_FLAGS": f"--xla_force_host_platform_device_count={jax.device_count()}"}
  out = tmp_path / "killed"
  process = subprocess.Popen(
      _command(out, "--checkpoint-every", "20", "--checkpoint-minutes", "0"),
      cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  started = time.monotonic()
  killed: list[list[int]] = []

  def kill_after_the_first_checkpoint() -> None:
    deadline = started + 180
    while not _steps(out) and process.poll() is None and time.monotonic() < deadline:
      time.sleep(0.005)  # Orbax renames a checkpoint into place once it is complete
    process.send_signal(signal.SIGKILL)
    killed.append(_steps(out))

  watcher = threading.Thread(target=kill_after_the_first_checkpoint)
  watcher.start()
  reference = tmp_path / "reference"  # uninterrupted, in this process meanwhile
  experiment.train_pending(experiment.prepare(SLOW, reference), quiet=True)
  watcher.join()
  process.communicate(timeout=60)
  print(f"killed at {killed}, reference done after {time.monotonic() - started:.1f} s")
  assert process.returncode == -signal.SIGKILL
  assert not (out / "runs.csv").exists() or len(_table(out, "runs.csv")) == 0, "finished too soon"
  saved = _steps(out)
  assert saved and max(saved) < SLOW.steps, "no checkpoint came"

  # Another interval: not part of the experiment, so the folder and its checkpoint are taken.
  # The same command in this process, where the reference compiled the program: a
  # second process would only pay Python's startup and loading it again.
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # undoes the command's own
  capsys.readouterr()
  status = cli.main(["compare", *FLAGS, "--checkpoint-every", "100", "--out", str(out)])
  error = capsys.readouterr().err
  assert status == 0, error
  print(f"rerun done after {time.monotonic() - started:.1f} s")
  resumed = [line for line in error.splitlines() if line.startswith("Resumed program")]
  assert len(resumed) == 1, error
  step = int(resumed[0].split(" at step ")[1].split()[0])
  assert step >= min(saved) > 0  # it trained only the steps after it
  assert not (out / "checkpoints").exists()  # the finished program's checkpoints are gone

  for name in ("runs.csv", "history.csv", "layers.csv"):
    assert _table(out, name) == _table(reference, name), name
  assert results.read_config(out) == results.read_config(reference)


def test_the_schedule_rounds_to_evaluations_and_is_not_part_of_the_experiment():
  assert Schedule(every_steps=25).interval(10) == 30
  assert Schedule(every_steps=0, minutes=0).off
  assert "checkpoint" not in " ".join(field for field in CONFIG.__dataclass_fields__)
  assert checkpoints.program_key(["a", "b"]) != checkpoints.program_key(["b", "a"])
