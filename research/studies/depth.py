"""Depth: does a ReLU-forward surrogate help deep networks, as SUGAR reports, and why?

SUGAR (Horuz et al. 2025) reports on CIFAR-100 without augmentation VGG-16
at 48.73% with ReLU against 64.47% with the B-SiLU surrogate (+15.7 pp), and
ResNet-18 at 48.99% against 56.51% (+7.5 pp), and reads the surrogate as a
regulariser that helps most in weakly regularised networks. The
``surrogates`` study found no such gain on 3-convolution CNNs. This study asks
it at depth, with every run paired by seed with relu's (same initial weights
and batches):

(a) does a ReLU-forward surrogate beat relu in a plain deep network (VGG-11
    and VGG-16 without normalisation, where ReLU channels die)?
(b) does BatchNorm (VGG-11 with it) or a skip connection (ResNet-20 without
    and with BatchNorm) remove the effect?
(c) is the gain explained by relu's dead channels: does it vanish where relu
    has none?

Each (network, dataset, augmentation, optimizer) is one engine part; every
activation x seed x learning rate a run. The networks are narrow (VGG at
width 16: 16 to 128 channels; ResNet-20 at width 8) and the data small
(digits, 8x8, 1,437 training images; one mnist5k part and one augmented part
on the first network), so the default grid fits about 45 minutes on 2 CPU
cores; the summary states what that costs in comparability with SUGAR.

Command::

  python -m research depth --out results/depth
  python -m research depth --networks "vgg11(width=8)" --optimizers adam --base.steps 100  # minutes
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

BASELINE = "relu"
DEFAULT_ACTIVATIONS = (
    "relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)",
    "windowed_necro_relu(negative_slope=0.1, window=3.0)", "revival_relu(negative_slope=0.3)",
    "sugar_bsilu(alpha=1.67)", "sugar_nelu(alpha=0.2)", "sugar_elu", "sugar_selu",
)
NETWORKS = ("vgg11(width=16)", "vgg16(width=16)", "vgg11(width=16, norm='batch')",
            "resnet20(width=8, norm='none')", "resnet20(width=8)")
CONVOLUTIONS = {"vgg11": 8, "vgg16": 13, "resnet20": 19, "resnet18": 17}  # weight layers before the head
SUGAR_GAINS = {  # the paper's CIFAR-100 table: (network, relu accuracy, B-SiLU accuracy)
    "VGG-16": (0.4873, 0.6447), "ResNet-18": (0.4899, 0.5651)}
LAYERS_PLOT = "dead_by_layer.png"
DIFFERENCES_PLOT = "accuracy_difference.png"
Specs = Annotated[tuple[str, ...], config_lib.comma_separated(str, "SPEC,SPEC,...")]
Rates = Annotated[tuple[float, ...], config_lib.comma_separated(float, "RATE,RATE,...")]
PART = ["network", "dataset", "augment", "optimizer"]
CELL = [*PART, "learning_rate"]


@dataclasses.dataclass(frozen=True)
class Settings:
  """ReLU-forward surrogates against relu in deep VGGs and ResNets, with and without BatchNorm and skips."""

  networks: Specs = NETWORKS  # model specs, each trained with every optimizer on every dataset
  optimizers: Specs = ("adam",)  # one part each per network and dataset
  plain_optimizers: Specs = ("momentum",)  # more optimizers for the plain networks only (question (a))
  adam_rates: Rates = (1e-3, 3e-3)  # learning rates of adam (and adamw)
  sgd_rates: Rates = (0.01, 0.03)  # learning rates of sgd, momentum and nesterov
  datasets: Specs = ("digits",)  # every network trains on each, without augmentation
  more_datasets: Specs = ("mnist5k",)  # more_data_network only, adam, without augmentation
  more_data_network: str = "vgg11(width=8)"  # a plain network narrow enough for 28x28 images on 2 cores
  more_data_activations: Specs = (  # a subset of base.activations for the more_datasets parts
      "relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)",
      "revival_relu(negative_slope=0.3)", "sugar_bsilu(alpha=1.67)")
  augmented: bool = True  # also the first network on the first dataset with --augment (4-pixel crops, flips), adam
  base: Config = Config(  # the engine's settings: 600 steps of 64 (digits: 27 epochs), evaluated every 200
      activations=DEFAULT_ACTIVATIONS, seeds=3, steps=600, batch_size=64, eval_every=200)


def network_name(spec: str) -> str:
  """What a network spec is, in words: its name, convolutions, BatchNorm and skips.

  Examples:
    >>> network_name("vgg16(width=16)"), network_name("resnet20(width=8, norm='none')")
    ('vgg16, 13 conv, plain', 'resnet20, 19 conv, skip')
    >>> network_name("resnet20"), network_name("vgg11(norm='batch')")
    ('resnet20, 19 conv, skip + BatchNorm', 'vgg11, 8 conv, BatchNorm')
  """
  name, options = activations.parse_spec(spec)
  skip = name.startswith("resnet")
  norm = options.get("norm", "batch" if skip else "none") == "batch"
  kind = " + ".join([*(["skip"] if skip else []), *(["BatchNorm"] if norm else [])]) or "plain"
  convolutions = CONVOLUTIONS.get(name)
  return f"{name}, {convolutions} conv, {kind}" if convolutions else f"{name}, {kind}"


def plain(network: str) -> bool:
  return network.endswith(", plain")


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(networks=("resnet20",)))
    Traceback (most recent call last):
    ...
    ValueError: networks must hold at least one plain network (a VGG without norm='batch'), the one question (a) is about, got ('resnet20',).
  """
  names = [activations.parse_spec(spec)[0] for spec in settings.base.activations]
  if names.count(BASELINE) != 1:
    raise ValueError(f"base.activations must include {BASELINE} once, the baseline of every"
                     f" difference, got {settings.base.activations!r}.")
  if not any(plain(network_name(spec)) for spec in settings.networks):
    raise ValueError("networks must hold at least one plain network (a VGG without norm='batch'),"
                     f" the one question (a) is about, got {settings.networks!r}.")
  for label, values in (("networks", settings.networks), ("optimizers", settings.optimizers),
                        ("datasets", settings.datasets)):
    if not values or len(set(values)) != len(values):
      raise ValueError(f"{label} must name one or more distinct values, got {values!r}.")
  given = set(settings.base.activations)
  if settings.more_datasets and not set(settings.more_data_activations) <= given:
    raise ValueError(f"more_data_activations must be among base.activations, got"
                     f" {sorted(set(settings.more_data_activations) - given)!r}.")
  if settings.more_datasets and BASELINE not in settings.more_data_activations:
    raise ValueError(f"more_data_activations must include {BASELINE}, got"
                     f" {settings.more_data_activations!r}.")
  if settings.base.seeds < 2:
    raise ValueError(f"base.seeds must be 2 or more (a paired interval needs two pairs), got"
                     f" {settings.base.seeds!r}.")


