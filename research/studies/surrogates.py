"""Surrogates: do ReLU-forward surrogate-gradient activations beat relu and leaky_relu on CNNs?

Claim 8 of the research brief: SUGAR (Horuz et al. 2025, "The Resurrection
of the ReLU") keeps ReLU's forward pass and backpropagates the derivative of
a smooth function instead (B-SiLU, NeLU, or ELU's, SELU's, GELU's), and
reports large gains for VGG-16 and ResNet-18 on CIFAR-10/100. Here the
SUGAR family from the registry (``sugar_*``), NecroReLU, the windowed
NecroReLU of the ``dying`` study and revival_relu (its surrogate that neither
dies nor runs away) are compared
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

The CNNs are small so that the 180 runs (10 activations x 3 parts x 2
learning rates x 3 seeds) fit on 2 CPU cores: three convolutions each, 8
channels in 2-D (a 28x28 mnist5k grid of 6 runs at 16 channels took minutes),
25 in 1-D (the MNIST-1D reference CNN), 600 Adam steps of 100 examples.

Run time: 11 minutes for the 180 runs on 2 CPU cores (AMD EPYC) shared with
other jobs. Command::

  python -m research surrogates --out results/surrogates
  python -m research surrogates --base.steps 300 --datasets digits   # shorter
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Annotated

import pandas as pd

import activations
from activations import registry
from research import config as config_lib
from research import experiment, paired, plots, tables
from research.config import Config
from research.findings import Answer, Estimate, Findings, Table
from research.study import Study

BASELINE, REFERENCE = "relu", "leaky_relu"  # the paired differences are against these registry names
LARGE_GAIN = 0.01  # a gain counts as large here when its whole 95% interval lies above 1 percentage point
STEP_ZERO_METRICS = ("inactive_fraction", "sparsity", "test_accuracy")  # equal for every ReLU forward at step 0
DIFFERENCES_PLOT = "accuracy_difference.png"
DEFAULT_ACTIVATIONS = (
    "relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)",
    "windowed_necro_relu(negative_slope=0.1, window=3.0)", "sugar_bsilu(alpha=1.67)",
    "sugar_nelu(alpha=0.2)", "sugar_elu", "sugar_selu", "sugar_gelu",
    "revival_relu(negative_slope=0.3)",
)
Datasets = Annotated[tuple[str, ...], config_lib.comma_separated(str, "DATASET,DATASET,...")]
GROUP = ["dataset", "model", "learning_rate"]


@dataclasses.dataclass(frozen=True)
class Settings:
  """ReLU-forward surrogate gradients (NecroReLU, SUGAR) vs relu and leaky_relu on small CNNs."""

  datasets: Datasets = ("digits", "mnist5k", "mnist1d")  # one part each: mnist1d trains cnn1d, image datasets cnn2d
  cnn2d_width: int = 8  # channels per convolution of the 2-D CNN (16 makes a 28x28 mnist5k grid cost minutes on 2 CPU cores)
  cnn2d_depth: int = 3  # 3x3 stride-2 convolutions of the 2-D CNN (digits: 8x8 -> 1x1, mnist5k: 28x28 -> 4x4)
  cnn1d_width: int = 25  # channels per convolution of the 1-D CNN (the MNIST-1D reference CNN)
  cnn1d_depth: int = 3  # convolutions of the 1-D CNN
  base: Config = Config(  # the engine's settings; activations must include relu; 600 steps (digits: 42 epochs, mnist1d and mnist5k: 15), evaluated at the end
      activations=DEFAULT_ACTIVATIONS, seeds=3, learning_rates=(1e-3, 1e-2), steps=600,
      eval_every=600)


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
    >>> validate(Settings(base=Config(activations=("necro_relu", "sugar_bsilu"))))
    Traceback (most recent call last):
    ...
    ValueError: base.activations must include relu, the baseline of every difference, got ('necro_relu', 'sugar_bsilu').
  """
  names = [activations.parse_spec(spec)[0] for spec in settings.base.activations]
  if BASELINE not in names:
    raise ValueError(f"base.activations must include {BASELINE}, the baseline of every difference,"
                     f" got {settings.base.activations!r}.")
  for name in (BASELINE, REFERENCE):
    if names.count(name) > 1:
      raise ValueError(f"base.activations: {name} appears {names.count(name)} times; give it once,"
                       " so the differences have one reference.")
  if not settings.datasets or len(set(settings.datasets)) != len(settings.datasets):
    raise ValueError(f"datasets must name one or more distinct datasets, got {settings.datasets!r}.")
  if settings.base.seeds < 2:
    raise ValueError("base.seeds must be 2 or more (a paired interval needs two pairs), got"
                     f" {settings.base.seeds!r}.")


