"""The options of ``python -m research bench``: a frozen dataclass for tyro."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """What ``python -m research bench`` measures, and how long it may take."""

  quick: bool = False  # a CPU-sized run (a few minutes): fewer rounds, shorter grids and PyTorch reference
  out: str = ""  # output folder for bench.json and bench.md; empty means results/bench-<timestamp>
  write_benchmarks_md: bool = False  # also regenerate BENCHMARKS.md at the repository root
  torch: bool = True  # run the PyTorch reference when torch is installed (the bench extra)
  command: bool = True  # time the whole `compare` command in a fresh process (full runs only)
