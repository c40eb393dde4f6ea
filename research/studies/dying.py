"""Dying ReLU against the learning rate, and whether each remedy prevents it.

Claim 1 of the research brief: a ReLU unit whose pre-activation is <= 0 on
every training example gets no gradient and is dead; with too high a learning
rate "as much as 40% of your network can be dead" (CS231n). Remedies: a lower
learning rate, LeakyReLU, ELU, NecroReLU (ReLU forward, derivative 0.1 below
zero backward). NecroReLU's backward is not the gradient of any loss: below
zero it passes a gradient that has no effect on the forward pass, so nothing
guarantees that following it lowers the loss. The study measures, per dataset
and optimizer, the dead fraction of each activation against the learning rate
(from stable to divergent), which runs diverge and at which step, and, from the
per-layer weight norms and pre-activations, why.

PReLU is left out: the engine's MLP (:mod:`research.models`) takes a fixed
elementwise activation and has no learned slope parameter; adding one means
changing the model, which this study does not own.

Default (the full study): MNIST-1D and MNIST-5k, Adam and SGD, relu,
leaky_relu(0.01), necro_relu(0.1), elu and windowed_necro_relu (the surrogate
designed from this study's measurements), 6 Adam and 7 SGD learning rates, 3
seeds, MLP 100-100, 1500 steps: 390 runs. On 2 CPU cores shared with other
jobs (load average 6-9) it took 796 s with a cold compilation cache and 557 s
with a warm one.

Command::

  python -m research dying --out results/dying
  python -m research dying --datasets digits --optimizers sgd --base.steps 200 --base.seeds 2
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from research import config as config_lib
from research import experiment, plots, tables
from research.config import Config, Floats, Specs
from research.findings import Answer, Estimate, Findings, Table
from research.statistics import mean_confidence_interval
from research.study import Study

# Per optimizer, from stable to divergent (measured on MNIST-1D and MNIST-5k,
# MLP 100-100: ReLU loses units at the top rates and some runs diverge).
DEFAULT_LEARNING_RATES: dict[str, tuple[float, ...]] = {
    "adam": (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    "adamw": (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    "sgd": (1e-2, 1e-1, 0.3, 0.6, 1.0, 2.0, 3.0),
    "momentum": (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
}
DEFAULT_ACTIVATIONS = (
    "relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)", "elu",
    "windowed_necro_relu(negative_slope=0.1,window=3.0)",
)  # PReLU is left out: the engine's MLP has no learned-slope activation
DYING_THRESHOLD = 0.10  # ReLU "dies" at a rate where its mean dead fraction reaches this
PREVENTS_THRESHOLD = 0.02  # a remedy "prevents" dying where its dead fraction stays below this
DEAD_VS_RATE_PLOT, ACCURACY_VS_RATE_PLOT, DIVERGENCE_PLOT = (
    "dead_vs_learning_rate.png", "accuracy_vs_learning_rate.png", "divergence.png",
)


@dataclasses.dataclass(frozen=True)
class Settings:
  """Dying units against the learning rate: per dataset and optimizer, every activation."""

  datasets: Specs = ("mnist1d", "mnist5k")  # comma-separated research.data specs, one part each
  optimizers: Specs = ("adam", "sgd")  # comma-separated optax optimizers (sgd, momentum, adam, adamw), one part each
  rates: Floats = ()  # swept learning rates for every optimizer; empty: each optimizer's defaults (adam 1e-4..1e-1, sgd 0.01..3)
  base: Config = Config(  # the engine's settings: MLP 100-100, 1500 steps, evaluated every 100; relu is the baseline activation
      activations=DEFAULT_ACTIVATIONS, seeds=3, steps=1500, eval_every=100)


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(optimizers=()))
    Traceback (most recent call last):
    ...
    ValueError: datasets and optimizers must each name at least one value.
  """
  if not settings.datasets or not settings.optimizers:
    raise ValueError("datasets and optimizers must each name at least one value.")
  for optimizer in settings.optimizers:
    learning_rates(settings, optimizer)  # names the valid optimizers


