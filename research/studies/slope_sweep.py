"""Slope sweep: where the surrogate's negative slope helps, where it hurts, and at which learning rate.

NecroReLU is ReLU forward with LeakyReLU's derivative below zero; its one
hyperparameter is that slope (0.1 in the research brief). At slope 0 it *is*
ReLU (the same forward and, except at a pre-activation of exactly 0, the same
backward), so sweeping the slope from 0 measures the surrogate's effect against
ReLU seed by seed. LeakyReLU with the same slope has the same derivative below
zero but a different forward pass (slope 1 makes it the identity: a linear
network); the windowed NecroReLU of the ``dying`` study passes the slope only
within ``window`` below zero. Comparing them slope by slope separates what the
backward pass does from what the forward pass does.

Measured, per dataset (one engine part each, an MLP), learning rate and
activation: the test accuracy at each slope, its paired difference from slope 0
at the same seed (95% t interval), the diverged runs per cell, the best slope
per learning rate and the slopes within seed noise of it, and NecroReLU minus
LeakyReLU at the same slope. Every slope, learning rate and seed of one
activation is one grid: one compiled program, the slope an array on the runs
axis (:mod:`research.grid`). Plain ReLU is trained too, as a check that slope 0
reproduces it exactly.

Default (the full study): MNIST-1D and MNIST-5k, MLP 100-100, Adam at learning
rates 0.001, 0.01 and 0.03 (the ``dying`` study found NecroReLU(0.1) diverging
from 0.03), slopes 0, 0.01, 0.03, 0.1, 0.3, 1, 3 seeds, 1500 steps: 342 runs.
On 2 CPU cores shared with other jobs (load average 7-8) it took 338 s
(training 333 s). Command::

  python -m research slope-sweep --out results/slope-sweep
  python -m research slope-sweep --datasets mnist1d --learning-rates 0.01 --steps 300
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
from scipy import stats

import activations
from research import config as config_lib
from research import experiment, grid, models, plots, results, summary
from research.config import Config, Floats, Specs
from research.statistics import CONFIDENCE, mean_confidence_interval, paired_comparison
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "slope-sweep"
SLOPE = "negative_slope"  # the swept hyperparameter
REFERENCE = "relu"  # trained beside the sweeps: slope 0 must reproduce it
PLOT = "accuracy_vs_slope.png"
EXACT_COLUMNS = ("diverged", "test_accuracy", "test_loss", "train_loss", "train_accuracy")


@dataclasses.dataclass(frozen=True)
class Settings:
  """Test accuracy against the surrogate's negative slope, per dataset, learning rate and activation."""

  datasets: Specs = ("mnist1d", "mnist5k")  # comma-separated research.data specs, one part each
  activations: Specs = ("necro_relu", "leaky_relu", "windowed_necro_relu(window=3.0)")  # registry specs with a negative_slope, which the study sweeps (do not set it)
  slopes: Floats = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)  # negative slopes, one compiled program per activation; must include 0 (ReLU, the baseline)
  relu_reference: bool = True  # also train plain relu, to check that slope 0 reproduces it exactly
  learning_rates: Floats = (1e-3, 1e-2, 3e-2)  # swept learning rates
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer
  seeds: int = 3  # runs per cell: seeds 0..N-1 (same seed = same init and batches at every slope)
  steps: int = 1500  # optimizer steps per run
  width: int = 100  # hidden units per MLP layer
  depth: int = 2  # hidden layers
  batch_size: int = 100  # examples per step
  eval_every: int = 500  # steps between evaluations
  init: models.Initializer = "lecun_normal"  # kernel initialiser (research.models)
  divergence_factor: float = 10.0  # a run diverges when its loss is non-finite or exceeds this multiple of its initial loss
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


