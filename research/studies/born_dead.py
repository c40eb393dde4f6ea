"""Born dead: how often a deep, narrow ReLU network is constant before training.

Claim 4 of the research brief (Lu, Shin, Su, Karniadakis 2019, "Dying ReLU and
Initialization"): a deep narrow ReLU network collapses to a constant function
with a probability that tends to 1 with depth; at depth 10, width 2 collapses
in over 90% of runs, width 3 in about 60%, width 5 in over 10%, width 10 in
under 1%; their randomized asymmetric initialization (RAI,
:func:`research.models.rai`) cuts the collapse of a width-2, depth-10 network
trained on ``|x|`` from 91.9% (He) to 29.2%.

Two measurements, one folder:

* **born dead** (no training): a network is born dead when some hidden layer
  has every unit inactive (``z <= 0``) on a dense grid of 1-D inputs over
  ``[-sqrt(3), sqrt(3)]``; its output is then constant on the domain. For each
  width and initialisation, ``trials`` networks of the largest depth are drawn
  and evaluated as one vmapped program; the first ``d`` hidden layers of a
  deep network are distributed exactly as a depth-``d`` network's, so every
  depth comes from the same draws (``born_dead.csv``).
* **collapse after training**: width-2, depth-10 networks trained on ``|x|``
  through the engine (one part per initialisation, ``seeds`` runs each); a run
  has collapsed when, at its final evaluation, some hidden layer is entirely
  inactive on the training inputs (``layers.csv`` ``inactive_fraction`` is 1)
  (``collapse.csv``).

Run time: about 10 minutes on 2 CPU cores at the defaults. Command::

  python -m research born-dead --out results/born-dead
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import time
from collections.abc import Sequence
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import nnx
from jax import Array

import activations
from research import config as config_lib
from research import csv_rows, devices, experiment, models, plots, tables
from research.config import Config
from research.findings import Answer, Estimate, Findings, Table
from research.study import Study

SUPPORTED_INITS = ("he_normal", "rai")  # the two of Lu et al.'s comparison
DOMAIN = math.sqrt(3.0)  # inputs on [-sqrt(3), sqrt(3)], as in Lu et al.
PAPER_BORN_DEAD_DEPTH_10 = {2: "over 90%", 3: "about 60%", 5: "over 10%", 10: "under 1%"}
PAPER_COLLAPSE = {"he_normal": 0.919, "rai": 0.292}  # Lu et al. 2019, 1000 runs each
BORN_DEAD_FILE = "born_dead.csv"

Ints = Annotated[tuple[int, ...], config_lib.comma_separated(int, "INT,INT,...")]
Names = Annotated[tuple[str, ...], config_lib.comma_separated(str, "NAME,NAME,...")]


@dataclasses.dataclass(frozen=True)
class Settings:
  """Born-dead probability vs depth and width, and collapse after training (He vs RAI)."""

  widths: Ints = (2, 3, 5, 10)  # hidden units per layer of the born-dead networks
  depths: Ints = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 20, 25, 30, 40, 50)  # hidden layers of the born-dead networks
  inits: Names = SUPPORTED_INITS  # initialisations compared: he_normal (zero biases) and/or rai
  trials: int = 4000  # random networks per (width, init) for the born-dead probability
  grid_points: int = 1001  # evenly spaced 1-D inputs on [-sqrt(3), sqrt(3)] that define "constant on the domain"
  base: Config = Config(  # the collapse runs: width-2, depth-10 ReLU MLPs trained on |x| over [-sqrt(3), sqrt(3)], 250 per init
      dataset=f"regression(target='abs', noise=0.0, range={DOMAIN!r})", width=2, depth=10,
      activations=("relu",), seeds=250, learning_rates=(1e-3,), steps=2000, batch_size=64,
      eval_every=2000)


def validate(settings: Settings) -> None:
  """Raises a ``ValueError`` naming the first invalid setting and the valid values.

  Examples:
    >>> validate(Settings(inits=("he",)))
    Traceback (most recent call last):
    ...
    ValueError: inits: 'he' is not valid. Choose from: he_normal, rai.
  """
  for init in settings.inits:
    if init not in SUPPORTED_INITS:
      raise ValueError(f"inits: {init!r} is not valid. Choose from: {', '.join(SUPPORTED_INITS)}.")
  if not settings.inits or len(set(settings.inits)) != len(settings.inits):
    raise ValueError(f"inits must name each of {', '.join(SUPPORTED_INITS)} at most once, got {settings.inits!r}.")
  for field in ("widths", "depths"):
    values = getattr(settings, field)
    if not values or any(not isinstance(v, int) or v < 1 for v in values):
      raise ValueError(f"{field} must be one or more positive integers, got {values!r}.")
  for field in ("trials", "grid_points"):
    value = getattr(settings, field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
      raise ValueError(f"{field} must be an integer of at least 2, got {value!r}.")


# --- born dead: no training, one vmapped program per (width, init) ----------------


def _layer(key: Array, fan_in: int, width: int, init: str) -> tuple[Array, Array]:
  """One hidden layer's kernel and bias, drawn as :class:`research.models.MLP` draws them."""
  if init == "rai":
    return models.rai(key, fan_in, width)
  return nnx.initializers.he_normal()(key, (fan_in, width)), jnp.zeros((width,))


