"""The gradient-flow study: first- over last-layer gradient norm vs depth, per activation."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest

from research import findings
from research.config import Config
from research.studies import gradient_flow

pytestmark = pytest.mark.standard_promotion  # trains with optax


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  settings = gradient_flow.Settings(depths=(20,), base=Config(
      activations=("sigmoid", "relu", "necro_relu"), dataset="xor(num_train=256, num_test=64)",
      width=16, seeds=3, steps=2, eval_every=2))
  return settings, gradient_flow.STUDY.run(settings, out=tmp_path_factory.mktemp("flow"), quiet=True)


def _ratios(outcome, name, step=0):
  ratios = outcome.findings.data["ratios"]
  return ratios.loc[(ratios["name"] == name) & (ratios["step"] == step), "log10_ratio"].tolist()


def test_sigmoid_gradients_vanish_by_orders_of_magnitude_in_20_layers_at_init(tiny):
  _, outcome = tiny
  sigmoid, relu = _ratios(outcome, "sigmoid"), _ratios(outcome, "relu")
  assert len(sigmoid) == 3 and all(value < -4 for value in sigmoid), sigmoid  # 10^4 times smaller
  assert all(math.isfinite(value) and value > -2 for value in relu), relu


def test_each_activation_gets_its_usual_initialisation_as_a_part(tiny):
  _, outcome = tiny
  layers = outcome.tables.layers
  inits = set(zip(layers["name"], layers["init"], layers["depth"]))
  assert inits == {("sigmoid", "xavier_normal", 20), ("relu", "he_normal", 20),
                   ("necro_relu", "he_normal", 20)}


def test_the_study_writes_its_files_and_the_summary_answers(tiny):
  _, outcome = tiny
  for name in ("summary.md", "findings.json", "ratios.csv", "gradient_ratio.png", "gradient_profile.png", "layers.csv"):
    assert (outcome.out / name).exists(), name
  with open(outcome.out / "ratios.csv", newline="", encoding="utf-8") as file:
    rows = list(csv.DictReader(file))
  assert {"activation", "depth", "init", "seed", "step", "log10_ratio"} <= set(rows[0])
  assert len(rows) == 3 * 3 * 2  # activations x seeds x evaluations
  assert "log10" in outcome.summary and "machine:" in outcome.summary
  headlines = [answer.render() for answer in outcome.findings.headlines]
  assert len(headlines) == 4 and headlines[0].startswith("sigmoid (xavier_normal)")
  # The surrogate line: a paired difference over the 3 seeds, with its interval.
  surrogate = outcome.findings.headlines[-1].estimates[0]
  assert surrogate.n == 3 and surrogate.has_interval and "minus relu" in headlines[-1]


def test_findings_json_carries_the_headline_answers_with_their_intervals(tiny):
  _, outcome = tiny
  written = findings.from_json((outcome.out / "findings.json").read_text(encoding="utf-8"))
  headlines = [answer for answer in written["answers"] if answer["headline"]]
  assert [answer["topic"] for answer in headlines] == ["Do gradients vanish with depth?"] * 3 + [
      "Does a surrogate backward change it?"]
  assert headlines[0]["text"].startswith("sigmoid (xavier_normal)") and " [" in headlines[0]["text"]
  assert all(estimate["n"] == 3 for answer in headlines for estimate in answer["estimates"])
  assert [table["title"].split(":")[0] for table in written["tables"]][:2] == [
      "At initialisation", "After 2 steps"]
  assert written["data"] == ["ratios.csv"] and "gradient_ratio.png" in written["plots"]


def test_runs_whose_first_layer_gradient_is_zero_are_counted_apart():
  ratios = pd.DataFrame({"activation": "sigmoid", "init": "xavier_normal", "depth": [2, 2, 2, 9],
                         "step": 0, "log10_ratio": [-1.0, -3.0, -math.inf, -math.inf]})
  summary = gradient_flow.ratio_estimates(ratios)
  assert summary["not_finite"].tolist() == [1, 1] and summary["estimate"][0].value == -2.0
  answer = gradient_flow._activation_answer(summary, "sigmoid", "xavier_normal")
  assert answer.render().endswith(
      "depths 2, 9: -2.000 [-14.706, 10.706], below float32 (first-layer gradient exactly 0 in"
      " 1 run(s)).")
  table = gradient_flow._ratio_table(summary, [2, 9], 0)
  assert list(table.columns) == ["activation", "init", "depth 2", "depth 9"]
  assert table["depth 2"][0] == "-2.000 [-14.706, 10.706] (1 not finite)"
  assert table["depth 9"][0] == "- (1 not finite)"


def test_the_ratio_uses_the_last_hidden_layer_not_the_output():
  rows = [{"run_id": "a", "activation": "relu", "name": "relu", "seed": 0, "learning_rate": 0.1,
           "depth": 2, "init": "he_normal", "step": 0, "layer": layer, "gradient_norm": norm}
          for layer, norm in ((1, 1.0), (2, 1000.0), (3, 1e-9))]
  assert gradient_flow.gradient_ratios(pd.DataFrame(rows))["log10_ratio"][0] == -3.0
  rows[0]["gradient_norm"] = 0.0
  assert gradient_flow.gradient_ratios(pd.DataFrame(rows))["log10_ratio"][0] == -math.inf


