"""XOR, two moons, spirals: how many seeds of a small MLP solve each, per activation?

Claims 6 and 7 of the research brief: abs is good on XOR-like problems, and a
layer may mix activations (here half relu, half abs units:
``mixed(activations='relu,abs')``, the registry's combinator over
:func:`activations.functional.mixed`; at width 2 that is one relu and one abs
unit). Small MLPs (widths 2, 4, 8) with relu, abs, necro_relu, leaky_relu(0.01)
and the mixed layer are trained from ``seeds`` seeds at two learning rates; a
run *solves* its task when its test accuracy reaches the dataset's threshold
(``runs.csv`` has a ``solved`` column of 0 and 1, written by the engine through the
study's ``run_columns``).

Depth: one hidden layer for xor and moons, the classic setting, where abs's
advantage would be per unit (``|z| = relu(z) + relu(-z)``: one abs unit does
the work of two relu units); two for spirals, which no one-hidden-layer net of
width <= 8 reached 0.95 on in pilots. Thresholds sit below each dataset's noise
ceiling, the test accuracy of a k-nearest-neighbour classifier fitted to
``ceiling_points`` fresh points of the same distribution (xor 0.999, moons
0.999, spirals 0.975), and for xor and moons well above where failed runs
stall (two quadrants merged, or a near-linear boundary: 0.8 to 0.9); spirals'
accuracies spread without such a gap, so the summary counts the runs near each
threshold and rereads both claims with the thresholds 0.02 lower and higher. Reported: solved counts with 95% Wilson intervals, abs vs relu and
mixed vs the better of the two paired by seed (exact McNemar), and the final
inactive and dead fractions of failed vs solved runs (mean, 95% t interval;
pooled, and compared within each dataset x width x rate).

Run time: about 5 minutes on 2 CPU cores at the defaults (297 s on a shared,
loaded machine; mostly compiling the 30 small programs, then 2700 runs of 3000
steps). Command::

  python -m research xor --out results/xor
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import jax.numpy as jnp
import pandas as pd
from scipy import stats

import activations
from research import config as config_lib
from research import data, devices, experiment, plots, tables
from research.config import Config
from research.findings import Answer, Estimate, Findings, Table
from research.study import Study

SYNTHETIC = ("xor", "moons", "spirals")  # the datasets this study knows how to judge
MIXED_RELU_ABS = "mixed(activations='relu,abs')"
DEFAULT_ACTIVATIONS = ("relu", "abs", "necro_relu(negative_slope=0.1)",
                       "leaky_relu(negative_slope=0.01)", MIXED_RELU_ABS)
CEILINGS_FILE = "noise_ceilings.csv"
CONFIGURATION = ["dataset", "width", "learning_rate"]

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """How many seeds of a small MLP solve xor, moons and spirals, per activation and width."""

  datasets: config_lib.Specs = SYNTHETIC  # research.data specs of xor, moons or spirals (options allowed)
  depths: Ints = (1, 1, 2)  # hidden layers per dataset, in the order of datasets
  thresholds: config_lib.Floats = (0.97, 0.97, 0.95)  # test accuracy that counts as solved, per dataset
  widths: Ints = (2, 4, 8)  # hidden units per layer; one engine part per dataset x width
  ceiling_points: int = 200_000  # fresh points for each dataset's noise ceiling (k-NN); 0 skips it
  base: Config = Config(  # the engine's settings: 30 seeds, Adam at two rates, 3000 steps of 128, LeCun normal, zero biases
      activations=DEFAULT_ACTIVATIONS, seeds=30, learning_rates=(0.01, 0.1), steps=3000,
      batch_size=128, eval_every=1000)


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(datasets=("xor", "mnist1d"), depths=(1, 1), thresholds=(0.97, 0.9)))
    Traceback (most recent call last):
    ...
    ValueError: datasets: 'mnist1d' is not valid. Choose from: xor, moons, spirals.
  """
  names = [activations.parse_spec(spec)[0] for spec in settings.datasets]
  for spec, name in zip(settings.datasets, names):
    if name not in SYNTHETIC:
      raise ValueError(f"datasets: {spec!r} is not valid. Choose from: {', '.join(SYNTHETIC)}.")
  if not settings.datasets or len(set(settings.datasets)) != len(settings.datasets):
    raise ValueError(f"datasets must name one or more distinct datasets, got {settings.datasets!r}.")
  for field in ("depths", "thresholds"):
    if len(getattr(settings, field)) != len(settings.datasets):
      raise ValueError(f"{field} needs one value per dataset ({len(settings.datasets)}:"
                       f" {', '.join(settings.datasets)}), got {getattr(settings, field)!r}.")
  if any(not 0 < t <= 1 for t in settings.thresholds):
    raise ValueError(f"thresholds must be accuracies in (0, 1], got {settings.thresholds!r}.")
  for field in ("depths", "widths"):
    values = getattr(settings, field)
    if not values or any(v < 1 for v in values) or (field == "widths" and len(set(values)) != len(values)):
      raise ValueError(f"{field} must be distinct positive integers, got {values!r}.")
  if settings.ceiling_points < 0:
    raise ValueError(f"ceiling_points must be 0 (skip) or a positive integer, got {settings.ceiling_points}.")
  for spec in settings.base.activations:
    if activations.parse_spec(spec)[0] == "mixed":
      _check_mixed_fits(spec, settings.widths)


