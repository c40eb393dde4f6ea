"""End to end on tiny settings: the grid engine, the results folder, resuming."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import subprocess
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx

import research
from research import experiment, grid, optimizers, programs, results, tables, train
from research.config import OPTIMIZERS, SCHEDULES, Config
from research.data import Dataset, load

# Optax's adam mixes Python floats and int32 step counts, which strict dtype
# promotion refuses; the activations themselves are tested strictly elsewhere.
pytestmark = pytest.mark.standard_promotion

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = Config(
    dataset="moons(num_train=256, num_test=128)",
    width=16,
    depth=2,
    activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])"),
    seeds=2,
    steps=40,
    batch_size=32,
    eval_every=20,
)
EXPECTED_FILES = {
    "config.json", "runs.csv", "history.csv", "layers.csv", "grids.csv", "summary.md",
    "learning_curves.png", "dead_fraction.png", "final_accuracy.png",
}
KEYS = ("run_id", "activation", "name", "grid", "seed", "learning_rate")


class _Rows(NamedTuple):
  """A comparison's tables as row lists, as the folder reads them (missing values None)."""

  out: pathlib.Path
  runs: list
  history: list
  layers: list
  summary: str


def _rows(result) -> _Rows:
  return _Rows(result.out, tables.records(result.runs), tables.records(result.history),
               tables.records(result.layers), result.summary)


def _with(config: Config, **changes) -> Config:
  return Config(**{**config.__dict__, **changes})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("compare")
  return _rows(research.compare(TINY, out=out, quiet=True))


def _header(path: pathlib.Path) -> list[str]:
  return path.read_text().splitlines()[0].split(",")


def test_compare_writes_every_file(tiny_run):
  assert EXPECTED_FILES <= {p.name for p in tiny_run.out.iterdir()}
  assert not [p for p in tiny_run.out.iterdir() if p.name.endswith(".tmp")]
  assert len(tiny_run.runs) == 2 + 4  # relu x 2 seeds, necro x 2 slopes x 2 seeds
  for name in ("runs.csv", "history.csv", "layers.csv"):
    header = _header(tiny_run.out / name)
    # Run keys first (the swept slope among them), metrics after, checksum last.
    assert tuple(header[:6]) == KEYS and header[6] == "negative_slope", name
    assert header[-1] == "checksum"
  assert "step" not in _header(tiny_run.out / "runs.csv")
  assert "train_seconds" not in _header(tiny_run.out / "runs.csv")  # per grid: grids.csv
  necro = [r for r in tiny_run.runs if r["name"] == "necro_relu"]
  assert sorted({r["negative_slope"] for r in necro}) == [0.05, 0.2]
  assert sorted({row["step"] for row in tiny_run.history}) == [0, 20, 40]
  assert len(tiny_run.history) == 6 * 3
  assert len(tiny_run.layers) == 6 * 3 * 3  # runs x evaluations x (2 hidden + output)
  stored = json.loads((tiny_run.out / "config.json").read_text())
  assert stored["steps"] == 40 and stored["activations"] == list(TINY.activations)
  assert "out" not in stored and "quiet" not in stored  # not part of the experiment
  assert "relu" in tiny_run.summary and "necro_relu(negative_slope=0.05)" in tiny_run.summary
  with results.ResultsFolder(tiny_run.out, stored) as folder:
    assert folder.runs() == tiny_run.runs  # what compare returns is what it wrote
    grids = folder.grids()
  # One program for both activations (batching "map" on a CPU): one row.
  assert [(g["grid"], g["runs"]) for g in grids] == [(" + ".join(TINY.activations), 6)]
  assert grids[0]["seconds"] > 0


def test_floats_are_written_as_their_shortest_float32_text(tiny_run):
  text = (tiny_run.out / "runs.csv").read_text()
  with open(tiny_run.out / "runs.csv", newline="") as file:
    rows = list(csv.DictReader(file))
  for row in rows:
    for column in ("test_accuracy", "test_loss", "sparsity"):
      value = row[column]
      assert value == str(np.float32(value)), (column, value)  # "0.602", not "0.60200006"
  assert "0.01," in text  # the learning rate as given


