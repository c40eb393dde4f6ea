"""``python -m research bench``: speed and memory, measured in one process.

Writes ``bench.json`` and ``bench.md`` to ``--out`` (default
``results/bench-<timestamp>``); ``--write-benchmarks-md`` also regenerates
``BENCHMARKS.md`` at the repository root. ``--quick`` is a CPU-sized run of a
few minutes at most. One module per measurement:

* :mod:`research.bench.activation_cost`: each activation against
  ``jax.nn.relu`` (time, compiled memory, saved residuals);
* :mod:`research.bench.grid_throughput`: a grid as one program vs one run at a time;
* :mod:`research.bench.main_job`: the default ``compare`` end to end, its time
  split, and its fraction of the machine's matmul throughput;
* :mod:`research.bench.torch_reference`: the same in PyTorch (optional);
* :mod:`research.bench.resnet_step`: the CIFAR ResNet-20 training step against
  PyTorch eager (:mod:`research.bench.torch_resnet`), its forward/backward
  split and its convolutions one by one;
* :mod:`research.bench.targets` and :mod:`research.bench.report`: the project's
  targets, met or not, and the markdown.

The run itself is :func:`research.bench.suite.run`, its options
:class:`research.bench.config.BenchConfig`. Every time comes from
:mod:`research.bench.timing`: interleaved rounds, medians and spreads, ratios
per round.
"""

from research.bench.config import BenchConfig


def run(config: BenchConfig):
  """Measures everything, writes bench.json and bench.md, returns the result."""
  from research.bench import suite  # JAX and the engine, only when a bench runs

  return suite.run(config)


__all__ = ["BenchConfig", "run"]
