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
import time
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import tyro

import activations
from research import config as config_lib
from research import experiment, models, plots, results
from research.config import Config
from research.statistics import mean_confidence_interval
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "gradient-flow"
USUAL = "usual"  # each activation with its usual initialisation
USUAL_INITS = {"sigmoid": "xavier_normal", "tanh": "xavier_normal", "selu": "lecun_normal"}
DEFAULT_INIT = "he_normal"  # the usual one for the ReLU family, and for activations not named above

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Gradient norm per layer vs depth, per activation, at init and early in training."""

  activations: config_lib.Specs = (
      "sigmoid", "tanh", "relu", "leaky_relu(negative_slope=0.01)",
      "necro_relu(negative_slope=0.1)", "elu", "selu",
  )  # comma-separated registry specs
  depths: Ints = (2, 5, 10, 20, 50)  # hidden layers; each depth is its own engine part
  init: str = USUAL  # "usual" (xavier_normal for sigmoid/tanh, lecun_normal for selu, he_normal otherwise) or one initialiser for all
  dataset: str = "mnist1d"  # research.data spec
  width: int = 64  # hidden units per layer
  seeds: int = 5  # runs per configuration: seeds 0..N-1 (same seed = same weights across activations of one init)
  learning_rates: config_lib.Floats = (1e-3,)  # swept learning rates
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer
  steps: int = 200  # optimizer steps per run: the question is at init and early in training
  batch_size: int = 100  # examples per step
  eval_every: int = 50  # steps between evaluations (gradient norms are measured at each)
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


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
    >>> validate(Settings(init="glorot"))
    Traceback (most recent call last):
    ...
    ValueError: init: 'glorot' is not valid. Choose from: usual, lecun_normal, he_normal, he_uniform, xavier_normal, xavier_uniform, normal_002, rai.
  """
  valid = (USUAL, *models.INITIALIZERS)
  if settings.init not in valid:
    raise ValueError(f"init: {settings.init!r} is not valid. Choose from: {', '.join(valid)}.")
  if not settings.depths or any(not isinstance(d, int) or d < 1 for d in settings.depths):
    raise ValueError(f"depths must be one or more positive integers, got {settings.depths!r}.")
  if len(set(settings.depths)) != len(settings.depths):
    raise ValueError(f"depths has duplicates: {settings.depths!r}.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per (depth, initialisation), holding the activations that use it."""
  groups: dict[str, list[str]] = {}
  for spec in settings.activations:
    groups.setdefault(usual_init(spec) if settings.init == USUAL else settings.init, []).append(spec)
  return [
      experiment.Part({"depth": depth, "init": init}, Config(
          dataset=settings.dataset, model="mlp", width=settings.width, depth=depth,
          activations=tuple(specs), seeds=settings.seeds, learning_rates=settings.learning_rates,
          optimizer=settings.optimizer, steps=settings.steps, batch_size=settings.batch_size,
          eval_every=settings.eval_every, init=init, batching=settings.batching,
      ))
      for depth in settings.depths for init, specs in groups.items()
  ]


def gradient_ratios(layers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Per run and evaluation: ``log10`` of the first over the last hidden layer's gradient norm.

  The last hidden layer is ``depth`` (``layers.csv`` numbers the output layer
  ``depth + 1``). The value is ``-inf`` when the first layer's gradient is
  exactly zero, NaN when the last layer's is.

  Examples:
    >>> rows = [{"run_id": "a", "activation": "relu", "name": "relu", "seed": 0, "learning_rate": 0.1,
    ...          "depth": 2, "init": "he_normal", "step": 0, "layer": layer, "gradient_norm": norm}
    ...         for layer, norm in ((1, 0.01), (2, 1.0), (3, 5.0))]
    >>> gradient_ratios(rows)[0]["log10_ratio"]
    -2.0
  """
  by_run: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
  for row in layers:
    by_run.setdefault((row["run_id"], row["step"]), {})[row["layer"]] = row
  found = []
  for (_, step), rows in by_run.items():
    first = rows[1]
    depth = first["depth"]
    top, bottom = rows[depth]["gradient_norm"], first["gradient_norm"]
    if top is None or bottom is None or top == 0 or not math.isfinite(top):
      ratio = math.nan
    elif bottom == 0:
      ratio = -math.inf
    else:
      ratio = math.log10(bottom / top)
    found.append({key: first[key] for key in ("run_id", "activation", "name", "seed", "learning_rate",
                                               "depth", "init")}
                 | {"step": step, "first_gradient_norm": bottom, "last_gradient_norm": top,
                    "log10_ratio": ratio})
  return found


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  ratios: list[dict[str, Any]]  # ratios.csv rows: one per run and evaluation
  layers: list[dict[str, Any]]  # layers.csv rows
  summary: str  # summary.md


def _estimate(values: Sequence[float]) -> tuple[float, float, int, int]:
  """Mean and 95% t half width of the finite values, their count and the others' count."""
  finite = [v for v in values if math.isfinite(v)]
  mean, half = mean_confidence_interval(finite) if finite else (math.nan, math.nan)
  return mean, half, len(finite), len(values) - len(finite)


def _cell(values: Sequence[float]) -> str:
  mean, half, n, other = _estimate(values)
  if n == 0:
    return f"- ({other} not finite)" if other else "-"
  text = f"{mean:.2f} ± {half:.2f}" if math.isfinite(half) else f"{mean:.2f}"
  return text + (f" ({other} not finite)" if other else "")


def _select(ratios: Sequence[dict[str, Any]], **where: Any) -> list[float]:
  return [r["log10_ratio"] for r in ratios if all(r[k] == v for k, v in where.items())]


def _paired(ratios: Sequence[dict[str, Any]], first: str, second: str, depth: int, step: int) -> str:
  """Mean paired difference of log10 ratios (first - second) by seed and learning rate."""
  def by_seed(activation: str) -> dict[tuple, float]:
    return {(r["seed"], r["learning_rate"]): r["log10_ratio"] for r in ratios
            if r["activation"] == activation and r["depth"] == depth and r["step"] == step}
  a, b = by_seed(first), by_seed(second)
  differences = [a[k] - b[k] for k in a.keys() & b.keys() if math.isfinite(a[k]) and math.isfinite(b[k])]
  if not differences:
    return "-"
  mean, half = mean_confidence_interval(differences)
  return f"{mean:+.2f} ± {half:.2f} (n={len(differences)})" if math.isfinite(half) else f"{mean:+.2f} (n=1)"


def _summary(settings: Settings, command: str, ratios: list[dict[str, Any]], trained: experiment.Trained,
             seconds: float) -> str:
  names = list(dict.fromkeys(r["activation"] for r in trained.runs))
  init_of = {r["activation"]: r["init"] for r in trained.runs}
  depths = sorted(settings.depths)
  deepest = depths[-1]
  lines = [f"# {NAME}: do gradients vanish with depth?", "", "## Answer", ""]
  for activation in names:
    cells, finite_depths, means = [], [], []
    for depth in depths:
      mean, half, n, other = _estimate(_select(ratios, activation=activation, depth=depth, step=0))
      if n:
        cells.append(f"{mean:.2f}")
        finite_depths.append(depth)
        means.append(mean)
      else:
        cells.append(f"below float32 (first-layer gradient exactly 0 in {other} run(s))")
    slope = ""
    if len(finite_depths) >= 2:
      per_layer = float(np.polyfit(finite_depths, means, 1)[0])
      slope = (f"; least-squares slope {per_layer:+.3f} per added layer, a factor of"
               f" {10 ** per_layer:.2f} per layer")
    lines.append(f"- {activation} ({init_of[activation]}): log10(first/last hidden gradient norm) at"
                 f" init for depths {', '.join(map(str, depths))}: {', '.join(cells)}{slope}.")
  relu = next((a for a in names if activations.parse_spec(a)[0] == "relu"), None)
  necro = next((a for a in names if activations.parse_spec(a)[0] == "necro_relu"), None)
  if relu and necro and init_of[relu] == init_of[necro]:
    lines.append(
        f"- Surrogate backward ({necro} minus {relu}, same seed, same forward network), difference"
        f" of log10 ratios at init, depth {deepest}: {_paired(ratios, necro, relu, deepest, 0)};"
        f" after {settings.steps} steps: {_paired(ratios, necro, relu, deepest, settings.steps)}.")
  lines += [
      "", "A log10 ratio of -k means the first hidden layer's gradient is 10^k times smaller than"
      " the last hidden layer's; 0 means no vanishing; ± is a 95% Student t interval over"
      f" {settings.seeds} seed(s) x {len(settings.learning_rates)} learning rate(s). `not finite`"
      " counts runs whose first-layer gradient is exactly 0 in float32 (log = -inf).", "",
  ]
  for step, title in ((0, "At initialisation"), (settings.steps, f"After {settings.steps} steps")):
    lines += [f"## {title}: log10(first / last hidden gradient norm)", "",
              "| activation | init | " + " | ".join(f"depth {d}" for d in depths) + " |",
              "|---|---|" + "---:|" * len(depths)]
    for activation in names:
      lines.append(f"| {activation} | {init_of[activation]} | " + " | ".join(
          _cell(_select(ratios, activation=activation, depth=d, step=step)) for d in depths) + " |")
    lines.append("")
  if relu and necro and init_of[relu] == init_of[necro]:
    lines += ["## NecroReLU minus ReLU (paired by seed): difference of log10 ratios", "",
              "| depth | at init | after training |", "|---:|---:|---:|"]
    for depth in depths:
      lines.append(f"| {depth} | {_paired(ratios, necro, relu, depth, 0)} |"
                   f" {_paired(ratios, necro, relu, depth, settings.steps)} |")
    lines.append("")
  final = {r["run_id"]: r for r in trained.runs}
  lines += ["## Final test accuracy per depth (does the gradient flow matter for learning?)", "",
            "| activation | " + " | ".join(f"depth {d}" for d in depths) + " |",
            "|---|" + "---:|" * len(depths)]
  for activation in names:
    cells = []
    for depth in depths:
      values = [r["test_accuracy"] for r in final.values() if r["activation"] == activation
                and r["depth"] == depth and not r.get("diverged") and r.get("test_accuracy") is not None]
      mean, half = mean_confidence_interval(values) if values else (math.nan, math.nan)
      diverged = sum(1 for r in final.values() if r["activation"] == activation and r["depth"] == depth
                     and r.get("diverged"))
      cells.append("-" if not values else f"{100 * mean:.1f}% ± {100 * half:.1f}"
                   + (f" ({diverged} diverged)" if diverged else ""))
    lines.append(f"| {activation} | " + " | ".join(cells) + " |")
  lines += ["", f"Setup: MLP of width {settings.width} on `{settings.dataset}`, {settings.optimizer},"
            f" learning rate(s) {', '.join(map(str, settings.learning_rates))}, {settings.steps} steps"
            f" of batch {settings.batch_size}. Gradient norms are measured on the whole training set.",
            "", "Plots: `gradient_ratio.png` (log10 ratio vs depth), `gradient_profile.png` (gradient"
            f" norm per layer at init, depth {deepest}). Data: `ratios.csv`, `layers.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids)
  return "\n".join(lines)


def _plots(settings: Settings, ratios: list[dict[str, Any]], trained: experiment.Trained,
           folder: pathlib.Path) -> None:
  names = list(dict.fromkeys(r["activation"] for r in trained.runs))
  depths = sorted(settings.depths)
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  for index, activation in enumerate(names):
    for step, style in ((0, "-"), (settings.steps, ":")):
      estimates = [_estimate(_select(ratios, activation=activation, depth=d, step=step)) for d in depths]
      means = np.array([e[0] for e in estimates])
      halves = np.nan_to_num(np.array([e[1] for e in estimates]))
      axis.errorbar(depths, means, yerr=halves, fmt=style, marker="o", markersize=3, capsize=3,
                    color=f"C{index}", label=activation if step == 0 else None)
  axis.set_xscale("log")
  axis.set_xticks(depths, [str(d) for d in depths])
  axis.minorticks_off()
  axis.set_xlabel("depth (hidden layers)")
  axis.set_ylabel("log10(first / last hidden gradient norm)")
  axis.set_title(f"At init (solid) and after {settings.steps} steps (dotted), 95% t intervals")
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7)
  plots.save_figure(figure, folder, "gradient_ratio.png")

  deepest = depths[-1]
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  for index, activation in enumerate(names):
    per_layer: dict[int, list[float]] = {}
    for row in trained.layers:
      if (row["activation"] == activation and row["depth"] == deepest and row["step"] == 0
          and row.get("gradient_norm")):
        per_layer.setdefault(row["layer"], []).append(math.log10(row["gradient_norm"]))
    layers = sorted(layer for layer in per_layer if layer <= deepest)
    axis.plot(layers, [np.mean(per_layer[layer]) for layer in layers], marker=".",
              color=f"C{index}", label=activation)
  axis.set_xlabel("hidden layer (1 = nearest the input)")
  axis.set_ylabel("log10 gradient norm (mean over seeds)")
  axis.set_title(f"Gradient norm per layer at initialisation, depth {deepest}")
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7)
  plots.save_figure(figure, folder, "gradient_profile.png")


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False,
    command: str = "",
) -> Outcome:
  """Trains every depth x activation x seed and reports the gradient ratios.

  Writes the engine's files, ``ratios.csv``, ``summary.md``,
  ``gradient_ratio.png`` and ``gradient_profile.png`` into ``out`` (default
  ``results/gradient-flow-<timestamp>``). Rerunning with the same folder resumes.
  """
  validate(settings)
  started = time.perf_counter()
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  trained = experiment.train_pending(prepared, quiet=quiet)
  ratios = gradient_ratios(trained.layers)
  report = _summary(settings, command, ratios, trained, time.perf_counter() - started)
  experiment.write_outputs(
      trained.out, {"ratios.csv": results.csv_text(ratios), "summary.md": report},
      lambda folder: _plots(settings, ratios, trained, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, ratios, trained.layers, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Gradient flow: gradient norm per layer vs depth per activation; first/last layer ratio.

  Args:
    settings: the study.
    out: output folder; empty means results/gradient-flow-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
