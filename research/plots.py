"""The plots of a comparison, written as PNG files next to its results.

* ``learning_curves.png``: the main metric (test accuracy, or test loss for
  regression) and the training loss against the step;
* ``dead_fraction.png``: per hidden layer (one column each), the fraction of
  inactive units (top) and of dead units (bottom) against the step (claim 1 of
  the research brief), from ``layers.csv``; a network of more than
  :data:`MAX_LAYER_PANELS` layers (a ResNet's 19) gets one panel per metric
  instead, the fraction at the last evaluation against the layer;
* ``final_accuracy.png``: each seed's final metric per configuration, with the
  mean and its 95% interval; diverged runs as red crosses along the bottom.

A curve is the mean over a configuration's non-diverged runs, with a shaded 95%
Student t band over seeds (none for a single seed; a fraction's band is clipped
to [0, 100]%). Colour tells the activation, line style the learning rate.
Labels and units come from :data:`research.metrics.METRICS`.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas, not
through :mod:`matplotlib.pyplot`: writing plots neither needs a display nor
changes the backend of the caller (a notebook keeps its inline plots).
"""

from __future__ import annotations

import io
import math
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from research import metrics
from research.atomic import write_bytes_atomic
from research.statistics import mean_confidence_interval
from research.summary import choose_metric

LEARNING_CURVES, DEAD_FRACTION, FINAL_ACCURACY = (
    "learning_curves.png", "dead_fraction.png", "final_accuracy.png"
)
_DPI = 110
_LINE_STYLES = ("-", "--", ":", "-.")
_UNIT_METRICS = ("inactive_fraction", "dead_fraction")  # the rows of dead_fraction.png
MAX_LAYER_PANELS = 6  # deeper networks are drawn as a profile over the layers
_LAYER_COLUMN = re.compile(r"(\w+)/layer_(\d+)")

Configuration = tuple[str, float]  # (activation, learning rate)


def write_plots(
    folder: str | os.PathLike,
    runs: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    layers: Sequence[Mapping[str, Any]] = (),
    *,
    metric: str | None = None,
) -> list[pathlib.Path]:
  """Writes the comparison's PNG plots into ``folder``, each file atomically.

  Args:
    folder: where to write (created if absent), usually the results folder.
    runs: rows of ``runs.csv``: they say which runs exist, their configuration
      and whether they diverged. History rows of other runs are ignored.
    history: rows of ``history.csv``: ``run_id``, ``step`` and metric columns.
    layers: rows of ``layers.csv``: ``run_id``, ``step``, ``layer`` and layer
      metric columns.
    metric: the main metric; ``None`` picks test accuracy, or test loss when no
      run has a finite accuracy (regression).

  Returns:
    The paths written, in the order of the module docstring.
    ``dead_fraction.png`` is left out when there are no layer rows.

  Examples:
    >>> import tempfile
    >>> runs = [{"run_id": f"relu|{seed}", "activation": "relu", "seed": seed,
    ...          "learning_rate": 0.01, "diverged": False, "test_accuracy": 0.5}
    ...         for seed in range(2)]
    >>> history = [{"run_id": row["run_id"], "step": step, "test_accuracy": 0.5,
    ...             "train_loss": 1.0 / (step + 1)}
    ...            for row in runs for step in (0, 10)]
    >>> layers = [{"run_id": row["run_id"], "step": step, "layer": 1,
    ...            "inactive_fraction": 0.1, "dead_fraction": 0.1}
    ...           for row in runs for step in (0, 10)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   print([path.name for path in write_plots(folder, runs, history, layers)])
    ['learning_curves.png', 'dead_fraction.png', 'final_accuracy.png']
  """
  _require_matplotlib()
  folder = pathlib.Path(folder).expanduser()
  folder.mkdir(parents=True, exist_ok=True)
  metric = choose_metric(runs) if metric is None else metric
  configurations = _configurations(runs)
  curves = _curves_by_configuration(runs, history)
  styles = _styles(configurations)
  figure = _learning_curves(configurations, curves, styles, metric)
  written = [save_figure(figure, folder, LEARNING_CURVES)]
  figure = _units_figure(configurations, runs, layers, styles)
  if figure is not None:
    written.append(save_figure(figure, folder, DEAD_FRACTION))
  written.append(save_figure(_final(configurations, metric), folder, FINAL_ACCURACY))
  return written


