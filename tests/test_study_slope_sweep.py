"""The slope sweep: necro_relu, leaky_relu (and others) at negative slopes 0..1, against slope 0 = ReLU."""

from __future__ import annotations

import csv
import dataclasses

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import activations
from research import data, devices, grid, programs, train
from research import findings, study
from research.config import Config
from research.studies import slope_sweep

pytestmark = pytest.mark.standard_promotion  # trains with optax

TINY = slope_sweep.Settings(
    datasets=("xor(num_train=256, num_test=64)",), families=("necro_relu", "leaky_relu"),
    slopes=(0.0, 0.1, 1.0), base=Config(learning_rates=(0.01, 0.1), seeds=2, steps=4, eval_every=2, width=8))


def _rows(path):
  with open(path, newline="", encoding="utf-8") as file:
    return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """The study at tiny settings, counting the engine's train_grids calls (one per compiled program)."""
  calls = []
  original = programs.train_grids

  def counting(config, dataset, batch, **kwargs):
    calls.append([(this_grid.spec, len(runs)) for this_grid, runs in batch])
    return original(config, dataset, batch, **kwargs)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(programs, "train_grids", counting)
    outcome = slope_sweep.STUDY.run(TINY, out=tmp_path_factory.mktemp("slope-sweep"), quiet=True)
  return outcome, calls


def test_every_activation_slope_rate_and_seed_is_one_program(tiny):
  outcome, calls = tiny
  runs_per_grid = len(TINY.slopes) * len(TINY.base.learning_rates) * TINY.base.seeds
  assert calls == [[("relu", 4), ("necro_relu(negative_slope=[0.0, 0.1, 1.0])", runs_per_grid),
                    ("leaky_relu(negative_slope=[0.0, 0.1, 1.0])", runs_per_grid)]]
  grids = _rows(outcome.out / "grids.csv")
  assert [(row["grid"], row["runs"]) for row in grids] == [
      (" + ".join(spec for spec, _ in calls[0]), str(4 + 2 * runs_per_grid))]
  assert len(outcome.runs) == 4 + 2 * runs_per_grid
  assert set(outcome.runs["family"]) == {"relu", "necro_relu", "leaky_relu"}


def test_slope_zero_trains_exactly_like_relu_at_the_same_seed(tiny):
  outcome, _ = tiny
  assert slope_sweep.exact_matches(outcome.runs, "necro_relu") == (4, 4)
  assert slope_sweep.exact_matches(outcome.runs, "leaky_relu") == (4, 4)
  history = _rows(outcome.out / "history.csv")
  columns = ("step", "train_loss", "test_loss", "test_accuracy")

  def curve(name):
    return {(r["seed"], r["learning_rate"], *(r[c] for c in columns)) for r in history
            if r["name"] == name and r["negative_slope"] in ("", "0.0")}

  assert curve("necro_relu") == curve("relu") and len(curve("relu")) == 4 * 3  # runs x evaluations
  assert "reproduced relu exactly" in outcome.summary and "in 4 of 4" in outcome.summary


def test_slope_zero_gives_relus_parameters_bit_for_bit(tiny):
  """Through the engine's own compiled programs (cached by the fixture): parameters, not only metrics."""
  config = slope_sweep.parts(TINY)[0].config
  dataset = data.load(config.dataset)
  mesh = devices.runs_mesh()
  arrays = devices.replicate(train.device_arrays(dataset), mesh)

  def trained(this_grid):
    compiled = programs.compile_grid(train.Program.of(config, dataset, this_grid), mesh)
    inputs = programs.sharded_inputs(this_grid.runs, this_grid, mesh)
    state = compiled.init(inputs)
    for step in range(0, config.steps, config.eval_every):
      state, _ = compiled.train_chunk(state, inputs, arrays, jnp.asarray(step), config.eval_every)
    return jax.device_get(state.params)

  relu, necro = grid.expand(config)[:2]
  relu_params, necro_params = trained(relu), trained(necro)
  for index, run in enumerate(necro.runs):
    if dict(run.hyperparameters)["negative_slope"] != 0.0:
      continue
    twin = next(i for i, r in enumerate(relu.runs) if (r.seed, r.learning_rate) == (run.seed, run.learning_rate))
    for ours, theirs in zip(jax.tree.leaves(necro_params), jax.tree.leaves(relu_params)):
      np.testing.assert_array_equal(ours[index], theirs[twin])


