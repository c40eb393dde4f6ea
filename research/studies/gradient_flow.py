"""Gradient flow: the gradient norm per layer vs depth, at initialisation and early in training.

Claim 3 of the research brief: backprop multiplies by ``f'(z)`` at every layer;
sigmoid's derivative is at most 0.25, so its gradients shrink geometrically
with depth, tanh saturates, ReLU's derivative is exactly 0 or 1. Made
measurable: the ratio of the first hidden layer's gradient norm to the last
hidden layer's, ``log10(|dL/dW_1| / |dL/dW_depth|)``, per depth and activation,
with a 95% interval over seeds. And does a surrogate backward change it?
NecroReLU has ReLU's forward pass and LeakyReLU(0.1)'s derivative, so at the
same seed and depth its forward network is ReLU's and only the backward
differs: the paired difference with ReLU answers it.

Each activation trains with its usual initialisation (xavier_normal for
sigmoid and tanh, lecun_normal for selu, he_normal for the ReLU family and
the rest), or one given for all. Each (depth, initialisation) is an engine
part with keys ``{"depth": d, "init": ...}``; the gradient norms are the
engine's ``layers.csv`` ``gradient_norm`` (Frobenius norm of the gradient of
the training loss on the whole training set w.r.t. each layer's kernel).

Run time: about 15 minutes on 2 CPU cores at the defaults, mostly compiling
the deep programs. Command::

  python -m research gradient-flow --out results/gradient-flow
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Annotated

import numpy as np
import pandas as pd

import activations
from research import config as config_lib
from research import experiment, models, plots, tables
from research.config import Config
from research.findings import Answer, Estimate, Findings, Table
from research.statistics import mean_confidence_interval
from research.study import Study

USUAL = "usual"  # each activation with its usual initialisation
USUAL_INITS = {"sigmoid": "xavier_normal", "tanh": "xavier_normal", "selu": "lecun_normal"}
DEFAULT_INIT = "he_normal"  # the usual one for the ReLU family, and for activations not named above
RUN_KEYS = ["run_id", "activation", "name", "seed", "learning_rate", "depth", "init"]

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Gradient norm per layer vs depth, per activation, at init and early in training."""

  depths: Ints = (2, 5, 10, 20, 50)  # hidden layers of the MLP; each depth is its own engine part
  initialisation: str = USUAL  # "usual" (xavier_normal for sigmoid/tanh, lecun_normal for selu, he_normal otherwise) or one initialiser for all
  base: Config = Config(  # the engine's settings: width-64 MLPs, 200 steps (the question is at init and early in training)
      activations=("sigmoid", "tanh", "relu", "leaky_relu(negative_slope=0.01)",
                   "necro_relu(negative_slope=0.1)", "elu", "selu"),
      width=64, seeds=5, learning_rates=(1e-3,), steps=200, eval_every=50)


def usual_init(spec: str) -> str:
  """The initialisation an activation is usually paired with.

  Examples:
    >>> usual_init("sigmoid"), usual_init("selu"), usual_init("necro_relu(negative_slope=0.1)")
    ('xavier_normal', 'lecun_normal', 'he_normal')
  """
  name, _ = activations.parse_spec(spec)
  return USUAL_INITS.get(name, DEFAULT_INIT)


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(initialisation="glorot"))
    Traceback (most recent call last):
    ...
    ValueError: initialisation: 'glorot' is not valid. Choose from: usual, lecun_normal, he_normal, he_uniform, xavier_normal, xavier_uniform, normal_002, rai.
  """
  valid = (USUAL, *models.INITIALIZERS)
  if settings.initialisation not in valid:
    raise ValueError(f"initialisation: {settings.initialisation!r} is not valid. Choose from: {', '.join(valid)}.")
  if not settings.depths or any(not isinstance(d, int) or d < 1 for d in settings.depths):
    raise ValueError(f"depths must be one or more positive integers, got {settings.depths!r}.")
  if len(set(settings.depths)) != len(settings.depths):
    raise ValueError(f"depths has duplicates: {settings.depths!r}.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per (depth, initialisation), holding the activations that use it."""
  groups: dict[str, list[str]] = {}
  for spec in settings.base.activations:
    groups.setdefault(usual_init(spec) if settings.initialisation == USUAL else settings.initialisation, []).append(spec)
  return [
      experiment.Part({"depth": depth, "init": init}, dataclasses.replace(
          settings.base, model="mlp", depth=depth, activations=tuple(specs), init=init))
      for depth in settings.depths for init, specs in groups.items()
  ]


def _log10_ratio(first: float, last: float) -> float:
  if math.isnan(last) or last == 0 or not math.isfinite(last):
    return math.nan
  return -math.inf if first == 0 else math.log10(first / last)


