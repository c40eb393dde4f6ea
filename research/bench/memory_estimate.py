"""The memory estimate against XLA: an MLP, a CNN and a ResNet-20 grid, compiled, never trained.

Before anything is built, :func:`research.memory.estimate` sizes a config's
largest program; here that program is compiled as the engine compiles it and
the estimate's :attr:`~research.memory.Estimate.program` (one device's share)
is set against XLA's ``memory_analysis()`` of it (:mod:`research.memory_check`:
arguments, unread data, outputs and temporaries, less aliased, of the larger of
the training chunk and the evaluation). Compilation only: about a minute on
2 CPU cores, most of it the ResNet-20's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from research import data, memory_check
from research.config import Config

# The default compare, its grid with the cnn1d model, and a handful of ResNet-20
# runs at the depth study's network and data, batch 128.
GRIDS: dict[str, Config] = {
    "mlp": Config(),
    "cnn1d": Config(model="cnn1d"),
    "resnet20": Config(model="resnet20(width=8)", dataset="digits", seeds=2, batch_size=128,
                       steps=600, eval_every=200),
}


def describe(config: Config) -> str:
  """``resnet20(width=8) on digits, 6 runs, batch 128``: the grid in words.

  Examples:
    >>> describe(Config())
    'mlp on mnist1d, 15 runs, batch 100'
  """
  runs = config.seeds * len(config.activations) * len(config.learning_rates)
  return f"{config.model} on {config.dataset}, {runs} runs, batch {config.batch_size}"


def measure(grids: Mapping[str, Config] = GRIDS) -> dict[str, dict[str, Any]]:
  """Each grid's estimate beside XLA's count, per device, in MiB, with the ratio.

  Returns, by grid name: :func:`research.memory_check.record`'s numbers,
  ``grid`` (in words), ``within`` (the ratio between 0.8 and 1.25) and
  ``seconds`` (estimate and compilation).
  """
  found = {}
  for name, config in grids.items():
    started = time.perf_counter()
    comparison = memory_check.compare(config, data.load(config.dataset, seed=config.data_seed))
    found[name] = {
        "grid": describe(config),
        **memory_check.record(comparison),
        "within": memory_check.within(comparison.ratio),
        "seconds": round(time.perf_counter() - started, 1),
    }
  return found
