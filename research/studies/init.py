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
from typing import Annotated

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


def per_seed(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
  """``metric`` of the runs that did not diverge: a row per depth, activation and seed, a column per init.

  Examples:
    >>> rows = pd.DataFrame({"depth": 2, "activation": "relu", "seed": [0, 0, 1], "diverged": [False, False, True],
    ...                      "initialisation": ["he", "small", "he"], "test_accuracy": [0.6, 0.2, 0.5]})
    >>> per_seed(rows, "test_accuracy").to_dict("index")
    {(2, 'relu', 0): {'he': 0.6, 'small': 0.2}}
  """
  kept = rows[~tables.diverged(rows) & rows[metric].notna()]
  return kept.pivot_table(index=["depth", "activation", "seed"], columns="initialisation", values=metric,
                          aggfunc="last").rename_axis(columns=None)


def seeds(wide: pd.DataFrame, depth: int, activation: str, names: Sequence[str]) -> pd.DataFrame:
  """One (depth, activation) of :func:`per_seed`: a row per seed, a column per init of ``names``."""
  if (depth, activation) in wide.index.droplevel("seed"):
    return wide.loc[(depth, activation)].reindex(columns=list(names))
  return pd.DataFrame(columns=list(names), dtype=float)


def best_inits(runs: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
  """Per activation and depth: the init of highest mean test accuracy and those tied with it.

  An init is tied with the best when the 95% interval of the paired (by seed)
  accuracy difference contains 0, or cannot be computed (fewer than 2 seeds).

  Examples:
    >>> accuracy = {"he": [0.60, 0.61, 0.62], "lecun": [0.61, 0.58, 0.60], "small": [0.10, 0.11, 0.10]}
    >>> runs = pd.DataFrame([{"activation": "relu", "depth": 2, "initialisation": i, "seed": s, "test_accuracy": a,
    ...                       "diverged": False} for i, values in accuracy.items() for s, a in enumerate(values)])
    >>> best_inits(runs, ["he", "lecun", "small"])[["best", "tied"]].iloc[0].tolist()
    ['he', ('he', 'lecun')]
  """
  wide, found = per_seed(runs, "test_accuracy"), []
  for activation in runs["activation"].unique():
    for depth in sorted(runs["depth"].unique()):
      accuracy = {name: column.dropna() for name, column in seeds(wide, depth, activation, names).items()
                  if column.notna().any()}
      if not accuracy:
        continue
      means = {name: float(np.mean(column.to_numpy())) for name, column in accuracy.items()}
      best = max(means, key=means.get)
      mean, half = mean_confidence_interval(list(accuracy[best]))
      gaps = {name: paired_comparison(accuracy[best].to_dict(), column.to_dict())
              for name, column in accuracy.items()}
      tied = tuple(name for name, gap in gaps.items() if name == best or not math.isfinite(gap.half_width)
                   or gap.mean_difference - gap.half_width <= 0)
      found.append({"activation": activation, "depth": depth, "best": best, "mean": mean, "half_width": half,
                    "tied": tied})
  return pd.DataFrame(found, columns=["activation", "depth", "best", "mean", "half_width", "tied"])


def common_best(best: pd.DataFrame, depth: int) -> tuple[str, ...]:
  """The inits tied with the best for every activation at ``depth`` (in the first's order).

  Examples:
    >>> common_best(pd.DataFrame({"depth": [2, 2], "tied": [("he", "lecun"), ("lecun",)]}), 2)
    ('lecun',)
  """
  sets = best.loc[best["depth"] == depth, "tied"].tolist()
  return tuple(name for name in sets[0] if all(name in s for s in sets)) if sets else ()


def spread_by_seed(accuracy: pd.DataFrame) -> pd.Series:
  """Standard deviation of test accuracy across inits (columns) per seed (rows), seeds where every init is healthy.

  Examples:
    >>> spread_by_seed(pd.DataFrame({"he": [0.6, 0.5], "small": [0.2, None]})).round(4).to_dict()
    {0: 0.2828}
  """
  complete = accuracy.dropna().sort_index()
  return pd.Series([float(np.std(row, ddof=1)) if accuracy.shape[1] > 1 else 0.0 for row in complete.to_numpy()],
                   index=complete.index, dtype=float)


def spreads(runs: pd.DataFrame, names: Sequence[str], baseline: str, group: str = "all inits") -> pd.DataFrame:
  """Per depth and activation: the spread of accuracy across inits, and its difference from ``baseline``'s.

  ``range_of_means`` is the best minus the worst per-init mean; ``spread`` the
  mean over seeds of :func:`spread_by_seed`; ``difference`` its paired (by
  seed) difference with the baseline activation's; ``diverged`` counts the
  runs left out (a seed with a diverged init drops out of the spread).
  """
  wide, found = per_seed(runs, "test_accuracy"), []
  chosen = runs[runs["initialisation"].isin(names)]
  diverged = chosen[tables.diverged(chosen)].groupby(["depth", "activation"]).size()
  for depth in sorted(runs["depth"].unique()):
    base = spread_by_seed(seeds(wide, depth, baseline, names))
    for activation in runs["activation"].unique():
      accuracy = seeds(wide, depth, activation, names)
      per_seed_spread = spread_by_seed(accuracy)
      means = [float(np.mean(column.dropna().to_numpy())) for _, column in accuracy.items()
               if column.notna().any()]
      spread, half = mean_confidence_interval(list(per_seed_spread))
      gap = paired_comparison(per_seed_spread.to_dict(), base.to_dict())
      found.append({"inits": group, "depth": depth, "activation": activation, "seeds": len(per_seed_spread),
                    "diverged": int(diverged.get((depth, activation), 0)),
                    "range_of_means": max(means) - min(means) if means else math.nan,
                    "spread": spread, "spread_half_width": half,
                    "difference": gap.mean_difference, "difference_half_width": gap.half_width})
  return pd.DataFrame(found)


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


def step_zero_pairs(history: pd.DataFrame, first: str, second: str, column: str = "name") -> tuple[int, int]:
  """``(equal, pairs)``: runs whose step-0 inactive fraction is the same for two values of ``column``.

  Runs are paired on depth, seed, learning rate and the other of ``name`` and
  ``initialisation``: two activations at the same init, or two inits for the
  same activation.

  Examples:
    >>> rows = pd.DataFrame([{"name": n, "depth": 2, "initialisation": "he_normal", "seed": 0,
    ...                       "learning_rate": 0.1, "step": 0, "inactive_fraction": 0.05}
    ...                      for n in ("relu", "necro_relu")])
    >>> step_zero_pairs(rows, "relu", "necro_relu")
    (1, 1)
  """
  key = ["depth", "initialisation" if column == "name" else "name", "seed", "learning_rate"]
  at_zero = history[history["step"] == 0]
  return tables.equal_pairs(*(at_zero[at_zero[column] == value].drop_duplicates(key, keep="last")
                              for value in (first, second)), key, ["inactive_fraction"])


def estimates(frame: pd.DataFrame, value: str, half_width: str, kind: str, n: str = "") -> list[Estimate]:
  """Each row's ``value`` with the interval ``value`` +- ``half_width`` (columns) as an :class:`Estimate`."""
  return [Estimate(v, v - h, v + h, kind, int(row[n]) if n else 0)
          for (_, row), v, h in zip(frame.iterrows(), frame[value], frame[half_width])]


def _find(names: Sequence[str], registry_name: str) -> str | None:
  return next((a for a in names if activations.parse_spec(a)[0] == registry_name), None)


MATCH = "Does the init have to match the activation?"
SPREAD = "Does NecroReLU make the init matter less?"
DETAILS = "Small inits, positive biases, inactive units"


def _best_answers(best: pd.DataFrame, depths: Sequence[int]) -> list[Answer]:
  answers = []
  for depth in depths:
    rows = best[best["depth"] == depth]
    answers.append(Answer(
        f"Best init at depth {depth} (highest mean test accuracy; tied: the 95% interval of the paired"
        " difference with the best contains 0): " + "; ".join(
            f"{row.activation}: {row.best} {{}} (tied: "
            f"{', '.join(n for n in row.tied if n != row.best) or 'none'})" for row in rows.itertuples()) + ".",
        tuple(estimates(rows, "mean", "half_width", "percent")), topic=MATCH))
  same = [str(d) for d in depths if best.loc[best["depth"] == d, "best"].nunique() == 1]
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


def _spread_answer(found: pd.DataFrame, baseline: str, activation: str) -> Answer:
  base = found.loc[found["activation"] == baseline, ["depth", "spread", "diverged"]]
  mine = found[found["activation"] == activation].merge(base, on="depth", suffixes=("", "_base"))
  mine["verdict"] = [direction(mean, half, "smaller", "larger")
                     for mean, half in zip(mine["difference"], mine["difference_half_width"])]
  cells = [f"depth {r.depth}: {100 * r.spread:.1f} vs {100 * r.spread_base:.1f} points, difference {{}} ({r.verdict}"
           + (f"; {r.diverged + r.diverged_base} diverged run(s) left out" if r.diverged + r.diverged_base else "")
           + ")" for r in mine.itertuples()]
  smaller = [str(r.depth) for r in mine.itertuples() if r.verdict == "smaller"]
  return Answer(
      f"Does {activation} make the init matter less than {baseline} ({mine['inits'].iloc[0]})? Standard deviation"
      " of test accuracy across inits (at each seed, mean over seeds), paired by seed: " + "; ".join(cells)
      + (f". Smaller at depth(s) {', '.join(smaller)}." if smaller
         else ". Never smaller with 95% confidence: not supported."),
      tuple(estimates(mine, "difference", "difference_half_width", "points", "seeds")),
      topic=SPREAD, headline=True, verdict="held" if smaller else "did not hold")


def _spread_answers(found: pd.DataFrame, baseline: str) -> list[Answer]:
  others = [a for a in found["activation"].unique() if a != baseline]
  asked = [_find(others, "necro_relu")] if _find(others, "necro_relu") else others  # the question is NecroReLU's
  return [_spread_answer(group, baseline, activation) for _, group in found.groupby("inits", sort=False)
          for activation in asked]


def _first_gradient(layers: pd.DataFrame, depth: int, initialisation: str) -> list[float]:
  """log10 of the first hidden layer's gradient norm at step 0 per run (-inf when it is 0)."""
  chosen = layers[(layers["step"] == 0) & (layers["layer"] == 1) & layers["gradient_norm"].notna()
                  & (layers["depth"] == depth) & (layers["initialisation"] == initialisation)]
  return [math.log10(g) if g > 0 else -math.inf for g in chosen["gradient_norm"]]


def _small_init_answers(accuracy: pd.DataFrame, layers: pd.DataFrame, names: Sequence[str],
                        activation_names: Sequence[str], depths: Sequence[int], width: int,
                        baseline: str) -> list[Answer]:
  if "normal_002" not in names:
    return []
  deepest = max(depths)
  at_deepest = [seeds(accuracy, deepest, a, names)["normal_002"].dropna() for a in activation_names]
  trend = [seeds(accuracy, d, baseline, names)["normal_002"].dropna() for d in depths]
  gradients = _first_gradient(layers, deepest, "normal_002")
  finite = [g for g in gradients if math.isfinite(g)]
  he = [g for g in _first_gradient(layers, deepest, "he_normal") if math.isfinite(g)]
  gain = 0.02 * math.sqrt(width / 2)  # a ReLU layer's factor on the signal's scale: sqrt(fan_in / 2) x std
  upper = [sum(mean_confidence_interval(list(v))) for v in at_deepest if len(v) > 1]
  verdict = ("at chance for every activation (each upper 95% bound below chance + 5 points)"
             if upper and max(upper) < CHANCE + 0.05 else "above chance for some activation")
  return [Answer(
      f"N(0, 0.02) at depth {deepest}: {verdict}; test accuracy (chance {CHANCE:.0%}) "
      + "; ".join(f"{a} {{}}" for a in activation_names)
      + f"; {baseline}'s by depth, " + ", ".join(f"{d}: {{}}" for d in depths) + ". Each layer multiplies the"
      f" signal's scale by about {gain:.2f}, {gain ** deepest:.0e} over {deepest} layers. The first layer's"
      " gradient norm at init is"
      + (f" 10^{np.mean(finite):.1f} (mean log10 over {len(finite)} runs)" if finite else " not finite")
      + (f", exactly 0 in {len(gradients) - len(finite)} of {len(gradients)} runs"
         if len(finite) < len(gradients) else "")
      + (f"; he_normal's is 10^{np.mean(he):.1f}" if he else "") + ".",
      tuple(Estimate.of_mean(v, "test_accuracy") for v in (*at_deepest, *trend)), topic=DETAILS)]


def _bias_depth(inactive: dict[str, pd.DataFrame], settings: Settings, baseline: str, depth: int,
                verdicts: dict[str, dict[str, list[str]]]) -> Answer:
  zero = label(settings.bias_kernel_init)
  names = [label(settings.bias_kernel_init, bias) for bias in settings.bias_inits]
  texts, found = [], []
  for when, wide in inactive.items():
    chosen = seeds(wide, depth, baseline, [zero, *names])
    reference = chosen[zero].dropna()
    cells, found = [f"{zero} {{}}"], found + [Estimate.of_mean(reference, "inactive_fraction")]
    for bias, name in zip(settings.bias_inits, names):
      gap = paired_comparison(chosen[name].dropna().to_dict(), reference.to_dict())
      change = direction(gap.mean_difference, gap.half_width)
      verdicts[when].setdefault(change, []).append(f"{bias:g} at depth {depth}")
      cells.append(f"bias {bias:g} {{}} ({{}}, {change})")
      found += [Estimate.of_mean(chosen[name].dropna(), "inactive_fraction"),
                Estimate.of_difference(gap, "inactive_fraction")]
    texts.append(f"{when} " + ", ".join(cells))
  return Answer(f"Positive bias, {baseline} at depth {depth}, inactive units: " + "; ".join(texts) + ".",
                tuple(found), topic=DETAILS)


def _bias_answers(inactive: dict[str, pd.DataFrame], settings: Settings, baseline: str) -> list[Answer]:
  if not settings.bias_inits or label(settings.bias_kernel_init) not in settings.inits:
    return []
  verdicts: dict[str, dict[str, list[str]]] = {when: {} for when in inactive}
  answers = [_bias_depth(inactive, settings, baseline, depth, verdicts) for depth in sorted(settings.depths)]
  summaries = []
  for when, found in verdicts.items():
    changes = [f"{word} with bias " + ", ".join(found[word]) for word in ("lower", "higher") if word in found]
    if changes:
      summaries.append(f"{when.capitalize()}: " + "; ".join(changes))
  return [Answer(f"Does a positive bias lower {baseline}'s inactive units (paired with zero bias, same kernels)? "
                 + ("; ".join(summaries) + "; no detectable change in the other cases (below)." if summaries
                    else "No detectable change at any depth, at init or after training (below)."),
                 topic=DETAILS), *answers]


def _diverged_answer(runs: pd.DataFrame, factor: float) -> Answer:
  counts = runs.groupby(["depth", "initialisation", "activation"], sort=False)["diverged"].agg(["sum", "size"])
  cells = [f"{activation} with {name} at depth {depth}: {row.sum} of {row.size}"
           for (depth, name, activation), row in zip(counts.index, counts.itertuples()) if row.sum]
  return Answer(f"Diverged runs (training loss non-finite or above {factor:g} times its initial value; left out"
                " of every mean): " + ("; ".join(cells) if cells else "none") + ".", topic=DETAILS)


def _equal_at_init_answers(history: pd.DataFrame, names: Sequence[str], relu: str | None,
                           necro: str | None) -> list[Answer]:
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


def _inactive_answer(inactive: dict[str, pd.DataFrame], names: Sequence[str], activation: str,
                     depth: int) -> Answer:
  at_init, after = (seeds(wide, depth, activation, names) for wide in inactive.values())
  return Answer(f"{activation}, depth {depth}, inactive units at init -> after training: "
                + "; ".join(f"{name} {{}} -> {{}}" for name in names) + ".",
                tuple(Estimate.of_mean(table[name].dropna(), "inactive_fraction")
                      for name in names for table in (at_init, after)), topic=DETAILS)


def _spread_table(found: pd.DataFrame, baseline: str) -> pd.DataFrame:
  differences = estimates(found, "difference", "difference_half_width", "points", "seeds")
  return found[["inits", "depth", "activation", "seeds"]].assign(**{
      "range of means": [f"{100 * value:.1f} points" for value in found["range_of_means"]],
      "std across inits": estimates(found, "spread", "spread_half_width", "percent", "seeds"),
      "difference": ["-" if a == baseline else d for a, d in zip(found["activation"], differences)]})


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
  runs, at_init = found.runs, found.history[found.history["step"] == 0]
  names = [name for name, _, _ in initialisations(settings)]
  activation_names, depths = list(runs["activation"].unique()), sorted(settings.depths)
  relu, necro = _find(activation_names, "relu"), _find(activation_names, "necro_relu")
  baseline = relu or activation_names[0]
  best, spread = best_inits(runs, names), spreads(runs, names, baseline)
  if "normal_002" in names and len(names) > 2:  # its signal vanishes whatever the backward pass
    others = spreads(runs, [n for n in names if n != "normal_002"], baseline, "inits but normal_002")
    spread = pd.concat([spread, others], ignore_index=True)
  inactive = {"at init": per_seed(at_init, "inactive_fraction"),
              "after training": per_seed(runs, "inactive_fraction")}
  return Findings(
      question="does the initialisation have to match the activation, and does NecroReLU make it matter less?",
      answers=(*_best_answers(best, depths), *_spread_answers(spread, baseline),
               *_small_init_answers(per_seed(runs, "test_accuracy"), found.layers, names, activation_names, depths,
                                    settings.base.width, baseline),
               *_bias_answers(inactive, settings, baseline),
               _diverged_answer(runs, settings.base.divergence_factor),
               *(_inactive_answer(inactive, names, a, max(depths))
                 for a in dict.fromkeys(x for x in (relu, necro) if x)),
               *_equal_at_init_answers(found.history, names, relu, necro)),
      tables=(
          Table("Test accuracy, inactive and dead units after training", tables.grouped_estimates(
              runs, ["depth", "initialisation", "activation"],
              ["test_accuracy", "inactive_fraction", "dead_fraction"])),
          Table("Inactive units at initialisation (step 0)", tables.grouped_estimates(
              at_init, ["depth", "initialisation", "activation"], ["inactive_fraction"])),
          Table("Spread of test accuracy across inits", _spread_table(spread, baseline)),
      ),
      notes=(*NOTES, f"Setup: MLP of width {settings.base.width} on `{settings.base.dataset}`, batch"
             f" {settings.base.batch_size}; positive biases use {settings.bias_kernel_init} kernels (the same"
             " draws as its zero-bias runs at each seed)."),
      plots=("init_accuracy.png", "init_inactive.png"),
      data={"best": best.assign(tied=best["tied"].map(" ".join)), "spread": spread},
  )


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  names = [name for name, _, _ in initialisations(settings)]
  activation_names, depths = list(found.runs["activation"].unique()), sorted(settings.depths)
  accuracy = per_seed(found.runs, "test_accuracy")
  inactive = (per_seed(found.history[found.history["step"] == 0], "inactive_fraction"),
              per_seed(found.runs, "inactive_fraction"))
  for filename, title, series in (
      ("init_accuracy.png", "test accuracy (%)", ((accuracy, "-"),)),
      ("init_inactive.png", "inactive units (%): at init dashed, after training solid",
       ((inactive[0], "--"), (inactive[1], "-")))):
    figure = plots.new_figure(4.2 * len(activation_names), 4.6)
    for index, activation in enumerate(activation_names):
      axis = figure.add_subplot(1, len(activation_names), index + 1)
      for position, name in enumerate(names):
        for wide, style in series:
          by_depth = 100 * np.array([mean_confidence_interval(
              list(seeds(wide, d, activation, names)[name].dropna()) or [math.nan]) for d in depths])
          axis.errorbar(depths, by_depth[:, 0], yerr=np.nan_to_num(by_depth[:, 1]), fmt=style, marker="o",
                        markersize=3, capsize=2, color=f"C{position}",
                        label=name if index == 0 and style == "-" else None)
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
