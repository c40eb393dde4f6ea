"""Tests of research.summary: intervals, paired tests, divergence, report contents."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from research import findings, summary
from research.statistics import mean_confidence_interval, paired_comparison
from research.summary import summarize

T_975_3 = 3.182446305284263  # Student t quantile 0.975 at 3 degrees of freedom
RELU = [0.60, 0.62, 0.64, 0.66]
# Known paired differences from relu, seed by seed.
DIFFERENCES = {
    "relu": [0.0, 0.0, 0.0, 0.0],
    "leaky_relu(negative_slope=0.01)": [0.01, 0.02, 0.03, -0.01],
    "necro_relu(negative_slope=0.1)": [0.05, 0.04, 0.06, 0.05],
}


def make_runs(learning_rate: float = 0.01, diverged: tuple[tuple[str, int], ...] = (),
              regression: bool = False) -> list[dict]:
  """3 activations x 4 seeds with known final values.

  Accuracy is relu's plus the activation's difference; the losses are 1 minus it
  (test) and half that (train); dead fraction 0.1 x (seed + 1); sparsity 0.5.
  """
  rows = []
  for activation, differences in DIFFERENCES.items():
    name = activation.split("(")[0]
    for seed in range(4):
      accuracy = RELU[seed] + differences[seed]
      is_diverged = (name, seed) in diverged
      row = {
          "run_id": f"{activation}|seed={seed}|learning_rate={learning_rate!r}",
          "activation": activation, "name": name, "grid": activation, "seed": seed,
          "learning_rate": learning_rate,
          **({"negative_slope": 0.1} if name == "necro_relu" else {}),
          "diverged": is_diverged, "diverged_step": 40 if is_diverged else None,
          "test_accuracy": math.nan if regression else accuracy,
          "test_loss": 1.0 - accuracy, "train_accuracy": math.nan if regression else accuracy,
          "train_loss": (1.0 - accuracy) / 2, "dead_fraction": 0.1 * (seed + 1),
          "sparsity": 0.5, "revived_fraction": 0.0, "train_seconds": 1.0,
      }
      if is_diverged:  # what a diverged run's last numbers may look like
        row.update(test_accuracy=0.1, test_loss=math.inf, train_loss=math.nan)
      rows.append(row)
  return rows


def markdown(runs, **options):
  """The comparison's summary.md, through the one renderer."""
  found = summary.comparison_findings(runs, question=options.pop("question", "t"), **options)
  return findings.to_markdown(found, name="compare")


def _t_half_width(values, confidence=0.95):
  values = np.asarray(values, dtype=np.float64)
  quantile = stats.t.ppf((1 + confidence) / 2, len(values) - 1)
  return quantile * values.std(ddof=1) / math.sqrt(len(values))


# --- mean_confidence_interval ------------------------------------------------


def test_interval_is_the_hand_computed_t_interval():
  mean, half_width = mean_confidence_interval([1, 2, 3, 4])
  assert mean == 2.5
  assert half_width == pytest.approx(T_975_3 * 1.2909944487358056 / 2, rel=1e-12)
  low, high = stats.t.interval(0.95, 3, loc=2.5, scale=stats.sem([1, 2, 3, 4]))
  assert (mean - half_width, mean + half_width) == pytest.approx((low, high), rel=1e-12)


def test_interval_confidence_and_small_samples():
  wider = mean_confidence_interval([1, 2, 3, 4], confidence=0.99)[1]
  assert wider == pytest.approx(stats.t.ppf(0.995, 3) * 1.2909944487358056 / 2)
  assert mean_confidence_interval([3.0, 3.0]) == (3.0, 0.0)
  mean, half_width = mean_confidence_interval([0.7])
  assert mean == 0.7 and math.isnan(half_width)
  assert all(math.isnan(value) for value in mean_confidence_interval([]))
  for confidence in (0.0, 1.0, 95):
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
      mean_confidence_interval([1, 2], confidence=confidence)


# --- paired_comparison -------------------------------------------------------


def test_paired_comparison_on_known_differences():
  baseline = dict(enumerate(RELU))
  differences = DIFFERENCES["leaky_relu(negative_slope=0.01)"]
  treatment = {seed: RELU[seed] + differences[seed] for seed in range(4)}
  result = paired_comparison(treatment, baseline)
  assert result.num_pairs == 4 and result.wins == 3
  assert result.mean_difference == pytest.approx(0.0125, abs=1e-12)
  assert result.half_width == pytest.approx(_t_half_width(differences), rel=1e-9)
  expected_p = stats.ttest_rel(list(treatment.values()), RELU).pvalue
  assert result.p_value == pytest.approx(expected_p, rel=1e-12)
  # Lower is better (a loss): the one seed where the treatment is lower wins.
  assert paired_comparison(treatment, baseline, higher_is_better=False).wins == 1