def test_training_learns_and_metrics_are_in_range(tiny_run):
  for row in tiny_run.runs:
    assert row["test_accuracy"] > 0.75, row  # two moons is easy
    for name in ("inactive_fraction", "dead_fraction", "sparsity", "revived_fraction"):
      assert 0.0 <= row[name] <= 1.0
    assert row["diverged"] is False and row["diverged_step"] is None
    assert row["metrics_step"] == 40
  initial = [h for h in tiny_run.history if h["step"] == 0]
  final = [h for h in tiny_run.history if h["step"] == 40]
  assert np.mean([h["train_loss"] for h in final]) < np.mean([h["train_loss"] for h in initial])
  output_layers = [row for row in tiny_run.layers if row["layer"] == 3]
  assert all(row["sparsity"] is None and row["gradient_norm"] > 0 for row in output_layers)


def test_necro_relu_units_are_inactive_but_never_dead(tiny_run):
  for row in tiny_run.layers:
    if row["name"] == "necro_relu" and row["layer"] <= 2:
      assert row["dead_fraction"] == 0.0  # its backward derivative is never 0
    if row["name"] == "relu" and row["layer"] <= 2:
      assert row["dead_fraction"] == row["inactive_fraction"]


def test_same_seed_shares_initialisation_across_activations(tiny_run):
  at_start = {
      (h["activation"], h["seed"]): h["weight_norm"]
      for h in tiny_run.layers if h["step"] == 0 and h["layer"] == 1
  }
  for seed in (0, 1):
    norms = {value for (_, s), value in at_start.items() if s == seed}
    assert len(norms) == 1, at_start


def test_rerun_resumes_and_skips_finished_runs(tiny_run, monkeypatch):
  calls = []
  monkeypatch.setattr(programs, "train_grids", lambda *a, **k: calls.append(a))
  again = _rows(research.compare(TINY, out=tiny_run.out, quiet=True))
  assert calls == []  # nothing left to train
  assert again.runs == tiny_run.runs


def test_a_different_config_is_refused(tiny_run):
  with pytest.raises(ValueError, match=r"steps: 40 != 60"):
    research.compare(_with(TINY, steps=60), out=tiny_run.out)


def test_runs_of_another_config_are_never_adopted(tmp_path):
  # Regression: with config.json deleted, a rerun under another config took
  # the old runs (ids activation|seed|rate) for its own.
  config = _with(TINY, activations=("relu",), seeds=1, steps=20)
  research.compare(config, out=tmp_path, quiet=True)
  (tmp_path / "config.json").unlink()
  with pytest.raises(ValueError, match=r"holds 1 run\(s\) that this configuration does not produce"):
    research.compare(_with(config, steps=30), out=tmp_path, quiet=True)


def test_a_second_writer_is_refused_at_once(tmp_path):
  with results.ResultsFolder(tmp_path, {"steps": 1}):
    with pytest.raises(results.FolderBusy, match=rf"another process \(pid {os.getpid()}\)"):
      research.compare(TINY, out=tmp_path)
  # Once the first writer is done, the folder opens again.
  results.ResultsFolder(tmp_path, {"steps": 1}).close()


def test_interrupted_sweep_keeps_finished_grids_and_resumes(tmp_path, monkeypatch):
  # Batched with vmap, each grid is its own program, written when it finishes.
  config = _with(TINY, batching="vmap")
  real = programs.train_grids
  trained = []

  def fails_on_second_grid(config, dataset, batch, **kwargs):
    if trained:
      raise KeyboardInterrupt("simulated interruption mid-sweep")
    trained.append([r.run_id for _, runs in batch for r in runs])
    return real(config, dataset, batch, **kwargs)

  monkeypatch.setattr(programs, "train_grids", fails_on_second_grid)
  with pytest.raises(KeyboardInterrupt):
    research.compare(config, out=tmp_path, quiet=True)
  stored = json.loads((tmp_path / "config.json").read_text())
  with results.ResultsFolder(tmp_path, stored) as folder:
    finished = folder.finished_run_ids()
  assert finished == set(trained[0])  # the relu grid, intact; the lock released

  resumed_grids = []

  def records(config, dataset, batch, **kwargs):
    resumed_grids.append([r.run_id for _, runs in batch for r in runs])
    return real(config, dataset, batch, **kwargs)

  monkeypatch.setattr(programs, "train_grids", records)
  complete = _rows(research.compare(config, out=tmp_path, quiet=True))
  assert len(resumed_grids) == 1 and not set(resumed_grids[0]) & finished
  assert len(complete.runs) == 6


