"""The xor study: solved counts per activation on xor, moons and spirals, and the mixed combinator."""

from __future__ import annotations

import csv
import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import activations
from activations import functional
from research import findings, grid
from research.config import Config
from research.studies import xor

pytestmark = pytest.mark.standard_promotion  # trains with optax

THRESHOLD = 0.97
TINY = xor.Settings(
    datasets=("xor(num_train=256, num_test=256)",), depths=(1,), thresholds=(THRESHOLD,), widths=(2,),
    ceiling_points=2000, base=Config(activations=("relu", "abs", xor.MIXED_RELU_ABS), seeds=6,
                                     learning_rates=(0.1,), steps=400, batch_size=128, eval_every=200))


def _rows(path):
  with open(path, newline="", encoding="utf-8") as file:
    return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return xor.STUDY.run(TINY, out=tmp_path_factory.mktemp("xor"), quiet=True)


def _solved_by_seed(outcome, name):
  runs = outcome.runs
  return dict(zip(runs.loc[runs["name"] == name, "seed"], runs.loc[runs["name"] == name, "solved"]))


def test_a_width_2_mlp_with_abs_solves_xor_in_more_seeds_than_with_relu(tiny):
  relu, absolute = _solved_by_seed(tiny, "relu"), _solved_by_seed(tiny, "abs")
  assert relu.keys() == absolute.keys() == set(range(TINY.base.seeds))  # the same seeds
  assert sum(absolute.values()) > sum(relu.values())
  assert sum(relu.values()) == 0  # two relu units cannot draw both axes: XOR's boundary
  first_only, second_only, _ = xor.paired(tiny.runs, "abs", "relu")
  assert (first_only, second_only) == (sum(absolute.values()), 0)


def test_the_solved_column_is_the_threshold_rule(tiny):
  rows = _rows(tiny.out / "runs.csv")
  assert len(rows) == 3 * TINY.base.seeds and {row["solved"] for row in rows} == {"0", "1"}
  for row in rows:
    reached = float(row["test_accuracy"]) >= THRESHOLD and row["diverged"] == "False"
    assert row["solved"] == str(int(reached)), row


def test_the_mixed_layer_trains_through_the_engine(tiny):
  mixed = [row for row in tiny.runs.to_dict("records") if row["name"] == "mixed"]
  assert len(mixed) == TINY.base.seeds and {row["activation"] for row in mixed} == {xor.MIXED_RELU_ABS}
  assert all(0.6 < row["test_accuracy"] <= 1 and not row["diverged"] for row in mixed)
  initial = {(int(row["seed"]), row["name"]): row["test_loss"] for row in _rows(tiny.out / "history.csv")
             if row["step"] == "0"}
  final = {row["seed"]: row["test_loss"] for row in mixed}
  assert all(final[seed] < float(initial[(seed, "mixed")]) for seed in final)  # it learned


def test_the_study_writes_its_files_and_the_summary_answers(tiny):
  for name in ("summary.md", "findings.json", "solved.csv", "noise_ceilings.csv", "solved_vs_width.png", "runs.csv", "layers.csv", "history.csv"):
    assert (tiny.out / name).exists(), name
  counts = {row["activation"]: row for row in _rows(tiny.out / "solved.csv")}
  assert int(counts["abs"]["solved"]) == sum(_solved_by_seed(tiny, "abs").values())
  assert counts["relu"]["trials"] == str(TINY.base.seeds)
  assert tiny.summary.startswith("# xor: ") and tiny.summary.split("\n")[2] == "## Answer"
  headlines = [answer.render() for answer in tiny.findings.headlines]
  assert headlines[0].startswith("Claim 6") and headlines[1].startswith("Claim 7")
  assert "Claim 6" in tiny.summary and "Claim 7" in tiny.summary and "Wilson" in tiny.summary
  assert "McNemar" in tiny.summary and "Do failures die?" in tiny.summary and "machine:" in tiny.summary
  assert "Threshold sensitivity" in tiny.summary and f"{TINY.datasets[0]} at 0.95: abs" in tiny.summary
  ceilings = tiny.tables.measured["ceilings"]
  assert list(ceilings["dataset"]) == list(TINY.datasets) and 0.8 < ceilings["ceiling"][0] <= 1
  (counts_table, outcome_table) = (table.frame for table in tiny.findings.tables)
  assert list(counts_table.columns) == ["dataset", "depth", "width", "learning rate", *TINY.base.activations]
  solved = int(counts["abs"]["solved"])  # a cell: solved/trials, then the share with its interval
  share = findings.Estimate.of_proportion(solved, TINY.base.seeds)
  assert counts_table["abs"][0] == f"{solved}/{TINY.base.seeds} {share.text()}"
  assert outcome_table["n"].sum() == 3 * TINY.base.seeds and list(outcome_table.iloc[0][:3]) == [
      TINY.datasets[0], "relu", "failed"]  # by dataset, activation, failed before solved


