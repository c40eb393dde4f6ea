"""Surrogates: do ReLU-forward surrogate-gradient activations beat relu and leaky_relu on CNNs?

Claim 8 of the research brief: SUGAR (Horuz et al. 2025, "The Resurrection
of the ReLU") keeps ReLU's forward pass and backpropagates the derivative of
a smooth function instead (B-SiLU, NeLU, or ELU's, SELU's, GELU's), and
reports large gains for VGG-16 and ResNet-18 on CIFAR-10/100. Here the
SUGAR family from the registry (``sugar_*``), NecroReLU and the windowed
NecroReLU of the ``dying`` study (the runaway-proof surrogate) are compared
with relu and leaky_relu(0.01) on small CNNs: the 2-D CNN on digits and
mnist5k, the 1-D CNN on MNIST-1D, at two Adam learning rates.

Each (dataset, model) is one engine part; every activation x seed x learning
rate is a run. The answer is the paired difference in final test accuracy,
each activation minus relu (and minus leaky_relu) at the same seed and
learning rate (same initial weights and batches), with its 95% t interval
(:func:`research.statistics.paired_comparison`). Besides accuracy: the final
dead fraction (units whose backward derivative is 0 on every training
example) and inactive fraction (z <= 0 on every example) per activation, and
a check that every ReLU-forward surrogate starts exactly where relu starts
(same forward, same initialisation: equal step-0 inactive fraction, sparsity
and test accuracy).

The CNNs are small so that the 162 runs (9 activations x 3 parts x 2
learning rates x 3 seeds) fit on 2 CPU cores: three convolutions each, 8
channels in 2-D (a 28x28 mnist5k grid of 6 runs at 16 channels took minutes),
25 in 1-D (the MNIST-1D reference CNN), 600 Adam steps of 100 examples.

Run time: about 8 minutes on 2 quiet CPU cores at the defaults. Command::

  python -m research surrogates --out results/surrogates
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import numpy as np
import tyro

import activations
from activations import registry
from research import config as config_lib
from research import experiment, models, plots, results, summary
from research.config import Config
from research.statistics import mean_confidence_interval, paired_comparison
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "surrogates"
BASELINE, REFERENCE = "relu", "leaky_relu"  # the paired differences are against these registry names
LARGE_GAIN = 0.01  # a gain counts as large here when its whole 95% interval lies above 1 percentage point
STEP_ZERO_METRICS = ("inactive_fraction", "sparsity", "test_accuracy")  # equal for every ReLU forward at step 0
DIFFERENCES_PLOT = "accuracy_difference.png"
DEFAULT_ACTIVATIONS = (
    "relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)",
    "windowed_necro_relu(negative_slope=0.1, window=3.0)", "sugar_bsilu(alpha=1.67)",
    "sugar_nelu(alpha=0.2)", "sugar_elu", "sugar_selu", "sugar_gelu",
)
Datasets = Annotated[tuple[str, ...], config_lib.comma_separated(str, "DATASET,DATASET,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """ReLU-forward surrogate gradients (NecroReLU, SUGAR) vs relu and leaky_relu on small CNNs."""

  activations: config_lib.Specs = DEFAULT_ACTIVATIONS  # comma-separated registry specs; must include relu (the baseline)
  datasets: Datasets = ("digits", "mnist5k", "mnist1d")  # one part each: mnist1d trains cnn1d, image datasets cnn2d
  cnn2d_width: int = 8  # channels per convolution of the 2-D CNN (16 makes a 28x28 mnist5k grid cost minutes on 2 CPU cores)
  cnn2d_depth: int = 3  # 3x3 stride-2 convolutions of the 2-D CNN (digits: 8x8 -> 1x1, mnist5k: 28x28 -> 4x4)
  cnn1d_width: int = 25  # channels per convolution of the 1-D CNN (the MNIST-1D reference CNN)
  cnn1d_depth: int = 3  # convolutions of the 1-D CNN
  seeds: int = 3  # runs per configuration: seeds 0..N-1 (same seed = same init and batches across activations)
  learning_rates: config_lib.Floats = (1e-3, 1e-2)  # swept learning rates
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer
  steps: int = 600  # optimizer steps per run (digits: 42 epochs, mnist1d and mnist5k: 15)
  batch_size: int = 100  # examples per step
  eval_every: int = 600  # steps between evaluations (each costs passes over the whole data; step 0 is always evaluated)
  init: models.Initializer = "lecun_normal"  # kernel initialiser
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


def model_for(dataset: str) -> str:
  """The CNN a dataset trains: cnn1d for MNIST-1D's sequences, cnn2d for images.

  Examples:
    >>> model_for("mnist1d"), model_for("digits"), model_for("local(path='cifar')")
    ('cnn1d', 'cnn2d', 'cnn2d')
  """
  return "cnn1d" if activations.parse_spec(dataset)[0] == "mnist1d" else "cnn2d"


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  The engine checks the rest (dataset names, a model that fits the data).

  Examples:
    >>> validate(Settings(activations=("necro_relu", "sugar_bsilu")))
    Traceback (most recent call last):
    ...
    ValueError: activations must include relu, the baseline of every difference, got ('necro_relu', 'sugar_bsilu').
  """
  names = [activations.parse_spec(spec)[0] for spec in settings.activations]
  if BASELINE not in names:
    raise ValueError(f"activations must include {BASELINE}, the baseline of every difference,"
                     f" got {settings.activations!r}.")
  for name in (BASELINE, REFERENCE):
    if names.count(name) > 1:
      raise ValueError(f"activations: {name} appears {names.count(name)} times; give it once,"
                       " so the differences have one reference.")
  if not settings.datasets or len(set(settings.datasets)) != len(settings.datasets):
    raise ValueError(f"datasets must name one or more distinct datasets, got {settings.datasets!r}.")
  if settings.seeds < 2:
    raise ValueError(f"seeds must be 2 or more (a paired interval needs two pairs), got {settings.seeds!r}.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per dataset, with the CNN that fits it."""
  found = []
  for dataset in settings.datasets:
    model = model_for(dataset)
    two_d = model == "cnn2d"
    found.append(experiment.Part({"dataset": dataset, "model": model}, Config(
        dataset=dataset, model=model,
        width=settings.cnn2d_width if two_d else settings.cnn1d_width,
        depth=settings.cnn2d_depth if two_d else settings.cnn1d_depth,
        activations=settings.activations, seeds=settings.seeds,
        learning_rates=settings.learning_rates, optimizer=settings.optimizer,
        steps=settings.steps, batch_size=settings.batch_size,
        eval_every=min(settings.eval_every, settings.steps), init=settings.init,
        batching=settings.batching,
    )))
  return found


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # runs.csv rows
  history: list[dict[str, Any]]  # history.csv rows (step 0 holds the step-0 metrics)
  differences: list[dict[str, Any]]  # differences.csv rows: each activation minus relu / leaky_relu
  summary: str  # summary.md


def paired_differences(
    runs: Sequence[Mapping[str, Any]], baseline: str = BASELINE, metric: str = "test_accuracy",
) -> list[dict[str, Any]]:
  """Each activation minus ``baseline`` in ``metric``, paired by seed, per dataset and rate.

  ``baseline`` is a registry name (the runs whose ``name`` it is). Diverged
  runs are left out of the pairs; ``diverged`` counts the activation's.

  Examples:
    >>> rows = [{"dataset": "d", "model": "m", "learning_rate": 0.1, "seed": seed,
    ...          "name": name, "activation": name, "diverged": False, "test_accuracy": value}
    ...         for name, values in (("relu", [0.90, 0.92, 0.91]), ("necro_relu", [0.92, 0.93, 0.94]))
    ...         for seed, value in enumerate(values)]
    >>> [row] = paired_differences(rows)
    >>> row["activation"], row["pairs"], round(row["difference"], 4), row["wins"]
    ('necro_relu', 3, 0.02, 3)
  """
  groups: dict[tuple, dict[str, list[Mapping[str, Any]]]] = {}
  for row in runs:
    key = (row["dataset"], row["model"], float(row["learning_rate"]))
    groups.setdefault(key, {}).setdefault(row["activation"], []).append(row)
  found = []
  for (dataset, model, rate), by_activation in groups.items():
    reference = next((rows for rows in by_activation.values() if rows[0]["name"] == baseline), None)
    if reference is None:
      continue
    for activation, rows in by_activation.items():
      if rows[0]["name"] == baseline:
        continue
      comparison = paired_comparison(_by_seed(rows, metric), _by_seed(reference, metric))
      found.append({
          "dataset": dataset, "model": model, "learning_rate": rate, "activation": activation,
          "name": rows[0]["name"], "baseline": baseline, "pairs": comparison.num_pairs,
          "difference": comparison.mean_difference, "half_width": comparison.half_width,
          "low": comparison.mean_difference - comparison.half_width,
          "high": comparison.mean_difference + comparison.half_width,
          "p": comparison.p_value, "wins": comparison.wins,
          "diverged": sum(bool(r.get("diverged")) for r in rows),
          "baseline_mean": mean_confidence_interval(list(_by_seed(reference, metric).values()))[0],
      })
  return found


def _by_seed(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float]:
  return {int(r["seed"]): float(r[metric]) for r in rows
          if not r.get("diverged") and r.get(metric) is not None and math.isfinite(r[metric])}


def verdict(row: Mapping[str, Any]) -> str:
  """``"beats"``, ``"loses to"``, ``"ties with"`` (the interval holds 0) or ``"n/a"``.

  Examples:
    >>> verdict({"low": 0.01, "high": 0.03}), verdict({"low": -0.01, "high": 0.03})
    ('beats', 'ties with')
    >>> verdict({"low": float("nan"), "high": float("nan")})
    'n/a'
  """
  low, high = row["low"], row["high"]
  if math.isnan(low) or math.isnan(high):
    return "n/a"
  return "beats" if low > 0 else "loses to" if high < 0 else "ties with"


def step_zero_matches(
    history: Sequence[Mapping[str, Any]], name: str, baseline: str = BASELINE,
) -> tuple[int, int]:
  """``(equal, pairs)``: (dataset, seed, rate) cases where ``name`` and ``baseline`` agree at step 0.

  Agree means every metric of :data:`STEP_ZERO_METRICS` is exactly equal.

  Examples:
    >>> rows = [{"dataset": "d", "name": n, "seed": 0, "learning_rate": 0.1, "step": 0,
    ...          "inactive_fraction": 0.0, "sparsity": 0.5, "test_accuracy": 0.1}
    ...         for n in ("relu", "sugar_nelu")]
    >>> step_zero_matches(rows, "sugar_nelu")
    (1, 1)
  """
  def at_step_zero(wanted: str) -> dict[tuple, tuple]:
    return {(r["dataset"], r["seed"], r["learning_rate"]): tuple(r.get(m) for m in STEP_ZERO_METRICS)
            for r in history if r["step"] == 0 and r["name"] == wanted}

  mine, theirs = at_step_zero(name), at_step_zero(baseline)
  both = mine.keys() & theirs.keys()
  return sum(mine[key] == theirs[key] for key in both), len(both)


def _points(value: float) -> str:
  return "-" if math.isnan(value) else f"{round(100 * value, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def _interval(row: Mapping[str, Any]) -> str:
  """``+1.23 pp [+0.31, +2.15]``: the mean paired difference and its 95% interval."""
  return f"{_points(row['difference'])} pp [{_points(row['low'])}, {_points(row['high'])}]"


def _rate_answer(differences: Sequence[Mapping[str, Any]], baseline: str) -> list[str]:
  """One bullet per (dataset, rate): who beats, loses to and ties with ``baseline``."""
  lines = []
  for dataset, model, rate in dict.fromkeys((r["dataset"], r["model"], r["learning_rate"]) for r in differences):
    mine = [r for r in differences if (r["dataset"], r["model"], r["learning_rate"]) == (dataset, model, rate)]
    by_verdict = {v: [r for r in mine if verdict(r) == v] for v in ("beats", "loses to", "ties with", "n/a")}
    text = [", ".join(f"{r['activation']} {_interval(r)}" for r in rows) or "none"
            for rows in by_verdict.values()]
    lines.append(
        f"- {dataset} ({model}), learning rate {rate:g}, {baseline} at"
        f" {100 * mine[0]['baseline_mean']:.1f}%: beat {baseline}: {text[0]}. Lost to it: {text[1]}."
        f" No difference detectable (interval holds 0): {text[2]}."
        + (f" Not comparable (too few pairs): {text[3]}." if by_verdict["n/a"] else ""))
  return lines


def _tally(differences: Sequence[Mapping[str, Any]], baseline: str) -> str:
  """The headline: how many comparisons with ``baseline`` are gains, losses and ties, and which."""
  by_verdict = {v: [r for r in differences if verdict(r) == v] for v in ("beats", "loses to", "ties with")}

  def which(rows: Sequence[Mapping[str, Any]]) -> str:
    named = "; ".join(f"{r['activation']} on {r['dataset']} at {r['learning_rate']:g}: {_interval(r)}"
                      for r in rows)
    return f" ({named})" if rows else ""

  pairs = max((r["pairs"] for r in differences), default=0)
  return (f"- Against {baseline}, over {len(differences)} (activation, dataset, learning rate)"
          f" comparisons: {len(by_verdict['beats'])} gains{which(by_verdict['beats'])},"
          f" {len(by_verdict['loses to'])} losses{which(by_verdict['loses to'])},"
          f" {len(by_verdict['ties with'])} with an interval that holds 0 (at most {pairs} seed pairs"
          " each: a tie means no difference was detected, not that there is none).")


def _sugar_answer(differences: Sequence[Mapping[str, Any]]) -> list[str]:
  """How the best SUGAR gain over relu compares with the large gains the paper reports."""
  sugar = [r for r in differences if r["name"].startswith("sugar_") and not math.isnan(r["difference"])]
  if not sugar:
    return ["- No SUGAR surrogate (sugar_*) was run, so SUGAR's claim is not tested here."]
  best = max(sugar, key=lambda r: r["difference"])
  surest = max(sugar, key=lambda r: -math.inf if math.isnan(r["low"]) else r["low"])
  large = [r for r in sugar if r["low"] > LARGE_GAIN]
  size = (f"{len(large)} of {len(sugar)} SUGAR comparisons gain more than {100 * LARGE_GAIN:.0f} pp"
          " with confidence (whole interval above it): "
          + ", ".join(f"{r['activation']} on {r['dataset']} at {r['learning_rate']:g}" for r in large)
          if large else
          f"none of the {len(sugar)} SUGAR comparisons gains more than {100 * LARGE_GAIN:.0f} pp"
          f" with confidence: the highest lower bound is {_points(surest['low'])} pp"
          f" ({surest['activation']}, {surest['dataset']}, {surest['learning_rate']:g})")
  headroom = 1 - best["baseline_mean"]
  return [
      "- SUGAR's size: Horuz et al. report large gains with VGG-16 and ResNet-18 on CIFAR-10/100"
      " (B-SiLU gave their largest, per the registry's docstring; this repository quotes no figure)."
      f" Here the largest mean SUGAR gain over relu is {_interval(best)} ({best['activation']},"
      f" {best['dataset']}, learning rate {best['learning_rate']:g}, where relu's test error is"
      f" {100 * headroom:.1f}%, the most any activation could gain); {size}."
      + (" Nothing here is a gain of the size SUGAR reports." if not large else ""),
  ]


def _dead_answer(runs: Sequence[Mapping[str, Any]]) -> list[str]:
  """Final dead and inactive fractions per activation, over every dataset and rate."""
  parts_text = []
  for activation in dict.fromkeys(r["activation"] for r in runs):
    mine = [r for r in runs if r["activation"] == activation and not r.get("diverged")]
    dead = [r["dead_fraction"] for r in mine if r.get("dead_fraction") is not None]
    inactive = [r["inactive_fraction"] for r in mine if r.get("inactive_fraction") is not None]
    if not dead:
      continue
    dead_text = "never dead" if max(dead) == 0 else (
        f"dead {100 * float(np.mean(dead)):.1f}% on average, up to {100 * max(dead):.1f}% in a run")
    parts_text.append(f"{activation}: {dead_text}; inactive {100 * float(np.mean(inactive)):.1f}%"
                      f" (up to {100 * max(inactive):.1f}%)")
  return ["- Dead units after training (backward derivative 0 on every training example; mean over"
          " runs and layers, every dataset and rate): " + "; ".join(parts_text) + ". Surrogates keep"
          " ReLU's forward, so they have inactive units (z <= 0 everywhere), but such a unit is dead"
          " only where its backward derivative is 0 too (windowed_necro_relu below -window; a"
          " smooth derivative that underflows to 0 far below 0)."]


def _step_zero_answer(history: Sequence[Mapping[str, Any]]) -> list[str]:
  names = sorted({r["name"] for r in history if r["name"] != BASELINE and registry.relu_forward(r["name"])})
  if not names or not any(r["name"] == BASELINE for r in history):
    return []
  counts = {name: step_zero_matches(history, name) for name in names}
  equal, total = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
  wording, so = (("equals", ", so every difference above comes from the backward pass") if equal == total
                 else ("does NOT always equal", ": a forward pass or initialisation differs"))
  return [f"- Same forward, same start: at step 0 every ReLU-forward surrogate {wording} relu at"
          f" the same seed in inactive fraction, sparsity and test accuracy ({equal} of {total}"
          f" (surrogate, dataset, seed, rate) cases exactly equal; {', '.join(names)}){so}."]


def _not_testable(settings: Settings) -> list[str]:
  shapes = ", ".join(dict.fromkeys(
      f"{part.config.model} with {part.config.depth} convolutions of {part.config.width} channels"
      for part in parts(settings)))
  return [
      "- Not testable offline here: SUGAR's setting. No CIFAR-10/100 is on this machine (nothing is"
      " downloaded; `local(path=...)` would read a CIFAR-10 folder if one were there), the engine"
      " has no VGG-16 or ResNet-18 (no batch norm, pooling or skip connections), and 2 CPU cores"
      f" could not train them. Our CNNs are shallow and narrow ({shapes}; {settings.steps} steps):"
      " VGG-16 has 16 weight layers, ResNet-18 18, so a gain that needs depth cannot show here, and"
      " a tie here does not refute SUGAR at scale.",
  ]


def _differences_table(differences: Sequence[Mapping[str, Any]]) -> list[str]:
  lines = ["| dataset | learning rate | activation | vs | pairs | difference [95% CI] | p | wins | diverged |",
           "|---|---:|---|---|---:|---:|---:|---:|---:|"]
  for r in differences:
    p_value = "-" if math.isnan(r["p"]) else f"{r['p']:.3g}"
    lines.append(f"| {r['dataset']} | {r['learning_rate']:g} | {r['activation']} | {r['baseline']} |"
                 f" {r['pairs']} | {_interval(r)} | {p_value} | {r['wins']}/{r['pairs']} | {r['diverged']} |")
  return lines


def _summary(settings: Settings, command: str, trained: experiment.Trained,
             differences: Sequence[Mapping[str, Any]], seconds: float) -> str:
  versus_relu = [r for r in differences if r["baseline"] == BASELINE]
  versus_leaky = [r for r in differences if r["baseline"] == REFERENCE]
  lines = [f"# {NAME}: do ReLU-forward surrogate gradients (NecroReLU, SUGAR) beat relu and"
           " leaky_relu on CNNs?", "", "## Answer", ""]
  lines += [_tally(versus_relu, BASELINE)] + ([_tally(versus_leaky, REFERENCE)] if versus_leaky else [])
  lines += _sugar_answer(versus_relu) + _dead_answer(trained.runs) + _step_zero_answer(trained.history)
  lines += _not_testable(settings) + _rate_answer(versus_relu, BASELINE) + _rate_answer(versus_leaky, REFERENCE)
  lines += ["", "Differences: final test accuracy of the activation minus the baseline's at the same"
            " seed and learning rate (same initial weights and batches), in percentage points, mean"
            " over seeds with its 95% paired t interval; diverged runs are left out of the pairs.", "",
            "## Final accuracy, dead and inactive units per configuration", "",
            summary.grouped_table(trained.runs, ["dataset", "learning_rate", "activation"],
                                  ["test_accuracy", "dead_fraction", "inactive_fraction", "sparsity"]), "",
            "## Paired differences", "", *_differences_table(differences), "",
            f"Plot: `{DIFFERENCES_PLOT}` (per dataset and learning rate, each activation minus relu"
            " with its paired 95% interval). Data: `runs.csv`, `history.csv`, `layers.csv`,"
            " `differences.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids)
  return "\n".join(lines)


def _plots(differences: Sequence[Mapping[str, Any]], folder: pathlib.Path) -> None:
  versus_relu = [r for r in differences if r["baseline"] == BASELINE]
  datasets = list(dict.fromkeys(r["dataset"] for r in versus_relu))
  rates = sorted({r["learning_rate"] for r in versus_relu})
  names = list(dict.fromkeys(r["activation"] for r in versus_relu))
  short = {r["activation"]: r["name"] for r in versus_relu}  # registry names label the bars when unique
  labels = [short[n] for n in names] if len(set(short.values())) == len(names) else names
  figure = plots.new_figure(max(6.0, 4.2 * len(rates)), 3.2 * len(datasets) + 0.6)
  axes = figure.subplots(len(datasets), len(rates), squeeze=False, sharey="row")
  for row_axes, dataset in zip(axes, datasets):
    for axis, rate in zip(row_axes, rates):
      mine = {r["activation"]: r for r in versus_relu if r["dataset"] == dataset and r["learning_rate"] == rate}
      for position, activation in enumerate(names):
        r = mine.get(activation)
        if r is None or math.isnan(r["difference"]):
          continue
        error = 0 if math.isnan(r["half_width"]) else 100 * r["half_width"]
        axis.bar(position, 100 * r["difference"], 0.8, yerr=error, capsize=3, color=f"C{position % 10}",
                 label=activation)
      axis.axhline(0, color="black", linewidth=0.8)
      axis.set_xticks(range(len(names)), labels, rotation=45, ha="right", fontsize=7)
      axis.set_title(f"{dataset}, learning rate {rate:g}", fontsize=9)
      axis.set_ylabel("test accuracy minus relu (pp)")
      axis.grid(alpha=0.3, axis="y")
  figure.suptitle("Test accuracy minus relu's at the same seed: mean and 95% paired interval", fontsize=10)
  plots.save_figure(figure, folder, DIFFERENCES_PLOT)


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False,
    command: str = "",
) -> Outcome:
  """Trains every dataset x activation x seed x learning rate and compares with relu and leaky_relu.

  Writes the engine's files, ``differences.csv``, ``summary.md`` and
  ``accuracy_difference.png`` into ``out`` (default
  ``results/surrogates-<timestamp>``). Rerunning with the same folder resumes;
  ``tests/test_study_surrogates.py`` runs it at tiny settings.
  """
  validate(settings)
  started = time.perf_counter()
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  trained = experiment.train_pending(prepared, quiet=quiet)
  differences = paired_differences(trained.runs, BASELINE) + paired_differences(trained.runs, REFERENCE)
  report = _summary(settings, command, trained, differences, time.perf_counter() - started)
  experiment.write_outputs(
      trained.out, {"differences.csv": results.csv_text(differences), "summary.md": report},
      lambda folder: _plots(differences, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, trained.runs, trained.history, differences, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Surrogates: do ReLU-forward surrogate gradients (NecroReLU, SUGAR) beat relu and leaky_relu on CNNs?

  Args:
    settings: the study.
    out: output folder; empty means results/surrogates-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