def learning_rates(settings: Settings, optimizer: str) -> tuple[float, ...]:
  """The swept rates for ``optimizer``: ``settings.rates`` or its defaults.

  Examples:
    >>> learning_rates(Settings(), "adam")
    (0.0001, 0.001, 0.003, 0.01, 0.03, 0.1)
    >>> learning_rates(Settings(rates=(0.5,)), "sgd")
    (0.5,)
  """
  if settings.rates:
    return tuple(settings.rates)
  if optimizer not in DEFAULT_LEARNING_RATES:
    config_lib.validate(Config(optimizer=optimizer))  # names the valid optimizers
  return DEFAULT_LEARNING_RATES[optimizer]


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per (dataset, optimizer), keyed by both.

  Examples:
    >>> [part.keys for part in parts(Settings(datasets=("digits",)))]
    [{'dataset': 'digits', 'optimizer': 'adam'}, {'dataset': 'digits', 'optimizer': 'sgd'}]
  """
  validate(settings)
  built = []
  for dataset in settings.datasets:
    for optimizer in settings.optimizers:
      config = dataclasses.replace(settings.base, dataset=dataset, optimizer=optimizer,
                                   learning_rates=learning_rates(settings, optimizer))
      config_lib.validate(config)
      built.append(experiment.Part({"dataset": dataset, "optimizer": optimizer}, config))
  return built


def _groups(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
  return list(dict.fromkeys((row["dataset"], row["optimizer"]) for row in runs))


def _activations(runs: Sequence[Mapping[str, Any]]) -> list[str]:
  return list(dict.fromkeys(str(row["activation"]) for row in runs))


def _rates(runs: Sequence[Mapping[str, Any]]) -> list[float]:
  return sorted({float(row["learning_rate"]) for row in runs})


def _select(runs: Sequence[Mapping[str, Any]], **keys: Any) -> list[Mapping[str, Any]]:
  return [row for row in runs if all(row.get(k) == v for k, v in keys.items())]


def _estimate(rows: Sequence[Mapping[str, Any]], column: str) -> tuple[float, float]:
  values = [row[column] for row in rows if not row.get("diverged")
            and isinstance(row.get(column), (int, float)) and math.isfinite(row[column])]
  return mean_confidence_interval(values)


def _pct(column: str, rows: Sequence[Mapping[str, Any]]) -> Estimate | str:
  """The mean of ``column`` over the non-diverged rows, with its interval; text when none."""
  mean, half = _estimate(rows, column)
  if math.isnan(mean):
    return "- (every run diverged)"
  kind = "percent" if column != "train_loss" else "number"
  return Estimate(mean, mean - half, mean + half, kind, sum(not r.get("diverged") for r in rows))


def _text(value: Estimate | str) -> str:
  return value.text() if isinstance(value, Estimate) else value


def _name(row: Mapping[str, Any]) -> str:
  return str(row.get("name") or str(row["activation"]).split("(")[0])


def _relu_answer(runs: Sequence[Mapping[str, Any]]) -> list[Answer]:
  topic, answers, worst_overall = "How much of a ReLU network dies as the learning rate grows", [], 0.0
  for dataset, optimizer in _groups(runs):
    relu = _select(runs, dataset=dataset, optimizer=optimizer, activation="relu")
    by_rate = {rate: _select(relu, learning_rate=rate) for rate in _rates(relu)}
    parts = []
    for rate, rows in by_rate.items():
      diverged = sum(bool(row.get("diverged")) for row in rows)
      note = f" ({diverged} of {len(rows)} diverged)" if diverged else ""
      parts.append(f"lr {rate:g}: {_text(_pct('dead_fraction', rows))}{note}")
    means = {rate: _estimate(rows, "dead_fraction")[0] for rate, rows in by_rate.items()}
    finite = {rate: mean for rate, mean in means.items() if not math.isnan(mean)}
    sentence = f"{dataset}, {optimizer}: " + "; ".join(parts) + "."
    if finite:
      worst_rate = max(finite, key=finite.get)
      worst_overall = max(worst_overall, finite[worst_rate])
      sentence += (
          f" From the lowest rate to the worst one (lr {worst_rate:g}) the dead fraction goes"
          f" from {100 * finite.get(min(by_rate), math.nan):.1f}% to {100 * finite[worst_rate]:.1f}%"
          + (", beyond CS231n's 40%." if finite[worst_rate] > 0.4 else
             ", reaching CS231n's 40%." if finite[worst_rate] >= 0.395 else "."))
    answers.append(Answer(sentence, topic=topic))
  answers.append(Answer(
      f"Across every dataset and optimizer, the largest mean dead fraction of ReLU is"
      f" {100 * worst_overall:.1f}%: CS231n's \"as much as 40%\""
      + (" held." if worst_overall >= 0.395 else " was not reached here."), topic=topic))
  return answers


def _dying_rates(runs: Sequence[Mapping[str, Any]], dataset: str, optimizer: str) -> list[float]:
  """The rates where ReLU's mean dead fraction reaches :data:`DYING_THRESHOLD`."""
  relu = _select(runs, dataset=dataset, optimizer=optimizer, activation="relu")
  found = []
  for rate in _rates(relu):
    mean = _estimate(_select(relu, learning_rate=rate), "dead_fraction")[0]
    if not math.isnan(mean) and mean >= DYING_THRESHOLD:
      found.append(rate)
  return found


def _first_divergence(rows: Sequence[Mapping[str, Any]]) -> float | None:
  rates = [float(row["learning_rate"]) for row in rows if row.get("diverged")]
  return min(rates) if rates else None


