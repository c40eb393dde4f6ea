"""Ctrl-C: at once, one line, status 130, whole files, and a rerun that resumes to the same rows."""

from __future__ import annotations

import gc
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import jax
import pytest

import research
from conftest import rows_by_run
from research import cli, command, csv_rows, experiment, results
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # trains with optax

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Two grids, each its own program under vmap: a Ctrl-C can fall between them.
CONFIG = Config(
    dataset="moons(num_train=128, num_test=64)", width=8, depth=1,
    activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])"), seeds=2, steps=40,
    eval_every=20, batch_size=16, batching="vmap",
)
FLAGS = [
    "--dataset", CONFIG.dataset, "--width", "8", "--depth", "1",
    "--activations", ",".join(CONFIG.activations), "--seeds", "2", "--steps", "40",
    "--eval-every", "20", "--batch-size", "16", "--batching", "vmap", "--quiet",
]


def _start(out: pathlib.Path) -> subprocess.Popen:
  environment = {**os.environ, "SURROGATE_COMPILATION_CACHE": "off",
                 # the devices of this process, so that its own run is the reference
                 "XLA_FLAGS": f"--xla_force_host_platform_device_count={jax.device_count()}"}
  return subprocess.Popen(
      [sys.executable, "-m", "research", "compare", *FLAGS, "--out", str(out)], cwd=ROOT,
      env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_when(process: subprocess.Popen, ready: Callable[[], bool]) -> tuple[int, str, float]:
  """Sends Ctrl-C's signal once ``ready()``; returns the status, stderr and seconds to exit."""
  deadline = time.monotonic() + 120
  while not ready():
    assert process.poll() is None, f"ended before the moment: {process.communicate()}"
    assert time.monotonic() < deadline, "the moment never came"
    time.sleep(0.005)
  sent = time.monotonic()
  process.send_signal(signal.SIGINT)
  try:
    _, error = process.communicate(timeout=60)
  except subprocess.TimeoutExpired:
    process.kill()
    raise
  return process.returncode, error, time.monotonic() - sent


def _data_rows(path: pathlib.Path) -> int:
  return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.slow
def test_ctrl_c_stops_at_once_in_one_line_and_a_rerun_resumes_to_the_same_results(
    tmp_path, monkeypatch, capsys):
  # Regression: Ctrl-C gave a 176-256-line traceback, or was lost in JAX's
  # garbage-collector callback and the command went on to exit 0.
  out = tmp_path / "interrupted"
  runs, summary = out / "runs.csv", out / "summary.md"
  moments = {
      # the first program's rows are written: the second one compiles next.
      "compiling the second program": lambda: _data_rows(runs) > before,
      "writing the summary and plots": summary.exists,
  }
  for moment, ready in moments.items():
    before = _data_rows(runs)
    status, error, seconds = _interrupt_when(_start(out), ready)
    lines = error.strip().splitlines()
    assert status == 130 and len(lines) == 1, (moment, error)
    assert f"'{out}'" in lines[0] and "rerun the same command" in lines[0], (moment, error)
    finished = _data_rows(runs)
    assert (f"{finished} of 6 runs" if finished < 6 else "all 6 runs") in lines[0], (moment, error)
    assert seconds < 5, (moment, seconds)
    assert not list(out.glob(".*.tmp")), moment  # no write was cut
  # The same command in this process: a third process would only pay Python's
  # startup and imports again. Its own XLA_FLAGS changes are undone afterwards.
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
  capsys.readouterr()
  status = cli.main(["compare", *FLAGS, "--out", str(out)])
  assert status == 0, capsys.readouterr().err  # the lock went with the process
  assert summary.exists() and (out / "final_accuracy.png").exists()
  reference = research.compare(CONFIG, out=tmp_path / "reference", quiet=True).out
  assert rows_by_run(out) == rows_by_run(reference)


def _ctrl_c() -> None:
  os.kill(os.getpid(), signal.SIGINT)
  time.sleep(0.05)  # Python runs the handler here


class _CutWrites:
  """A file whose writes get a Ctrl-C halfway through."""

  def __init__(self, file):
    self.file = file

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    return self.file.__exit__(*exc_info)

  def __getattr__(self, name):
    return getattr(self.file, name)

  def write(self, data):
    half = len(data) // 2
    self.file.write(data[:half])
    self.file.flush()
    _ctrl_c()
    return half + self.file.write(data[half:])


def _cut_appends(path, mode="r", *args, **kwargs):
  """``open``, with a Ctrl-C halfway through each write of a file opened to append."""
  file = open(path, mode, *args, **kwargs)  # noqa: SIM115
  return _CutWrites(file) if mode == "a+b" else file


RUN = {"run_id": "relu|seed=0", "activation": "relu", "seed": 0, "test_loss": 0.5}


@pytest.mark.parametrize("write", ["a program's rows", "an atomic write", "an append of rows"])
def test_ctrl_c_inside_a_write_lets_it_finish_then_stops(tmp_path, capsys, monkeypatch, write):
  done = []

  def work() -> None:
    command.record_progress(tmp_path, 1, 2)
    if write == "a program's rows":
      with command.uninterrupted():  # as experiment.train_pending writes its four files
        _ctrl_c()
        done.append("written")
    elif write == "an atomic write":
      monkeypatch.setattr(os, "fsync", lambda descriptor, fsync=os.fsync: (_ctrl_c(), fsync(descriptor)))
      experiment.write_report(tmp_path, "summary.md", "# whole\n")  # then checks for Ctrl-C
    else:
      with results.ResultsFolder(tmp_path, {"steps": 1}) as folder:
        folder.add([RUN])  # the file's first rows: written whole, atomically
        try:
          monkeypatch.setattr(csv_rows, "open", _cut_appends, raising=False)
          folder.add([{**RUN, "run_id": "relu|seed=1", "seed": 1}])  # appended
        finally:
          monkeypatch.undo()
        done.append("written")
        command.check_interrupt()  # the next check, as between chunks
    done.append("never")

  status = []
  try:
    status.append(command.run_command(work))
  except KeyboardInterrupt:
    pytest.fail("Ctrl-C escaped the command as a KeyboardInterrupt")
  assert "never" not in done and status == [130]
  assert capsys.readouterr().err.splitlines() == [
      f"interrupted: 1 of 2 runs are finished and kept in '{tmp_path}'; rerun the same command"
      " to resume."]
  assert not list(tmp_path.glob(".*.tmp"))
  if write == "a program's rows":
    assert done == ["written"]
  if write == "an atomic write":
    assert (tmp_path / "summary.md").read_text() == "# whole\n"
  if write == "an append of rows":
    with results.ResultsFolder(tmp_path, {"steps": 1}) as folder:
      assert folder.damage() == [] and len(folder.runs()) == 2


def test_ctrl_c_lost_in_a_garbage_collector_callback_still_stops_the_command(capsys):
  # JAX's gc callback (and any other) swallows an exception raised inside it:
  # Python printed "Exception ignored ... KeyboardInterrupt" and went on.
  fired = []

  def ctrl_c_in_callback(phase: str, info: dict) -> None:
    if phase == "start" and not fired:
      fired.append(True)
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.1)  # Python runs the handler here, inside the callback, which swallows it

  gc.callbacks.append(ctrl_c_in_callback)
  statuses = []
  try:
    statuses.append(command.run_command(gc.collect))
  except KeyboardInterrupt:
    pytest.fail("Ctrl-C escaped the command as a KeyboardInterrupt")
  finally:
    gc.callbacks.remove(ctrl_c_in_callback)
  assert fired and statuses == [130]
  assert capsys.readouterr().err.strip().splitlines() == [
      "interrupted before any results were written; rerun the same command to start again."]


def test_a_command_gives_back_the_handler_it_found_and_library_calls_keep_python_s():
  before = signal.getsignal(signal.SIGINT)
  assert command.run_command(lambda: None) == 0
  assert signal.getsignal(signal.SIGINT) is before
  with pytest.raises(KeyboardInterrupt):  # outside a command: Python's own Ctrl-C
    with command.uninterrupted():
      raise KeyboardInterrupt
