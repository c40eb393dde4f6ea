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
import time
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import tyro

import activations
from research import config as config_lib
from research import experiment, models, plots, results, summary
from research.config import Config
from research.statistics import mean_confidence_interval, paired_comparison
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "init"
CHANCE = 0.1  # MNIST-1D has 10 balanced classes
SCALED_DRAWS = ("he_normal", "xavier_normal", "lecun_normal")  # one truncated-normal draw, scaled per layer

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]
Names = Annotated[tuple[str, ...], config_lib.comma_separated(str, "NAME,NAME,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Accuracy and inactive units per initialisation, activation and depth."""

  activations: config_lib.Specs = (
      "relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)",
  )  # comma-separated registry specs
  inits: Names = ("he_normal", "xavier_normal", "lecun_normal", "normal_002", "rai")  # kernel initialisers with zero biases (rai draws its own)
  bias_inits: config_lib.Floats = (0.01, 0.1)  # positive constant biases, each with bias_kernel_init's kernels
  bias_kernel_init: models.Initializer = "he_normal"  # kernels of the positive-bias runs (same draws as this init at zero bias)
  depths: Ints = (2, 5, 10, 20)  # hidden layers; each (depth, initialisation) is one engine part
  dataset: str = "mnist1d"  # research.data spec
  width: int = 64  # hidden units per layer
  seeds: int = 4  # runs per configuration: seeds 0..N-1 (4 costs what 3 does on 2 devices)
  learning_rates: config_lib.Floats = (3e-3,)  # reaches the MLP's plateau in 1000 steps (1e-3 does not); 1e-2 kills more units (claim 1)
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer
  steps: int = 1000  # optimizer steps per run
  batch_size: int = 100  # examples per step
  eval_every: int = 500  # steps between evaluations
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


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
      experiment.Part({"depth": depth, "initialisation": name, "kernel_init": init, "bias_init": bias}, Config(
          dataset=settings.dataset, model="mlp", width=settings.width, depth=depth,
          activations=settings.activations, seeds=settings.seeds, learning_rates=settings.learning_rates,
          optimizer=settings.optimizer, steps=settings.steps, batch_size=settings.batch_size,
          eval_every=settings.eval_every, init=init, bias_init=bias, batching=settings.batching,
      ))
      for depth in sorted(settings.depths) for name, init, bias in initialisations(settings)
  ]


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  runs: list[dict[str, Any]]  # runs.csv rows
  history: list[dict[str, Any]]  # history.csv rows (step 0 is the initialisation)
  layers: list[dict[str, Any]]  # layers.csv rows
  best: list[dict[str, Any]]  # best.csv rows: the best init per activation and depth
  spreads: list[dict[str, Any]]  # spread.csv rows: accuracy spread across inits
  summary: str  # summary.md


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


def _points(mean: float, half: float) -> str:
  """A difference of fractions in percentage points."""
  return f"{100 * mean:+.1f} ± {100 * half:.1f} points" if math.isfinite(half) else f"{100 * mean:+.1f} points"


def _estimate(column: str, values: dict[int, float] | tuple[float, float]) -> str:
  """``values`` by seed, or an estimate ``(mean, half width)``, as ``66.4% ± 1.2``."""
  estimate = mean_confidence_interval(list(values.values())) if isinstance(values, dict) else values
  return "-" if isinstance(values, dict) and not values else summary.format_estimate(column, *estimate)


def _find(names: Sequence[str], registry_name: str) -> str | None:
  return next((a for a in names if activations.parse_spec(a)[0] == registry_name), None)


def _best_lines(best: Sequence[dict[str, Any]], depths: Sequence[int]) -> list[str]:
  lines = []
  for depth in depths:
    cells = [f"{row['activation']}: {row['best']} {_estimate('test_accuracy', (row['mean'], row['half_width']))}"
             f" (tied: {', '.join(n for n in row['tied'] if n != row['best']) or 'none'})"
             for row in best if row["depth"] == depth]
    lines.append(f"- Best init at depth {depth} (highest mean test accuracy; tied: the 95% interval of the"
                 " paired difference with the best contains 0): " + "; ".join(cells) + ".")
  same = [str(d) for d in depths if len({row["best"] for row in best if row["depth"] == d}) == 1]
  lines.append(f"- The best init (highest mean) is the same for every activation at depth(s) {', '.join(same)}"
               if same else "- The best init (highest mean) differs between activations at every depth")
  lines[-1] += "; see below whether the differences are more than noise."
  unmatched = [d for d in depths if not common_best(best, d)]
  verdict = (f"held at depth(s) {', '.join(map(str, unmatched))}, where no init is tied-best for every activation"
             if unmatched else "not supported at any depth")
  shared = "".join(f" At depth {d}, tied-best for every activation: {', '.join(common_best(best, d))}."
                   for d in depths if common_best(best, d))
  lines.append(f"- \"The init must match the activation\", between these activations: {verdict}.{shared}")
  return lines


def _spread_lines(spread_rows: Sequence[dict[str, Any]], baseline: str) -> list[str]:
  lines = []
  others = [a for a in dict.fromkeys(r["activation"] for r in spread_rows) if a != baseline]
  asked = [_find(others, "necro_relu")] if _find(others, "necro_relu") else others  # the question is NecroReLU's
  for (group, activation) in dict.fromkeys((r["inits"], r["activation"]) for r in spread_rows):
    if activation not in asked:
      continue
    base = {r["depth"]: r for r in spread_rows if r["activation"] == baseline and r["inits"] == group}
    mine = [r for r in spread_rows if r["activation"] == activation and r["inits"] == group]
    verdicts = {r["depth"]: direction(r["difference"], r["difference_half_width"], "smaller", "larger") for r in mine}
    cells = [f"depth {r['depth']}: {100 * r['spread']:.1f} vs {100 * base[r['depth']]['spread']:.1f} points,"
             f" difference {_points(r['difference'], r['difference_half_width'])} ({verdicts[r['depth']]}"
             + (f"; {r['diverged'] + base[r['depth']]['diverged']} diverged run(s) left out" if
                r["diverged"] + base[r["depth"]]["diverged"] else "") + ")" for r in mine]
    smaller = [str(d) for d, verdict in verdicts.items() if verdict == "smaller"]
    lines.append(f"- Does {activation} make the init matter less than {baseline} ({group})? Standard deviation"
                 " of test accuracy across inits (at each seed, mean over seeds), paired by seed: " + "; ".join(cells)
                 + (f". Smaller at depth(s) {', '.join(smaller)}." if smaller
                    else ". Never smaller with 95% confidence: not supported."))
  return lines


def _first_gradient(layers: Sequence[dict[str, Any]], **where: Any) -> list[float]:
  """log10 of the first hidden layer's gradient norm at step 0 per run (-inf when it is 0)."""
  return [math.log10(r["gradient_norm"]) if r["gradient_norm"] > 0 else -math.inf for r in layers
          if r["step"] == 0 and r["layer"] == 1 and r.get("gradient_norm") is not None
          and all(r.get(k) == v for k, v in where.items())]


def _small_init_line(runs, layers, names, depths: Sequence[int], width: int, baseline: str) -> list[str]:
  if "normal_002" not in names:
    return []
  deepest = max(depths)
  cells = [f"{a} {_estimate('test_accuracy', by_seed(runs, 'test_accuracy', activation=a, depth=deepest, initialisation='normal_002'))}"
           for a in dict.fromkeys(r["activation"] for r in runs)]
  trend = [f"{d}: {_estimate('test_accuracy', by_seed(runs, 'test_accuracy', activation=baseline, depth=d, initialisation='normal_002'))}"
           for d in depths]
  gradients = _first_gradient(layers, depth=deepest, initialisation="normal_002")
  finite = [g for g in gradients if math.isfinite(g)]
  he = [g for g in _first_gradient(layers, depth=deepest, initialisation="he_normal") if math.isfinite(g)]
  gain = 0.02 * math.sqrt(width / 2)  # a ReLU layer's factor on the signal's scale: sqrt(fan_in / 2) x std
  upper = [sum(mean_confidence_interval(list(v.values()))) for v in
           (by_seed(runs, "test_accuracy", activation=a, depth=deepest, initialisation="normal_002")
            for a in dict.fromkeys(r["activation"] for r in runs)) if len(v) > 1]
  verdict = ("at chance for every activation (each upper 95% bound below chance + 5 points)"
             if upper and max(upper) < CHANCE + 0.05 else "above chance for some activation")
  return [f"- N(0, 0.02) at depth {deepest}: {verdict}; test accuracy (chance {CHANCE:.0%}) " + "; ".join(cells)
          + f"; {baseline}'s by depth, {', '.join(trend)}. Each layer multiplies the signal's scale by about"
          f" {gain:.2f}, {gain ** deepest:.0e} over {deepest} layers. The first layer's gradient norm at init is"
          + (f" 10^{np.mean(finite):.1f} (mean log10 over {len(finite)} runs)" if finite else " not finite")
          + (f", exactly 0 in {len(gradients) - len(finite)} of {len(gradients)} runs" if len(finite) < len(gradients) else "")
          + (f"; he_normal's is 10^{np.mean(he):.1f}" if he else "") + "."]


def _bias_lines(runs, history, settings: Settings, baseline: str) -> list[str]:
  zero = label(settings.bias_kernel_init)
  if not settings.bias_inits or zero not in settings.inits:
    return []
  lines, verdicts = [], {"at init": {}, "after training": {}}
  for depth in sorted(settings.depths):
    texts = []
    for when, rows in (("at init", [r for r in history if r["step"] == 0]), ("after training", runs)):
      where = {"activation": baseline, "depth": depth}
      reference = by_seed(rows, "inactive_fraction", initialisation=zero, **where)
      cells = [f"{zero} {_estimate('inactive_fraction', reference)}"]
      for bias in settings.bias_inits:
        biased = by_seed(rows, "inactive_fraction", initialisation=label(zero, bias), **where)
        gap = paired_comparison(biased, reference)
        verdicts[when].setdefault(direction(gap.mean_difference, gap.half_width), []).append(f"{bias:g} at depth {depth}")
        cells.append(f"bias {bias:g} {_estimate('inactive_fraction', biased)} ({_points(gap.mean_difference, gap.half_width)},"
                     f" {direction(gap.mean_difference, gap.half_width)})")
      texts.append(f"{when} " + ", ".join(cells))
    lines.append(f"- Positive bias, {baseline} at depth {depth}, inactive units: " + "; ".join(texts) + ".")
  summaries = []
  for when, found in verdicts.items():
    changes = [f"{word} with bias " + ", ".join(found[word]) for word in ("lower", "higher") if word in found]
    if changes:
      summaries.append(f"{when.capitalize()}: " + "; ".join(changes))
  lines.insert(0, f"- Does a positive bias lower {baseline}'s inactive units (paired with zero bias, same kernels)? "
               + ("; ".join(summaries) + "; no detectable change in the other cases (below)." if summaries
                  else "No detectable change at any depth, at init or after training (below)."))
  return lines


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


def _diverged_line(runs: Sequence[dict[str, Any]]) -> str:
  counts: dict[tuple, list[int]] = {}
  for row in runs:
    counts.setdefault((row["depth"], row["initialisation"], row["activation"]), []).append(bool(row.get("diverged")))
  cells = [f"{activation} with {name} at depth {depth}: {sum(flags)} of {len(flags)}"
           for (depth, name, activation), flags in counts.items() if any(flags)]
  return (f"- Diverged runs (training loss non-finite or above {Config().divergence_factor:g} times its initial"
          " value; left out of every mean): "
          + ("; ".join(cells) if cells else "none") + ".")


def _equal_at_init_lines(history, names: Sequence[str], relu: str | None, necro: str | None) -> list[str]:
  lines = []
  if relu and necro:
    equal, pairs = step_zero_pairs(history, "relu", "necro_relu")
    lines.append(f"- relu and necro_relu at step 0 (same init, seed and forward pass): inactive fraction equal in"
                 f" {equal} of {pairs} (depth, init, seed) pairs; only their backward passes differ.")
  scaled = [name for name in SCALED_DRAWS if name in names]
  if len(scaled) > 1:
    counts = [step_zero_pairs(history, scaled[0], other, "initialisation") for other in scaled[1:]]
    equal, pairs = sum(c[0] for c in counts), sum(c[1] for c in counts)
    lines.append(f"- {', '.join(scaled)} at zero bias scale one truncated-normal draw per layer differently, and a"
                 " zero-bias (leaky) ReLU network is positively homogeneous: their inactive fractions at init are"
                 f" equal in {equal} of {pairs} (depth, activation, seed) pairs"
                 + ("; any difference between them comes from training." if equal == pairs else "."))
  return lines


def _inactive_line(runs, history, names, activation: str, depth: int) -> str:
  at_init = [r for r in history if r["step"] == 0]
  where = {"activation": activation, "depth": depth}
  cells = [f"{name} {_estimate('inactive_fraction', by_seed(at_init, 'inactive_fraction', initialisation=name, **where))}"
           f" -> {_estimate('inactive_fraction', by_seed(runs, 'inactive_fraction', initialisation=name, **where))}"
           for name in names]
  return f"- {activation}, depth {depth}, inactive units at init -> after training: " + "; ".join(cells) + "."


def _summary(settings: Settings, command: str, trained: experiment.Trained, best, spread_rows, seconds: float) -> str:
  names = [name for name, _, _ in initialisations(settings)]
  activation_names = list(dict.fromkeys(r["activation"] for r in trained.runs))
  relu, necro = _find(activation_names, "relu"), _find(activation_names, "necro_relu")
  baseline = relu or activation_names[0]
  depths, deepest = sorted(settings.depths), max(settings.depths)
  lines = [f"# {NAME}: does the initialisation have to match the activation, and does NecroReLU make it matter less?",
           "", "## Answer", ""]
  lines += _best_lines(best, depths)
  lines += _spread_lines(spread_rows, baseline)
  lines += _small_init_line(trained.runs, trained.layers, names, depths, settings.width, baseline)
  lines += _bias_lines(trained.runs, trained.history, settings, baseline)
  lines.append(_diverged_line(trained.runs))
  lines += [_inactive_line(trained.runs, trained.history, names, activation, deepest)
            for activation in dict.fromkeys(a for a in (relu, necro) if a)]
  lines += _equal_at_init_lines(trained.history, names, relu, necro)
  lines += ["", "± is a 95% Student t interval over seeds; paired differences are by seed. Inactive: z <= 0 on"
            " every training example (mean over hidden layers); dead: backward derivative 0 on every training"
            " example (for relu the same units; leaky_relu and necro_relu never have dead units).", "",
            "## Test accuracy, inactive and dead units after training", "",
            summary.grouped_table(trained.runs, ["depth", "initialisation", "activation"],
                                  ["test_accuracy", "inactive_fraction", "dead_fraction"]), "",
            "## Inactive units at initialisation (step 0)", "",
            summary.grouped_table([r for r in trained.history if r["step"] == 0], ["depth", "initialisation", "activation"],
                                  ["inactive_fraction"]), "",
            "## Spread of test accuracy across inits", "",
            "Range: best minus worst per-init mean. Std: standard deviation of test accuracy across the inits at"
            f" each seed, mean over seeds ± 95% t; difference: minus {baseline}'s, paired by seed. Seeds with a"
            " diverged run are left out.", "",
            "| inits | depth | activation | seeds | range of means | std across inits | difference |",
            "|---|---:|---|---:|---:|---:|---:|"]
  for row in spread_rows:
    difference = "-" if row["activation"] == baseline else _points(row["difference"], row["difference_half_width"])
    lines.append(f"| {row['inits']} | {row['depth']} | {row['activation']} | {row['seeds']} |"
                 f" {100 * row['range_of_means']:.1f} points |"
                 f" {_points(row['spread'], row['spread_half_width']).lstrip('+')} | {difference} |")
  lines += ["", "## Not tested", "",
            "- LeakyReLU's own He gain, sqrt(2 / (1 + a^2)), differs from ReLU's by 0.005% at a = 0.01: the"
            " engine's he_normal is ReLU's, and at this slope the two cannot be told apart; the claim's \"LeakyReLU"
            " wants a different gain\" matters only at large slopes.",
            "- Activations with another forward pass (tanh, sigmoid, SELU), where the classic pairings come from"
            " (Xavier for tanh, LeCun for SELU): the three here share (nearly) ReLU's forward pass, so theory expects"
            " one best init for all; the gradient-flow study pairs the others with their usual inits.",
            f"- xavier_normal and lecun_normal differ only in the first and output layers here (fan_avg = fan_in"
            f" for the {settings.width} x {settings.width} hidden layers).",
            f"- One learning rate ({', '.join(map(str, settings.learning_rates))}, {settings.optimizer}) and"
            f" {settings.steps} steps: a high rate kills units by itself (claim 1), which would mix with the init's"
            " effect.", "",
            f"Setup: MLP of width {settings.width} on `{settings.dataset}`, batch {settings.batch_size}; positive"
            f" biases use {settings.bias_kernel_init} kernels (the same draws as its zero-bias runs at each seed).", "",
            "Plots: `init_accuracy.png` (accuracy vs depth per init, a panel per activation), `init_inactive.png`"
            " (inactive units at init and after training). Data: `runs.csv`, `history.csv`, `layers.csv`,"
            " `best.csv`, `spread.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids)
  return "\n".join(lines)


def _by_depth(rows, metric: str, depths, **where) -> tuple[np.ndarray, np.ndarray]:
  estimates = [mean_confidence_interval(list(by_seed(rows, metric, depth=d, **where).values()) or [math.nan])
               for d in depths]
  return 100 * np.array([e[0] for e in estimates]), 100 * np.nan_to_num(np.array([e[1] for e in estimates]))


def _plots(settings: Settings, trained: experiment.Trained, folder: pathlib.Path) -> None:
  names = [name for name, _, _ in initialisations(settings)]
  activation_names = list(dict.fromkeys(r["activation"] for r in trained.runs))
  depths = sorted(settings.depths)
  at_init = [r for r in trained.history if r["step"] == 0]
  for filename, title, series in (
      ("init_accuracy.png", "test accuracy (%)", ((trained.runs, "test_accuracy", "-"),)),
      ("init_inactive.png", "inactive units (%): at init dashed, after training solid",
       ((at_init, "inactive_fraction", "--"), (trained.runs, "inactive_fraction", "-")))):
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


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False,
    command: str = "",
) -> Outcome:
  """Trains every depth x initialisation x activation x seed and reports.

  Writes the engine's files, ``best.csv``, ``spread.csv``, ``summary.md``,
  ``init_accuracy.png`` and ``init_inactive.png`` into ``out`` (default
  ``results/init-<timestamp>``). Rerunning with the same folder resumes;
  ``tests/test_study_init.py`` runs it at tiny settings.
  """
  validate(settings)
  started = time.perf_counter()
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  trained = experiment.train_pending(prepared, quiet=quiet)
  names = [name for name, _, _ in initialisations(settings)]
  activation_names = list(dict.fromkeys(r["activation"] for r in trained.runs))
  best = best_inits(trained.runs, names)
  baseline = _find(activation_names, "relu") or activation_names[0]
  spread_rows = spreads(trained.runs, names, baseline)
  if "normal_002" in names and len(names) > 2:  # its signal vanishes whatever the backward pass (see the summary)
    spread_rows += spreads(trained.runs, [n for n in names if n != "normal_002"], baseline, "inits but normal_002")
  report = _summary(settings, command, trained, best, spread_rows, time.perf_counter() - started)
  experiment.write_outputs(trained.out, {
      "best.csv": results.csv_text([{**row, "tied": " ".join(row["tied"])} for row in best]),
      "spread.csv": results.csv_text(spread_rows),
      "summary.md": report,
  }, lambda folder: _plots(settings, trained, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, trained.runs, trained.history, trained.layers, best, spread_rows, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Initialisation: He, Xavier, LeCun, N(0, 0.02), positive bias, RAI per activation and depth.

  Args:
    settings: the study.
    out: output folder; empty means results/init-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