def _require_matplotlib() -> None:
  """Raises an ``ImportError`` saying what to install when matplotlib is missing."""
  try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
  except ImportError:
    raise ImportError(
        "research.plots needs matplotlib: pip install matplotlib"
        " (or pip install 'surrogate-activations[research]')."
    ) from None


def _units_figure(
    configurations: dict[Configuration, list[Mapping[str, Any]]],
    runs: Sequence[Mapping[str, Any]],
    layers: Sequence[Mapping[str, Any]],
    styles: dict[Configuration, dict[str, Any]],
) -> Any:
  """``dead_fraction.png``'s figure, or ``None`` without layer rows.

  A panel per layer, or for a deeper network a profile over its layers.
  """
  unit_rows = _per_layer_columns(layers)
  unit_columns = _layer_columns(unit_rows)
  if not unit_columns:
    return None
  if len(unit_columns[0]) > MAX_LAYER_PANELS:
    profiles = _curves_by_configuration(runs, _last_evaluation_by_layer(layers))
    return _depth_profile(configurations, profiles, styles)
  unit_curves = _curves_by_configuration(runs, unit_rows)
  return _dead_fraction(configurations, unit_curves, styles, unit_columns)


def _configurations(
    runs: Sequence[Mapping[str, Any]],
) -> dict[Configuration, list[Mapping[str, Any]]]:
  """Runs by (activation, learning rate), in first-appearance order."""
  groups: dict[Configuration, list[Mapping[str, Any]]] = {}
  for row in runs:
    key = (str(row["activation"]), float(row["learning_rate"]))
    groups.setdefault(key, []).append(row)
  return groups


def _curves_by_configuration(
    runs: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]]
) -> dict[Configuration, list[Mapping[str, Any]]]:
  """History rows of non-diverged runs, by configuration."""
  configuration_of = {
      row["run_id"]: (str(row["activation"]), float(row["learning_rate"]))
      for row in runs
      if not row.get("diverged")
  }
  curves: dict[Configuration, list[Mapping[str, Any]]] = {}
  for row in history:
    key = configuration_of.get(row.get("run_id"))
    if key is not None:
      curves.setdefault(key, []).append(row)
  return curves


def _styles(configurations: Sequence[Configuration]) -> dict[Configuration, dict[str, Any]]:
  """Colour by activation, line style by learning rate, so both read at a glance."""
  from matplotlib import colormaps

  activations = list(dict.fromkeys(activation for activation, _ in configurations))
  learning_rates = sorted({learning_rate for _, learning_rate in configurations})
  palette = colormaps["tab10" if len(activations) <= 10 else "tab20"]
  several_rates = len(learning_rates) > 1
  return {
      (activation, learning_rate): {
          "color": palette(activations.index(activation) % palette.N),
          "linestyle": _LINE_STYLES[learning_rates.index(learning_rate) % len(_LINE_STYLES)],
          "label": f"{activation}, lr={learning_rate:g}" if several_rates else activation,
      }
      for activation, learning_rate in configurations
  }


def _mean_curve(
    rows: Sequence[Mapping[str, Any]], column: str, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Steps, mean and half width of ``column`` over runs, at each step."""
  by_step: dict[int, list[float]] = {}
  for row in rows:
    value = row.get(column)
    if value is not None and row.get("step") is not None and math.isfinite(value):
      by_step.setdefault(row["step"], []).append(scale * value)
  steps = sorted(by_step)
  estimates = [mean_confidence_interval(by_step[step]) for step in steps]
  means = np.array([mean for mean, _ in estimates], dtype=np.float64)
  half_widths = np.array([half for _, half in estimates], dtype=np.float64)
  return np.array(steps, dtype=np.float64), means, half_widths


def _draw_curves(axis, configurations, curves, styles, column: str) -> bool:
  """One mean line (with its band) per configuration; whether anything was drawn."""
  scale = _scale(column)
  drawn = False
  for key in configurations:
    steps, means, half_widths = _mean_curve(curves.get(key, []), column, scale)
    if not len(steps):
      continue  # every run diverged, or this column is missing for these runs
    style = styles[key]
    axis.plot(steps, means, color=style["color"], linestyle=style["linestyle"],
              label=style["label"])
    band = np.isfinite(half_widths)
    if band.any():  # a single seed has no spread to show
      low = means - np.where(band, half_widths, 0.0)
      high = means + np.where(band, half_widths, 0.0)
      if scale == 100.0:  # a fraction's interval cannot leave [0, 100]%
        low, high = np.clip(low, 0.0, 100.0), np.clip(high, 0.0, 100.0)
      axis.fill_between(steps, low, high, where=band,
                        color=style["color"], alpha=0.2, linewidth=0)
    drawn = True
  if not drawn:
    axis.text(0.5, 0.5, f"no {_label_of(column)} to show", ha="center", va="center",
              transform=axis.transAxes, color="0.5")
  axis.set_xlabel("step")
  axis.set_ylabel(_label_of(column) + (" (%)" if scale == 100.0 else ""))
  axis.grid(alpha=0.3)
  return drawn


def new_figure(width: float, height: float) -> Any:
  """A figure outside pyplot (nothing global is registered or changed), in inches.

  Examples:
    >>> new_figure(4, 3).get_size_inches().tolist()
    [4.0, 3.0]
  """
  from matplotlib.figure import Figure

  return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Any, folder: str | os.PathLike, name: str) -> pathlib.Path:
  """Writes ``figure`` as a PNG into ``folder`` atomically, without pyplot."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg

  FigureCanvasAgg(figure)  # attaches itself: PNG output without pyplot
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=_DPI)
  path = pathlib.Path(folder) / name
  write_bytes_atomic(path, buffer.getvalue())
  return path