def parts(settings: Settings) -> list[experiment.Part]:
  """One engine part per dataset, with the CNN that fits it."""
  found = []
  for dataset in settings.datasets:
    model = model_for(dataset)
    two_d = model == "cnn2d"
    found.append(experiment.Part({"dataset": dataset, "model": model}, dataclasses.replace(
        settings.base, dataset=dataset, model=model,
        width=settings.cnn2d_width if two_d else settings.cnn1d_width,
        depth=settings.cnn2d_depth if two_d else settings.cnn1d_depth,
        eval_every=min(settings.base.eval_every, settings.base.steps))))
  return found


def paired_differences(runs: pd.DataFrame, baseline: str = BASELINE,
                       metric: str = "test_accuracy") -> pd.DataFrame:
  """Each activation minus ``baseline`` in ``metric``, paired by seed, per dataset and rate.

  ``baseline`` is a registry name (the runs whose ``name`` it is). Diverged
  runs are left out of the pairs; ``diverged`` counts the activation's.

  Examples:
    >>> rows = pd.DataFrame([{"dataset": "d", "model": "m", "learning_rate": 0.1, "seed": seed,
    ...                       "name": name, "activation": name, "diverged": False, "test_accuracy": value}
    ...                      for name, values in (("relu", [0.90, 0.92, 0.91]),
    ...                                           ("necro_relu", [0.92, 0.93, 0.94]))
    ...                      for seed, value in enumerate(values)])
    >>> [row] = paired_differences(rows).to_dict("records")
    >>> row["activation"], row["pairs"], round(row["difference"], 4), row["wins"]
    ('necro_relu', 3, 0.02, 3)
  """
  return paired.paired_differences(runs, baseline, metric, GROUP)


verdict, difference = paired.verdict, paired.difference  # read by the notebook and tests


def step_zero_matches(history: pd.DataFrame, name: str, baseline: str = BASELINE) -> tuple[int, int]:
  """``(equal, pairs)``: (dataset, seed, rate) cases where ``name`` and ``baseline`` agree at step 0.

  Agree means every metric of :data:`STEP_ZERO_METRICS` is exactly equal.

  Examples:
    >>> rows = pd.DataFrame([{"dataset": "d", "name": n, "seed": 0, "learning_rate": 0.1, "step": 0,
    ...                       "inactive_fraction": 0.0, "sparsity": 0.5, "test_accuracy": 0.1}
    ...                      for n in ("relu", "sugar_nelu")])
    >>> step_zero_matches(rows, "sugar_nelu")
    (1, 1)
  """
  at_zero = history[history["step"] == 0]
  return tables.equal_pairs(at_zero[at_zero["name"] == name], at_zero[at_zero["name"] == baseline],
                            ["dataset", "seed", "learning_rate"], list(STEP_ZERO_METRICS))


def _listed(rows: pd.DataFrame, label) -> tuple[str, tuple[Estimate, ...]]:
  """``"a {}, b {}"`` and the estimates, or ``"none"``."""
  if rows.empty:
    return "none", ()
  return ", ".join(f"{label(row)} {{}}" for _, row in rows.iterrows()), tuple(
      difference(row) for _, row in rows.iterrows())