def test_findings_json_holds_the_headlines_with_their_numbers(tiny):
  content = findings.from_json((tiny.out / "findings.json").read_text(encoding="utf-8"))
  headlines = [answer for answer in content["answers"] if answer["headline"]]
  assert [answer["topic"] for answer in headlines] == [xor.ABS_TOPIC, xor.MIXED_TOPIC]
  abs_share, relu_share = headlines[0]["estimates"]  # one dataset: abs vs relu, solved fractions
  assert abs_share["value"] == sum(_solved_by_seed(tiny, "abs").values()) / TINY.base.seeds
  assert relu_share["value"] == 0 and relu_share["n"] == TINY.base.seeds and relu_share["high"] > 0
  assert abs_share["text"] in headlines[0]["text"] and headlines[1]["verdict"] in ("held", "did not hold", "undecided")
  per_dataset = [a for a in content["answers"] if a["topic"] == xor.ABS_TOPIC and not a["headline"]]
  assert len(per_dataset) == 1 and per_dataset[0]["text"].endswith(
      tuple(f"{verdict}." for verdict in xor._ABS_VERDICT.values()))
  assert content["data"] == ["solved.csv"] and content["plots"] == ["solved_vs_width.png"]


X = jnp.array([[-1.5, -0.5, 0.5, 2.0], [3.0, -2.0, -1.0, 0.0]])


def test_the_mixed_spec_is_functional_mixed_and_the_engine_binds_it():
  expected = jnp.array([[0.0, 0.0, 0.5, 2.0], [3.0, 0.0, 1.0, 0.0]])  # relu | abs
  np.testing.assert_array_equal(functional.mixed(X, ["relu", "abs"]), expected)
  np.testing.assert_array_equal(activations.get(xor.MIXED_RELU_ABS)(X), expected)
  (mixed_grid,) = grid.expand(Config(activations=(xor.MIXED_RELU_ABS,), seeds=1))
  assert mixed_grid.static == (("activations", "relu,abs"),) and mixed_grid.swept == ()
  np.testing.assert_array_equal(mixed_grid.activation()(X), expected)
  np.testing.assert_array_equal(activations.backward_derivative(mixed_grid.activation())(X),
                                [[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, -1.0, 0.0]])
  sized = activations.get("mixed(activations='relu, necro_relu(negative_slope=0.05), abs', group_sizes='1, 2, 1')")
  np.testing.assert_array_equal(sized(X), functional.mixed(X, ["relu", "necro_relu(negative_slope=0.05)", "abs"],
                                                           [1, 2, 1]))


def test_mixed_is_a_combinator_not_a_catalogue_entry():
  assert "mixed" not in activations.names()
  assert activations.registry.kind("mixed") == "combinator"
  assert activations.hyperparameters("mixed") == {"activations": None, "group_sizes": None}
  with pytest.raises(ValueError, match="combinator"):
    activations.unregister("mixed")
  assert "mixed" not in activations.catalogue_markdown()


