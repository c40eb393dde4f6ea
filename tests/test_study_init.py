"""The init study: initialisations x activations x depths, inactive units at init and after training."""

from __future__ import annotations

import csv
import dataclasses
import math

import pandas as pd
import pytest

from research import findings
from research.config import Config
from research.studies import init

pytestmark = pytest.mark.standard_promotion  # trains with optax


def _rows(path):
  with open(path, newline="", encoding="utf-8") as file:
    return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  # Narrow and deep enough that He kernels leave about 10% of the units inactive
  # at init. Seeds cost almost nothing here (compiling does), so 16 of them.
  settings = init.Settings(inits=("he_normal",), bias_inits=(0.1,), depths=(3,), base=Config(
      activations=("relu", "necro_relu"), dataset="xor(num_train=256, num_test=64)", width=4,
      seeds=16, steps=2, eval_every=2))
  return settings, init.STUDY.run(settings, out=tmp_path_factory.mktemp("init"), quiet=True)


def _at_init(outcome, initialisation, name="relu"):
  history = outcome.tables.history
  chosen = history[(history["step"] == 0) & (history["initialisation"] == initialisation) & (history["name"] == name)]
  return dict(zip(chosen["seed"], chosen["inactive_fraction"]))


def test_a_positive_bias_lowers_the_inactive_fraction_at_init_of_a_shallow_relu_net(tiny):
  # Same seed, same He kernels: only the bias differs. Not true seed by seed (the
  # bias also shifts the next layer's inputs, which can switch a unit off), nor at
  # every depth (see the study's summary), but over 16 seeds of this small net.
  _, outcome = tiny
  zero, biased = _at_init(outcome, "he_normal"), _at_init(outcome, "he_normal + bias 0.1")
  assert sorted(zero) == sorted(biased) == list(range(16))
  assert sum(zero.values()) / 16 > 0.05
  assert sum(biased.values()) < 0.8 * sum(zero.values()), (zero, biased)


def test_relu_and_necro_relu_have_the_same_inactive_units_at_step_0(tiny):
  _, outcome = tiny
  for initialisation in ("he_normal", "he_normal + bias 0.1"):
    assert _at_init(outcome, initialisation, "relu") == _at_init(outcome, initialisation, "necro_relu")
  assert init.step_zero_pairs(outcome.tables.history, "relu", "necro_relu") == (32, 32)


def test_the_study_writes_its_files_and_the_summary_answers(tiny):
  settings, outcome = tiny
  for name in ("summary.md", "findings.json", "best.csv", "spread.csv", "init_accuracy.png", "init_inactive.png",
               "runs.csv", "history.csv", "layers.csv", "grids.csv"):
    assert (outcome.out / name).exists(), name
  runs = _rows(outcome.out / "runs.csv")
  assert len(runs) == 2 * 2 * 16  # initialisations x activations x seeds
  assert {r["initialisation"] for r in runs} == {"he_normal", "he_normal + bias 0.1"}
  assert {r["bias_init"] for r in runs} == {"0.0", "0.1"} and {r["depth"] for r in runs} == {"3"}
  best = _rows(outcome.out / "best.csv")
  assert [(r["activation"], r["depth"]) for r in best] == [("relu", "3"), ("necro_relu", "3")]
  assert all(r["best"] in r["tied"] for r in best)
  spread = outcome.findings.data["spread"]
  assert len(spread) == 2 and spread["difference"][0] == 0.0  # relu against itself
  headlines = [answer.render() for answer in outcome.findings.headlines]
  assert headlines[0].startswith("\"The init must match the activation\"")
  assert headlines[1].startswith("Does necro_relu make the init matter less than relu (all inits)?")
  assert init.direction(0.0, 0.0) == "no difference"
  written = findings.from_json((outcome.out / "findings.json").read_text())
  assert [a["text"] for a in written["answers"] if a["headline"]] == headlines
  verdicts = [a["verdict"] for a in written["answers"] if a["headline"]]
  spread_headline = [a for a in written["answers"] if a["headline"]][1]
  assert [e["kind"] for e in spread_headline["estimates"]] == ["points"] and spread_headline["estimates"][0]["n"] == 16
  assert verdicts == ["held" if "match the activation\", between these activations: held" in headlines[0]
                      else "did not hold", "held" if "Smaller at depth" in headlines[1] else "did not hold"]
  assert written["data"] == ["best.csv", "spread.csv"] and written["plots"] == ["init_accuracy.png", "init_inactive.png"]
  text = outcome.summary
  assert text.startswith("# init: ") and text.index("## Answer") < text.index("## Test accuracy")
  assert "\"The init must match the activation\"" in text and "equal in 32 of 32" in text
  assert "Positive bias, relu at depth 3" in text and "machine:" in text
  assert "Does necro_relu make the init matter less than relu (all inits)?" in text
  assert "Diverged runs" in text and "mean): none." in text
  assert "Does a positive bias lower relu's inactive units (paired with zero bias, same kernels)?" in text