def _rate_answers(differences: pd.DataFrame, baseline: str) -> list[Answer]:
  """One answer per (dataset, rate): who beats, loses to and ties with ``baseline``."""
  answers = []
  for (dataset, model, rate), mine in differences.groupby(GROUP, sort=False):
    verdicts = mine.apply(verdict, axis=1)
    texts, estimates = [], []
    for which in ("beats", "loses to", "ties with", "n/a"):
      text, found = _listed(mine[verdicts == which], lambda row: row["activation"])
      texts.append(text)
      estimates += found
    extra = f" Not comparable (too few pairs): {texts[3]}." if (verdicts == "n/a").any() else ""
    answers.append(Answer(
        f"{dataset} ({model}), learning rate {rate:g}, {baseline} at"
        f" {100 * mine['baseline_mean'].iloc[0]:.1f}%: beat {baseline}: {texts[0]}. Lost to it:"
        f" {texts[1]}. No difference detectable (interval holds 0): {texts[2]}.{extra}",
        tuple(estimates), topic=f"Per dataset and learning rate, against {baseline}"))
  return answers


def _tally(differences: pd.DataFrame, baseline: str) -> Answer:
  """The headline: how many comparisons with ``baseline`` are gains, losses and ties, and which."""
  verdicts = differences.apply(verdict, axis=1)
  texts, estimates = [], []
  for which in ("beats", "loses to"):
    rows = differences[verdicts == which]
    text, found = _listed(rows, lambda r: f"{r['activation']} on {r['dataset']} at {r['learning_rate']:g}:")
    texts.append(f" ({text})" if not rows.empty else "")
    estimates += found
  counts = {which: int((verdicts == which).sum()) for which in ("beats", "loses to", "ties with")}
  return Answer(
      f"Against {baseline}, over {len(differences)} (activation, dataset, learning rate)"
      f" comparisons: {counts['beats']} gain{'s' * (counts['beats'] != 1)}{texts[0]},"
      f" {counts['loses to']} loss{'es' * (counts['loses to'] != 1)}{texts[1]},"
      f" {counts['ties with']} with an interval that holds 0 (at most"
      f" {int(differences['pairs'].max())} seed pairs each: a tie means no difference was detected,"
      " not that there is none).", tuple(estimates), topic="Do they beat relu and leaky_relu?",
      headline=True)


def _sugar_answer(differences: pd.DataFrame) -> Answer:
  """How the best SUGAR gain over relu compares with the large gains the paper reports."""
  topic = "SUGAR's claim, at this size"
  sugar = differences[differences["name"].str.startswith("sugar_") & differences["difference"].notna()]
  if sugar.empty:
    return Answer("No SUGAR surrogate (sugar_*) was run, so SUGAR's claim is not tested here.", topic=topic)
  best = sugar.loc[sugar["difference"].idxmax()]
  surest = sugar.loc[sugar["low"].fillna(-math.inf).idxmax()]
  large = sugar[sugar["low"] > LARGE_GAIN]
  if large.empty:
    size, estimates = (f"none of the {len(sugar)} SUGAR comparisons gains more than"
                       f" {100 * LARGE_GAIN:.0f} pp with confidence: the highest lower bound is that of"
                       f" {surest['activation']} on {surest['dataset']} at {surest['learning_rate']:g},"
                       " {}. Nothing here is a gain of the size SUGAR reports"), (difference(surest),)
  else:
    size, estimates = (f"{len(large)} of {len(sugar)} SUGAR comparisons gain more than"
                       f" {100 * LARGE_GAIN:.0f} pp with confidence (whole interval above it): "
                       + ", ".join(f"{r['activation']} on {r['dataset']} at {r['learning_rate']:g}"
                                   for _, r in large.iterrows())), ()
  return Answer(
      "Horuz et al. report large gains with VGG-16 and ResNet-18 on CIFAR-100 without augmentation"
      " (VGG-16: 48.73% with relu, 64.47% with B-SiLU; ResNet-18: 48.99% vs 56.51%). Here, on shallow"
      f" CNNs, the largest mean SUGAR gain over relu is {{}} ({best['activation']}, {best['dataset']},"
      f" learning rate {best['learning_rate']:g}, where relu's test error is"
      f" {100 * (1 - best['baseline_mean']):.1f}%, the most any activation could gain); {size}.",
      (difference(best), *estimates), topic=topic, headline=True,
      verdict="did not hold" if large.empty else "held")


