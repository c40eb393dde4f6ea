"""A results folder's rows as pandas DataFrames, for grouping and pairing.

The engine writes ``runs.csv``, ``history.csv``, ``layers.csv`` and
``grids.csv`` (:mod:`research.results`); a study's analysis and a user read
them as :class:`Tables`, e.g. ``tables.runs.groupby("activation")``.

Examples:
  >>> found = Tables.of([{"run_id": "a", "activation": "relu", "test_accuracy": 0.9}])
  >>> found.runs.groupby("activation")["test_accuracy"].mean().to_dict()
  {'relu': 0.9}
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from research import metrics, results
from research.findings import Estimate


def frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
  """Rows (dicts) as a DataFrame, columns in order of first appearance."""
  return pd.DataFrame.from_records(list(rows)) if rows else pd.DataFrame()


class Tables(NamedTuple):
  """The tables of one results folder.

  Attributes:
    runs: one row per finished run (``runs.csv``).
    history: one row per run and evaluation (``history.csv``).
    layers: one row per run, evaluation and layer (``layers.csv``).
    grids: one row per trained program (``grids.csv``).
    measured: a study's own measurements outside the engine, by name.
  """

  runs: pd.DataFrame
  history: pd.DataFrame = pd.DataFrame()
  layers: pd.DataFrame = pd.DataFrame()
  grids: pd.DataFrame = pd.DataFrame()
  measured: Mapping[str, pd.DataFrame] = {}

  @classmethod
  def of(cls, runs: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]] = (),
         layers: Sequence[Mapping[str, Any]] = (), grids: Sequence[Mapping[str, Any]] = (),
         measured: Mapping[str, pd.DataFrame] | None = None) -> Tables:
    """Tables from rows, as :class:`research.results.ResultsFolder` returns them."""
    return cls(frame(runs), frame(history), frame(layers), frame(grids), dict(measured or {}))


def read(path: str | os.PathLike) -> Tables:
  """The tables of a results folder on disk (read-only: it may be in use)."""
  path = pathlib.Path(path)
  if not (path / results.CONFIG_FILE).is_file():
    raise ValueError(f"'{path}' is not a results folder: it has no {results.CONFIG_FILE}.")
  config = results.read_config(path)
  folder = results.ResultsFolder(path, config, read_only=True)
  return Tables.of(folder.runs(), folder.history(), folder.layers(), folder.grids())


def diverged(frame: pd.DataFrame) -> pd.Series:
  """Whether each row's run diverged (a missing value counts as not).

  Examples:
    >>> diverged(pd.DataFrame({"diverged": [True, False, None]})).tolist()
    [True, False, False]
  """
  return frame["diverged"].eq(True)

def where(frame: pd.DataFrame, **equal: Any) -> pd.DataFrame:
  """The rows of ``frame`` whose columns hold the given values.

  Examples:
    >>> runs = pd.DataFrame({"activation": ["relu", "elu", "relu"], "seed": [0, 0, 1]})
    >>> where(runs, activation="relu", seed=1).index.tolist()
    [2]
  """
  mask = np.ones(len(frame), bool)
  for column, value in equal.items():
    mask &= (frame[column] == value).to_numpy()
  return frame[mask]

def grouped_estimates(rows: pd.DataFrame, by: Sequence[str], columns: Sequence[str], *,
                      skip_diverged: bool = True) -> pd.DataFrame:
  """Mean and 95% t interval of ``columns`` per group of ``by`` (one row per seed in a group).

  ``n`` counts the runs averaged, ``diverged`` those left out; column labels
  and percentages come from :data:`research.metrics.METRICS`.

  Examples:
    >>> rows = pd.DataFrame({"activation": "relu", "seed": [0, 1, 2],
    ...                      "sparsity": [0.5, 0.6, 0.7], "diverged": False})
    >>> table = grouped_estimates(rows, ["activation"], ["sparsity"])
    >>> list(table.columns), table["sparsity"][0].text()
    (['activation', 'n', 'diverged', 'sparsity'], '60.0% [35.2, 84.8]')
  """
  found = []
  for key, members in rows.groupby(list(by), sort=False, dropna=False):
    lost = diverged(members) if (
        skip_diverged and "diverged" in members) else pd.Series(False, index=members.index)
    kept = members[~lost]
    row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
    row |= {"n": len(kept), "diverged": int(lost.sum())}
    for column in columns:
      row[metrics.describe(column).label] = Estimate.of_mean(
          pd.to_numeric(kept[column], errors="coerce").dropna() if column in kept else [], column)
    found.append(row)
  return pd.DataFrame(found)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
  """Rows as dicts with missing values as ``None``, as :class:`research.results.ResultsFolder` reads them.

  For analyses that match rows one by one (a paired cell, a threshold rule).

  Examples:
    >>> records(pd.DataFrame({"seed": [0, 1], "gradient_norm": [0.5, None]}))
    [{'seed': 0, 'gradient_norm': 0.5}, {'seed': 1, 'gradient_norm': None}]
  """
  return [{key: (None if isinstance(value, float) and math.isnan(value) else value)
           for key, value in row.items()} for row in frame.to_dict("records")]


def equal_pairs(first: pd.DataFrame, second: pd.DataFrame, on: Sequence[str],
                columns: Sequence[str]) -> tuple[int, int]:
  """``(equal, pairs)``: rows of ``first`` and ``second`` matched on ``on``, and how many agree.

  Two matched rows agree when every one of ``columns`` is exactly equal (two
  missing values are equal): the check that a surrogate with ReLU's forward
  pass starts, or ends, bit for bit where ReLU does.

  Examples:
    >>> relu = pd.DataFrame({"seed": [0, 1], "loss": [0.5, float("nan")]})
    >>> necro = pd.DataFrame({"seed": [0, 1, 2], "loss": [0.5, float("nan"), 0.1]})
    >>> equal_pairs(relu, necro, ["seed"], ["loss"])
    (2, 2)
  """
  on, columns = list(on), list(columns)
  both = first[on + columns].merge(second[on + columns], on=on)
  equal = [(both[f"{c}_x"] == both[f"{c}_y"]) | (both[f"{c}_x"].isna() & both[f"{c}_y"].isna())
           for c in columns]
  return int(pd.concat(equal, axis=1).all(axis=1).sum()) if columns else len(both), len(both)
