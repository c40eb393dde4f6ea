"""Initialisation: does the init have to match the activation, and does NecroReLU make it matter less?

Claim 5 of the research brief: initialisation matters (He vs Xavier vs
N(0, 0.02) vs a positive bias), and the init must match the activation
(LeakyReLU wants a different gain than ReLU). And the project's own question:
NecroReLU lets gradient through inactive units, so does the choice of init
matter less for it than for ReLU?

Initialisations: He, Xavier/Glorot, LeCun (truncated normals, zero biases),
N(0, 0.02^2) (zero biases), RAI (Lu et al. 2019, its own biases), and He
kernels with a positive constant bias (0.01, 0.1); at the same seed these have
exactly the zero-bias He kernels, so the bias's effect is paired. Activations:
relu, leaky_relu (slope 0.01) and necro_relu (backward slope 0.1), MLPs of
width 64 and depth 2, 5, 10, 20 on MNIST-1D. Each (depth, initialisation) is
one engine part; activation x seed x learning rate is its grid.

Measured: the inactive fraction (z <= 0 on every training example) at
initialisation (``history.csv`` at step 0) and after training (``runs.csv``),
the dead fraction, and test accuracy. The best init per activation and depth;
the inits tied with it (the paired by-seed difference's 95% interval contains
0); whether one init is tied-best for every activation (if so, the init need not
match the activation); and the spread of accuracy across inits (their standard
deviation at each seed, compared with ReLU's seed by seed).

Run time: 11 minutes at the defaults on 2 CPU cores shared with other jobs
(load 5 to 8), most of it compiling the 84 programs (7 inits x 4 depths x 3
activations); less on a quiet machine. Command::

  python -m research init --out results/init
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import pandas as pd

import activations
from research import config as config_lib
from research import experiment, models, plots, tables
from research.config import Config
from research.findings import Answer, Estimate, Findings, Table
from research.statistics import mean_confidence_interval, paired_comparison
from research.study import Study

CHANCE = 0.1  # MNIST-1D has 10 balanced classes
SCALED_DRAWS = ("he_normal", "xavier_normal", "lecun_normal")  # one truncated-normal draw, scaled per layer

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]
Names = Annotated[tuple[str, ...], config_lib.comma_separated(str, "NAME,NAME,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Accuracy and inactive units per initialisation, activation and depth."""

  inits: Names = ("he_normal", "xavier_normal", "lecun_normal", "normal_002", "rai")  # kernel initialisers with zero biases (rai draws its own)
  bias_inits: config_lib.Floats = (0.01, 0.1)  # positive constant biases, each with bias_kernel_init's kernels
  bias_kernel_init: models.Initializer = "he_normal"  # kernels of the positive-bias runs (same draws as this init at zero bias)
  depths: Ints = (2, 5, 10, 20)  # hidden layers; each (depth, initialisation) is one engine part
  base: Config = Config(  # the engine's settings: width-64 MLPs, 4 seeds (costs what 3 do on 2 devices), Adam at 3e-3 (reaches the plateau in 1000 steps; 1e-2 kills more units)
      activations=("relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)"),
      width=64, seeds=4, learning_rates=(3e-3,), steps=1000, eval_every=500)


def label(init: str, bias: float = 0.0) -> str:
  """The name of an initialisation in tables: the kernel init, and the bias if not zero.

  Examples:
    >>> label("he_normal"), label("he_normal", 0.1)
    ('he_normal', 'he_normal + bias 0.1')
  """
  return init if bias == 0 else f"{init} + bias {bias:g}"