def inactive_layers(key: Array, inputs: Array, *, width: int, depth: int, init: str) -> Array:
  """Per hidden layer of one random ReLU network, whether every unit has ``z <= 0``.

  Args:
    key: the network's PRNG key.
    inputs: ``(points, 1)``, the grid of inputs.
    width: units per hidden layer.
    depth: hidden layers.
    init: ``"he_normal"`` (zero biases) or ``"rai"``.

  Returns:
    ``(depth,)`` booleans: layer ``l`` is inactive on every input.

  Examples:
    >>> x = jnp.linspace(-1.0, 1.0, 11).reshape(-1, 1)
    >>> inactive_layers(jax.random.key(0), x, width=10, depth=3, init="he_normal").shape
    (3,)
  """
  first_key, rest_key = jax.random.split(key)
  kernel, bias = _layer(first_key, inputs.shape[1], width, init)
  z = inputs @ kernel + bias
  first = jnp.all(z <= 0)
  if depth == 1:
    return first[None]
  kernels, biases = jax.vmap(lambda k: _layer(k, width, width, init))(
      jax.random.split(rest_key, depth - 1))

  def step(h: Array, layer: tuple[Array, Array]) -> tuple[Array, Array]:
    z = h @ layer[0] + layer[1]
    return activations.relu(z), jnp.all(z <= 0)

  _, rest = jax.lax.scan(step, activations.relu(z), (kernels, biases))
  return jnp.concatenate([first[None], rest])


@functools.lru_cache(maxsize=16)
def _born_dead_program(width: int, depth: int, init: str):
  """Over a batch of keys: per network and depth ``d``, born dead at depth ``d``."""

  def one(key: Array, inputs: Array) -> Array:
    flags = inactive_layers(key, inputs, width=width, depth=depth, init=init)
    return jnp.cumsum(flags) > 0  # some layer among the first d is inactive

  return jax.jit(jax.vmap(one, in_axes=(0, None)))


def born_dead_fractions(
    width: int, depths: Sequence[int], init: str, *, trials: int, grid_points: int, seed: int = 0
) -> dict[int, int]:
  """``{depth: networks born dead}`` among ``trials`` random networks.

  Examples:
    >>> born_dead_fractions(10, [1, 2], "he_normal", trials=50, grid_points=11)
    {1: 0, 2: 0}
  """
  inputs = jnp.linspace(-DOMAIN, DOMAIN, grid_points).reshape(-1, 1)
  keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), width), trials)
  dead = np.asarray(_born_dead_program(width, max(depths), init)(keys, inputs))
  return {d: int(dead[:, d - 1].sum()) for d in depths}


def he_lower_bound(width: int, depth: int) -> float:
  """A lower bound on P(born dead) for zero biases and symmetric weights.

  Hidden layers 2..depth take non-negative inputs (ReLU outputs); a layer
  whose ``width * width`` weights are all <= 0 is then inactive everywhere.
  That happens with probability ``2 ** -(width**2)``, independently per layer,
  so ``P(born dead) >= 1 - (1 - 2 ** -(width**2)) ** (depth - 1)``, which tends
  to 1 with depth (Lu et al.'s limit), however loose it is for wide layers.

  Examples:
    >>> round(he_lower_bound(2, 10), 4)
    0.4406
  """
  return 1.0 - (1.0 - 2.0 ** -(width * width)) ** (depth - 1)


