"""Run-steps per second of a grid trained as one program vs one run at a time.

The engine's own path (:func:`research.programs.train_grid`, evaluations
included) on the default MNIST-1D MLP with ReLU, one seed per run. A grid of N
runs is trained as one program (``batching="vmap"`` and ``"map"``) and the
same runs one after another, each a grid of one. One run at a time does not
depend on N, so it is measured on the first ``min(N, sequential_runs)`` runs.

Each candidate is first trained once from a cold start (every compiled
program forgotten): the first-call figure, compilation included. Then every
candidate is compiled again where the cold starts dropped it, and the
candidates are timed in turn for the rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from research import data, grid, programs
from research.bench import timing
from research.config import Config


def grid_config(runs: int, steps: int, batching: str) -> Config:
  """The default comparison's model and data, ReLU only, ``runs`` seeds."""
  return Config(activations=("relu",), seeds=runs, steps=steps, batching=batching)


def _trainer(
    config: Config, dataset: data.Dataset, runs: Sequence[grid.Run] | None, one_by_one: bool
) -> Callable[[], None]:
  """Trains the runs as one grid, or each as a grid of one."""
  (this_grid,) = grid.expand(config)
  selected = list(this_grid.runs if runs is None else runs)

  def train_all() -> None:
    if one_by_one:
      for run in selected:
        programs.train_grid(config, dataset, this_grid, [run])
    else:
      programs.train_grid(config, dataset, this_grid, selected)

  return train_all


def measure(
    sizes: Sequence[int], steps: int, rounds: int, *, sequential_runs: int = 16,
    batchings: Sequence[str] = ("vmap", "map"),
) -> list[dict[str, Any]]:
  """One row per grid size: run-steps per second of each way and the speedups.

  Args:
    sizes: numbers of runs N.
    steps: optimizer steps per run (evaluations every 250, as the default).
    rounds: timed rounds after the untimed first one.
    sequential_runs: at most this many runs are trained one at a time.
    batchings: the one-program ways to measure.
  """
  dataset = data.load("mnist1d")
  rows = []
  for size in sizes:
    sequential_config = grid_config(size, steps, "map")
    (sequential_grid,) = grid.expand(sequential_config)
    sample = sequential_grid.runs[: min(size, sequential_runs)]
    candidates, run_steps, first_seconds = {}, {}, {}
    for batching in batchings:
      function = _trainer(grid_config(size, steps, batching), dataset, None, False)
      candidates[batching] = function
      run_steps[batching] = size * steps
    function = _trainer(sequential_config, dataset, sample, True)
    candidates["one_by_one"] = function
    run_steps["one_by_one"] = len(sample) * steps
    for name, function in candidates.items():  # first call: with compilation
      programs.clear_compiled()
      first_seconds[name] = timing.seconds_of(function)
    # The clears dropped the earlier candidates' programs: compile them again,
    # untimed, so that the timed rounds run compiled programs only.
    for name in list(candidates)[:-1]:
      timing.seconds_of(candidates[name])
    measured = timing.interleaved_no_warmup(candidates, rounds) if rounds else {}
    row: dict[str, Any] = {"runs": size, "steps": steps, "devices": jax.device_count(),
                           "one_by_one_runs_measured": len(sample)}
    for name in candidates:
      seconds = measured.get(name) or [first_seconds[name]]
      row[name] = {
          **timing.Timing.of(seconds).to_dict(),
          "run_steps_per_second": run_steps[name] / timing.Timing.of(seconds).median,
          "first_call_seconds": first_seconds[name],
          "first_call_run_steps_per_second": run_steps[name] / first_seconds[name],
      }
    for batching in batchings:
      row[f"{batching}_speedup"] = (
          row[batching]["run_steps_per_second"] / row["one_by_one"]["run_steps_per_second"]
      )
    rows.append(row)
  return rows
