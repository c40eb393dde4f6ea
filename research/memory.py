"""Will a grid fit? Its largest program's memory, estimated before any run is built.

A grid trains all its runs together, in one program whose state has a leading
runs axis (:mod:`research.programs`), so ``--seeds 5000 --width 4096`` asks
for terabytes at once: XLA then aborts, hangs, or the list of runs alone fills
the host. :func:`check_fits` refuses such a config in one line, with the
estimate, the memory available and what to reduce, before the runs are
listed and before anything is compiled.

The estimate (:func:`estimate`) adds up what the program holds, counted from
the config and one abstract trace of a run (``jax.make_jaxpr`` of building
its model and calling it: nothing is allocated or compiled):

* **state**: per run, the parameters, the optimizer's state (Adam: 2 more
  copies of the parameters; momentum: 1; SGD: none) and the model's other
  state (BatchNorm's averages), in float32, times the runs.
* **working copies**: twice the state (a chunk of steps returns a new state
  beside its input; at initialisation every run is built alone, then
  stacked on the host), plus the gradients and updates of the runs computed.
* **activations**: what the forward pass computes from one example and XLA
  writes (not the slices and pads fused into a convolution's patches, nor
  views), a max-pool's gradient, and under ``map`` what a switch over the
  grids' activations saves beyond the first's; times the largest batch with
  gradients (training, or the evaluation's up to 1,000 examples), times the
  runs a device computes at once (``map``: one; ``vmap``: all of its runs).
* **data**: the training set twice (for sampling, and in evaluation
  batches) and the test set, on every device.
* on a CPU, **result rows** held in Python, :data:`ROW_BYTES` each, and XLA's
  **runtime** and compilations, :data:`RUNTIME_BYTES`.

:attr:`Estimate.program` is one device's share without the host's parts, what
XLA's ``memory_analysis()`` counts for the compiled program
(:mod:`research.memory_check`): 0.98 of it for the default compare, 1.04 for
its ``cnn1d`` grid, 0.90 for a ResNet-20 grid (2-core CPU). The whole
machine's peak is more (compilation: 0.5 GiB to 1 GiB). On a CPU the devices
share the machine's memory (``/proc/meminfo``, a container's cgroup limit); on
a GPU or TPU one device's share is compared with its free memory. A config
refused here could not have run; one that fits by a small margin may still fail.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import NamedTuple

import jax
import numpy as np

from research import devices, grid, memory_trace, model_spec, programs, train
from research.config import Config
from research.data import Dataset

GIB = 2**30
ROW_BYTES = 1024  # a result row in Python: a dict of ~18 values (measured 1.1 kB)
# XLA's runtime and the compilation of a grid's programs on a CPU: measured
# 0.3 GiB for a small MLP to 1 GiB for a VGG-11.
RUNTIME_BYTES = GIB // 2


class Estimate(NamedTuple):
  """What the largest program of a config holds, in bytes of the memory it is compared with.

  On a CPU that is the machine's memory, shared by every device; on a GPU or
  TPU, one device's.
  """

  runs: int  # in the largest program (a CPU's program holds every grid of the config)
  runs_per_device: int
  parameters: int  # per run
  optimizer: str
  state: int  # the runs' parameters, optimizer state and model state
  working: int  # copies of the state while initialising and training, gradients and updates
  activations: int
  data: int
  rows: int  # result rows held in Python (on a CPU only)
  runtime: int  # XLA's runtime and compilations (on a CPU only)
  # One device's largest compiled program, as XLA's memory_analysis() counts
  # it (research.memory_check): its runs' state in and out, one run's
  # gradients and activations at a time (map; all of its runs under vmap), the data.
  program: int = 0

  @property
  def total(self) -> int:
    """The sum of the parts, in bytes."""
    return self.state + self.working + self.activations + self.data + self.rows + self.runtime


def gib(size: float) -> str:
  """Bytes in GiB (TiB above 1,024 GiB), two significant digits below 10.

  Examples:
    >>> gib(310 * 2**30), gib(1.5 * 2**30), gib(3 * 2**20), gib(5000 * 2**30)
    ('310 GiB', '1.5 GiB', '0.0029 GiB', '4.9 TiB')
  """
  value, unit = size / GIB, "GiB"
  if value >= 1024:
    value, unit = value / 1024, "TiB"
  if value >= 10:
    return f"{value:,.0f} {unit}"
  return f"{value:.2g} {unit}"


def _one_seed(config: Config) -> tuple[grid.Grid, ...]:
  """The grids of ``config`` at one seed and one rate: their sweep points, validated."""
  return grid.expand(dataclasses.replace(config, seeds=1, learning_rates=config.learning_rates[:1]))


def run_counts(config: Config) -> tuple[int, ...]:
  """The runs of each grid of ``config``, counted without listing them.

  A grid's sweep points (validated by expanding one seed at one rate), times
  the seeds, times the learning rates.

  Examples:
    >>> run_counts(Config(activations=("relu", "necro_relu(negative_slope=[0.05, 0.1])"),
    ...                   seeds=2_000_000_000, learning_rates=(0.01, 0.1)))
    (4000000000, 8000000000)
  """
  return tuple(len(g.runs) * config.seeds * len(config.learning_rates) for g in _one_seed(config))


def _data_bytes(dataset: Dataset) -> int:
  """The dataset as :func:`research.train.device_arrays` holds it on each device."""

  def padded(x: np.ndarray, y: np.ndarray) -> int:
    count = len(x)
    size = min(train.EVAL_BATCH, count)
    rows = -(-count // size) * size
    return rows * (x[:1].nbytes + y[:1].nbytes + 4)  # inputs, targets, a weight per example

  sampled = dataset.x_train.nbytes + dataset.y_train.nbytes
  return sampled + padded(dataset.x_train, dataset.y_train) + padded(dataset.x_test, dataset.y_test)


def _activation_bytes(config: Config, dataset: Dataset, model: memory_trace.RunSizes,
                      one_seed: tuple[grid.Grid, ...], shared: bool, in_flight: int) -> int:
  """What ``in_flight`` runs save for their backward pass at the largest batch with gradients."""
  evaluation_batch = min(train.EVAL_BATCH, len(dataset.x_train))
  examples = max(config.batch_size, evaluation_batch)
  itemsize = 2 if config.dtype == "bfloat16" else 4
  example_bytes = model.example_bytes + (
      model.units * memory_trace.switch_bytes(one_seed) if shared else 0)
  return in_flight * examples * example_bytes // 4 * itemsize


def estimate(config: Config, dataset: Dataset, *, num_devices: int | None = None,
             platform: str | None = None) -> Estimate:
  """The memory of ``config``'s largest program on this machine's devices (or those given).

  Args:
    config: the experiment; its grids are counted, never listed.
    dataset: its data, for the input shape and the arrays held on the devices.
    num_devices: the devices the runs are spread over; default all of JAX's.
    platform: ``"cpu"`` (every device in the machine's memory, the sum is
      returned) or another (one device's share); default JAX's.

  Examples:
    >>> from research import data
    >>> xor = data.load("xor(num_train=100, num_test=100)")
    >>> small = estimate(Config(dataset="xor", model="mlp", width=3, depth=1, optimizer="sgd",
    ...                         activations=("relu",), seeds=1), xor, num_devices=1, platform="cpu")
    >>> small.parameters  # 2*3+3 + 3*2+2
    17
    >>> small.state  # the parameters; SGD keeps no state
    68
    >>> estimate(Config(dataset="xor", seeds=5000, width=4096), xor).total > 2**40  # a terabyte
    True
  """
  one_seed = _one_seed(config)
  counts = tuple(len(g.runs) * config.seeds * len(config.learning_rates) for g in one_seed)
  num_devices = num_devices or jax.device_count()
  platform = platform or jax.devices()[0].platform
  batching = devices.resolved_batching(config.batching)
  shared = programs.grids_share_a_program(config)
  runs = sum(counts) if shared else max(counts)
  per_device = -(-runs // num_devices)
  in_flight = per_device if batching == "vmap" else 1  # runs a device computes at once
  model = memory_trace.run_sizes(config, dataset, one_seed[0])
  parameter_bytes = 4 * model.parameters
  activations = _activation_bytes(config, dataset, model, one_seed, shared, in_flight)
  # One device's program: its runs' state in and out, gradients and updates, activations, data.
  program = (2 * per_device * model.state_bytes + in_flight * 2 * parameter_bytes + activations
             + _data_bytes(dataset))
  steps = train.resolved_steps(config, dataset)
  evaluations = -(-steps // config.eval_every) + 1
  if platform == "cpu":  # every device in the machine's memory
    held = per_device * num_devices * model.state_bytes
    return Estimate(
        runs, per_device, model.parameters, config.optimizer,
        state=held,
        working=2 * held + num_devices * in_flight * 2 * parameter_bytes,
        activations=num_devices * activations,
        data=(num_devices + 1) * _data_bytes(dataset),  # one copy per device, and NumPy's
        rows=sum(counts) * evaluations * (1 + model.layers) * ROW_BYTES,
        runtime=RUNTIME_BYTES, program=program,
    )
  held = per_device * model.state_bytes
  return Estimate(
      runs, per_device, model.parameters, config.optimizer,
      state=held,
      # The first device builds every run before they are stacked and spread out.
      working=max(2 * held, runs * model.state_bytes) + in_flight * 2 * parameter_bytes,
      activations=activations, data=_data_bytes(dataset), rows=0, runtime=0, program=program,
  )


def _cgroup_room() -> int | None:
  """What a container's memory limit leaves (limit - usage + reclaimable cache), if it sets one."""
  for limit, usage, stat, cache in (
      ("memory.max", "memory.current", "memory.stat", "inactive_file"),  # cgroup v2
      ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat",
       "total_inactive_file"),  # cgroup v1
  ):
    folder = pathlib.Path("/sys/fs/cgroup")
    try:
      text = (folder / limit).read_text().strip()
      if text == "max" or int(text) >= 2**60:  # no limit
        return None
      reclaimable = 0
      for line in (folder / stat).read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == cache:
          reclaimable = int(value)
      return int(text) - int((folder / usage).read_text()) + reclaimable
    except (OSError, ValueError):
      continue
  return None


