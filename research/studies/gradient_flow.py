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
from research.study import Study

USUAL = "usual"  # each activation with its usual initialisation
USUAL_INITS = {"sigmoid": "xavier_normal", "tanh": "xavier_normal", "selu": "lecun_normal"}
DEFAULT_INIT = "he_normal"  # the usual one for the ReLU family, and for activations not named above
RUN_KEYS = ["run_id", "activation", "name", "seed", "learning_rate", "depth", "init"]
GROUP = ["activation", "init", "depth", "step"]  # one estimate of the log10 ratio per group

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


def ratio_estimates(ratios: pd.DataFrame) -> pd.DataFrame:
  """Per activation, init, depth and step: the mean log10 ratio over runs with its interval.

  ``not_finite`` counts the runs left out of ``estimate`` because their ratio is
  not finite (a first-layer gradient exactly 0 in float32).

  Examples:
    >>> ratios = pd.DataFrame({"activation": "relu", "init": "he_normal", "depth": 2, "step": 0,
    ...                        "log10_ratio": [-1.0, -3.0, -math.inf]})
    >>> found = ratio_estimates(ratios)
    >>> found["estimate"][0].value, found["not_finite"].tolist()
    (-2.0, [1])
  """
  grouped = ratios.groupby(GROUP, sort=False)["log10_ratio"]
  return pd.DataFrame({"estimate": grouped.apply(Estimate.of_mean),
                       "not_finite": grouped.apply(lambda v: int((~np.isfinite(v)).sum()))
                       }).reset_index()


def _ratio_table(summary: pd.DataFrame, depths: list[int], step: int) -> pd.DataFrame:
  """Activations down, depths across; a cell counts apart the runs whose ratio is not finite."""
  at = summary[summary["step"] == step]
  if at.empty:
    return pd.DataFrame()
  at = at.assign(cell=[estimate if other == 0 else f"{estimate.text()} ({other} not finite)"
                       for estimate, other in zip(at["estimate"], at["not_finite"])])
  order = pd.MultiIndex.from_frame(at[["activation", "init"]].drop_duplicates())
  table = at.pivot(index=["activation", "init"], columns="depth", values="cell")
  table = table.reindex(index=order, columns=depths)
  return table.set_axis([f"depth {depth}" for depth in depths], axis=1).reset_index()


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


def _activation_answer(summary: pd.DataFrame, activation: str, init: str) -> Answer:
  at_init = summary[(summary["activation"] == activation) & (summary["step"] == 0)].sort_values("depth")
  finite = at_init[[not math.isnan(estimate.value) for estimate in at_init["estimate"]]]
  texts = ["{}" if not math.isnan(estimate.value) else
           f"below float32 (first-layer gradient exactly 0 in {other} run(s))"
           for estimate, other in zip(at_init["estimate"], at_init["not_finite"])]
  means = [estimate.value for estimate in finite["estimate"]]
  return Answer(
      f"{activation} ({init}): log10(first/last hidden gradient norm) at init for depths"
      f" {', '.join(map(str, at_init['depth']))}: {', '.join(texts)}"
      f"{_slope(list(finite['depth']), means)}.",
      tuple(finite["estimate"]), topic="Do gradients vanish with depth?", headline=True)