def swept_spec(spec: str, slopes: Sequence[float]) -> str:
  """``spec`` with its negative slope swept over ``slopes`` (one grid, one program).

  Examples:
    >>> swept_spec("windowed_necro_relu(window=3.0)", [0.0, 0.1])
    'windowed_necro_relu(window=3.0, negative_slope=[0.0, 0.1])'
  """
  name, values = activations.parse_spec(spec)
  arguments = [f"{key}={value!r}" for key, value in values.items()]
  arguments.append(f"{SLOPE}=[{', '.join(repr(float(slope)) for slope in slopes)}]")
  return f"{name}({', '.join(arguments)})"


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(activations=("elu",)))
    Traceback (most recent call last):
    ...
    ValueError: activations: 'elu' has no negative_slope to sweep. Choose activations that have one, e.g. necro_relu, leaky_relu, windowed_necro_relu.
  """
  if 0.0 not in settings.slopes:
    raise ValueError(f"slopes must include 0 (ReLU, the baseline of every comparison), got {settings.slopes!r}.")
  if len(set(settings.slopes)) != len(settings.slopes):
    raise ValueError(f"slopes has duplicates: {settings.slopes!r}.")
  for field in ("datasets", "activations"):
    values = getattr(settings, field)
    if not values or len(set(values)) != len(values):
      raise ValueError(f"{field} must name one or more distinct values, got {values!r}.")
  for spec in settings.activations:
    name, values = activations.parse_spec(spec)
    if SLOPE not in activations.hyperparameters(name):  # raises for an unknown name
      raise ValueError(f"activations: {spec!r} has no {SLOPE} to sweep. Choose activations that have"
                       " one, e.g. necro_relu, leaky_relu, windowed_necro_relu.")
    if SLOPE in values:
      raise ValueError(f"activations: {spec!r} sets {SLOPE}; the study sweeps it over --slopes, leave it out.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per dataset: a grid per activation (every slope), and relu.

  Examples:
    >>> [part.config.activations for part in parts(Settings(datasets=("digits",),
    ...     activations=("necro_relu",), slopes=(0.0, 0.1)))]
    [('relu', 'necro_relu(negative_slope=[0.0, 0.1])')]
  """
  validate(settings)
  specs = tuple(swept_spec(spec, settings.slopes) for spec in settings.activations)
  built = []
  for dataset in settings.datasets:
    config = Config(
        dataset=dataset, model="mlp", width=settings.width, depth=settings.depth,
        activations=((REFERENCE,) if settings.relu_reference else ()) + specs,
        seeds=settings.seeds, learning_rates=settings.learning_rates, optimizer=settings.optimizer,
        steps=settings.steps, batch_size=settings.batch_size, eval_every=settings.eval_every,
        init=settings.init, divergence_factor=settings.divergence_factor, batching=settings.batching,
    )
    config_lib.validate(config)
    grid.expand(config)  # the registry checks every slope, e.g. windowed_necro_relu's >= 0
    built.append(experiment.Part({"dataset": dataset}, config))
  return built


def family_column(settings: Settings) -> experiment.RunColumns:
  """The ``family`` column of ``runs.csv``: the activation spec as given, without its slope."""
  family_of = {swept_spec(spec, settings.slopes): spec for spec in settings.activations}
  return lambda row: {"family": family_of.get(row["grid"], row["grid"])}


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # runs.csv rows
  effects: list[dict[str, Any]]  # slope_effects.csv: each slope against slope 0, paired by seed
  best: list[dict[str, Any]]  # best_slopes.csv: per dataset, learning rate and activation
  forward_backward: list[dict[str, Any]]  # forward_backward.csv: necro_relu minus leaky_relu per slope
  summary: str  # summary.md


# --- pure helpers over runs.csv rows --------------------------------------------


def _matching(runs: Sequence[Mapping[str, Any]], **where: Any) -> list[Mapping[str, Any]]:
  return [r for r in runs if all(r.get(key) == value for key, value in where.items())]


def _slopes(runs: Sequence[Mapping[str, Any]], **where: Any) -> list[float]:
  """The swept slopes of the rows matching ``where``, ascending."""
  return sorted({r[SLOPE] for r in _matching(runs, **where) if r.get(SLOPE) is not None})


def _accuracy_by_seed(runs: Sequence[Mapping[str, Any]], **where: Any) -> tuple[dict[int, float], int]:
  """``({seed: test accuracy} of the healthy runs, diverged runs)`` of the rows matching ``where``."""
  mine = _matching(runs, **where)
  healthy = {r["seed"]: r["test_accuracy"] for r in mine if not r.get("diverged")}
  return healthy, len(mine) - len(healthy)


def verdict(diverged: int, baseline_diverged: int, low: float, high: float) -> str:
  """``helps``, ``hurts`` or ``no clear effect``: divergences first, then the accuracy interval.

  Examples:
    >>> verdict(0, 0, 0.004, 0.02), verdict(2, 0, 0.01, 0.02), verdict(0, 0, -0.01, 0.02)
    ('helps', 'hurts', 'no clear effect')
  """
  if diverged != baseline_diverged:
    return "helps" if diverged < baseline_diverged else "hurts"
  if low > 0:
    return "helps"
  if high < 0:
    return "hurts"
  return "no clear effect"