def _dead_answer(runs: pd.DataFrame) -> Answer:
  """Final dead and inactive fractions per activation, over every dataset and rate."""
  kept = runs[~tables.diverged(runs) & runs["dead_fraction"].notna()]
  texts, estimates = [], []
  for activation, mine in kept.groupby("activation", sort=False):
    dead = mine["dead_fraction"]
    texts.append(f"{activation}: " + ("never dead" if dead.max() == 0 else
                                       f"dead {{}}, up to {100 * dead.max():.1f}% in a run")
                 + f"; inactive {{}} (up to {100 * mine['inactive_fraction'].max():.1f}%)")
    estimates += ([] if dead.max() == 0 else [Estimate.of_mean(dead, "dead_fraction")])
    estimates.append(Estimate.of_mean(mine["inactive_fraction"], "inactive_fraction"))
  return Answer(
      "Dead units after training (backward derivative 0 on every training example; mean over runs"
      " and layers, every dataset and rate): " + "; ".join(texts) + ". Surrogates keep ReLU's"
      " forward, so they have inactive units (z <= 0 everywhere), but such a unit is dead only where"
      " its backward derivative is 0 too (windowed_necro_relu below -window; a smooth derivative"
      " that underflows to 0 far below 0).", tuple(estimates), topic="Dead and inactive units")


def _step_zero_answers(history: pd.DataFrame) -> list[Answer]:
  names = sorted(n for n in history["name"].unique() if n != BASELINE and registry.relu_forward(n))
  if not names or BASELINE not in set(history["name"]):
    return []
  counts = [step_zero_matches(history, name) for name in names]
  equal, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
  same = equal == total
  return [Answer(
      f"Same forward, same start: at step 0 every ReLU-forward surrogate"
      f" {'equals' if same else 'does NOT always equal'} relu at the same seed in inactive fraction,"
      f" sparsity and test accuracy ({equal} of {total} (surrogate, dataset, seed, rate) cases"
      f" exactly equal; {', '.join(names)})"
      + (", so every difference above comes from the backward pass." if same
         else ": a forward pass or initialisation differs."),
      topic="Same forward, same start", verdict="held" if same else "did not hold")]


def _scope_answer(settings: Settings) -> Answer:
  shapes = ", ".join(dict.fromkeys(
      f"{part.config.model} with {part.config.depth} convolutions of {part.config.width} channels"
      for part in parts(settings)))
  return Answer(
      f"Not this study's setting: SUGAR's. These CNNs are shallow and narrow ({shapes};"
      f" {settings.base.steps} steps), while VGG-16 has 16 weight layers and ResNet-18 18, so a gain"
      " that needs depth cannot show here, and a tie here does not refute SUGAR at scale. The engine"
      " trains those networks on CIFAR (docs/deep-networks.md); asking SUGAR's question at depth is"
      " another study's.", topic="SUGAR's claim, at this size")


def _differences_frame(differences: pd.DataFrame) -> pd.DataFrame:
  return pd.DataFrame({
      "dataset": differences["dataset"], "learning rate": differences["learning_rate"],
      "activation": differences["activation"], "vs": differences["baseline"],
      "pairs": differences["pairs"], "difference": differences.apply(difference, axis=1),
      "p": differences["p"].map(lambda p: "-" if math.isnan(p) else f"{p:.3g}"),
      "wins": [f"{w}/{n}" for w, n in zip(differences["wins"], differences["pairs"])],
      "diverged": differences["diverged"]})


