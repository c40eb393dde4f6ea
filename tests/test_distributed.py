"""Several processes as one job (jax.distributed, gloo on CPU): one process's rows, bit for bit.

Two local processes of one CPU device each, started as a user starts them
(``--coordinator-address 127.0.0.1:PORT --num-processes 2 --process-id I``):
the rows are those of the same command in one process; a rerun repairs and
resumes; process 1 never touches its ``--out``; a missing or killed process
stops the others in one line naming it. Every wait is bounded.
"""

from __future__ import annotations

import csv
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from conftest import rows_by_run
from research import distributed, experiment
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # trains with optax

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = Config(
    dataset="moons(num_train=128, num_test=64)", width=8, depth=1,
    activations=("relu", "necro_relu"), seeds=2, steps=40, eval_every=20, batch_size=16,
    batching="map",
)
FLAGS = [
    "--dataset", CONFIG.dataset, "--width", "8", "--depth", "1", "--activations",
    ",".join(CONFIG.activations), "--seeds", "2", "--eval-every", "20", "--batch-size", "16",
    "--batching", "map", "--quiet",
]
# Bounds on every wait, so that a hang fails the test instead of stalling the suite.
JOB_SECONDS = 400
STOP_SECONDS = 120


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def _start(process_id: int, out: pathlib.Path, port: int, *extra: str,
           steps: int = CONFIG.steps) -> subprocess.Popen:
  environment = {**os.environ, "SURROGATE_COMPILATION_CACHE": "off",
                 "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  return subprocess.Popen(
      [sys.executable, "-m", "research", "compare", *FLAGS, "--steps", str(steps),
       "--out", str(out), "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2",
       "--process-id", str(process_id), *extra],
      cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, seconds: float) -> tuple[int, str, str]:
  try:
    out, error = process.communicate(timeout=seconds)
  except subprocess.TimeoutExpired:
    process.kill()
    process.communicate()
    raise AssertionError(f"still running after {seconds} s: it hangs") from None
  return process.returncode, out, error


def _job(out: pathlib.Path, elsewhere: pathlib.Path) -> list[tuple[int, str, str]]:
  """The command on two processes, process 1 given its own --out; their statuses and output."""
  port = _free_port()
  processes = [_start(0, out, port), _start(1, elsewhere, port)]
  return [_finish(process, JOB_SECONDS) for process in processes]


def _drop_last_history_row(out: pathlib.Path) -> str:
  """Deletes history.csv's last row (its run is then damaged); returns that run's id."""
  path = out / "history.csv"
  lines = path.read_text().splitlines(keepends=True)
  path.write_text("".join(lines[:-1]))
  return next(csv.reader([lines[-1]]))[0]


@pytest.mark.slow
def test_two_processes_write_the_rows_of_one_and_resume(tmp_path):
  one = experiment.compare(CONFIG, out=tmp_path / "one", quiet=True)
  out, elsewhere = tmp_path / "two", tmp_path / "process-1"

  (status_0, table, notices), (status_1, done, errors) = _job(out, elsewhere)
  assert (status_0, status_1) == (0, 0), (notices, errors)
  assert rows_by_run(out) == rows_by_run(one.out)  # bit-identical, row by row
  assert "Results:" in table and "necro_relu" in table
  assert done.strip() == "process 1 of 2: done; its runs are in process 0's results folder."
  assert errors == ""
  assert notices.strip().splitlines() == [
      "checkpoints: none in a job of several processes; a rerun resumes from the programs that"
      " finished."]
  assert not elsewhere.exists()  # process 1 created nothing

  # A rerun after damage on process 0's disk: it retrains that run alone, the others are skipped.
  damaged = _drop_last_history_row(out)
  (status_0, _, notices), (status_1, _, errors) = _job(out, elsewhere)
  assert (status_0, status_1) == (0, 0), (notices, errors)
  assert damaged in notices and "history.csv" in notices
  assert rows_by_run(out) == rows_by_run(one.out)
  with open(out / "grids.csv", newline="") as file:
    programs = list(csv.DictReader(file))
  assert [int(row["runs"]) for row in programs] == [4, 1]
  assert not elsewhere.exists()