def test_the_study_writes_its_files_and_the_summary_answers(tiny):
  outcome, _ = tiny
  for name in ("summary.md", "findings.json", "slope_effects.csv", "best_slopes.csv", "forward_backward.csv",
               slope_sweep.PLOT, "runs.csv", "history.csv", "layers.csv"):
    assert (outcome.out / name).exists(), name
  assert outcome.summary.startswith("# slope-sweep: ") and "\n## Answer\n" in outcome.summary
  data = outcome.findings.data
  assert len(data["slope_effects"]) == 2 * 2 * 2  # families x rates x nonzero slopes
  assert len(data["forward_backward"]) == 2 * 2  # rates x nonzero slopes
  assert set(data["best_slopes"]["family"]) == {"necro_relu", "leaky_relu"}
  for phrase in ("in short", "Diverged runs per cell", "best slope per learning rate", "Forward vs backward", "machine:"):
    assert phrase in outcome.summary, phrase
  headline = outcome.findings.headlines[0].render()
  assert headline.startswith(f"{TINY.datasets[0]} in short: of 8 ")
  written = findings.from_json((outcome.out / "findings.json").read_text())
  assert [a["text"] for a in written["answers"] if a["headline"]] == [headline]
  assert written["data"] == ["slope_effects.csv", "forward_backward.csv", "best_slopes.csv"]


def test_the_derived_tables_agree_with_the_runs(tiny):
  """slope_effects.csv and best_slopes.csv recomputed by hand from runs.csv, one cell each."""
  outcome, _ = tiny
  runs = outcome.runs[(outcome.runs["family"] == "leaky_relu") & (outcome.runs["learning_rate"] == 0.1)]
  assert len(runs) == 3 * 2 and not runs["diverged"].any()  # slopes x seeds
  accuracy = runs.pivot(index="seed", columns="negative_slope", values="test_accuracy")
  effects = pd.read_csv(outcome.out / "slope_effects.csv")
  effect = effects[(effects["family"] == "leaky_relu") & (effects["learning_rate"] == 0.1)
                   & (effects["slope"] == 1.0)].iloc[0]
  assert effect["pairs"] == 2 and effect["difference"] == pytest.approx((accuracy[1.0] - accuracy[0.0]).mean())
  assert effect["low"] < effect["difference"] < effect["high"]
  best = pd.read_csv(outcome.out / "best_slopes.csv", dtype={"tied": str})
  best = best[(best["family"] == "leaky_relu") & (best["learning_rate"] == 0.1)].iloc[0]
  assert best["best"] == accuracy.mean().idxmax() and best["mean"] == pytest.approx(accuracy.mean().max())
  assert f"{best['best']:g}" in best["tied"].split()


def test_a_second_call_resumes_and_trains_nothing(tiny, monkeypatch):
  outcome, _ = tiny
  monkeypatch.setattr(programs, "train_grids", lambda *args, **kwargs: pytest.fail("trained again"))
  again = slope_sweep.STUDY.run(TINY, out=outcome.out, quiet=True)
  pd.testing.assert_frame_equal(again.findings.data["slope_effects"], outcome.findings.data["slope_effects"])


_IDENTITY = activations.get("leaky_relu(negative_slope=1.0)")
_NECRO_AT_ZERO, _RELU = activations.get("necro_relu(negative_slope=0.0)"), activations.get("relu")


@jax.jit
def _values_and_gradients(x):
  """Forward values and gradients of leaky_relu(1), necro_relu(0) and relu: one compiled program."""
  functions = (_IDENTITY, _NECRO_AT_ZERO, _RELU)
  return tuple(f(x) for f in functions), tuple(jax.grad(lambda v, f=f: f(v).sum())(x) for f in functions)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(hnp.arrays(np.float32, 8, elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)))