def initialisations(settings: Settings) -> list[tuple[str, str, float]]:
  """``(label, kernel init, bias)`` of every initialisation compared.

  Examples:
    >>> initialisations(Settings(inits=("rai",), bias_inits=(0.1,)))
    [('rai', 'rai', 0.0), ('he_normal + bias 0.1', 'he_normal', 0.1)]
  """
  return ([(label(init), init, 0.0) for init in settings.inits]
          + [(label(settings.bias_kernel_init, bias), settings.bias_kernel_init, bias)
             for bias in settings.bias_inits])


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(inits=("he_normal", "glorot")))
    Traceback (most recent call last):
    ...
    ValueError: inits: 'glorot' is not valid. Choose from: lecun_normal, he_normal, he_uniform, xavier_normal, xavier_uniform, normal_002, rai.
  """
  for init in (*settings.inits, settings.bias_kernel_init):
    field = "inits" if init in settings.inits else "bias_kernel_init"
    if init not in models.INITIALIZERS:
      raise ValueError(f"{field}: {init!r} is not valid. Choose from: {', '.join(models.INITIALIZERS)}.")
  if settings.bias_inits and settings.bias_kernel_init == "rai":
    raise ValueError("bias_kernel_init: 'rai' draws its own biases; choose another kernel initialiser.")
  if len(set(settings.inits)) != len(settings.inits):
    raise ValueError(f"inits has duplicates: {settings.inits!r}.")
  if any(not bias > 0 for bias in settings.bias_inits) or len(set(settings.bias_inits)) != len(settings.bias_inits):
    raise ValueError(f"bias_inits must be distinct positive numbers (zero bias is in inits), got {settings.bias_inits!r}.")
  if not initialisations(settings):
    raise ValueError("inits and bias_inits are both empty: name at least one initialisation.")
  if not settings.depths or any(not isinstance(d, int) or d < 1 for d in settings.depths):
    raise ValueError(f"depths must be one or more positive integers, got {settings.depths!r}.")
  if len(set(settings.depths)) != len(settings.depths):
    raise ValueError(f"depths has duplicates: {settings.depths!r}.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per (depth, initialisation), holding every activation."""
  return [
      experiment.Part({"depth": depth, "initialisation": name, "kernel_init": init, "bias_init": bias},
                      dataclasses.replace(settings.base, model="mlp", depth=depth, init=init, bias_init=bias))
      for depth in sorted(settings.depths) for name, init, bias in initialisations(settings)
  ]


def by_seed(rows: Sequence[dict[str, Any]], metric: str, **where: Any) -> dict[int, float]:
  """``{seed: metric}`` over the non-diverged rows that match ``where``.

  Examples:
    >>> rows = [{"seed": 0, "depth": 2, "test_accuracy": 0.6}, {"seed": 1, "depth": 5, "test_accuracy": 0.5}]
    >>> by_seed(rows, "test_accuracy", depth=2)
    {0: 0.6}
  """
  return {row["seed"]: row[metric] for row in rows
          if all(row.get(k) == v for k, v in where.items()) and not row.get("diverged")
          and row.get(metric) is not None}


