"""Spreading the runs of a grid over every device: GPUs, TPU cores, CPU cores.

A grid's state has a leading "runs" axis. It is sharded over a one-axis
:class:`jax.sharding.Mesh` of all devices, the data replicated, so each device
trains its share of the runs and the same code uses one GPU, eight, a TPU slice,
or the devices of several processes (:mod:`research.distributed`), of which
process 0 alone writes results. A run count that does
not divide the device count is padded with copies of the last run, whose
results are dropped.

On a CPU, one process sees one device, and one small run uses one core. The
command line therefore asks XLA for one CPU device per core
(:func:`use_every_cpu_core`), so a grid trains on all cores at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from collections.abc import Callable
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

  The folder is ``$SURROGATE_COMPILATION_CACHE`` if set, else
  ``~/.cache/surrogate-activations/jax`` (under ``$XDG_CACHE_HOME`` if set).
  ``off`` turns the cache off, also one set through JAX's own
  ``JAX_COMPILATION_CACHE_DIR``: a cold measurement stays cold.
  """
  setting = os.environ.get("SURROGATE_COMPILATION_CACHE", "")
  if setting == "off":
    jax.config.update("jax_enable_compilation_cache", False)
    return
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  folder = setting or os.path.join(base, "surrogate-activations", "jax")
  jax.config.update("jax_enable_compilation_cache", True)
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


def cpu_model() -> str:
  """The CPU's model name, with its family and model numbers where Linux gives them.

  A virtual machine's name can be generic ("AMD EPYC" on two generations whose
  XLA kernels, hence numbers, differ); the family and model tell them apart.
  """
  fields = {}
  with contextlib.suppress(OSError):
    with open("/proc/cpuinfo", encoding="utf-8") as file:
      for line in file:
        name, _, value = line.partition(":")
        if not line.strip():
          break  # the first processor's fields are enough
        fields.setdefault(name.strip(), value.strip())
  cpu = fields.get("model name") or platform.processor() or platform.machine()
  if "cpu family" in fields and "model" in fields:
    cpu += f" family {fields['cpu family']} model {fields['model']}"
  return cpu


def machine_description() -> str:
  """The CPU model and the devices JAX uses, for summaries and benchmarks.

  Numbers differ from one CPU model to another (the same machine reproduces
  them bit for bit), so every result is quoted with this line.
  """
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  device = jax.devices()[0]
  kind = device.device_kind if device.platform != "cpu" else "CPU"
  return (
      f"{cpu_model()}, {cores} core(s); {jax.device_count()} {device.platform} device(s)"
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
  return jax.tree.map(lambda leaf: place(leaf, runs_sharding(mesh)), tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a full copy of each leaf on every device of the mesh."""
  return jax.tree.map(lambda leaf: place(leaf, replicated_sharding(mesh)), tree)


def place(leaf: Any, sharding: NamedSharding) -> Any:
  """``leaf`` (the same value on every process) as one array laid out by ``sharding``.

  :func:`jax.device_put` reaches this process's devices only; over several
  processes each builds its own pieces of the global array from its copy.
  """
  if sharding.is_fully_addressable:
    return jax.device_put(leaf, sharding)

  def from_host(value: Any) -> jax.Array:
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

  return on_key_data(leaf, from_host)


def is_random_key(leaf: Any) -> bool:
  """Whether ``leaf`` is a typed random key array (it has no NumPy dtype).

  Examples:
    >>> is_random_key(jax.random.key(0)), is_random_key(np.zeros(2))
    (True, False)
  """
  return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def on_key_data(leaf: Any, function: Callable[[Any], Any]) -> Any:
  """``function(leaf)``; for a random key, applied to its raw data, the result a key again.

  Examples:
    >>> key = on_key_data(jax.random.key(3), np.asarray)
    >>> is_random_key(key), bool((jax.random.key_data(key) == jax.random.key_data(jax.random.key(3))).all())
    (True, True)
  """
  if not is_random_key(leaf):
    return function(leaf)
  data = function(jax.random.key_data(leaf))
  return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))


def to_host(tree: Any) -> Any:
  """Every leaf as a NumPy array, gathered from all processes if need be.

  In a job of several processes every process must call it at the same
  point: it is a collective.
  """
  if jax.process_count() > 1:
    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.tree.map(np.asarray, jax.device_get(tree))


def key_or_array_to_host(leaf: Any) -> Any:
  """A leaf on the host: a NumPy array, or a random key array on this process's first device.

  Random keys have no NumPy dtype, so their data travels; a leaf split over
  several processes is gathered (:func:`to_host`).
  """
  return on_key_data(leaf, to_host)


def check_same_runs(run_ids: list[str]) -> None:
  """Raises a one-line ``ValueError`` where the processes of a job would train different runs.

  Each run id covers its settings, code and data, so processes started with
  other flags, code or data files are named before anything trains (they
  would otherwise wait for each other forever or mix their runs).
  """
  if jax.process_count() == 1:
    return
  digest = hashlib.sha256("\n".join(run_ids).encode()).digest()
  every = np.asarray(multihost_utils.process_allgather(np.frombuffer(digest, np.uint8)))
  every = every.reshape(jax.process_count(), -1)  # one digest per process
  others = [number for number, row in enumerate(every) if not np.array_equal(row, every[0])]
  if others:
    raise ValueError(
        f"process(es) {', '.join(map(str, others))} would train other runs than process 0: start"
        " every process with the same command, code and data files.")


def process_zero_choice(chosen: set[str], candidates: list[str]) -> set[str]:
  """Process 0's ``chosen`` (a subset of ``candidates``, the same list everywhere), on every process.

  The finished runs of a resumed folder, say: only process 0 reads it.

  Examples:
    >>> sorted(process_zero_choice({"b"}, ["a", "b"]))
    ['b']
  """
  if jax.process_count() == 1:
    return set(chosen)
  mask = np.array([candidate in chosen for candidate in candidates], np.int32)
  mask = np.asarray(multihost_utils.broadcast_one_to_all(mask))
  return {candidate for candidate, taken in zip(candidates, mask) if taken}
