"""``python -m research``: flags derived from Config, clear errors, the main job."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from research import cli, devices
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # trains with optax

TINY_FLAGS = [
    "--dataset", "xor(num_train=128, num_test=64)", "--width", "8", "--depth", "1",
    "--activations", "relu,necro_relu(negative_slope=[0.05, 0.2])", "--seeds", "2",
    "--steps", "20", "--eval-every", "10", "--batch-size", "16",
]


@pytest.fixture(autouse=True)
def _keep_xla_flags(monkeypatch):
  # cli.main asks for one CPU device per core; keep that out of other tests.
  monkeypatch.setenv("XLA_FLAGS", "")


def test_every_config_field_is_a_flag(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["compare", "--help"])
  assert exit_info.value.code == 0
  help_text = capsys.readouterr().out
  for field in dataclasses.fields(Config):
    assert f"--{field.name.replace('_', '-')}" in help_text, field.name
  assert "comma-separated registry specs" in help_text  # help comes from the comments
  # Where results go and how loudly: the command's arguments, not the config's.
  assert "--out" in help_text and "--quiet" in help_text
  assert {"out", "quiet"}.isdisjoint(field.name for field in dataclasses.fields(Config))


def test_flags_build_the_config(tmp_path, capsys):
  assert cli.main(["compare", *TINY_FLAGS, "--out", str(tmp_path), "--quiet", "--learning-rates", "0.01,0.03"]) == 0
  printed = capsys.readouterr().out
  assert "necro_relu(negative_slope=0.05)" in printed and "vs relu" in printed
  assert (tmp_path / "summary.md").exists() and (tmp_path / "runs.csv").exists()
  rows = (tmp_path / "runs.csv").read_text().splitlines()
  assert len(rows) == 1 + 3 * 2 * 2  # header + (relu + 2 slopes) x 2 rates x 2 seeds


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--optimizer", "adma"], "'sgd'"),  # tyro lists the valid choices
        (["--activations", "necro_rleu"], "Did you mean 'necro_relu'"),
        (["--activations", "relu(slope=1.0)"], "no parameter 'slope'"),
        (["--dataset", "mnist1e"], "Did you mean 'mnist1d'"),
        (["--dataset", "moons(noise='x')"], "noise must be"),
        (["--dataset", "local(path='/no/such/folder')"], "Expected a .npz file"),
        (["--model", "cnn1d", "--dataset", "digits"], "needs 1-D examples"),
        (["--steps", "0"], "steps must be a positive integer"),
    ],
)
def test_bad_flags_fail_before_training_with_valid_choices(flags, message, capsys, tmp_path):
  assert cli.main(["compare", *flags, "--out", str(tmp_path / "never")]) == 2
  captured = capsys.readouterr()
  assert message in captured.err + captured.out
  assert not (tmp_path / "never").exists()  # nothing trained, nothing written


def test_unknown_flag_is_refused(capsys):
  assert cli.main(["compare", "--sedes", "3"]) == 2
  assert "perhaps you meant --seeds INT" in capsys.readouterr().err  # tyro suggests the close flag


def test_python_dash_m_research_runs(tmp_path):
  completed = subprocess.run(
      [sys.executable, "-m", "research", "compare", *TINY_FLAGS, "--out", str(tmp_path), "--quiet"],
      capture_output=True, text=True,
  )
  assert completed.returncode == 0, completed.stderr
  assert "test accuracy" in completed.stdout
  assert str(tmp_path) in completed.stdout


def _status(argv, capsys) -> tuple[int, str]:
  status = cli.main(argv)
  captured = capsys.readouterr()
  return status, captured.err


def test_an_output_folder_under_a_file_is_one_line_before_training(tmp_path, capsys, monkeypatch):
  from research import programs

  monkeypatch.setattr(programs, "train_grids", lambda *a, **k: pytest.fail("trained"))
  (tmp_path / "file").write_text("x")
  status, err = _status(["compare", *TINY_FLAGS, "--out", str(tmp_path / "file" / "out")], capsys)
  assert status == 2
  assert err.startswith("error: cannot use the output folder") and "Not a directory" in err
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unwritable_folder_is_one_line_before_training(tmp_path, capsys, monkeypatch):
  import os

  from research import programs

  monkeypatch.setattr(programs, "train_grids", lambda *a, **k: pytest.fail("trained"))
  def read_only(*args, **kwargs):
    raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))
  monkeypatch.setattr(os, "mkdir", read_only)
  status, err = _status(["compare", *TINY_FLAGS, "--out", str(tmp_path / "ro" / "out")], capsys)
  assert status == 2 and "Permission denied" in err and "Traceback" not in err


def test_a_full_disk_during_training_is_one_line_and_keeps_finished_runs(tmp_path, capsys, monkeypatch):
  from research import results

  real = results.ResultsFolder.add
  calls = []

  def disk_fills_on_second_grid(self, *args, **kwargs):
    calls.append(1)
    if len(calls) > 1:
      raise OSError(28, "No space left on device")
    return real(self, *args, **kwargs)

  monkeypatch.setattr(results.ResultsFolder, "add", disk_fills_on_second_grid)
  # vmap: one program, and one write, per grid (under map both grids are one).
  flags = [*TINY_FLAGS, "--batching", "vmap"]
  status, err = _status(["compare", *flags, "--out", str(tmp_path), "--quiet"], capsys)
  assert status == 1
  assert "No space left on device" in err and "rerun the same command to resume" in err
  assert "Traceback" not in err
  assert len((tmp_path / "runs.csv").read_text().splitlines()) == 1 + 2  # relu's two seeds kept


def test_a_busy_folder_is_refused_naming_the_holder(tmp_path, capsys):
  import os

  from research import results

  with results.ResultsFolder(tmp_path, {"other": 1}):
    status, err = _status(["compare", *TINY_FLAGS, "--out", str(tmp_path)], capsys)
  assert status == 2 and f"pid {os.getpid()}" in err and str(tmp_path) in err


def test_every_cpu_core_is_a_device_that_waits_at_collectives_on_a_busy_machine(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/nowhere")
  devices.use_every_cpu_core()
  flags = os.environ["XLA_FLAGS"].split()
  assert flags[0] == "--xla_dump_to=/nowhere"  # the user's flags are kept
  assert f"--xla_force_host_platform_device_count={devices.cpu_cores()}" in flags
  assert f"--xla_cpu_collective_call_terminate_timeout_seconds={devices.CPU_COLLECTIVE_TIMEOUT_SECONDS}" in flags
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
  devices.use_every_cpu_core()
  assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3"  # the user decides


def test_compilation_cache_off_turns_off_one_set_through_jax_too(monkeypatch, tmp_path):
  import jax

  enabled, folder = jax.config.jax_enable_compilation_cache, jax.config.jax_compilation_cache_dir
  try:
    monkeypatch.setenv("SURROGATE_COMPILATION_CACHE", str(tmp_path))
    devices.use_compilation_cache()
    assert jax.config.jax_compilation_cache_dir == str(tmp_path)
    assert jax.config.jax_enable_compilation_cache
    monkeypatch.setenv("SURROGATE_COMPILATION_CACHE", "off")
    devices.use_compilation_cache()
    assert not jax.config.jax_enable_compilation_cache  # a cold measurement stays cold
  finally:
    jax.config.update("jax_enable_compilation_cache", enabled)
    jax.config.update("jax_compilation_cache_dir", folder)


@pytest.mark.parametrize("argv,message", [
    (["compare", "--seeds", "abc"], "Error parsing --seeds: invalid literal for int() with base 10: 'abc'"
                                    " (--seeds takes INT). See --help."),
    (["compare", "--steps", "1.5"], "(--steps takes INT)"),
    (["compare", "--bogus"], "Unrecognized options: --bogus. See --help."),
    (["dying", "--no-such-flag", "1"], "Unrecognized options: --no-such-flag"),
    (["dying", "--base.seeds", "x"], "(--base.seeds takes INT)"),
    (["compare", "--out"], "Missing value for argument '--out'"),
])
def test_a_flag_that_does_not_parse_is_one_line_naming_it(argv, message, capsys):
  assert cli.main(argv) == 2
  captured = capsys.readouterr()
  assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
  assert message in captured.err and "╭" not in captured.err


def test_help_still_prints_and_exits_0(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["compare", "--help"])
  assert exit_info.value.code == 0 and "--seeds" in capsys.readouterr().out
  assert sys.stderr is sys.__stderr__ or "pytest" in type(sys.stderr).__module__  # restored