def _check_mixed_fits(spec: str, widths: Sequence[int]) -> None:
  """A mixed layer must split every width into its groups."""
  function = activations.get(spec)
  for width in widths:
    try:
      function(jnp.zeros((1, width)))
    except ValueError as error:
      raise ValueError(f"widths: {spec} does not fit width {width}: {error}") from None


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per dataset x width."""
  return [
      experiment.Part({"dataset": dataset, "depth": depth, "width": width}, dataclasses.replace(
          settings.base, dataset=dataset, model="mlp", width=width, depth=depth))
      for dataset, depth in zip(settings.datasets, settings.depths)
      for width in settings.widths
  ]


def solved_column(settings: Settings):
  """The ``solved`` column of ``runs.csv``, from each finished run's row and its dataset's threshold."""
  threshold_of = dict(zip(settings.datasets, settings.thresholds))
  return lambda row: {"solved": solved(row, threshold_of[row["dataset"]])}


def solved(row: dict[str, Any], threshold: float) -> int:
  """1 when a run reached ``threshold`` test accuracy without diverging, else 0.

  Examples:
    >>> solved({"test_accuracy": 0.98, "diverged": False}, 0.97), solved({"test_accuracy": 0.96}, 0.97)
    (1, 0)
  """
  accuracy = row.get("test_accuracy")
  return int(not row.get("diverged") and accuracy is not None and accuracy >= threshold)


def noise_ceiling(spec: str, *, points: int, seed: int = 0, neighbours: int = 25) -> float:
  """The test accuracy of a k-NN fitted to ``points`` fresh examples of ``spec``'s distribution.

  With many fresh points a k-nearest-neighbour classifier approaches the
  Bayes classifier, so this estimates the best test accuracy the data's noise
  allows on the study's test split (that of ``seed``).

  Examples:
    >>> noise_ceiling("moons(noise=0.3)", points=20_000) < noise_ceiling("moons", points=20_000)
    True
  """
  from sklearn.neighbors import KNeighborsClassifier

  name, options = activations.parse_spec(spec)
  options |= {"num_train": points, "num_test": 1}
  fresh_spec = f"{name}({', '.join(f'{key}={value!r}' for key, value in options.items())})"
  fresh = data.load(fresh_spec, seed=seed + 1)  # another draw than the training set's
  test = data.load(spec, seed=seed)
  classifier = KNeighborsClassifier(neighbours).fit(fresh.x_train, fresh.y_train)
  return float(classifier.score(test.x_test, test.y_test))


def mcnemar(first: Sequence[int], second: Sequence[int]) -> tuple[int, int, float]:
  """``(first only, second only, p)``: paired 0/1 outcomes, exact McNemar test (two-sided).

  Examples:
    >>> mcnemar([1, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0])
    (6, 0, 0.03125)
  """
  first_only = sum(a and not b for a, b in zip(first, second))
  second_only = sum(b and not a for a, b in zip(first, second))
  discordant = first_only + second_only
  p = stats.binomtest(first_only, discordant, 0.5).pvalue if discordant else 1.0
  return first_only, second_only, float(p)


def measure(settings: Settings, folder: pathlib.Path, quiet: bool) -> dict[str, pd.DataFrame]:
  """Each dataset's noise ceiling (NaN when skipped), read back from the folder when already written."""
  path = folder / CEILINGS_FILE
  if path.exists():  # the folder's config.json guarantees the same settings
    return {"ceilings": pd.read_csv(path)}
  ceilings = pd.DataFrame({"dataset": list(settings.datasets), "ceiling": [
      noise_ceiling(dataset, points=settings.ceiling_points) if settings.ceiling_points else math.nan
      for dataset in settings.datasets]})
  experiment.say(f"noise ceilings: {dict(zip(ceilings['dataset'], ceilings['ceiling']))}", quiet)
  if devices.writes_results():
    experiment.write_report(folder, CEILINGS_FILE, ceilings.to_csv(index=False))
  return {"ceilings": ceilings}


