"""The gradient-flow study: first- over last-layer gradient norm vs depth, per activation."""

from __future__ import annotations

import csv
import dataclasses
import math

import pandas as pd
import pytest

from research import cli
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
  assert "log10" in outcome.summary and "CPU" in outcome.summary
  headlines = [answer.render() for answer in outcome.findings.headlines]
  assert len(headlines) == 4 and headlines[0].startswith("sigmoid (xavier_normal)")
  # The surrogate line: a paired difference over the 3 seeds, with its interval.
  surrogate = outcome.findings.headlines[-1].estimates[0]
  assert surrogate.n == 3 and surrogate.has_interval and "minus relu" in headlines[-1]


def test_the_ratio_uses_the_last_hidden_layer_not_the_output():
  rows = [{"run_id": "a", "activation": "relu", "name": "relu", "seed": 0, "learning_rate": 0.1,
           "depth": 2, "init": "he_normal", "step": 0, "layer": layer, "gradient_norm": norm}
          for layer, norm in ((1, 1.0), (2, 1000.0), (3, 1e-9))]
  assert gradient_flow.gradient_ratios(pd.DataFrame(rows))["log10_ratio"][0] == -3.0
  rows[0]["gradient_norm"] = 0.0
  assert gradient_flow.gradient_ratios(pd.DataFrame(rows))["log10_ratio"][0] == -math.inf


def test_help_lists_the_flags(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["gradient-flow", "--help"])
  assert exit_info.value.code == 0
  text = capsys.readouterr().out
  for field in dataclasses.fields(gradient_flow.Settings):
    if field.name != "base":
      assert f"--{field.name.replace('_', '-')}" in text, field.name
  assert "--base.activations" in text


@pytest.mark.parametrize("flags,message", [
    (["--initialisation", "glorot"], "Choose from: usual, lecun_normal"),
    (["--depths", "0"], "depths must be"),
    (["--base.activations", "sigmod"], "Did you mean 'sigmoid'"),
    (["--base.init", "rai"], "base.init is set per part by the gradient-flow study"),
])
def test_a_bad_flag_fails_in_one_line_before_anything_runs(flags, message, capsys, tmp_path, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  assert cli.main(["gradient-flow", *flags, "--out", str(tmp_path / "never")]) == 2
  error = capsys.readouterr().err
  assert message in error and error.count("\n") == 1
  assert not (tmp_path / "never").exists()
