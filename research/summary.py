"""The summary report of a comparison: tables rendered from the statistics.

A *configuration* is an activation (its canonical spec, so each swept
hyperparameter value is its own configuration) at one learning rate. Over the
runs of a configuration (one per seed), :func:`summarize` reports the mean of
each final metric with a 95% Student t interval (:mod:`research.statistics`),
and compares the main metric with the baseline activation at the same learning
rate, paired by seed.

Diverged runs are never averaged in (one NaN would hide the configuration, and
a diverged run's last numbers mean nothing); they are counted per
configuration, and the pairs they drop from a comparison are counted beside it,
so a configuration cannot look good by losing its failures.

The main metric is test accuracy (higher is better) when any run has one, and
test loss (lower is better) otherwise, as for regression tasks. How each
metric is labelled and whether it is a percentage comes from
:data:`research.metrics.METRICS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from research import findings, metrics
from research.statistics import (
    CONFIDENCE,
    PairedComparison,
    mean_confidence_interval,
    paired_comparison,
)

# The final metrics summarised per configuration, in the order of the tables.
SUMMARY_COLUMNS = (
    "test_accuracy", "test_loss", "train_loss", "inactive_fraction", "dead_fraction", "sparsity"
)


class ConfigurationSummary(NamedTuple):
  """What :func:`summarize` reports for one (activation, learning rate).

  Attributes:
    activation: the canonical activation spec, e.g. ``"necro_relu(negative_slope=0.1)"``.
    name: its registry name, e.g. ``"necro_relu"``.
    learning_rate: the learning rate.
    num_runs: runs of this configuration, diverged ones included.
    num_diverged: runs that diverged.
    diverged_run_ids: their ``run_id``, in input order.
    metric: the main metric, e.g. ``"test_accuracy"``.
    higher_is_better: whether a larger ``metric`` is better.
    statistics: ``(mean, half_width)`` over the non-diverged runs for each
      column of :data:`SUMMARY_COLUMNS` and ``metric``; ``(nan, nan)`` if none.
    is_baseline: this is the baseline configuration at its learning rate.
    comparison: the paired comparison of ``metric`` with the baseline at this
      learning rate; ``None`` for the baseline itself and where no baseline run
      has this learning rate.
    pairs_dropped: seeds that both configurations ran but that the comparison
      leaves out because either run diverged.
  """

  activation: str
  name: str
  learning_rate: float
  num_runs: int
  num_diverged: int
  diverged_run_ids: tuple[str, ...]
  metric: str
  higher_is_better: bool
  statistics: Mapping[str, tuple[float, float]]
  is_baseline: bool
  comparison: PairedComparison | None
  pairs_dropped: int = 0

  @property
  def num_finished(self) -> int:
    """Runs that did not diverge: the ones averaged."""
    return self.num_runs - self.num_diverged


def higher_is_better(metric: str) -> bool:
  """Whether a larger value of ``metric`` is better, from its description.

  Examples:
    >>> higher_is_better("test_accuracy"), higher_is_better("test_loss")
    (True, False)
  """
  described = metrics.describe(metric).higher_is_better
  return not metric.endswith(("loss", "error")) if described is None else described


def choose_metric(runs: Sequence[Mapping[str, Any]]) -> str:
  """``"test_accuracy"`` if any run has a finite one, else ``"test_loss"``.

  Regression runs report a NaN accuracy, so their main metric is the test loss.

  Examples:
    >>> choose_metric([{"test_accuracy": 0.9, "test_loss": 0.3}])
    'test_accuracy'
    >>> choose_metric([{"test_accuracy": float("nan"), "test_loss": 0.3}])
    'test_loss'
  """
  for row in runs:
    value = row.get("test_accuracy")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
      return "test_accuracy"
  return "test_loss"


def summarize(
    runs: Sequence[Mapping[str, Any]],
    *,
    metric: str | None = None,
    baseline: str = "relu",
) -> list[ConfigurationSummary]:
  """Per configuration: counts, means with 95% intervals, and the paired comparison.

  Args:
    runs: rows of ``runs.csv`` (see :mod:`research.results`); each needs
      ``activation``, ``learning_rate`` and ``seed``, and uses ``run_id``,
      ``name``, ``diverged`` and the metric columns.
    metric: the main metric; ``None`` picks one with :func:`choose_metric`.
    baseline: the configuration compared against at each learning rate: a
      registry name (the runs whose ``name`` is it) or a full activation spec.

  Returns:
    One :class:`ConfigurationSummary` per (activation, learning rate), in the
    order configurations first appear in ``runs``.

  Raises:
    ValueError: a row lacks a needed key; two runs share activation, learning
      rate and seed; or ``baseline`` matches several configurations at one
      learning rate (then pass one full spec).

  Examples:
    >>> runs = [
    ...     {"run_id": f"{activation}|{seed}", "activation": activation, "seed": seed,
    ...      "learning_rate": 0.01, "diverged": False, "test_accuracy": accuracy}
    ...     for activation, accuracies in (("relu", [0.60, 0.62, 0.64]),
    ...                                    ("necro_relu", [0.63, 0.64, 0.68]))
    ...     for seed, accuracy in enumerate(accuracies)]
    >>> relu, necro = summarize(runs)
    >>> relu.is_baseline, relu.statistics["test_accuracy"][0]
    (True, 0.62)
    >>> comparison = necro.comparison
    >>> comparison.num_pairs, round(comparison.mean_difference, 3), comparison.wins
    (3, 0.03, 3)
  """
  metric = choose_metric(runs) if metric is None else metric
  groups = _configurations(runs)
  baselines = _baseline_configurations(groups, baseline)
  return [_configuration_summary(key, rows, groups, baselines.get(key[1]), metric)
          for key, rows in groups.items()]


def _configuration_summary(
    key: tuple[str, float],
    rows: Sequence[Mapping[str, Any]],
    groups: Mapping[tuple[str, float], Sequence[Mapping[str, Any]]],
    baseline_key: tuple[str, float] | None,
    metric: str,
) -> ConfigurationSummary:
  """One configuration's statistics, and its paired comparison with the baseline's runs."""
  higher = higher_is_better(metric)
  columns = SUMMARY_COLUMNS + ((metric,) if metric not in SUMMARY_COLUMNS else ())
  finished = [row for row in rows if not row.get("diverged")]
  diverged = tuple(_label(row) for row in rows if row.get("diverged"))
  statistics = {
      column: mean_confidence_interval([row[column] for row in finished if row.get(column) is not None])
      for column in columns
  }
  is_baseline = baseline_key == key
  comparison, dropped = None, 0
  if baseline_key is not None and not is_baseline:
    baseline_rows = groups[baseline_key]
    comparison = paired_comparison(
        _by_seed(finished, metric),
        _by_seed([r for r in baseline_rows if not r.get("diverged")], metric),
        higher_is_better=higher,
    )
    both = {row["seed"] for row in rows} & {row["seed"] for row in baseline_rows}
    dropped = len(both) - comparison.num_pairs
  return ConfigurationSummary(
      activation=key[0], name=_name(rows[0]), learning_rate=key[1], num_runs=len(rows),
      num_diverged=len(diverged), diverged_run_ids=diverged, metric=metric,
      higher_is_better=higher, statistics=statistics, is_baseline=is_baseline,
      comparison=comparison, pairs_dropped=dropped,
  )


def comparison_findings(
    runs: Sequence[Mapping[str, Any]],
    *,
    question: str,
    metric: str | None = None,
    baseline: str = "relu",
) -> findings.Findings:
  """A comparison's findings: the paired answers, the main table, the diverged runs.

  Rendered by :func:`research.findings.to_markdown` into ``summary.md`` and
  :func:`research.findings.to_json` into ``findings.json``.

  Examples:
    >>> runs = [
    ...     {"run_id": f"{activation}|seed={seed}", "activation": activation,
    ...      "seed": seed, "learning_rate": 0.01, "diverged": activation == "elu",
    ...      "test_accuracy": accuracy, "test_loss": 1.0}
    ...     for activation, accuracies in (("relu", [0.60, 0.62]), ("necro_relu", [0.66, 0.70]),
    ...                                    ("elu", [0.1, 0.1]))
    ...     for seed, accuracy in enumerate(accuracies)]
    >>> found = comparison_findings(runs, question="which is better?")
    >>> print(found.answers[0].render())
    `necro_relu` vs `relu` at learning rate 0.01: +7.0 pp [-5.7, +19.7] in test accuracy (p = 0.090; better at 2 of 2 seeds): no difference detected with 2 paired seeds.
    >>> found.tables[0].frame.iloc[0, 4].text()
    '61.0% [48.3, 73.7]'
  """
  summaries = summarize(runs, metric=metric, baseline=baseline)
  answers = _answers(summaries, baseline)
  diverged = [row for row in runs if row.get("diverged")]
  answers.append(findings.Answer(
      f"{len(diverged)} of {len(runs)} runs diverged; they are left out of every mean and"
      " comparison." if diverged else "No run diverged.", topic="Diverged runs"))
  tables = []
  if summaries:
    header, cells = _table(summaries, baseline)
    tables.append(findings.Table("Runs", pd.DataFrame(cells, columns=header)))
  if diverged:
    tables.append(findings.Table("Diverged runs", pd.DataFrame(
        [{"run": _label(row), "at step": row.get("diverged_step"),
          "last finite metrics at step": row.get("metrics_step")} for row in diverged])))
  return findings.Findings(
      question=question, answers=tuple(answers), tables=tuple(tables),
      notes=(_description(runs, summaries, baseline), *_reading_notes(summaries, baseline)))


def summary_table(
    runs: Sequence[Mapping[str, Any]],
    *,
    metric: str | None = None,
    baseline: str = "relu",
) -> str:
  """The main table of :func:`comparison_findings` as aligned plain text, for the terminal.

  Examples:
    >>> runs = [
    ...     {"run_id": f"{activation}|seed={seed}", "activation": activation,
    ...      "seed": seed, "learning_rate": 0.01, "diverged": False,
    ...      "test_accuracy": accuracy, "test_loss": 1.0 - accuracy}
    ...     for activation, accuracies in (("relu", [0.60, 0.62]),
    ...                                    ("necro_relu", [0.66, 0.70]))
    ...     for seed, accuracy in enumerate(accuracies)]
    >>> print(summary_table(runs))
    activation  learning rate  n  diverged       test accuracy  ...                vs relu      p  wins  pairs dropped
    ----------  -------------  -  --------  ------------------  ...  ---------------------  -----  ----  -------------
    relu                 0.01  2         0  61.0% [48.3, 73.7]  ...               baseline
    necro_relu           0.01  2         0  68.0% [42.6, 93.4]  ...  +7.0 pp [-5.7, +19.7]  0.090   2/2              0
  """
  summaries = summarize(runs, metric=metric, baseline=baseline)
  if not summaries:
    return "No runs."
  header, cells = _table(summaries, baseline)
  return plain_table(pd.DataFrame(cells, columns=header))


def plain_table(frame: pd.DataFrame) -> str:
  """A findings table as aligned plain text: the first column left, the others right-aligned."""
  header = [str(column) for column in frame.columns]
  cells = [[findings.cell_text(cell) if cell != "" else "" for cell in row]
           for row in frame.itertuples(index=False)]
  widths = [max(len(row[i]) for row in (header, *cells)) for i in range(len(header))]
  rule = ["-" * width for width in widths]
  lines = []
  for row in (header, rule, *cells):
    # The first column is text: left-aligned; numbers right-aligned, to compare digits.
    padded = [cell.ljust(width) if i == 0 else cell.rjust(width)
              for i, (cell, width) in enumerate(zip(row, widths))]
    lines.append("  ".join(padded).rstrip())
  return "\n".join(lines)


def _name(row: Mapping[str, Any]) -> str:
  """The registry name: the ``name`` column, else the spec up to its ``(``."""
  return row.get("name") or str(row["activation"]).split("(")[0].strip()


def _label(row: Mapping[str, Any]) -> str:
  return row.get("run_id") or (
      f"{row['activation']}|seed={row['seed']}|learning_rate={row['learning_rate']!r}"
  )


def _configurations(
    runs: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, float], list[Mapping[str, Any]]]:
  """Runs grouped by (activation, learning rate), in first-appearance order."""
  groups: dict[tuple[str, float], list[Mapping[str, Any]]] = {}
  seen: dict[tuple[str, float, Any], Mapping[str, Any]] = {}
  for row in runs:
    missing = [key for key in ("activation", "learning_rate", "seed") if row.get(key) is None]
    if missing:
      raise ValueError(
          f"Every run needs activation, learning_rate and seed; {_describe(row)} lacks"
          f" {', '.join(missing)}."
      )
    key = (str(row["activation"]), float(row["learning_rate"]))
    other = seen.setdefault((*key, row["seed"]), row)
    if other is not row:
      raise ValueError(
          f"Runs {_label(other)!r} and {_label(row)!r} share activation, learning_rate"
          " and seed; a configuration is (activation, learning_rate) with one run"
          " per seed."
      )
    groups.setdefault(key, []).append(row)
  return groups


def _describe(row: Mapping[str, Any]) -> str:
  return repr(row["run_id"]) if row.get("run_id") else f"the row {dict(row)!r}"


def _baseline_configurations(
    groups: Mapping[tuple[str, float], Any], baseline: str
) -> dict[float, tuple[str, float]]:
  """The baseline configuration at each learning rate that has one."""
  by_spec = any(activation == baseline for activation, _ in groups)
  found: dict[float, tuple[str, float]] = {}
  for key, rows in groups.items():
    activation, learning_rate = key
    if (activation == baseline) if by_spec else (_name(rows[0]) == baseline):
      if learning_rate in found:
        raise ValueError(
            f"baseline={baseline!r} matches several configurations at learning rate"
            f" {learning_rate!r}: {found[learning_rate][0]!r} and {activation!r}."
            " Pass one full activation spec as the baseline."
        )
      found[learning_rate] = key
  return found


def _by_seed(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[Any, float]:
  return {row["seed"]: row[metric] for row in rows if row.get(metric) is not None}


def _label_of(column: str) -> str:
  return metrics.describe(column).label


def _estimate(column: str, mean: float, half_width: float, n: int = 0) -> findings.Estimate:
  """A configuration's mean and t half width as an estimate (a percentage for a fraction)."""
  kind = "percent" if metrics.describe(column).percent else "number"
  return findings.Estimate(mean, mean - half_width, mean + half_width, kind, n)


def _verdict(item: ConfigurationSummary) -> str:
  """``better``, ``worse`` or ``no difference detected`` from the paired interval."""
  comparison = item.comparison
  low = comparison.mean_difference - comparison.half_width
  high = comparison.mean_difference + comparison.half_width
  better = high < 0 if not item.higher_is_better else low > 0
  worse = low > 0 if not item.higher_is_better else high < 0
  return ("better" if better else "worse" if worse
          else f"no difference detected with {comparison.num_pairs} paired seeds")


def _answers(summaries: Sequence[ConfigurationSummary], baseline: str) -> list[findings.Answer]:
  """One answer per configuration compared with the baseline: better, worse, or no difference."""
  answers = []
  for item in summaries:
    comparison = item.comparison
    if comparison is None or comparison.num_pairs == 0 or math.isnan(comparison.mean_difference):
      continue
    dropped = f"; {item.pairs_dropped} pair(s) dropped by divergence" if item.pairs_dropped else ""
    answers.append(findings.Answer(
        f"`{item.activation}` vs `{baseline}` at learning rate {item.learning_rate:g}: {{}} in"
        f" {_label_of(item.metric)} (p = {_p_value(comparison)}; better at {comparison.wins} of"
        f" {comparison.num_pairs} seeds{dropped}): {_verdict(item)}.",
        (findings.Estimate.of_difference(comparison, item.metric),), headline=True))
  return answers


def _p_value(comparison: PairedComparison) -> str:
  """The p value; ``n/c`` (not computable) when the differences do not vary."""
  if not comparison.computable:
    return "n/c" if comparison.num_pairs >= 2 else "-"
  p_value = comparison.p_value
  return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _comparison_cells(summary: ConfigurationSummary) -> list[Any]:
  comparison = summary.comparison
  if summary.is_baseline:
    return ["baseline", "", "", ""]
  if comparison is None:
    return ["-", "-", "-", "-"]
  if comparison.num_pairs == 0:
    return ["-", "-", "-", str(summary.pairs_dropped)]
  return [findings.Estimate.of_difference(comparison, summary.metric), _p_value(comparison),
          f"{comparison.wins}/{comparison.num_pairs}", str(summary.pairs_dropped)]


def _table(
    summaries: Sequence[ConfigurationSummary], baseline: str
) -> tuple[list[str], list[list[Any]]]:
  """The header and the cells (text or estimates) of the main table."""
  metric = summaries[0].metric
  second = "train_loss" if metric == "test_loss" else "test_loss"
  shown = [metric, second, "inactive_fraction", "dead_fraction", "sparsity"]
  header = ["activation", "learning rate", "n", "diverged",
            *(_label_of(column) for column in shown), f"vs {baseline}", "p", "wins",
            "pairs dropped"]
  cells = []
  for summary in summaries:
    row = [summary.activation, f"{summary.learning_rate:g}", str(summary.num_finished),
           str(summary.num_diverged)]
    row += [_estimate(column, *summary.statistics[column], summary.num_finished)
            for column in shown]
    cells.append(row + _comparison_cells(summary))
  return header, cells


def _description(
    runs: Sequence[Mapping[str, Any]],
    summaries: Sequence[ConfigurationSummary],
    baseline: str,
) -> str:
  if not summaries:
    return "No finished runs yet."
  metric = summaries[0].metric
  learning_rates = sorted({summary.learning_rate for summary in summaries})
  activations = list(dict.fromkeys(summary.activation for summary in summaries))
  seeds = sorted({summary.num_runs for summary in summaries})
  per_configuration = (
      f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1
      else f"{seeds[0]} to {seeds[-1]} seeds"
  )
  diverged = sum(summary.num_diverged for summary in summaries)
  direction = "higher" if summaries[0].higher_is_better else "lower"
  text = (
      f"{len(runs)} runs: {len(activations)} activation"
      f"{'s' if len(activations) != 1 else ''} x {len(learning_rates)} learning"
      f" rate{'s' if len(learning_rates) != 1 else ''}"
      f" ({', '.join(f'{rate:g}' for rate in learning_rates)}), {per_configuration}"
      f" per configuration; {diverged} diverged. The main metric is"
      f" {_label_of(metric)} ({direction} is better)"
  )
  if any(summary.is_baseline for summary in summaries):
    return text + f", compared with {baseline} at the same learning rate, seed by seed."
  return text + f"; no run is of the baseline {baseline}, so there is no comparison."


def _reading_notes(summaries: Sequence[ConfigurationSummary], baseline: str) -> list[str]:
  if not summaries:
    return ["Nothing to read yet."]
  metric = _label_of(summaries[0].metric)
  better = "higher" if summaries[0].higher_is_better else "lower"
  units = " in percentage points (pp)" if metrics.describe(summaries[0].metric).percent else ""
  return [
      f"Each value is the mean over a configuration's non-diverged runs (n, one"
      f" per seed) with its {CONFIDENCE:.0%} Student t interval over seeds (no interval for"
      " a single run).",
      f"vs {baseline}: the mean paired difference in {metric}{units}, configuration"
      f" minus {baseline} at the same learning rate, over the seeds both ran without"
      f" diverging, with its {CONFIDENCE:.0%} t interval. p: two-sided paired t-test"
      f" (scipy.stats.ttest_rel). wins: seeds where the configuration's {metric} was"
      f" {better}, of those pairs.",
      f"`-`: no value (every run diverged, no {baseline} run at that learning rate,"
      " or too few pairs). `n/c`: not computable: every paired difference is the"
      " same (zero variance), so there is no t statistic.",
      f"pairs dropped: seeds run by both the configuration and {baseline} that the"
      " comparison leaves out because either run diverged. A configuration that"
      " diverges often is compared on its survivors only: read it with this count.",
      "inactive units: z <= 0 on every training example (the forward view);"
      " dead units: the activation's backward derivative is 0 on every training"
      " example (the backward view: they cannot learn). They coincide for ReLU.",
  ]
