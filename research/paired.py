"""Paired differences between activations: the same seed, so the same initial weights and batches.

Every comparison of the studies is an activation's runs minus a baseline's
runs at the same seed within a group (a dataset and learning rate, say),
with the 95% paired t interval of :func:`research.statistics.paired_comparison`.
Diverged runs and missing values are left out of the pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from research import tables
from research.findings import Estimate
from research.statistics import paired_comparison


def _by_seed(rows: pd.DataFrame, metric: str) -> dict[int, float]:
  kept = rows[~tables.diverged(rows) & rows[metric].notna()]
  kept = kept.loc[kept[metric].map(math.isfinite).astype(bool)]  # .loc: an empty mask selects no column
  return dict(zip(kept["seed"].astype(int), kept[metric].astype(float)))


def _difference_row(rows: pd.DataFrame, reference: pd.DataFrame, baseline: str, metric: str) -> dict:
  comparison = paired_comparison(_by_seed(rows, metric), _by_seed(reference, metric))
  baseline_values = list(_by_seed(reference, metric).values())
  return {
      "activation": rows["activation"].iloc[0], "name": rows["name"].iloc[0], "baseline": baseline,
      "pairs": comparison.num_pairs, "difference": comparison.mean_difference,
      "half_width": comparison.half_width,
      "low": comparison.mean_difference - comparison.half_width,
      "high": comparison.mean_difference + comparison.half_width,
      "p": comparison.p_value, "wins": comparison.wins, "diverged": int(rows["diverged"].sum()),
      "baseline_mean": sum(baseline_values) / len(baseline_values) if baseline_values else math.nan,
  }


def paired_differences(runs: pd.DataFrame, baseline: str, metric: str,
                       group: Sequence[str]) -> pd.DataFrame:
  """Each activation minus ``baseline`` in ``metric``, paired by seed, within each ``group``.

  ``baseline`` is a registry name (the runs whose ``name`` it is); one row
  per (group, activation), with the mean difference, its interval
  (``low``, ``high``), ``p``, ``wins``, ``pairs``, the activation's
  ``diverged`` runs and the baseline's mean.

  Examples:
    >>> rows = pd.DataFrame([{"depth": 8, "seed": seed, "name": name, "activation": name,
    ...                       "diverged": False, "test_accuracy": value}
    ...                      for name, values in (("relu", [0.90, 0.92, 0.91]),
    ...                                           ("necro_relu", [0.92, 0.93, 0.94]))
    ...                      for seed, value in enumerate(values)])
    >>> [row] = paired_differences(rows, "relu", "test_accuracy", ["depth"]).to_dict("records")
    >>> row["depth"], row["activation"], row["pairs"], round(row["difference"], 4), row["wins"]
    (8, 'necro_relu', 3, 0.02, 3)
  """
  group = list(group)
  found = []
  for key, rows_of_group in runs.groupby(group, sort=False):
    key = key if isinstance(key, tuple) else (key,)
    reference = rows_of_group[rows_of_group["name"] == baseline]
    if reference.empty:
      continue
    others = rows_of_group[rows_of_group["name"] != baseline]
    for _, rows in others.groupby("activation", sort=False):
      found.append(dict(zip(group, key)) | _difference_row(rows, reference, baseline, metric))
  return pd.DataFrame(found)


def pooled_differences(runs: pd.DataFrame, baseline: str, metric: str, group: Sequence[str],
                       pooled: Sequence[str]) -> pd.DataFrame:
  """:func:`paired_differences` with the pairs pooled over the settings ``pooled`` too.

  A pair is then the same seed *and* the same values of ``pooled`` (an
  optimizer and learning rate, say): each setting's runs still meet only
  their own baseline run.

  Examples:
    >>> rows = pd.DataFrame([{"network": "n", "learning_rate": rate, "seed": seed,
    ...                       "name": name, "activation": name, "diverged": False,
    ...                       "test_accuracy": 0.5 + (name == "elu") * 0.01 * (seed + 1)}
    ...                      for rate in (0.1, 0.2) for seed in (0, 1) for name in ("relu", "elu")])
    >>> [row] = pooled_differences(rows, "relu", "test_accuracy", ["network"],
    ...                            ["learning_rate"]).to_dict("records")
    >>> row["pairs"], round(row["difference"], 4)
    (4, 0.015)
  """
  pair = [column for column in (*pooled, "seed") if column in runs]
  keyed = runs.assign(seed=runs.groupby(pair, sort=False).ngroup())
  return paired_differences(keyed, baseline, metric, group)


def verdict(row) -> str:
  """``"beats"``, ``"loses to"``, ``"ties with"`` (the interval holds 0) or ``"n/a"``.

  Examples:
    >>> verdict({"low": 0.01, "high": 0.03}), verdict({"low": -0.01, "high": 0.03})
    ('beats', 'ties with')
    >>> verdict({"low": float("nan"), "high": float("nan")})
    'n/a'
  """
  low, high = row["low"], row["high"]
  if math.isnan(low) or math.isnan(high):
    return "n/a"
  return "beats" if low > 0 else "loses to" if high < 0 else "ties with"


def difference(row) -> Estimate:
  """A row of :func:`paired_differences` as an estimate in percentage points."""
  return Estimate(row["difference"], row["low"], row["high"], "points", int(row["pairs"]))
