"""research.findings: one interval notation, typed answers, one renderer to Markdown and JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from research import findings, tables
from research.findings import Answer, Estimate, Findings, Table
from research.statistics import paired_comparison


@pytest.mark.parametrize("estimate,text", [
    (Estimate(0.664, 0.652, 0.676, "percent"), "66.4% [65.2, 67.6]"),
    (Estimate(0.012, -0.003, 0.027, "points"), "+1.2 pp [-0.3, +2.7]"),
    (Estimate(1.234, 1.222, 1.246), "1.234 [1.222, 1.246]"),
    (Estimate(0.0123456, 0.0113456, 0.0133456), "0.0123 [0.0113, 0.0133]"),
    (Estimate(0.5, kind="percent"), "50.0%"),  # no interval: one run
    (Estimate(math.nan, kind="percent"), "-"),
])
def test_every_interval_is_written_one_way(estimate, text):
  assert estimate.text() == text


def test_a_mean_has_the_student_t_interval_of_its_values():
  values = [0.60, 0.62, 0.64, 0.66]
  estimate = Estimate.of_mean(values, "test_accuracy")
  low, high = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
  assert (estimate.low, estimate.high) == pytest.approx((low, high), rel=1e-12)
  assert (estimate.kind, estimate.n) == ("percent", 4)
  assert Estimate.of_mean([1.0, math.nan, 3.0], "test_loss").n == 2  # NaN left out, a loss is a number
  assert Estimate.of_mean([1.0, 3.0], "test_loss").kind == "number"


def test_a_proportion_has_its_wilson_interval_and_a_difference_is_in_points():
  proportion = Estimate.of_proportion(9, 10)
  assert (round(proportion.low, 3), round(proportion.high, 3), proportion.n) == (0.596, 0.982, 10)
  assert math.isnan(Estimate.of_proportion(0, 0).value)
  difference = Estimate.of_difference(paired_comparison({0: 0.7, 1: 0.8}, {0: 0.6, 1: 0.65}),
                                      "test_accuracy")
  assert difference.kind == "points" and difference.value == pytest.approx(0.125)
  assert difference.excludes_zero is False and Estimate(0.1, 0.05, 0.2).excludes_zero


def test_answers_check_their_placeholders_and_verdicts():
  with pytest.raises(ValueError, match="has 1 places for 0 estimate"):
    Answer("relu reaches {}.")
  with pytest.raises(ValueError, match="verdict must be one of"):
    Answer("it held", verdict="yes")
  answer = Answer("relu {} vs {}", (Estimate(0.5, kind="percent"), Estimate(0.1)), verdict="held")
  assert answer.render() == "relu 50.0% vs 0.100 (held)"


def _findings() -> Findings:
  frame = pd.DataFrame({"activation": ["relu", "necro_relu"], "n": [3, 3],
                        "accuracy": [Estimate(0.9, 0.85, 0.95, "percent"), Estimate(math.nan)]})
  return Findings(
      "Does it work?",
      (Answer("relu: {}.", (Estimate(0.9, 0.85, 0.95, "percent"),), topic="First", headline=True),
       Answer("a detail", topic="First"), Answer("another question", topic="Second")),
      (Table("Accuracy", frame, note="Mean over seeds."),),
      notes=("Accuracy: test accuracy.",), plots=("plot.png",),
      data={"derived": pd.DataFrame({"x": [1]})})


def test_the_markdown_summary_has_every_part_in_order():
  text = findings.to_markdown(_findings(), name="demo", reproduce=["## Reproduce", "", "- here"])
  order = ["# demo: Does it work?", "## Answer", "### First", "- relu: 90.0% [85.0, 95.0].",
           "- a detail", "### Second", "## Accuracy", "Mean over seeds.",
           "| activation | n | accuracy |", "|---|---:|---:|", "| relu | 3 | 90.0% [85.0, 95.0] |",
           "| necro_relu | 3 | - |", "## How to read this", "- Accuracy: test accuracy.",
           "Plots: `plot.png`.", "Data: `derived.csv`.", "## Reproduce"]
  lines = text.splitlines()
  assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)


def test_the_json_holds_the_same_numbers_and_reads_back():
  found = _findings()
  content = findings.from_json(findings.to_json(found, name="demo", record={"runs": 6}))
  assert content["study"] == "demo" and content["context"] == {"runs": 6}
  first, detail, _ = content["answers"]
  assert first["headline"] and not detail["headline"]
  assert first["estimates"] == [{"value": 0.9, "low": 0.85, "high": 0.95, "kind": "percent", "n": 0,
                                 "text": "90.0% [85.0, 95.0]"}]
  rows = content["tables"][0]["rows"]
  assert rows[1][2]["value"] is None and rows[1][2]["text"] == "-"  # NaN is null, valid JSON
  json.loads(findings.to_json(found, name="demo"))  # strict JSON: no NaN anywhere
  with pytest.raises(ValueError, match="lacks question, answers"):
    findings.from_json('{"study": "x"}')


def test_the_first_answer_is_the_headline_when_none_is_marked():
  found = Findings("Q?", (Answer("one"), Answer("two")))
  assert [answer.text for answer in found.headlines] == ["one"]


def test_grouped_estimates_leave_diverged_runs_out_and_count_them():
  rows = pd.DataFrame({"activation": ["relu"] * 3 + ["elu"] * 2, "seed": [0, 1, 2, 0, 1],
                       "test_accuracy": [0.5, 0.6, 0.7, 0.9, 0.1],
                       "diverged": [False, False, False, False, True]})
  table = tables.grouped_estimates(rows, ["activation"], ["test_accuracy"])
  assert list(table["activation"]) == ["relu", "elu"]  # first-appearance order
  assert list(table["n"]) == [3, 1] and list(table["diverged"]) == [0, 1]
  assert table["test accuracy"][0].text() == Estimate.of_mean([0.5, 0.6, 0.7], "test_accuracy").text()
  assert table["test accuracy"][1].text() == "90.0%"