def test_the_folder_stays_locked_until_the_summary_and_plots_are_written(tmp_path, monkeypatch):
  admitted = []

  def plots_while_locked(folder, *args, **kwargs):
    try:
      results._lock(folder).close()  # another writer trying to get in
      admitted.append(True)
    except results.FolderBusy:
      admitted.append(False)
    assert (folder / "summary.md").is_file()  # written before the plots, under the same lock

  monkeypatch.setattr(research.experiment.plots, "write_plots", plots_while_locked)
  research.compare(_with(TINY, activations=("relu",), steps=10), out=tmp_path, quiet=True)
  assert admitted == [False]
  results._lock(tmp_path).close()  # released afterwards


@pytest.mark.parametrize("damage", ["cut", "missing_field", "edited"])
def test_damaged_history_is_found_dropped_and_retrained(tmp_path, damage, capsys):
  # Regression: a history.csv cut inside a row, a row with a missing field or
  # a hand-edited value was read silently (or crashed later with a traceback).
  config = _with(TINY, activations=("relu",), steps=20)
  first = _rows(research.compare(config, out=tmp_path, quiet=True))
  path = tmp_path / "history.csv"
  lines = path.read_text().splitlines(keepends=True)
  damaged_line = len(lines) if damage == "cut" else 2
  if damage == "cut":  # a full disk cut the last row
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
  elif damage == "missing_field":
    lines[1] = lines[1].replace(",False,", ",", 1)
  else:  # 0.xxx -> 0.999 in one metric
    fields = lines[1].split(",")
    index = _header(path).index("train_loss")
    fields[index] = "0.999"
    lines[1] = ",".join(fields)
  path.write_text("".join(lines))
  stored = json.loads((tmp_path / "config.json").read_text())
  with results.ResultsFolder(tmp_path, stored) as folder:
    (found,) = folder.damage()
    assert (found.file, found.line) == ("history.csv", damaged_line)
    with pytest.raises(ValueError, match=rf"history.csv' is damaged: history.csv line {damaged_line}"):
      folder.history()
  capsys.readouterr()
  again = _rows(research.compare(config, out=tmp_path, quiet=True))
  # Said even with quiet=True, on stderr and in the summary, by file and line.
  told = f"Dropped a damaged row, history.csv line {damaged_line}"
  assert told in capsys.readouterr().err
  assert "repaired by this call: 1 damaged row(s) dropped" in (tmp_path / "summary.md").read_text()
  # The damaged run was dropped and trained again, to the same numbers.
  assert sorted(again.runs, key=str) == sorted(first.runs, key=str)
  assert len(again.history) == len(first.history)
  assert {row["run_id"] for row in again.history} == {row["run_id"] for row in first.runs}


def test_every_optimizer_and_schedule_trains():
  # Regression: warmup_cosine crashed for every optimizer (a traced learning
  # rate reached optax's schedule code). Each pair trains a chunk of steps with
  # the engine's own step, the learning rate traced as in a grid; the slowest
  # part, the evaluation program, is the same for all and compiled once below.
  dataset = load("xor(num_train=64, num_test=32)")
  data = train.device_arrays(dataset)
  chunk = jax.jit(train.train_chunk, static_argnums=(0, 5))
  # Every optimizer with warmup_cosine (the regression), every schedule with sgd.
  pairs = [(optimizer, "warmup_cosine") for optimizer in OPTIMIZERS]
  pairs += [("sgd", schedule) for schedule in SCHEDULES if schedule != "warmup_cosine"]
  for optimizer, schedule in pairs:
    config = _with(TINY, activations=("relu",), optimizer=optimizer, schedule=schedule,
                   learning_rates=(0.01, 0.1), seeds=1, steps=10, width=4, depth=1)
    (this_grid,) = grid.expand(config)
    program = train.Program.of(config, dataset, this_grid)
    losses = []
    for run in this_grid.runs:
      inputs = jax.tree.map(lambda a: a[0], programs.run_inputs([run], this_grid))
      state, loss = chunk(program, data, inputs, train.init_run(program, inputs), 0, 10)
      assert not state.diverged and np.all(np.isfinite(loss)), (optimizer, schedule)
      losses.append(float(loss[-1]))
    assert losses[0] != losses[1], (optimizer, schedule)  # the rate reached the update