# --- the study ------------------------------------------------------------------


def parts(settings: Settings) -> list[experiment.Part]:
  """The collapse runs: one engine part per initialisation, evaluated at the start and the end."""
  return [experiment.Part({"init": init}, dataclasses.replace(
      settings.base, model="mlp", activations=("relu",), eval_every=settings.base.steps, init=init))
          for init in settings.inits]


def measure(settings: Settings, folder: pathlib.Path, quiet: bool) -> dict[str, pd.DataFrame]:
  """The born-dead counts (no training), read back from the folder when a run already wrote them."""
  path = folder / BORN_DEAD_FILE
  if path.exists():  # the folder's config.json guarantees the same settings
    return {"born_dead": pd.read_csv(path)}
  rows = []
  for width in settings.widths:
    for init in settings.inits:
      started = time.perf_counter()
      counts = born_dead_fractions(width, settings.depths, init, trials=settings.trials,
                                   grid_points=settings.grid_points)
      experiment.say(f"born dead: width {width}, {init}: {time.perf_counter() - started:.1f} s", quiet)
      rows += [{"width": width, "depth": depth, "init": init, "trials": settings.trials,
                "born_dead_fraction": counts[depth] / settings.trials} for depth in sorted(settings.depths)]
  if devices.writes_results():
    experiment.write_report(folder, BORN_DEAD_FILE, csv_rows.csv_text(rows))
  return {"born_dead": pd.DataFrame(rows)}


def collapsed_runs(layers: pd.DataFrame, depth: int) -> pd.Series:
  """Per (run, step): whether some hidden layer has ``inactive_fraction == 1``.

  Examples:
    >>> rows = pd.DataFrame([{"run_id": "a", "step": 0, "layer": 1, "inactive_fraction": 1.0},
    ...                      {"run_id": "a", "step": 0, "layer": 2, "inactive_fraction": None}])
    >>> collapsed_runs(rows, depth=1).to_dict()
    {('a', 0): True}
  """
  hidden = layers[layers["layer"] <= depth]
  return (hidden["inactive_fraction"] == 1.0).groupby([hidden["run_id"], hidden["step"]], sort=False).any()


def collapse_rows(settings: Settings, found: tables.Tables) -> pd.DataFrame:
  """Per initialisation: runs, collapsed at the end, born dead at step 0, diverged (``collapse.csv``)."""
  by_step = collapsed_runs(found.layers, settings.base.depth).unstack()
  final, initial = by_step[by_step.columns.max()], by_step[0]
  rows = []
  for init in settings.inits:
    mine = found.runs[found.runs["init"] == init]
    ids = list(mine["run_id"])
    rows.append({"init": init, "trials": len(ids), "collapse_fraction": final[ids].sum() / len(ids),
                 "born_dead_fraction": initial[ids].sum() / len(ids),
                 "diverged": int(mine["diverged"].sum())})
  return pd.DataFrame(rows)


def _proportion(fraction: float, trials: int) -> Estimate:
  return Estimate.of_proportion(round(fraction * trials), trials)


def _born_dead_answers(settings: Settings, born: pd.DataFrame) -> list[Answer]:
  lookup = born.set_index(["width", "depth", "init"])["born_dead_fraction"]
  answers, topic = [], "Born dead vs depth and width"
  if 10 in settings.depths:
    for width in settings.widths:
      answers.append(Answer(
          f"depth 10, width {width}: born dead " + "; ".join(f"{init} {{}}" for init in settings.inits)
          + f" (Lu et al.: {PAPER_BORN_DEAD_DEPTH_10.get(width, 'not reported')}).",
          tuple(_proportion(lookup[(width, 10, init)], settings.trials) for init in settings.inits),
          topic=topic, headline=True))
  deepest = max(settings.depths)
  for init in settings.inits:
    answers.append(Answer(
        f"{init} at depth {deepest}: born dead in "
        + ", ".join(f"{{}} (width {width})" for width in settings.widths) + ".",
        tuple(_proportion(lookup[(width, deepest, init)], settings.trials) for width in settings.widths),
        topic=topic))
  return answers