def test_paired_comparison_uses_only_shared_seeds():
  result = paired_comparison({0: 1.0, 1: 2.0, 2: 4.0, 7: 100.0}, {0: 0.0, 1: 1.5, 2: 3.0, 5: 9.0})
  assert result.num_pairs == 3
  assert result.mean_difference == pytest.approx((1.0 + 0.5 + 1.0) / 3)
  assert result.p_value == pytest.approx(stats.ttest_rel([1.0, 2.0, 4.0], [0.0, 1.5, 3.0]).pvalue)


def test_paired_comparison_degenerate_cases_do_not_warn():
  # pyproject turns warnings into errors: these must be quiet.
  single = paired_comparison({0: 1.0}, {0: 0.5})
  assert single.num_pairs == 1 and single.mean_difference == 0.5 and single.wins == 1
  assert math.isnan(single.half_width) and math.isnan(single.p_value)
  identical = paired_comparison({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
  assert identical.mean_difference == 0.0 and identical.wins == 0
  assert math.isnan(identical.p_value)
  none = paired_comparison({0: 1.0}, {1: 1.0})
  assert none.num_pairs == 0 and none.wins == 0 and math.isnan(none.mean_difference)


# --- summarize ---------------------------------------------------------------


def test_summarize_means_intervals_and_comparisons():
  runs = make_runs()
  relu, leaky, necro = summarize(runs)
  assert [s.activation for s in (relu, leaky, necro)] == list(DIFFERENCES)
  assert (relu.name, relu.learning_rate, relu.num_runs, relu.num_diverged) == ("relu", 0.01, 4, 0)
  assert relu.metric == "test_accuracy" and relu.higher_is_better
  mean, half_width = relu.statistics["test_accuracy"]
  assert mean == pytest.approx(0.63) and half_width == pytest.approx(_t_half_width(RELU))
  assert relu.statistics["dead_fraction"][0] == pytest.approx(0.25)
  assert relu.statistics["sparsity"] == (0.5, 0.0)
  assert relu.is_baseline and relu.comparison is None
  assert necro.comparison.num_pairs == 4 and necro.comparison.wins == 4
  assert necro.comparison.mean_difference == pytest.approx(0.05)
  assert necro.comparison.half_width == pytest.approx(
      _t_half_width(DIFFERENCES["necro_relu(negative_slope=0.1)"]))
  necro_accuracy = [RELU[s] + DIFFERENCES["necro_relu(negative_slope=0.1)"][s] for s in range(4)]
  assert necro.comparison.p_value == pytest.approx(stats.ttest_rel(necro_accuracy, RELU).pvalue)
  assert leaky.comparison.wins == 3


def test_equal_nonzero_differences_have_no_p_value():
  # Every seed 0.05 better: zero variance, so no t statistic. scipy's ttest_rel
  # says p = 0 here, which would read as overwhelming evidence from 2 seeds.
  treatment, baseline = {0: 0.65, 1: 0.75}, {0: 0.60, 1: 0.70}
  result = paired_comparison({k: v for k, v in treatment.items()}, baseline)
  assert result.num_pairs == 2 and not result.computable and math.isnan(result.p_value)
  assert result.half_width == pytest.approx(0.0, abs=1e-12)
  runs = [
      {"run_id": f"{name}|{seed}", "activation": name, "seed": seed, "learning_rate": 0.01,
       "diverged": False, "test_accuracy": values[seed]}
      for name, values in (("relu", baseline), ("necro_relu", treatment)) for seed in (0, 1)
  ]
  row = summary.summary_table(runs).splitlines()[-1]
  assert " n/c " in row and "+5.0 pp [+5.0, +5.0]" in row
  assert "`n/c`: not computable" in markdown(runs)


def test_diverged_pairs_are_counted_as_dropped():
  runs = make_runs(diverged=(("necro_relu", 3), ("necro_relu", 2), ("relu", 0)))
  _, leaky, necro = summarize(runs)
  assert necro.comparison.num_pairs == 1 and necro.pairs_dropped == 3
  assert leaky.comparison.num_pairs == 3 and leaky.pairs_dropped == 1
  table = summary.summary_table(runs).splitlines()
  assert table[0].split()[-2:] == ["pairs", "dropped"]
  assert table[-1].split()[-1] == "3"


def test_diverged_runs_are_excluded_from_means_and_pairs():
  runs = make_runs(diverged=(("necro_relu", 3), ("relu", 0)))
  relu, _, necro = summarize(runs)
  assert (necro.num_runs, necro.num_diverged, necro.num_finished) == (4, 1, 3)
  assert necro.diverged_run_ids == ("necro_relu(negative_slope=0.1)|seed=3|learning_rate=0.01",)
  finished = [RELU[s] + DIFFERENCES["necro_relu(negative_slope=0.1)"][s] for s in range(3)]
  assert necro.statistics["test_accuracy"] == pytest.approx(
      (np.mean(finished), _t_half_width(finished)))
  assert math.isfinite(necro.statistics["test_loss"][0])  # the inf is left out
  assert relu.statistics["test_accuracy"][0] == pytest.approx(np.mean(RELU[1:]))
  # Pairs: seeds both finished, so relu's seed 0 and necro's seed 3 drop out.
  assert necro.comparison.num_pairs == 2
  assert necro.comparison.mean_difference == pytest.approx(0.05)


def test_all_diverged_configuration():
  runs = make_runs(diverged=tuple(("leaky_relu", seed) for seed in range(4)))
  _, leaky, _ = summarize(runs)
  assert leaky.num_finished == 0
  assert all(math.isnan(value) for value in leaky.statistics["test_accuracy"])
  assert leaky.comparison.num_pairs == 0
  table = summary.summary_table(runs)
  leaky_line = next(line for line in table.splitlines() if line.startswith("leaky"))
  assert leaky_line.split()[1:4] == ["0.01", "0", "4"]


def test_baseline_missing_at_a_learning_rate():
  runs = make_runs(0.01) + [row for row in make_runs(0.1) if row["name"] != "relu"]
  summaries = summarize(runs)
  assert [(s.activation.split("(")[0], s.learning_rate) for s in summaries] == [
      ("relu", 0.01), ("leaky_relu", 0.01), ("necro_relu", 0.01),
      ("leaky_relu", 0.1), ("necro_relu", 0.1)]
  assert summaries[2].comparison is not None
  assert summaries[3].comparison is None and not summaries[3].is_baseline
  text = markdown(runs)
  row = next(line for line in text.splitlines()
             if line.startswith("| necro_relu(negative_slope=0.1) | 0.1 |"))
  assert row.endswith("| - | - | - | - |")


def test_no_baseline_at_all_is_said():
  runs = [row for row in make_runs() if row["name"] != "relu"]
  assert all(s.comparison is None for s in summarize(runs))
  assert "no run is of the baseline relu" in markdown(runs)


def test_baseline_by_name_or_full_spec():
  runs = make_runs()
  _, leaky, necro = summarize(runs, baseline="leaky_relu(negative_slope=0.01)")
  assert leaky.is_baseline and necro.comparison.num_pairs == 4
  # Two necro_relu slopes at one learning rate: the name alone is ambiguous.
  other_slope = [dict(row, activation="necro_relu(negative_slope=0.3)",
                      run_id=row["run_id"].replace("0.1)", "0.3)"))
                 for row in runs if row["name"] == "necro_relu"]
  with pytest.raises(ValueError, match="matches several configurations"):
    summarize(runs + other_slope, baseline="necro_relu")
  summaries = summarize(runs + other_slope, baseline="necro_relu(negative_slope=0.3)")
  assert summaries[-1].is_baseline and summaries[2].comparison.num_pairs == 4


def test_regression_falls_back_to_test_loss_lower_is_better():
  runs = make_runs(regression=True)
  assert summary.choose_metric(runs) == "test_loss"
  relu, leaky, necro = summarize(runs)
  assert leaky.metric == "test_loss" and not leaky.higher_is_better
  assert leaky.comparison.mean_difference == pytest.approx(-0.0125)
  assert leaky.comparison.wins == 3  # lower loss on 3 of 4 seeds
  assert necro.comparison.wins == 4
  table = summary.summary_table(runs)
  header = table.splitlines()[0].split("  ")
  header = [cell.strip() for cell in header if cell.strip()]
  assert header[4:6] == ["test loss", "train loss"]
  assert "-0.0125 [" in table  # a loss difference, not percentage points
  text = markdown(runs)
  assert "test loss (lower is better)" in text and "test accuracy" not in text


def test_the_findings_hold_the_expected_numbers():
  runs = make_runs(diverged=(("necro_relu", 3),))
  found = summary.comparison_findings(runs, question="My comparison")
  table = found.tables[0].frame.set_index("activation")
  relu = table.loc["relu"]
  assert (relu["n"], relu["diverged"]) == ("4", "0")
  accuracy = relu["test accuracy"]
  assert (accuracy.value, accuracy.n) == (pytest.approx(0.63), 4)
  assert accuracy.high - accuracy.value == pytest.approx(_t_half_width(RELU))
  assert accuracy.text() == f"63.0% [{100 * (0.63 - _t_half_width(RELU)):.1f}, {100 * (0.63 + _t_half_width(RELU)):.1f}]"
  assert relu["dead units"].text().startswith("25.0% [") and relu["sparsity"].text() == "50.0% [50.0, 50.0]"
  necro = table.loc["necro_relu(negative_slope=0.1)"]
  necro_differences = DIFFERENCES["necro_relu(negative_slope=0.1)"][:3]
  necro_p = stats.ttest_rel([RELU[s] + necro_differences[s] for s in range(3)], RELU[:3]).pvalue
  difference = necro["vs relu"]
  assert (necro["n"], necro["diverged"], difference.kind, difference.n) == ("3", "1", "points", 3)
  assert difference.value == pytest.approx(0.05)
  assert difference.high - difference.value == pytest.approx(_t_half_width(necro_differences))
  # 3 pairs compared; relu ran seed 3 too, but necro diverged there: 1 pair dropped.
  assert (necro["p"], necro["wins"], necro["pairs dropped"]) == (f"{necro_p:.3f}", "3/3", "1")
  text = findings.to_markdown(found, name="compare")
  assert text.splitlines()[0] == "# compare: My comparison"
  assert "- 1 of 12 runs diverged; they are left out of every mean and comparison." in text
  assert "| necro_relu(negative_slope=0.1)|seed=3|learning_rate=0.01 | 40 |" in text
  assert "pairs dropped" in text.split("## How to read")[1]
  assert "95% Student t interval" in text and "paired" in text
  assert "No run diverged." in markdown(make_runs())


def _comparison(p_value: float, num_pairs: int = 4):
  return summary.PairedComparison(num_pairs, 0.1, 0.05, p_value, 2)


def test_small_p_values_and_table_separators():
  assert summary._p_value(_comparison(1e-5)) == "<0.001"
  assert summary._p_value(_comparison(0.0123)) == "0.012"
  assert summary._p_value(_comparison(math.nan)) == "n/c"
  assert summary._p_value(_comparison(math.nan, num_pairs=1)) == "-"
  assert summary._estimate("test_loss", 0.0123456, 0.001).text() == "0.0123 [0.0113, 0.0133]"
  assert summary._estimate("test_accuracy", 0.664, 0.012).text() == "66.4% [65.2, 67.6]"
  text = markdown(make_runs())
  table = [line for line in text.split("## Runs")[1].splitlines() if line.startswith("|")]
  assert len({line.count("|") for line in table}) == 1  # every row has every cell
  assert table[1] == "|---|" + "|".join(["---:"] * 12) + "|"


def test_plain_table_is_aligned():
  table = summary.summary_table(make_runs(diverged=(("relu", 1),))).splitlines()
  rule = table[1]
  assert set(rule) == {"-", " "} and len(table) == 2 + 3
  gaps = [i for i in range(len(rule) - 1) if rule[i:i + 2] == "  "]
  for line in table:
    assert all(i >= len(line) or line[i:i + 2] == "  " for i in gaps)
  assert table[2].startswith("relu ") and table[2].split()[1:4] == ["0.01", "3", "1"]
  assert summary.summary_table([]) == "No runs."


def test_bad_rows_are_clear_errors():
  runs = make_runs()
  with pytest.raises(ValueError, match="share activation, learning_rate and seed"):
    summarize(runs + [dict(runs[0], run_id="again")])
  with pytest.raises(ValueError, match="lacks seed"):
    summarize([{key: value for key, value in runs[0].items() if key != "seed"}])


def test_the_answer_says_better_worse_or_no_difference_from_the_paired_interval():
  runs = make_runs()
  worse = [{**row, "activation": "elu", "name": "elu", "run_id": row["run_id"].replace("relu", "elu"),
            "test_accuracy": row["test_accuracy"] - 0.1 - 0.01 * row["seed"]}
           for row in runs if row["activation"] == "relu"]
  text = markdown(runs + worse)
  answer = text.split("## Answer\n\n")[1].split("\n\n")[0].splitlines()
  verdicts = {line.split("`")[1]: line.rsplit(": ", 1)[1] for line in answer}
  assert verdicts == {
      "leaky_relu(negative_slope=0.01)": "no difference detected with 4 paired seeds.",
      "necro_relu(negative_slope=0.1)": "better.",
      "elu": "worse.",
  }
  assert "+5.0 pp [+3.7, +6.3]" in answer[1] and "better at 4 of 4 seeds" in answer[1]
