"""The project's performance targets, each with its reason, checked against a bench result.

A surrogate activation must cost nothing against ReLU, and a sweep must use
the machine: each target below puts a number on one of the two. A target is
met or not with its measured value; none is a timed assertion in the tests
(times depend on load). Targets that need a GPU say so when the result holds
no GPU row.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import activations
from research.bench import activation_cost

STEP_TIME = "every ReLU-forward surrogate with a mask-like backward: MLP step time <= 1.02x relu's"
BATCH_STEP = ("every ReLU-forward surrogate whose backward reads the whole batch (revival_relu):"
              " MLP step time <= 1.02x relu's")
BORROWED_STEP = ("every SUGAR surrogate whose backward needs exp or erf: MLP step time <= 1.02x that"
                 " of the activation whose derivative it borrows")
# The true activation whose derivative each SUGAR backward computes (B-SiLU's needs one sigmoid, as SiLU's).
BORROWED_DERIVATIVE = {"sugar_bsilu": "silu", "sugar_elu": "elu", "sugar_selu": "selu",
                       "sugar_gelu": "gelu", "sugar_silu": "silu", "sugar_softplus": "softplus"}
TEMPORARY_MEMORY = ("every ReLU-forward surrogate's temporary memory <= relu's, + at most 1 B per"
                    " unit and layer")
NECRO_RESIDUAL = "NecroReLU residual <= 1 byte per element"
AGAINST_PYTORCH = "default compare >= 6x faster than the PyTorch reference"
AGAINST_BATCHED_PYTORCH = "default compare command >= 3x faster than the batched-by-seed PyTorch reference"
MATMUL_FRACTION = ">= 50% of the measured matmul throughput while training"
WHOLE_COMMAND = "whole default compare command <= 10 s (cold compilation cache)"
CPU_GRID = ">= 1.5x one-after-another throughput, 16 runs, CPU"
GPU_GRID = ">= 150x one-after-another throughput, 256 runs, one GPU"
RESNET_STEP = ("the engine's ResNet-20 training step (batch 128, CPU) at least as fast as PyTorch"
               " eager's on the same cores")
MEMORY_ESTIMATE = ("pre-compilation memory estimate within 25% of XLA's memory_analysis (MLP, CNN,"
                   " ResNet-20 grids)")

REASONS = {
    STEP_TIME: "its forward pass is relu's, so it should train as fast; 2% allows for timing noise",
    BATCH_STEP: ("the stable surrogate must cost what relu costs; its backward asks whether each"
                 " unit is dead on the whole batch, one reduction per layer that XLA:CPU does not"
                 " fuse into the elementwise work: XLA's count of the bytes it moves says what that"
                 " pass costs"),
    BORROWED_STEP: ("an exp or erf per element cannot cost what a mask costs on a CPU, but it should"
                    " cost no more than in the true activation; 2% allows for timing noise"),
    TEMPORARY_MEMORY: ("it saves a mask, as relu does; memory does not depend on load, so no slack"
                       " beyond the one flag per unit that a rule reading the batch needs"
                       " (revival_relu: is this unit dead on the whole batch?)"),
    NECRO_RESIDUAL: "its backward pass needs only the sign of each input: a one-byte mask, as relu's",
    AGAINST_PYTORCH: "the same comparison written as a PyTorch user would, runs one after another",
    AGAINST_BATCHED_PYTORCH: ("the strongest PyTorch user: each activation's seeds as one model"
                              " (stacked weights, torch.bmm, one Adam), timed against everything"
                              " the user waits for"),
    MATMUL_FRACTION: "the distance to the machine's physical limit, its own matmul measured in the same run",
    WHOLE_COMMAND: "the first thing a user runs, from a fresh process: it should take seconds",
    CPU_GRID: "runs trained together must use the cores better than one after another",
    GPU_GRID: "a grid of small runs is what fills a GPU",
    RESNET_STEP: ("a deep model must train at least as fast as in the framework its users know;"
                  " the bench's ResNet-20 section gives each framework's time by kind of kernel"),
    MEMORY_ESTIMATE: ("a grid that cannot fit is refused before anything is compiled, from this"
                      " estimate: too low and XLA aborts after minutes, too high and a grid that"
                      " fits is refused"),
}


@dataclasses.dataclass(frozen=True)
class Target:
  """One target: what it asks, what was measured, and whether it holds."""

  name: str  # what is asked, in words
  measured: str  # the value, with units
  met: bool | None  # None: not measurable here, or no target set yet
  target_set: bool = True  # False: measured and reported, no threshold asked yet
  reason: str = ""  # why the project asks it

  @property
  def verdict(self) -> str:
    if not self.target_set:
      return "measured (no target yet)"
    return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def _target(name: str, measured: str, met: bool | None) -> Target:
  """One of the project's targets (a key of :data:`REASONS`), with its reason."""
  return Target(name, measured, met, reason=REASONS[name])