def _collapse_answers(settings: Settings, collapse: pd.DataFrame) -> list[Answer]:
  answers = []
  for _, row in collapse.iterrows():
    paper = PAPER_COLLAPSE.get(row["init"])
    answers.append(Answer(
        f"Trained width-{settings.base.width}, depth-{settings.base.depth} networks on |x|,"
        f" {row['init']}: collapsed in {{}} of {row['trials']} runs (born dead at step 0: {{}})"
        + (f"; Lu et al. report {100 * paper:.1f}% over 1000 runs." if paper is not None else "."),
        (_proportion(row["collapse_fraction"], row["trials"]),
         _proportion(row["born_dead_fraction"], row["trials"])),
        topic="Collapse after training", headline=True))
  return answers


def _born_dead_table(settings: Settings, born: pd.DataFrame) -> pd.DataFrame:
  lookup = born.set_index(["width", "depth", "init"])["born_dead_fraction"]
  rows = []
  for depth in sorted(settings.depths):
    row = {"depth": depth} | {f"w={w} {init}": _proportion(lookup[(w, depth, init)], settings.trials)
                              for w in settings.widths for init in settings.inits}
    if "he_normal" in settings.inits:
      row |= {f"w={w} bound": Estimate(he_lower_bound(w, depth), kind="percent") for w in settings.widths}
    rows.append(row)
  return pd.DataFrame(rows)


def _mean_loss(found: tables.Tables, final: pd.Series, init: str, collapsed: bool) -> float:
  runs = found.runs[found.runs["init"] == init]
  chosen = runs[runs["run_id"].map(final) == collapsed]["test_loss"].dropna()
  return float(chosen.mean()) if len(chosen) else math.nan


def _collapse_table(settings: Settings, found: tables.Tables, collapse: pd.DataFrame) -> pd.DataFrame:
  by_step = collapsed_runs(found.layers, settings.base.depth).unstack()
  final = by_step[by_step.columns.max()]
  return pd.DataFrame([{
      "init": row["init"], "runs": row["trials"],
      "collapsed": _proportion(row["collapse_fraction"], row["trials"]),
      "born dead (step 0)": _proportion(row["born_dead_fraction"], row["trials"]),
      "diverged": row["diverged"],
      "Lu et al.": Estimate(PAPER_COLLAPSE[row["init"]], kind="percent") if row["init"] in PAPER_COLLAPSE else "-",
      "test MSE collapsed": f"{_mean_loss(found, final, row['init'], True):.4f}",
      "test MSE not collapsed": f"{_mean_loss(found, final, row['init'], False):.4f}",
  } for _, row in collapse.iterrows()])


NOTES = (
    "Intervals of proportions are 95% Wilson intervals of a binomial proportion.",
    "The bound columns are a lower bound for He (zero biases, symmetric weights) that we derive rather"
    " than quote: layers 2..d take non-negative inputs, and a layer whose width^2 weights are all"
    " <= 0 is inactive everywhere, which happens with probability 2^-(width^2) independently per"
    " layer, so P(born dead) >= 1 - (1 - 2^-(width^2))^(d-1). It tends to 1 with depth, as Lu et"
    " al.'s theorem says (their exact bound is not restated here, to avoid misquoting it); it is"
    " loose for wide layers. RAI has no such bound: its biases are not zero.",
    "A run has collapsed when at its final evaluation some hidden layer has every unit inactive on"
    " every training input (layers.csv inactive_fraction == 1): its output is then the same for every"
    " input. Born dead at step 0 is the same test before training.",
    "Differences from Lu et al. to keep in mind: their training schedule, loss and stopping rule are"
    " not reproduced here (see the settings); their collapse means converging to a constant function,"
    " ours an entirely inactive hidden layer at the end, which implies it.",
)