def _remedy_verdict(activation: str, dying, diverged: int, mean_dead: float, first, relu_first) -> str:
  unstable = first is not None and (relu_first is None or first < relu_first)
  if not dying:
    verdict = "ReLU does not die here"
  elif activation == "relu":
    verdict = "baseline"
  elif diverged == 0 and not math.isnan(mean_dead) and mean_dead < PREVENTS_THRESHOLD:
    verdict = "prevents"
  elif diverged:
    verdict = "diverges instead"
  else:
    verdict = "does not prevent"
  if unstable and verdict == "diverges instead":
    return verdict + f" (from lr {first:g}; ReLU does not diverge there)"
  return verdict + (f"; diverges from lr {first:g}, where ReLU does not" if unstable else "")


def _remedy_row(runs, dataset: str, optimizer: str, activation: str) -> dict[str, Any]:
  dying = _dying_rates(runs, dataset, optimizer)
  group = _select(runs, dataset=dataset, optimizer=optimizer)
  relu_first = _first_divergence(_select(group, activation="relu"))
  mine = _select(group, activation=activation)
  at_dying = [row for row in mine if float(row["learning_rate"]) in dying]
  first = _first_divergence(mine)
  diverged = sum(bool(row.get("diverged")) for row in at_dying)
  verdict = _remedy_verdict(activation, dying, diverged, _estimate(at_dying, "dead_fraction")[0], first, relu_first)
  return {"dataset": dataset, "optimizer": optimizer, "activation": activation,
          "ReLU dies at lr": ", ".join(f"{rate:g}" for rate in dying) or "-", "runs": len(at_dying),
          "diverged": diverged,
          **{label: _pct(column, at_dying) if at_dying else "-" for label, column in (
              ("dead units", "dead_fraction"), ("inactive units", "inactive_fraction"),
              ("test accuracy", "test_accuracy"))},
          "first diverging lr (ReLU's)": f"{first if first is not None else 'none'}"
                                         f" ({relu_first if relu_first is not None else 'none'})",
          "verdict": verdict}


REMEDY_NOTE = (f"At the rates where ReLU dies (its mean dead fraction reaches {100 * DYING_THRESHOLD:.0f}%),"
               " each activation's dead fraction, inactive fraction, test accuracy and diverged runs. A"
               f" remedy *prevents* dying there when its dead fraction stays below {100 * PREVENTS_THRESHOLD:.0f}%"
               " and no run diverges; it is *stable* where ReLU is when it diverges at no rate at which"
               " ReLU did not.")


def _remedy_answer(runs: Sequence[Mapping[str, Any]]) -> tuple[list[Answer], Table]:
  rows = [_remedy_row(runs, dataset, optimizer, activation) for dataset, optimizer in _groups(runs)
          for activation in _activations(_select(runs, dataset=dataset, optimizer=optimizer))]
  verdicts: dict[str, list[str]] = {}
  for row in rows:
    verdicts.setdefault(row["activation"], []).append(f"{row['dataset']}/{row['optimizer']}: {row['verdict']}")
  answers = [Answer(f"`{activation}`: " + "; ".join(items) + ".",
                    topic="Does each remedy prevent it, and does it stay stable?")
             for activation, items in verdicts.items() if activation != "relu"]
  return answers, Table("Each remedy at the rates where ReLU dies", pd.DataFrame(rows), note=REMEDY_NOTE)


def _stability_row(runs, dataset: str, optimizer: str, activation: str) -> dict[str, Any]:
  mine = _select(runs, dataset=dataset, optimizer=optimizer, activation=activation)
  stable = [rate for rate in _rates(mine) if not any(r.get("diverged") for r in _select(mine, learning_rate=rate))]
  first = _first_divergence(mine)
  best = None
  for rate in _rates(mine):
    mean, _ = _estimate(_select(mine, learning_rate=rate), "test_accuracy")
    if not math.isnan(mean) and (best is None or mean > best[0]):
      best = (mean, rate)
  return {"dataset": dataset, "optimizer": optimizer, "activation": activation,
          "diverged runs": f"{sum(bool(r.get('diverged')) for r in mine)}/{len(mine)}",
          "largest rate, none diverged": f"{max(stable):g}" if stable else "none",
          "lowest rate, some diverged": f"{first:g}" if first is not None else "none",
          "best test accuracy": "-" if best is None else _pct("test_accuracy", _select(mine, learning_rate=best[1])),
          "at lr": "-" if best is None else f"{best[1]:g}"}


def _stability_answer(runs: Sequence[Mapping[str, Any]]) -> Table:
  """Per (dataset, optimizer, activation): diverged runs, the stable range, the best accuracy."""
  rows = [_stability_row(runs, dataset, optimizer, activation) for dataset, optimizer in _groups(runs)
          for activation in _activations(_select(runs, dataset=dataset, optimizer=optimizer))]
  return Table("Which activations stay stable, and the best each reaches", pd.DataFrame(rows),
               note="Per activation: its diverged runs over all rates, the largest rate with no diverged run,"
               " the lowest rate with one, and its best mean test accuracy over the rates (non-diverged runs).")