def test_warmup_cosine_trains_a_grid_end_to_end(tmp_path):
  config = _with(TINY, activations=("relu", "necro_relu"), optimizer="adamw",
                 schedule="warmup_cosine", learning_rates=(0.01, 0.1), seeds=1, steps=20)
  result = research.compare(config, out=tmp_path, quiet=True)
  assert len(result.runs) == 4 and not result.runs["diverged"].any()


def test_schedules_scale_a_peak_of_one_by_the_learning_rate():
  params = {"w": jnp.zeros(1)}
  for schedule in SCHEDULES:
    config = _with(TINY, optimizer="sgd", schedule=schedule, steps=100)
    tx = optimizers.make_optimizer(config, jnp.asarray(0.5))
    state = tx.init(params)
    for _ in range(50):  # the 50th update uses the schedule at count 49
      updates, state = tx.update({"w": jnp.ones(1)}, state)
    expected = {
        "constant": 0.5,
        "cosine": 0.5 * 0.5 * (1 + np.cos(np.pi * 49 / 100)),
        "warmup_cosine": 0.5 * 0.5 * (1 + np.cos(np.pi * (49 - 5) / (100 - 5))),  # 5 warmup steps
        "multistep": 0.5,  # the first milestone is at step 50
    }
    np.testing.assert_allclose(-updates["w"][0], expected[schedule], rtol=1e-5)


def test_metrics_use_the_whole_training_set():
  # Regression: activation metrics were measured on the first 1000 training
  # examples only. Here the one unit fires on example 1500 alone.
  x = -np.ones((2000, 1), np.float32)
  x[1500] = 1.0
  y = np.zeros(2000, np.int32)
  dataset = Dataset("one_example_fires", x, y, x[:10], y[:10], "classification", 2)
  config = _with(TINY, activations=("relu",), width=1, depth=1, seeds=1)
  (this_grid,) = grid.expand(config)
  program = train.Program.of(config, dataset, this_grid)
  inputs = jax.tree.map(lambda a: a[0], programs.run_inputs(this_grid.runs[:1], this_grid))
  state = train.init_run(program, inputs)
  params = state.params
  params["hidden"][0]["kernel"][...] = jnp.ones((1, 1))
  params["hidden"][0]["bias"][...] = jnp.zeros(1)
  state = state._replace(params=params)
  _, run_values, layers = train.evaluate(program, train.device_arrays(dataset), inputs, state, jnp.asarray(0))
  assert float(run_values["inactive_fraction"]) == 0.0
  assert float(layers["sparsity"][0]) == pytest.approx(1999 / 2000)


def test_a_network_forced_dead_reads_dead_and_identity_reads_alive():
  dataset = load(TINY.dataset)
  dead_config = _with(TINY, activations=("relu",), bias_init=-100.0, steps=20, seeds=1)
  (relu_grid,) = grid.expand(dead_config)
  dead = programs.train_grid(dead_config, dataset, relu_grid)
  assert dead.runs[0]["dead_fraction"] == 1.0 and dead.runs[0]["sparsity"] == 1.0
  first_layer = [row for row in dead.layers if row["layer"] == 1]
  assert all(row["gradient_norm"] == 0.0 for row in first_layer)  # no gradient reaches it

  alive_config = _with(TINY, activations=("identity",), steps=20, seeds=1)
  (identity_grid,) = grid.expand(alive_config)
  alive = programs.train_grid(alive_config, dataset, identity_grid).runs[0]
  assert alive["dead_fraction"] == 0.0 and alive["sparsity"] == 0.0


def test_necro_relu_revives_what_relu_leaves_dead():
  # Biases of -3 kill most units at the start; only NecroReLU's backward
  # reaches them, so only NecroReLU brings some back.
  config = _with(TINY, activations=("relu", "necro_relu"), bias_init=-3.0, seeds=1, steps=200, eval_every=100)
  dataset = load(config.dataset)
  relu_grid, necro_grid = grid.expand(config)
  relu = programs.train_grid(config, dataset, relu_grid)
  necro = programs.train_grid(config, dataset, necro_grid)
  start = [h for h in relu.history if h["step"] == 0][0]["inactive_fraction"]
  assert start > 0.5
  assert relu.runs[0]["revived_fraction"] == 0.0
  assert necro.runs[0]["revived_fraction"] > 0.0
  assert necro.runs[0]["inactive_fraction"] < relu.runs[0]["inactive_fraction"]


