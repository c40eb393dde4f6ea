"""Sparsity: the fraction of exact zeros per layer, at initialisation and after training.

Claim 2 of the research brief: ReLU's hard zeros give sparse representations,
about 50% of hidden outputs exactly zero at a symmetric initialisation
(Glorot, Bordes, Bengio 2011), which can act as a regulariser; LeakyReLU and
softplus lose exact sparsity; NecroReLU keeps it (its forward pass is ReLU's,
so at the same seed its step-0 sparsity is ReLU's exactly). And: does the
sparsity after training track accuracy?

Each model (an MLP and the MNIST-1D reference CNN on MNIST-1D by default) is
one engine part; every activation x seed x learning rate is a run. Sparsity is
the engine's per-layer metric (:data:`research.metrics.METRICS`): the fraction
of the activation's outputs that are exactly 0 over the whole training set,
read from ``layers.csv`` at step 0 and at the last step. The correlation of
final sparsity with test accuracy is Pearson's r with its 95% interval
(Fisher z), over the runs of the activations whose forward pass is ReLU's
(the others are never exactly zero, which would make any correlation an
artefact of the activation).

Run time: about 10 minutes on 2 CPU cores at the defaults. Command::

  python -m research sparsity --out results/sparsity
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import pandas as pd
from scipy import stats

from activations.registry import relu_forward
from research import config as config_lib
from research import experiment, models, plots, tables
from research.config import Config
from research.findings import Answer, Estimate, Findings, Table
from research.study import Study

POOLED = "ReLU-forward runs"  # the correlation's main sample: every run whose forward pass is ReLU's
# relu, the two usual alternatives, two smooth ones, and the ReLU-forward surrogate of the dying study.
ACTIVATIONS = ("relu", "necro_relu(negative_slope=0.1)", "leaky_relu(negative_slope=0.01)",
               "softplus", "gelu", "windowed_necro_relu(negative_slope=0.1,window=3.0)")

Models = Annotated[tuple[models.ModelName, ...], config_lib.comma_separated(str, "MODEL,MODEL,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Fraction of exact zeros per layer at init and after training, per activation and model."""

  models: Models = ("mlp", "cnn1d")  # mlp, cnn1d (MNIST-1D) or cnn2d (images); one engine part each
  mlp_width: int = 100  # hidden units per MLP layer (the MNIST-1D reference MLP)
  mlp_depth: int = 2  # hidden layers of the MLP
  cnn_width: int = 25  # channels per convolution (the MNIST-1D reference CNN)
  cnn_depth: int = 3  # convolutions
  base: Config = Config(  # the engine's settings; a symmetric init and zero biases; two rates spread accuracy
      activations=ACTIVATIONS, seeds=3, learning_rates=(1e-3, 1e-2), steps=1000)


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(models=("mlp", "rnn")))
    Traceback (most recent call last):
    ...
    ValueError: models: 'rnn' is not valid. Choose from: mlp, cnn1d, cnn2d.
  """
  for model in settings.models:
    if model not in models.MODELS:
      raise ValueError(f"models: {model!r} is not valid. Choose from: {', '.join(models.MODELS)}.")
  if not settings.models or len(set(settings.models)) != len(settings.models):
    raise ValueError(f"models must name one or more distinct models, got {settings.models!r}.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per model."""
  found = []
  for model in settings.models:
    mlp = model == "mlp"
    found.append(experiment.Part({"model": model}, dataclasses.replace(
        settings.base, model=model, width=settings.mlp_width if mlp else settings.cnn_width,
        depth=settings.mlp_depth if mlp else settings.cnn_depth)))
  return found


def hidden_layers(layers: pd.DataFrame, settings: Settings) -> pd.DataFrame:
  """The hidden layers' rows at step 0 and at the last step (the output layer has no activation)."""
  return layers[layers["step"].isin((0, settings.base.steps)) & layers["sparsity"].notna()]


