"""The bench run: sizes for the platform, every measurement, the files written."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import jax
from jax.experimental.compilation_cache import compilation_cache

from research import atomic, data, devices
from research.bench import (
    activation_cost, grid_throughput, main_job, memory_estimate, report, resnet_step, targets,
    timing, torch_reference,
)
from research.bench.config import BenchConfig
from research.config import Config

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Sizes:
  """The sizes of one bench run, chosen from the platform and ``quick``."""

  mlp: activation_cost.MlpShape
  array_size: int  # elements of the forward + backward benchmark
  activation_rounds: int
  grid_sizes: tuple[int, ...]  # CPU: 64 at most, a 256-run grid takes minutes per call
  grid_steps: int
  grid_rounds: int
  job_rounds: int  # rounds of the chunk and evaluation timings
  torch_seeds: int
  torch_steps: int
  command_rounds: int  # fresh processes of the whole command; 0: none
  job: Config = Config()  # the main job: the default comparison
  activation_names: tuple[str, ...] | None = None  # None: every registered activation
  grid_batchings: tuple[str, ...] = ("vmap", "map")
  torch_compile: bool = True  # also time the MLP step under torch.compile
  resnet: resnet_step.ResnetShape | None = None  # the ResNet-20 step; None: not measured
  resnet_rounds: int = 5  # rounds of the ResNet-20 step and of its convolutions
  memory_grids: tuple[str, ...] = tuple(memory_estimate.GRIDS)  # estimate vs XLA (compiled only)

  @classmethod
  def of(cls, platform: str, quick: bool) -> Sizes:
    gpu = platform == "gpu"
    return cls(
        mlp=activation_cost.GPU_MLP if gpu else activation_cost.CPU_MLP,
        array_size=2**26 if gpu else (2**20 if quick else 2**22),
        activation_rounds=2 if quick else 9,
        grid_sizes=(1, 16, 256) if gpu else ((1, 16) if quick else (1, 16, 64)),
        grid_steps=250 if quick else 500,
        grid_rounds=1,
        job_rounds=3 if quick else 7,
        torch_seeds=1 if quick else 5,
        torch_steps=1000 if quick else 6000,
        command_rounds=0 if quick else 2,
        resnet=None if gpu else resnet_step.ResnetShape(),  # a CPU comparison: torch is CPU-only here
        resnet_rounds=2 if quick else 5,
    )


def versions() -> dict[str, str]:
  """jax, jaxlib, flax, optax (and torch when installed) versions."""
  names = ["jax", "jaxlib", "flax", "optax", "torch"]
  found = {}
  for name in names:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return found


def time_command(rounds: int) -> dict[str, Any]:
  """The whole default ``compare`` command in fresh processes, cold compilation cache."""
  seconds = []
  environment = {**os.environ, "SURROGATE_COMPILATION_CACHE": "off"}
  environment.pop("XLA_FLAGS", None)  # the command sets its own
  for _ in range(rounds):
    with tempfile.TemporaryDirectory() as folder:
      started = time.perf_counter()
      subprocess.run(
          [sys.executable, "-m", "research", "compare", "--out", folder, "--quiet"],
          cwd=REPOSITORY, env=environment, check=True, capture_output=True,
      )
      seconds.append(time.perf_counter() - started)
  return timing.Timing.of(seconds).to_dict()


@contextlib.contextmanager
def _without_compilation_cache() -> Iterator[None]:
  """JAX's on-disk compilation cache off inside: compile times are measured cold.

  ``python -m research`` turns it on for every command; a benchmark of
  compilation must not read programs a previous run left on disk. The
  setting is put back on the way out, for a caller in the same process.
  """
  enabled = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  compilation_cache.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", enabled)


def _say(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def run(config: BenchConfig, sizes: Sizes | None = None) -> dict[str, Any]:
  """Measures everything, writes bench.json and bench.md, returns the result.

  ``sizes`` defaults to :meth:`Sizes.of` this platform and ``config.quick``;
  tests pass tiny ones.
  """
  started = time.perf_counter()
  platform = jax.default_backend()
  platform = "gpu" if platform in ("gpu", "cuda", "rocm") else platform
  sizes = Sizes.of(platform, config.quick) if sizes is None else sizes
  out = pathlib.Path(config.out or f"results/bench-{datetime.datetime.now():%Y%m%d-%H%M%S}")
  out.mkdir(parents=True, exist_ok=True)
  with _without_compilation_cache():
    result = _measure(config, sizes, platform)
  result["bench_seconds"] = time.perf_counter() - started
  result["targets"] = [dataclasses.asdict(t) | {"verdict": t.verdict} for t in targets.check(result)]
  text = report.markdown(result)
  atomic.write_text_atomic(out / "bench.json", json.dumps(result, indent=1) + "\n")
  atomic.write_text_atomic(out / "bench.md", text)
  if config.write_benchmarks_md:
    atomic.write_text_atomic(REPOSITORY / "BENCHMARKS.md", text)
  _say(f"wrote {out}/bench.json and bench.md")
  return result


def _measure(config: BenchConfig, sizes: Sizes, platform: str) -> dict[str, Any]:
  """Every measurement of :func:`run`, in the order the bench prints them."""
  result: dict[str, Any] = {
      "machine": devices.machine_description(),
      "platform": platform,
      "device_count": jax.device_count(),
      "versions": versions(),
      "dtype": sizes.mlp.dtype,
      "quick": config.quick,
      "load_average": list(os.getloadavg()),
  }
  _say(f"bench on {result['machine']}, load {result['load_average']}")
  _say("the default compare, end to end")
  result["main_job"] = main_job.measure(sizes.job, rounds=sizes.job_rounds)
  if config.command and sizes.command_rounds:
    _say("the whole compare command, in fresh processes")
    result["command"] = time_command(sizes.command_rounds)
  _say("activations against jax.nn.relu")
  result["activation_settings"] = {"mlp": dataclasses.asdict(sizes.mlp), "array_size": sizes.array_size,
                                   "rounds": sizes.activation_rounds}
  result["activations"] = activation_cost.measure(
      sizes.mlp, sizes.array_size, sizes.activation_rounds, sizes.activation_names)
  _say("grids as one program vs one run at a time")
  result["grids"] = grid_throughput.measure(
      sizes.grid_sizes, sizes.grid_steps, sizes.grid_rounds, batchings=sizes.grid_batchings)
  result["torch"] = _torch(config, sizes, result)
  if sizes.resnet is not None:
    _say("the ResNet-20 training step against PyTorch eager, and its convolutions")
    result["resnet_step"] = resnet_step.measure(sizes.resnet, sizes.resnet_rounds, torch=config.torch)
  if sizes.memory_grids:
    _say("the memory estimate against XLA's count of each grid's compiled program")
    result["memory_estimate"] = memory_estimate.measure(
        {name: memory_estimate.GRIDS[name] for name in sizes.memory_grids})
  return result


def _torch(config: BenchConfig, sizes: Sizes, result: dict[str, Any]) -> dict[str, Any]:
  missing = torch_reference.available() if config.torch else "turned off (--no-torch)"
  if missing:
    _say(f"PyTorch reference skipped: {missing}")
    return {"skipped": missing}
  _say("the PyTorch reference")
  job = result["main_job"]
  dataset = data.load(sizes.job.dataset)
  settings = {"batch_size": sizes.job.batch_size, "eval_every": sizes.job.eval_every}
  compare = _scaled(torch_reference.compare(
      dataset, seeds=sizes.torch_seeds, steps=sizes.torch_steps, **settings), job)
  # All the job's seeds even when shortened: batching them is what is measured.
  batched = _scaled(torch_reference.compare_batched(
      dataset, seeds=sizes.job.seeds, steps=sizes.torch_steps, **settings), job)
  batched["max_accuracy_difference"] = _accuracy_difference(compare, batched)
  steps = torch_reference.mlp_steps(sizes.mlp.depth, sizes.mlp.width, sizes.mlp.batch,
                                    sizes.activation_rounds, compile=sizes.torch_compile)
  return {"compare": compare, "compare_batched": batched, "mlp_steps": steps}


def _scaled(compare: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
  """``compare`` with ``full_job_seconds``: its time scaled to the job's run-steps."""
  scale = (job["runs"] * job["steps"]) / (compare["runs"] * compare["steps"])
  return {**compare, "scaled": scale != 1, "full_job_seconds": compare["seconds"] * scale}


def _accuracy_difference(one: dict[str, Any], other: dict[str, Any]) -> float | None:
  """The largest test-accuracy difference of a seed both trained as long; None if none did.

  Examples:
    >>> one = {"steps": 10, "test_accuracy": {"relu": [0.5]}}
    >>> _accuracy_difference(one, {"steps": 10, "test_accuracy": {"relu": [0.75, 0.5]}})
    0.25
  """
  if one["steps"] != other["steps"]:
    return None
  return max((abs(a - b) for name, values in one["test_accuracy"].items()
              for a, b in zip(values, other["test_accuracy"][name])), default=None)
