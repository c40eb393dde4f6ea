"""The sparsity study: exact zeros per layer at init and after training, and their link to accuracy."""

from __future__ import annotations

import csv
import math

import pytest

import activations
from research.config import Config
from research.studies import sparsity

pytestmark = pytest.mark.standard_promotion  # trains with optax


def _rows(path):
  with open(path, newline="", encoding="utf-8") as file:
    return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  settings = sparsity.Settings(models=("mlp",), mlp_width=64, base=Config(
      activations=("relu", "necro_relu", "leaky_relu"), dataset="xor(num_train=256, num_test=64)",
      seeds=2, learning_rates=(0.01, 0.1), steps=4, eval_every=2))
  return settings, sparsity.STUDY.run(settings, out=tmp_path_factory.mktemp("sparsity"), quiet=True)


def _step_zero(outcome, name):
  layers = outcome.tables.layers
  chosen = layers[(layers["step"] == 0) & (layers["name"] == name) & layers["sparsity"].notna()]
  return {(r.seed, r.learning_rate, r.layer): r.sparsity for r in chosen.itertuples()}


def test_relu_is_about_half_zeros_at_a_symmetric_initialisation(tiny):
  _, outcome = tiny
  relu = _step_zero(outcome, "relu")
  assert len(relu) == 2 * 2 * 2  # seeds x rates x hidden layers
  assert all(0.4 <= value <= 0.6 for value in relu.values()), relu


def test_necro_relu_equals_relu_exactly_at_the_same_seed_and_leaky_relu_has_no_zeros(tiny):
  _, outcome = tiny
  assert _step_zero(outcome, "necro_relu") == _step_zero(outcome, "relu")
  assert set(_step_zero(outcome, "leaky_relu").values()) == {0.0}
  assert sparsity.step_zero_pairs(outcome.tables.layers, "relu", "necro_relu") == (8, 8)


def test_the_study_writes_its_files_and_the_summary_answers(tiny):
  settings, outcome = tiny
  for name in ("summary.md", "findings.json", "correlations.csv", "sparsity_layers.png", "sparsity_accuracy.png",
               "runs.csv", "layers.csv", "history.csv"):
    assert (outcome.out / name).exists(), name
  rows = _rows(outcome.out / "correlations.csv")
  assert list(rows[0]) == ["model", "runs", "n", "r", "low", "high", "p"]
  relu_forward = next(r for r in rows if r["runs"] == "ReLU-forward runs")
  assert relu_forward["n"] == str(2 * 2 * 2)  # relu and necro_relu, seeds x rates
  assert "8 of 8" in outcome.summary and "Pearson" in outcome.summary and "machine:" in outcome.summary


def test_the_correlation_has_an_interval_around_r():
  result = sparsity.correlation([0.1, 0.3, 0.2, 0.5, 0.4, 0.6], [0.50, 0.58, 0.52, 0.70, 0.61, 0.72])
  assert result["low"] < result["r"] < result["high"] and result["r"] > 0.9
  constant = sparsity.correlation([0.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])
  assert math.isnan(constant["r"])  # a constant sparsity (LeakyReLU's) has no correlation


def test_only_relu_forward_entries_count_as_relu_forward():
  assert activations.registry.relu_forward("sugar_bsilu") and not activations.registry.relu_forward("softplus")
  assert not activations.registry.relu_forward("heaviside_straight_through")


