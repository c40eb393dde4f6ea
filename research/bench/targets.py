"""The issue's performance targets, each checked against a bench result.

A target is met or not with its measured value; none is a timed assertion in
the tests (times depend on load). Targets that need a GPU say so when the
result holds no GPU row.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from research.bench import activation_cost


@dataclasses.dataclass(frozen=True)
class Target:
  """One target: what it asks, what was measured, and whether it holds."""

  name: str  # what is asked, in words
  measured: str  # the value, with units
  met: bool | None  # None: not measurable here, or no target set yet
  target_set: bool = True  # False: measured and reported, no threshold asked yet

  @property
  def verdict(self) -> str:
    if not self.target_set:
      return "measured (no target yet)"
    return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def check(result: dict[str, Any]) -> list[Target]:
  """Every target against ``result`` (the bench.json content)."""
  targets = []
  costs = result.get("activations") or {}
  surrogates = [name for name in activation_cost.relu_forward_surrogates() if name in costs]
  if surrogates:
    worst_step = max(surrogates, key=lambda name: costs[name]["step"]["ratio"])
    worst_temp = max(surrogates, key=lambda name: costs[name]["temp_ratio"])
    targets.append(Target(
        "every ReLU-forward surrogate's MLP step time <= 1.02x relu's",
        f"worst {worst_step}: {costs[worst_step]['step']['ratio']:.3f}x",
        costs[worst_step]["step"]["ratio"] <= 1.02))
    targets.append(Target(
        "every ReLU-forward surrogate's temporary memory <= 1.00x relu's",
        f"worst {worst_temp}: {costs[worst_temp]['temp_ratio']:.3f}x",
        costs[worst_temp]["temp_ratio"] <= 1.0))
  if "necro_relu" in costs:
    value = costs["necro_relu"]["residual_bytes_per_element"]
    targets.append(Target("NecroReLU residual <= 1 byte per element", f"{value:g} B", value <= 1))
  job, torch = result.get("main_job"), result.get("torch") or {}
  if job and torch.get("compare"):
    ratio = torch["compare"]["full_job_seconds"] / job["wall_seconds"]
    quick = " (PyTorch scaled from a shortened run)" if torch["compare"]["scaled"] else ""
    targets.append(Target("default compare >= 6x faster than the PyTorch reference",
                          f"{ratio:.2f}x{quick}", ratio >= 6))
  if job:
    fraction = job["matmul_fraction"]
    targets.append(Target(">= 50% of the measured matmul throughput while training",
                          f"{100 * fraction:.1f}%", fraction >= 0.5))
  command = result.get("command")
  if command:
    targets.append(Target("whole default compare command <= 10 s (cold compilation cache)",
                          f"{command['median']:.1f} s (load {result['load_average'][0]:.2f})",
                          command["median"] <= 10))
  for row in result.get("grids") or []:
    if row["runs"] == 16 and result["platform"] == "cpu":
      best = max(("map", "vmap"), key=lambda b: row.get(f"{b}_speedup", 0))
      targets.append(Target(">= 1.5x one-after-another throughput, 16 runs, CPU",
                            f"{row[f'{best}_speedup']:.2f}x ({best})", row[f"{best}_speedup"] >= 1.5))
  targets += _resnet_step(result)
  gpu_rows = [row for row in result.get("grids") or [] if row["runs"] == 256]
  if result["platform"] == "gpu" and gpu_rows:
    speedup = gpu_rows[0]["vmap_speedup"]
    targets.append(Target(">= 150x one-after-another throughput, 256 runs, one GPU",
                          f"{speedup:.1f}x", speedup >= 150))
  else:
    targets.append(Target(">= 150x one-after-another throughput, 256 runs, one GPU",
                          "no GPU in this run", None))
  return targets


def _resnet_step(result: dict[str, Any]) -> list[Target]:
  """The ResNet-20 step against PyTorch eager: measured, no target set by the issue yet."""
  record = result.get("resnet_step") or {}
  if "ratio" not in record:
    return []
  jax_ms, torch_ms = (1e3 * record[side]["step"]["median"] for side in ("jax", "torch"))
  return [Target(f"ResNet-20 training step (batch {record['shape']['batch']}) against PyTorch eager",
                 f"PyTorch / JAX {record['ratio']['step']:.2f}x ({torch_ms:.0f} ms vs "
                 f"{jax_ms:.0f} ms)", None, target_set=False)]
