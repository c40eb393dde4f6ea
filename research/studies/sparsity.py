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
import time
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import tyro
from scipy import stats

import activations
from activations.registry import relu_forward
from research import config as config_lib
from research import experiment, models, plots, results, summary
from research.config import Config
from research.statistics import mean_confidence_interval
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "sparsity"
POOLED = "ReLU-forward runs"  # the correlation's main sample: every run whose forward pass is ReLU's


def default_activations() -> tuple[str, ...]:
  """relu, necro_relu, leaky_relu, softplus, gelu, and the dying study's ReLU-forward surrogates.

  The surrogates are found by kind, not by name: every spec of
  :data:`research.studies.dying.DEFAULT_ACTIVATIONS` whose registry entry has
  ReLU's forward pass (:func:`activations.registry.relu_forward`) and is not already chosen.

  Examples:
    >>> default_activations()[:3]
    ('relu', 'necro_relu(negative_slope=0.1)', 'leaky_relu(negative_slope=0.01)')
  """
  chosen = ["relu", "necro_relu(negative_slope=0.1)", "leaky_relu(negative_slope=0.01)", "softplus", "gelu"]
  try:
    from research.studies import dying

    candidates = tuple(dying.DEFAULT_ACTIVATIONS)
  except (ImportError, AttributeError):  # no dying study: the five above
    candidates = ()
  names = {activations.parse_spec(spec)[0] for spec in chosen}
  for spec in candidates:
    name = activations.parse_spec(spec)[0]
    if name not in names and name in activations.names() and relu_forward(name):
      chosen.append(spec)
      names.add(name)
  return tuple(chosen)


