"""Spreading the runs of a grid over every device: GPUs, TPU cores, CPU cores.

A grid's state has a leading "runs" axis. It is sharded over a one-axis
:class:`jax.sharding.Mesh` of all devices, the data replicated, so each device
trains its share of the runs and the same code uses one GPU, eight, a TPU slice,
or several hosts after ``jax.distributed.initialize()``. A run count that does
not divide the device count is padded with copies of the last run, whose
results are dropped.

On a CPU, one process sees one device, and one small run uses one core. The
command line therefore asks XLA for one CPU device per core
(:func:`use_every_cpu_core`), so a grid trains on all cores at once.
"""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

_CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"
# XLA:CPU aborts the process when one device's thread reaches a collective
# more than 40 s after another (its default); on a machine busy with other
# work that happens to a long grid. An hour still ends a real deadlock.
_CPU_COLLECTIVE_TIMEOUT_FLAG = "--xla_cpu_collective_call_terminate_timeout_seconds"
CPU_COLLECTIVE_TIMEOUT_SECONDS = 3600


def use_every_cpu_core() -> None:
  """Asks XLA for one CPU device per core; call before JAX starts.

  Also lets a CPU device wait for the others at a collective for up to
  :data:`CPU_COLLECTIVE_TIMEOUT_SECONDS` on a busy machine. Does nothing if
  the device count is already set (the user decides) or if JAX has already
  created its backends. GPUs and TPUs are unaffected.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if _CPU_DEVICES_FLAG in flags:
    return
  added = f"{_CPU_DEVICES_FLAG}={cpu_cores()}"
  if _CPU_COLLECTIVE_TIMEOUT_FLAG not in flags:
    added += f" {_CPU_COLLECTIVE_TIMEOUT_FLAG}={CPU_COLLECTIVE_TIMEOUT_SECONDS}"
  os.environ["XLA_FLAGS"] = f"{flags} {added}".strip()


def cpu_cores() -> int:
  """The CPU cores this process may run on (its affinity where the platform has one)."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, cores or 1)


def use_compilation_cache() -> None:
  """Keeps compiled programs on disk, so a rerun of a study skips compilation.

  The folder is ``$SURROGATE_COMPILATION_CACHE`` if set (``off`` disables it),
  else ``~/.cache/surrogate-activations/jax`` (under ``$XDG_CACHE_HOME`` if set).
  """
  setting = os.environ.get("SURROGATE_COMPILATION_CACHE", "")
  if setting == "off":
    return
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  folder = setting or os.path.join(base, "surrogate-activations", "jax")
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def resolved_batching(batching: str) -> str:
  """``batching`` with ``"auto"`` chosen for this machine: ``map`` on CPU, else ``vmap``.

  With ``map`` each device trains its runs one after another inside the
  compiled program, so a run's numbers are bit-identical to training it alone,
  whatever the grid size or device count; on a CPU this is also faster. With
  ``vmap`` the runs are batched, which is what fills a GPU or TPU, but batched
  matmuls round differently from single ones.

  Examples:
    >>> resolved_batching("vmap")
    'vmap'
  """
  if batching != "auto":
    return batching
  return "map" if jax.default_backend() == "cpu" else "vmap"


def machine_description() -> str:
  """The CPU model and the devices JAX uses, for summaries and benchmarks.

  Numbers differ from one CPU model to another (the same machine reproduces
  them bit for bit), so every result is quoted with this line.
  """
  cpu = platform.processor() or platform.machine()
  with contextlib.suppress(OSError):
    with open("/proc/cpuinfo", encoding="utf-8") as file:
      for line in file:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  device = jax.devices()[0]
  kind = device.device_kind if device.platform != "cpu" else "CPU"
  return (
      f"{cpu}, {cores} core(s); {jax.device_count()} {device.platform} device(s)"
      f" ({kind}); jax {jax.__version__}"
  )


def writes_results() -> bool:
  """Whether this process writes results: only process 0 of a multi-host job."""
  return jax.process_index() == 0


def runs_mesh() -> Mesh:
  """A one-axis mesh named "runs" over every device of every process."""
  return Mesh(np.array(jax.devices()), ("runs",))


def padded_size(num_runs: int, num_devices: int) -> int:
  """The smallest multiple of ``num_devices`` that holds ``num_runs``.

  Examples:
    >>> padded_size(5, 4)
    8
  """
  return -(-num_runs // num_devices) * num_devices


def runs_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (runs) axis split over the mesh, other axes whole."""
  return NamedSharding(mesh, PartitionSpec("runs"))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """A full copy on every device of the mesh."""
  return NamedSharding(mesh, PartitionSpec())


def shard_runs(tree: Any, mesh: Mesh) -> Any:
  """Places each leaf with its leading (runs) axis split over the mesh."""
  return jax.device_put(tree, runs_sharding(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a full copy of each leaf on every device of the mesh."""
  return jax.device_put(tree, replicated_sharding(mesh))


def to_host(tree: Any) -> Any:
  """Every leaf as a NumPy array, gathered from all processes if need be."""
  if jax.process_count() > 1:
    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.tree.map(np.asarray, jax.device_get(tree))
