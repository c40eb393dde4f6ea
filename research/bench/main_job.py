"""The main job end to end: the default ``compare``, where its time goes.

``research.compare(research.Config(), out=..., quiet=True)`` (15 runs x 6000
steps) in this process, its compiled programs cleared first so it compiles as
a fresh process would (the on-disk compilation cache is off unless the caller
turned it on). The wall time is split into:

* **data**: loading MNIST-1D (its in-process cache cleared first);
* **compilation**: JAX's own compile-time events during the job (tracing,
  lowering to MLIR, XLA compilation);
* **training** and **evaluation**: after the job, each grid's compiled
  training chunk and evaluation are timed again in turn, and scaled by the
  number of chunks and evaluations the job ran;
* **other**: the rest (initialisation, transfers, writing results, summary,
  plots).

Training FLOPs are counted from the model, ``2 * batch * (40*100 + 100*100 +
100*10) * 3`` per step (forward, and two matmuls per layer backward), times
steps and runs, and divided by the training time; the fraction of this
machine's matmul throughput (a 2048 x 2048 float32 matmul, XLA's and NumPy's
BLAS timed here, the faster taken) is the distance to the physical limit.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import monitoring

import research
from research import data, devices, grid, programs, train
from research.bench import kernels, timing
from research.config import Config

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def model_flops_per_step(config: Config, input_size: int = 40, num_outputs: int = 10) -> int:
  """Matmul FLOPs of one training step of one MLP run: forward and backward.

  Examples:
    >>> model_flops_per_step(Config())
    9000000
  """
  sizes = [input_size] + [config.width] * config.depth + [num_outputs]
  multiply_adds = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
  return 2 * config.batch_size * multiply_adds * 3


def matmul_flops_per_second(size: int = 2048, rounds: int = 10) -> dict[str, Any]:
  """This machine's float32 matmul throughput, ``size`` squared, on all cores.

  Measured with XLA's matmul (what JAX runs) and NumPy's BLAS in turn; the
  faster is the machine's throughput, the physical limit the job is held to.
  """
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.random.normal(key_a, (size, size), jnp.float32)
  b = jax.random.normal(key_b, (size, size), jnp.float32)
  host_a, host_b = np.asarray(a), np.asarray(b)
  matmul = jax.jit(jnp.matmul)
  measured = timing.interleaved(
      {"jax": lambda: matmul(a, b), "numpy": lambda: host_a @ host_b}, rounds)
  flops = 2 * size**3
  result: dict[str, Any] = {"size": size}
  for name, seconds in measured.items():
    summary = timing.Timing.of(seconds)
    result[name] = {**summary.to_dict(), "flops_per_second": flops / summary.median}
  result["flops_per_second"] = max(result[name]["flops_per_second"] for name in measured)
  return result


class _CompileClock:
  """Sums JAX's compile-time events while installed, and the wall time they cover.

  Programs may compile side by side in threads, so the events' sum can
  exceed the wall time spent compiling; the union of their intervals cannot.
  """

  def __init__(self) -> None:
    self.reset()
    self.active = False

  def reset(self) -> None:
    self.seconds = {event: 0.0 for event in COMPILE_EVENTS}
    self.intervals: list[tuple[float, float]] = []

  def __call__(self, event: str, duration: float, **_: Any) -> None:
    if self.active and event in self.seconds:
      self.seconds[event] += duration
      now = time.perf_counter()
      self.intervals.append((now - duration, now))

  def wall_seconds(self) -> float:
    """The length of the union of the events' intervals.

    Examples:
      >>> clock = _CompileClock()
      >>> clock.intervals = [(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]
      >>> clock.wall_seconds()
      4.0
    """
    total, end = 0.0, float("-inf")
    for start, stop in sorted(self.intervals):
      if stop > end:
        total += stop - max(start, end)
        end = stop
    return total


_CLOCK = _CompileClock()
monitoring.register_event_duration_secs_listener(_CLOCK)


def _time_programs(config: Config, dataset: data.Dataset, rounds: int) -> dict[str, float]:
  """Seconds of one training chunk and one evaluation of each program the job trained."""
  mesh = devices.runs_mesh()
  arrays = devices.replicate(train.device_arrays(dataset), mesh)
  grids = grid.expand(config)
  groups = [grids] if programs.grids_share_a_program(config) else [[g] for g in grids]
  candidates: dict[str, Callable[[], Any]] = {}
  first_chunk_hlo: Callable[[], str] | None = None
  for number, group in enumerate(groups):
    runs = [run for this_grid in group for run in this_grid.runs]
    compiled = programs.compile_grid(train.Program.of(config, dataset, group), mesh)
    inputs = programs.sharded_inputs(runs, group, mesh)
    state = compiled.init(inputs)
    chunk = min(config.eval_every, config.steps)
    candidates[f"{number} chunk"] = (
        lambda p=compiled, s=state, i=inputs: p.train_chunk(s, i, arrays, jnp.asarray(0), chunk))
    if first_chunk_hlo is None:
      first_chunk_hlo = (lambda p=compiled, s=state, i=inputs: p.train_chunk.lower(
          s, i, arrays, jnp.asarray(0), chunk).compile().as_text())
    candidates[f"{number} evaluate"] = (
        lambda p=compiled, s=state, i=inputs: p.evaluate(s, i, arrays, jnp.asarray(0)))
  measured = timing.interleaved(candidates, rounds)
  chunks = -(-config.steps // config.eval_every)
  evaluations = chunks + 1
  training = sum(timing.Timing.of(v).median for k, v in measured.items() if k.endswith(" chunk"))
  evaluating = sum(timing.Timing.of(v).median for k, v in measured.items() if k.endswith(" evaluate"))
  # Where the first program's chunk spends its time, kernel by kernel (after the timed rounds).
  chunk_kernels = kernels.profile(candidates["0 chunk"], first_chunk_hlo(), calls=2)
  return {"training": training * chunks, "evaluation": evaluating * evaluations,
          "programs": len(groups), "chunk_kernels": chunk_kernels,
          "chunk_seconds_per_program": training / len(groups),
          "evaluate_seconds_per_program": evaluating / len(groups)}


def measure(config: Config | None = None, *, rounds: int = 5, matmul_rounds: int = 10) -> dict[str, Any]:
  """The job's wall time and its split, its FLOP rate and the matmul throughput."""
  config = Config() if config is None else config
  data._load_cached.cache_clear()
  programs.clear_compiled()
  started = time.perf_counter()
  dataset = data.load(config.dataset, seed=config.data_seed)
  data_seconds = time.perf_counter() - started
  _CLOCK.reset()
  _CLOCK.active = True
  try:
    with tempfile.TemporaryDirectory() as folder:
      job_started = time.perf_counter()
      comparison = research.compare(config, out=folder, quiet=True)
      job_seconds = time.perf_counter() - job_started
  finally:
    _CLOCK.active = False
  compile_seconds = _CLOCK.wall_seconds()
  timed = _time_programs(config, dataset, rounds)
  runs = len(comparison.runs)
  first_seed = comparison.runs[comparison.runs["seed"] == 0]
  flops = model_flops_per_step(config, dataset.input_shape[0], dataset.num_outputs) * config.steps * runs
  matmul = matmul_flops_per_second(rounds=matmul_rounds)
  sizes = [dataset.input_shape[0]] + [config.width] * config.depth + [dataset.num_outputs]
  shapes_alone = kernels.matmuls_alone(kernels.mlp_matmul_shapes(sizes, config.batch_size))
  total = data_seconds + job_seconds
  other = total - data_seconds - compile_seconds - timed["training"] - timed["evaluation"]
  return {
      "runs": runs,
      "steps": config.steps,
      "wall_seconds": total,
      "split_seconds": {
          "data": data_seconds,
          "compilation": compile_seconds,
          "training": timed["training"],
          "evaluation": timed["evaluation"],
          "other": other,
      },
      "compile_events_seconds": dict(_CLOCK.seconds),  # summed over threads
      "programs": timed["programs"],
      "chunk_seconds_per_program": timed["chunk_seconds_per_program"],
      "evaluate_seconds_per_program": timed["evaluate_seconds_per_program"],
      "training_flops": flops,
      "training_flops_per_second": flops / timed["training"],
      "matmul": matmul,
      "matmul_fraction": flops / timed["training"] / matmul["flops_per_second"],
      # What stands between the job and the matmul limit: the chunk's kernels by kind, and
      # the job's own matmul shapes timed alone.
      "chunk_kernels": timed["chunk_kernels"], "cores": devices.cpu_cores(),
      "matmul_shapes_alone": shapes_alone,
      "test_accuracy": {name: float(value) for name, value in zip(first_seed["name"], first_seed["test_accuracy"])},
  }