def _borrowed_step(costs: dict[str, Any], surrogates: list[str]) -> list[Target]:
  """Each SUGAR surrogate's step against its true activation's, both timed in the same rounds."""
  pairs = {name: BORROWED_DERIVATIVE[name] for name in surrogates
           if name in BORROWED_DERIVATIVE and BORROWED_DERIVATIVE[name] in costs}
  if not pairs:
    return []
  ratios = {name: costs[name]["step"]["ratio"] / costs[true]["step"]["ratio"]
            for name, true in pairs.items()}
  worst = max(ratios, key=ratios.get)
  return [_target(BORROWED_STEP, f"worst {worst}: {ratios[worst]:.3f}x {pairs[worst]}'s",
                  ratios[worst] <= 1.02)]


def _worst_step(target: str, costs: dict[str, Any], names: list[str]) -> Target:
  """``target`` held by the slowest step of ``names`` against relu's, with XLA's count beside it."""
  worst = max(names, key=lambda name: costs[name]["step"]["ratio"])
  step = costs[worst]["step"]["ratio"]
  return _target(target, f"worst {worst}: {step:.3f}x" + _work(costs, names), step <= 1.02)


def _work(costs: dict[str, Any], names: list[str]) -> str:
  """The most XLA counts any of ``names``' compiled steps doing, against relu's (load-free)."""
  if not all("bytes_accessed_ratio" in costs[name] for name in names):
    return ""
  flops = max(names, key=lambda name: costs[name]["flops_ratio"])
  moved = max(names, key=lambda name: costs[name]["bytes_accessed_ratio"])
  return (f"; XLA's count of the compiled step: FLOPs at most {costs[flops]['flops_ratio']:.4f}x"
          f" relu's ({flops}), bytes moved at most {costs[moved]['bytes_accessed_ratio']:.4f}x"
          f" ({moved})")


def check(result: dict[str, Any]) -> list[Target]:
  """Every target against ``result`` (the bench.json content)."""
  targets = []
  costs = result.get("activations") or {}
  surrogates = [name for name in activation_cost.relu_forward_surrogates() if name in costs]
  if surrogates:
    batch = [name for name in surrogates
             if activation_cost.reads_the_batch(activations.get(name))]
    masks = [name for name in surrogates if name not in BORROWED_DERIVATIVE and name not in batch]
    worst_temp = max(surrogates, key=lambda name: costs[name]["temp_ratio"])
    temp = costs[worst_temp]["temp_ratio"]
    extra = costs[worst_temp].get("temp_extra_per_unit", 0.0 if temp <= 1.0 else math.inf)
    targets += [_worst_step(target, costs, names)
                for target, names in ((STEP_TIME, masks), (BATCH_STEP, batch)) if names]
    targets += _borrowed_step(costs, surrogates)
    targets.append(_target(TEMPORARY_MEMORY, f"worst {worst_temp}: {temp:.4f}x"
                           f" ({max(extra, 0):.2f} B per unit and layer)", extra <= 1.0))
  if "necro_relu" in costs:
    value = costs["necro_relu"]["residual_bytes_per_element"]
    targets.append(_target(NECRO_RESIDUAL, f"{value:g} B", value <= 1))
  job, torch = result.get("main_job"), result.get("torch") or {}
  if job and torch.get("compare"):
    ratio = torch["compare"]["full_job_seconds"] / job["wall_seconds"]
    quick = " (PyTorch scaled from a shortened run)" if torch["compare"]["scaled"] else ""
    targets.append(_target(AGAINST_PYTORCH, f"{ratio:.2f}x{quick}", ratio >= 6))
  if job and torch.get("compare_batched"):
    targets.append(_against_batched(result, torch["compare_batched"]))
  if job:
    fraction = job["matmul_fraction"]
    targets.append(_target(MATMUL_FRACTION, f"{100 * fraction:.1f}%", fraction >= 0.5))
  command = result.get("command")
  if command:
    measured = f"{command['median']:.1f} s (load {result['load_average'][0]:.2f})"
    targets.append(_target(WHOLE_COMMAND, measured, command["median"] <= 10))
  for row in result.get("grids") or []:
    if row["runs"] == 16 and result["platform"] == "cpu":
      best = max(("map", "vmap"), key=lambda b: row.get(f"{b}_speedup", 0))
      speedup = row[f"{best}_speedup"]
      targets.append(_target(CPU_GRID, f"{speedup:.2f}x ({best})", speedup >= 1.5))
  targets += _resnet_step(result)
  targets += _memory_estimate(result)
  gpu_rows = [row for row in result.get("grids") or [] if row["runs"] == 256]
  if result["platform"] == "gpu" and gpu_rows:
    speedup = gpu_rows[0]["vmap_speedup"]
    targets.append(_target(GPU_GRID, f"{speedup:.1f}x", speedup >= 150))
  else:
    targets.append(_target(GPU_GRID, "no GPU in this run", None))
  return targets


