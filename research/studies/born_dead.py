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

import csv
import dataclasses
import functools
import math
import pathlib
import time
from collections.abc import Sequence
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from flax import nnx
from jax import Array

import activations
from research import config as config_lib
from research import devices, experiment, models, plots, results
from research.config import Config
from research.statistics import wilson
from research.studies import reproduce_lines, run_from_command_line, settings_record

NAME = "born-dead"
SUPPORTED_INITS = ("he_normal", "rai")  # the two of Lu et al.'s comparison
DOMAIN = math.sqrt(3.0)  # inputs on [-sqrt(3), sqrt(3)], as in Lu et al.
PAPER_BORN_DEAD_DEPTH_10 = {2: "over 90%", 3: "about 60%", 5: "over 10%", 10: "under 1%"}
PAPER_COLLAPSE = {"he_normal": 0.919, "rai": 0.292}  # Lu et al. 2019, 1000 runs each

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
  dataset: str = f"regression(target='abs', noise=0.0, range={DOMAIN!r})"  # research.data spec of the collapse runs: |x| on [-sqrt(3), sqrt(3)]
  width: int = 2  # hidden units per layer of the trained (collapse) networks
  depth: int = 10  # hidden layers of the trained (collapse) networks
  seeds: int = 250  # trained runs per initialisation for the collapse rate
  learning_rates: config_lib.Floats = (1e-3,)  # learning rates of the collapse runs
  optimizer: config_lib.Optimizer = "adam"  # optax optimizer of the collapse runs
  steps: int = 2000  # optimizer steps per collapse run
  batch_size: int = 64  # examples per step of the collapse runs
  batching: config_lib.Batching = "auto"  # map (each run as if alone), vmap (batched), auto (map on CPU)


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
  for field in ("trials", "grid_points", "width", "depth", "seeds", "steps", "batch_size"):
    value = getattr(settings, field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"{field} must be a positive integer, got {value!r}.")
  if settings.grid_points < 2:
    raise ValueError(f"grid_points must be at least 2, got {settings.grid_points}.")


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


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What :func:`run` returns, besides writing it to ``out``."""

  out: pathlib.Path  # the results folder
  born_dead: list[dict[str, Any]]  # born_dead.csv rows
  collapse: list[dict[str, Any]]  # collapse.csv rows
  summary: str  # summary.md


def parts(settings: Settings) -> list[experiment.Part]:
  """The collapse runs: one engine part per initialisation."""
  return [
      experiment.Part({"init": init}, Config(
          dataset=settings.dataset, model="mlp", width=settings.width, depth=settings.depth,
          activations=("relu",), seeds=settings.seeds, learning_rates=settings.learning_rates,
          optimizer=settings.optimizer, steps=settings.steps, batch_size=settings.batch_size,
          eval_every=settings.steps, init=init, batching=settings.batching,
      ))
      for init in settings.inits
  ]


def collapsed_runs(layers: Sequence[dict[str, Any]], depth: int) -> dict[str, dict[int, bool]]:
  """Per run: ``{step: some hidden layer has inactive_fraction == 1}`` (layers.csv rows).

  Examples:
    >>> rows = [{"run_id": "a", "step": 0, "layer": 1, "inactive_fraction": 1.0},
    ...         {"run_id": "a", "step": 0, "layer": 2, "inactive_fraction": None}]
    >>> collapsed_runs(rows, depth=1)
    {'a': {0: True}}
  """
  found: dict[str, dict[int, bool]] = {}
  for row in layers:
    if row["layer"] > depth:
      continue
    steps = found.setdefault(row["run_id"], {})
    steps[row["step"]] = steps.get(row["step"], False) or row["inactive_fraction"] == 1.0
  return found


def _read_csv(path: pathlib.Path) -> list[dict[str, Any]]:
  with open(path, newline="", encoding="utf-8") as file:
    return [{k: results.parse_value(k, v) for k, v in row.items()} for row in csv.DictReader(file)]


def _born_dead_rows(settings: Settings, folder: pathlib.Path, quiet: bool) -> list[dict[str, Any]]:
  path = folder / "born_dead.csv"
  if path.exists():  # the folder's config.json guarantees the same settings
    return _read_csv(path)
  rows = []
  for width in settings.widths:
    for init in settings.inits:
      started = time.perf_counter()
      counts = born_dead_fractions(width, settings.depths, init, trials=settings.trials,
                                   grid_points=settings.grid_points)
      experiment.say(f"born dead: width {width}, {init}: {time.perf_counter() - started:.1f} s", quiet)
      for depth in sorted(settings.depths):
        rows.append({"width": width, "depth": depth, "init": init, "trials": settings.trials,
                     "born_dead_fraction": counts[depth] / settings.trials})
  if devices.writes_results():
    experiment.write_report(folder, "born_dead.csv", results.csv_text(rows))
  return rows


def _collapse_rows(settings: Settings, trained: experiment.Trained) -> list[dict[str, Any]]:
  by_run = collapsed_runs(trained.layers, settings.depth)
  init_of = {row["run_id"]: row["init"] for row in trained.runs}
  diverged = {row["run_id"] for row in trained.runs if row.get("diverged")}
  rows = []
  for init in settings.inits:
    ids = [run for run, i in init_of.items() if i == init]
    final = [by_run[run][max(by_run[run])] for run in ids]
    initial = [by_run[run][0] for run in ids]
    rows.append({
        "init": init, "trials": len(ids), "collapse_fraction": sum(final) / len(ids),
        "born_dead_fraction": sum(initial) / len(ids),
        "diverged": sum(run in diverged for run in ids),
    })
  return rows


def _mean_loss(trained: experiment.Trained, init: str, collapsed: bool, settings: Settings) -> float:
  by_run = collapsed_runs(trained.layers, settings.depth)
  losses = [row["test_loss"] for row in trained.runs if row["init"] == init
            and by_run[row["run_id"]][max(by_run[row["run_id"]])] == collapsed
            and row.get("test_loss") is not None]
  return float(np.mean(losses)) if losses else math.nan


def _percent(value: float) -> str:
  return f"{100 * value:.1f}%"


def _interval(successes: int, trials: int) -> str:
  low, high = wilson(successes, trials)
  return f"{_percent(successes / trials)} [{_percent(low)}, {_percent(high)}]"


def _summary(settings: Settings, command: str, born: list[dict[str, Any]], collapse: list[dict[str, Any]],
             trained: experiment.Trained, seconds: float) -> str:
  lines = [f"# {NAME}: are deep narrow ReLU networks born dead?", ""]
  lookup = {(r["width"], r["depth"], r["init"]): r for r in born}
  trials = settings.trials
  # The answer first, in words, from the numbers.
  lines += ["## Answer", ""]
  if 10 in settings.depths:
    for width in settings.widths:
      cells = []
      for init in settings.inits:
        row = lookup[(width, 10, init)]
        cells.append(f"{init} {_interval(round(row['born_dead_fraction'] * trials), trials)}")
      paper = PAPER_BORN_DEAD_DEPTH_10.get(width, "not reported")
      lines.append(f"- depth 10, width {width}: born dead {'; '.join(cells)} (Lu et al.: {paper}).")
  deepest = max(settings.depths)
  for init in settings.inits:
    at_depth = [lookup[(w, deepest, init)]["born_dead_fraction"] for w in settings.widths]
    lines.append(
        f"- {init} at depth {deepest}: born dead in "
        + ", ".join(f"{_percent(f)} (width {w})" for w, f in zip(settings.widths, at_depth)) + ".")
  for row in collapse:
    paper = PAPER_COLLAPSE.get(row["init"])
    count = round(row["collapse_fraction"] * row["trials"])
    lines.append(
        f"- Trained width-{settings.width}, depth-{settings.depth} networks on |x|, {row['init']}:"
        f" collapsed in {_interval(count, row['trials'])} of {row['trials']} runs"
        f" (born dead at step 0: {_percent(row['born_dead_fraction'])})"
        + (f"; Lu et al. report {_percent(paper)} over 1000 runs." if paper is not None else "."))
  lines += ["", "Intervals are 95% Wilson intervals of a binomial proportion.", ""]
  # Born-dead table.
  lines += ["## Born dead vs depth and width", "",
            f"Fraction of {trials} random networks per (width, init) whose some hidden layer is"
            f" inactive (z <= 0 for every unit) on {settings.grid_points} evenly spaced inputs on"
            " [-sqrt(3), sqrt(3)]: the network's output is then constant there. The first d hidden"
            " layers of one draw give depth d, so the depths of one (width, init) share their"
            " networks. He: he_normal kernels, zero biases; RAI: research.models.rai."
            " Depth counts hidden layers.", ""]
  header = ["depth"] + [f"w={w} {init}" for w in settings.widths for init in settings.inits]
  if "he_normal" in settings.inits:
    header += [f"w={w} bound" for w in settings.widths]
  lines += ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
  for depth in sorted(settings.depths):
    cells = [str(depth)]
    for width in settings.widths:
      for init in settings.inits:
        cells.append(_interval(round(lookup[(width, depth, init)]["born_dead_fraction"] * trials), trials))
    if "he_normal" in settings.inits:
      cells += [_percent(he_lower_bound(w, depth)) for w in settings.widths]
    lines.append("| " + " | ".join(cells) + " |")
  lines += [
      "", "The bound column is a lower bound for He (zero biases, symmetric weights) that we derive"
      " rather than quote: layers 2..d take non-negative inputs, and a layer whose width^2"
      " weights are all <= 0 is inactive everywhere, which happens with probability"
      " 2^-(width^2) independently per layer, so P(born dead) >= 1 - (1 - 2^-(width^2))^(d-1)."
      " It tends to 1 with depth, as Lu et al.'s theorem says (their exact bound is not restated"
      " here, to avoid misquoting it); it is loose for wide layers. RAI has no such bound: its"
      " biases are not zero.", "",
  ]
  # Collapse table.
  lines += ["## Collapse after training", "",
            f"Runs: {settings.seeds} per initialisation (seeds 0..{settings.seeds - 1}), model mlp"
            f" width {settings.width} depth {settings.depth}, ReLU, dataset `{settings.dataset}`,"
            f" {settings.optimizer}, learning rate(s) {', '.join(map(str, settings.learning_rates))},"
            f" {settings.steps} steps of batch {settings.batch_size}. A run has *collapsed* when at"
            " its final evaluation some hidden layer has every unit inactive on every training"
            " input (layers.csv inactive_fraction == 1): its output is then the same for every"
            " input. Born dead at step 0 is the same test before training.", "",
            "| init | runs | collapsed | born dead (step 0) | diverged | Lu et al. | test MSE collapsed | test MSE not collapsed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for row in collapse:
    count = round(row["collapse_fraction"] * row["trials"])
    born_count = round(row["born_dead_fraction"] * row["trials"])
    paper = PAPER_COLLAPSE.get(row["init"])
    lines.append(
        f"| {row['init']} | {row['trials']} | {_interval(count, row['trials'])} |"
        f" {_interval(born_count, row['trials'])} | {row['diverged']} |"
        f" {_percent(paper) if paper is not None else '-'} |"
        f" {_mean_loss(trained, row['init'], True, settings):.4f} |"
        f" {_mean_loss(trained, row['init'], False, settings):.4f} |")
  lines += [
      "", "Differences from Lu et al. to keep in mind: their training schedule, loss and stopping"
      " rule are not reproduced here (see the settings above); their collapse means converging"
      " to a constant function, ours an entirely inactive hidden layer at the end, which implies"
      " it.", "",
      "Plots: `born_dead.png`, `collapse.png`. Data: `born_dead.csv`, `collapse.csv`, and the"
      " engine's `runs.csv`, `history.csv`, `layers.csv`.", ""]
  lines += reproduce_lines(NAME, settings, command, seconds, trained.grids,
                           what="born-dead programs and training")
  return "\n".join(lines)


def _plots(settings: Settings, born: list[dict[str, Any]], collapse: list[dict[str, Any]],
           folder: pathlib.Path) -> None:
  figure = plots.new_figure(7, 4.5)
  axis = figure.add_subplot()
  colours = dict(zip(settings.widths, ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"] * 4))
  for width in settings.widths:
    for init in settings.inits:
      rows = sorted((r for r in born if r["width"] == width and r["init"] == init), key=lambda r: r["depth"])
      depth = [r["depth"] for r in rows]
      fraction = np.array([r["born_dead_fraction"] for r in rows])
      bounds = np.array([wilson(round(f * settings.trials), settings.trials) for f in fraction])
      style = "-" if init == "he_normal" else "--"
      axis.plot(depth, 100 * fraction, style, marker="o", markersize=3, color=colours[width],
                label=f"width {width}, {init}")
      axis.fill_between(depth, 100 * bounds[:, 0], 100 * bounds[:, 1], color=colours[width], alpha=0.15)
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

  figure = plots.new_figure(5, 3.5)
  axis = figure.add_subplot()
  for index, row in enumerate(collapse):
    count = round(row["collapse_fraction"] * row["trials"])
    low, high = wilson(count, row["trials"])
    axis.bar(index, 100 * row["collapse_fraction"], color="C0" if index == 0 else "C1",
             yerr=[[100 * (row["collapse_fraction"] - low)], [100 * (high - row["collapse_fraction"])]],
             capsize=4, label="measured" if index == 0 else None)
    if row["init"] in PAPER_COLLAPSE:
      axis.plot(index, 100 * PAPER_COLLAPSE[row["init"]], "k*", markersize=10,
                label="Lu et al. 2019" if index == 0 else None)
  axis.set_xticks(range(len(collapse)), [row["init"] for row in collapse])
  axis.set_ylabel("collapsed after training (%)")
  axis.set_title(f"width {settings.width}, depth {settings.depth} on |x|")
  axis.set_ylim(0, 100)
  axis.legend(fontsize=8)
  plots.save_figure(figure, folder, "collapse.png")


def run(
    settings: Settings, *, out: str | pathlib.Path | None = None, quiet: bool = False,
    command: str = "",
) -> Outcome:
  """Measures the born-dead probability and the collapse after training.

  Writes ``born_dead.csv``, ``collapse.csv``, the engine's files for the
  collapse runs, ``summary.md``, ``born_dead.png`` and ``collapse.png`` into
  ``out`` (default ``results/born-dead-<timestamp>``). Rerunning with the same
  folder resumes; ``tests/test_study_born_dead.py`` runs it at tiny settings.
  """
  validate(settings)
  started = time.perf_counter()
  prepared = experiment.prepare_parts(parts(settings), settings_record(NAME, settings), out, name=NAME)
  try:
    born = _born_dead_rows(settings, prepared.folder.path, quiet)
  except BaseException:
    prepared.folder.close()
    raise
  trained = experiment.train_pending(prepared, quiet=quiet)
  collapse = _collapse_rows(settings, trained)
  seconds = time.perf_counter() - started
  report = _summary(settings, command, born, collapse, trained, seconds)
  experiment.write_outputs(
      trained.out, {"collapse.csv": results.csv_text(collapse), "summary.md": report},
      lambda folder: _plots(settings, born, collapse, folder))
  experiment.say(report, quiet)
  return Outcome(trained.out, born, collapse, report)


def command(
    settings: Annotated[Settings, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Born dead: P(a ReLU net is constant at init) vs depth and width, He vs RAI; collapse after training.

  Args:
    settings: the study.
    out: output folder; empty means results/born-dead-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar.
  """
  return run_from_command_line(run, settings, out, quiet)