def gradient_ratios(layers: pd.DataFrame) -> pd.DataFrame:
  """Per run and evaluation: ``log10`` of the first over the last hidden layer's gradient norm.

  The last hidden layer is ``depth`` (``layers.csv`` numbers the output layer
  ``depth + 1``). The value is ``-inf`` when the first layer's gradient is
  exactly zero, NaN when the last layer's is.

  Examples:
    >>> rows = pd.DataFrame([{"run_id": "a", "activation": "relu", "name": "relu", "seed": 0,
    ...                       "learning_rate": 0.1, "depth": 2, "init": "he_normal", "step": 0,
    ...                       "layer": layer, "gradient_norm": norm}
    ...                      for layer, norm in ((1, 0.01), (2, 1.0), (3, 5.0))])
    >>> gradient_ratios(rows)["log10_ratio"].tolist()
    [-2.0]
  """
  first = layers[layers["layer"] == 1][[*RUN_KEYS, "step", "gradient_norm"]]
  last = layers[layers["layer"] == layers["depth"]][["run_id", "step", "gradient_norm"]]
  found = first.merge(last, on=["run_id", "step"], suffixes=("_first", "_last"))
  found = found.rename(columns={"gradient_norm_first": "first_gradient_norm",
                                "gradient_norm_last": "last_gradient_norm"})
  found["log10_ratio"] = [_log10_ratio(a, b) for a, b in
                          zip(found["first_gradient_norm"].astype(float),
                              found["last_gradient_norm"].astype(float))]
  return found.reset_index(drop=True)


def _ratio_cell(values: pd.Series) -> object:
  """The mean log10 ratio with its interval; runs whose first-layer gradient is exactly 0 counted apart."""
  finite = values[np.isfinite(values)]
  other = len(values) - len(finite)
  if finite.empty:
    return f"- ({other} not finite)" if other else "-"
  estimate = Estimate.of_mean(finite)
  return f"{estimate.text()} ({other} not finite)" if other else estimate


def _ratio_table(ratios: pd.DataFrame, settings: Settings, step: int) -> pd.DataFrame:
  at_step = ratios[ratios["step"] == step]
  rows = []
  for (activation, init), group in at_step.groupby(["activation", "init"], sort=False):
    rows.append({"activation": activation, "init": init} | {
        f"depth {depth}": _ratio_cell(group.loc[group["depth"] == depth, "log10_ratio"])
        for depth in sorted(settings.depths)})
  return pd.DataFrame(rows)


def paired_difference(ratios: pd.DataFrame, first: str, second: str, depth: int, step: int) -> Estimate:
  """Mean difference of log10 ratios (first - second), paired by seed and learning rate."""
  chosen = ratios[(ratios["depth"] == depth) & (ratios["step"] == step)]
  pairs = chosen[chosen["activation"] == first].merge(
      chosen[chosen["activation"] == second], on=["seed", "learning_rate"])
  differences = pairs["log10_ratio_x"] - pairs["log10_ratio_y"]
  return Estimate.of_mean(differences[np.isfinite(differences)])


def _slope(depths: list[int], means: list[float]) -> str:
  if len(depths) < 2:
    return ""
  per_layer = float(np.polyfit(depths, means, 1)[0])
  return f"; least-squares slope {per_layer:+.3f} per added layer, a factor of {10 ** per_layer:.2f} per layer"


def _activation_answer(ratios: pd.DataFrame, activation: str, init: str, depths: list[int]) -> Answer:
  texts, estimates, finite_depths, means = [], [], [], []
  for depth in depths:
    values = ratios.loc[(ratios["activation"] == activation) & (ratios["depth"] == depth)
                        & (ratios["step"] == 0), "log10_ratio"]
    finite = values[np.isfinite(values)]
    if finite.empty:
      texts.append(f"below float32 (first-layer gradient exactly 0 in {len(values)} run(s))")
      continue
    texts.append("{}")
    estimates.append(Estimate.of_mean(finite))
    finite_depths.append(depth)
    means.append(estimates[-1].value)
  return Answer(
      f"{activation} ({init}): log10(first/last hidden gradient norm) at init for depths"
      f" {', '.join(map(str, depths))}: {', '.join(texts)}{_slope(finite_depths, means)}.",
      tuple(estimates), topic="Do gradients vanish with depth?", headline=True)


def _relu_and_necro(runs: pd.DataFrame) -> tuple[str, str] | None:
  """ReLU's and NecroReLU's specs when both ran with the same initialisation."""
  found = {activations.parse_spec(a)[0]: (a, i) for a, i in zip(runs["activation"], runs["init"])}
  if "relu" in found and "necro_relu" in found and found["relu"][1] == found["necro_relu"][1]:
    return found["relu"][0], found["necro_relu"][0]
  return None


