"""How much faster a vmapped, sharded grid is than training its runs one by one.

Trains the same runs (the default comparison's MNIST-1D MLP, ReLU, one seed
each) twice in one process: as one grid, one compiled program over a "runs"
axis sharded over every device, and one run at a time through the same engine.
Each is timed twice: first with compilation (the one-by-one loop compiles once
and reuses the program), then again with everything compiled. Prints the ratios.

    python benchmarks/grid_speedup.py                  # 16 runs, 6000 steps, all CPU cores
    python benchmarks/grid_speedup.py --runs 256       # on a GPU
    python benchmarks/grid_speedup.py --cpu-devices 1  # one CPU device: vmap alone
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", type=int, default=16)
  parser.add_argument("--steps", type=int, default=6000)
  parser.add_argument("--cpu-devices", type=int, default=0, help="0: one per core")
  parser.add_argument("--skip-one-by-one", action="store_true", help="time the grid only")
  args = parser.parse_args()
  if args.cpu_devices:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.cpu_devices}"
  from research import devices

  devices.use_every_cpu_core()
  import jax

  from research import data, grid, train
  from research.config import Config

  config = Config(activations=("relu",), seeds=args.runs, steps=args.steps)
  dataset = data.load(config.dataset)
  (this_grid,) = grid.expand(config)
  device = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
  print(f"{args.runs} runs x {args.steps} steps of {config.model} {config.width}x{config.depth} on {device}")

  def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started

  def one_by_one():
    return [train.train_grid(config, dataset, this_grid, [run]) for run in this_grid.runs]

  together, grid_cold = timed(lambda: train.train_grid(config, dataset, this_grid))
  _, grid_warm = timed(lambda: train.train_grid(config, dataset, this_grid))
  print(f"grid (one program):  {grid_cold:8.2f} s with compilation, {grid_warm:8.2f} s compiled")
  if args.skip_one_by_one:
    return
  alone, single_cold = timed(one_by_one)
  _, single_warm = timed(one_by_one)
  print(f"one run at a time:   {single_cold:8.2f} s with compilation, {single_warm:8.2f} s compiled")
  print(f"speedup:             {single_cold / grid_cold:8.2f} x with compilation, {single_warm / grid_warm:8.2f} x compiled")
  difference = max(
      abs(a.runs[0]["test_accuracy"] - t["test_accuracy"]) for a, t in zip(alone, together.runs)
  )
  # Batched and single matmuls round differently; thousands of Adam steps
  # amplify that into run-to-run differences of the size seeds give.
  print(f"largest test-accuracy difference between the two: {difference:.3f}")

if __name__ == "__main__":
  main()