def step_zero_pairs(layers: pd.DataFrame, first: str, second: str) -> tuple[int, int]:
  """``(equal, pairs)``: hidden layers whose step-0 sparsity is the same for two activations.

  Pairs are matched on model, seed, learning rate and layer.

  Examples:
    >>> rows = pd.DataFrame([{"model": "mlp", "name": n, "seed": 0, "learning_rate": 0.1,
    ...                       "layer": 1, "step": 0, "sparsity": 0.5} for n in ("relu", "necro_relu")])
    >>> step_zero_pairs(rows, "relu", "necro_relu")
    (1, 1)
  """
  key = ["model", "seed", "learning_rate", "layer"]
  at_zero = layers[(layers["step"] == 0) & layers["sparsity"].notna()]
  return tables.equal_pairs(at_zero[at_zero["name"] == first], at_zero[at_zero["name"] == second],
                            key, ["sparsity"])


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
  """Pearson's r of ``x`` and ``y`` with its 95% interval; NaN where undefined.

  Examples:
    >>> c = correlation([0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.6, 0.62, 0.8, 0.9])
    >>> round(c["r"], 3), c["n"]
    (0.975, 5)
  """
  x, y = np.asarray(x, float), np.asarray(y, float)
  if len(x) < 4 or np.std(x) == 0 or np.std(y) == 0:
    return {"n": len(x), "r": math.nan, "low": math.nan, "high": math.nan, "p": math.nan}
  result = stats.pearsonr(x, y)
  interval = result.confidence_interval(0.95)
  return {"n": len(x), "r": float(result.statistic), "low": float(interval.low),
          "high": float(interval.high), "p": float(result.pvalue)}


def correlations(runs: pd.DataFrame, settings: Settings) -> pd.DataFrame:
  """Final sparsity vs test accuracy: per model over the ReLU-forward runs, and per activation."""
  healthy = runs[~tables.diverged(runs) & runs["sparsity"].notna()
                 & runs["test_accuracy"].notna()]
  rows = []
  for model in settings.models:
    mine = healthy[healthy["model"] == model]
    forward = mine[mine["name"].map(relu_forward)]
    groups = {POOLED: forward}
    for rate in forward["learning_rate"].unique():
      groups[f"{POOLED}, learning rate {rate:g}"] = forward[forward["learning_rate"] == rate]
    for activation in mine["activation"].unique():
      groups[activation] = mine[mine["activation"] == activation]
    for group, members in groups.items():
      rows.append({"model": model, "runs": group,
                   **correlation(members["sparsity"], members["test_accuracy"])})
  return pd.DataFrame(rows, columns=["model", "runs", "n", "r", "low", "high", "p"])


def _mean_sparsity(hidden: pd.DataFrame, **where: Any) -> Estimate:
  """The mean over runs of each run's mean-over-layers sparsity, with its interval."""
  chosen = hidden.loc[(hidden[list(where)] == pd.Series(where)).all(axis=1)]
  return Estimate.of_mean(chosen.groupby("run_id", sort=False)["sparsity"].mean(), "sparsity")


def _sparsity_answers(settings: Settings, runs: pd.DataFrame, hidden: pd.DataFrame) -> list[Answer]:
  answers = []
  for model in settings.models:
    activations = list(runs["activation"].unique())
    estimates = [_mean_sparsity(hidden, model=model, activation=activation, step=step)
                 for activation in activations for step in (0, settings.base.steps)]
    answers.append(Answer(
        f"{model}, exact zeros (mean over hidden layers, at init -> after {settings.base.steps}"
        " steps): " + "; ".join(f"{activation} {{}} -> {{}}" for activation in activations) + ".",
        tuple(estimates), topic="How sparse", headline=True))
  return answers


def _equal_at_init_answers(layers: pd.DataFrame, names: Sequence[str]) -> list[Answer]:
  if "relu" not in names:
    return []
  answers = []
  for other in sorted(n for n in set(names) if n != "relu" and relu_forward(n)):
    equal, pairs = step_zero_pairs(layers, "relu", other)
    answers.append(Answer(f"{other} vs relu at step 0, same seed: sparsity equal in {equal} of"
                          f" {pairs} (model, seed, learning rate, layer) pairs.", topic="How sparse",
                          verdict="held" if pairs and equal == pairs else "did not hold"))
  return answers


def _r(row: Any) -> Estimate:
  return Estimate(row["r"], row["low"], row["high"], "number", int(row["n"]))


def _p(value: float) -> str:
  return "-" if math.isnan(value) else f"{value:.3g}"