def _outcomes(runs: pd.DataFrame, activation: str, **where: Any) -> pd.Series:
  """``solved`` of one activation's runs, indexed by (dataset, width, learning rate, seed)."""
  chosen = runs[runs["activation"] == activation]
  for key, value in where.items():
    chosen = chosen[chosen[key] == value]
  return chosen.set_index([*CONFIGURATION, "seed"])["solved"]


def paired(runs: pd.DataFrame, first: str, second: str, **where: Any) -> tuple[int, int, float]:
  """:func:`mcnemar` of two activations over the runs they share (same dataset, width, rate, seed)."""
  a, b = _outcomes(runs, first, **where), _outcomes(runs, second, **where)
  shared = a.index.intersection(b.index).sort_values()
  return mcnemar(list(a[shared]), list(b[shared]))


def solved_rows(runs: pd.DataFrame, settings: Settings) -> pd.DataFrame:
  """solved.csv: per dataset, width, learning rate and activation, solved of trials, Wilson interval."""
  rows = []
  for dataset in settings.datasets:
    for width in settings.widths:
      for rate in settings.base.learning_rates:
        for activation in runs["activation"].unique():
          mine = _outcomes(runs, activation, dataset=dataset, width=width, learning_rate=rate)
          count = Estimate.of_proportion(int(mine.sum()), len(mine))
          rows.append({"dataset": dataset, "width": width, "learning_rate": rate, "activation": activation,
                       "solved": int(mine.sum()), "trials": len(mine), "fraction": count.value,
                       "low": count.low, "high": count.high})
  return pd.DataFrame(rows)


def _share(outcomes: pd.Series) -> Estimate:
  return Estimate.of_proportion(int(outcomes.sum()), len(outcomes))


def _spec_named(runs: pd.DataFrame, name: str) -> str | None:
  chosen = runs.loc[runs["name"] == name, "activation"]
  return None if chosen.empty else chosen.iloc[0]


def _direction(first_only: int, second_only: int, p: float) -> str:
  """``"more"``, ``"less"`` or ``"same"``: how often the first solves, at the 5% level."""
  if p >= 0.05:
    return "same"
  return "more" if first_only > second_only else "less"


_ABS_VERDICT = {"more": "held (abs solves more often)", "less": "did not hold (abs solves less often)",
                "same": "not shown (no significant difference)"}
_HELD = {"more": "held", "less": "did not hold", "same": "undecided"}
ABS_TOPIC = "Claim 6: is abs good on XOR-like problems?"
MIXED_TOPIC = "Claim 7: does a mixed relu/abs layer get the best of both?"