def test_a_diverging_run_is_marked_with_its_last_finite_metrics():
  config = _with(TINY, activations=("relu",), optimizer="sgd", learning_rates=(0.05, 1e6),
                 seeds=1, steps=40)
  dataset = load("regression(num_train=256, num_test=128)")
  (this_grid,) = grid.expand(config)
  rows = {row["learning_rate"]: row for row in programs.train_grid(config, dataset, this_grid).runs}
  diverged = rows[1e6]
  assert diverged["diverged"] is True and diverged["diverged_step"] is not None
  assert diverged["metrics_step"] < 40 and np.isfinite(diverged["train_loss"])
  assert rows[0.05]["diverged"] is False and np.isfinite(rows[0.05]["test_loss"])
  assert np.isnan(rows[0.05]["test_accuracy"])  # regression has no accuracy


def _train_in_subprocess(tmp_path: pathlib.Path, devices: int, config: Config, name: str) -> dict:
  """runs.csv, history.csv, layers.csv rows by run_id, trained by the command line."""
  out = tmp_path / name
  flags = [
      "--dataset", config.dataset, "--width", str(config.width), "--depth", str(config.depth),
      "--activations", ",".join(config.activations), "--seeds", str(config.seeds),
      "--steps", str(config.steps), "--eval-every", str(config.eval_every),
      "--batch-size", str(config.batch_size), "--norm", config.norm, "--model", config.model,
  ]
  environment = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
                 "SURROGATE_COMPILATION_CACHE": "off"}
  completed = subprocess.run(
      [sys.executable, "-m", "research", "compare", *flags, "--out", str(out), "--quiet"],
      capture_output=True, text=True, env=environment, cwd=ROOT,
  )
  assert completed.returncode == 0, completed.stderr
  grids = (out / "grids.csv").read_text()
  assert f",{devices},cpu,map," in grids
  tables = {}
  for table in ("runs.csv", "history.csv", "layers.csv"):
    with open(out / table, newline="") as file:
      rows = list(csv.DictReader(file))
    tables[table] = {}
    for row in rows:  # the exact text written: bit for bit
      tables[table].setdefault(row["run_id"], []).append(row)
  return tables


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_results_do_not_depend_on_grid_size_device_count_or_rerun(tmp_path, norm):
  # Regression: with vmap, the same run differed by up to 2.8 accuracy points
  # between 1, 2 and 4 devices or inside a grid of 3 or 5 seeds.
  # Each process trains from scratch (no compilation cache), so the 2- and
  # 4-device runs are also reruns of the 1-device one in another process.
  # With BatchNorm the runs carry their batch statistics too.
  config = _with(TINY, activations=("necro_relu(negative_slope=[0.05, 0.2])",), seeds=3,
                 steps=40, eval_every=20, norm=norm)
  reference = _train_in_subprocess(tmp_path, 1, config, "one_device")
  others = [_train_in_subprocess(tmp_path, 4, _with(config, seeds=5), "four_devices_five_seeds")]
  if norm == "none":  # the stateless model also on 2 devices; BatchNorm's case is the same code
    others.append(_train_in_subprocess(tmp_path, 2, config, "two_devices"))
  for other in others:
    for table, rows in reference.items():
      assert rows.keys() <= other[table].keys()
      for run_id, reference_rows in rows.items():
        assert other[table][run_id] == reference_rows, (table, run_id)


def test_a_surrogate_equal_to_relu_trains_exactly_like_relu(tmp_path):
  # Regression: necro_relu at slope 0 matched relu's rows at 1 seed of 3.
  config = _with(TINY, activations=("relu", "necro_relu(negative_slope=[0.0, 0.1])"), seeds=3)
  result = research.compare(config, out=tmp_path, quiet=True)
  runs = result.runs
  metric_columns = [c for c in runs.columns if c not in (*KEYS, "negative_slope")]
  relu = runs[runs["name"] == "relu"].set_index("seed")[metric_columns]
  zero = runs[runs["negative_slope"] == 0.0].set_index("seed")[metric_columns]
  tenth = runs[runs["negative_slope"] == 0.1].set_index("seed")[metric_columns]
  assert list(relu.index) == list(zero.index) == [0, 1, 2]
  pd.testing.assert_frame_equal(zero, relu)
  assert (tenth["test_loss"] != relu["test_loss"]).any()


