"""Interleaved repetitions: every timing of a benchmark comes from here.

The machine's speed drifts (other processes, frequency scaling), so the
candidates of one comparison are timed in turn, round after round, in one
process: ``A B C A B C ...``. Each is reported as the median over the rounds
with its spread (fastest, slowest), and a ratio is the median of the per-round
ratios, so a drift that slows one round slows both sides of its ratio.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds per call over the rounds: median and spread.

  Examples:
    >>> Timing.of([0.3, 0.1, 0.2])
    Timing(median=0.2, fastest=0.1, slowest=0.3, rounds=3)
  """

  median: float
  fastest: float
  slowest: float
  rounds: int

  @classmethod
  def of(cls, seconds: list[float]) -> Timing:
    if not seconds:
      raise ValueError("A timing needs at least one measured round.")
    return cls(statistics.median(seconds), min(seconds), max(seconds), len(seconds))

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
  """The median of the per-round ratios ``numerator[i] / denominator[i]``.

  Examples:
    >>> median_ratio([2.0, 3.0, 4.0], [1.0, 1.0, 2.0])
    2.0
  """
  if len(numerator) != len(denominator) or not numerator:
    raise ValueError("Per-round ratios need two equally long, non-empty lists of rounds.")
  return statistics.median(a / b for a, b in zip(numerator, denominator))


def seconds_of(function: Callable[[], Any]) -> float:
  """Wall seconds of one call, its JAX results waited for."""
  started = time.perf_counter()
  jax.block_until_ready(function())
  return time.perf_counter() - started


def interleaved(
    candidates: Mapping[str, Callable[[], Any]], rounds: int, *, calls_per_round: int = 1
) -> dict[str, list[float]]:
  """Seconds per call of each candidate, timed in turn for ``rounds`` rounds.

  Each candidate is called once first (compilation, caches) and not timed.
  Within a round each candidate runs ``calls_per_round`` times back to back and
  its time is divided by that number.

  Examples:
    >>> times = interleaved({"a": lambda: 1, "b": lambda: 2}, rounds=3)
    >>> sorted(times), len(times["a"])
    (['a', 'b'], 3)
  """
  if rounds < 1 or calls_per_round < 1:
    raise ValueError(f"rounds and calls_per_round must be >= 1, got {rounds}, {calls_per_round}.")
  for function in candidates.values():
    jax.block_until_ready(function())
  return interleaved_no_warmup(candidates, rounds, calls_per_round=calls_per_round)


def interleaved_no_warmup(
    candidates: Mapping[str, Callable[[], Any]], rounds: int, *, calls_per_round: int = 1
) -> dict[str, list[float]]:
  """:func:`interleaved` for candidates already called once (compiled, warm)."""
  if rounds < 1 or calls_per_round < 1:
    raise ValueError(f"rounds and calls_per_round must be >= 1, got {rounds}, {calls_per_round}.")
  measured: dict[str, list[float]] = {name: [] for name in candidates}
  for _ in range(rounds):
    for name, function in candidates.items():
      started = time.perf_counter()
      for _ in range(calls_per_round):
        result = function()
      jax.block_until_ready(result)
      measured[name].append((time.perf_counter() - started) / calls_per_round)
  return measured


def paired(
    baseline: Callable[[], Any], candidates: Mapping[str, Callable[[], Any]], rounds: int, *,
    calls_per_round: int = 1,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
  """Each candidate timed beside the baseline, ``A B B A``, round after round.

  Many candidates make a round long, and the machine's speed drifts within
  it; timing the baseline again beside each candidate keeps each ratio's two
  sides seconds apart. A call right after a call of the same program runs
  warmer than one after another program (measured: ``jax.nn.relu`` against
  itself read 0.95 without it), so every timing follows one untimed call of
  the same program: both sides are timed warm. Returns the candidates'
  seconds per call (the mean of its two) and their per-round ratios to the
  baseline timed with them.

  Examples:
    >>> seconds, ratios = paired(lambda: 1, {"a": lambda: 2}, rounds=2)
    >>> len(seconds["a"]), len(ratios["a"])
    (2, 2)
  """
  if rounds < 1 or calls_per_round < 1:
    raise ValueError(f"rounds and calls_per_round must be >= 1, got {rounds}, {calls_per_round}.")
  jax.block_until_ready(baseline())
  for function in candidates.values():
    jax.block_until_ready(function())

  def timed(function: Callable[[], Any]) -> float:
    jax.block_until_ready(function())  # untimed: the timed calls run warm
    started = time.perf_counter()
    for _ in range(calls_per_round):
      result = function()
    jax.block_until_ready(result)
    return (time.perf_counter() - started) / calls_per_round

  seconds: dict[str, list[float]] = {name: [] for name in candidates}
  ratios: dict[str, list[float]] = {name: [] for name in candidates}
  for _ in range(rounds):
    for name, function in candidates.items():
      base = timed(baseline)
      mine = timed(function) + timed(function)
      base += timed(baseline)
      seconds[name].append(mine / 2)
      ratios[name].append(mine / base)
  return seconds, ratios