def _rates(settings: Settings, optimizer: str) -> tuple[float, ...]:
  return settings.adam_rates if optimizer.startswith("adam") else settings.sgd_rates


def _part(settings: Settings, network: str, dataset: str, augment: bool, optimizer: str,
          activation_specs: tuple[str, ...] | None = None) -> experiment.Part:
  keys = {"network": network_name(network), "dataset": dataset, "augment": augment,
          "optimizer": optimizer}
  return experiment.Part(keys, dataclasses.replace(
      settings.base, model=network, dataset=dataset, augment=augment, optimizer=optimizer,
      learning_rates=_rates(settings, optimizer),
      activations=activation_specs or settings.base.activations,
      eval_every=min(settings.base.eval_every, settings.base.steps)))


def parts(settings: Settings) -> list[experiment.Part]:
  """Every network x optimizer x dataset; the plain networks with more optimizers; more data; augmentation.

  Examples:
    >>> [(p.keys["network"], p.keys["optimizer"]) for p in parts(Settings())][:2]
    [('vgg11, 8 conv, plain', 'adam'), ('vgg16, 13 conv, plain', 'adam')]
    >>> [(p.keys["network"], p.keys["dataset"], p.keys["augment"], p.keys["optimizer"])
    ...  for p in parts(Settings())][5:]  # doctest: +NORMALIZE_WHITESPACE
    [('vgg11, 8 conv, plain', 'digits', False, 'momentum'),
     ('vgg16, 13 conv, plain', 'digits', False, 'momentum'),
     ('vgg11, 8 conv, plain', 'mnist5k', False, 'adam'), ('vgg11, 8 conv, plain', 'digits', True, 'adam')]
  """
  found = [_part(settings, network, dataset, False, optimizer) for dataset in settings.datasets
           for optimizer in settings.optimizers for network in settings.networks]
  plains = [spec for spec in settings.networks if plain(network_name(spec))]
  found += [_part(settings, network, dataset, False, optimizer) for dataset in settings.datasets
            for optimizer in settings.plain_optimizers for network in plains]
  found += [_part(settings, settings.more_data_network, dataset, False, "adam",
                  settings.more_data_activations) for dataset in settings.more_datasets]
  if settings.augmented:
    found.append(_part(settings, plains[0], settings.datasets[0], True, "adam"))
  return found