def _held(runs: Sequence[Mapping[str, Any]]) -> list[str]:  # sentences; analyse makes them answers
  """Plain statements, each computed: the claim, each remedy, each surrogate's stability."""
  lines = []
  worst = max((_estimate(_select(runs, dataset=d, optimizer=o, activation="relu",
                                 learning_rate=rate), "dead_fraction")[0]
               for d, o in _groups(runs)
               for rate in _rates(_select(runs, dataset=d, optimizer=o, activation="relu"))),
              key=lambda v: -1 if math.isnan(v) else v, default=math.nan)
  lines.append(
      f"- CS231n's \"as much as 40% of your network can be dead\" at a high learning rate:"
      f" {'held' if worst >= 0.395 else 'did not hold'} (worst ReLU mean dead fraction"
      f" {100 * worst:.1f}%)."
  )
  optimizers = list(dict.fromkeys(o for _, o in _groups(runs)))
  totals = []
  for activation in _activations(runs):
    counts = []
    for optimizer in optimizers:
      mine = _select(runs, optimizer=optimizer, activation=activation)
      counts.append(f"{sum(bool(r.get('diverged')) for r in mine)}/{len(mine)} with {optimizer}")
    totals.append(f"`{activation}` {', '.join(counts)}")
  lines.append("- Diverged runs over every dataset and rate: " + "; ".join(totals) + ".")
  for activation in _activations(runs):
    if activation == "relu":
      continue
    prevented, failed, unstable = [], [], []
    for dataset, optimizer in _groups(runs):
      dying = _dying_rates(runs, dataset, optimizer)
      group = _select(runs, dataset=dataset, optimizer=optimizer)
      mine = [r for r in _select(group, activation=activation) if float(r["learning_rate"]) in dying]
      relu = [r for r in _select(group, activation="relu") if float(r["learning_rate"]) in dying]
      if not dying or not mine:
        continue
      label = f"{dataset}/{optimizer}"
      diverged = sum(bool(r.get("diverged")) for r in mine)
      relu_diverged = sum(bool(r.get("diverged")) for r in relu)
      dead = _estimate(mine, "dead_fraction")[0]
      if diverged > relu_diverged:
        unstable.append(f"{label} ({diverged}/{len(mine)} diverged, ReLU {relu_diverged}/{len(relu)})")
      elif diverged == 0 and not math.isnan(dead) and dead < PREVENTS_THRESHOLD:
        prevented.append(label)
      else:
        failed.append(f"{label} ({100 * dead:.1f}% dead)" if not math.isnan(dead) else label)
    text = f"- `{activation}` at the rates where ReLU dies: "
    pieces = []
    if prevented:
      pieces.append("prevents dying on " + ", ".join(prevented))
    if failed:
      pieces.append("does not prevent it on " + ", ".join(failed))
    if unstable:
      pieces.append("diverges more often than ReLU on " + ", ".join(unstable))
    lines.append(text + ("; ".join(pieces) or "no setting where ReLU dies") + ".")
  return lines


def _layer_series(
    layers: Sequence[Mapping[str, Any]], run_id: str
) -> dict[int, list[Mapping[str, Any]]]:
  series: dict[int, list[Mapping[str, Any]]] = {}
  for row in layers:
    if row["run_id"] == run_id:
      series.setdefault(int(row["layer"]), []).append(row)
  for rows in series.values():
    rows.sort(key=lambda row: row["step"])
  return series


def _until(rows: Sequence[Mapping[str, Any]], step: int | None) -> list[Mapping[str, Any]]:
  """Rows up to ``step`` whose weight norm is finite (a diverged run's last healthy state)."""
  return [row for row in rows if (step is None or row["step"] <= step)
          and isinstance(row.get("weight_norm"), float) and math.isfinite(row["weight_norm"])]