@pytest.mark.parametrize("spec,message", [
    ("mixed(activations='relu,abz')", "Did you mean 'abs'"),
    ("mixed(activations=3)", "text of comma-separated specs"),
    ("mixed(activations='')", "cannot read ''"),
    ("mixed(activations='relu,abs', group_sizes='1')", "2 activations but 1 group sizes"),
    ("mixed(activations='relu,abs', group_sizes='1, x')", "comma-separated positive integers"),
    ("mixed(activations='relu,abs', group_sizes='1, 0')", "positive integer"),
    ("mixd", "Did you mean 'mixed'"),
])
def test_a_bad_mixed_spec_is_refused_when_named(spec, message):
  with pytest.raises(ValueError, match=message):
    activations.get(spec)


@pytest.mark.parametrize("changes,message", [
    ({"datasets": ("xor", "digits"), "depths": (1, 1), "thresholds": (0.9, 0.9)}, "Choose from: xor, moons, spirals"),
    ({"depths": (1, 1)}, "depths needs one value per dataset"),
    ({"thresholds": (0.97, 0.97, 1.5)}, r"thresholds must be accuracies in \(0, 1\]"),
    ({"widths": (2, 3)}, "does not fit width 3: mixed: 3 features cannot be split equally"),
    ({"widths": (2, 2)}, "widths must be distinct positive integers"),
    ({"ceiling_points": -1}, "ceiling_points must be 0"),
])
def test_invalid_settings_are_named(changes, message):
  with pytest.raises(ValueError, match=message):
    xor.validate(dataclasses.replace(xor.Settings(), **changes))


def test_solved_is_at_or_above_the_threshold_and_never_a_diverged_run():
  assert xor.solved({"test_accuracy": 0.97}, 0.97) == 1
  assert xor.solved({"test_accuracy": 0.9699}, 0.97) == 0
  assert xor.solved({"test_accuracy": 0.99, "diverged": True}, 0.97) == 0
  assert xor.solved({"test_accuracy": None}, 0.97) == 0


def test_mcnemar_counts_discordant_pairs_and_takes_scipy_binomial_p():
  first, second = [1, 1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 0, 0, 0]
  assert xor.mcnemar(first, second) == (4, 1, pytest.approx(stats.binomtest(4, 5).pvalue))
  assert xor.mcnemar([1, 0], [1, 0]) == (0, 0, 1.0)  # no discordant pair: no evidence


def test_solved_rows_count_per_configuration_with_a_wilson_interval():
  runs = pd.DataFrame([{"dataset": "xor", "width": 2, "learning_rate": 0.1, "seed": seed,
                        "activation": "abs", "solved": int(seed < 3)} for seed in range(4)])
  settings = dataclasses.replace(TINY, datasets=("xor",))
  (row,) = xor.solved_rows(runs, settings).to_dict("records")
  assert (row["solved"], row["trials"], row["fraction"]) == (3, 4, 0.75)
  interval = stats.binomtest(3, 4).proportion_ci(0.95, method="wilson")
  assert (row["low"], row["high"]) == pytest.approx((interval.low, interval.high))


def test_within_configurations_compares_failures_and_successes_of_the_same_configuration():
  def run(width, solved, dead):
    return {"dataset": "xor", "width": width, "learning_rate": 0.1, "activation": "relu", "solved": solved,
            "dead_fraction": dead}

  runs = [run(2, 0, 0.5), run(2, 0, 0.5),  # only failures: not compared
          run(4, 0, 0.5), run(4, 1, 0.0), run(8, 0, 0.0), run(8, 1, 0.25), run(16, 0, 0.1), run(16, 1, 0.1)]
  assert xor.within_configurations(pd.DataFrame(runs), "relu") == (1, 1)  # the tie at width 16 counts in neither


def test_the_noise_ceiling_falls_with_the_noise():
  assert xor.noise_ceiling("spirals(noise=0.2)", points=5000) < xor.noise_ceiling("spirals", points=5000) - 0.05
  assert math.isclose(xor.noise_ceiling("xor", points=20_000), 1.0, abs_tol=0.01)