Models = Annotated[tuple[models.ModelName, ...], config_lib.comma_separated(str, "MODEL,MODEL,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Fraction of exact zeros per layer at init and after training, per activation and model."""

  activations: config_lib.Specs = default_activations()  # comma-separated registry specs
  models: Models = ("mlp", "cnn1d")  # mlp, cnn1d (MNIST-1D) or cnn2d (images); one engine part each
  dataset: str = "mnist1d"  # research.data spec
  mlp_width: int = 100  # hidden units per MLP layer (the MNIST-1D reference MLP)
  mlp_depth: int = 2  # hidden layers of the MLP
  cnn_width: int = 25  # channels per convolution (the MNIST-1D reference CNN)
  cnn_depth: int = 3  # convolutions
  init: models.Initializer = "lecun_normal"  # kernel initialiser: a symmetric one, zero biases
  seeds: int = 3  # runs per configuration: seeds 0..N-1 (same seed = same init across activations)
  learning_rates: config_lib.Floats = (1e-3, 1e-2)  # swept learning rates (they spread accuracy for the correlation)
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer
  steps: int = 1000  # optimizer steps per run
  batch_size: int = 100  # examples per step
  eval_every: int = 250  # steps between evaluations
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


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
    found.append(experiment.Part({"model": model}, Config(
        dataset=settings.dataset, model=model,
        width=settings.mlp_width if mlp else settings.cnn_width,
        depth=settings.mlp_depth if mlp else settings.cnn_depth,
        activations=settings.activations, seeds=settings.seeds,
        learning_rates=settings.learning_rates, optimizer=settings.optimizer,
        steps=settings.steps, batch_size=settings.batch_size, eval_every=settings.eval_every,
        init=settings.init, batching=settings.batching,
    )))
  return found


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # runs.csv rows
  layers: list[dict[str, Any]]  # layers.csv rows
  correlations: list[dict[str, Any]]  # correlations.csv rows
  summary: str  # summary.md


def hidden_layer_rows(layers: Sequence[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
  """The hidden layers' rows at step 0 and at the last step (the output layer has no activation)."""
  return [row for row in layers if row["step"] in (0, settings.steps) and row.get("sparsity") is not None]


def step_zero_pairs(layers: Sequence[dict[str, Any]], first: str, second: str) -> tuple[int, int]:
  """``(equal, pairs)``: hidden layers whose step-0 sparsity is the same for two activations.

  Pairs are matched on model, seed, learning rate and layer.

  Examples:
    >>> rows = [{"model": "mlp", "name": n, "seed": 0, "learning_rate": 0.1, "layer": 1,
    ...          "step": 0, "sparsity": 0.5} for n in ("relu", "necro_relu")]
    >>> step_zero_pairs(rows, "relu", "necro_relu")
    (1, 1)
  """
  def key(row: dict[str, Any]) -> tuple:
    return row["model"], row["seed"], row["learning_rate"], row["layer"]

  firsts = {key(r): r["sparsity"] for r in layers if r["step"] == 0 and r["name"] == first
            and r.get("sparsity") is not None}
  seconds = {key(r): r["sparsity"] for r in layers if r["step"] == 0 and r["name"] == second
             and r.get("sparsity") is not None}
  both = firsts.keys() & seconds.keys()
  return sum(firsts[k] == seconds[k] for k in both), len(both)


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


def correlations(runs: Sequence[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
  """Final sparsity vs test accuracy: per model over the ReLU-forward runs, and per activation."""
  healthy = [r for r in runs if not r.get("diverged") and r.get("sparsity") is not None
             and r.get("test_accuracy") is not None]
  rows = []
  for model in settings.models:
    mine = [r for r in healthy if r["model"] == model]
    forward = [r for r in mine if relu_forward(r["name"])]
    groups = {POOLED: forward}
    for rate in dict.fromkeys(r["learning_rate"] for r in forward):
      groups[f"{POOLED}, learning rate {rate:g}"] = [r for r in forward if r["learning_rate"] == rate]
    for activation in dict.fromkeys(r["activation"] for r in mine):
      groups[activation] = [r for r in mine if r["activation"] == activation]
    for group, members in groups.items():
      rows.append({"model": model, "runs": group, **correlation(
          [r["sparsity"] for r in members], [r["test_accuracy"] for r in members])})
  return rows


def _percent(value: float) -> str:
  return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _p_value(value: float) -> str:
  return "-" if math.isnan(value) else f"{value:.3g}"


def _number(value: float) -> str:
  return "-" if math.isnan(value) else f"{value:.2f}"


def _mean_sparsity(rows: Sequence[dict[str, Any]], **where: Any) -> tuple[float, float, int]:
  """Mean over the runs of their mean-over-layers sparsity, t half width, runs."""
  per_run: dict[str, list[float]] = {}
  for row in rows:
    if all(row[k] == v for k, v in where.items()):
      per_run.setdefault(row["run_id"], []).append(row["sparsity"])
  values = [float(np.mean(v)) for v in per_run.values()]
  mean, half = mean_confidence_interval(values) if values else (math.nan, math.nan)
  return mean, half, len(values)


def _summary(settings: Settings, command: str, trained: experiment.Trained, correlation_rows: list[dict[str, Any]],
             seconds: float) -> str:
  hidden = hidden_layer_rows(trained.layers, settings)
  names = dict.fromkeys(r["activation"] for r in trained.runs)
  name_of = {r["activation"]: r["name"] for r in trained.runs}
  lines = [f"# {NAME}: how sparse are the activations, and does sparsity track accuracy?", "",
           "## Answer", ""]
  for model in settings.models:
    parts_text = []
    for activation in names:
      at_init = _mean_sparsity(hidden, model=model, activation=activation, step=0)
      final = _mean_sparsity(hidden, model=model, activation=activation, step=settings.steps)
      parts_text.append(f"{activation} {summary.format_estimate('sparsity', *at_init[:2])} ->"
                        f" {summary.format_estimate('sparsity', *final[:2])}")
    lines.append(f"- {model}, exact zeros (mean over hidden layers, at init -> after"
                 f" {settings.steps} steps): " + "; ".join(parts_text) + ".")
  if "relu" in name_of.values():
    for other in sorted({n for n in name_of.values() if n != "relu" and relu_forward(n)}):
      equal, pairs = step_zero_pairs(trained.layers, "relu", other)
      lines.append(f"- {other} vs relu at step 0, same seed: sparsity equal in {equal} of {pairs}"
                   " (model, seed, learning rate, layer) pairs.")
  for row in correlation_rows:
    if row["runs"].startswith(POOLED):
      within = row["runs"][len(POOLED):].lstrip(", ") or "all learning rates pooled"
      lines.append(
          f"- {row['model']}: correlation of final sparsity with test accuracy over {row['n']}"
          f" ReLU-forward runs ({within}): r = {_number(row['r'])} (95% CI {_number(row['low'])} to"
          f" {_number(row['high'])}, p = {_p_value(row['p'])}).")
  if len(settings.learning_rates) > 1:
    lines.append("- Read the pooled correlation with the per-learning-rate ones: the learning rate"
                 " moves both sparsity and accuracy, so pooling can make a correlation that no"
                 " single learning rate shows.")
  lines += ["", "Sparsity: the fraction of the activation's outputs that are exactly 0 over the"
            " whole training set (every position of a convolution), per hidden layer; ± is a 95%"
            " Student t interval over runs (seeds x learning rates).", ""]
  lines += ["## Per layer, at initialisation (step 0) and after training", ""]
  rows = [{**r, "step": "init" if r["step"] == 0 else f"step {r['step']}"} for r in hidden]
  lines += [summary.grouped_table(rows, ["model", "activation", "layer", "step"], ["sparsity"]), ""]
  lines += ["## Final accuracy and sparsity per configuration", "",
            summary.grouped_table(trained.runs, ["model", "activation", "learning_rate"],
                                  ["test_accuracy", "sparsity", "dead_fraction"]), ""]
  lines += ["## Sparsity vs accuracy", "",
            "Pearson's r of each run's final sparsity (mean over hidden layers) with its test"
            " accuracy, 95% interval by Fisher's z (n < 4 or a constant sparsity, e.g. an activation"
            " that never outputs an exact zero: `-`). Smooth activations can output exact zeros"
            " where float32 underflows (softplus far below 0; tanh-approximated GELU below about"
            " -5, where 1 + tanh rounds to 0).", "",
            "| model | runs | n | r | 95% CI | p |", "|---|---|---:|---:|---:|---:|"]
  for row in correlation_rows:
    lines.append(f"| {row['model']} | {row['runs']} | {row['n']} | {_number(row['r'])} |"
                 f" {_number(row['low'])} to {_number(row['high'])} |"
                 f" {_p_value(row['p'])} |")
  lines += ["", "Plots: `sparsity_layers.png` (per layer, init vs final), `sparsity_accuracy.png`"
            " (each run). Data: `runs.csv`, `history.csv`, `layers.csv`, `correlations.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids)
  return "\n".join(lines)


def _plots(settings: Settings, trained: experiment.Trained, folder: pathlib.Path) -> None:
  hidden = hidden_layer_rows(trained.layers, settings)
  names = list(dict.fromkeys(r["activation"] for r in trained.runs))
  figure = plots.new_figure(4.5 * len(settings.models), 4)
  for index, model in enumerate(settings.models):
    axis = figure.add_subplot(1, len(settings.models), index + 1)
    layers = sorted({r["layer"] for r in hidden if r["model"] == model})
    width = 0.8 / max(len(names), 1)
    for position, activation in enumerate(names):
      for step, hatch, alpha in ((0, "", 0.45), (settings.steps, "", 1.0)):
        means = [_mean_sparsity(hidden, model=model, activation=activation, step=step, layer=layer)[0]
                 for layer in layers]
        offsets = np.arange(len(layers)) + position * width - 0.4 + width / 2
        if step == 0:
          axis.plot(offsets, 100 * np.array(means), "k_", markersize=8,
                    label="at init" if position == 0 and index == 0 else None)
        else:
          axis.bar(offsets, 100 * np.array(means), width, color=f"C{position}", alpha=alpha,
                   label=activation if index == 0 else None)
    axis.set_xticks(range(len(layers)), [f"layer {layer}" for layer in layers])
    axis.set_ylabel("exact zeros (%)")
    axis.set_title(f"{model}: after {settings.steps} steps (bars), at init (ticks)")
    axis.grid(alpha=0.3, axis="y")
  figure.legend(fontsize=7, loc="outside lower center", ncol=4)
  plots.save_figure(figure, folder, "sparsity_layers.png")

  figure = plots.new_figure(4.5 * len(settings.models), 3.8)
  for index, model in enumerate(settings.models):
    axis = figure.add_subplot(1, len(settings.models), index + 1)
    for position, activation in enumerate(names):
      mine = [r for r in trained.runs if r["model"] == model and r["activation"] == activation
              and not r.get("diverged") and r.get("sparsity") is not None]
      axis.scatter([100 * r["sparsity"] for r in mine], [100 * r["test_accuracy"] for r in mine],
                   color=f"C{position}", s=18, label=activation if index == 0 else None)
    axis.set_xlabel("final sparsity (%)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(model)
    axis.grid(alpha=0.3)
  figure.legend(fontsize=7, loc="outside lower center", ncol=4)
  plots.save_figure(figure, folder, "sparsity_accuracy.png")


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False,
    command: str = "",
) -> Outcome:
  """Trains every model x activation x seed x learning rate and reports sparsity.

  Writes the engine's files, ``correlations.csv``, ``summary.md``,
  ``sparsity_layers.png`` and ``sparsity_accuracy.png`` into ``out`` (default
  ``results/sparsity-<timestamp>``). Rerunning with the same folder resumes;
  ``tests/test_study_sparsity.py`` runs it at tiny settings.
  """
  validate(settings)
  started = time.perf_counter()
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  trained = experiment.train_pending(prepared, quiet=quiet)
  correlation_rows = correlations(trained.runs, settings)
  report = _summary(settings, command, trained, correlation_rows, time.perf_counter() - started)
  experiment.write_outputs(
      trained.out, {"correlations.csv": results.csv_text(correlation_rows), "summary.md": report},
      lambda folder: _plots(settings, trained, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, trained.runs, trained.layers, correlation_rows, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Sparsity: exact zeros per layer at init and after training; does sparsity track accuracy?

  Args:
    settings: the study.
    out: output folder; empty means results/sparsity-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