def _abs_dataset_answer(runs: pd.DataFrame, settings: Settings, dataset: str, relu: str, absolute: str):
  narrow = min(settings.widths)
  first_only, second_only, p = paired(runs, absolute, relu, dataset=dataset)
  direction = _direction(first_only, second_only, p)
  by_rate = "; ".join(
      f"{rate:g}: {int(_outcomes(runs, absolute, dataset=dataset, learning_rate=rate).sum())} vs"
      f" {int(_outcomes(runs, relu, dataset=dataset, learning_rate=rate).sum())}"
      for rate in settings.base.learning_rates)
  a_narrow = _outcomes(runs, absolute, dataset=dataset, width=narrow)
  r_narrow = _outcomes(runs, relu, dataset=dataset, width=narrow)
  return direction, Answer(
      f"{dataset}: abs solved {{}} vs relu {{}} (widths and learning rates pooled; per learning rate"
      f" {by_rate}); at width {narrow}, abs {int(a_narrow.sum())} of {len(a_narrow)} vs relu"
      f" {int(r_narrow.sum())} of {len(r_narrow)}. Paired by seed, width and rate, abs alone solved"
      f" {first_only}, relu alone {second_only} (exact McNemar p = {p:.2g}): {_ABS_VERDICT[direction]}.",
      (_share(_outcomes(runs, absolute, dataset=dataset)), _share(_outcomes(runs, relu, dataset=dataset))),
      topic=ABS_TOPIC)


def _abs_answers(runs: pd.DataFrame, settings: Settings) -> list[Answer]:
  relu, absolute = _spec_named(runs, "relu"), _spec_named(runs, "abs")
  if relu is None or absolute is None:
    return [Answer("abs vs relu: not measured (both relu and abs must be among the activations).",
                   topic=ABS_TOPIC)]
  found = [_abs_dataset_answer(runs, settings, dataset, relu, absolute) for dataset in settings.datasets]
  verdicts = "; ".join(f"on {dataset} {_HELD[direction]} (abs solved {{}} vs relu {{}})"
                       for dataset, (direction, _) in zip(settings.datasets, found))
  shares = tuple(estimate for _, answer in found for estimate in answer.estimates)
  return [Answer(f"Claim 6, \"abs is good on XOR-like problems\": {verdicts}.", shares,
                 topic=ABS_TOPIC, headline=True), *(answer for _, answer in found)]


def _mixed_against_better(runs: pd.DataFrame, relu: str, absolute: str, mixed: str,
                          dataset: str) -> tuple[str, int, int, float]:
  """The better of relu and abs on ``dataset`` (more solved runs) and :func:`paired` of mixed with it."""
  better = max((relu, absolute), key=lambda spec: int(_outcomes(runs, spec, dataset=dataset).sum()))
  return (better, *paired(runs, mixed, better, dataset=dataset))


def _mixed_dataset_answer(runs: pd.DataFrame, settings: Settings, dataset: str, specs: tuple[str, str, str]):
  relu, absolute, mixed = specs
  counts = {spec: int(_outcomes(runs, spec, dataset=dataset).sum()) for spec in specs}
  narrow = min(settings.widths)
  at_narrow = _outcomes(runs, mixed, dataset=dataset, width=narrow)
  trials = len(_outcomes(runs, mixed, dataset=dataset))
  better, first_only, second_only, p = _mixed_against_better(runs, relu, absolute, mixed, dataset)
  direction = _direction(first_only, second_only, p)
  verdict = {"more": f"better than {better}, so better than both", "less": f"worse than {better}",
             "same": f"not significantly different from {better}"}[direction]
  return direction, counts[mixed] >= counts[better], Answer(
      f"{dataset}: mixed solved {{}}, relu {counts[relu]}, abs {counts[absolute]} of {trials} (at width"
      f" {narrow}, mixed {int(at_narrow.sum())} of {len(at_narrow)}); against the better of the two"
      f" ({better}), paired by seed, mixed alone solved {first_only}, {better} alone {second_only}"
      f" (exact McNemar p = {p:.2g}): {verdict}.",
      (_share(_outcomes(runs, mixed, dataset=dataset)),), topic=MIXED_TOPIC)


