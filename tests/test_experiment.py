"""End to end on tiny settings: the grid engine, the results folder, resuming."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import research
from research import grid, results, train
from research.config import Config
from research.data import load

# Optax's adam mixes Python floats and int32 step counts, which strict dtype
# promotion refuses; the activations themselves are tested strictly elsewhere.
pytestmark = pytest.mark.standard_promotion

TINY = Config(
    dataset="moons(num_train=256, num_test=128)",
    width=16,
    depth=2,
    activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])"),
    seeds=2,
    steps=40,
    batch_size=32,
    eval_every=20,
    probe_size=128,
    quiet=True,
)
EXPECTED_FILES = {
    "config.json", "runs.csv", "history.csv", "summary.md",
    "learning_curves.png", "dead_fraction.png", "final_accuracy.png",
}
METRICS = ("test_accuracy", "test_loss", "train_loss", "dead_fraction", "sparsity", "grad_norm/layer_0")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("compare")
  return research.compare(_with(TINY, out=str(out)))


def _with(config: Config, **changes) -> Config:
  return Config(**{**config.__dict__, **changes})


def test_compare_writes_every_file(tiny_run):
  assert EXPECTED_FILES <= {p.name for p in tiny_run.out.iterdir()}
  assert not [p for p in tiny_run.out.iterdir() if p.name.endswith(".tmp")]
  assert len(tiny_run.runs) == 2 + 4  # relu x 2 seeds, necro x 2 slopes x 2 seeds
  columns = set(tiny_run.runs[0]) | set(tiny_run.runs[-1])
  assert {"activation", "seed", "learning_rate", "test_accuracy", "test_loss",
          "train_loss", "dead_fraction", "sparsity", "negative_slope",
          "dead/layer_0", "dead/layer_1", "grad_norm/output", "diverged"} <= columns
  assert "step" not in columns  # a per-evaluation column belongs to history.csv only
  necro = [r for r in tiny_run.runs if r["name"] == "necro_relu"]
  assert sorted({r["negative_slope"] for r in necro}) == [0.05, 0.2]
  steps = sorted({row["step"] for row in tiny_run.history})
  assert steps == [0, 20, 40]
  assert len(tiny_run.history) == 6 * 3
  stored = json.loads((tiny_run.out / "config.json").read_text())
  assert stored["steps"] == 40 and stored["activations"] == list(TINY.activations)
  assert "relu" in tiny_run.summary and "necro_relu(negative_slope=0.05)" in tiny_run.summary
  # What compare returns is what it wrote.
  assert results.ResultsFolder(tiny_run.out, stored).runs() == tiny_run.runs


def test_training_learns_and_metrics_are_in_range(tiny_run):
  for row in tiny_run.runs:
    assert row["test_accuracy"] > 0.75, row  # two moons is easy
    assert 0.0 <= row["dead_fraction"] <= 1.0 and 0.0 <= row["sparsity"] <= 1.0
    assert row["diverged"] is False and row["diverged_step"] is None
  initial = [h for h in tiny_run.history if h["step"] == 0]
  final = [h for h in tiny_run.history if h["step"] == 40]
  assert np.mean([h["train_loss"] for h in final]) < np.mean([h["train_loss"] for h in initial])


def test_same_seed_shares_initialisation_across_activations(tiny_run):
  at_start = {
      (h["activation"], h["seed"]): h["weight_norm/layer_0"]
      for h in tiny_run.history if h["step"] == 0
  }
  for seed in (0, 1):
    norms = {value for (_, s), value in at_start.items() if s == seed}
    assert len(norms) == 1, at_start


def test_rerun_resumes_and_skips_finished_runs(tiny_run, monkeypatch):
  calls = []
  monkeypatch.setattr(train, "train_grid", lambda *a, **k: calls.append(a) or train.GridResult([], []))
  again = research.compare(_with(TINY, out=str(tiny_run.out)))
  assert calls == []  # nothing left to train
  assert again.runs == tiny_run.runs


def test_a_different_config_is_refused(tiny_run):
  with pytest.raises(ValueError, match=r"steps: 40 != 60"):
    research.compare(_with(TINY, out=str(tiny_run.out), steps=60))


def test_interrupted_sweep_keeps_finished_grids_and_resumes(tmp_path, monkeypatch):
  real = train.train_grid
  trained = []

  def fails_on_second_grid(config, dataset, this_grid, runs, **kwargs):
    if trained:
      raise KeyboardInterrupt("simulated interruption mid-sweep")
    trained.append([r.run_id for r in runs])
    return real(config, dataset, this_grid, runs, **kwargs)

  monkeypatch.setattr(train, "train_grid", fails_on_second_grid)
  config = _with(TINY, out=str(tmp_path))
  with pytest.raises(KeyboardInterrupt):
    research.compare(config)
  stored = json.loads((tmp_path / "config.json").read_text())
  finished = results.ResultsFolder(tmp_path, stored).finished_run_ids()
  assert finished == set(trained[0])  # the relu grid, intact

  resumed_grids = []

  def records(config, dataset, this_grid, runs, **kwargs):
    resumed_grids.append([r.run_id for r in runs])
    return real(config, dataset, this_grid, runs, **kwargs)

  monkeypatch.setattr(train, "train_grid", records)
  complete = research.compare(config)
  assert len(resumed_grids) == 1 and not set(resumed_grids[0]) & finished
  assert len(complete.runs) == 6


def _final(result: train.GridResult) -> dict[str, dict]:
  return {row["run_id"]: row for row in result.runs}


def test_vmapped_grid_matches_training_each_run_alone():
  config = _with(TINY, activations=("necro_relu(negative_slope=[0.05, 0.2])",), learning_rates=(0.01, 0.03))
  dataset = load(config.dataset)
  (this_grid,) = grid.expand(config)
  together = _final(train.train_grid(config, dataset, this_grid))
  for run in this_grid.runs[::3]:
    alone = _final(train.train_grid(config, dataset, this_grid, [run]))[run.run_id]
    for metric in METRICS:
      np.testing.assert_allclose(alone[metric], together[run.run_id][metric], rtol=2e-5, atol=1e-6)


def test_same_config_gives_bit_identical_results():
  config = _with(TINY, activations=("relu",))
  dataset = load(config.dataset)
  (this_grid,) = grid.expand(config)
  first = train.train_grid(config, dataset, this_grid)
  second = train.train_grid(config, dataset, this_grid)
  strip = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]  # noqa: E731
  assert strip(first.runs) == strip(second.runs)
  assert first.history == second.history


def test_a_network_forced_dead_reads_dead_and_identity_reads_alive():
  dataset = load(TINY.dataset)
  dead_config = _with(TINY, activations=("relu",), bias_init=-100.0, steps=20, seeds=1)
  (relu_grid,) = grid.expand(dead_config)
  dead = train.train_grid(dead_config, dataset, relu_grid).runs[0]
  assert dead["dead_fraction"] == 1.0 and dead["sparsity"] == 1.0
  assert dead["grad_norm/layer_0"] == 0.0  # no gradient reaches a dead layer

  alive_config = _with(TINY, activations=("identity",), steps=20, seeds=1)
  (identity_grid,) = grid.expand(alive_config)
  alive = train.train_grid(alive_config, dataset, identity_grid).runs[0]
  assert alive["dead_fraction"] == 0.0 and alive["sparsity"] == 0.0


def test_necro_relu_revives_what_relu_leaves_dead():
  # Biases of -3 kill most units at the start; only NecroReLU's backward
  # reaches them, so only NecroReLU brings some back.
  config = _with(TINY, activations=("relu", "necro_relu"), bias_init=-3.0, seeds=1, steps=200, eval_every=100)
  dataset = load(config.dataset)
  relu_grid, necro_grid = grid.expand(config)
  relu = train.train_grid(config, dataset, relu_grid)
  necro = train.train_grid(config, dataset, necro_grid)
  start = [h for h in relu.history if h["step"] == 0][0]["dead_fraction"]
  assert start > 0.5
  assert relu.runs[0]["revived_fraction"] == 0.0
  assert necro.runs[0]["revived_fraction"] > 0.0
  assert necro.runs[0]["dead_fraction"] < relu.runs[0]["dead_fraction"]


def test_a_diverging_run_is_marked_and_the_others_go_on():
  config = _with(TINY, activations=("relu",), optimizer="sgd", learning_rates=(0.05, 1e6), seeds=1, steps=40)
  dataset = load("regression(num_train=256, num_test=128)")
  (this_grid,) = grid.expand(config)
  rows = {row["learning_rate"]: row for row in train.train_grid(config, dataset, this_grid).runs}
  assert rows[1e6]["diverged"] is True and rows[1e6]["diverged_step"] is not None
  assert rows[0.05]["diverged"] is False and np.isfinite(rows[0.05]["test_loss"])
  assert np.isnan(rows[0.05]["test_accuracy"])  # regression has no accuracy


SHARDED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    from research import grid, train
    from research.config import Config
    from research.data import load
    config = Config(**json.loads(sys.argv[1]))
    (this_grid,) = grid.expand(config)
    result = train.train_grid(config, load(config.dataset), this_grid)
    print(json.dumps({"devices": jax.device_count(), "runs": result.runs}))
    """
)


def test_sharded_grid_matches_one_device():
  # 6 runs over 4 CPU devices: padded to 8, the padding dropped.
  config = _with(TINY, activations=("necro_relu(negative_slope=[0.05, 0.1, 0.2])",))
  fields = {k: list(v) if isinstance(v, tuple) else v for k, v in config.__dict__.items()}
  environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  completed = subprocess.run(
      [sys.executable, "-c", SHARDED_SCRIPT, json.dumps(fields)],
      capture_output=True, text=True, env=environment, check=True,
      cwd=pathlib.Path(__file__).resolve().parents[1],
  )
  sharded = json.loads(completed.stdout.strip().splitlines()[-1])
  assert sharded["devices"] == 4
  (this_grid,) = grid.expand(config)
  single = _final(train.train_grid(config, load(config.dataset), this_grid))
  assert len(sharded["runs"]) == 6
  for row in sharded["runs"]:
    for metric in METRICS:
      np.testing.assert_allclose(row[metric], single[row["run_id"]][metric], rtol=2e-5, atol=1e-6)