def test_the_best_init_and_the_tied_ones():
  runs = pd.DataFrame([{"activation": a, "depth": 2, "initialisation": i, "seed": s, "test_accuracy": acc + 0.01 * s,
                        "diverged": False}
                       for a, order in (("relu", ("he", "small")), ("necro", ("small", "he")))
                       for i, acc in zip(order, (0.6, 0.3)) for s in range(3)])
  best = init.best_inits(runs, ["he", "small"])
  assert best[["activation", "best", "tied"]].values.tolist() == [
      ["relu", "he", ("he",)], ["necro", "small", ("small",)]]
  assert init.common_best(best, 2) == ()  # each activation wants its own init: the claim holds
  assert math.isclose(best["mean"][0], 0.61)
  # A diverged run is left out: relu's "small" then has one seed, too few to tell it from "he".
  runs.loc[(runs["activation"] == "relu") & (runs["initialisation"] == "small") & (runs["seed"] > 0), "diverged"] = True
  assert init.best_inits(runs, ["he", "small"])["tied"][0] == ("he", "small")


def test_the_spread_across_inits_is_compared_seed_by_seed():
  runs = pd.DataFrame([{"activation": a, "depth": 5, "initialisation": i, "seed": s, "test_accuracy": acc,
                        "diverged": False}
                       for a, gap in (("relu", 0.3), ("necro", 0.1)) for s in range(4)
                       for i, acc in (("he", 0.6 + 0.01 * s), ("small", 0.6 - gap))])
  rows = init.spreads(runs, ["he", "small"], "relu")
  necro = rows[rows["activation"] == "necro"].iloc[0]
  assert necro["inits"] == "all inits" and necro["seeds"] == 4 and necro["diverged"] == 0
  assert math.isclose(necro["range_of_means"], 0.1 + 0.015)
  assert necro["difference"] < 0 and init.direction(necro["difference"], necro["difference_half_width"]) == "lower"
  runs["diverged"] = (runs["seed"] == 0) & (runs["initialisation"] == "small")
  accuracy = init.seeds(init.per_seed(runs, "test_accuracy"), 5, "relu", ["he", "small"])
  assert list(init.spread_by_seed(accuracy).index) == [1, 2, 3]  # seed 0 lacks a healthy "small" run
  assert init.spreads(runs, ["he", "small"], "relu")[["seeds", "diverged"]].values.tolist() == [[3, 1], [3, 1]]


def test_step_zero_pairs_match_inits_as_well_as_activations():
  rows = pd.DataFrame([{"name": name, "initialisation": init_name, "depth": 5, "seed": seed, "learning_rate": 0.1,
                        "step": 0, "inactive_fraction": 0.1 * seed + (0.01 if init_name == "rai" else 0.0)}
                       for name in ("relu", "necro_relu") for init_name in ("he_normal", "lecun_normal", "rai")
                       for seed in (0, 1)])
  assert init.step_zero_pairs(rows, "relu", "necro_relu") == (6, 6)
  assert init.step_zero_pairs(rows, "he_normal", "lecun_normal", "initialisation") == (4, 4)
  assert init.step_zero_pairs(rows, "he_normal", "rai", "initialisation") == (0, 4)


def test_he_xavier_and_lecun_leave_the_same_units_inactive_at_init():
  # What the summary's "equal in n of n pairs" rests on: one truncated-normal draw, scaled per
  # layer, and a zero-bias ReLU network is positively homogeneous.
  import jax
  import jax.numpy as jnp
  from flax import nnx

  import activations
  from research import models

  x = jax.random.normal(jax.random.key(1), (256, 40))
  inactive = {}
  for name in init.SCALED_DRAWS:
    model = models.build("mlp", (40,), 10, width=8, depth=6, activation=activations.relu, init=name,
                         rngs=nnx.Rngs(params=jax.random.key(3)))
    inactive[name] = [jnp.all(z <= 0, axis=0).tolist() for z in model.forward(x).preactivations]
  assert inactive["he_normal"] == inactive["xavier_normal"] == inactive["lecun_normal"]
  assert any(any(layer) for layer in inactive["he_normal"])  # some unit is inactive: not a vacuous check


def test_the_parts_are_one_per_depth_and_initialisation():
  settings = init.Settings(inits=("lecun_normal", "rai"), bias_inits=(0.1,), depths=(10, 2))
  found = init.parts(settings)
  assert [(p.keys["depth"], p.keys["initialisation"]) for p in found] == [
      (2, "lecun_normal"), (2, "rai"), (2, "he_normal + bias 0.1"),
      (10, "lecun_normal"), (10, "rai"), (10, "he_normal + bias 0.1")]
  biased = found[2].config
  assert (biased.init, biased.bias_init, biased.depth) == ("he_normal", 0.1, 2)


@pytest.mark.parametrize("changes,message", [
    ({"inits": ("glorot",)}, "inits: 'glorot' is not valid. Choose from: lecun_normal"),
    ({"bias_kernel_init": "rai"}, "'rai' draws its own biases"),
    ({"bias_inits": (0.0,)}, "distinct positive numbers"),
    ({"depths": (2, 2)}, "depths has duplicates"),
    ({"depths": (0,)}, "positive integers"),
    ({"inits": (), "bias_inits": ()}, "both empty"),
])
def test_invalid_settings_name_the_problem(changes, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(")):
    init.validate(dataclasses.replace(init.Settings(), **changes))