def available_memory() -> tuple[int, str] | None:
  """The bytes a program may still take, and whose: ``(bytes, "this machine")``; None if unknown.

  On a CPU, ``MemAvailable`` of ``/proc/meminfo`` (less if a container's
  cgroup limit leaves less); on a GPU or TPU the first device's limit less
  what is in use (``memory_stats()``). None where neither can be read (macOS,
  a backend without memory statistics): then nothing is refused.
  """
  device = jax.local_devices()[0]
  if device.platform != "cpu":
    try:
      stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001  (a backend without statistics)
      return None
    if "bytes_limit" not in stats:
      return None
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0), f"each {device.device_kind}"
  try:
    with open("/proc/meminfo", encoding="utf-8") as file:
      lines = dict(line.split(":", 1) for line in file if ":" in line)
    free = int(lines["MemAvailable"].split()[0]) * 1024
  except (OSError, KeyError, ValueError):
    return None
  room = _cgroup_room()
  return (free if room is None else min(free, room)), "this machine"


def _model_words(config: Config, parameters: int) -> str:
  """``an mlp of width 4096 and depth 2 (16,830,474 parameters)``."""
  model = model_spec.describe(config.model)
  if model in model_spec.SMALL_MODELS:
    model = f"{model} of width {config.width} and depth {config.depth}"
  return f"{model} ({parameters:,} parameters)"