def _mixed_answers(runs: pd.DataFrame, settings: Settings) -> list[Answer]:
  specs = tuple(_spec_named(runs, n) for n in ("relu", "abs", "mixed"))
  if None in specs:
    return [Answer("mixed layer: not measured (relu, abs and a mixed spec must be among the"
                   " activations).", topic=MIXED_TOPIC)]
  found = [_mixed_dataset_answer(runs, settings, dataset, specs) for dataset in settings.datasets]
  directions = [direction for direction, _, _ in found]
  at_least, total = sum(enough for _, enough, _ in found), len(settings.datasets)
  if "less" in directions:
    verdict, held = (f"did not hold: significantly worse than the better of relu and abs on"
                     f" {directions.count('less')}"), "did not hold"
  elif at_least == total:
    verdict, held = "held: as many solved runs as the better of relu and abs, or more, on all", "held"
  else:
    verdict, held = (f"not shown: never significantly worse than the better of relu and abs, but fewer"
                     f" solved runs on {total - at_least}"), "undecided"
  return [Answer(f"Claim 7, a mixed layer ({specs[2]}: half relu, half abs units) gets the best of"
                 f" both: {verdict} of {total} datasets (significantly better on"
                 f" {directions.count('more')}; mixed solved "
                 + ", ".join(f"{{}} on {dataset}" for dataset in settings.datasets) + ").",
                 tuple(answer.estimates[0] for _, _, answer in found), topic=MIXED_TOPIC,
                 headline=True, verdict=held),
          *(answer for _, _, answer in found)]


def within_configurations(runs: pd.DataFrame, activation: str) -> tuple[int, int]:
  """Configurations (dataset, width, rate) whose failed runs have a higher, lower mean dead fraction.

  Only configurations with both failed and solved runs count; ties count in neither.

  Examples:
    >>> runs = pd.DataFrame([{"dataset": "xor", "width": 4, "learning_rate": 0.1, "activation": "relu",
    ...                       "solved": s, "dead_fraction": d} for s, d in ((0, 0.5), (1, 0.25), (1, 0.0))])
    >>> within_configurations(runs, "relu")
    (1, 0)
  """
  mine = runs[(runs["activation"] == activation) & runs["dead_fraction"].notna()]
  means = mine.groupby([*CONFIGURATION, "solved"], sort=False)["dead_fraction"].mean().unstack("solved")
  if 0 not in means or 1 not in means:
    return 0, 0
  both = means.dropna(subset=[0, 1])
  return int((both[0] > both[1]).sum()), int((both[0] < both[1]).sum())


def _dying_verdict(runs: pd.DataFrame, activation: str, dead: dict[int, pd.Series]) -> str:
  if not (dead[0].any() or dead[1].any()):
    return "no unit died in any run"
  if min(len(dead[0]), len(dead[1])) < 2:
    return "too few failed or solved runs to compare"
  p = float(stats.ttest_ind(dead[0], dead[1], equal_var=False).pvalue)
  verdict = (f"pooled, failures have {'more' if dead[0].mean() > dead[1].mean() else 'fewer'} dead"
             f" units (Welch p = {p:.2g})" if p < 0.05 else f"pooled, no significant difference (Welch p = {p:.2g})")
  higher, lower = within_configurations(runs, activation)
  sign = float(stats.binomtest(higher, higher + lower).pvalue) if higher + lower else 1.0
  return verdict + (f"; within the configurations that have both outcomes, the failures' mean is higher in"
                    f" {higher} and lower in {lower} (sign test p = {sign:.2g}: "
                    + ("significant at the 5% level)" if sign < 0.05 else "not significant at the 5% level)"))