def _surrogate_parts(ratios: pd.DataFrame, runs: pd.DataFrame, settings: Settings):
  """NecroReLU minus ReLU (same seed, same forward network): the answer and the table."""
  found = {activations.parse_spec(a)[0]: (a, i) for a, i in zip(runs["activation"], runs["init"])}
  if "relu" not in found or "necro_relu" not in found or found["relu"][1] != found["necro_relu"][1]:
    return [], []  # the pair needs both, with the same initialisation (the same forward network)
  (relu, _), (necro, _) = found["relu"], found["necro_relu"]
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
  summary = ratio_estimates(ratios)
  runs, depths, base = found.runs, sorted(settings.depths), settings.base
  surrogate_answers, surrogate_tables = _surrogate_parts(ratios, runs, settings)
  return Findings(
      question="do gradients vanish with depth?",
      answers=(*(_activation_answer(summary, activation, init)
                 for activation, init in dict(zip(runs["activation"], runs["init"])).items()),
               *surrogate_answers),
      tables=(
          Table("At initialisation: log10(first / last hidden gradient norm)",
                _ratio_table(summary, depths, 0)),
          Table(f"After {base.steps} steps: log10(first / last hidden gradient norm)",
                _ratio_table(summary, depths, base.steps)),
          *surrogate_tables,
          Table("Final test accuracy per depth (does the gradient flow matter for learning?)",
                tables.grouped_estimates(runs.sort_values("depth", kind="stable"),
                                         ["activation", "depth"], ["test_accuracy"])),
      ),
      notes=(
          "A log10 ratio of -k means the first hidden layer's gradient is 10^k times smaller than"
          " the last hidden layer's; 0 means no vanishing; intervals are 95% Student t over"
          f" {base.seeds} seed(s) x {len(base.learning_rates)} learning rate(s). `not finite` counts"
          " runs whose first-layer gradient is exactly 0 in float32 (log = -inf).",
          f"Setup: MLP of width {base.width} on `{base.dataset}`, {base.optimizer}, learning rate(s)"
          f" {', '.join(map(str, base.learning_rates))}, {base.steps} steps of batch"
          f" {base.batch_size}. Gradient norms are measured on the whole training set.",
          "`gradient_ratio.png`: the log10 ratio vs depth; `gradient_profile.png`: the gradient"
          f" norm per layer at init, depth {max(depths)}; every layer's gradient norm is in"
          " `layers.csv`.",
      ),
      plots=("gradient_ratio.png", "gradient_profile.png"),
      data={"ratios": ratios},
  )


def _finish(figure, axis, folder: pathlib.Path, name: str, xlabel: str, ylabel: str, title: str) -> None:
  axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7)
  plots.save_figure(figure, folder, name)


def _ratio_plot(settings: Settings, summary: pd.DataFrame, names: list[str], folder: pathlib.Path) -> None:
  depths = sorted(settings.depths)
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  for index, activation in enumerate(names):
    for step, style in ((0, "-"), (settings.base.steps, ":")):
      chosen = summary[(summary["activation"] == activation) & (summary["step"] == step)]
      estimates = chosen.set_index("depth")["estimate"].reindex(depths)
      estimates = [e if isinstance(e, Estimate) else Estimate(math.nan) for e in estimates]
      axis.errorbar(depths, [e.value for e in estimates],
                    yerr=np.nan_to_num([e.high - e.value for e in estimates]), fmt=style,
                    marker="o", markersize=3, capsize=3, color=f"C{index}",
                    label=activation if step == 0 else None)
  axis.set_xscale("log")
  axis.set_xticks(depths, [str(d) for d in depths])
  axis.minorticks_off()
  _finish(figure, axis, folder, "gradient_ratio.png", "depth (hidden layers)",
          "log10(first / last hidden gradient norm)",
          f"At init (solid) and after {settings.base.steps} steps (dotted), 95% t intervals")


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
  _finish(figure, axis, folder, "gradient_profile.png", "hidden layer (1 = nearest the input)",
          "log10 gradient norm (mean over seeds)",
          f"Gradient norm per layer at initialisation, depth {deepest}")


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  names = list(found.runs["activation"].unique())
  _ratio_plot(settings, ratio_estimates(gradient_ratios(found.layers)), names, folder)
  _profile_plot(settings, found.layers, names, folder)


STUDY = Study(
    name="gradient-flow",
    question="Gradient flow: gradient norm per layer vs depth per activation; first/last layer ratio.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("model", "depth", "init"),  # and each part takes the activations of its init
)
