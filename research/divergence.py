"""How a diverged run's weights and pre-activations moved, layer by layer, up to its divergence.

The engine records, per run, evaluation and layer, the kernel's norm and
largest weight and the mean pre-activation (``layers.csv``). A run that
diverged stops being averaged (:mod:`research.metrics`), but its layer rows
up to the divergence say how it got there: which layer's kernel grew, how
fast (its doubling time in steps), and whether the pre-activations ran away
below zero. :func:`diagnoses` puts those numbers beside a reference
activation's runs of the same seeds and setting (ReLU for a ReLU-forward
surrogate), and :func:`figure` draws them. Used by the ``dying`` study.

Examples:
  >>> layers = pd.DataFrame({"run_id": "r", "step": [0, 100, 0, 100], "layer": [1, 1, 2, 2],
  ...                        "weight_norm": [1.0, 4.0, 1.0, 2.0], "preactivation_mean": -1.0,
  ...                        "inactive_fraction": 0.5})
  >>> found = diagnose({"run_id": "r", "diverged": True, "diverged_step": 100}, layers)
  >>> found["layer"], found["growth"], found["doubling_steps"]
  (1, 4.0, 50.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from research import plots, tables

# The columns :func:`diagnoses` adds after the setting's own, each explained by NOTE.
COLUMNS = [
    "diverged", "median step", "layer growing most", "weight-norm growth (x)", "doubling (steps)",
    "its mean pre-activation", "lowest hidden mean pre-activation",
    "{reference}'s growth, same layer (x)", "{reference}'s lowest mean pre-activation"]
NOTE = (
    "Per ({setting}): the median step of divergence; the layer whose kernel norm grew most from step 0"
    " to the evaluation that found the divergence, or the last one before a non-finite step (the"
    " output layer is the last; '-' when the run blew up before the first evaluation after step"
    " 0), its median growth factor and weight-norm doubling time; the median mean pre-activation"
    " of that layer and the most negative mean pre-activation of any hidden layer then; and, for"
    " comparison, the same numbers for the {reference} runs of the same seeds and setting at the"
    " same step (if they did not diverge). Medians to 3 significant figures.")


def healthy_layers(rows: pd.DataFrame, step: float | None) -> pd.DataFrame:
  """Layer rows up to ``step`` whose weight norm is finite (a diverged run's last healthy state)."""
  rows = rows[np.isfinite(pd.to_numeric(rows["weight_norm"], errors="coerce").to_numpy(float))]
  if step is not None and not pd.isna(step):
    rows = rows[rows["step"] <= step]
  return rows.sort_values(["layer", "step"], kind="stable")


def _value(value: Any) -> float | None:
  return None if value is None or pd.isna(value) else float(value)


def median(values: Sequence[float | None]) -> float:
  """The median of the values that are not missing (NaN if none)."""
  values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
  return float(np.median(values)) if values else math.nan


def _3g(value: float) -> float:
  """A median to 3 significant figures, as the tables show it."""
  return value if math.isnan(value) else float(f"{value:.3g}")


def diagnose(run: Mapping[str, Any], layers: pd.DataFrame) -> dict[str, Any] | None:
  """Per layer, how a run's weights and pre-activations moved up to its divergence.

  Returns the layer whose weight norm grew most (``layer``), its growth factor
  from step 0 to the last evaluation at or before the divergence
  (``growth``), the weight-norm doubling time in steps (``doubling_steps``),
  that layer's mean pre-activation and inactive fraction then, the most
  negative mean pre-activation of any hidden layer, and the step; ``None``
  without layer rows.
  """
  if "run_id" not in layers:
    return None
  mine = layers[layers["run_id"] == run["run_id"]]
  by_layer = healthy_layers(mine, run.get("diverged_step") if run.get("diverged") else None).groupby("layer")
  kept = by_layer.size()[lambda size: size >= 2].index
  if not len(kept):
    return None
  first = by_layer.head(1).set_index("layer").loc[kept]
  last = by_layer.tail(1).set_index("layer").loc[kept]
  growth = last["weight_norm"] / first["weight_norm"]
  layer = growth.idxmax()
  elapsed, grew = last.at[layer, "step"] - first.at[layer, "step"], float(growth[layer])
  lowest = last["preactivation_mean"].dropna()
  return {"layer": int(layer), "growth": grew,
          "doubling_steps": float(elapsed * math.log(2) / math.log(grew)) if grew > 1 else math.inf,
          "preactivation_mean": _value(last.at[layer, "preactivation_mean"]),
          "inactive_fraction": _value(last.at[layer, "inactive_fraction"]),
          "lowest_preactivation_mean": float(lowest.min()) if len(lowest) else None,
          "step": int(last.at[layer, "step"]), "num_layers": int(mine["layer"].nunique())}


def _reference(runs: pd.DataFrame, layers: pd.DataFrame, diagnosed: Sequence[tuple[dict, dict]],
               layer: int, where: Sequence[str], reference: str) -> tuple[float, float]:
  """``reference``'s weight-norm growth of ``layer`` and lowest hidden mean pre-activation.

  Over its runs of the same setting (``where``) and seeds, up to the steps at
  which the diagnosed runs diverged; runs of ``reference`` that diverged too
  are left out.
  """
  growths, lowest = [], []
  for row, found in diagnosed:
    same = tables.where(runs, activation=reference, seed=row["seed"], **{k: row[k] for k in where})
    if same.empty or tables.diverged(same).iloc[0]:
      continue
    rows = healthy_layers(layers[layers["run_id"] == same["run_id"].iloc[0]], found["step"])
    own = rows.loc[rows["layer"] == layer, "weight_norm"]
    if len(own) >= 2:
      growths.append(own.iloc[-1] / own.iloc[0])
    pre = rows.groupby("layer").tail(1)["preactivation_mean"].dropna()
    if len(pre):
      lowest.append(pre.min())
  return median(growths), median(lowest)


def diagnoses(runs: pd.DataFrame, layers: pd.DataFrame, setting: Sequence[str],
              reference: str = "relu") -> pd.DataFrame:
  """Per ``setting`` (columns of ``runs``, one of them ``activation``) where runs diverged: when, how.

  Medians over the setting's diverged runs of :func:`diagnose`'s numbers, and
  beside them ``reference``'s (see :data:`NOTE`); the columns are
  ``setting``, then :data:`COLUMNS` with ``{reference}`` filled in.
  """
  setting = list(setting)
  where = [column for column in setting if column != "activation"]
  columns = setting + [column.format(reference=reference) for column in COLUMNS]
  rows = []
  for key, lost in runs[tables.diverged(runs)].groupby(setting, sort=False):
    diagnosed = [(row, found) for row in tables.records(lost)
                 if (found := diagnose(row, layers)) is not None]
    row = dict(zip(setting, key)) | {
        "diverged": f"{len(lost)}/{len(tables.where(runs, **dict(zip(setting, key))))}",
        "median step": round(median(list(lost["diverged_step"])))}
    if diagnosed:
      counts = pd.Series([found["layer"] for _, found in diagnosed]).value_counts()
      layer = int(counts[counts == counts.max()].index.min())
      medians = [median([found[name] for _, found in diagnosed]) for name in (
          "growth", "doubling_steps", "preactivation_mean", "lowest_preactivation_mean")]
      growth, lowest = _reference(runs, layers, diagnosed, layer, where, reference)
      output = " (output)" if layer == diagnosed[0][1]["num_layers"] else ""
      row |= dict(zip(columns[len(setting) + 2:], (
          f"{layer}{output}", _3g(medians[0]), round(medians[1], 0), _3g(medians[2]),
          _3g(medians[3]), _3g(growth), _3g(lowest))))
    rows.append(row)
  return pd.DataFrame(rows, columns=columns)


def figure(runs: pd.DataFrame, layers: pd.DataFrame, title: str) -> Any:
  """Per layer, weight norm, mean pre-activation and largest |weight| against the step.

  One line per run of ``runs`` (one setting, several activations), a diverged
  run's dashed and cut at its divergence; one column of panels per layer.
  """
  from matplotlib import colormaps

  num_layers, palette = int(layers["layer"].max()), colormaps["tab10"]
  names = list(dict.fromkeys(runs["activation"]))
  drawn = plots.new_figure(3.6 * num_layers, 8.5)
  axes = drawn.subplots(3, num_layers, squeeze=False)
  for row in tables.records(runs):
    color, lost = palette(names.index(row["activation"]) % palette.N), bool(row["diverged"])
    style, label = ("--", f"{row['activation']} (diverged)") if lost else ("-", row["activation"])
    series = healthy_layers(layers[layers["run_id"] == row["run_id"]],
                            row["diverged_step"] if lost else None)
    for layer, rows in series.groupby("layer"):
      axes[0][layer - 1].plot(rows["step"], rows["weight_norm"], style, color=color,
                              label=label if row["seed"] == 0 else None)
      axes[2][layer - 1].plot(rows["step"], rows["max_abs_weight"], style, color=color)
      if layer < num_layers:
        axes[1][layer - 1].plot(rows["step"], rows["preactivation_mean"], style, color=color)
  for layer in range(1, num_layers + 1):
    top, middle, bottom = (axes[row][layer - 1] for row in range(3))
    top.set(yscale="log", ylabel="weight norm",
            title=f"layer {layer}{' (output)' if layer == num_layers else ''}")
    bottom.set(yscale="log", ylabel="largest |weight|", xlabel="step")
    if layer < num_layers:
      middle.set(yscale="symlog", ylabel="mean pre-activation")
    else:
      middle.axis("off")
    for axis in (top, middle, bottom):
      axis.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  drawn.suptitle(f"{title}: one line per run (dashed: diverged, cut at its divergence)")
  return drawn