def _legend(figure, axes) -> None:
  handles, labels = [], []
  for axis in axes:
    for handle, label in zip(*axis.get_legend_handles_labels()):
      if label not in labels:
        handles.append(handle)
        labels.append(label)
  if handles:
    figure.legend(handles, labels, loc="outside lower center", frameon=False,
                  ncols=min(len(labels), 3), fontsize="small")


def _legend_height(configurations) -> float:
  """Inches the legend below the panels needs: three entries a row."""
  return 0.25 * math.ceil(len(configurations) / 3) + 0.2


def _learning_curves(configurations, curves, styles, metric: str):
  figure = new_figure(11, 4 + _legend_height(configurations))
  metric_axis, loss_axis = figure.subplots(1, 2)
  _draw_curves(metric_axis, configurations, curves, styles, metric)
  metric_axis.set_title(_label_of(metric))
  if _draw_curves(loss_axis, configurations, curves, styles, "train_loss"):
    if all(np.all(line.get_ydata() > 0) for line in loss_axis.get_lines()):
      loss_axis.set_yscale("log")  # losses span decades over training
  loss_axis.set_title("train loss")
  figure.suptitle("Learning curves: mean over non-diverged seeds, 95% t band")
  _legend(figure, (metric_axis, loss_axis))
  return figure


