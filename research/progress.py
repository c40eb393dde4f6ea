"""What a command prints while it trains: one line per finished program.

The progress bar over every program's steps (with its ETA) is drawn by
:func:`research.experiment.train_pending` on stderr; above it, on stdout,
each program that finishes and has its rows written gets one line
(:func:`program_line`), so that a log of a long grid (``2> /dev/null``)
reads as a list of what was done, how fast and how well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def program_line(number: int, total: int, keys: Mapping[str, Any],
                 runs: Sequence[Mapping[str, Any]], seconds: float) -> str:
  """One line for a finished program: its runs, its time, their mean final test accuracy.

  Args:
    number: the program's number among the command's ``total`` programs (from 1).
    total: how many programs the command trains.
    keys: a study part's columns (``{"depth": 4}``), empty for ``compare``.
    runs: the program's ``runs.csv`` rows.
    seconds: the program's wall time, compilation included.

  Examples:
    >>> rows = [{"name": "relu", "learning_rate": 0.1, "diverged": False, "test_accuracy": 0.9},
    ...         {"name": "necro_relu", "learning_rate": 0.01, "diverged": False,
    ...          "test_accuracy": 0.95},
    ...         {"name": "necro_relu", "learning_rate": 0.1, "diverged": True,
    ...          "test_accuracy": 0.2}]
    >>> program_line(3, 12, {}, rows, 41.23)
    'program 3/12 done: 3 runs (relu, necro_relu; lr 0.01-0.1) in 41.2 s, mean final test accuracy 92.5%, 1 diverged'
    >>> program_line(1, 2, {"depth": 4}, rows[:1], 2.0)
    'program 1/2 (depth=4) done: 1 run (relu; lr 0.1) in 2.0 s, mean final test accuracy 90.0%, 0 diverged'
  """
  part = ", ".join(f"{name}={value}" for name, value in keys.items())
  names = ", ".join(dict.fromkeys(str(row["name"]) for row in runs))
  rates = sorted({float(row["learning_rate"]) for row in runs})
  rate = f"{rates[0]:g}" if len(rates) == 1 else f"{rates[0]:g}-{rates[-1]:g}"
  diverged = sum(bool(row["diverged"]) for row in runs)
  return (f"program {number}/{total}{f' ({part})' if part else ''} done:"
          f" {len(runs)} run{'s' if len(runs) != 1 else ''} ({names}; lr {rate})"
          f" in {seconds:.1f} s, {_final_score(runs)}, {diverged} diverged")


def _final_score(runs: Sequence[Mapping[str, Any]]) -> str:
  """The mean final test accuracy of the runs that did not diverge (test loss for regression)."""
  healthy = [row for row in runs if not row["diverged"]]
  for name, show in (("test_accuracy", lambda mean: f"{100 * mean:.1f}%"),
                     ("test_loss", lambda mean: f"{mean:.4g}")):
    values = [float(row[name]) for row in healthy if row.get(name) is not None]
    if values:
      return f"mean final {name.replace('_', ' ')} {show(sum(values) / len(values))}"
  return "no run without divergence"
