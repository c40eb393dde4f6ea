"""XOR, two moons, spirals: how many seeds of a small MLP solve each, per activation?

Claims 6 and 7 of the research brief: abs is good on XOR-like problems, and a
layer may mix activations (here half relu, half abs units:
``mixed(activations='relu,abs')``, the registry's combinator over
:func:`activations.functional.mixed`; at width 2 that is one relu and one abs
unit). Small MLPs (widths 2, 4, 8) with relu, abs, necro_relu, leaky_relu(0.01)
and the mixed layer are trained from ``seeds`` seeds at two learning rates; a
run *solves* its task when its test accuracy reaches the dataset's threshold
(``runs.csv`` has a ``solved`` column of 0 and 1, written by the engine through
``train_pending(run_columns=...)``).

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
import time
from collections.abc import Sequence
from typing import Annotated, Any

import jax.numpy as jnp
import numpy as np
import tyro
from scipy import stats

import activations
from research import config as config_lib
from research import data, experiment, models, plots, results, summary
from research.config import Config
from research.statistics import mean_confidence_interval, wilson
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "xor"
SYNTHETIC = ("xor", "moons", "spirals")  # the datasets this study knows how to judge
MIXED_RELU_ABS = "mixed(activations='relu,abs')"
DEFAULT_ACTIVATIONS = ("relu", "abs", "necro_relu(negative_slope=0.1)",
                       "leaky_relu(negative_slope=0.01)", MIXED_RELU_ABS)

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """How many seeds of a small MLP solve xor, moons and spirals, per activation and width."""

  datasets: config_lib.Specs = SYNTHETIC  # research.data specs of xor, moons or spirals (options allowed)
  depths: Ints = (1, 1, 2)  # hidden layers per dataset, in the order of datasets
  thresholds: config_lib.Floats = (0.97, 0.97, 0.95)  # test accuracy that counts as solved, per dataset
  widths: Ints = (2, 4, 8)  # hidden units per layer; one engine part per dataset x width
  activations: config_lib.Specs = DEFAULT_ACTIVATIONS  # comma-separated registry specs
  seeds: int = 30  # runs per configuration: seeds 0..N-1 (same seed = same init and batches across activations)
  learning_rates: config_lib.Floats = (0.01, 0.1)  # swept learning rates
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer
  steps: int = 3000  # optimizer steps per run
  batch_size: int = 128  # examples per step
  eval_every: int = 1000  # steps between evaluations
  init: models.Initializer = "lecun_normal"  # kernel initialiser, zero biases
  ceiling_points: int = 200_000  # fresh points for each dataset's noise ceiling (k-NN); 0 skips it
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


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
  for spec in settings.activations:
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
      experiment.Part({"dataset": dataset, "depth": depth, "width": width}, Config(
          dataset=dataset, model="mlp", width=width, depth=depth,
          activations=settings.activations, seeds=settings.seeds,
          learning_rates=settings.learning_rates, optimizer=settings.optimizer,
          steps=settings.steps, batch_size=settings.batch_size, eval_every=settings.eval_every,
          init=settings.init, batching=settings.batching,
      ))
      for dataset, depth in zip(settings.datasets, settings.depths)
      for width in settings.widths
  ]


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # runs.csv rows, with the solved column
  solved: list[dict[str, Any]]  # solved.csv rows: counts per configuration
  ceilings: dict[str, float]  # per dataset: the noise ceiling (NaN when skipped)
  summary: str  # summary.md


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


def _outcomes(runs: Sequence[dict[str, Any]], activation: str, **where: Any) -> dict[tuple, int]:
  """``{(dataset, width, learning_rate, seed): solved}`` of one activation's runs."""
  return {(r["dataset"], r["width"], r["learning_rate"], r["seed"]): r["solved"] for r in runs
          if r["activation"] == activation and all(r[k] == v for k, v in where.items())}


def paired(runs: Sequence[dict[str, Any]], first: str, second: str, **where: Any) -> tuple[int, int, float]:
  """:func:`mcnemar` of two activations over the runs they share (same dataset, width, rate, seed)."""
  a, b = _outcomes(runs, first, **where), _outcomes(runs, second, **where)
  keys = sorted(a.keys() & b.keys())
  return mcnemar([a[k] for k in keys], [b[k] for k in keys])