def _dying_answers(runs: pd.DataFrame) -> list[Answer]:
  topic = ("Do failures die? Final dead fraction of failed vs solved runs (every dataset, width and rate"
           " pooled: failures sit mostly at the smallest widths, where one dead unit is a large fraction,"
           " hence the comparison within configurations)")
  answers = []
  kept = runs[runs["dead_fraction"].notna()]
  for activation, mine in kept.groupby("activation", sort=False):
    dead = {o: mine.loc[mine["solved"] == o, "dead_fraction"] for o in (0, 1)}
    inactive = {o: mine.loc[mine["solved"] == o, "inactive_fraction"] for o in (0, 1)}
    answers.append(Answer(
        f"{activation}: dead units failed {{}} (n = {len(dead[0])}) vs solved {{}} (n = {len(dead[1])});"
        f" inactive {{}} vs {{}}: {_dying_verdict(runs, activation, dead)}.",
        (Estimate.of_mean(dead[0], "dead_fraction"), Estimate.of_mean(dead[1], "dead_fraction"),
         Estimate.of_mean(inactive[0], "inactive_fraction"), Estimate.of_mean(inactive[1], "inactive_fraction")),
        topic=topic))
  return answers


def _threshold_answer(runs: pd.DataFrame, settings: Settings, ceilings: Mapping[str, float]) -> Answer:
  cells = []
  for dataset, threshold in zip(settings.datasets, settings.thresholds):
    accuracy = runs.loc[runs["dataset"] == dataset, "test_accuracy"].dropna()
    near = int(((accuracy - threshold).abs() < 0.01).sum())
    ceiling = "not measured" if math.isnan(ceilings[dataset]) else f"{ceilings[dataset]:.3f}"
    cells.append(f"{dataset} {threshold:g} (noise ceiling {ceiling}; {near} runs within one point of it)")
  how = (f"The noise ceiling is a 25-NN's test accuracy, fitted to {settings.ceiling_points:,} fresh"
         " points." if settings.ceiling_points else "The noise ceiling was not measured (--ceiling-points 0).")
  return Answer("Solved means test accuracy >= the threshold: " + "; ".join(cells) + ". " + how,
                topic="How solving is judged")


_ABS_READING = {"more": "abs solves more often", "less": "abs solves less often", "same": "abs no different"}
_MIXED_READING = {"more": "better than", "less": "worse than", "same": "no different from"}


def _sensitivity_answer(runs: pd.DataFrame, settings: Settings, shift: float = 0.02) -> list[Answer]:
  """The two claims' readings with every threshold moved down and up by ``shift``."""
  relu, absolute, mixed = (_spec_named(runs, n) for n in ("relu", "abs", "mixed"))
  if relu is None or absolute is None:
    return []
  cells = []
  for dataset, threshold in zip(settings.datasets, settings.thresholds):
    for moved_to in (threshold - shift, threshold + shift):
      moved = runs[runs["dataset"] == dataset].copy()
      moved["solved"] = [solved(row, moved_to) for row in tables.records(moved)]
      text = f"{dataset} at {moved_to:g}: {_ABS_READING[_direction(*paired(moved, absolute, relu))]}"
      if mixed is not None:
        better, *result = _mixed_against_better(moved, relu, absolute, mixed, dataset)
        text += f", mixed {_MIXED_READING[_direction(*result)]} {better}"
      cells.append(text)
  return [Answer(f"Threshold sensitivity (each threshold {shift:g} lower and higher; abs vs relu, mixed vs"
                 " the better of the two, exact McNemar at the 5% level): " + "; ".join(cells) + ".",
                 topic="How solving is judged")]


