"""Slope sweep: where the surrogate's negative slope helps, where it hurts, and at which learning rate.

NecroReLU is ReLU forward with LeakyReLU's derivative below zero; its one
hyperparameter is that slope (0.1 in the research brief). At slope 0 it *is*
ReLU (the same forward and, except at a pre-activation of exactly 0, the same
backward), so sweeping the slope from 0 measures the surrogate's effect against
ReLU seed by seed. LeakyReLU with the same slope has the same derivative below
zero but a different forward pass (slope 1 makes it the identity: a linear
network); the windowed NecroReLU of the ``dying`` study passes the slope only
within ``window`` below zero, and revival_relu passes it only to units dead on
the whole batch, and only upward. Comparing them slope by slope separates what
the backward pass does from what the forward pass does.

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
from 0.03), slopes 0, 0.01, 0.03, 0.1, 0.3, 1, 3 seeds, 1500 steps: 450 runs
(four swept activations and relu). On 2 CPU cores (AMD EPYC) shared with other
jobs it took 320 s. Command::

  python -m research slope-sweep --out results/slope-sweep
  python -m research slope-sweep --datasets mnist1d --base.learning-rates 0.01 --base.steps 300
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence
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
CELL = ["dataset", "learning_rate", "family"]  # a sweep: every slope of one activation at one rate
COMPARED = ["pairs", "difference", "low", "high", "p", "diverged", "baseline_diverged", "verdict"]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Test accuracy against the surrogate's negative slope, per dataset, learning rate and activation."""

  datasets: Specs = ("mnist1d", "mnist5k")  # comma-separated research.data specs, one part each
  families: Specs = ("necro_relu", "leaky_relu", "windowed_necro_relu(window=3.0)", "revival_relu")  # registry specs with a negative_slope, which the study sweeps (do not set it)
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


# --- the rows, as cells and paired comparisons ----------------------------------------


def cells(runs: pd.DataFrame) -> pd.DataFrame:
  """One row per swept (dataset, learning rate, family, slope): ``accuracy`` by seed of its healthy runs
  and its ``diverged`` runs; sweeps in the order the runs first name them, slopes ascending."""
  swept = runs[runs[SLOPE].notna()]
  healthy = ~tables.diverged(swept)
  swept = swept.assign(order=swept.groupby(CELL, sort=False).ngroup(), healthy=healthy)
  found = [(*key, dict(zip(rows["seed"][rows["healthy"]], rows["test_accuracy"][rows["healthy"]])),
            int((~rows["healthy"]).sum())) for key, rows in swept.groupby(["order", *CELL, SLOPE])]
  return pd.DataFrame(found, columns=["order", *CELL, SLOPE, "accuracy", "diverged"])


def verdict(diverged: int, baseline_diverged: int, low: float, high: float) -> str:
  """``helps``, ``hurts`` or ``no clear effect``: divergences first, then the accuracy interval.

  Examples:
    >>> verdict(0, 0, 0.004, 0.02), verdict(2, 0, 0.01, 0.02), verdict(0, 0, -0.01, 0.02)
    ('helps', 'hurts', 'no clear effect')
  """
  if diverged != baseline_diverged:
    return "helps" if diverged < baseline_diverged else "hurts"
  return "helps" if low > 0 else "hurts" if high < 0 else "no clear effect"


def compare(treated: dict, diverged: int, baseline: dict, baseline_diverged: int) -> list[Any]:
  """Accuracy by seed, treatment minus baseline: the :data:`COMPARED` values."""
  result = paired_comparison(treated, baseline)
  low, high = result.mean_difference - result.half_width, result.mean_difference + result.half_width
  return [result.num_pairs, result.mean_difference, low, high, result.p_value, diverged, baseline_diverged,
          verdict(diverged, baseline_diverged, low, high)]