def _surrogate_parts(ratios: pd.DataFrame, runs: pd.DataFrame, settings: Settings):
  """NecroReLU minus ReLU (same seed, same forward network): the answer and the table."""
  pair = _relu_and_necro(runs)
  if pair is None:
    return [], []
  relu, necro = pair
  steps, deepest = settings.base.steps, max(settings.depths)
  answer = Answer(
      f"Surrogate backward ({necro} minus {relu}, same seed, same forward network), difference"
      f" of log10 ratios at depth {deepest}: {{}} at init; {{}} after {steps} steps.",
      (paired_difference(ratios, necro, relu, deepest, 0),
       paired_difference(ratios, necro, relu, deepest, steps)),
      topic="Does a surrogate backward change it?", headline=True)
  table = pd.DataFrame([{"depth": depth, "at init": paired_difference(ratios, necro, relu, depth, 0),
                         "after training": paired_difference(ratios, necro, relu, depth, steps)}
                        for depth in sorted(settings.depths)])
  return [answer], [Table("NecroReLU minus ReLU (paired by seed): difference of log10 ratios", table)]


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """The log10 gradient ratio per activation and depth, NecroReLU against ReLU, and accuracy."""
  ratios = gradient_ratios(found.layers)
  runs, depths, steps = found.runs, sorted(settings.depths), settings.base.steps
  inits = dict(zip(runs["activation"], runs["init"]))
  surrogate_answers, surrogate_tables = _surrogate_parts(ratios, runs, settings)
  base = settings.base
  return Findings(
      question="do gradients vanish with depth?",
      answers=(*(_activation_answer(ratios, a, i, depths) for a, i in inits.items()),
               *surrogate_answers),
      tables=(
          Table("At initialisation: log10(first / last hidden gradient norm)",
                _ratio_table(ratios, settings, 0)),
          Table(f"After {steps} steps: log10(first / last hidden gradient norm)",
                _ratio_table(ratios, settings, steps)),
          *surrogate_tables,
          Table("Final test accuracy per depth (does the gradient flow matter for learning?)",
                tables.grouped_estimates(runs, ["activation", "depth"], ["test_accuracy"])),
      ),
      notes=(
          "A log10 ratio of -k means the first hidden layer's gradient is 10^k times smaller than"
          " the last hidden layer's; 0 means no vanishing; intervals are 95% Student t over"
          f" {base.seeds} seed(s) x {len(base.learning_rates)} learning rate(s). `not finite` counts"
          " runs whose first-layer gradient is exactly 0 in float32 (log = -inf).",
          f"Setup: MLP of width {base.width} on `{base.dataset}`, {base.optimizer}, learning rate(s)"
          f" {', '.join(map(str, base.learning_rates))}, {steps} steps of batch {base.batch_size}."
          " Gradient norms are measured on the whole training set.",
      ),
      plots=("gradient_ratio.png", "gradient_profile.png"),
      data={"ratios": ratios},
  )


def _ratio_plot(settings: Settings, ratios: pd.DataFrame, names: list[str], folder: pathlib.Path) -> None:
  depths = sorted(settings.depths)
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  for index, activation in enumerate(names):
    for step, style in ((0, "-"), (settings.base.steps, ":")):
      estimates = []
      for depth in depths:
        values = ratios.loc[(ratios["activation"] == activation) & (ratios["depth"] == depth)
                            & (ratios["step"] == step), "log10_ratio"]
        finite = values[np.isfinite(values)]
        estimates.append(mean_confidence_interval(finite) if len(finite) else (math.nan, math.nan))
      means, halves = np.array(estimates).T
      axis.errorbar(depths, means, yerr=np.nan_to_num(halves), fmt=style, marker="o", markersize=3,
                    capsize=3, color=f"C{index}", label=activation if step == 0 else None)
  axis.set_xscale("log")
  axis.set_xticks(depths, [str(d) for d in depths])
  axis.minorticks_off()
  axis.set_xlabel("depth (hidden layers)")
  axis.set_ylabel("log10(first / last hidden gradient norm)")
  axis.set_title(f"At init (solid) and after {settings.base.steps} steps (dotted), 95% t intervals")
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7)
  plots.save_figure(figure, folder, "gradient_ratio.png")


def _profile_plot(settings: Settings, layers: pd.DataFrame, names: list[str], folder: pathlib.Path) -> None:
  deepest = max(settings.depths)
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  chosen = layers[(layers["depth"] == deepest) & (layers["step"] == 0) & (layers["layer"] <= deepest)
                  & (layers["gradient_norm"].fillna(0) > 0)]
  for index, activation in enumerate(names):
    mine = chosen[chosen["activation"] == activation]
    profile = np.log10(mine["gradient_norm"].astype(float)).groupby(mine["layer"]).mean()
    axis.plot(profile.index, profile.values, marker=".", color=f"C{index}", label=activation)
  axis.set_xlabel("hidden layer (1 = nearest the input)")
  axis.set_ylabel("log10 gradient norm (mean over seeds)")
  axis.set_title(f"Gradient norm per layer at initialisation, depth {deepest}")
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7)
  plots.save_figure(figure, folder, "gradient_profile.png")


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  names = list(found.runs["activation"].unique())
  _ratio_plot(settings, gradient_ratios(found.layers), names, folder)
  _profile_plot(settings, found.layers, names, folder)


STUDY = Study(
    name="gradient-flow",
    question="Gradient flow: gradient norm per layer vs depth per activation; first/last layer ratio.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("model", "depth", "init"),  # and each part takes the activations of its init
)