def test_leaky_relu_at_slope_one_is_the_identity_and_necro_relu_at_zero_is_relu(x):
  (identity, necro, relu), (identity_gradient, necro_gradient, relu_gradient) = map(
      np.asarray, _values_and_gradients(jnp.asarray(x)))
  np.testing.assert_array_equal(identity, x)
  np.testing.assert_array_equal(identity_gradient, np.ones_like(x))
  np.testing.assert_array_equal(necro, relu)
  nonzero = x != 0  # at exactly 0 the sweep's derivative is 1, relu's 0 (so at subnormals, which XLA flushes to 0)
  np.testing.assert_array_equal(necro_gradient[nonzero], relu_gradient[nonzero])


_MIRROR = {"helps": "hurts", "hurts": "helps", "no clear effect": "no clear effect"}


@hypothesis.given(st.integers(0, 3), st.integers(0, 3), st.floats(-1, 1), st.floats(0, 1))
def test_swapping_treatment_and_baseline_mirrors_the_verdict(diverged, baseline_diverged, low, width):
  high = low + width
  assert slope_sweep.verdict(baseline_diverged, diverged, -high, -low) == _MIRROR[
      slope_sweep.verdict(diverged, baseline_diverged, low, high)]


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=6, max_size=6))
def test_the_best_slope_has_the_highest_mean_and_never_diverged(cells):
  slopes = (0.0, 0.1, 1.0)
  runs = pd.DataFrame([{"dataset": "d", "learning_rate": 0.1, "family": "f", "negative_slope": slopes[i // 2],
                        "seed": i % 2, "diverged": diverged, "test_accuracy": accuracy}
                       for i, (accuracy, diverged) in enumerate(cells)])
  (row,) = slope_sweep.best_slopes(runs).to_dict("records")
  stable = {s: list(rows["test_accuracy"]) for s, rows in runs.groupby("negative_slope") if not rows["diverged"].any()}
  if not stable:
    assert pd.isna(row["best"]) and row["tied"] == ()
    return
  assert row["best"] in row["tied"] and set(row["tied"]) <= set(stable)
  assert np.mean(stable[row["best"]]) == max(np.mean(v) for v in stable.values())


@hypothesis.given(st.lists(st.sampled_from([0.0, 0.01, 0.03, 0.1, 0.3, 1.0]), min_size=1, max_size=6, unique=True))
def test_the_swept_spec_keeps_the_other_hyperparameters_and_every_slope(slopes):
  name, values = activations.parse_spec(slope_sweep.swept_spec("windowed_necro_relu(window=3.0)", slopes))
  assert name == "windowed_necro_relu" and values == {"window": 3.0, "negative_slope": slopes}


@pytest.mark.parametrize("changes,message", [
    ({"slopes": (0.1, 0.3)}, "slopes must include 0"),
    ({"slopes": (0.0, 0.1, 0.1)}, "slopes has duplicates"),
    ({"families": ("elu",)}, "'elu' has no negative_slope to sweep"),
    ({"families": ("necro_relu(negative_slope=0.1)",)}, "sets negative_slope"),
    ({"families": ("necro_rleu",)}, "Did you mean 'necro_relu'"),
    ({"families": ("windowed_necro_relu",), "slopes": (0.0, -0.1)}, "must be >= 0, got -0.1"),
    ({"datasets": ()}, "datasets must name one or more"),
    ({"base": Config(learning_rates=(0.0,))}, "learning_rates must be one or more positive"),
])
def test_bad_settings_fail_before_anything_is_trained(changes, message):
  with pytest.raises(ValueError, match=message):
    slope_sweep.parts(dataclasses.replace(TINY, **changes))


def test_the_settings_record_the_study():
  assert study.record(slope_sweep.STUDY, TINY)["study"] == "slope-sweep"
  assert study.record(slope_sweep.STUDY, TINY)["base"]["learning_rates"] == [0.01, 0.1]
  assert [part.keys for part in slope_sweep.parts(TINY)] == [{"dataset": TINY.datasets[0]}]