def _per_layer_columns(layers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Layer rows as one row per (run, step) with ``inactive_fraction/layer_1`` columns."""
  merged: dict[tuple[Any, Any], dict[str, Any]] = {}
  for row in layers:
    key = (row.get("run_id"), row.get("step"))
    target = merged.setdefault(key, {"run_id": key[0], "step": key[1]})
    for name in _UNIT_METRICS:
      if row.get(name) is not None:
        target[f"{name}/layer_{row['layer']}"] = row[name]
  return list(merged.values())


def _layer_columns(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
  """Per unit metric (a row of panels), its per-layer columns in layer order."""
  present = {key for row in rows for key in row}
  layers = sorted({int(match.group(2)) for column in present
                   if (match := _LAYER_COLUMN.fullmatch(column))})
  if not layers:
    return []
  return [[f"{name}/layer_{layer}" for layer in layers] for name in _UNIT_METRICS]


def _dead_fraction(configurations, curves, styles, columns: Sequence[Sequence[str]]):
  num_rows, num_columns = len(columns), len(columns[0])
  figure = new_figure(4.2 * num_columns, 3.2 * num_rows + _legend_height(configurations))
  axes = figure.subplots(num_rows, num_columns, squeeze=False, sharey=True)
  for row_axes, row_columns in zip(axes, columns):
    for axis, column in zip(row_axes, row_columns):
      name, layer = column.split("/layer_")
      _draw_curves(axis, configurations, curves, styles, column)
      axis.set_title(f"hidden layer {layer}: {metrics.describe(name).label}")
      axis.set_ylabel(f"{metrics.describe(name).label} (%)")
  figure.suptitle("Inactive units (z <= 0 on every training example) and dead units"
                  " (backward derivative 0 on every training example)")
  _legend(figure, axes.ravel())
  return figure


def _last_evaluation_by_layer(layers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Each run's rows of its last evaluation, with the layer in place of the step."""
  last: dict[Any, Any] = {}
  for row in layers:
    if row.get("step") is not None:
      last[row.get("run_id")] = max(last.get(row.get("run_id"), row["step"]), row["step"])
  return [{**row, "step": row["layer"]} for row in layers
          if row.get("step") is not None and row["step"] == last[row.get("run_id")]]


def _depth_profile(configurations, profiles, styles):
  figure = new_figure(11, 4 + _legend_height(configurations))
  axes = figure.subplots(1, len(_UNIT_METRICS), sharey=True)
  for axis, name in zip(axes, _UNIT_METRICS):
    _draw_curves(axis, configurations, profiles, styles, name)
    axis.set_xlabel("layer (1: nearest the input)")
    axis.set_title(f"{metrics.describe(name).label} at the last evaluation")
  figure.suptitle("Inactive units (z <= 0 on every training example) and dead units"
                  " (backward derivative 0 on every training example), by depth")
  _legend(figure, axes)
  return figure


def _final(configurations, metric: str):
  """Each seed's final metric as a dot, the mean ± 95% interval as an error bar."""
  scale = _scale(metric)
  several_rates = len({learning_rate for _, learning_rate in configurations}) > 1
  figure = new_figure(max(5.0, 1.1 * len(configurations) + 2.0), 4.6)
  axis = figure.subplots()
  jitter = np.random.default_rng(0)  # fixed: the same plot on every rewrite
  crosses: list[float] = []
  extremes: list[float] = []  # every value and interval end drawn: sets the y range
  for position, rows in enumerate(configurations.values()):
    values = [scale * row[metric] for row in rows
              if not row.get("diverged") and row.get(metric) is not None
              and math.isfinite(row[metric])]
    num_diverged = sum(1 for row in rows if row.get("diverged"))
    crosses += list(position + jitter.uniform(-0.15, 0.15, num_diverged))
    if not values:
      continue
    offsets = jitter.uniform(-0.15, 0.15, len(values))
    axis.scatter(position + offsets, values, s=18, color="tab:blue", alpha=0.7,
                 zorder=2)
    mean, half_width = mean_confidence_interval(values)
    extremes += values
    if math.isnan(half_width):  # one seed: a mean without an interval
      axis.plot([position + 0.3], [mean], "o", color="black", zorder=3)
    else:
      low, high = mean - half_width, mean + half_width
      if scale == 100.0:  # a fraction's interval cannot leave [0, 100]%
        low, high = max(low, 0.0), min(high, 100.0)
      extremes += [low, high]
      axis.errorbar([position + 0.3], [mean], yerr=[[mean - low], [high - mean]],
                    fmt="o", color="black", capsize=4, zorder=3)
  low, high = (min(extremes), max(extremes)) if extremes else (0.0, 1.0)
  margin = 0.08 * (high - low) if high > low else max(abs(low) * 0.1, 1.0)
  bottom = low - margin  # the diverged runs' row, below every value
  if crosses:
    axis.scatter(crosses, [bottom] * len(crosses), marker="x", color="red", s=40,
                 zorder=3, label="diverged run")
    axis.legend(loc="best", frameon=False, fontsize="small")
  axis.set_ylim(bottom - margin, high + margin)
  axis.set_xticks(range(len(configurations)))
  axis.set_xticklabels(
      [f"{activation}\nlr={learning_rate:g}" if several_rates else activation
       for activation, learning_rate in configurations],
      rotation=30, ha="right", fontsize="small")
  axis.set_xlim(-0.6, len(configurations) - 0.4)
  axis.set_ylabel(_label_of(metric) + (" (%)" if scale == 100.0 else ""))
  axis.grid(axis="y", alpha=0.3)
  title = f"Final {_label_of(metric)}: seeds (dots), mean ± 95% t interval (black)"
  if crosses:
    title += f"\n{len(crosses)} diverged run{'s' if len(crosses) != 1 else ''} (red x)"
  axis.set_title(title, fontsize="medium")
  return figure


def _label_of(column: str) -> str:
  return metrics.describe(column.split("/layer_")[0]).label


def _scale(column: str) -> float:
  """100 for fractions, drawn as percentages; 1 otherwise."""
  return 100.0 if metrics.describe(column.split("/layer_")[0]).percent else 1.0
