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
  python -m research slope-sweep --datasets mnist1d --base.learning-rates 0.01 --base.steps 300
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import activations
from research import config as config_lib
from research import experiment, grid, plots, tables
from research.config import Config, Floats, Specs
from research.findings import Answer, Estimate, Findings, Table
from research.statistics import CONFIDENCE, mean_confidence_interval, paired_comparison
from research.study import Study

SLOPE = "negative_slope"  # the swept hyperparameter
REFERENCE = "relu"  # trained beside the sweeps: slope 0 must reproduce it
PLOT = "accuracy_vs_slope.png"
EXACT_COLUMNS = ("diverged", "test_accuracy", "test_loss", "train_loss", "train_accuracy")


@dataclasses.dataclass(frozen=True)
class Settings:
  """Test accuracy against the surrogate's negative slope, per dataset, learning rate and activation."""

  datasets: Specs = ("mnist1d", "mnist5k")  # comma-separated research.data specs, one part each
  families: Specs = ("necro_relu", "leaky_relu", "windowed_necro_relu(window=3.0)")  # registry specs with a negative_slope, which the study sweeps (do not set it)
  slopes: Floats = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)  # negative slopes, one compiled program per activation; must include 0 (ReLU, the baseline)
  relu_reference: bool = True  # also train plain relu, to check that slope 0 reproduces it exactly
  base: Config = Config(  # the engine's settings: MLP 100-100, Adam at three rates (NecroReLU(0.1) diverges from 0.03), 1500 steps
      learning_rates=(1e-3, 1e-2, 3e-2), seeds=3, steps=1500, eval_every=500)


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
    >>> validate(Settings(families=("elu",)))
    Traceback (most recent call last):
    ...
    ValueError: families: 'elu' has no negative_slope to sweep. Choose activations that have one, e.g. necro_relu, leaky_relu, windowed_necro_relu.
  """
  if 0.0 not in settings.slopes:
    raise ValueError(f"slopes must include 0 (ReLU, the baseline of every comparison), got {settings.slopes!r}.")
  if len(set(settings.slopes)) != len(settings.slopes):
    raise ValueError(f"slopes has duplicates: {settings.slopes!r}.")
  for field in ("datasets", "families"):
    values = getattr(settings, field)
    if not values or len(set(values)) != len(values):
      raise ValueError(f"{field} must name one or more distinct values, got {values!r}.")
  for spec in settings.families:
    name, values = activations.parse_spec(spec)
    if SLOPE not in activations.hyperparameters(name):  # raises for an unknown name
      raise ValueError(f"families: {spec!r} has no {SLOPE} to sweep. Choose activations that have"
                       " one, e.g. necro_relu, leaky_relu, windowed_necro_relu.")
    if SLOPE in values:
      raise ValueError(f"families: {spec!r} sets {SLOPE}; the study sweeps it over --slopes, leave it out.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per dataset: a grid per activation (every slope), and relu.

  Examples:
    >>> [part.config.activations for part in parts(Settings(datasets=("digits",),
    ...     families=("necro_relu",), slopes=(0.0, 0.1)))]
    [('relu', 'necro_relu(negative_slope=[0.0, 0.1])')]
  """
  validate(settings)
  specs = tuple(swept_spec(spec, settings.slopes) for spec in settings.families)
  built = []
  for dataset in settings.datasets:
    config = dataclasses.replace(
        settings.base, dataset=dataset, model="mlp",
        activations=((REFERENCE,) if settings.relu_reference else ()) + specs)
    config_lib.validate(config)
    grid.expand(config)  # the registry checks every slope, e.g. windowed_necro_relu's >= 0
    built.append(experiment.Part({"dataset": dataset}, config))
  return built


def family_column(settings: Settings) -> experiment.RunColumns:
  """The ``family`` column of ``runs.csv``: the activation spec as given, without its slope."""
  family_of = {swept_spec(spec, settings.slopes): spec for spec in settings.families}
  return lambda row: {"family": family_of.get(row["grid"], row["grid"])}


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