def test_checks_before_training_name_the_problem():
  with pytest.raises(ValueError, match="cnn2d does not fit dataset"):
    research.compare(_with(TINY, model="cnn2d"), out="/never/written")


def test_compiled_programs_are_cached_on_what_determines_them():
  # Compiled programs are cached on what determines the computation: another
  # seed count or learning rate reuses them.
  dataset = load(TINY.dataset)
  first, second = (grid.expand(_with(TINY, activations=("relu",), seeds=s, learning_rates=lr))[0]
                   for s, lr in ((1, (0.01,)), (3, (0.1,))))
  program = train.Program.of(TINY, dataset, first)
  assert program == train.Program.of(_with(TINY, seeds=3), dataset, second)
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("runs",))
  assert programs.compile_grid(program, mesh) is programs.compile_grid(program, mesh)
  assert isinstance(nnx.eval_shape(lambda: train.build_model(program, first.activation(), jax.random.key(0))), nnx.Module)


def test_a_study_s_run_columns_are_written_with_each_run_and_kept_on_resume(tmp_path):
  from research import experiment

  config = _with(TINY, activations=("relu",), seeds=2, steps=20)
  part = experiment.Part({"dataset_name": "moons"}, config)

  def solved(row):
    return {"solved": int(row["test_accuracy"] >= 0.5)}

  first = experiment.train_pending(
      experiment.prepare_parts([part], {"study": "t"}, tmp_path), quiet=True, run_columns=solved)
  assert [row["solved"] for row in first.runs] == [int(r["test_accuracy"] >= 0.5) for r in first.runs]
  assert _header(tmp_path / "runs.csv")[:2] == ["run_id", "dataset_name"]
  assert "solved" in _header(tmp_path / "runs.csv")
  again = experiment.train_pending(experiment.prepare_parts([part], {"study": "t"}, tmp_path), quiet=True)
  assert again.runs == first.runs  # read back from the checksummed rows, nothing retrained


def test_grids_trained_as_one_program_give_each_grid_alone_bit_for_bit():
  # A part's grids share one program (a switch over the activations); every
  # row must be what the grid's own program gives: the switch runs only the
  # run's branch under lax.map. Swept, default and static (string)
  # hyperparameters, and a run that diverges, travel through it.
  config = _with(TINY, activations=(
      "relu", "necro_relu(negative_slope=[0.05, 0.2])", "mixed(activations='relu,abs')"),
      learning_rates=(0.01, 30.0), seeds=1, steps=20, eval_every=10, width=8)
  dataset = load(config.dataset)
  grids = grid.expand(config)
  together = programs.train_grids(config, dataset, [(g, g.runs) for g in grids])
  alone = [programs.train_grid(config, dataset, g) for g in grids]
  assert together.runs == [row for result in alone for row in result.runs]
  assert together.history == [row for result in alone for row in result.history]
  assert together.layers == [row for result in alone for row in result.layers]
  assert any(row["diverged"] for row in together.runs)  # the divergence check ran per run
  assert together.timing["grid"] == " + ".join(config.activations)
  assert together.timing["runs"] == sum(len(g.runs) for g in grids)


def test_a_parts_grids_are_one_program_under_map_and_one_each_under_vmap(tmp_path):
  for batching, expected in (("map", [[2, 4]]), ("vmap", [[2], [4]])):
    prepared = experiment.prepare(_with(TINY, batching=batching), tmp_path / batching)
    try:
      batches = experiment.program_batches(prepared)
    finally:
      prepared.folder.close()
    assert [[len(runs) for _, runs in batch] for _, batch in batches] == expected, batching


def test_train_grids_refuses_runs_of_a_grid_it_was_not_given():
  config = _with(TINY, seeds=1)
  relu, necro = grid.expand(config)
  with pytest.raises(ValueError, match=r"are not in the grids"):
    programs.run_inputs(necro.runs, relu)
  with pytest.raises(ValueError, match=r"at least one grid with runs"):
    programs.train_grids(config, load(config.dataset), [(relu, [])])