def all_differences(runs: pd.DataFrame) -> pd.DataFrame:
  """Every activation minus relu, then minus leaky_relu (``differences.csv``)."""
  return pd.concat([paired_differences(runs, BASELINE), paired_differences(runs, REFERENCE)],
                   ignore_index=True)


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Paired differences with relu and leaky_relu, SUGAR's size, dead units, equal starts."""
  differences = all_differences(found.runs)
  versus = {name: differences[differences["baseline"] == name] for name in (BASELINE, REFERENCE)}
  tallies = [_tally(rows, name) for name, rows in versus.items() if not rows.empty]
  return Findings(
      question="do ReLU-forward surrogate gradients (NecroReLU, SUGAR) beat relu and leaky_relu on CNNs?",
      answers=(*tallies, _sugar_answer(versus[BASELINE]), _scope_answer(settings),
               _dead_answer(found.runs), *_step_zero_answers(found.history),
               *_rate_answers(versus[BASELINE], BASELINE), *_rate_answers(versus[REFERENCE], REFERENCE)),
      tables=(
          Table("Final accuracy, dead and inactive units per configuration", tables.grouped_estimates(
              found.runs, ["dataset", "learning_rate", "activation"],
              ["test_accuracy", "dead_fraction", "inactive_fraction", "sparsity"])),
          Table("Paired differences", _differences_frame(differences)),
      ),
      notes=("Differences: final test accuracy of the activation minus the baseline's at the same"
             " seed and learning rate (same initial weights and batches), in percentage points, mean"
             " over seeds with its 95% paired t interval; diverged runs are left out of the pairs.",),
      plots=(DIFFERENCES_PLOT,),
      data={"differences": differences},
  )


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  del settings
  versus_relu = paired_differences(found.runs, BASELINE)
  datasets = list(versus_relu["dataset"].unique())
  rates = sorted(versus_relu["learning_rate"].unique())
  names = list(versus_relu["activation"].unique())
  short = dict(zip(versus_relu["activation"], versus_relu["name"]))  # registry names label the bars when unique
  labels = [short[n] for n in names] if len(set(short.values())) == len(names) else names
  figure = plots.new_figure(max(6.0, 4.2 * len(rates)), 3.2 * len(datasets) + 0.6)
  axes = figure.subplots(len(datasets), len(rates), squeeze=False, sharey="row")
  for row_axes, dataset in zip(axes, datasets):
    for axis, rate in zip(row_axes, rates):
      mine = versus_relu[(versus_relu["dataset"] == dataset) & (versus_relu["learning_rate"] == rate)]
      for position, activation in enumerate(names):
        chosen = mine[mine["activation"] == activation]
        if chosen.empty or math.isnan(chosen["difference"].iloc[0]):
          continue
        half = chosen["half_width"].iloc[0]
        axis.bar(position, 100 * chosen["difference"].iloc[0], 0.8, capsize=3,
                 yerr=0 if math.isnan(half) else 100 * half, color=f"C{position % 10}", label=activation)
      axis.axhline(0, color="black", linewidth=0.8)
      axis.set_xticks(range(len(names)), labels, rotation=45, ha="right", fontsize=7)
      axis.set_title(f"{dataset}, learning rate {rate:g}", fontsize=9)
      axis.set_ylabel("test accuracy minus relu (pp)")
      axis.grid(alpha=0.3, axis="y")
  figure.suptitle("Test accuracy minus relu's at the same seed: mean and 95% paired interval", fontsize=10)
  plots.save_figure(figure, folder, DIFFERENCES_PLOT)


STUDY = Study(
    name="surrogates",
    question="Surrogates: do ReLU-forward surrogate gradients (NecroReLU, SUGAR) beat relu and"
    " leaky_relu on CNNs?",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("dataset", "model", "width", "depth"),
)