def analyse(settings: Settings, found: tables.Tables) -> Findings:
  """Born dead against the paper's figures and the lower bound; collapse after training."""
  born, collapse = found.measured["born_dead"], collapse_rows(settings, found)
  base = settings.base
  return Findings(
      question="are deep narrow ReLU networks born dead?",
      answers=(*_born_dead_answers(settings, born), *_collapse_answers(settings, collapse)),
      tables=(
          Table("Born dead vs depth and width", _born_dead_table(settings, born),
                note=f"Fraction of {settings.trials} random networks per (width, init) whose some hidden"
                f" layer is inactive (z <= 0 for every unit) on {settings.grid_points} evenly spaced"
                " inputs on [-sqrt(3), sqrt(3)]: the network's output is then constant there. The first"
                " d hidden layers of one draw give depth d, so the depths of one (width, init) share"
                " their networks. He: he_normal kernels, zero biases; RAI: research.models.rai. Depth"
                " counts hidden layers."),
          Table("Collapse after training", _collapse_table(settings, found, collapse),
                note=f"Runs: {base.seeds} per initialisation (seeds 0..{base.seeds - 1}), model mlp width"
                f" {base.width} depth {base.depth}, ReLU, dataset `{base.dataset}`, {base.optimizer},"
                f" learning rate(s) {', '.join(map(str, base.learning_rates))}, {base.steps} steps of"
                f" batch {base.batch_size}."),
      ),
      notes=NOTES, plots=("born_dead.png", "collapse.png"),
      data={"born_dead": born, "collapse": collapse},  # born_dead.csv rewritten as measure wrote it
  )


def _born_dead_plot(settings: Settings, born: pd.DataFrame, folder: pathlib.Path) -> None:
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  colours = dict(zip(settings.widths, [f"C{i}" for i in range(8)] * 4))
  for width in settings.widths:
    for init in settings.inits:
      rows = born[(born["width"] == width) & (born["init"] == init)].sort_values("depth")
      estimates = [_proportion(f, settings.trials) for f in rows["born_dead_fraction"]]
      axis.plot(rows["depth"], 100 * rows["born_dead_fraction"], "-" if init == "he_normal" else "--",
                marker="o", markersize=3, color=colours[width], label=f"width {width}, {init}")
      axis.fill_between(rows["depth"], [100 * e.low for e in estimates], [100 * e.high for e in estimates],
                        color=colours[width], alpha=0.15)
    if "he_normal" in settings.inits:
      depths = sorted(settings.depths)
      axis.plot(depths, [100 * he_lower_bound(width, d) for d in depths], ":", color=colours[width],
                label=f"width {width}, He lower bound")
  axis.set_xlabel("depth (hidden layers)")
  axis.set_ylabel("born dead (%)")
  axis.set_title(f"Born dead: {settings.trials} networks per curve, 95% Wilson bands")
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7, ncol=2)
  plots.save_figure(figure, folder, "born_dead.png")


def _collapse_plot(settings: Settings, collapse: pd.DataFrame, folder: pathlib.Path) -> None:
  figure = plots.new_figure(5, 3.5)
  axis = figure.add_subplot()
  for index, row in collapse.reset_index(drop=True).iterrows():
    estimate = _proportion(row["collapse_fraction"], row["trials"])
    axis.bar(index, 100 * estimate.value, color="C0" if index == 0 else "C1", capsize=4,
             yerr=[[100 * (estimate.value - estimate.low)], [100 * (estimate.high - estimate.value)]],
             label="measured" if index == 0 else None)
    if row["init"] in PAPER_COLLAPSE:
      axis.plot(index, 100 * PAPER_COLLAPSE[row["init"]], "k*", markersize=10,
                label="Lu et al. 2019" if index == 0 else None)
  axis.set_xticks(range(len(collapse)), list(collapse["init"]))
  axis.set_ylabel("collapsed after training (%)")
  axis.set_title(f"width {settings.base.width}, depth {settings.base.depth} on |x|")
  axis.set_ylim(0, 100)
  axis.legend(fontsize=8)
  plots.save_figure(figure, folder, "collapse.png")


def _plots(settings: Settings, found: tables.Tables, folder: pathlib.Path) -> None:
  _born_dead_plot(settings, found.measured["born_dead"], folder)
  _collapse_plot(settings, collapse_rows(settings, found), folder)


STUDY = Study(
    name="born-dead",
    question="Born dead: P(a ReLU net is constant at init) vs depth and width, He vs RAI; collapse"
    " after training.",
    settings=Settings, parts=parts, analyse=analyse, validate=validate, plots=_plots,
    measure=measure, owns=("model", "activations", "eval_every", "init"),
)