def exact_matches(runs: Sequence[Mapping[str, Any]] | pd.DataFrame, family: str, reference: str = REFERENCE) -> tuple[int, int]:
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
  runs = tables.records(runs) if isinstance(runs, pd.DataFrame) else runs

  def key(row: Mapping[str, Any]) -> tuple:
    return row["dataset"], row["learning_rate"], row["seed"]

  def values(row: Mapping[str, Any]) -> tuple:
    return tuple(row.get(column) for column in EXACT_COLUMNS)

  references = {key(r): values(r) for r in runs if r["family"] == reference and r.get(SLOPE) in (None, 0.0)}
  swept = {key(r): values(r) for r in runs if r["family"] == family and r.get(SLOPE) == 0.0}
  both = references.keys() & swept.keys()
  return sum(references[k] == swept[k] for k in both), len(both)


# --- the findings -----------------------------------------------------------------


def difference(row: Mapping[str, Any]) -> Estimate:
  """A paired accuracy difference in percentage points with its 95% interval."""
  return Estimate(row["difference"], row["low"], row["high"], "points", int(row["pairs"]))


def _cell(row: Mapping[str, Any], seeds: int) -> tuple[str, tuple[Estimate, ...]]:
  text = f"lr {row['learning_rate']:g} slope {row['slope']:g}: "
  if row["diverged"] != row["baseline_diverged"]:
    return text + f"{row['diverged']} of {seeds} diverged vs {row['baseline_diverged']}", ()
  if not row["pairs"]:
    return text + "no pair without divergence", ()
  return text + "{}", (difference(row),)


def _verdicts(rows: Sequence[Mapping[str, Any]], seeds: int, words: tuple[str, str, str]):
  """``helps in 2 of 15 cells (...); hurts in 1 (...); no clear effect in 12``, and its estimates."""
  texts, estimates = [], []
  for key in ("helps", "hurts"):
    cells = [_cell(r, seeds) for r in rows if r["verdict"] == key]
    texts.append((len(cells), f" ({'; '.join(text for text, _ in cells)})" if cells else ""))
    estimates += [estimate for _, found in cells for estimate in found]
  (helps, helped), (hurts, hurt) = texts
  return (f"{words[0]} in {helps} of {len(rows)} cells{helped}; {words[1]} in {hurts}{hurt};"
          f" {words[2]} in {len(rows) - helps - hurts}"), tuple(estimates)


def _best(row: Mapping[str, Any], effects: Sequence[Mapping[str, Any]]):
  if row["best"] is None:
    return f"lr {row['learning_rate']:g}: none (every slope diverged in some seed)", ()
  mean, half = row["mean"], row["half_width"]
  estimates = [Estimate(mean, mean - half, mean + half, "percent")]
  gain = next((e for e in effects if e["slope"] == row["best"] and all(
      e[k] == row[k] for k in ("dataset", "learning_rate", "family"))), None)
  if gain is not None and gain["pairs"]:
    estimates.append(difference(gain))
  tied = ", ".join(f"{slope:g}" for slope in row["tied"])
  return (f"lr {row['learning_rate']:g}: {row['best']:g} ({{}}{', {} vs slope 0' if len(estimates) > 1 else ''};"
          f" within noise: {tied})"), tuple(estimates)


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
  return next((spec for spec in settings.families if activations.parse_spec(spec)[0] == name), None)


def _in_short(effects: Sequence[Mapping[str, Any]], dataset: str, seeds: int) -> Answer:
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
  return Answer(
      f"{dataset} in short: of {len(mine)} (activation, learning rate, slope) cells, a nonzero slope"
      f" helped in {count(mine, 'helps')} and hurt in {count(mine, 'hurts')} ({by_divergence} of them by"
      f" diverged runs; by chance alone about {(1 - CONFIDENCE) * (len(mine) - by_divergence):.1f} of the"
      f" others would show an effect at 95%); helped/hurt per slope: {per_slope}. Diverged runs per cell"
      f" (of {seeds}): " + ("; ".join(failing) or "none") + ".", topic=dataset, headline=True)


