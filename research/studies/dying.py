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
leaky_relu(0.01), necro_relu(0.1), elu, windowed_necro_relu and revival_relu
(the surrogates designed from this study's measurements), 6 Adam and 7 SGD
learning rates, 3 seeds, MLP 100-100, 1500 steps: 468 runs. On 2 busy CPU cores it took 796 s
with a cold compilation cache and 557 s with a warm one.

Command::

  python -m research dying --out results/dying
  python -m research dying --datasets digits --optimizers sgd --base.steps 200 --base.seeds 2
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

import activations
from research import config as config_lib
from research import divergence, experiment, metrics, paired, plots, tables
from research.config import Config, Floats, Specs
from research.findings import Answer, Estimate, Findings, Table
from research.study import Study

# Per optimizer, from stable to divergent (measured on MNIST-1D and MNIST-5k,
# MLP 100-100: ReLU loses units at the top rates and some runs diverge).
DEFAULT_LEARNING_RATES: dict[str, tuple[float, ...]] = {
    "adam": (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    "adamw": (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    "sgd": (1e-2, 1e-1, 0.3, 0.6, 1.0, 2.0, 3.0),
    "momentum": (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
}
ACTIVATIONS = ("relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)", "elu",
               "windowed_necro_relu(negative_slope=0.1,window=3.0)",
               "revival_relu(negative_slope=0.3)")  # no PReLU: no learned slope in the MLP
DYING_THRESHOLD = 0.10  # ReLU "dies" at a rate where its mean dead fraction reaches this
PREVENTS_THRESHOLD = 0.02  # a remedy "prevents" dying where its dead fraction stays below this
CS231N = 0.395  # "as much as 40%": reached at 39.5% and above
DEAD_VS_RATE_PLOT, ACCURACY_VS_RATE_PLOT, DIVERGENCE_PLOT = (
    "dead_vs_learning_rate.png", "accuracy_vs_learning_rate.png", "divergence.png")
GROUP, CELL = ["dataset", "optimizer"], ["dataset", "optimizer", "activation"]
SETTING = [*CELL, "learning_rate"]
DEAD, INACTIVE, ACCURACY = (metrics.describe(column).label for column in (
    "dead_fraction", "inactive_fraction", "test_accuracy"))


@dataclasses.dataclass(frozen=True)
class Settings:
  """Dying units against the learning rate: per dataset and optimizer, every activation."""

  datasets: Specs = ("mnist1d", "mnist5k")  # comma-separated research.data specs, one part each
  optimizers: Specs = ("adam", "sgd")  # comma-separated optax optimizers (sgd, momentum, adam, adamw), one part each
  rates: Floats = ()  # swept learning rates for every optimizer; empty: each optimizer's defaults (adam 1e-4..1e-1, sgd 0.01..3)
  base: Config = Config(  # the engine's settings: MLP 100-100, 1500 steps, evaluated every 100; relu is the baseline activation
      activations=ACTIVATIONS, seeds=3, steps=1500, eval_every=100)


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(optimizers=("nesterov",)))
    Traceback (most recent call last):
    ...
    ValueError: optimizers: 'nesterov' has no default learning rates (adam, adamw, sgd, momentum have); set --rates.
  """
  for field in ("datasets", "optimizers"):
    values = getattr(settings, field)
    if not values or len(set(values)) != len(values):
      raise ValueError(f"{field} must name one or more distinct values, got {values!r}.")
  for optimizer in settings.optimizers:
    learning_rates(settings, optimizer)


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
    raise ValueError(f"optimizers: {optimizer!r} has no default learning rates"
                     f" ({', '.join(DEFAULT_LEARNING_RATES)} have); set --rates.")
  return DEFAULT_LEARNING_RATES[optimizer]


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per (dataset, optimizer), keyed by both.

  Examples:
    >>> [part.keys for part in parts(Settings(datasets=("digits",)))]
    [{'dataset': 'digits', 'optimizer': 'adam'}, {'dataset': 'digits', 'optimizer': 'sgd'}]
  """
  return [experiment.Part({"dataset": dataset, "optimizer": optimizer}, dataclasses.replace(
      settings.base, dataset=dataset, optimizer=optimizer,
      learning_rates=learning_rates(settings, optimizer)))
      for dataset in settings.datasets for optimizer in settings.optimizers]


# --- the analysis ---------------------------------------------------------------


_where, _diverged = tables.where, tables.diverged


def _mean(rows: pd.DataFrame, column: str) -> Estimate:
  """The mean over the runs that did not diverge, with its 95% t interval."""
  return Estimate.of_mean(rows.loc[~_diverged(rows), column].tolist(), column)


def _lr(rate: float | None) -> str:
  return "none" if rate is None else f"{rate:g}"


def per_rate(runs: pd.DataFrame) -> pd.DataFrame:
  """Per (dataset, optimizer, activation, rate), rates ascending: runs, diverged and the means."""
  runs = runs.assign(_cell=runs.groupby(CELL, sort=False).ngroup()).sort_values(
      ["_cell", "learning_rate"], kind="stable")
  rated = tables.grouped_estimates(
      runs, SETTING, ["dead_fraction", "inactive_fraction", "test_accuracy", "train_loss"])
  return rated.assign(runs=rated["n"] + rated["diverged"])


def dying_rates(rated: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
  """Per (dataset, optimizer), the rates where ReLU's mean dead fraction reaches :data:`DYING_THRESHOLD`."""
  return {key: [rate for rate, activation, dead in zip(group["learning_rate"], group["activation"], group[DEAD])
                if activation == "relu" and dead.value >= DYING_THRESHOLD]
          for key, group in rated.groupby(GROUP, sort=False)}


def _relu_answers(rated: pd.DataFrame) -> list[Answer]:
  topic, answers, worst = "How much of a ReLU network dies as the learning rate grows", [], None
  for (dataset, optimizer), relu in rated[rated["activation"] == "relu"].groupby(GROUP, sort=False):
    pieces = [f"lr {rate:g}: {{}}" + (f" ({lost} of {total} diverged)" if lost else "")
              for rate, lost, total in zip(relu["learning_rate"], relu["diverged"], relu["runs"])]
    estimates, text = list(relu[DEAD]), f"{dataset}, {optimizer}: " + "; ".join(pieces) + "."
    dead = relu[DEAD].map(lambda estimate: estimate.value)
    if dead.notna().any():
      top = relu.loc[dead.idxmax(), DEAD]
      worst = top if worst is None or top.value > worst.value else worst
      text += (f" From the lowest rate to the worst one (lr {relu.at[dead.idxmax(), 'learning_rate']:g})"
               " the dead fraction goes from {} to {}" + (
                   ", beyond CS231n's 40%." if top.value > 0.4 else
                   ", reaching CS231n's 40%." if top.value >= CS231N else "."))
      estimates += [relu[DEAD].iloc[0], top]
    answers.append(Answer(text, tuple(estimates), topic=topic))
  worst = worst or Estimate(math.nan, kind="percent")
  held = worst.value >= CS231N
  answers.append(Answer(
      "CS231n's \"as much as 40% of your network can be dead\" at a high learning rate: the largest"
      " mean dead fraction of ReLU over every dataset and optimizer is {}"
      + ("." if held else ", so 40% was not reached here."), (worst,),
      "held" if held else "did not hold", topic, headline=True))
  return answers


def _remedy_verdict(dying: Sequence[float], activation: str, diverged: int, dead: float,
                    first: float | None, relu_first: float | None) -> str:
  verdict = ("ReLU does not die here" if not dying else "baseline" if activation == "relu" else
             "prevents" if diverged == 0 and dead < PREVENTS_THRESHOLD else
             "diverges instead" if diverged else "does not prevent")
  if first is not None and (relu_first is None or first < relu_first):
    verdict += (f" (from lr {first:g}; ReLU does not diverge there)" if verdict == "diverges instead"
                else f"; diverges from lr {first:g}, where ReLU does not")
  return verdict


def remedies(runs: pd.DataFrame, dying: Mapping[tuple[str, str], list[float]]) -> pd.DataFrame:
  """Per (dataset, optimizer, activation): its runs at the rates where ReLU dies, and the verdict."""
  firsts = runs[_diverged(runs)].groupby(CELL)["learning_rate"].min().to_dict()
  rows = []
  for (dataset, optimizer, activation), mine in runs.groupby(CELL, sort=False):
    rates = dying[(dataset, optimizer)]
    at = mine[mine["learning_rate"].isin(rates)]
    first, relu_first = firsts.get((dataset, optimizer, activation)), firsts.get((dataset, optimizer, "relu"))
    diverged, dead = int(_diverged(at).sum()), _mean(at, "dead_fraction")
    rows.append({
        "dataset": dataset, "optimizer": optimizer, "activation": activation,
        "ReLU dies at lr": ", ".join(f"{rate:g}" for rate in rates) or "-", "runs": len(at),
        "diverged": diverged, DEAD: dead, INACTIVE: _mean(at, "inactive_fraction"),
        ACCURACY: _mean(at, "test_accuracy"),
        "first diverging lr (ReLU's)": f"{_lr(first)} ({_lr(relu_first)})",
        "verdict": _remedy_verdict(rates, activation, diverged, dead.value, first, relu_first)})
  return pd.DataFrame(rows)


def _remedy_answers(remedy: pd.DataFrame) -> list[Answer]:
  return [Answer(f"`{activation}`: " + "; ".join(
      f"{d}/{o}: {v}" for d, o, v in zip(rows["dataset"], rows["optimizer"], rows["verdict"])) + ".",
      topic="Does each remedy prevent it, and does it stay stable?")
      for activation, rows in remedy.groupby("activation", sort=False) if activation != "relu"]


def _held_answer(runs: pd.DataFrame, dying: Mapping[tuple[str, str], list[float]],
                 activation: str) -> Answer:
  """Where ``activation`` prevents dying, fails to, or diverges more often than ReLU."""
  found: dict[str, list[tuple[str, Estimate | None]]] = {
      "prevents dying on ": [], "does not prevent it on ": [], "diverges more often than ReLU on ": []}
  prevents, fails, unstable = found.values()
  for (dataset, optimizer), rates in dying.items():
    at = _where(runs, dataset=dataset, optimizer=optimizer)
    at = at[at["learning_rate"].isin(rates)]
    mine, relu = _where(at, activation=activation), _where(at, activation="relu")
    if mine.empty:
      continue
    label, lost, relu_lost = f"{dataset}/{optimizer}", _diverged(mine).sum(), _diverged(relu).sum()
    dead = _mean(mine, "dead_fraction")
    if lost > relu_lost:
      unstable.append((f"{label} ({lost}/{len(mine)} diverged, ReLU {relu_lost}/{len(relu)})", None))
    elif lost == 0 and dead.value < PREVENTS_THRESHOLD:
      prevents.append((f"{label} ({{}} dead)", dead))
    else:
      fails.append((label if math.isnan(dead.value) else f"{label} ({{}} dead)", dead))
  text = "; ".join(head + ", ".join(t for t, _ in items) for head, items in found.items() if items)
  verdict = ("held" if prevents and not (fails or unstable) else
             "did not hold" if not prevents and (fails or unstable) else "")
  return Answer(f"`{activation}` at the rates where ReLU dies: {text or 'no setting where ReLU dies'}.",
                tuple(e for items in found.values() for t, e in items if "{}" in t), verdict,
                "What held and what did not", headline=True)


BASELINES = ("relu", "leaky_relu")  # every remedy's accuracy is paired against these (registry names)
AS_ACCURATE = "Is each remedy as accurate as relu and leaky_relu where ReLU dies?"


def accuracy_pairs(runs: pd.DataFrame, dying: Mapping[tuple[str, str], list[float]]) -> pd.DataFrame:
  """Each activation minus relu and minus leaky_relu in test accuracy at the rates where ReLU dies.

  Paired by seed and rate, pooled over those rates (``learning_rate`` is
  ``"pooled"``) and at each rate alone. The baseline is the first activation
  run under each registry name; diverged runs leave their pairs.
  """
  at = pd.concat([tables.where(runs, dataset=d, optimizer=o).pipe(
      lambda rows, rates=rates: rows[rows["learning_rate"].isin(rates)])
      for (d, o), rates in dying.items()] or [runs.iloc[:0]])
  found = []
  for baseline in BASELINES:
    named = at[at["name"] == baseline]
    if named.empty:
      continue
    spec = named["activation"].iloc[0]
    keyed = at.assign(name=at["activation"])  # the baseline by its spec: one row per seed
    pooled = paired.pooled_differences(keyed, spec, "test_accuracy", GROUP, ["learning_rate"])
    each = paired.paired_differences(keyed, spec, "test_accuracy", [*GROUP, "learning_rate"])
    found += [pooled.assign(learning_rate="pooled", baseline=baseline),
              each.assign(baseline=baseline)]
  if not found:
    return pd.DataFrame()
  rows = pd.concat(found, ignore_index=True)
  return rows.assign(name=rows["activation"].map(dict(zip(runs["activation"], runs["name"]))))


def _pairs_frame(pairs: pd.DataFrame) -> pd.DataFrame:
  """One row per (dataset, optimizer, rate, activation): its difference from each baseline."""
  rows = {}
  for _, pair in pairs.iterrows():
    key = (pair["dataset"], pair["optimizer"], str(pair["learning_rate"]), pair["activation"])
    row = rows.setdefault(key, dict(zip(["dataset", "optimizer", "learning rate", "activation"], key),
                                    diverged=int(pair["diverged"])))
    row[f"minus {pair['baseline']}"] = paired.difference(pair)
    row[f"wins vs {pair['baseline']}"] = f"{pair['wins']}/{pair['pairs']}"
  return pd.DataFrame(list(rows.values()))


def _accuracy_answers(pairs: pd.DataFrame) -> list[Answer]:
  pooled = pairs[(pairs["learning_rate"].astype(str) == "pooled") & ~pairs["name"].isin(BASELINES)]
  answers = []
  for activation, mine in pooled.groupby("activation", sort=False):
    parts, estimates = [], []
    for (dataset, optimizer), rows in mine.groupby(GROUP, sort=False):
      against = [f"minus {b} {{}}" for b in rows["baseline"]]
      lost = int(rows["diverged"].iloc[0])
      parts.append(f"{dataset}/{optimizer} " + ", ".join(against)
                   + (f" ({lost} diverged run{'s' * (lost > 1)} left out)" if lost else ""))
      estimates += [paired.difference(row) for _, row in rows.iterrows()]
    verdicts = [paired.verdict(row) for _, row in mine.iterrows()]
    verdict = ("held" if all(v in ("beats", "ties with") for v in verdicts)
               and not mine["diverged"].any() else "did not hold")
    answers.append(Answer(
        f"`{activation}` at the rates where ReLU dies (paired by seed and rate, pooled over those"
        f" rates; test accuracy): " + "; ".join(parts) + ".", tuple(estimates), verdict,
        AS_ACCURATE, headline=activation.startswith("revival_relu")))
  return answers


def _totals_answer(runs: pd.DataFrame) -> Answer:
  counts = runs.assign(lost=_diverged(runs)).groupby(["activation", "optimizer"], sort=False)["lost"]
  lost, total = counts.sum(), counts.size()
  optimizers = list(dict.fromkeys(runs["optimizer"]))
  return Answer("Diverged runs over every dataset and rate: " + "; ".join(
      f"`{a}` " + ", ".join(f"{lost[a, o]}/{total[a, o]} with {o}" for o in optimizers if (a, o) in total)
      for a in dict.fromkeys(runs["activation"])) + ".", topic="What held and what did not")


def stability(rated: pd.DataFrame) -> pd.DataFrame:
  """Per (dataset, optimizer, activation): diverged runs, the stable range, the best accuracy."""
  rows = []
  for (dataset, optimizer, activation), mine in rated.groupby(CELL, sort=False):
    stable, unstable = mine[mine["diverged"] == 0], mine[mine["diverged"] > 0]
    accuracy = mine[ACCURACY].map(lambda estimate: estimate.value)
    best = mine.loc[accuracy.idxmax()] if accuracy.notna().any() else None
    rows.append({
        "dataset": dataset, "optimizer": optimizer, "activation": activation,
        "diverged runs": f"{mine['diverged'].sum()}/{mine['runs'].sum()}",
        "largest rate, none diverged": _lr(stable["learning_rate"].max() if len(stable) else None),
        "lowest rate, some diverged": _lr(unstable["learning_rate"].min() if len(unstable) else None),
        "best test accuracy": None if best is None else best[ACCURACY],
        "at lr": None if best is None else best["learning_rate"]})
  return pd.DataFrame(rows)


def relu_layers(runs: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
  """ReLU's dead fraction and mean pre-activation per hidden layer at the end of training."""
  if "dead_fraction" not in layers:
    return pd.DataFrame()
  relu = runs.loc[runs["activation"] == "relu", ["run_id", "diverged"]]
  rows = layers[layers["dead_fraction"].notna()].merge(relu, on="run_id")
  last = rows.sort_values("step", kind="stable").groupby(["run_id", "layer"]).tail(1)
  by = ["dataset", "optimizer", "learning_rate", "layer"]
  return tables.grouped_estimates(last.sort_values(by, kind="stable"), by,
                                  ["dead_fraction", "preactivation_mean"])


def _diagnoses(runs: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
  """Where runs diverged, how (:func:`research.divergence.diagnoses`), against ReLU's runs."""
  found = divergence.diagnoses(runs, layers, SETTING, reference="relu")
  return found.rename(columns=lambda column: column.replace("relu's", "ReLU's")).rename(
      columns={"learning_rate": "lr"})


def _true_gradient(name: str) -> bool:
  """Whether a registry name's backward is its true derivative (not a surrogate)."""
  try:
    return activations.registry.kind(name) == "true derivative"
  except (KeyError, ValueError):
    return False


TRUE_GRADIENT = "its backward is a true gradient: an ordinary blow-up of a too-large step."


def _reading(runs: pd.DataFrame, found: Mapping[str, Any]) -> tuple[Answer, bool] | None:
  """Why one activation diverged (a row of :func:`diagnoses`) where ReLU did not; and whether it ran away."""
  where = {"dataset": found["dataset"], "optimizer": found["optimizer"], "learning_rate": found["lr"]}
  relu, mine = _where(runs, activation="relu", **where), _where(runs, activation=found["activation"], **where)
  if found["activation"] == "relu" or relu.empty or _diverged(relu).any():
    return None
  own_true, relu_lowest = _true_gradient(mine["name"].iloc[0]), found["ReLU's lowest mean pre-activation"]
  text = (f"{found['dataset']}, {found['optimizer']}, lr {found['lr']:g}: `{found['activation']}`"
          f" diverged in {found['diverged'].replace('/', ' of ')} runs where ReLU merely lost {{}} of its units.")
  runaway = False
  if isinstance(found["layer growing most"], str):
    lowest = found["lowest hidden mean pre-activation"]
    text += (f" Before diverging, its kernels grew most in layer {found['layer growing most']} (median"
             f" x{found['weight-norm growth (x)']:g}, doubling every {found['doubling (steps)']:.0f}"
             f" steps) and its lowest mean hidden pre-activation was {lowest:g} (ReLU's, same seeds"
             f" and step: {'-' if math.isnan(relu_lowest) else f'{relu_lowest:g}'}).")
    runaway = not own_true and not math.isnan(relu_lowest) and lowest < 10 * min(relu_lowest, -1.0)
    text += (" " + TRUE_GRADIENT.capitalize() if own_true else
             " Its pre-activations ran away below zero, far past ReLU's: see below." if runaway else "")
  else:
    others = _where(runs[_diverged(runs)], **where)
    also = sorted({a for a, name in zip(others["activation"], others["name"])
                   if _true_gradient(name)} - {found["activation"]})
    text += (f" It blew up within {found['median step']} steps (median), before the first evaluation"
             " after step 0, so there is no per-layer record of it; " + (
                 TRUE_GRADIENT if own_true else
                 "activations with a true gradient diverged at this setting too"
                 f" ({', '.join(f'`{a}`' for a in also)}): a step too large for this optimizer,"
                 " not a failure special to the surrogate." if also else
                 "no activation with a true gradient diverged at this setting."))
  return Answer(text, (_mean(relu, "dead_fraction"),), topic="Which runs diverge, and why"), runaway


def _divergence_answers(runs: pd.DataFrame, diagnosed: pd.DataFrame) -> list[Answer]:
  topic, lost = "Which runs diverge, and why", int(_diverged(runs).sum())
  if not lost:
    return [Answer("No run diverged.", topic=topic)]
  answers, runaway = [Answer(f"{lost} of {len(runs)} runs diverged.", topic=topic)], []
  for found in diagnosed.to_dict("records"):
    reading = _reading(runs, found)
    if reading is not None:
      answers.append(reading[0])
      runaway += [(found["dataset"], found["optimizer"], found["lr"])] if reading[1] else []
  if runaway:
    answers.append(Answer(
        "Why, where the per-layer record shows a surrogate's pre-activations running away ("
        + "; ".join(f"{d}, {o}, lr {r:g}" for d, o, r in dict.fromkeys(runaway))
        + ", lowest mean pre-activation more than 10 times ReLU's): a surrogate's gradient below"
        " zero does not change the forward pass, so while a unit is inactive nothing checks the"
        " update it causes. Where the pre-activations of inactive units are driven ever more"
        " negative and the kernels feeding them grow geometrically (the divergence table), the"
        " update is running away along a direction the loss cannot see, until the active units"
        " it shares weights with blow the loss up. A true gradient (LeakyReLU, ELU: their rows in"
        " the stability table) feels those units in the forward pass and is pulled back.",
        topic=topic))
  return answers


MECHANISM_NAMES = ("relu", "necro_relu", "windowed_necro_relu", "revival_relu")  # compared per layer


def layer_mechanism(runs: pd.DataFrame, layers: pd.DataFrame,
                    dying: Mapping[tuple[str, str], list[float]]) -> pd.DataFrame:
  """Per layer, at the rates where ReLU dies: the lowest mean pre-activation, kernel growth, dead units.

  Medians over runs of each run's lowest mean pre-activation over training
  and of its kernel norm at its last evaluation over step 0's; the mean of
  the final dead fraction. A diverged run counts up to its last evaluation.
  """
  found = []
  for (dataset, optimizer), rates in dying.items():
    mine = layers[(layers["dataset"] == dataset) & (layers["optimizer"] == optimizer)
                  & layers["learning_rate"].isin(rates) & layers["name"].isin(MECHANISM_NAMES)
                  & layers["preactivation_mean"].notna()].sort_values("step")
    if mine.empty:
      continue
    per_run = mine.groupby(["name", "run_id", "layer"], sort=False).agg(
        lowest=("preactivation_mean", "min"), first=("weight_norm", "first"),
        last=("weight_norm", "last"), dead=("dead_fraction", "last"))
    per_run["growth"] = per_run["last"] / per_run["first"]
    summary = per_run.groupby(["name", "layer"]).agg(
        runs=("dead", "size"), lowest_preactivation=("lowest", "median"),
        kernel_growth=("growth", "median"), dead_fraction=("dead", "mean")).reset_index()
    found.append(summary.assign(dataset=dataset, optimizer=optimizer))
  columns = ["dataset", "optimizer", "name", "layer", "runs", "lowest_preactivation",
             "kernel_growth", "dead_fraction"]
  return pd.concat(found, ignore_index=True)[columns] if found else pd.DataFrame(columns=columns)


def _runaway_reading(mine: pd.DataFrame) -> str:
  """Which surrogates' pre-activations go more than 10 times below relu's, layer by layer."""
  relu = mine[mine["name"] == "relu"].set_index("layer")["lowest_preactivation"]
  readings = []
  for name in ("necro_relu", "revival_relu"):
    own = mine[mine["name"] == name].set_index("layer")["lowest_preactivation"]
    past = [int(layer) for layer, value in own.items()
            if layer in relu and value < 10 * min(relu[layer], -1e-6)]
    readings.append(f"{name} goes more than 10 times below relu's in layer"
                    f" {', '.join(map(str, past))}" if past else
                    f"{name} stays within 10 times relu's in every layer")
  return "; ".join(readings) + " (relu's lowest is the reference: a unit pushed far below it is one"\
      " the surrogate's gradient drove down where the loss cannot see it)."


def _mechanism_answers(mechanism: pd.DataFrame) -> list[Answer]:
  """Per layer, where ReLU dies: how far below relu's each surrogate drives its pre-activations."""
  answers = []
  for (dataset, optimizer), mine in mechanism.groupby(["dataset", "optimizer"], sort=False):
    if not {"revival_relu", "necro_relu"} <= set(mine["name"]):
      continue
    texts = []
    for layer, rows in mine.groupby("layer"):
      by = rows.set_index("name")
      texts.append(f"layer {layer}: " + ", ".join(
          f"{name} {by.loc[name, 'lowest_preactivation']:.3g} (kernel x{by.loc[name, 'kernel_growth']:.3g},"
          f" {100 * by.loc[name, 'dead_fraction']:.0f}% dead)" for name in MECHANISM_NAMES if name in by.index))
    answers.append(Answer(
        f"{dataset}, {optimizer}, at the rates where ReLU dies: the lowest mean pre-activation of each"
        " hidden layer over training (median over runs, diverged runs up to their last"
        " evaluation), its kernel's growth and final dead fraction. " + "; ".join(texts) + ". "
        + _runaway_reading(mine), topic="Per layer: do the surrogates push inactive units down? (necro_relu, revival_relu)"))
  return answers


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """The dead fraction against the rate, each remedy's verdict, stability and the divergence diagnosis."""
  del settings  # everything comes from the rows
  runs, layers = found.runs, found.layers
  rated, baseline = per_rate(runs), bool((runs["activation"] == "relu").any())
  dying, diagnosed, per_layer = dying_rates(rated), _diagnoses(runs, layers), relu_layers(runs, layers)
  remedy = remedies(runs, dying) if baseline else pd.DataFrame()
  names = [name for name in dict.fromkeys(runs["activation"]) if name != "relu"]
  answers = [*_relu_answers(rated), *_remedy_answers(remedy)] if baseline else []
  answers += _divergence_answers(runs, diagnosed)
  mechanism = layer_mechanism(runs, layers, dying) if baseline and not layers.empty else pd.DataFrame()
  answers += _mechanism_answers(mechanism) if len(mechanism) else []
  pairs = accuracy_pairs(runs, dying) if baseline else pd.DataFrame()
  answers += _accuracy_answers(pairs) if len(pairs) else []
  answers += [_totals_answer(runs), *(_held_answer(runs, dying, name) for name in names)] if baseline else []
  return Findings(
      question="how much of a ReLU network dies as the learning rate grows, and does each remedy prevent it?",
      answers=tuple(answers),
      tables=(
          *([Table("Does each remedy prevent it? At the rates where ReLU dies", remedy, note=(
              f"The rates where ReLU dies: its mean dead fraction reaches {DYING_THRESHOLD:.0%}. A"
              f" remedy *prevents* dying there when its dead fraction stays below"
              f" {PREVENTS_THRESHOLD:.0%} and no run diverges; it is *stable* where ReLU is when it"
              " diverges at no rate at which ReLU did not."))] if baseline else []),
          Table("Which activations stay stable, and the best each reaches", stability(rated), note=(
              "Per activation: its diverged runs over all rates, the largest rate with no diverged"
              " run, the lowest rate with one, and its best mean test accuracy over the rates"
              " (non-diverged runs only).")),
          *([Table("Which runs diverge, and how", diagnosed, note=divergence.NOTE.format(
              setting="dataset, optimizer, activation, learning rate", reference="ReLU"))] if len(diagnosed) else []),
          *(Table(f"{dataset}, {optimizer}: final metrics per activation and learning rate",
                  group.drop(columns=[*GROUP, "runs"]))
            for (dataset, optimizer), group in rated.groupby(GROUP, sort=False)),
          *([Table("ReLU's dead fraction per layer (layer 1 nearest the input), end of training",
                   per_layer)] if len(per_layer) else []),
          *([Table("Per layer at the rates where ReLU dies: lowest mean pre-activation, kernel"
                   " growth, dead units", mechanism)] if len(mechanism) else []),
          *([Table(AS_ACCURATE, _pairs_frame(pairs), note=(
              "Test accuracy, each activation minus the baseline at the same seed and rate (same"
              " initial weights and batches), 95% paired t interval; 'pooled' pairs over every rate"
              " where ReLU dies. Diverged runs leave their pairs (the diverged column counts"
              " them)."))] if len(pairs) else []),
      ),
      notes=NOTES,
      plots=(DEAD_VS_RATE_PLOT, ACCURACY_VS_RATE_PLOT,
             *((DIVERGENCE_PLOT,) if divergence_focus(runs) else ())),
  )


NOTES = (
    "Claim 1 of the research brief (CS231n: with too high a learning rate \"as much as 40% of your"
    " network can be dead\"). A unit is *dead* when the activation's backward derivative is 0 on"
    " every training example (it cannot learn), *inactive* when its pre-activation is <= 0 on every"
    " training example; they coincide for ReLU.",
    "Fractions are means over the hidden layers at the end of training; intervals are 95% Student t"
    " over seeds; diverged runs are counted, never averaged ('-' where every run diverged).",
    "PReLU is not compared: the engine's MLP has no learned-slope activation (adding one means"
    " changing research/models.py).",
    f"`{DEAD_VS_RATE_PLOT}`: final dead fraction (mean, 95% band) against the learning rate, per"
    " dataset (rows) and optimizer (columns); a cross on top marks a rate where runs of that"
    f" activation diverged. `{ACCURACY_VS_RATE_PLOT}`: the same for test accuracy.",
    f"`{DIVERGENCE_PLOT}`: where runs diverged, per-layer weight norm, mean pre-activation and"
    " largest |weight| against the step for every activation at the focus setting named in its"
    " title, one line per run; a diverging run's line stops at its divergence.",
)


# --- the plots -----------------------------------------------------------------


def _against_rate(rated: pd.DataFrame, column: str) -> Any:
  from matplotlib import colormaps

  label, palette = metrics.describe(column).label, colormaps["tab10"]
  datasets, optimizers = (list(dict.fromkeys(rated[key])) for key in GROUP)
  names = list(dict.fromkeys(rated["activation"]))
  figure = plots.new_figure(4.2 * len(optimizers), 3.2 * len(datasets))
  axes = figure.subplots(len(datasets), len(optimizers), squeeze=False)
  for (dataset, optimizer), group in rated.groupby(GROUP, sort=False):
    axis = axes[datasets.index(dataset)][optimizers.index(optimizer)]
    for index, activation in enumerate(names):
      mine, color = group[group["activation"] == activation], palette(index % palette.N)
      crosses = list(mine.loc[mine["diverged"] > 0, "learning_rate"])
      kept = mine[[not math.isnan(e.value) for e in mine[label]]]
      means, lows, highs = (np.array([getattr(e, end) if e.has_interval else e.value
                                      for e in kept[label]], float) for end in ("value", "low", "high"))
      axis.plot(kept["learning_rate"], 100 * means, marker="o", color=color, label=activation)
      axis.fill_between(kept["learning_rate"], 100 * np.clip(lows, 0, 1), 100 * np.clip(highs, 0, 1),
                        color=color, alpha=0.15, linewidth=0)
      if crosses:
        axis.scatter(crosses, [102 + 2 * index] * len(crosses), marker="x", color=color)
    axis.set(xscale="log", ylim=(-2, 104 + 2 * len(names)), title=f"{dataset}, {optimizer}",
             xlabel="learning rate", ylabel=f"final {column.replace('_', ' ')} (%)")
    axis.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  return figure


def divergence_focus(runs: pd.DataFrame) -> tuple[str, str, float] | None:
  """The (dataset, optimizer, rate) to show: the lowest rate where a non-ReLU run diverged and ReLU did not.

  Falls back to the lowest rate with any diverged run; ``None`` if none diverged.
  """
  candidates = []
  for row in tables.records(runs[_diverged(runs)]):
    key = (row["dataset"], row["optimizer"], float(row["learning_rate"]))
    relu = _where(runs, dataset=key[0], optimizer=key[1], activation="relu", learning_rate=key[2])
    relu_stable = not relu.empty and not _diverged(relu).any()
    candidates.append((not (relu_stable and row["name"] != "relu"), key[2], key))
  return min(candidates)[2] if candidates else None


def write_plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  """The dead fraction and accuracy against the rate, and, where runs diverged, their layers."""
  del settings
  rated = per_rate(found.runs)
  plots.save_figure(_against_rate(rated, "dead_fraction"), folder, DEAD_VS_RATE_PLOT)
  plots.save_figure(_against_rate(rated, "test_accuracy"), folder, ACCURACY_VS_RATE_PLOT)
  focus = divergence_focus(found.runs)
  if focus is not None and "layer" in found.layers:
    dataset, optimizer, rate = focus
    at = _where(found.runs, dataset=dataset, optimizer=optimizer, learning_rate=rate)
    figure = divergence.figure(at, found.layers, f"{dataset}, {optimizer}, lr {rate:g}")
    plots.save_figure(figure, folder, DIVERGENCE_PLOT)


STUDY = Study(
    name="dying",
    question="Dying units against the learning rate, per dataset and optimizer, with remedies.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=write_plots,
    owns=("dataset", "optimizer", "learning_rates"),
)