def best_inits(runs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
  """Per activation and depth: the init of highest mean test accuracy and those tied with it.

  An init is tied with the best when the 95% interval of the paired (by seed)
  accuracy difference contains 0, or cannot be computed (fewer than 2 seeds).

  Examples:
    >>> accuracy = {"he": [0.60, 0.61, 0.62], "lecun": [0.61, 0.58, 0.60], "small": [0.10, 0.11, 0.10]}
    >>> runs = [{"activation": "relu", "depth": 2, "initialisation": i, "seed": s, "test_accuracy": a}
    ...         for i, values in accuracy.items() for s, a in enumerate(values)]
    >>> row = best_inits(runs, ["he", "lecun", "small"])[0]
    >>> row["best"], row["tied"]
    ('he', ('he', 'lecun'))
  """
  found = []
  for activation in dict.fromkeys(r["activation"] for r in runs):
    for depth in sorted({r["depth"] for r in runs}):
      accuracy = {name: by_seed(runs, "test_accuracy", activation=activation, depth=depth, initialisation=name)
                  for name in names}
      means = {name: float(np.mean(list(v.values()))) for name, v in accuracy.items() if v}
      if not means:
        continue
      best = max(means, key=means.get)
      mean, half = mean_confidence_interval(list(accuracy[best].values()))
      tied = []
      for name in means:
        gap = paired_comparison(accuracy[best], accuracy[name])
        if name == best or not math.isfinite(gap.half_width) or gap.mean_difference - gap.half_width <= 0:
          tied.append(name)
      found.append({"activation": activation, "depth": depth, "best": best, "mean": mean, "half_width": half,
                    "tied": tuple(tied)})
  return found


def common_best(best: Sequence[dict[str, Any]], depth: int) -> tuple[str, ...]:
  """The inits tied with the best for every activation at ``depth`` (in the first's order).

  Examples:
    >>> rows = [{"depth": 2, "tied": ("he", "lecun")}, {"depth": 2, "tied": ("lecun",)}]
    >>> common_best(rows, 2)
    ('lecun',)
  """
  sets = [row["tied"] for row in best if row["depth"] == depth]
  return tuple(name for name in sets[0] if all(name in s for s in sets)) if sets else ()


def spread_by_seed(runs: Sequence[dict[str, Any]], names: Sequence[str], **where: Any) -> dict[int, float]:
  """``{seed: standard deviation of test accuracy across inits}``, seeds where every init is healthy.

  Examples:
    >>> runs = [{"initialisation": i, "seed": 0, "test_accuracy": a} for i, a in (("he", 0.6), ("small", 0.2))]
    >>> round(spread_by_seed(runs, ["he", "small"])[0], 4)
    0.2828
  """
  accuracy = [by_seed(runs, "test_accuracy", initialisation=name, **where) for name in names]
  seeds = set.intersection(*(set(a) for a in accuracy)) if accuracy else set()
  return {seed: float(np.std([a[seed] for a in accuracy], ddof=1)) if len(names) > 1 else 0.0
          for seed in sorted(seeds)}


def spreads(runs: Sequence[dict[str, Any]], names: Sequence[str], baseline: str, group: str = "all inits") -> list[dict[str, Any]]:
  """Per depth and activation: the spread of accuracy across inits, and its difference from ``baseline``'s.

  ``range_of_means`` is the best minus the worst per-init mean; ``spread`` the
  mean over seeds of :func:`spread_by_seed`; ``difference`` its paired (by
  seed) difference with the baseline activation's; ``diverged`` counts the
  runs left out (a seed with a diverged init drops out of the spread).
  """
  found = []
  for depth in sorted({r["depth"] for r in runs}):
    base = spread_by_seed(runs, names, depth=depth, activation=baseline)
    for activation in dict.fromkeys(r["activation"] for r in runs):
      per_seed = spread_by_seed(runs, names, depth=depth, activation=activation)
      accuracy = [by_seed(runs, "test_accuracy", depth=depth, activation=activation, initialisation=n) for n in names]
      means = [float(np.mean(list(a.values()))) for a in accuracy if a]
      spread, half = mean_confidence_interval(list(per_seed.values()))
      gap = paired_comparison(per_seed, base)
      diverged = sum(1 for r in runs if r["depth"] == depth and r["activation"] == activation
                     and r["initialisation"] in names and r.get("diverged"))
      found.append({"inits": group, "depth": depth, "activation": activation, "seeds": len(per_seed), "diverged": diverged,
                    "range_of_means": max(means) - min(means) if means else math.nan,
                    "spread": spread, "spread_half_width": half,
                    "difference": gap.mean_difference, "difference_half_width": gap.half_width})
  return found


def direction(mean: float, half_width: float, below: str = "lower", above: str = "higher") -> str:
  """``below``/``above`` when a 95% interval excludes 0 on that side, else says it cannot tell.

  Examples:
    >>> direction(-0.03, 0.01), direction(0.01, 0.02), direction(0.0, 0.0), direction(0.5, math.nan)
    ('lower', 'not distinguishable from 0', 'no difference', 'not testable (one seed)')
  """
  if math.isnan(mean) or math.isnan(half_width):
    return "not testable (one seed)"
  if mean == 0 and half_width == 0:
    return "no difference"
  if mean + half_width < 0:
    return below
  if mean - half_width > 0:
    return above
  return "not distinguishable from 0"


def _estimate(column: str, values: dict[int, float]) -> Estimate:
  """``values`` by seed as an estimate (a percentage for a fraction)."""
  return Estimate.of_mean(list(values.values()), column)


def _points(mean: float, half: float, n: int = 0) -> Estimate:
  """A difference of fractions in percentage points."""
  return Estimate(mean, mean - half, mean + half, "points", n)


def _find(names: Sequence[str], registry_name: str) -> str | None:
  return next((a for a in names if activations.parse_spec(a)[0] == registry_name), None)


MATCH = "Does the init have to match the activation?"
SPREAD = "Does NecroReLU make the init matter less?"
DETAILS = "Small inits, positive biases, inactive units"


def _best_answers(best: Sequence[dict[str, Any]], depths: Sequence[int]) -> list[Answer]:
  answers = []
  for depth in depths:
    rows = [row for row in best if row["depth"] == depth]
    answers.append(Answer(
        f"Best init at depth {depth} (highest mean test accuracy; tied: the 95% interval of the paired"
        " difference with the best contains 0): " + "; ".join(
            f"{row['activation']}: {row['best']} {{}} (tied: {', '.join(n for n in row['tied'] if n != row['best']) or 'none'})"
            for row in rows) + ".",
        tuple(Estimate(r["mean"], r["mean"] - r["half_width"], r["mean"] + r["half_width"], "percent") for r in rows),
        topic=MATCH))
  same = [str(d) for d in depths if len({row["best"] for row in best if row["depth"] == d}) == 1]
  answers.append(Answer(
      (f"The best init (highest mean) is the same for every activation at depth(s) {', '.join(same)}" if same
       else "The best init (highest mean) differs between activations at every depth")
      + "; see below whether the differences are more than noise.", topic=MATCH))
  unmatched = [d for d in depths if not common_best(best, d)]
  verdict = (f"held at depth(s) {', '.join(map(str, unmatched))}, where no init is tied-best for every activation"
             if unmatched else "not supported at any depth")
  shared = "".join(f" At depth {d}, tied-best for every activation: {', '.join(common_best(best, d))}."
                   for d in depths if common_best(best, d))
  answers.append(Answer(f"\"The init must match the activation\", between these activations: {verdict}.{shared}",
                        topic=MATCH, headline=True, verdict="held" if unmatched else "did not hold"))
  return answers


def _spread_answer(spread_rows: Sequence[dict[str, Any]], baseline: str, group: str, activation: str) -> Answer:
  base = {r["depth"]: r for r in spread_rows if r["activation"] == baseline and r["inits"] == group}
  mine = [r for r in spread_rows if r["activation"] == activation and r["inits"] == group]
  verdicts = {r["depth"]: direction(r["difference"], r["difference_half_width"], "smaller", "larger") for r in mine}
  cells = [f"depth {r['depth']}: {100 * r['spread']:.1f} vs {100 * base[r['depth']]['spread']:.1f} points,"
           f" difference {{}} ({verdicts[r['depth']]}"
           + (f"; {r['diverged'] + base[r['depth']]['diverged']} diverged run(s) left out"
              if r["diverged"] + base[r["depth"]]["diverged"] else "") + ")" for r in mine]
  smaller = [str(d) for d, verdict in verdicts.items() if verdict == "smaller"]
  return Answer(
      f"Does {activation} make the init matter less than {baseline} ({group})? Standard deviation of test"
      " accuracy across inits (at each seed, mean over seeds), paired by seed: " + "; ".join(cells)
      + (f". Smaller at depth(s) {', '.join(smaller)}." if smaller else ". Never smaller with 95% confidence: not supported."),
      tuple(_points(r["difference"], r["difference_half_width"], r["seeds"]) for r in mine),
      topic=SPREAD, headline=True, verdict="held" if smaller else "did not hold")


def _spread_answers(spread_rows: Sequence[dict[str, Any]], baseline: str) -> list[Answer]:
  others = [a for a in dict.fromkeys(r["activation"] for r in spread_rows) if a != baseline]
  asked = [_find(others, "necro_relu")] if _find(others, "necro_relu") else others  # the question is NecroReLU's
  return [_spread_answer(spread_rows, baseline, group, activation)
          for group, activation in dict.fromkeys((r["inits"], r["activation"]) for r in spread_rows)
          if activation in asked]


def _first_gradient(layers: Sequence[dict[str, Any]], **where: Any) -> list[float]:
  """log10 of the first hidden layer's gradient norm at step 0 per run (-inf when it is 0)."""
  return [math.log10(r["gradient_norm"]) if r["gradient_norm"] > 0 else -math.inf for r in layers
          if r["step"] == 0 and r["layer"] == 1 and r.get("gradient_norm") is not None
          and all(r.get(k) == v for k, v in where.items())]


def _small_init_answers(runs, layers, names, depths: Sequence[int], width: int, baseline: str) -> list[Answer]:
  if "normal_002" not in names:
    return []
  deepest, activation_names = max(depths), list(dict.fromkeys(r["activation"] for r in runs))
  at_deepest = [by_seed(runs, "test_accuracy", activation=a, depth=deepest, initialisation="normal_002")
                for a in activation_names]
  trend = [by_seed(runs, "test_accuracy", activation=baseline, depth=d, initialisation="normal_002") for d in depths]
  gradients = _first_gradient(layers, depth=deepest, initialisation="normal_002")
  finite = [g for g in gradients if math.isfinite(g)]
  he = [g for g in _first_gradient(layers, depth=deepest, initialisation="he_normal") if math.isfinite(g)]
  gain = 0.02 * math.sqrt(width / 2)  # a ReLU layer's factor on the signal's scale: sqrt(fan_in / 2) x std
  upper = [sum(mean_confidence_interval(list(v.values()))) for v in at_deepest if len(v) > 1]
  verdict = ("at chance for every activation (each upper 95% bound below chance + 5 points)"
             if upper and max(upper) < CHANCE + 0.05 else "above chance for some activation")
  return [Answer(
      f"N(0, 0.02) at depth {deepest}: {verdict}; test accuracy (chance {CHANCE:.0%}) "
      + "; ".join(f"{a} {{}}" for a in activation_names)
      + f"; {baseline}'s by depth, " + ", ".join(f"{d}: {{}}" for d in depths) + ". Each layer multiplies the"
      f" signal's scale by about {gain:.2f}, {gain ** deepest:.0e} over {deepest} layers. The first layer's"
      " gradient norm at init is"
      + (f" 10^{np.mean(finite):.1f} (mean log10 over {len(finite)} runs)" if finite else " not finite")
      + (f", exactly 0 in {len(gradients) - len(finite)} of {len(gradients)} runs" if len(finite) < len(gradients) else "")
      + (f"; he_normal's is 10^{np.mean(he):.1f}" if he else "") + ".",
      tuple(_estimate("test_accuracy", v) for v in (*at_deepest, *trend)), topic=DETAILS)]


def _bias_depth(runs, history, settings: Settings, baseline: str, depth: int, verdicts: dict) -> Answer:
  zero = label(settings.bias_kernel_init)
  texts, estimates = [], []
  for when, rows in (("at init", [r for r in history if r["step"] == 0]), ("after training", runs)):
    where = {"activation": baseline, "depth": depth}
    reference = by_seed(rows, "inactive_fraction", initialisation=zero, **where)
    cells, estimates = [f"{zero} {{}}"], estimates + [_estimate("inactive_fraction", reference)]
    for bias in settings.bias_inits:
      biased = by_seed(rows, "inactive_fraction", initialisation=label(zero, bias), **where)
      gap = paired_comparison(biased, reference)
      found = direction(gap.mean_difference, gap.half_width)
      verdicts[when].setdefault(found, []).append(f"{bias:g} at depth {depth}")
      cells.append(f"bias {bias:g} {{}} ({{}}, {found})")
      estimates += [_estimate("inactive_fraction", biased), Estimate.of_difference(gap, "inactive_fraction")]
    texts.append(f"{when} " + ", ".join(cells))
  return Answer(f"Positive bias, {baseline} at depth {depth}, inactive units: " + "; ".join(texts) + ".",
                tuple(estimates), topic=DETAILS)


def _bias_answers(runs, history, settings: Settings, baseline: str) -> list[Answer]:
  if not settings.bias_inits or label(settings.bias_kernel_init) not in settings.inits:
    return []
  verdicts: dict[str, dict[str, list[str]]] = {"at init": {}, "after training": {}}
  answers = [_bias_depth(runs, history, settings, baseline, depth, verdicts) for depth in sorted(settings.depths)]
  summaries = []
  for when, found in verdicts.items():
    changes = [f"{word} with bias " + ", ".join(found[word]) for word in ("lower", "higher") if word in found]
    if changes:
      summaries.append(f"{when.capitalize()}: " + "; ".join(changes))
  return [Answer(f"Does a positive bias lower {baseline}'s inactive units (paired with zero bias, same kernels)? "
                 + ("; ".join(summaries) + "; no detectable change in the other cases (below)." if summaries
                    else "No detectable change at any depth, at init or after training (below)."),
                 topic=DETAILS), *answers]


def step_zero_pairs(history: Sequence[dict[str, Any]], first: str, second: str, column: str = "name") -> tuple[int, int]:
  """``(equal, pairs)``: runs whose step-0 inactive fraction is the same for two values of ``column``.

  Runs are paired on depth, seed, learning rate and the other of ``name`` and
  ``initialisation``: two activations at the same init, or two inits for the
  same activation.

  Examples:
    >>> rows = [{"name": n, "depth": 2, "initialisation": "he_normal", "seed": 0, "learning_rate": 0.1,
    ...          "step": 0, "inactive_fraction": 0.05} for n in ("relu", "necro_relu")]
    >>> step_zero_pairs(rows, "relu", "necro_relu")
    (1, 1)
  """
  other = "initialisation" if column == "name" else "name"

  def values(value: str) -> dict[tuple, float]:
    return {(r["depth"], r[other], r["seed"], r["learning_rate"]): r["inactive_fraction"]
            for r in history if r["step"] == 0 and r[column] == value}

  firsts, seconds = values(first), values(second)
  both = firsts.keys() & seconds.keys()
  return sum(firsts[k] == seconds[k] for k in both), len(both)


def _diverged_answer(runs: Sequence[dict[str, Any]], factor: float) -> Answer:
  counts: dict[tuple, list[int]] = {}
  for row in runs:
    counts.setdefault((row["depth"], row["initialisation"], row["activation"]), []).append(bool(row.get("diverged")))
  cells = [f"{activation} with {name} at depth {depth}: {sum(flags)} of {len(flags)}"
           for (depth, name, activation), flags in counts.items() if any(flags)]
  return Answer(f"Diverged runs (training loss non-finite or above {factor:g} times its initial value; left out"
                " of every mean): " + ("; ".join(cells) if cells else "none") + ".", topic=DETAILS)


def _equal_at_init_answers(history, names: Sequence[str], relu: str | None, necro: str | None) -> list[Answer]:
  answers = []
  if relu and necro:
    equal, pairs = step_zero_pairs(history, "relu", "necro_relu")
    answers.append(Answer(f"relu and necro_relu at step 0 (same init, seed and forward pass): inactive fraction"
                          f" equal in {equal} of {pairs} (depth, init, seed) pairs; only their backward passes"
                          " differ.", topic=DETAILS, verdict="held" if equal == pairs else "did not hold"))
  scaled = [name for name in SCALED_DRAWS if name in names]
  if len(scaled) > 1:
    counts = [step_zero_pairs(history, scaled[0], other, "initialisation") for other in scaled[1:]]
    equal, pairs = sum(c[0] for c in counts), sum(c[1] for c in counts)
    answers.append(Answer(
        f"{', '.join(scaled)} at zero bias scale one truncated-normal draw per layer differently, and a"
        " zero-bias (leaky) ReLU network is positively homogeneous: their inactive fractions at init are"
        f" equal in {equal} of {pairs} (depth, activation, seed) pairs"
        + ("; any difference between them comes from training." if equal == pairs else "."), topic=DETAILS))
  return answers


def _inactive_answer(runs, history, names, activation: str, depth: int) -> Answer:
  at_init = [r for r in history if r["step"] == 0]
  where = {"activation": activation, "depth": depth}
  estimates = [estimate for name in names for estimate in (
      _estimate("inactive_fraction", by_seed(at_init, "inactive_fraction", initialisation=name, **where)),
      _estimate("inactive_fraction", by_seed(runs, "inactive_fraction", initialisation=name, **where)))]
  return Answer(f"{activation}, depth {depth}, inactive units at init -> after training: "
                + "; ".join(f"{name} {{}} -> {{}}" for name in names) + ".", tuple(estimates), topic=DETAILS)


def _spread_table(spread_rows: Sequence[dict[str, Any]], baseline: str) -> pd.DataFrame:
  return pd.DataFrame([{
      "inits": row["inits"], "depth": row["depth"], "activation": row["activation"], "seeds": row["seeds"],
      "range of means": f"{100 * row['range_of_means']:.1f} points",
      "std across inits": Estimate(row["spread"], row["spread"] - row["spread_half_width"],
                                   row["spread"] + row["spread_half_width"], "percent", row["seeds"]),
      "difference": "-" if row["activation"] == baseline else _points(
          row["difference"], row["difference_half_width"], row["seeds"]),
  } for row in spread_rows])


def derived(settings: Settings, runs: Sequence[dict[str, Any]]):
  """The best inits and the spreads across inits (``best.csv``, ``spread.csv``), and the baseline."""
  names = [name for name, _, _ in initialisations(settings)]
  activation_names = list(dict.fromkeys(r["activation"] for r in runs))
  baseline = _find(activation_names, "relu") or activation_names[0]
  spread_rows = spreads(runs, names, baseline)
  if "normal_002" in names and len(names) > 2:  # its signal vanishes whatever the backward pass
    spread_rows += spreads(runs, [n for n in names if n != "normal_002"], baseline, "inits but normal_002")
  return best_inits(runs, names), spread_rows, baseline


NOTES = (
    "Paired differences are by seed. Inactive: z <= 0 on every training example (mean over hidden layers);"
    " dead: backward derivative 0 on every training example (for relu the same units; leaky_relu and"
    " necro_relu never have dead units).",
    "Spread: range is the best minus the worst per-init mean; std is the standard deviation of test"
    " accuracy across the inits at each seed, mean over seeds; difference: minus the baseline's, paired by"
    " seed. Seeds with a diverged run are left out.",
    "Not tested: LeakyReLU's own He gain, sqrt(2 / (1 + a^2)), differs from ReLU's by 0.005% at a = 0.01,"
    " so the two cannot be told apart here; activations with another forward pass (tanh, sigmoid, SELU),"
    " which the gradient-flow study pairs with their usual inits; xavier_normal and lecun_normal differ only"
    " in the first and output layers here (square hidden layers); one learning rate and step count: a high"
    " rate kills units by itself (claim 1), which would mix with the init's effect.",
)


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Best inits, the spread across inits (NecroReLU vs ReLU), small inits, positive biases."""
  runs, history, layers = (tables.records(frame) for frame in (found.runs, found.history, found.layers))
  names = [name for name, _, _ in initialisations(settings)]
  activation_names = list(dict.fromkeys(r["activation"] for r in runs))
  relu, necro = _find(activation_names, "relu"), _find(activation_names, "necro_relu")
  best, spread_rows, baseline = derived(settings, runs)
  depths = sorted(settings.depths)
  at_init = found.history[found.history["step"] == 0]
  return Findings(
      question="does the initialisation have to match the activation, and does NecroReLU make it matter less?",
      answers=(*_best_answers(best, depths), *_spread_answers(spread_rows, baseline),
               *_small_init_answers(runs, layers, names, depths, settings.base.width, baseline),
               *_bias_answers(runs, history, settings, baseline),
               _diverged_answer(runs, settings.base.divergence_factor),
               *(_inactive_answer(runs, history, names, a, max(depths)) for a in dict.fromkeys(x for x in (relu, necro) if x)),
               *_equal_at_init_answers(history, names, relu, necro)),
      tables=(
          Table("Test accuracy, inactive and dead units after training", tables.grouped_estimates(
              found.runs, ["depth", "initialisation", "activation"],
              ["test_accuracy", "inactive_fraction", "dead_fraction"])),
          Table("Inactive units at initialisation (step 0)", tables.grouped_estimates(
              at_init, ["depth", "initialisation", "activation"], ["inactive_fraction"])),
          Table("Spread of test accuracy across inits", _spread_table(spread_rows, baseline)),
      ),
      notes=(*NOTES, f"Setup: MLP of width {settings.base.width} on `{settings.base.dataset}`, batch"
             f" {settings.base.batch_size}; positive biases use {settings.bias_kernel_init} kernels (the same"
             " draws as its zero-bias runs at each seed)."),
      plots=("init_accuracy.png", "init_inactive.png"),
      data={"best": pd.DataFrame([{**row, "tied": " ".join(row["tied"])} for row in best]),
            "spread": pd.DataFrame(spread_rows)},
  )


def _by_depth(rows, metric: str, depths, **where) -> tuple[np.ndarray, np.ndarray]:
  estimates = [mean_confidence_interval(list(by_seed(rows, metric, depth=d, **where).values()) or [math.nan])
               for d in depths]
  return 100 * np.array([e[0] for e in estimates]), 100 * np.nan_to_num(np.array([e[1] for e in estimates]))


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  runs, history = tables.records(found.runs), tables.records(found.history)
  names = [name for name, _, _ in initialisations(settings)]
  activation_names = list(dict.fromkeys(r["activation"] for r in runs))
  depths = sorted(settings.depths)
  at_init = [r for r in history if r["step"] == 0]
  for filename, title, series in (
      ("init_accuracy.png", "test accuracy (%)", ((runs, "test_accuracy", "-"),)),
      ("init_inactive.png", "inactive units (%): at init dashed, after training solid",
       ((at_init, "inactive_fraction", "--"), (runs, "inactive_fraction", "-")))):
    figure = plots.new_figure(4.2 * len(activation_names), 4.6)
    for index, activation in enumerate(activation_names):
      axis = figure.add_subplot(1, len(activation_names), index + 1)
      for position, name in enumerate(names):
        for rows, metric, style in series:
          means, halves = _by_depth(rows, metric, depths, activation=activation, initialisation=name)
          axis.errorbar(depths, means, yerr=halves, fmt=style, marker="o", markersize=3, capsize=2,
                        color=f"C{position}", label=name if index == 0 and style == "-" else None)
      axis.set_xscale("log")
      axis.set_xticks(depths, [str(d) for d in depths])
      axis.minorticks_off()
      axis.set_xlabel("depth (hidden layers)")
      axis.set_ylabel(title)
      axis.set_ylim(0, 100)  # percentages; a 2-seed interval would otherwise set the scale
      axis.set_title(activation)
      axis.grid(alpha=0.3)
    figure.legend(fontsize=7, loc="outside lower center", ncol=4)
    plots.save_figure(figure, folder, filename)


STUDY = Study(
    name="init",
    question="Initialisation: He, Xavier, LeCun, N(0, 0.02), positive bias, RAI per activation and depth.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("model", "depth", "init", "bias_init"),
)