def _advice(config: Config, dataset: Dataset, found: Estimate, room: int, name: str) -> str:
  """What to reduce: ``--seeds, --width or --batch-size``.

  The counts of runs only where one run of each grid would fit; the batch
  size where the training batch's activations weigh; ``--batching map``
  where it needs less.
  """
  flag = (lambda field: "--" + field.replace("_", "-")) if name == "compare" else (
      lambda field: field.replace("_", " "))
  advice = []
  one_run = dataclasses.replace(config, seeds=1, learning_rates=config.learning_rates[:1],
                                activations=config.activations[:1])
  if estimate(one_run, dataset).total <= room:
    advice += [flag("seeds")] if config.seeds > 1 else []
    advice += [flag("learning_rates")] if len(config.learning_rates) > 1 else []
    if programs.grids_share_a_program(config) and len(config.activations) > 1:
      advice.append(flag("activations"))  # one program holds every grid's runs
  small = model_spec.describe(config.model) in model_spec.SMALL_MODELS
  advice.append(flag("width") if small else f"the model ({flag('model')})")
  evaluation_batch = min(train.EVAL_BATCH, len(dataset.x_train))
  if found.activations > found.total / 4 and config.batch_size > evaluation_batch:
    advice.append(flag("batch_size"))
  if found.data > found.total / 4:
    advice.append(flag("dataset"))
  if devices.resolved_batching(config.batching) == "vmap":
    mapped = estimate(dataclasses.replace(config, batching="map"), dataset)
    if mapped.total < found.total * 0.9:
      advice.append(f"use {flag('batching')} map (about {gib(mapped.total)})")
  if len(advice) == 1:
    return advice[0]
  return ", ".join(advice[:-1]) + " or " + advice[-1]