def _compared(pairs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
  """Merged cells (treatment ``_x``, baseline ``_y``) as paired comparisons, keyed by ``keys``."""
  found = [compare(*cell) for cell in pairs[["accuracy_x", "diverged_x", "accuracy_y", "diverged_y"]]
           .itertuples(index=False)]
  return pd.concat([pairs[list(keys)].rename(columns={SLOPE: "slope"}).reset_index(drop=True),
                    pd.DataFrame(found, columns=COMPARED)], axis=1)


def slope_effects(runs: pd.DataFrame) -> pd.DataFrame:
  """Each nonzero slope against slope 0 of the same activation, learning rate and seed."""
  found = cells(runs)
  baseline = found[found[SLOPE] == 0.0].drop(columns=["order", SLOPE])
  return _compared(found[found[SLOPE] != 0.0].merge(baseline, on=CELL), [*CELL, SLOPE])


def forward_backward(runs: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
  """Family ``first`` minus family ``second`` at the same dataset, learning rate, slope and seed."""
  found, keys = cells(runs), ["dataset", "learning_rate", SLOPE]
  treated = found[(found["family"] == first) & (found[SLOPE] != 0.0)]  # at 0 both are ReLU
  return _compared(treated.merge(found[found["family"] == second], on=keys), keys)


def best_slopes(runs: pd.DataFrame) -> pd.DataFrame:
  """Per (dataset, learning rate, family): the slope of highest mean accuracy with no diverged run.

  ``tied`` lists the slopes, also without divergence, whose paired difference
  from the best has an interval that includes 0: within seed noise of it.

  Examples:
    >>> runs = pd.DataFrame([{"dataset": "d", "learning_rate": 0.1, "family": "f", SLOPE: s, "seed": seed,
    ...                       "diverged": s == 1.0, "test_accuracy": a + 0.01 * seed}
    ...                      for s, a in ((0.0, 0.5), (0.1, 0.6), (1.0, 0.9)) for seed in range(3)])
    >>> row = best_slopes(runs).to_dict("records")[0]
    >>> row["best"], row["tied"], round(row["mean"], 3)
    (0.1, (0.1,), 0.61)
  """
  rows = []
  for _, sweep in cells(runs).groupby("order"):
    stable = sweep[(sweep["diverged"] == 0) & sweep["accuracy"].astype(bool)]
    row = dict(zip(CELL, sweep.iloc[0][CELL]))
    if stable.empty:
      rows.append({**row, "best": None, "mean": math.nan, "half_width": math.nan, "tied": ()})
      continue
    best = stable.loc[stable["accuracy"].map(lambda a: np.mean(list(a.values()))).idxmax()]
    tied = tuple(float(slope) for slope, accuracy in zip(stable[SLOPE], stable["accuracy"])
                 if slope == best[SLOPE] or not compare(best["accuracy"], 0, accuracy, 0)[2] > 0)
    mean, half_width = mean_confidence_interval(list(best["accuracy"].values()))
    rows.append({**row, "best": best[SLOPE], "mean": mean, "half_width": half_width, "tied": tied})
  return pd.DataFrame(rows, columns=[*CELL, "best", "mean", "half_width", "tied"])


def exact_matches(runs: pd.DataFrame, family: str, reference: str = REFERENCE) -> tuple[int, int]:
  """``(equal, pairs)``: runs of ``family`` at slope 0 whose final metrics equal ``reference``'s exactly.

  ``reference`` is relu or another swept family (then at slope 0 too). Pairs
  are matched on dataset, learning rate and seed; compared are
  :data:`EXACT_COLUMNS` (two missing values are equal).

  Examples:
    >>> rows = pd.DataFrame([{"dataset": "d", "learning_rate": 0.1, "seed": 0, "family": f, SLOPE: s,
    ...                       "test_accuracy": 0.5} for f, s in (("relu", None), ("necro_relu", 0.0))])
    >>> exact_matches(rows, "necro_relu")
    (1, 1)
  """
  key, runs = ["dataset", "learning_rate", "seed"], runs.reindex(columns=[*CELL, "seed", SLOPE, *EXACT_COLUMNS])
  references = runs[(runs["family"] == reference) & (runs[SLOPE].isna() | (runs[SLOPE] == 0.0))]
  return tables.equal_pairs(references, runs[(runs["family"] == family) & (runs[SLOPE] == 0.0)],
                            key, EXACT_COLUMNS)


# --- the findings -----------------------------------------------------------------


def difference(row: Any) -> Estimate:
  """A paired accuracy difference in percentage points with its 95% interval."""
  return Estimate(row["difference"], row["low"], row["high"], "points", int(row["pairs"]))


def _cell(row: dict[str, Any], seeds: int) -> tuple[str, tuple[Estimate, ...]]:
  text = f"lr {row['learning_rate']:g} slope {row['slope']:g}: "
  if row["diverged"] != row["baseline_diverged"]:
    return text + f"{row['diverged']} of {seeds} diverged vs {row['baseline_diverged']}", ()
  if not row["pairs"]:
    return text + "no pair without divergence", ()
  return text + "{}", (difference(row),)


def _verdicts(rows: pd.DataFrame, seeds: int, words: tuple[str, str, str]) -> tuple[str, tuple[Estimate, ...]]:
  """``helps in 2 of 15 cells (...); hurts in 1 (...); no clear effect in 12``, and its estimates."""
  found = {key: [_cell(row, seeds) for row in rows[rows["verdict"] == key].to_dict("records")]
           for key in ("helps", "hurts")}
  listed = {key: f" ({'; '.join(text for text, _ in said)})" if said else "" for key, said in found.items()}
  helps, hurts = len(found["helps"]), len(found["hurts"])
  return (f"{words[0]} in {helps} of {len(rows)} cells{listed['helps']}; {words[1]} in {hurts}{listed['hurts']};"
          f" {words[2]} in {len(rows) - helps - hurts}"), tuple(
              estimate for said in found.values() for _, estimates in said for estimate in estimates)


def _best(row: dict[str, Any]) -> tuple[str, tuple[Estimate, ...]]:
  """One learning rate's best slope, its accuracy and its gain over slope 0 (``row``: best and effect)."""
  if pd.isna(row["best"]):
    return f"lr {row['learning_rate']:g}: none (every slope diverged in some seed)", ()
  mean, half, gain = row["mean"], row["half_width"], row["pairs"] > 0
  tied = ", ".join(f"{slope:g}" for slope in row["tied"])
  return (f"lr {row['learning_rate']:g}: {row['best']:g} ({{}}{', {} vs slope 0' if gain else ''};"
          f" within noise: {tied})"), (Estimate(mean, mean - half, mean + half, "percent"),
                                       *((difference(row),) if gain else ()))


def _dependence(found: pd.DataFrame) -> str:
  """Whether the best slope depends on the learning rate, beyond seed noise or not."""
  if len(found) < 2:
    return "Too few learning rates with a stable slope to say whether the best one depends on the rate."
  if found["best"].nunique() == 1:
    return f"The best slope is {found['best'].iloc[0]:g} at every learning rate."
  common = sorted(set.intersection(*map(set, found["tied"])))
  if not common:
    return ("The best slope depends on the learning rate beyond seed noise: no slope is within noise of the"
            " best at every rate.")
  listed, one = ", ".join(f"{slope:g}" for slope in common), len(common) == 1
  return ("The best slope changes with the learning rate, but not beyond seed noise: "
          f"{'slope' if one else 'slopes'} {listed} {'is' if one else 'are'} within noise of the best at every rate.")


def _in_short(mine: pd.DataFrame, dataset: str, seeds: int) -> Answer:
  """One dataset's effects: how often a slope helped or hurt, per slope, and the diverged runs per cell."""
  helps, hurts = mine["verdict"] == "helps", mine["verdict"] == "hurts"
  by_divergence = int((hurts & (mine["diverged"] > mine["baseline_diverged"])).sum())
  per_slope = "; ".join(f"{slope:g}: {(rows['verdict'] == 'helps').sum()}/{(rows['verdict'] == 'hurts').sum()}"
                        for slope, rows in mine.groupby("slope"))
  rows = mine.to_dict("records")
  failing = dict.fromkeys([f"{r['family']} lr {r['learning_rate']:g} slope 0: {r['baseline_diverged']}"
                           for r in rows if r["baseline_diverged"]]
                          + [f"{r['family']} lr {r['learning_rate']:g} slope {r['slope']:g}: {r['diverged']}"
                             for r in rows if r["diverged"]])
  return Answer(
      f"{dataset} in short: of {len(mine)} (activation, learning rate, slope) cells, a nonzero slope"
      f" helped in {helps.sum()} and hurt in {hurts.sum()} ({by_divergence} of them by diverged runs; by"
      f" chance alone about {(1 - CONFIDENCE) * (len(mine) - by_divergence):.1f} of the others would show an"
      f" effect at 95%); helped/hurt per slope: {per_slope}. Diverged runs per cell (of {seeds}): "
      + ("; ".join(failing) or "none") + ".", topic=dataset, headline=True)


def _exactness(settings: Settings, runs: pd.DataFrame) -> Answer:
  """Whether slope 0 reproduced relu, and whether the swept activations agree with each other there."""
  counts = {family: exact_matches(runs, family) for family in settings.families}
  text = "Slope 0 is ReLU: reproduced relu exactly (" + ", ".join(EXACT_COLUMNS) + ") in " + "; ".join(
      f"{equal} of {pairs} runs for {family}" for family, (equal, pairs) in counts.items()) + "."
  mutual = [exact_matches(runs, other, reference=settings.families[0]) for other in settings.families[1:]]
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


def _family_named(settings: Settings, name: str) -> str | None:
  return next((spec for spec in settings.families if activations.parse_spec(spec)[0] == name), None)


def _dataset_answers(settings: Settings, dataset: str, effects: pd.DataFrame, best: pd.DataFrame,
                     versus: pd.DataFrame) -> list[Answer]:
  """One dataset: in short, each family against slope 0, its best slopes, forward vs backward."""
  seeds, effects = settings.base.seeds, effects[effects["dataset"] == dataset]
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  answers = [_in_short(effects, dataset, seeds)]
  for family in settings.families:
    text, found = _verdicts(effects[effects["family"] == family], seeds, ("helps", "hurts", "no clear effect"))
    answers.append(Answer(f"{family} vs slope 0 (ReLU), paired by seed: {text}.", found, topic=dataset))
  # each best slope beside its own effect against slope 0 (none for slope 0 itself)
  gains = best.merge(effects, how="left", left_on=[*CELL, "best"], right_on=[*CELL, "slope"])
  for family in settings.families:
    mine = gains[(gains["dataset"] == dataset) & (gains["family"] == family)]
    lines = [_best(row) for row in mine.to_dict("records")]
    answers.append(Answer(
        f"{family}, best slope per learning rate: " + "; ".join(text for text, _ in lines) + ". "
        + _dependence(mine[mine["best"].notna()]), tuple(e for _, found in lines for e in found), topic=dataset))
  if necro and leaky:
    mine = versus[versus["dataset"] == dataset]
    text, found = _verdicts(mine, seeds, ("better", "worse", "no clear difference"))
    answers.append(Answer(
        f"Forward vs backward: {necro} minus {leaky} at the same slope (the same derivative below zero;"
        " ReLU's forward vs the leaky one), paired by seed:"
        f" {text}. Diverged runs: {mine['diverged'].sum()} vs {mine['baseline_diverged'].sum()}.",
        found, topic=dataset))
  return answers


def _accuracy_table(settings: Settings, found: pd.DataFrame, dataset: str) -> pd.DataFrame:
  """Test accuracy per slope (columns) for each learning rate and activation (rows) of the ``cells``."""
  found = found[found["dataset"] == dataset]
  texts = [Estimate.of_mean(list(accuracy.values()), "test_accuracy") for accuracy in found["accuracy"]]
  texts = [f"{estimate.text()} ({diverged} div.)" if diverged else estimate
           for estimate, diverged in zip(texts, found["diverged"])]
  grid_of = pd.Series(texts, index=pd.MultiIndex.from_frame(found[["learning_rate", "family", SLOPE]]))
  return grid_of.unstack(SLOPE).reindex(
      index=pd.MultiIndex.from_product([settings.base.learning_rates, settings.families],
                                       names=["learning rate", "activation"]),
      columns=list(settings.slopes)).rename(columns=lambda slope: f"{slope:g}").reset_index()


def _comparison_table(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
  return rows[[*by, "pairs"]].assign(
      difference=[difference(row) if row["pairs"] else "no pair without divergence"
                  for row in rows.to_dict("records")],
      p=rows["p"].map(lambda p: "-" if math.isnan(p) else f"{p:.3g}"), diverged=rows["diverged"],
      **{"baseline diverged": rows["baseline_diverged"]}, verdict=rows["verdict"])


def _tables(settings: Settings, found: tables.Tables, effects: pd.DataFrame, versus: pd.DataFrame) -> list[Table]:
  built = [Table(f"Test accuracy per slope: {dataset}", _accuracy_table(settings, cells(found.runs), dataset))
           for dataset in settings.datasets]
  built.append(Table("Each slope against slope 0 (paired by seed)",
                     _comparison_table(effects, ["dataset", "learning_rate", "family", "slope"])))
  if not versus.empty:
    built.append(Table(f"{_family_named(settings, 'necro_relu')} minus {_family_named(settings, 'leaky_relu')}"
                       " at the same slope (paired by seed)",
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
      f"`{PLOT}`: test accuracy vs slope (symlog x axis with 0 shown), a panel per dataset and learning"
      " rate; bands are 95% t intervals, crosses mark cells with diverged runs, the dashed line is relu."
      " `runs.csv` has a `family` column: the activation as given, without its slope.",
  )


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Each slope against slope 0, the best slope per rate, forward vs backward, slope 0 = ReLU."""
  necro, leaky = _family_named(settings, "necro_relu"), _family_named(settings, "leaky_relu")
  effects, best = slope_effects(found.runs), best_slopes(found.runs)
  versus = forward_backward(found.runs, necro, leaky) if necro and leaky else pd.DataFrame(
      columns=["dataset", "learning_rate", "slope", *COMPARED])
  answers = [a for dataset in settings.datasets for a in _dataset_answers(settings, dataset, effects, best, versus)]
  if not (necro and leaky):
    answers.append(Answer("Forward vs backward: not measured (it needs necro_relu and leaky_relu among"
                          " the families)."))
  if settings.relu_reference:
    answers.append(_exactness(settings, found.runs))
  return Findings(
      question="where does the surrogate's negative slope help or hurt, and does the best slope depend"
      " on the learning rate?",
      answers=tuple(answers), tables=tuple(_tables(settings, found, effects, versus)),
      notes=_notes(settings), plots=(PLOT,),
      data={"slope_effects": effects, "forward_backward": versus,
            "best_slopes": best.assign(tied=best["tied"].map(lambda tied: " ".join(f"{s:g}" for s in tied)))},
  )


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  """Test accuracy against the slope, a panel per dataset and learning rate."""
  rows, columns, slopes = len(settings.datasets), len(settings.base.learning_rates), sorted(settings.slopes)
  runs, swept = found.runs[~tables.diverged(found.runs)], cells(found.runs)
  figure = plots.new_figure(3.6 * columns, 3.0 * rows + 0.6)
  any_failed = False
  for index, (dataset, rate) in enumerate((d, r) for d in settings.datasets for r in settings.base.learning_rates):
    axis = figure.add_subplot(rows, columns, index + 1)
    here = (runs["dataset"] == dataset) & (runs["learning_rate"] == rate) & (runs["family"] == REFERENCE)
    if here.any():
      axis.axhline(100 * runs.loc[here, "test_accuracy"].mean(), color="0.3", linestyle="--", linewidth=1,
                   label=REFERENCE)
    for number, family in enumerate(settings.families):
      mine = swept[(swept["dataset"] == dataset) & (swept["learning_rate"] == rate) & (swept["family"] == family)]
      mine = mine.set_index(SLOPE).reindex(slopes)
      estimates = 100 * np.array([mean_confidence_interval(list(a.values())) for a in mine["accuracy"]])
      means, halves = estimates[:, 0], np.nan_to_num(estimates[:, 1])
      axis.plot(slopes, means, "o-", color=f"C{number}", markersize=3, label=family)
      axis.fill_between(slopes, np.clip(means - halves, 0, 100), np.clip(means + halves, 0, 100),
                        color=f"C{number}", alpha=0.15, linewidth=0)
      failed = [slope for slope, diverged in zip(slopes, mine["diverged"]) if diverged]
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
    question="Slope sweep: necro_relu vs leaky_relu vs windowed_necro_relu vs revival_relu at negative"
    " slopes 0..1 and several learning rates.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    run_columns=family_column, owns=("dataset", "model", "activations"),
)