def _count_table(counts: pd.DataFrame, settings: Settings) -> pd.DataFrame:
  depth_of = dict(zip(settings.datasets, settings.depths))
  rows = []
  for (dataset, width, rate), group in counts.groupby(CONFIGURATION, sort=False):
    rows.append({"dataset": dataset, "depth": depth_of[dataset], "width": width, "learning rate": rate}
                | {row["activation"]: f"{row['solved']}/{row['trials']} "
                   + Estimate(row["fraction"], row["low"], row["high"], "percent").text()
                   for _, row in group.iterrows()})
  return pd.DataFrame(rows)


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Solved counts, abs vs relu, mixed vs the better of the two, and whether failures die."""
  runs, counts = found.runs, solved_rows(found.runs, settings)
  ceilings = dict(zip(found.measured["ceilings"]["dataset"], found.measured["ceilings"]["ceiling"]))
  order = {dataset: index for index, dataset in enumerate(settings.datasets)}
  by_outcome = runs.assign(outcome=runs["solved"].map({0: "failed", 1: "solved"}),
                           order=runs["dataset"].map(order)).sort_values(["order", "solved"], kind="stable")
  return Findings(
      question="how many seeds of a small MLP solve xor, moons and spirals, per activation?",
      answers=(*_abs_answers(runs, settings), *_mixed_answers(runs, settings), *_dying_answers(runs),
               _threshold_answer(runs, settings, ceilings), *_sensitivity_answer(runs, settings)),
      tables=(
          Table("Solved runs per configuration", _count_table(counts, settings),
                note="Solved of seeds, with the 95% Wilson interval of the fraction."),
          Table("Failed vs solved runs: accuracy, inactive and dead units at the end",
                tables.grouped_estimates(by_outcome, ["dataset", "activation", "outcome"],
                                         ["test_accuracy", "inactive_fraction", "dead_fraction"]),
                note="Inactive: z <= 0 on every training example; dead: backward derivative 0 on every"
                " training example. For abs an inactive unit is not dead (it outputs -z, derivative -1);"
                " a mixed layer's units die only in its relu half."),
      ),
      notes=(f"Each configuration has {settings.base.seeds} seeds; intervals of counts are 95% Wilson"
             " intervals, of means 95% Student t intervals. Same seed = same initial weights and batches"
             " across activations, so runs pair by seed.",
             "Not tested: deeper or wider nets, other optimizers and inits (one setting each here: Adam,"
             " LeCun normal, zero biases); solving is judged on one test split per dataset (data seed 0),"
             " and the thresholds are fixed settings, so read the counts with the number of runs near them."),
      plots=("solved_vs_width.png",),
      data={"solved": counts},
  )


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  counts = solved_rows(found.runs, settings)
  specs = list(counts["activation"].unique())
  rates, datasets = settings.base.learning_rates, settings.datasets
  figure = plots.new_figure(4 * len(datasets), 3.2 * len(rates) + 0.6)
  for row_index, rate in enumerate(rates):
    for column, (dataset, depth) in enumerate(zip(datasets, settings.depths)):
      axis = figure.add_subplot(len(rates), len(datasets), row_index * len(datasets) + column + 1)
      for index, spec in enumerate(specs):
        mine = counts[(counts["dataset"] == dataset) & (counts["learning_rate"] == rate)
                      & (counts["activation"] == spec)]
        x = mine["width"] * 2 ** (0.04 * (index - (len(specs) - 1) / 2))
        y = mine["fraction"].to_numpy()
        axis.errorbar(x, y, yerr=[y - mine["low"], mine["high"] - y], marker="o", markersize=4, capsize=2,
                      color=f"C{index}", label=spec if row_index == column == 0 else None)
      axis.set_xscale("log", base=2)
      axis.set_xticks(settings.widths, [str(w) for w in settings.widths])
      axis.minorticks_off()
      axis.set_ylim(-0.05, 1.05)
      axis.set_xlabel("width")
      axis.set_ylabel("solved fraction")
      axis.set_title(f"{dataset} (depth {depth}), learning rate {rate:g}", fontsize=9)
      axis.grid(alpha=0.3)
  figure.legend(fontsize=7, loc="outside lower center", ncol=3)
  plots.save_figure(figure, folder, "solved_vs_width.png")


STUDY = Study(
    name="xor",
    question="XOR, moons, spirals: how many seeds of a small MLP solve each, per activation (abs, mixed)?",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    run_columns=solved_column, measure=measure, owns=("dataset", "model", "width", "depth"),
)