def _exactness(settings: Settings, runs: Sequence[Mapping[str, Any]]) -> Answer:
  """Whether slope 0 reproduced relu, and whether the swept activations agree with each other there."""
  counts = {family: exact_matches(runs, family) for family in settings.families}
  text = "Slope 0 is ReLU: reproduced relu exactly (" + ", ".join(EXACT_COLUMNS) + ") in " + "; ".join(
      f"{equal} of {pairs} runs for {family}" for family, (equal, pairs) in counts.items()) + "."
  first, *others = settings.families
  mutual = [exact_matches(runs, other, reference=first) for other in others]
  agree = all(equal == pairs for equal, pairs in mutual)
  if mutual:
    text += (" At slope 0 the swept activations agree with each other in every run." if agree else
             " At slope 0 the swept activations do not all agree with each other.")
  if mutual and agree and any(equal < pairs for equal, pairs in counts.values()):
    text += (" So the runs that differ from relu differ by the one thing the sweep's programs share and relu's"
             " does not: the derivative at a pre-activation of exactly 0 (1 for the sweep, 0 for relu), which"
             " float32 training meets now and then.")
  exact = all(equal == pairs for equal, pairs in counts.values())
  return Answer(text, topic="Slope 0 is ReLU", verdict="held" if exact else "did not hold")


def _dataset_answers(settings: Settings, dataset: str, effects, best, versus) -> list[Answer]:
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  seeds, answers = settings.base.seeds, [_in_short(effects, dataset, settings.base.seeds)]
  for family in settings.families:
    text, found = _verdicts([r for r in effects if (r["dataset"], r["family"]) == (dataset, family)],
                            seeds, ("helps", "hurts", "no clear effect"))
    answers.append(Answer(f"{family} vs slope 0 (ReLU), paired by seed: {text}.", found, topic=dataset))
  for family in settings.families:
    mine = [r for r in best if (r["dataset"], r["family"]) == (dataset, family)]
    cells = [_best(r, effects) for r in mine]
    answers.append(Answer(
        f"{family}, best slope per learning rate: " + "; ".join(text for text, _ in cells) + ". "
        + _dependence([r for r in mine if r["best"] is not None]),
        tuple(e for _, found in cells for e in found), topic=dataset))
  if necro and leaky:
    mine = [r for r in versus if r["dataset"] == dataset]
    text, found = _verdicts(mine, seeds, ("better", "worse", "no clear difference"))
    answers.append(Answer(
        f"Forward vs backward: {necro} minus {leaky} at the same slope (the same derivative below zero;"
        f" ReLU's forward vs the leaky one), paired by seed: {text}. Diverged runs:"
        f" {sum(r['diverged'] for r in mine)} vs {sum(r['baseline_diverged'] for r in mine)}.",
        found, topic=dataset))
  return answers


def _accuracy_table(runs: Sequence[Mapping[str, Any]], settings: Settings, dataset: str) -> pd.DataFrame:
  """Test accuracy per slope (columns) for each learning rate and activation (rows)."""
  rows = []
  for rate in settings.base.learning_rates:
    for family in settings.families:
      row = {"learning rate": rate, "activation": family}
      for slope in settings.slopes:
        healthy, diverged = _accuracy_by_seed(runs, dataset=dataset, learning_rate=rate, family=family,
                                              **{SLOPE: slope})
        estimate = Estimate.of_mean(list(healthy.values()), "test_accuracy")
        row[f"{slope:g}"] = f"{estimate.text()} ({diverged} div.)" if diverged else estimate
      rows.append(row)
  return pd.DataFrame(rows)


def _comparison_table(rows: Sequence[Mapping[str, Any]], by: Sequence[str]) -> pd.DataFrame:
  return pd.DataFrame([{**{key: row[key] for key in by}, "pairs": row["pairs"],
                        "difference": difference(row) if row["pairs"] else "no pair without divergence",
                        "p": "-" if math.isnan(row["p"]) else f"{row['p']:.3g}", "diverged": row["diverged"],
                        "baseline diverged": row["baseline_diverged"], "verdict": row["verdict"]}
                       for row in rows])


def derived(settings: Settings, runs: Sequence[Mapping[str, Any]]):
  """The slope effects, the best slopes and necro_relu minus leaky_relu (the study's CSV files)."""
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  versus = forward_backward(runs, necro, leaky) if necro and leaky else []
  return slope_effects(runs), best_slopes(runs), versus


def _tables(settings: Settings, found: tables.Tables, effects, versus) -> list[Table]:
  runs = tables.records(found.runs)
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  built = [Table(f"Test accuracy per slope: {dataset}", _accuracy_table(runs, settings, dataset))
           for dataset in settings.datasets]
  built.append(Table("Each slope against slope 0 (paired by seed)",
                     _comparison_table(effects, ["dataset", "learning_rate", "family", "slope"])))
  if versus:
    built.append(Table(f"{necro} minus {leaky} at the same slope (paired by seed)",
                       _comparison_table(versus, ["dataset", "learning_rate", "slope"])))
  built.append(Table("Every cell: accuracy and units", tables.grouped_estimates(
      found.runs, ["dataset", "learning_rate", "family", SLOPE],
      ["test_accuracy", "dead_fraction", "inactive_fraction"])))
  return built