# --- the analysis ---------------------------------------------------------------


def _surrogates(runs: pd.DataFrame) -> list[str]:
  """The ReLU-forward surrogates run, by registry name, in the order given."""
  return [n for n in dict.fromkeys(runs["name"]) if n != BASELINE and registry.relu_forward(n)]


def pooled_differences(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
  """Each activation minus relu per group of ``by``, pairs over (optimizer, rate, seed) pooled."""
  return paired.pooled_differences(runs, BASELINE, "test_accuracy", by, ["optimizer", "learning_rate"])


def _main(rows: pd.DataFrame, settings: Settings) -> pd.DataFrame:
  """The rows of the main parts: every network on ``settings.datasets``, without augmentation."""
  return rows[rows["dataset"].isin(settings.datasets) & ~rows["augment"].astype(bool)]


def _sugar_scale(gain: float, relu_accuracy: float) -> str:
  """A gain as the share of relu's error it removes, beside SUGAR's."""
  ours = gain / (1 - relu_accuracy) if relu_accuracy < 1 else math.nan
  theirs = "; ".join(f"{name} {100 * (b - r):+.1f} pp, {100 * (b - r) / (1 - r):.0f}% of relu's error"
                     for name, (r, b) in SUGAR_GAINS.items())
  return f"{100 * ours:.0f}% of relu's error here (SUGAR on CIFAR-100: {theirs})"


def _plain_answer(cells: pd.DataFrame) -> Answer:
  """(a): the best ReLU-forward gain over relu in each plain network, and the tally."""
  mine = cells[cells["network"].map(plain) & cells["relu_forward"]]
  topic = "(a) A plain deep network"
  if mine.empty:
    return Answer("No plain network with a ReLU-forward surrogate was run.", topic=topic)
  verdicts = mine.apply(paired.verdict, axis=1)
  best = mine.loc[mine["difference"].idxmax()]
  counts = {v: int((verdicts == v).sum()) for v in ("beats", "loses to", "ties with")}
  beats = mine[verdicts == "beats"]
  listed = "; ".join(f"{r['activation']} ({r['network']}, {r['optimizer']} {r['learning_rate']:g}) {{}}"
                     for _, r in beats.iterrows()) or "none"
  return Answer(
      f"Over {len(mine)} (surrogate, plain network, optimizer, rate) comparisons with relu:"
      f" {counts['beats']} gains, {counts['loses to']} losses, {counts['ties with']} ties (interval"
      f" holds 0). Gains: {listed}. The largest mean gain: {best['activation']} on {best['network']}"
      f" ({best['optimizer']}, lr {best['learning_rate']:g}, relu at"
      f" {100 * best['baseline_mean']:.1f}%): {{}}, "
      + _sugar_scale(best["difference"], best["baseline_mean"]) + ".",
      (*(paired.difference(r) for _, r in beats.iterrows()), paired.difference(best)),
      topic=topic, headline=True, verdict="held" if counts["beats"] else "did not hold")


def _network_answers(pooled: pd.DataFrame, surrogates: list[str]) -> list[Answer]:
  """(b): each surrogate's gain per network (pooled over optimizers, rates and seeds)."""
  answers = []
  for name in surrogates:
    mine = pooled[pooled["name"] == name]
    if mine.empty:
      continue
    parts_text = "; ".join(f"{r['network']} {{}} ({paired.verdict(r)} relu)" for _, r in mine.iterrows())
    gains_plain = mine[mine["network"].map(plain)].apply(paired.verdict, axis=1).eq("beats").any()
    gains_other = mine[~mine["network"].map(plain)].apply(paired.verdict, axis=1).eq("beats").any()
    verdict = ("the gain is in plain networks only" if gains_plain and not gains_other else
               "gains with normalisation or skips too" if gains_other else "no gain in any network")
    answers.append(Answer(
        f"{mine['activation'].iloc[0]} minus relu, pooled over optimizers, rates and seeds:"
        f" {parts_text}: {verdict}.", tuple(paired.difference(r) for _, r in mine.iterrows()),
        topic="(b) Does BatchNorm or a skip connection remove the effect?"))
  return answers


def _points(values: pd.Series) -> Estimate:
  """The mean of differences with its 95% t interval, in percentage points."""
  mean = Estimate.of_mean(values.tolist())
  return Estimate(mean.value, mean.low, mean.high, "points", mean.n)


def _dead_answer(runs: pd.DataFrame, cells: pd.DataFrame) -> Answer:
  """(c): relu's dead fraction per cell against the surrogates' mean gain there."""
  relu = runs[(runs["name"] == BASELINE) & ~tables.diverged(runs)]
  dead = relu.groupby(CELL, sort=False)["dead_fraction"].mean().rename("relu_dead")
  gains = cells[cells["relu_forward"]].groupby(CELL, sort=False)["difference"].mean().rename("gain")
  joined = pd.concat([dead, gains], axis=1).dropna()
  topic = "(c) Is the gain explained by relu's dead channels?"
  if len(joined) < 3:
    return Answer("Too few configurations to relate gains to relu's dead channels.", topic=topic)
  with_dead, without = joined[joined["relu_dead"] >= 0.05], joined[joined["relu_dead"] < 0.01]
  correlation = joined["relu_dead"].corr(joined["gain"], method="spearman")
  return Answer(
      f"Over {len(joined)} (network, data, optimizer, rate) configurations, the Spearman correlation"
      f" between relu's final dead fraction and the mean gain of the ReLU-forward surrogates is"
      f" {correlation:+.2f}. Where relu has 5% or more dead units ({len(with_dead)} configurations)"
      f" the mean gain is {{}}; where it has under 1% ({len(without)}) it is {{}}.",
      (_points(with_dead["gain"]), _points(without["gain"])),
      topic=topic)


def _data_answers(pooled_parts: pd.DataFrame, settings: Settings) -> list[Answer]:
  """The extra parts: more data and augmentation, on the first plain network."""
  extra = pooled_parts[~pooled_parts["dataset"].isin(settings.datasets)
                       | pooled_parts["augment"].astype(bool)]
  answers = []
  for (network, dataset, augment), mine in extra.groupby(["network", "dataset", "augment"], sort=False):
    listed = "; ".join(f"{r['activation']} {{}}" for _, r in mine.iterrows())
    answers.append(Answer(
        f"{network} on {dataset}{' with augmentation' if augment else ''} (adam, both rates"
        f" pooled), minus relu: {listed}.", tuple(paired.difference(r) for _, r in mine.iterrows()),
        topic="More data, and augmentation"))
  return answers


def _scope_answer(settings: Settings) -> Answer:
  return Answer(
      f"What this machine cannot test: SUGAR trains full-width VGG-16 (14.7M parameters) and"
      f" ResNet-18 (11.2M) on CIFAR-100 (50,000 32x32 colour images, 100 classes) for 100 epochs;"
      f" here the networks are {', '.join(settings.networks)} on {', '.join(settings.datasets)} and"
      f" {', '.join(settings.more_datasets) or 'no other data'}"
      f" ({settings.base.steps} steps of {settings.base.batch_size}), 10 classes, so gains that need"
      " CIFAR-100's difficulty or full width cannot show here. On a GPU with the CIFAR-100 python"
      " folder, SUGAR's table is `python -m research compare --preset sugar-cifar100-vgg16"
      " --dataset \"local(path='~/data/cifar-100-python')\"` and the same with"
      " `--preset sugar-cifar100-resnet18` (docs/deep-networks.md); no GPU was lent to this study.",
      topic="Comparability with SUGAR")


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Paired differences with relu per configuration, pooled per network; dead channels."""
  runs = found.runs
  cells = paired.paired_differences(runs, BASELINE, "test_accuracy", CELL)
  if not cells.empty:
    cells = cells.assign(relu_forward=cells["name"].map(registry.relu_forward))
  pooled = pooled_differences(runs, PART[:3])
  main = _main(runs, settings)
  surrogates = _surrogates(runs)
  main_cells = _main(cells, settings) if not cells.empty else cells
  return Findings(
      question="does a ReLU-forward surrogate help deep networks, as SUGAR reports, and why?",
      answers=(
          _plain_answer(main_cells), *_network_answers(_main(pooled, settings), surrogates),
          _dead_answer(main, main_cells), *_data_answers(pooled, settings), _scope_answer(settings)),
      tables=(
          Table("Final accuracy, dead and inactive units per configuration", tables.grouped_estimates(
              runs, [*CELL, "activation"],
              ["test_accuracy", "dead_fraction", "inactive_fraction"])),
          Table("Paired differences with relu, per configuration", _differences_frame(cells)),
      ),
      notes=("Differences: test accuracy minus relu's at the same seed (same initial weights and"
             " batches), in percentage points, mean with its 95% paired t interval; 'pooled' pairs"
             " every (optimizer, learning rate, seed) of a network. Diverged runs are left out of"
             " the pairs; dead: a unit (a convolution's channel) whose backward derivative is 0 on"
             " every training example.",),
      plots=(DIFFERENCES_PLOT, LAYERS_PLOT),
      data={"differences": cells, "pooled_differences": pooled},
  )


def _differences_frame(cells: pd.DataFrame) -> pd.DataFrame:
  if cells.empty:
    return cells
  return pd.DataFrame({
      "network": cells["network"], "dataset": cells["dataset"], "augment": cells["augment"],
      "optimizer": cells["optimizer"], "learning rate": cells["learning_rate"],
      "activation": cells["activation"], "difference": cells.apply(paired.difference, axis=1),
      "wins": [f"{w}/{n}" for w, n in zip(cells["wins"], cells["pairs"])],
      "diverged": cells["diverged"]})


def _plot_differences(pooled: pd.DataFrame, folder: pathlib.Path) -> None:
  groups = list(pooled.groupby(PART[:3], sort=False))
  names = list(dict.fromkeys(pooled["activation"]))
  figure = plots.new_figure(max(6.0, 0.5 * len(names) * len(groups)), 4.2)
  axis = figure.subplots()
  width = 0.8 / max(1, len(names))
  for offset, activation in enumerate(names):
    for position, (_, mine) in enumerate(groups):
      row = mine[mine["activation"] == activation]
      if row.empty or math.isnan(row["difference"].iloc[0]):
        continue
      half = row["half_width"].iloc[0]
      axis.bar(position + offset * width, 100 * row["difference"].iloc[0], width,
               yerr=0 if math.isnan(half) else 100 * half, capsize=2, color=f"C{offset % 10}",
               label=activation if position == 0 else None)
  axis.axhline(0, color="black", linewidth=0.8)
  axis.set_xticks([p + 0.4 - width / 2 for p in range(len(groups))],
                  [f"{n}\n{d}{' +aug' if a else ''}" for (n, d, a), _ in groups], fontsize=7)
  axis.set_ylabel("test accuracy minus relu (pp)")
  axis.legend(fontsize=6, ncol=3)
  axis.set_title("Minus relu at the same seed, pooled over optimizers and rates (95% interval)",
                 fontsize=9)
  plots.save_figure(figure, folder, DIFFERENCES_PLOT)


def _plot_layers(layers: pd.DataFrame, folder: pathlib.Path) -> None:
  keyed = layers[layers["step"] == layers.groupby("run_id")["step"].transform("max")]
  networks = list(dict.fromkeys(keyed["network"]))
  figure = plots.new_figure(3.4 * max(1, len(networks)), 3.4)
  axes = figure.subplots(1, max(1, len(networks)), squeeze=False)[0]
  for axis, network in zip(axes, networks):
    mine = keyed[keyed["network"] == network]
    for index, (activation, rows) in enumerate(mine.groupby("activation", sort=False)):
      curve = rows.groupby("layer")["dead_fraction"].mean()
      axis.plot(curve.index, 100 * curve.values, marker=".", color=f"C{index % 10}",
                label=activation)
    axis.set_title(network, fontsize=8)
    axis.set_xlabel("layer (activation call)")
    axis.set_ylabel("dead channels at the end (%)")
    axis.grid(alpha=0.3)
  axes[0].legend(fontsize=5)
  plots.save_figure(figure, folder, LAYERS_PLOT)


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  del settings
  _plot_differences(pooled_differences(found.runs, PART[:3]), folder)
  if not found.layers.empty:
    _plot_layers(found.layers, folder)


STUDY = Study(
    name="depth",
    question="Depth: does a ReLU-forward surrogate help deep networks (VGG, ResNet), as SUGAR"
    " reports, and is the gain explained by relu's dead channels?",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    owns=("model", "dataset", "augment", "optimizer", "learning_rates"),
)