def _correlation_answers(settings: Settings, found: pd.DataFrame) -> list[Answer]:
  answers = []
  for _, row in found[found["runs"].str.startswith(POOLED)].iterrows():
    within = row["runs"][len(POOLED):].lstrip(", ") or "all learning rates pooled"
    answers.append(Answer(
        f"{row['model']}: correlation of final sparsity with test accuracy over {row['n']}"
        f" ReLU-forward runs ({within}): r = {{}} (p = {_p(row['p'])}).", (_r(row),),
        topic="Does sparsity track accuracy?", headline=row["runs"] == POOLED))
  if len(settings.base.learning_rates) > 1:
    answers.append(Answer(
        "Read the pooled correlation with the per-learning-rate ones: the learning rate moves"
        " both sparsity and accuracy, so pooling can make a correlation that no single learning"
        " rate shows.", topic="Does sparsity track accuracy?"))
  return answers


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Sparsity at init and after training, equality at init, and its correlation with accuracy."""
  hidden = hidden_layers(found.layers, settings)
  found_correlations = correlations(found.runs, settings)
  per_layer = hidden.assign(step=hidden["step"].map(lambda s: "init" if s == 0 else f"step {s}"))
  return Findings(
      question="how sparse are the activations, and does sparsity track accuracy?",
      answers=(*_sparsity_answers(settings, found.runs, hidden),
               *_equal_at_init_answers(found.layers, list(found.runs["name"].unique())),
               *_correlation_answers(settings, found_correlations)),
      tables=(
          Table("Per layer, at initialisation (step 0) and after training",
                tables.grouped_estimates(per_layer, ["model", "activation", "layer", "step"],
                                         ["sparsity"])),
          Table("Final accuracy and sparsity per configuration",
                tables.grouped_estimates(found.runs, ["model", "activation", "learning_rate"],
                                         ["test_accuracy", "sparsity", "dead_fraction"])),
          Table("Sparsity vs accuracy", found_correlations.assign(
              r=found_correlations.apply(_r, axis=1), p=found_correlations["p"].map(_p)
          ).drop(columns=["low", "high"]),
                note="Pearson's r of each run's final sparsity (mean over hidden layers) with its"
                " test accuracy, 95% interval by Fisher's z (n < 4 or a constant sparsity, e.g. an"
                " activation that never outputs an exact zero: `-`)."),
      ),
      notes=("Sparsity: the fraction of the activation's outputs that are exactly 0 over the whole"
             " training set (every position of a convolution), per hidden layer; intervals are"
             " Student t over runs (seeds x learning rates).",
             "Smooth activations can output exact zeros where float32 underflows (softplus far"
             " below 0; tanh-approximated GELU below about -5, where 1 + tanh rounds to 0)."),
      plots=("sparsity_layers.png", "sparsity_accuracy.png"),
      data={"correlations": found_correlations},
  )


def _layers_plot(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  hidden = hidden_layers(found.layers, settings)
  names = list(found.runs["activation"].unique())
  figure = plots.new_figure(4.5 * len(settings.models), 4)
  for index, model in enumerate(settings.models):
    axis = figure.add_subplot(1, len(settings.models), index + 1)
    layers = sorted(hidden.loc[hidden["model"] == model, "layer"].unique())
    width = 0.8 / max(len(names), 1)
    for position, activation in enumerate(names):
      offsets = np.arange(len(layers)) + position * width - 0.4 + width / 2
      for step in (0, settings.base.steps):
        means = 100 * np.array([_mean_sparsity(hidden, model=model, activation=activation,
                                               step=step, layer=layer).value for layer in layers])
        if step == 0:
          axis.plot(offsets, means, "k_", markersize=8,
                    label="at init" if position == 0 and index == 0 else None)
        else:
          axis.bar(offsets, means, width, color=f"C{position}",
                   label=activation if index == 0 else None)
    axis.set_xticks(range(len(layers)), [f"layer {layer}" for layer in layers])
    axis.set_ylabel("exact zeros (%)")
    axis.set_title(f"{model}: after {settings.base.steps} steps (bars), at init (ticks)")
    axis.grid(alpha=0.3, axis="y")
  figure.legend(fontsize=7, loc="outside lower center", ncol=4)
  plots.save_figure(figure, folder, "sparsity_layers.png")


def _accuracy_plot(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  runs = found.runs[~tables.diverged(found.runs) & found.runs["sparsity"].notna()]
  figure = plots.new_figure(4.5 * len(settings.models), 3.8)
  for index, model in enumerate(settings.models):
    axis = figure.add_subplot(1, len(settings.models), index + 1)
    for position, activation in enumerate(found.runs["activation"].unique()):
      mine = runs[(runs["model"] == model) & (runs["activation"] == activation)]
      axis.scatter(100 * mine["sparsity"], 100 * mine["test_accuracy"], color=f"C{position}",
                   s=18, label=activation if index == 0 else None)
    axis.set_xlabel("final sparsity (%)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(model)
    axis.grid(alpha=0.3)
  figure.legend(fontsize=7, loc="outside lower center", ncol=4)
  plots.save_figure(figure, folder, "sparsity_accuracy.png")


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  _layers_plot(settings, found, folder)
  _accuracy_plot(settings, found, folder)


STUDY = Study(
    name="sparsity",
    question="Sparsity: exact zeros per layer at init and after training; does sparsity track"
    " accuracy?",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("model", "width", "depth"),
)