def compare_cells(treatment: tuple[dict[int, float], int], baseline: tuple[dict[int, float], int]) -> dict[str, Any]:
  """Paired difference in accuracy (treatment minus baseline) with its interval, divergences, verdict."""
  (treated, diverged), (control, baseline_diverged) = treatment, baseline
  result = paired_comparison(treated, control)
  low, high = result.mean_difference - result.half_width, result.mean_difference + result.half_width
  return {"pairs": result.num_pairs, "difference": result.mean_difference, "low": low, "high": high,
          "p": result.p_value, "diverged": diverged, "baseline_diverged": baseline_diverged,
          "verdict": verdict(diverged, baseline_diverged, low, high)}


def _cells(runs: Sequence[Mapping[str, Any]]) -> list[tuple[Any, float, str]]:
  """(dataset, learning rate, family) of the swept runs, in order of appearance."""
  return list(dict.fromkeys((r["dataset"], r["learning_rate"], r["family"]) for r in runs
                            if r.get(SLOPE) is not None))


def slope_effects(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Each nonzero slope against slope 0 of the same activation, learning rate and seed."""
  rows = []
  for dataset, rate, family in _cells(runs):
    where = {"dataset": dataset, "learning_rate": rate, "family": family}
    baseline = _accuracy_by_seed(runs, **where, **{SLOPE: 0.0})
    for slope in _slopes(runs, **where):
      if slope != 0.0:
        rows.append({**where, "slope": slope,
                     **compare_cells(_accuracy_by_seed(runs, **where, **{SLOPE: slope}), baseline)})
  return rows


def best_slopes(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Per (dataset, learning rate, family): the slope of highest mean accuracy with no diverged run.

  ``tied`` lists the slopes, also without divergence, whose paired difference
  from the best has an interval that includes 0: within seed noise of it.

  Examples:
    >>> runs = [{"dataset": "d", "learning_rate": 0.1, "family": "f", SLOPE: s, "seed": seed,
    ...          "diverged": s == 1.0, "test_accuracy": a + 0.01 * seed}
    ...         for s, a in ((0.0, 0.5), (0.1, 0.6), (1.0, 0.9)) for seed in range(3)]
    >>> row = best_slopes(runs)[0]
    >>> row["best"], row["tied"], round(row["mean"], 3)
    (0.1, (0.1,), 0.61)
  """
  rows = []
  for dataset, rate, family in _cells(runs):
    where = {"dataset": dataset, "learning_rate": rate, "family": family}
    cells = {slope: _accuracy_by_seed(runs, **where, **{SLOPE: slope}) for slope in _slopes(runs, **where)}
    stable = {slope: cell[0] for slope, cell in cells.items() if cell[1] == 0 and cell[0]}
    if not stable:
      rows.append({**where, "best": None, "mean": math.nan, "half_width": math.nan, "tied": ()})
      continue
    best = max(stable, key=lambda slope: np.mean(list(stable[slope].values())))
    tied = tuple(slope for slope in stable
                 if slope == best or not compare_cells((stable[best], 0), (stable[slope], 0))["low"] > 0)
    mean, half_width = mean_confidence_interval(list(stable[best].values()))
    rows.append({**where, "best": best, "mean": mean, "half_width": half_width, "tied": tied})
  return rows


def forward_backward(runs: Sequence[Mapping[str, Any]], first: str, second: str) -> list[dict[str, Any]]:
  """Family ``first`` minus family ``second`` at the same dataset, learning rate, slope and seed."""
  rows = []
  for dataset, rate, family in _cells(runs):
    if family != first:
      continue
    where = {"dataset": dataset, "learning_rate": rate}
    for slope in (s for s in _slopes(runs, **where, family=first) if s != 0.0):  # 0 is ReLU for both
      rows.append({**where, "slope": slope, **compare_cells(
          _accuracy_by_seed(runs, **where, family=first, **{SLOPE: slope}),
          _accuracy_by_seed(runs, **where, family=second, **{SLOPE: slope}))})
  return rows


def exact_matches(runs: Sequence[Mapping[str, Any]], family: str, reference: str = REFERENCE) -> tuple[int, int]:
  """``(equal, pairs)``: runs of ``family`` at slope 0 whose final metrics equal ``reference``'s exactly.

  ``reference`` is relu or another swept family (then at slope 0 too). Pairs
  are matched on dataset, learning rate and seed; compared are
  :data:`EXACT_COLUMNS`.

  Examples:
    >>> rows = [{"dataset": "d", "learning_rate": 0.1, "seed": 0, "family": f, SLOPE: s,
    ...          "test_accuracy": 0.5} for f, s in (("relu", None), ("necro_relu", 0.0))]
    >>> exact_matches(rows, "necro_relu")
    (1, 1)
  """
  def key(row: Mapping[str, Any]) -> tuple:
    return row["dataset"], row["learning_rate"], row["seed"]

  def values(row: Mapping[str, Any]) -> tuple:
    return tuple(row.get(column) for column in EXACT_COLUMNS)

  references = {key(r): values(r) for r in runs if r["family"] == reference and r.get(SLOPE) in (None, 0.0)}
  swept = {key(r): values(r) for r in runs if r["family"] == family and r.get(SLOPE) == 0.0}
  both = references.keys() & swept.keys()
  return sum(references[k] == swept[k] for k in both), len(both)


# --- the summary ------------------------------------------------------------------


def _points(row: Mapping[str, Any]) -> str:
  """A paired accuracy difference in percentage points with its 95% interval."""
  if not row["pairs"]:
    return "no pair without divergence"
  interval = "one pair" if math.isnan(row["low"]) else f"{100 * row['low']:+.1f}, {100 * row['high']:+.1f}"
  return f"{100 * row['difference']:+.1f} points [{interval}]"


def _cell_text(row: Mapping[str, Any], seeds: int) -> str:
  text = f"lr {row['learning_rate']:g} slope {row['slope']:g}: "
  if row["diverged"] != row["baseline_diverged"]:
    return text + f"{row['diverged']} of {seeds} diverged vs {row['baseline_diverged']}"
  return text + _points(row)


def _verdicts(rows: Sequence[Mapping[str, Any]], seeds: int, words: tuple[str, str, str]) -> str:
  """``helps in 2 of 15 cells (...); hurts in 1 (...); no clear effect in 12``."""
  listed = [[_cell_text(r, seeds) for r in rows if r["verdict"] == key] for key in ("helps", "hurts")]
  shown = [f" ({'; '.join(cells)})" if cells else "" for cells in listed]
  return (f"{words[0]} in {len(listed[0])} of {len(rows)} cells{shown[0]}; {words[1]} in {len(listed[1])}{shown[1]};"
          f" {words[2]} in {len(rows) - len(listed[0]) - len(listed[1])}")


def _best_text(row: Mapping[str, Any], effects: Sequence[Mapping[str, Any]]) -> str:
  if row["best"] is None:
    return f"lr {row['learning_rate']:g}: none (every slope diverged in some seed)"
  estimate = summary.format_estimate("test_accuracy", row["mean"], row["half_width"])
  gain = next((f", {_points(e)} vs slope 0" for e in effects if e["slope"] == row["best"] and all(
      e[k] == row[k] for k in ("dataset", "learning_rate", "family"))), "")
  tied = ", ".join(f"{slope:g}" for slope in row["tied"])
  return f"lr {row['learning_rate']:g}: {row['best']:g} ({estimate}{gain}; within noise: {tied})"


def _dependence(found: Sequence[Mapping[str, Any]]) -> str:
  """Whether the best slope depends on the learning rate, beyond seed noise or not."""
  if len(found) < 2:
    return "Too few learning rates with a stable slope to say whether the best one depends on the rate."
  if len({r["best"] for r in found}) == 1:
    return f"The best slope is {found[0]['best']:g} at every learning rate."
  common = sorted(set.intersection(*(set(r["tied"]) for r in found)))
  if common:
    return ("The best slope changes with the learning rate, but not beyond seed noise: "
            f"{'slope' if len(common) == 1 else 'slopes'} {', '.join(f'{slope:g}' for slope in common)}"
            f" {'is' if len(common) == 1 else 'are'} within noise of the best at every rate.")
  return ("The best slope depends on the learning rate beyond seed noise: no slope is within noise of the best"
          " at every rate.")


def _family_named(settings: Settings, name: str) -> str | None:
  return next((spec for spec in settings.activations if activations.parse_spec(spec)[0] == name), None)


def _in_short(effects: Sequence[Mapping[str, Any]], dataset: str, seeds: int) -> str:
  """Per dataset: how often a slope helped or hurt, per slope, and the diverged runs per cell."""
  mine = [r for r in effects if r["dataset"] == dataset]
  count = lambda rows, key: sum(r["verdict"] == key for r in rows)  # noqa: E731
  by_divergence = sum(r["verdict"] == "hurts" and r["diverged"] > r["baseline_diverged"] for r in mine)
  per_slope = "; ".join(f"{slope:g}: {count(rows, 'helps')}/{count(rows, 'hurts')}" for slope, rows in (
      (slope, [r for r in mine if r["slope"] == slope]) for slope in sorted({r["slope"] for r in mine})))
  failing = dict.fromkeys(f"{r['family']} lr {r['learning_rate']:g} slope 0: {r['baseline_diverged']}"
                          for r in mine if r["baseline_diverged"])
  failing.update(dict.fromkeys(f"{r['family']} lr {r['learning_rate']:g} slope {r['slope']:g}: {r['diverged']}"
                               for r in mine if r["diverged"]))
  return (f"- **{dataset} in short**: of {len(mine)} (activation, learning rate, slope) cells, a nonzero slope"
          f" helped in {count(mine, 'helps')} and hurt in {count(mine, 'hurts')} ({by_divergence} of them by"
          f" diverged runs; by chance alone about {(1 - CONFIDENCE) * (len(mine) - by_divergence):.1f} of the others"
          f" would show an effect at 95%); helped/hurt per slope: {per_slope}. Diverged runs per cell (of {seeds}): "
          + ("; ".join(failing) or "none") + ".")


def _exactness(settings: Settings, runs: Sequence[Mapping[str, Any]]) -> str:
  """Whether slope 0 reproduced relu, and whether the swept activations agree with each other there."""
  counts = {family: exact_matches(runs, family) for family in settings.activations}
  text = "- **Slope 0 is ReLU**: reproduced relu exactly (" + ", ".join(EXACT_COLUMNS) + ") in " + "; ".join(
      f"{equal} of {pairs} runs for {family}" for family, (equal, pairs) in counts.items()) + "."
  first, *others = settings.activations
  mutual = [exact_matches(runs, other, reference=first) for other in others]
  if not mutual:
    return text
  agree = all(equal == pairs for equal, pairs in mutual)
  text += (f" At slope 0 the swept activations agree with each other in every run" if agree else
           " At slope 0 the swept activations do not all agree with each other") + "."
  if agree and any(equal < pairs for equal, pairs in counts.values()):
    text += (" So the runs that differ from relu differ by the one thing the sweep's programs share and relu's"
             " does not: the derivative at a pre-activation of exactly 0 (1 for the sweep, 0 for relu), which"
             " float32 training meets now and then.")
  return text


def _answer(settings: Settings, runs, effects, best, versus) -> list[str]:
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  lines = []
  for dataset in settings.datasets:
    lines.append(_in_short(effects, dataset, settings.seeds))
    for family in settings.activations:
      mine = [r for r in effects if (r["dataset"], r["family"]) == (dataset, family)]
      lines.append(f"- **{dataset}, {family}** vs slope 0 (ReLU), paired by seed: "
                   + _verdicts(mine, settings.seeds, ("helps", "hurts", "no clear effect")) + ".")
    for family in settings.activations:
      mine = [r for r in best if (r["dataset"], r["family"]) == (dataset, family)]
      lines.append(f"- **{dataset}, {family}**, best slope per learning rate: "
                   + "; ".join(_best_text(r, effects) for r in mine) + ". "
                   + _dependence([r for r in mine if r["best"] is not None]))
    if necro and leaky:
      mine = [r for r in versus if r["dataset"] == dataset]
      lines.append(
          f"- **{dataset}, forward vs backward**: {necro} minus {leaky} at the same slope (the same derivative"
          " below zero; ReLU's forward vs the leaky one), paired by seed: "
          + _verdicts(mine, settings.seeds, ("better", "worse", "no clear difference"))
          + f". Diverged runs: {sum(r['diverged'] for r in mine)} vs {sum(r['baseline_diverged'] for r in mine)}.")
  if not (necro and leaky):
    lines.append("- Forward vs backward: not measured (it needs necro_relu and leaky_relu among the activations).")
  if settings.relu_reference:
    lines.append(_exactness(settings, runs))
  return lines


def _accuracy_table(runs: Sequence[Mapping[str, Any]], settings: Settings, dataset: str) -> list[str]:
  """Test accuracy per slope (columns) for each learning rate and activation (rows)."""
  lines = ["| learning rate | activation | " + " | ".join(f"{s:g}" for s in settings.slopes) + " |",
           "|---|---|" + "---:|" * len(settings.slopes)]
  for rate in settings.learning_rates:
    for family in settings.activations:
      cells = []
      for slope in settings.slopes:
        where = {"dataset": dataset, "learning_rate": rate, "family": family, SLOPE: slope}
        healthy, diverged = _accuracy_by_seed(runs, **where)
        estimate = summary.format_estimate("test_accuracy", *mean_confidence_interval(list(healthy.values())))
        cells.append(estimate + (f" ({diverged} div.)" if diverged else ""))
      lines.append(f"| {rate:g} | {family} | " + " | ".join(cells) + " |")
  return lines


def _comparison_table(rows: Sequence[Mapping[str, Any]], by: Sequence[str]) -> list[str]:
  lines = ["| " + " | ".join(by) + " | pairs | difference [95% CI] | p | diverged | baseline diverged | verdict |",
           "|" + "---|" * len(by) + "---:|---:|---:|---:|---:|---|"]
  for row in rows:
    p = "-" if math.isnan(row["p"]) else f"{row['p']:.3g}"
    lines.append("| " + " | ".join(f"{row[k]:g}" if isinstance(row[k], float) else str(row[k]) for k in by)
                 + f" | {row['pairs']} | {_points(row)} | {p} | {row['diverged']} | {row['baseline_diverged']}"
                 f" | {row['verdict']} |")
  return lines


def _summary(settings: Settings, command: str, trained: experiment.Trained, effects, best, versus,
             seconds: float) -> str:
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  lines = [f"# {NAME}: where does the surrogate's negative slope help or hurt, and does the best slope"
           " depend on the learning rate?", "", "## Answer", "",
           *_answer(settings, trained.runs, effects, best, versus), "",
           "*Helps* / *hurts*: fewer / more diverged runs than at slope 0 (same activation, learning rate"
           " and seeds), else a paired difference in test accuracy whose 95% Student t interval over seeds"
           " excludes 0 (diverged runs are left out of the pairs and counted). *Within noise* of the best:"
           " slopes without divergence whose paired difference from the best includes 0. With"
           f" {settings.seeds} seeds an interval is ± {stats.t.ppf((1 + CONFIDENCE) / 2, max(settings.seeds - 1, 1)):.2f}"
           " standard errors: only large effects are resolved; 'no clear effect' means not resolved, not absent.",
           ""]
  for dataset in settings.datasets:
    lines += [f"## Test accuracy per slope: {dataset}", "", *_accuracy_table(trained.runs, settings, dataset), ""]
  lines += ["## Each slope against slope 0 (paired by seed)", "",
            *_comparison_table(effects, ["dataset", "learning_rate", "family", "slope"]), ""]
  if versus:
    lines += [f"## {necro} minus {leaky} at the same slope (paired by seed)", "",
              *_comparison_table(versus, ["dataset", "learning_rate", "slope"]), ""]
  lines += ["## Every cell: accuracy and units", "",
            summary.grouped_table(trained.runs, ["dataset", "learning_rate", "family", SLOPE],
                                  ["test_accuracy", "dead_fraction", "inactive_fraction"]), "",
            "## What is not tested", "",
            "- Only MLPs and one optimizer: CNNs and SGD are left to the other studies.",
            "- At slope 1, leaky_relu is the identity: the network is linear, so its accuracy is a linear"
            " model's. necro_relu at slope 1 is ReLU forward with a straight-through (identity) backward.",
            "- Slope 0 matches ReLU except where a pre-activation is exactly 0 or subnormal (XLA's CPU flushes"
            " those to 0; the sweep's derivative there is 1, relu's 0): the exact-match count above says"
            " whether that ever mattered.", "",
            f"Plot: `{PLOT}` (test accuracy vs slope, symlog x axis with 0 shown; a panel per dataset and"
            " learning rate; bands are 95% t intervals; crosses mark cells with diverged runs; the dashed line"
            " is relu). Data: `runs.csv` (its `family` column), `slope_effects.csv`, `best_slopes.csv`,"
            " `forward_backward.csv`, `history.csv`, `layers.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids)
  return "\n".join(lines)


def _plots(settings: Settings, runs: Sequence[Mapping[str, Any]], folder: pathlib.Path) -> None:
  rows, columns, slopes = len(settings.datasets), len(settings.learning_rates), sorted(settings.slopes)
  figure = plots.new_figure(3.6 * columns, 3.0 * rows + 0.6)
  any_failed = False
  for index, (dataset, rate) in enumerate((d, r) for d in settings.datasets for r in settings.learning_rates):
    axis = figure.add_subplot(rows, columns, index + 1)
    where = {"dataset": dataset, "learning_rate": rate}
    reference = list(_accuracy_by_seed(runs, **where, family=REFERENCE)[0].values())
    if reference:
      axis.axhline(100 * np.mean(reference), color="0.3", linestyle="--", linewidth=1, label=REFERENCE)
    for number, family in enumerate(settings.activations):
      cells = [_accuracy_by_seed(runs, **where, family=family, **{SLOPE: s}) for s in slopes]
      estimates = 100 * np.array([mean_confidence_interval(list(c[0].values())) for c in cells])
      means, halves = estimates[:, 0], np.nan_to_num(estimates[:, 1])
      axis.plot(slopes, means, "o-", color=f"C{number}", markersize=3, label=family)
      axis.fill_between(slopes, np.clip(means - halves, 0, 100), np.clip(means + halves, 0, 100),
                        color=f"C{number}", alpha=0.15, linewidth=0)
      failed = [s for s, c in zip(slopes, cells) if c[1]]
      any_failed |= bool(failed)
      axis.plot(failed, [0.03 + 0.05 * number] * len(failed), "x", color=f"C{number}",
                transform=axis.get_xaxis_transform())
    axis.set_xscale("symlog", linthresh=min([s for s in slopes if s > 0] or [1.0]))
    axis.set_xticks(slopes, [f"{s:g}" for s in slopes], fontsize=7)
    axis.minorticks_off()
    axis.set(title=f"{dataset}, {settings.optimizer} lr {rate:g}", xlabel="negative slope",
             ylabel="test accuracy (%)")
    axis.title.set_fontsize(9)
    axis.grid(alpha=0.3)
  handles, labels = figure.axes[0].get_legend_handles_labels()
  if any_failed:
    handles.append(figure.axes[0].plot([], [], "x", color="0.3")[0])
    labels.append("cell with diverged run(s)")
  figure.legend(handles, labels, fontsize=7, loc="outside lower center", ncol=len(labels))
  plots.save_figure(figure, folder, PLOT)


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False, command: str = "",
) -> Outcome:
  """Trains every dataset x activation x slope x learning rate x seed and reports the slope's effect.

  Writes the engine's files, ``slope_effects.csv``, ``best_slopes.csv``,
  ``forward_backward.csv``, ``summary.md`` and ``accuracy_vs_slope.png`` into
  ``out`` (default ``results/slope-sweep-<timestamp>``). Rerunning with the same
  folder resumes; ``tests/test_study_slope_sweep.py`` runs it at tiny settings.
  """
  started = time.perf_counter()
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  trained = experiment.train_pending(prepared, quiet=quiet, run_columns=family_column(settings))
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  effects, best = slope_effects(trained.runs), best_slopes(trained.runs)
  versus = forward_backward(trained.runs, necro, leaky) if necro and leaky else []
  report = _summary(settings, command, trained, effects, best, versus, time.perf_counter() - started)
  experiment.write_outputs(trained.out, {
      "slope_effects.csv": results.csv_text(effects),
      "forward_backward.csv": results.csv_text(versus),
      "best_slopes.csv": results.csv_text(
          [{**r, "tied": " ".join(f"{s:g}" for s in r["tied"])} for r in best]),
      "summary.md": report,
  }, lambda folder: _plots(settings, trained.runs, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, trained.runs, effects, best, versus, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Slope sweep: necro_relu vs leaky_relu vs windowed_necro_relu at negative slopes 0..1 and several learning rates.

  Args:
    settings: the study.
    out: output folder; empty means results/slope-sweep-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