def diagnose(run: Mapping[str, Any], layers: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
  """Per layer, how a run's weights and pre-activations moved up to its divergence.

  Returns the layer whose weight norm grew most (``layer``), its growth factor
  from step 0 to the last evaluation at or before the divergence
  (``growth``), the weight-norm doubling time in steps (``doubling_steps``),
  that layer's mean pre-activation and inactive fraction then, the most
  negative mean pre-activation of any hidden layer, and the step; ``None``
  without layer rows.
  """
  series = _layer_series(layers, run["run_id"])
  step = run.get("diverged_step") if run.get("diverged") else None
  found = []
  for layer, rows in series.items():
    rows = _until(rows, step)
    if len(rows) < 2:
      continue
    first, last = rows[0], rows[-1]
    growth = last["weight_norm"] / first["weight_norm"]
    found.append((growth, layer, first, last))
  if not found:
    return None
  growth, layer, first, last = max(found, key=lambda item: item[0])
  pre = [rows_last["preactivation_mean"] for _, _, _, rows_last in found
         if rows_last.get("preactivation_mean") is not None]
  elapsed = last["step"] - first["step"]
  return {
      "layer": layer,
      "growth": growth,
      "doubling_steps": elapsed * math.log(2) / math.log(growth) if growth > 1 else math.inf,
      "preactivation_mean": last.get("preactivation_mean"),
      "inactive_fraction": last.get("inactive_fraction"),
      "lowest_preactivation_mean": min(pre) if pre else None,
      "step": last["step"],
      "num_layers": len(series),
  }


def _median(values: Sequence[float]) -> float:
  ordered = sorted(values)
  if not ordered:
    return math.nan
  middle = len(ordered) // 2
  return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _divergence_row(runs, layers, key, rows) -> dict[str, Any]:
  dataset, optimizer, activation, rate = key
  found = [(row, d) for row, d in ((row, diagnose(row, layers)) for row in rows) if d is not None]
  total = len(_select(runs, dataset=dataset, optimizer=optimizer, activation=activation, learning_rate=rate))
  row = {"dataset": dataset, "optimizer": optimizer, "activation": activation, "lr": rate,
         "diverged": f"{len(rows)}/{total}",
         "median step": f"{_median([r['diverged_step'] for r in rows if r.get('diverged_step') is not None]):.0f}"}
  if not found:
    return row | dict.fromkeys(DIVERGENCE_COLUMNS, "-")
  layer = max({d["layer"] for _, d in found}, key=[d["layer"] for _, d in found].count)
  relu_growth, relu_lowest = _relu_reference(runs, layers, dataset, optimizer, rate, found, layer)
  values = (f"{layer}{' (output)' if layer == found[0][1]['num_layers'] else ''}",
            f"{_median([d['growth'] for _, d in found]):.3g}x",
            f"{_median([d['doubling_steps'] for _, d in found]):.0f}",
            _number(_median([d["preactivation_mean"] for _, d in found if d["preactivation_mean"] is not None])),
            _number(_median([d["lowest_preactivation_mean"] for _, d in found
                             if d["lowest_preactivation_mean"] is not None])),
            _number(relu_growth, "x"), _number(relu_lowest))
  return row | dict(zip(DIVERGENCE_COLUMNS, values))


DIVERGENCE_COLUMNS = ("layer growing most", "weight-norm growth", "doubling (steps)", "its mean pre-activation",
                      "lowest hidden mean pre-activation", "ReLU's growth, same layer",
                      "ReLU's lowest mean pre-activation")
DIVERGENCE_NOTE = (
    "Per (dataset, optimizer, activation, learning rate): the median step of divergence; the layer whose"
    " kernel norm grew most from step 0 to the evaluation that found the divergence, or the last one before a"
    " non-finite step (the output layer is the last; '-' when the run blew up before the first evaluation"
    " after step 0), its median growth factor and weight-norm doubling time; the median mean pre-activation"
    " of that layer and the most negative mean pre-activation of any hidden layer then; and, for comparison,"
    " the same numbers for the ReLU runs of the same seeds and rate at the same step (if they did not diverge).")


def _divergence_answer(runs, layers) -> tuple[list[Answer], list[Table]]:
  topic = "Which runs diverge, and why"
  diverged = [row for row in runs if row.get("diverged")]
  if not diverged:
    return [Answer("No run diverged.", topic=topic)], []
  keyed: dict[tuple, list[Mapping[str, Any]]] = {}
  for row in diverged:
    keyed.setdefault((row["dataset"], row["optimizer"], str(row["activation"]), float(row["learning_rate"])),
                     []).append(row)
  table = pd.DataFrame([_divergence_row(runs, layers, key, rows) for key, rows in keyed.items()])
  answers = [Answer(f"{len(diverged)} of {len(runs)} runs diverged.", topic=topic)]
  answers += [Answer(text, topic=topic) for text in _divergence_reading(runs, keyed, layers)]
  return answers, [Table("Diverged runs: how their weights and pre-activations moved", table, note=DIVERGENCE_NOTE)]


def _number(value: float, suffix: str = "") -> str:
  return "-" if value is None or math.isnan(value) else f"{value:.3g}{suffix}"


def _relu_reference(runs, layers, dataset, optimizer, rate, found, layer) -> tuple[float, float]:
  """ReLU's weight-norm growth of ``layer`` and lowest hidden mean pre-activation, same seeds and steps."""
  growths, lowest = [], []
  for row, d in found:
    relu = _select(runs, dataset=dataset, optimizer=optimizer, activation="relu",
                   learning_rate=rate, seed=row["seed"])
    if not relu or relu[0].get("diverged"):
      continue
    series = _layer_series(layers, relu[0]["run_id"])
    rows = _until(series.get(layer, []), d["step"])
    if len(rows) >= 2:
      growths.append(rows[-1]["weight_norm"] / rows[0]["weight_norm"])
    pre = [_until(s, d["step"])[-1].get("preactivation_mean") for s in series.values() if _until(s, d["step"])]
    pre = [value for value in pre if value is not None]
    if pre:
      lowest.append(min(pre))
  return _median(growths), _median(lowest)


def _diagnosed_text(runs, layers, key, rows, found, own_true: bool, runaway: list) -> str:
  dataset, optimizer, activation, rate = key
  lowest = _median([d["lowest_preactivation_mean"] for d in found if d["lowest_preactivation_mean"] is not None])
  _, relu_lowest = _relu_reference(runs, layers, dataset, optimizer, rate,
                                   [(row, diagnose(row, layers)) for row in rows
                                    if diagnose(row, layers) is not None], found[0]["layer"])
  text = (f" Before diverging, its kernels grew most in layer {found[0]['layer']}"
          f" (median x{_median([d['growth'] for d in found]):.3g}, doubling every"
          f" {_median([d['doubling_steps'] for d in found]):.0f} steps) and its lowest mean"
          f" hidden pre-activation was {lowest:.3g} (ReLU's, same seeds and step: {_number(relu_lowest)}).")
  if own_true:
    return text + " Its backward is a true gradient: an ordinary blow-up of a too-large step."
  if not math.isnan(relu_lowest) and lowest < 10 * min(relu_lowest, -1.0):
    runaway.append((dataset, optimizer, rate))
    return text + " Its pre-activations ran away below zero, far past ReLU's: see below."
  return text


def _undiagnosed_text(runs, key, rows, own_true: bool) -> str:
  dataset, optimizer, activation, rate = key
  steps = _median([r["diverged_step"] for r in rows if r.get("diverged_step") is not None])
  also = sorted({str(r["activation"]) for r in _select(runs, dataset=dataset, optimizer=optimizer, learning_rate=rate)
                 if r.get("diverged") and _true_gradient(_name(r))} - {activation})
  return (f" It blew up within {steps:.0f} steps (median), before the first evaluation after step 0, so there"
          " is no per-layer record of it; "
          + ("its backward is a true gradient: an ordinary blow-up of a too-large step." if own_true
             else f"activations with a true gradient diverged at this setting too ({', '.join(f'`{a}`' for a in also)}):"
             " a step too large for this optimizer, not a failure special to the surrogate." if also else
             "no activation with a true gradient diverged at this setting."))


RUNAWAY = (
    "), lowest mean pre-activation more than 10 times ReLU's): a surrogate's gradient below zero does not"
    " change the forward pass, so while a unit is inactive nothing checks the update it causes. Where the"
    " pre-activations of inactive units are driven ever more negative and the kernels feeding them grow"
    " geometrically (the table of diverged runs), the update is running away along a direction the loss cannot"
    " see, until the active units it shares weights with blow the loss up. A true gradient (LeakyReLU, ELU:"
    " their rows in the stability table) feels those units in the forward pass and is pulled back.")


def _divergence_reading(runs, keyed, layers) -> list[str]:
  """Sentences on the activations that diverge where ReLU does not."""
  lines, runaway = [], []
  for key, rows in keyed.items():
    dataset, optimizer, activation, rate = key
    relu = _select(runs, dataset=dataset, optimizer=optimizer, activation="relu", learning_rate=rate)
    if activation == "relu" or not relu or any(row.get("diverged") for row in relu):
      continue
    found = [d for d in (diagnose(row, layers) for row in rows) if d is not None and d["step"] > 0]
    total = len(_select(runs, dataset=dataset, optimizer=optimizer, activation=activation, learning_rate=rate))
    text = (f"{dataset}, {optimizer}, lr {rate:g}: `{activation}` diverged in {len(rows)} of {total} runs where"
            f" ReLU merely lost {100 * _estimate(relu, 'dead_fraction')[0]:.1f}% of its units.")
    own_true = _true_gradient(_name(rows[0]))
    text += (_diagnosed_text(runs, layers, key, rows, found, own_true, runaway) if found
             else _undiagnosed_text(runs, key, rows, own_true))
    lines.append(text)
  if runaway:
    lines.append("Why, where the per-layer record shows a surrogate's pre-activations running away ("
                 + "; ".join(f"{d}, {o}, lr {r:g}" for d, o, r in dict.fromkeys(runaway)) + RUNAWAY)
  return lines


def _true_gradient(name: str) -> bool:
  """Whether a registry name's backward is its true derivative (not a surrogate)."""
  import activations

  try:
    return activations.registry.kind(name) == "true derivative"
  except (KeyError, ValueError):
    return False


def _final_layer_rows(runs, layers, *, activation: str) -> list[dict[str, Any]]:
  """Per run of ``activation`` and hidden layer: the final evaluation's layer metrics."""
  wanted = {row["run_id"]: row for row in runs if str(row["activation"]) == activation}
  last: dict[tuple[str, int], Mapping[str, Any]] = {}
  for row in layers:
    run = wanted.get(row["run_id"])
    if run is None or row.get("dead_fraction") is None:
      continue
    key = (row["run_id"], int(row["layer"]))
    if key not in last or row["step"] > last[key]["step"]:
      last[key] = row
  rows = []
  for (run_id, layer), row in last.items():
    run = wanted[run_id]
    rows.append({"dataset": run["dataset"], "optimizer": run["optimizer"],
                 "learning_rate": run["learning_rate"], "layer": layer,
                 "diverged": run.get("diverged"), "dead_fraction": row["dead_fraction"],
                 "preactivation_mean": row.get("preactivation_mean")})
  rows.sort(key=lambda r: (r["dataset"], r["optimizer"], r["learning_rate"], r["layer"]))
  return rows


# --- the plots -----------------------------------------------------------------


def write_plots(
    folder: str | os.PathLike,
    runs: Sequence[Mapping[str, Any]],
    layers: Sequence[Mapping[str, Any]],
) -> list[pathlib.Path]:
  """Writes the study's PNG plots into ``folder``; returns their paths."""
  groups = _groups(runs)
  written = [
      plots.save_figure(_against_rate(runs, groups, "dead_fraction"), folder, DEAD_VS_RATE_PLOT),
      plots.save_figure(_against_rate(runs, groups, "test_accuracy"), folder, ACCURACY_VS_RATE_PLOT),
  ]
  focus = divergence_focus(runs)
  if focus is not None:
    written.append(plots.save_figure(_divergence_figure(runs, layers, focus), folder, DIVERGENCE_PLOT))
  return written


def _against_rate(runs, groups, column: str) -> Any:
  datasets = list(dict.fromkeys(dataset for dataset, _ in groups))
  optimizers = list(dict.fromkeys(optimizer for _, optimizer in groups))
  figure = plots.new_figure(4.2 * len(optimizers), 3.2 * len(datasets))
  axes = figure.subplots(len(datasets), len(optimizers), squeeze=False)
  from matplotlib import colormaps

  names = _activations(runs)
  palette = colormaps["tab10"]
  for (dataset, optimizer) in groups:
    axis = axes[datasets.index(dataset)][optimizers.index(optimizer)]
    group = _select(runs, dataset=dataset, optimizer=optimizer)
    for index, activation in enumerate(names):
      mine = _select(group, activation=activation)
      rates, means, lows, highs, crosses = [], [], [], [], []
      for rate in _rates(mine):
        rows = _select(mine, learning_rate=rate)
        mean, half = _estimate(rows, column)
        if any(row.get("diverged") for row in rows):
          crosses.append(rate)
        if math.isnan(mean):
          continue
        half = 0.0 if math.isnan(half) else half
        rates.append(rate)
        means.append(100 * mean)
        lows.append(100 * max(0.0, mean - half))
        highs.append(100 * min(1.0, mean + half))
      color = palette(index % palette.N)
      axis.plot(rates, means, marker="o", color=color, label=activation)
      axis.fill_between(rates, lows, highs, color=color, alpha=0.15, linewidth=0)
      if crosses:
        axis.scatter(crosses, [102 + 2 * index] * len(crosses), marker="x", color=color)
    axis.set_xscale("log")
    axis.set_ylim(-2, 104 + 2 * len(names))
    axis.set_title(f"{dataset}, {optimizer}")
    axis.set_xlabel("learning rate")
    axis.set_ylabel(f"final {column.replace('_', ' ')} (%)")
    axis.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  return figure


def divergence_focus(runs: Sequence[Mapping[str, Any]]) -> tuple[str, str, float] | None:
  """The (dataset, optimizer, rate) to show: the lowest rate where a non-ReLU run diverged and ReLU did not.

  Falls back to the lowest rate with any diverged run; ``None`` if none diverged.
  """
  candidates = []
  for row in runs:
    if not row.get("diverged"):
      continue
    key = (row["dataset"], row["optimizer"], float(row["learning_rate"]))
    relu = _select(runs, dataset=key[0], optimizer=key[1], activation="relu", learning_rate=key[2])
    relu_stable = bool(relu) and not any(r.get("diverged") for r in relu)
    candidates.append((not (relu_stable and _name(row) != "relu"), key[2], key))
  return min(candidates)[2] if candidates else None


def _divergence_figure(runs, layers, focus) -> Any:
  dataset, optimizer, rate = focus
  group = _select(runs, dataset=dataset, optimizer=optimizer, learning_rate=rate)
  names = _activations(group)
  num_layers = max((int(row["layer"]) for row in layers), default=1)
  hidden = num_layers - 1
  figure = plots.new_figure(3.6 * num_layers, 8.5)
  axes = figure.subplots(3, num_layers, squeeze=False)
  from matplotlib import colormaps

  palette = colormaps["tab10"]
  all_names = _activations(runs)
  for row in group:
    color = palette(all_names.index(str(row["activation"])) % palette.N)
    series = _layer_series(layers, row["run_id"])
    stop = row.get("diverged_step") if row.get("diverged") else None
    style = "--" if row.get("diverged") else "-"
    label = f"{row['activation']}{' (diverged)' if row.get('diverged') else ''}"
    for layer, rows in series.items():
      rows = _until(rows, stop)
      steps = [r["step"] for r in rows]
      axes[0][layer - 1].plot(steps, [r["weight_norm"] for r in rows], style, color=color,
                              label=label if row["seed"] == 0 else None)
      axes[2][layer - 1].plot(steps, [r.get("max_abs_weight") for r in rows], style, color=color)
      if layer <= hidden:
        axes[1][layer - 1].plot(steps, [r.get("preactivation_mean") for r in rows], style,
                                color=color)
  for layer in range(1, num_layers + 1):
    axes[0][layer - 1].set_yscale("log")
    axes[0][layer - 1].set_title(f"layer {layer}{' (output)' if layer == num_layers else ''}")
    axes[0][layer - 1].set_ylabel("weight norm")
    axes[2][layer - 1].set_xlabel("step")
    axes[2][layer - 1].set_yscale("log")
    axes[2][layer - 1].set_ylabel("largest |weight|")
    if layer <= hidden:
      axes[1][layer - 1].set_yscale("symlog")
      axes[1][layer - 1].set_ylabel("mean pre-activation")
    else:
      axes[1][layer - 1].axis("off")
    for axis in (axes[0][layer - 1], axes[1][layer - 1], axes[2][layer - 1]):
      axis.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  del names
  figure.suptitle(f"{dataset}, {optimizer}, lr {rate:g}: one line per run"
                  " (dashed: diverged, cut at its divergence)")
  return figure


# --- the findings ----------------------------------------------------------------

NOTES = (
    "Claim 1 of the research brief (CS231n: with too high a learning rate \"as much as 40% of your network can"
    " be dead\"). A unit is dead when the activation's backward derivative is 0 on every training example (it"
    " cannot learn), inactive when its pre-activation is <= 0 on every training example; they coincide for"
    " ReLU. Fractions are means over the hidden layers at the end of training; intervals are 95% Student t"
    " over seeds; diverged runs are counted, never averaged.",
    "PReLU is not compared: the engine's MLP has no learned-slope activation.",
    f"{DEAD_VS_RATE_PLOT}: final dead fraction (mean, 95% band) against the learning rate, per dataset (rows)"
    f" and optimizer (columns); a cross on top marks a rate where runs of that activation diverged."
    f" {ACCURACY_VS_RATE_PLOT}: the same for test accuracy. {DIVERGENCE_PLOT}: where runs diverged, per-layer"
    " weight norm and mean pre-activation against the step at the focus setting named in its title.",
)


def _metric_tables(found: tables.Tables, runs, layers) -> list[Table]:
  built = [Table(f"{dataset}, {optimizer}: final metrics per activation and learning rate",
                 tables.grouped_estimates(
                     found.runs[(found.runs["dataset"] == dataset) & (found.runs["optimizer"] == optimizer)],
                     ["activation", "learning_rate"],
                     ["dead_fraction", "inactive_fraction", "test_accuracy", "train_loss"]))
           for dataset, optimizer in _groups(runs)]
  per_layer = _final_layer_rows(runs, layers, activation="relu")
  if per_layer:
    built.append(Table("ReLU's dead fraction per layer (layer 1 nearest the input), end of training",
                       tables.grouped_estimates(pd.DataFrame(per_layer),
                                                ["dataset", "optimizer", "learning_rate", "layer"],
                                                ["dead_fraction", "preactivation_mean"])))
  return built


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """How much ReLU dies per rate, whether each remedy prevents it, which runs diverge and why."""
  del settings
  runs, layers = tables.records(found.runs), tables.records(found.layers)
  has_relu = "relu" in _activations(runs)
  remedy_answers, remedy_table = _remedy_answer(runs) if has_relu else ([], None)
  divergence_answers, divergence_tables = _divergence_answer(runs, layers)
  held = [Answer(line.removeprefix("- "), topic="What held and what did not", headline=True)
          for line in _held(runs)] if has_relu else []
  return Findings(
      question="dying units against the learning rate, and the remedies",
      answers=(*held, *(_relu_answer(runs) if has_relu else []), *remedy_answers, *divergence_answers),
      tables=(*([remedy_table] if remedy_table is not None else []), _stability_answer(runs),
              *divergence_tables, *_metric_tables(found, runs, layers)),
      notes=NOTES,
      plots=(DEAD_VS_RATE_PLOT, ACCURACY_VS_RATE_PLOT) + ((DIVERGENCE_PLOT,) if divergence_focus(runs) else ()),
  )


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  del settings
  write_plots(folder, tables.records(found.runs), tables.records(found.layers))


STUDY = Study(
    name="dying",
    question="Dying units against the learning rate, per dataset and optimizer, with remedies.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("dataset", "optimizer", "learning_rates"),
)