@pytest.mark.slow
def test_a_process_that_never_comes_is_named_in_one_line(tmp_path):
  ports = _free_port(), _free_port()
  alone = [_start(0, tmp_path / "zero", ports[0], "--join-timeout", "3"),  # process 1 never comes
           _start(1, tmp_path / "one", ports[1], "--join-timeout", "3")]  # nor does process 0
  (status_0, _, error_0), (status_1, _, error_1) = [_finish(p, STOP_SECONDS) for p in alone]
  assert (status_0, status_1) == (2, 2)
  assert error_0.splitlines() == [
      f"error: process 1 of 2 did not join 127.0.0.1:{ports[0]} within 3 s (--join-timeout);"
      " start every process with the same --coordinator-address and --num-processes."]
  assert error_1.splitlines() == [
      f"error: process 0 did not answer at 127.0.0.1:{ports[1]} within 3 s (--join-timeout);"
      " start it with the same --coordinator-address, on that host."]
  assert not (tmp_path / "zero").exists() and not (tmp_path / "one").exists()


@pytest.mark.slow
def test_a_killed_process_stops_the_others_in_one_line(tmp_path):
  port = _free_port()
  out = tmp_path / "two"
  processes = [_start(0, out, port, steps=100_000), _start(1, tmp_path / "elsewhere", port,
                                                               steps=100_000)]
  deadline = time.monotonic() + JOB_SECONDS
  while not (out / "config.json").exists():  # both have joined: process 0 opened the folder
    assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
    assert time.monotonic() < deadline, "the job never started"
    time.sleep(0.05)
  processes[1].kill()
  status, _, error = _finish(processes[0], STOP_SECONDS)
  processes[1].communicate()
  assert status == 1
  assert error.strip().splitlines()[-1] == (
      "error: process 1 of 2 stopped before it finished (see its own output), so process 0 stops"
      " too; process 0 keeps the finished runs: rerun the same command on every process to"
      " resume.")


def test_the_flags_of_a_job_are_checked_in_one_line():
  for processes, message in [
      (distributed.Processes(num_processes=2), "needs --coordinator-address HOST:PORT"),
      (distributed.Processes("node-01", 2, 0), "must be HOST:PORT"),
      (distributed.Processes("node-01:99999", 2, 0), "must be HOST:PORT"),
      (distributed.Processes("node-01:1234", 2, 2), "--process-id must be 0 .. 1"),
      (distributed.Processes("node-01:1234", 2, 0, join_timeout=0), "--join-timeout"),
  ]:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")) as raised:
      processes.check()
    assert "\n" not in str(raised.value)
  distributed.Processes().check()  # one process: nothing to check
  distributed.Processes("auto").check()  # from the cluster, checked once detected


def test_auto_without_a_cluster_says_so(monkeypatch):
  for variable in ("SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri", "PMIX_RANK", "KUBERNETES_SERVICE_HOST",
                   "TPU_WORKER_HOSTNAMES", "CLOUD_TPU_TASK_ID"):
    monkeypatch.delenv(variable, raising=False)
  with pytest.raises(ValueError, match="found no cluster"):
    distributed.detected(distributed.Processes("auto"))


def test_auto_takes_the_job_from_slurm(monkeypatch):
  for variable, value in {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "node-[07-08]",
                          "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0",
                          "SLURM_STEP_NUM_NODES": "2"}.items():
    monkeypatch.setenv(variable, value)
  found = distributed.detected(distributed.Processes("auto", join_timeout=60))
  host, port = found.coordinator_address.rsplit(":", 1)
  assert (host, found.num_processes, found.process_id, found.local_device_ids) == (
      "node-07", 2, 1, (0,))
  assert 0 < int(port) < 65536 and found.join_timeout == 60