def solved_rows(runs: Sequence[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
  """solved.csv: per dataset, width, learning rate and activation, solved of trials, Wilson interval."""
  rows = []
  for dataset in settings.datasets:
    for width in settings.widths:
      for rate in settings.learning_rates:
        for activation in dict.fromkeys(r["activation"] for r in runs):
          mine = list(_outcomes(runs, activation, dataset=dataset, width=width, learning_rate=rate).values())
          rows.append({"dataset": dataset, "width": width, "learning_rate": rate, "activation": activation,
                       **_count(sum(mine), len(mine))})
  return rows


def _count(successes: int, trials: int) -> dict[str, Any]:
  low, high = wilson(successes, trials) if trials else (math.nan, math.nan)
  return {"solved": successes, "trials": trials,
          "fraction": successes / trials if trials else math.nan, "low": low, "high": high}


def _share(successes: int, trials: int) -> str:
  count = _count(successes, trials)
  return (f"{successes} of {trials} ({100 * count['fraction']:.0f}%, 95% CI"
          f" {100 * count['low']:.0f}-{100 * count['high']:.0f}%)")


def _spec_named(runs: Sequence[dict[str, Any]], name: str) -> str | None:
  return next((r["activation"] for r in runs if r["name"] == name), None)


def _direction(first_only: int, second_only: int, p: float) -> str:
  """``"more"``, ``"less"`` or ``"same"``: how often the first solves, at the 5% level."""
  if p >= 0.05:
    return "same"
  return "more" if first_only > second_only else "less"


_ABS_VERDICT = {"more": "held (abs solves more often)", "less": "did not hold (abs solves less often)",
                "same": "not shown (no significant difference)"}


def _abs_lines(runs: Sequence[dict[str, Any]], settings: Settings) -> list[str]:
  relu, absolute = _spec_named(runs, "relu"), _spec_named(runs, "abs")
  if relu is None or absolute is None:
    return ["- abs vs relu: not measured (both relu and abs must be among the activations)."]
  lines, verdicts = [], []
  narrow = min(settings.widths)
  for dataset in settings.datasets:
    a, r = _outcomes(runs, absolute, dataset=dataset), _outcomes(runs, relu, dataset=dataset)
    a_narrow = _outcomes(runs, absolute, dataset=dataset, width=narrow)
    r_narrow = _outcomes(runs, relu, dataset=dataset, width=narrow)
    first_only, second_only, p = paired(runs, absolute, relu, dataset=dataset)
    verdict = _ABS_VERDICT[_direction(first_only, second_only, p)]
    verdicts.append(f"on {dataset} {verdict.split(' (')[0]}")
    by_rate = "; ".join(
        f"{rate:g}: {sum(_outcomes(runs, absolute, dataset=dataset, learning_rate=rate).values())} vs"
        f" {sum(_outcomes(runs, relu, dataset=dataset, learning_rate=rate).values())}" for rate in settings.learning_rates)
    lines.append(
        f"  - {dataset}: abs solved {_share(sum(a.values()), len(a))} vs relu {_share(sum(r.values()), len(r))}"
        f" (widths and learning rates pooled; per learning rate {by_rate}); at width {narrow}, abs"
        f" {sum(a_narrow.values())} of {len(a_narrow)} vs relu {sum(r_narrow.values())} of {len(r_narrow)}."
        f" Paired by seed, width and rate, abs alone solved {first_only}, relu alone {second_only} (exact"
        f" McNemar p = {p:.2g}): {verdict}.")
  return [f"- Claim 6, \"abs is good on XOR-like problems\": {'; '.join(verdicts)}."] + lines


def _mixed_against_better(runs: Sequence[dict[str, Any]], relu: str, absolute: str, mixed: str,
                          dataset: str) -> tuple[str, int, int, float]:
  """The better of relu and abs on ``dataset`` (more solved runs) and :func:`paired` of mixed with it."""
  better = max((relu, absolute), key=lambda spec: sum(_outcomes(runs, spec, dataset=dataset).values()))
  return (better, *paired(runs, mixed, better, dataset=dataset))


def _mixed_lines(runs: Sequence[dict[str, Any]], settings: Settings) -> list[str]:
  relu, absolute, mixed = (_spec_named(runs, n) for n in ("relu", "abs", "mixed"))
  if None in (relu, absolute, mixed):
    return ["- mixed layer: not measured (relu, abs and a mixed spec must be among the activations)."]
  lines, directions, at_least = [], [], 0
  narrow = min(settings.widths)
  for dataset in settings.datasets:
    counts = {spec: sum(_outcomes(runs, spec, dataset=dataset).values()) for spec in (relu, absolute, mixed)}
    at_narrow = _outcomes(runs, mixed, dataset=dataset, width=narrow)
    trials = len(_outcomes(runs, mixed, dataset=dataset))
    better, first_only, second_only, p = _mixed_against_better(runs, relu, absolute, mixed, dataset)
    direction = _direction(first_only, second_only, p)
    directions.append(direction)
    at_least += counts[mixed] >= counts[better]
    verdict = {"more": f"better than {better}, so better than both", "less": f"worse than {better}",
               "same": f"not significantly different from {better}"}[direction]
    lines.append(
        f"  - {dataset}: mixed solved {_share(counts[mixed], trials)}, relu {counts[relu]}, abs"
        f" {counts[absolute]} of {trials} (at width {narrow}, mixed {sum(at_narrow.values())} of"
        f" {len(at_narrow)}); against the better of the two ({better}), paired by seed, mixed"
        f" alone solved {first_only}, {better} alone {second_only} (exact McNemar p = {p:.2g}): {verdict}.")
  total = len(settings.datasets)
  if "less" in directions:
    verdict = f"did not hold: significantly worse than the better of relu and abs on {directions.count('less')}"
  elif at_least == total:
    verdict = "held: as many solved runs as the better of relu and abs, or more, on all"
  else:
    verdict = (f"not shown: never significantly worse than the better of relu and abs, but fewer solved"
               f" runs on {total - at_least}")
  return [f"- Claim 7, a mixed layer ({mixed}: half relu, half abs units) gets the best of both:"
          f" {verdict} of {total} datasets (significantly better on {directions.count('more')})."] + lines


def _dying_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
  lines = []
  for activation in dict.fromkeys(r["activation"] for r in runs):
    groups = {outcome: [r for r in runs if r["activation"] == activation and r["solved"] == outcome
                        and r.get("dead_fraction") is not None] for outcome in (0, 1)}
    dead = {o: [r["dead_fraction"] for r in rows] for o, rows in groups.items()}
    inactive = {o: [r["inactive_fraction"] for r in rows] for o, rows in groups.items()}
    text = (f"failed {summary.format_estimate('dead_fraction', *mean_confidence_interval(dead[0]))}"
            f" (n = {len(dead[0])}) vs solved {summary.format_estimate('dead_fraction', *mean_confidence_interval(dead[1]))}"
            f" (n = {len(dead[1])}); inactive {summary.format_estimate('inactive_fraction', *mean_confidence_interval(inactive[0]))}"
            f" vs {summary.format_estimate('inactive_fraction', *mean_confidence_interval(inactive[1]))}")
    if not any(dead[0] + dead[1]):
      verdict = "no unit died in any run"
    elif min(len(dead[0]), len(dead[1])) < 2:
      verdict = "too few failed or solved runs to compare"
    else:
      p = float(stats.ttest_ind(dead[0], dead[1], equal_var=False).pvalue)
      verdict = (f"pooled, failures have {'more' if np.mean(dead[0]) > np.mean(dead[1]) else 'fewer'} dead"
                 f" units (Welch p = {p:.2g})" if p < 0.05 else f"pooled, no significant difference (Welch p = {p:.2g})")
      higher, lower = within_configurations(runs, activation)
      sign = float(stats.binomtest(higher, higher + lower).pvalue) if higher + lower else 1.0
      verdict += (f"; within the configurations that have both outcomes, the failures' mean is higher in"
                  f" {higher} and lower in {lower} (sign test p = {sign:.2g}: "
                  + ("significant at the 5% level)" if sign < 0.05 else "not significant at the 5% level)"))
    lines.append(f"  - {activation}: dead units {text}: {verdict}.")
  return ["- Do failures die? Final dead fraction of failed vs solved runs (every dataset, width and rate"
          " pooled: failures sit mostly at the smallest widths, where one dead unit is a large fraction,"
          " hence the comparison within configurations):"] + lines


def within_configurations(runs: Sequence[dict[str, Any]], activation: str) -> tuple[int, int]:
  """Configurations (dataset, width, rate) whose failed runs have a higher, lower mean dead fraction.

  Only configurations with both failed and solved runs count; ties count in neither.

  Examples:
    >>> runs = [{"dataset": "xor", "width": 4, "learning_rate": 0.1, "activation": "relu",
    ...          "solved": s, "dead_fraction": d} for s, d in ((0, 0.5), (1, 0.25), (1, 0.0))]
    >>> within_configurations(runs, "relu")
    (1, 0)
  """
  higher = lower = 0
  for key in dict.fromkeys((r["dataset"], r["width"], r["learning_rate"]) for r in runs):
    values = [[r["dead_fraction"] for r in runs if r["activation"] == activation and r["solved"] == outcome
               and (r["dataset"], r["width"], r["learning_rate"]) == key and r.get("dead_fraction") is not None]
              for outcome in (0, 1)]
    if values[0] and values[1]:
      higher += np.mean(values[0]) > np.mean(values[1])
      lower += np.mean(values[0]) < np.mean(values[1])
  return int(higher), int(lower)


def _threshold_line(runs: Sequence[dict[str, Any]], settings: Settings, ceilings: dict[str, float]) -> str:
  cells = []
  for dataset, threshold in zip(settings.datasets, settings.thresholds):
    near = sum(abs(r["test_accuracy"] - threshold) < 0.01 for r in runs
               if r["dataset"] == dataset and r.get("test_accuracy") is not None)
    ceiling = "not measured" if math.isnan(ceilings[dataset]) else f"{ceilings[dataset]:.3f}"
    cells.append(f"{dataset} {threshold:g} (noise ceiling {ceiling}; {near} runs within one point of it)")
  return ("- Solved means test accuracy >= the threshold: " + "; ".join(cells) + ". The noise ceiling is"
          f" a 25-NN's test accuracy, fitted to {settings.ceiling_points:,} fresh points.")


_ABS_READING = {"more": "abs solves more often", "less": "abs solves less often", "same": "abs no different"}
_MIXED_READING = {"more": "better", "less": "worse", "same": "no different"}


def _sensitivity_line(runs: Sequence[dict[str, Any]], settings: Settings, shift: float = 0.02) -> str:
  """The two claims' readings with every threshold moved down and up by ``shift``."""
  relu, absolute, mixed = (_spec_named(runs, n) for n in ("relu", "abs", "mixed"))
  if relu is None or absolute is None:
    return ""
  cells = []
  for dataset, threshold in zip(settings.datasets, settings.thresholds):
    for moved_to in (threshold - shift, threshold + shift):
      moved = [{**r, "solved": solved(r, moved_to)} for r in runs if r["dataset"] == dataset]
      text = f"{dataset} at {moved_to:g}: {_ABS_READING[_direction(*paired(moved, absolute, relu))]}"
      if mixed is not None:
        better, *result = _mixed_against_better(moved, relu, absolute, mixed, dataset)
        text += f", mixed {_MIXED_READING[_direction(*result)]} than {better}".replace("no different than", "no different from")
      cells.append(text)
  return (f"- Threshold sensitivity (each threshold {shift:g} lower and higher; abs vs relu, mixed vs the"
          " better of the two, exact McNemar at the 5% level): " + "; ".join(cells) + ".")


def _count_table(rows: Sequence[dict[str, Any]], settings: Settings) -> list[str]:
  specs = list(dict.fromkeys(r["activation"] for r in rows))
  lines = ["| dataset | depth | width | learning rate | " + " | ".join(specs) + " |",
           "|---|---:|---:|---:|" + "---:|" * len(specs)]
  depth_of = dict(zip(settings.datasets, settings.depths))
  cells: dict[tuple, list[str]] = {}
  for row in rows:
    key = (row["dataset"], row["width"], row["learning_rate"])
    cells.setdefault(key, []).append(
        f"{row['solved']}/{row['trials']} ({100 * row['low']:.0f}-{100 * row['high']:.0f}%)")
  for (dataset, width, rate), values in cells.items():
    lines.append(f"| {dataset} | {depth_of[dataset]} | {width} | {rate:g} | " + " | ".join(values) + " |")
  return lines


def _by_outcome(runs: Sequence[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
  """The runs with an ``outcome`` column, ordered by dataset, activation, failed before solved."""
  order = {spec: index for index, spec in enumerate(settings.activations)}
  rows = [{**r, "outcome": "solved" if r["solved"] else "failed"} for r in runs]
  return sorted(rows, key=lambda r: (settings.datasets.index(r["dataset"]), order.get(r["grid"], 0), r["solved"]))


def _summary(settings: Settings, command: str, trained: experiment.Trained, counts: list[dict[str, Any]],
             ceilings: dict[str, float], seconds: float) -> str:
  runs = trained.runs
  lines = [f"# {NAME}: how many seeds of a small MLP solve xor, moons and spirals, per activation?", "",
           "## Answer", "", *_abs_lines(runs, settings), *_mixed_lines(runs, settings),
           *_dying_lines(runs), _threshold_line(runs, settings, ceilings),
           _sensitivity_line(runs, settings), "",
           f"Each configuration has {settings.seeds} seeds; intervals of counts are 95% Wilson intervals,"
           " ± is a 95% Student t interval. Same seed = same initial weights and batches across"
           " activations, so runs pair by seed.", "",
           "## Solved runs per configuration", "",
           "Solved of seeds (95% Wilson interval).", "", *_count_table(counts, settings), "",
           "## Failed vs solved runs: accuracy, inactive and dead units at the end", "",
           summary.grouped_table(_by_outcome(runs, settings), ["dataset", "activation", "outcome"],
                                 ["test_accuracy", "inactive_fraction", "dead_fraction"]), "",
           "Inactive: z <= 0 on every training example; dead: backward derivative 0 on every training"
           " example. For abs an inactive unit is not dead (it outputs -z, derivative -1); a mixed"
           " layer's units die only in its relu half.", "",
           "## Not tested", "",
           "- Deeper or wider nets, other optimizers and inits: one setting each here (Adam, LeCun"
           " normal, zero biases); the solved counts depend on the learning rate, hence two.",
           "- Solving is judged on one test split per dataset (data seed 0); the thresholds are fixed"
           " settings, so read the counts with the number of runs near them (Answer).", "",
           "Plot: `solved_vs_width.png` (solved fraction vs width, 95% Wilson intervals). Data:"
           " `runs.csv` (with `solved`), `solved.csv`, `history.csv`, `layers.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids)
  return "\n".join(lines)


def _plots(settings: Settings, counts: Sequence[dict[str, Any]], folder: pathlib.Path) -> None:
  specs = list(dict.fromkeys(r["activation"] for r in counts))
  rates, datasets = settings.learning_rates, settings.datasets
  figure = plots.new_figure(4 * len(datasets), 3.2 * len(rates) + 0.6)
  for row_index, rate in enumerate(rates):
    for column, (dataset, depth) in enumerate(zip(datasets, settings.depths)):
      axis = figure.add_subplot(len(rates), len(datasets), row_index * len(datasets) + column + 1)
      for index, spec in enumerate(specs):
        mine = [r for r in counts if r["dataset"] == dataset and r["learning_rate"] == rate
                and r["activation"] == spec]
        x = [r["width"] * 2 ** (0.04 * (index - (len(specs) - 1) / 2)) for r in mine]
        y = np.array([r["fraction"] for r in mine])
        error = [y - [r["low"] for r in mine], [r["high"] for r in mine] - y]
        axis.errorbar(x, y, yerr=error, marker="o", markersize=4, capsize=2, color=f"C{index}",
                      label=spec if row_index == column == 0 else None)
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


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False,
    command: str = "",
) -> Outcome:
  """Trains every dataset x width x activation x seed x learning rate and counts the solved runs.

  Writes the engine's files (``runs.csv`` with a ``solved`` column),
  ``solved.csv``, ``summary.md`` and ``solved_vs_width.png`` into ``out``
  (default ``results/xor-<timestamp>``). Rerunning with the same folder
  resumes; ``tests/test_study_xor.py`` runs it at tiny settings.
  """
  validate(settings)
  started = time.perf_counter()
  threshold_of = dict(zip(settings.datasets, settings.thresholds))
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  trained = experiment.train_pending(
      prepared, quiet=quiet, run_columns=lambda row: {"solved": solved(row, threshold_of[row["dataset"]])})
  ceilings = {dataset: noise_ceiling(dataset, points=settings.ceiling_points) if settings.ceiling_points
              else math.nan for dataset in settings.datasets}
  counts = solved_rows(trained.runs, settings)
  report = _summary(settings, command, trained, counts, ceilings, time.perf_counter() - started)
  experiment.write_outputs(
      trained.out, {"solved.csv": results.csv_text(counts), "summary.md": report},
      lambda folder: _plots(settings, counts, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, trained.runs, counts, ceilings, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """XOR, moons, spirals: how many seeds of a small MLP solve each, per activation (abs, mixed)?

  Args:
    settings: the study.
    out: output folder; empty means results/xor-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