def _notes(settings: Settings) -> tuple[str, ...]:
  seeds = settings.base.seeds
  return (
      "Helps / hurts: fewer / more diverged runs than at slope 0 (same activation, learning rate and"
      " seeds), else a paired difference in test accuracy whose 95% Student t interval over seeds"
      " excludes 0 (diverged runs are left out of the pairs and counted). Within noise of the best:"
      " slopes without divergence whose paired difference from the best includes 0. With"
      f" {seeds} seeds an interval is ± {stats.t.ppf((1 + CONFIDENCE) / 2, max(seeds - 1, 1)):.2f}"
      " standard errors: only large effects are resolved; 'no clear effect' means not resolved, not absent.",
      "Not tested: only MLPs and one optimizer (CNNs and SGD are left to the other studies).",
      "At slope 1, leaky_relu is the identity: the network is linear, so its accuracy is a linear model's."
      " necro_relu at slope 1 is ReLU forward with a straight-through (identity) backward.",
      "Slope 0 matches ReLU except where a pre-activation is exactly 0 or subnormal (XLA's CPU flushes"
      " those to 0; the sweep's derivative there is 1, relu's 0): the exact-match count says whether that"
      " ever mattered.",
  )


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Each slope against slope 0, the best slope per rate, forward vs backward, slope 0 = ReLU."""
  runs = tables.records(found.runs)
  effects, best, versus = derived(settings, runs)
  answers = [a for dataset in settings.datasets for a in _dataset_answers(settings, dataset, effects, best, versus)]
  if not (_family_named(settings, "necro_relu") and _family_named(settings, "leaky_relu")):
    answers.append(Answer("Forward vs backward: not measured (it needs necro_relu and leaky_relu among"
                          " the families)."))
  if settings.relu_reference:
    answers.append(_exactness(settings, runs))
  best_rows = [{**r, "tied": " ".join(f"{s:g}" for s in r["tied"])} for r in best]
  return Findings(
      question="where does the surrogate's negative slope help or hurt, and does the best slope depend"
      " on the learning rate?",
      answers=tuple(answers), tables=tuple(_tables(settings, found, effects, versus)),
      notes=_notes(settings), plots=(PLOT,),
      data={"slope_effects": pd.DataFrame(effects), "forward_backward": pd.DataFrame(versus),
            "best_slopes": pd.DataFrame(best_rows)},
  )


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  runs = tables.records(found.runs)
  rows, columns, slopes = len(settings.datasets), len(settings.base.learning_rates), sorted(settings.slopes)
  figure = plots.new_figure(3.6 * columns, 3.0 * rows + 0.6)
  any_failed = False
  for index, (dataset, rate) in enumerate((d, r) for d in settings.datasets for r in settings.base.learning_rates):
    axis = figure.add_subplot(rows, columns, index + 1)
    where = {"dataset": dataset, "learning_rate": rate}
    reference = list(_accuracy_by_seed(runs, **where, family=REFERENCE)[0].values())
    if reference:
      axis.axhline(100 * np.mean(reference), color="0.3", linestyle="--", linewidth=1, label=REFERENCE)
    for number, family in enumerate(settings.families):
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
    axis.set(title=f"{dataset}, {settings.base.optimizer} lr {rate:g}", xlabel="negative slope",
             ylabel="test accuracy (%)")
    axis.title.set_fontsize(9)
    axis.grid(alpha=0.3)
  handles, labels = figure.axes[0].get_legend_handles_labels()
  if any_failed:
    handles.append(figure.axes[0].plot([], [], "x", color="0.3")[0])
    labels.append("cell with diverged run(s)")
  figure.legend(handles, labels, fontsize=7, loc="outside lower center", ncol=len(labels))
  plots.save_figure(figure, folder, PLOT)


STUDY = Study(
    name="slope-sweep",
    question="Slope sweep: necro_relu vs leaky_relu vs windowed_necro_relu at negative slopes 0..1 and"
    " several learning rates.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    run_columns=family_column, owns=("dataset", "model", "activations"),
)
