"""The surrogates study: ReLU-forward surrogate gradients (NecroReLU, SUGAR) vs relu and leaky_relu on CNNs."""

from __future__ import annotations

import csv
import dataclasses
import math

import jax
import numpy as np
import pandas as pd
import pytest
from flax import nnx

import activations
from research import data, models
from research.config import Config
from research.studies import surrogates

pytestmark = pytest.mark.standard_promotion  # trains with optax

SURROGATES = ("sugar_bsilu", "sugar_nelu")  # trained at tiny settings; every default one is checked below


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  settings = surrogates.Settings(datasets=("digits",), cnn2d_width=4, cnn2d_depth=1, base=Config(
      activations=("relu", "leaky_relu(negative_slope=0.01)", *SURROGATES), seeds=2,
      learning_rates=(0.01,), steps=6, eval_every=3))
  return settings, surrogates.STUDY.run(settings, out=tmp_path_factory.mktemp("surrogates"), quiet=True)


def _step_zero(outcome, name):
  history = outcome.tables.history
  rows = history[(history["step"] == 0) & (history["name"] == name)]
  return {(r["seed"], r["learning_rate"]): tuple(r[m] for m in surrogates.STEP_ZERO_METRICS)
          for _, r in rows.iterrows()}


@pytest.mark.parametrize("name", SURROGATES)
def test_a_relu_forward_surrogate_starts_exactly_where_relu_starts(tiny, name):
  _, outcome = tiny
  relu = _step_zero(outcome, "relu")
  assert len(relu) == 2 and _step_zero(outcome, name) == relu
  assert surrogates.step_zero_matches(outcome.tables.history, name) == (2, 2)


@pytest.mark.parametrize("spec", [s for s in surrogates.DEFAULT_ACTIVATIONS
                                  if s != "relu" and activations.registry.relu_forward(activations.parse_spec(s)[0])])
def test_every_default_surrogate_computes_relus_forward_from_relus_initial_weights(spec):
  images = data.load("digits").x_train[:32]

  def forward(activation):
    model = models.build("cnn2d", (8, 8, 1), 10, width=4, depth=2, activation=activation,
                         rngs=nnx.Rngs(3))
    return jax.tree.leaves(model.forward(images))

  for relu_array, surrogate_array in zip(forward(activations.get("relu")), forward(activations.get(spec)),
                                         strict=True):
    np.testing.assert_array_equal(relu_array, surrogate_array)


def test_leaky_relu_starts_elsewhere_it_never_outputs_an_exact_zero(tiny):
  _, outcome = tiny
  assert {values[1] for values in _step_zero(outcome, "leaky_relu").values()} == {0.0}
  assert {values[1] for values in _step_zero(outcome, "relu").values()} != {0.0}


def test_the_study_writes_its_files_and_the_summary_answers(tiny):
  _, outcome = tiny
  for name in ("summary.md", "findings.json", "differences.csv", surrogates.DIFFERENCES_PLOT, "runs.csv", "history.csv"):
    assert (outcome.out / name).exists(), name
  with open(outcome.out / "differences.csv", newline="", encoding="utf-8") as file:
    rows = list(csv.DictReader(file))
  assert len(rows) == 3 + 3  # vs relu: 3 others; vs leaky_relu: 3 others
  assert {r["baseline"] for r in rows} == {"relu", "leaky_relu"} and {r["pairs"] for r in rows} == {"2"}
  text = outcome.summary
  assert text.startswith("# surrogates:") and text.index("## Answer") < text.index("## Final accuracy")
  assert "beat relu:" in text and "beat leaky_relu:" in text and "VGG-16" in text and "CIFAR" in text
  assert "4 of 4" in text  # 2 surrogates x 2 seeds equal to relu at step 0
  assert "Dead units after training" in text and "machine:" in text
  headlines = [answer.render() for answer in outcome.findings.headlines]
  assert headlines[0].startswith("Against relu, over 3") and headlines[1].startswith("Against leaky_relu")
  assert "largest mean SUGAR gain over relu is " in headlines[2] and " pp [" in headlines[2]


def test_paired_differences_subtract_the_baseline_seed_by_seed_and_drop_diverged_runs():
  def row(name, seed, accuracy, diverged=False):
    return {"dataset": "digits", "model": "cnn2d", "learning_rate": 0.01, "seed": seed, "name": name,
            "activation": name, "diverged": diverged, "test_accuracy": accuracy}

  runs = ([row("relu", s, a) for s, a in enumerate([0.900, 0.800, 0.700, 0.600])]
          + [row("sugar_bsilu", s, a) for s, a in enumerate([0.92, 0.83, 0.71, 0.61])]
          + [row("necro_relu", s, a, diverged=s == 3) for s, a in enumerate([0.775, 0.675, 0.575, 0.1])])
  found = {r["activation"]: r for r in surrogates.paired_differences(pd.DataFrame(runs)).to_dict("records")}
  bsilu, necro = found["sugar_bsilu"], found["necro_relu"]
  assert bsilu["pairs"] == 4 and bsilu["difference"] == pytest.approx(0.0175) and bsilu["wins"] == 4
  assert bsilu["low"] > 0 and surrogates.verdict(bsilu) == "beats"
  assert necro["pairs"] == 3 and necro["diverged"] == 1  # the diverged seed 3 is no pair
  assert necro["difference"] == -0.125 and necro["wins"] == 0 and necro["half_width"] == 0
  assert math.isnan(necro["p"]) and surrogates.verdict(necro) == "loses to"  # the same loss at every seed
  assert bsilu["baseline_mean"] == pytest.approx(0.75)
  assert surrogates.paired_differences(pd.DataFrame(runs), baseline="leaky_relu").empty  # no such run


def test_verdicts_follow_the_interval():
  assert surrogates.verdict({"low": -0.03, "high": -0.01}) == "loses to"
  assert surrogates.verdict({"low": -0.01, "high": 0.01}) == "ties with"


def test_each_dataset_gets_the_cnn_that_fits_it():
  found = surrogates.parts(surrogates.Settings())
  assert [(p.keys["dataset"], p.keys["model"], p.config.width) for p in found] == [
      ("digits", "cnn2d", 8), ("mnist5k", "cnn2d", 8), ("mnist1d", "cnn1d", 25)]
  assert all(p.config.activations == surrogates.DEFAULT_ACTIVATIONS for p in found)


@pytest.mark.parametrize("changes,base_changes,message", [
    ({}, {"activations": ("necro_relu",)}, "must include relu"),
    ({}, {"activations": ("relu", "necro_relu", "relu")}, "relu appears 2 times"),
    ({"datasets": ("digits", "digits")}, {}, "distinct datasets"),
    ({}, {"seeds": 1}, "seeds must be 2 or more"),
])
def test_invalid_settings_are_refused(changes, base_changes, message):
  default = surrogates.Settings()
  with pytest.raises(ValueError, match=message):
    surrogates.validate(dataclasses.replace(
        default, base=dataclasses.replace(default.base, **base_changes), **changes))