def check_fits(config: Config, dataset: Dataset, *, name: str = "compare",
               available: tuple[int, str] | None = None) -> Estimate | None:
  """Refuses, in one ``ValueError``, a config whose largest program cannot fit in memory.

  Call it before the runs are listed (:func:`research.grid.expand`) or
  compiled: it counts them (:func:`run_counts`) and traces one run
  abstractly, in a fraction of a second (0.1 s for the default compare).

  Args:
    config: the experiment (one part of a study).
    dataset: its data.
    name: the command, for the message; ``compare``'s advice names its flags.
    available: ``(bytes, whose)``; default :func:`available_memory`. Nothing
      is refused when it is unknown.

  Returns:
    The estimate, when it fits; None when the model cannot be built (the
    model checks that follow say why).

  Examples:
    >>> from research import data
    >>> check_fits(Config(seeds=5000, width=4096), data.load("mnist1d"),
    ...            available=(21 * GIB, "this machine"))
    Traceback (most recent call last):
    ...
    ValueError: compare needs about 8.3 TiB for its largest program (15,000 runs of mlp of width
    4096 and depth 2 (16,990,218 parameters): 2.8 TiB parameters and adam state, 5.6 TiB working
    copies, ...), but this machine has 21 GiB available: reduce --seeds, --activations or --width.
  """
  try:
    found = estimate(config, dataset)
  except Exception:  # noqa: BLE001  (a model that does not fit its data: the model checks say how)
    return None
  available = available_memory() if available is None else available
  if available is None or found.total <= available[0]:
    return found
  room, whose = available
  parts = [f"{gib(found.state)} parameters and {found.optimizer} state",
           f"{gib(found.working)} working copies", f"{gib(found.activations)} activations",
           f"{gib(found.data)} data"]
  if found.rows:
    parts.append(f"{gib(found.rows)} result rows")
  if found.runtime:
    parts.append(f"{gib(found.runtime)} runtime")
  runs = f"{found.runs:,} runs"
  if found.runs_per_device != found.runs and whose != "this machine":
    runs += f", {found.runs_per_device:,} per device"
  raise ValueError(
      f"{name} needs about {gib(found.total)} for its largest program ({runs} of"
      f" {_model_words(config, found.parameters)}: {', '.join(parts)}), but {whose}"
      f" has {gib(room)} available: reduce {_advice(config, dataset, found, room, name)}."
  )