def _against_batched(result: dict[str, Any], batched: dict[str, Any]) -> Target:
  """The batched PyTorch job against the whole command where timed, else the in-process job.

  Examples:
    >>> result = {"main_job": {"wall_seconds": 9.0}, "command": {"median": 12.0}}
    >>> _against_batched(result, {"full_job_seconds": 36.0, "scaled": False}).measured
    '3.00x (PyTorch 36.0 s, the whole command, cold cache, 12.0 s)'
  """
  command = result.get("command")
  ours, what = ((command["median"], "the whole command, cold cache,") if command else
                (result["main_job"]["wall_seconds"], "the job in process, no command timed"))
  ratio = batched["full_job_seconds"] / ours
  quick = ", PyTorch scaled from a shortened run" if batched["scaled"] else ""
  measured = f"{ratio:.2f}x (PyTorch {batched['full_job_seconds']:.1f} s, {what} {ours:.1f} s{quick})"
  return _target(AGAINST_BATCHED_PYTORCH, measured, ratio >= 3)


def _resnet_step(result: dict[str, Any]) -> list[Target]:
  """The engine's ResNet-20 step against PyTorch eager's, and where JAX's time goes if slower.

  Examples:
    >>> record = {"shape": {"batch": 128}, "ratio": {"step": 0.5},
    ...           "jax": {"step": {"median": 0.4}}, "torch": {"step": {"median": 0.2}},
    ...           "jax_kernels": {"categories": {"matmul": {"share": 0.3},
    ...                                          "slices and pads": {"share": 0.45}}}}
    >>> target = _resnet_step({"resnet_step": record})[0]
    >>> target.verdict, target.measured
    ('NOT met', '0.50x (PyTorch 200 ms, JAX 400 ms; JAX kernels: slices and pads 45%, matmul 30%)')
  """
  record = result.get("resnet_step") or {}
  if "ratio" not in record:
    return []
  jax_ms, torch_ms = (1e3 * record[side]["step"]["median"] for side in ("jax", "torch"))
  ratio = record["ratio"]["step"]
  measured = f"{ratio:.2f}x (PyTorch {torch_ms:.0f} ms, JAX {jax_ms:.0f} ms"
  categories = (record.get("jax_kernels") or {}).get("categories", {})
  if ratio < 1 and categories:  # not met: what the step's kernels spend their time on
    shares = sorted(categories.items(), key=lambda item: item[1]["share"], reverse=True)[:3]
    measured += "; JAX kernels: " + ", ".join(f"{name} {100 * row['share']:.0f}%"
                                              for name, row in shares)
  return [_target(RESNET_STEP, measured + ")", ratio >= 1)]


def _memory_estimate(result: dict[str, Any]) -> list[Target]:
  """The estimate of each grid's program against XLA's count: the ratio farthest from 1.

  Examples:
    >>> rows = {"mlp": {"ratio": 0.98, "within": True}, "resnet20": {"ratio": 0.9, "within": True}}
    >>> _memory_estimate({"memory_estimate": rows})[0].measured
    'estimate / XLA: mlp 0.98, resnet20 0.90'
  """
  rows = result.get("memory_estimate") or {}
  if not rows:
    return []
  measured = ", ".join(f"{name} {row['ratio']:.2f}" for name, row in rows.items())
  return [_target(MEMORY_ESTIMATE, f"estimate / XLA: {measured}",
                  all(row["within"] for row in rows.values()))]
