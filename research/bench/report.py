"""bench.json as markdown: one table per measurement, then the targets.

``BENCHMARKS.md`` at the repository root is this text for a full CPU run,
written by ``python -m research bench --write-benchmarks-md``; never edit it
by hand.
"""

from __future__ import annotations

from typing import Any

from research.bench import activation_cost, targets


def _seconds(timing: dict[str, Any], scale: float = 1e3, unit: str = "ms") -> str:
  return (f"{timing['median'] * scale:.3g} {unit} ({timing['fastest'] * scale:.3g}-"
          f"{timing['slowest'] * scale:.3g})")


def _table(header: list[str], rows: list[list[Any]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)


def _header(result: dict[str, Any]) -> str:
  versions = ", ".join(f"{name} {version}" for name, version in result["versions"].items())
  gpu = ("" if result["platform"] == "gpu" else
         "\n\nNo GPU was lent for this run: every GPU row and target is empty.")
  mode = "quick (`--quick`: shortened, see each table)" if result["quick"] else "full"
  return (
      f"Machine: {result['machine']}.\n\n"
      f"Versions: {versions}. Dtype: {result['dtype']}. Mode: {mode}. "
      f"Load average at the start: {' '.join(f'{x:.2f}' for x in result['load_average'])}. "
      f"Bench wall time: {result['bench_seconds']:.0f} s.{gpu}\n\n"
      "Every time is the median of interleaved rounds in one process, with the "
      "fastest and slowest round in brackets; a ratio is the median of the per-round ratios."
  )


def _activations(result: dict[str, Any]) -> str:
  costs = result["activations"]
  settings = result["activation_settings"]
  shape = settings["mlp"]
  rows = []
  for name, cost in costs.items():
    marker = " (ReLU forward)" if name in activation_cost.relu_forward_surrogates() else ""
    rows.append([
        f"`{name}`{marker}",
        _seconds(cost["forward_backward"]), f"{cost['forward_backward']['ratio']:.3f}",
        _seconds(cost["step"]), f"{cost['step']['ratio']:.3f}",
        f"{cost['temp_bytes'] / 2**20:.1f}", f"{cost['temp_ratio']:.3f}",
        f"{cost['footprint_ratio']:.3f}",
        _ratio(cost, "flops_ratio"), _ratio(cost, "bytes_accessed_ratio"),
        f"{cost['residual_bytes_per_element']:g}",
    ])
  return (
      "## Activations against `jax.nn.relu`\n\n"
      f"Forward + backward (`jax.vjp` and its pullback) on {settings['array_size']:,} elements; "
      f"an SGD step of an MLP of {shape['depth']} layers of width {shape['width']}, batch "
      f"{shape['batch']}, {shape['dtype']}; {settings['rounds']} interleaved rounds. Temporary "
      "memory is the compiled step's `memory_analysis().temp_size_in_bytes`; footprint adds "
      "arguments and outputs (the program's peak on any device). Residuals: bytes per input "
      "element the forward pass saves for the backward (`saved_residuals`; `jax.nn.relu`'s "
      "broadcast zeros are a constant XLA never stores and are not counted). FLOPs and bytes: "
      "XLA's cost analysis of the compiled step (`cost_analysis()`), what it computes and moves "
      "whatever the load, against `jax.nn.relu`'s step. GPU peak memory: "
      "empty (no GPU).\n\n"
      + _table(["activation", "fwd+bwd", "x relu", "MLP step", "x relu", "temp MiB", "x relu",
                "footprint x relu", "FLOPs x relu", "bytes x relu", "residual B/elt"], rows)
  )


def _ratio(cost: dict[str, Any], key: str) -> str:
  """A ratio to relu's to 4 decimals, empty in a record from before it was measured."""
  return f"{cost[key]:.4f}" if key in cost else ""


def _grids(result: dict[str, Any]) -> str:
  rows = []
  for row in result["grids"]:
    cells = [row["runs"], row["steps"]]
    for name in ("one_by_one", "vmap", "map"):
      if name in row:
        cells.append(f"{row[name]['run_steps_per_second']:,.0f} "
                     f"({row[name]['first_call_run_steps_per_second']:,.0f})")
      else:
        cells.append("")
    cells += [f"{row.get('vmap_speedup', float('nan')):.2f}x", f"{row.get('map_speedup', float('nan')):.2f}x",
              row["one_by_one_runs_measured"]]
    rows.append(cells)
  return (
      "## Grids: N runs as one program vs one after another\n\n"
      f"MNIST-1D MLP 40-100-100-10, ReLU, Adam, the engine's `train_grid` with evaluations every "
      f"250 steps, sharded over {result['device_count']} {result['platform']} device(s). Run-steps "
      "per second once compiled (in brackets: the first call, compilation included). One run at a "
      "time does not depend on N: it is measured on the first runs of the grid (last column). "
      "On a CPU the largest grid is 64 runs (256 take minutes per call); "
      "the GPU rows (256 runs, target 150x) are empty when no GPU was lent.\n\n"
      + _table(["runs", "steps", "one by one", "vmap", "map", "vmap speedup", "map speedup",
                "runs timed one by one"], rows)
  )


def _main_job(result: dict[str, Any]) -> str:
  job = result["main_job"]
  split = job["split_seconds"]
  rows = [[part, f"{seconds:.2f}", f"{100 * seconds / job['wall_seconds']:.0f}%"]
          for part, seconds in split.items()]
  rows.append(["**total** (in process)", f"{job['wall_seconds']:.2f}", "100%"])
  events = job["compile_events_seconds"]
  text = (
      f"## The main job: default `compare` ({job['runs']} runs x {job['steps']} steps)\n\n"
      "`research.compare(research.Config(), quiet=True)` in the bench process, compiled programs "
      "cleared first, no on-disk compilation cache. Compilation: the wall time covered by JAX's "
      "compile-time events (tracing, lowering, XLA; programs compiled side by side count once). "
      "On a CPU the three activations train as one program (a switch over the activations, each "
      "run's numbers bit for bit those of its own activation's program). Training and evaluation: "
      "each program's compiled chunk of steps and its evaluation timed again in turn, times the "
      "chunks and evaluations the job ran. "
      "Data: loading MNIST-1D (read back from its disk cache when a previous process generated it).\n\n"
      + _table(["part", "seconds", "share"], rows)
      + "\n\nCompile events summed over threads: "
      + ", ".join(f"{name.rsplit('/', 1)[-1].removesuffix('_duration')} {seconds:.2f} s"
                  for name, seconds in events.items())
      + f". Programs: {job['programs']}; one training chunk of each: "
      f"{job['chunk_seconds_per_program']:.3f} s; one evaluation: "
      f"{job['evaluate_seconds_per_program']:.3f} s."
  )
  matmul = job["matmul"]
  text += (
      f"\n\nTraining FLOPs (counted from the model, 2 x batch x (40x100 + 100x100 + 100x10) x 3 "
      f"per step): {job['training_flops'] / 1e9:.0f} GFLOP in {split['training']:.2f} s = "
      f"{job['training_flops_per_second'] / 1e9:.1f} GFLOP/s. This machine's 2048x2048 float32 "
      f"matmul: {matmul['jax']['flops_per_second'] / 1e9:.1f} GFLOP/s with XLA, "
      f"{matmul['numpy']['flops_per_second'] / 1e9:.1f} GFLOP/s with NumPy's BLAS (medians); "
      f"the faster is the limit. Fraction: **{100 * job['matmul_fraction']:.1f}%** of the "
      "machine's matmul throughput."
  )
  text += matmul_explanation(job)
  command = result.get("command")
  if command:
    text += (
        f"\n\nThe whole command, `SURROGATE_COMPILATION_CACHE=off python -m research compare "
        f"--quiet` in a fresh process (imports included), {command['rounds']} run(s): "
        f"**{_seconds(command, 1, 's')}**."
    )
  return text


def _torch(result: dict[str, Any]) -> str:
  torch = result.get("torch") or {}
  if "skipped" in torch:
    return f"## PyTorch reference\n\nSkipped: {torch['skipped']}."
  compare = torch["compare"]
  job = result.get("main_job")
  scaled = (f" (shortened for --quick: {compare['seeds']} seed(s) x 3 activations x "
            f"{compare['steps']} steps, scaled to the JAX job's run-steps)") if compare["scaled"] else ""
  rows = [["default compare, one run after another", f"{compare['full_job_seconds']:.1f} s{scaled}",
           f"{job['wall_seconds']:.1f} s" if job else "",
           f"{compare['full_job_seconds'] / job['wall_seconds']:.2f}x" if job else ""]]
  batched = torch.get("compare_batched")
  if batched:
    rows.append(_batched_row(result, batched))
  steps = torch["mlp_steps"]
  relu_step = (result.get("activations") or {}).get(activation_cost.BASELINE, {}).get("step")
  for mode in ("eager", "compiled"):
    if mode in steps:
      rows.append([f"MLP step, {'`torch.compile`' if mode == 'compiled' else 'eager'}",
                   _seconds(steps[mode]), _seconds(relu_step) if relu_step else "",
                   f"{steps[mode]['median'] / relu_step['median']:.2f}x" if relu_step else ""])
    elif mode == "compiled":
      rows.append(["MLP step, `torch.compile`", steps.get("compile_error", "failed"), "", ""])
  return (
      "## PyTorch reference\n\n"
      f"torch {compare['version']} on {compare['threads']} thread(s): the default comparison written "
      "as a PyTorch user would (NecroReLU as a `torch.autograd.Function`, `nn.Sequential`, Adam, "
      "evaluation every 250 steps), and the MLP step of the activation table with ReLU. "
      + (_batched_text(batched) if batched else "")
      + "Ratio: PyTorch time / JAX time (above 1: JAX is faster).\n\n"
      + _table(["what", "PyTorch", "JAX", "PyTorch / JAX"], rows)
  )


def _batched_row(result: dict[str, Any], batched: dict[str, Any]) -> list[str]:
  """The batched-by-seed PyTorch job against the whole command where timed (as its target)."""
  command, job = result.get("command"), result.get("main_job")
  ours, what = ((command["median"], "whole command, cold cache") if command else
                (job["wall_seconds"], "in process") if job else (None, ""))
  scaled = (f" (shortened for --quick: {batched['seeds']} seeds x 3 activations x "
            f"{batched['steps']} steps, scaled)") if batched["scaled"] else ""
  return ["default compare, each activation's seeds as one model",
          f"{batched['full_job_seconds']:.1f} s{scaled}",
          f"{ours:.1f} s ({what})" if ours else "",
          f"{batched['full_job_seconds'] / ours:.2f}x" if ours else ""]


def _batched_text(batched: dict[str, Any]) -> str:
  """How the batched-by-seed version is written, and how far its accuracies are from one by one."""
  difference = batched.get("max_accuracy_difference")
  if difference is None:
    agreement = ""
  elif difference == 0:
    agreement = " Its test accuracies equal the one-by-one runs' on every seed both trained."
  else:
    agreement = (f" Its test accuracies differ from the one-by-one runs' by at most "
                 f"{100 * difference:.1f} points on a seed both trained (float32 rounding: the "
                 "fused Adam, and `bmm` against `mm` on several threads, round differently; "
                 f"{batched['steps']} steps amplify it).")
  return ("The strongest PyTorch user batches each activation's seeds into one model: each "
          "layer's weights stacked `[seeds, out, in]` and multiplied by `torch.baddbmm`, one fused "
          "Adam on the stacked tensors (elementwise: each slice gets its run's update), each seed "
          f"initialised, batched and evaluated as one by one.{agreement} Both evaluate as the "
          "engine does less its kernel and gradient-norm metrics, training accuracy and test "
          "loss: a loss and gradient pass over the training set in batches of 1000, dead-unit "
          "counts, test accuracy. ")


def matmul_explanation(job: dict[str, Any]) -> str:
  """Why training reaches the fraction of the matmul limit it does, from the job's profile.

  The fraction is the product of three measured factors: the matmuls' rate
  inside the chunk against one core's share of the limit, their share of the
  chunk's kernel time, and how much of the cores' wall time kernels fill.
  """
  profile = job.get("chunk_kernels")
  if not profile or "matmul" not in profile["categories"]:
    return ""
  limit, cores = job["matmul"]["flops_per_second"], job["cores"]
  matmul = profile["categories"]["matmul"]
  rate = matmul["flops_per_second"] / (limit / cores)
  busy = profile["kernel_seconds"] / (cores * profile["wall_seconds"])
  shares = ", ".join(f"{name} {100 * row['share']:.0f}%"
                     for name, row in sorted(profile["categories"].items(),
                                             key=lambda item: -item[1]["share"]))
  alone = ", ".join(f"{'x'.join(map(str, row['shape']))} {row['flops_per_second'] / 1e9:.0f}"
                    for row in job["matmul_shapes_alone"])
  best = max(row["flops_per_second"] for row in job["matmul_shapes_alone"])
  return (
      "\n\nWhat stands in the way, from XLA's trace of one training chunk (each kernel's events "
      "summed over XLA's threads, named by the optimized HLO): kernel time by kind: "
      f"{shares}. The matmuls run at {matmul['flops_per_second'] / 1e9:.1f} GFLOP/s per thread "
      f"inside the chunk, **{100 * rate:.0f}%** of one core's share of the limit "
      f"({limit / cores / 1e9:.1f} GFLOP/s); they are **{100 * matmul['share']:.0f}%** of the "
      "kernel time; kernel-seconds per wall-second of the traced calls and core: "
      f"**{100 * busy:.0f}%** "
      "(below 100%: cores idle between kernels, in the loop and dispatch; above: kernels "
      "overlap, an event on each thread that shares one): "
      f"{100 * rate:.0f}% x {100 * matmul['share']:.0f}% x {100 * busy:.0f}% = "
      f"{100 * rate * matmul['share'] * busy:.1f}% of the limit during the traced calls (the "
      f"trace slows them; without it, the job's fraction is {100 * job['matmul_fraction']:.1f}%)."
      " The job's own matmul shapes (rows x contracted x columns) jitted alone, on all cores, "
      f"GFLOP/s: {alone}; the fastest reaches {100 * best / limit:.0f}% of the 2048x2048 limit"
      + (": at these sizes a matmul is too small to reach the machine's rate, whatever surrounds it."
         if best < limit / 2 else
         ", so the shapes alone are not what stands in the way: the program around them is.")
  )


def _milliseconds(timing: dict[str, Any]) -> str:
  """``1464 ms (1190-2420)``: whole milliseconds from 100 ms up, else 3 significant digits."""
  def number(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}" if seconds >= 0.1 else f"{seconds * 1e3:.3g}"
  return f"{number(timing['median'])} ms ({number(timing['fastest'])}-{number(timing['slowest'])})"


_CONV_OP_NAMES = {"forward": "forward", "input_grad": "input gradient",
                  "kernel_grad": "kernel gradient"}


def _resnet_step_rows(record: dict[str, Any]) -> list[list[Any]]:
  torch = record["torch"]
  rows = []
  for part, label in (("step", "**whole step**"), ("forward_backward", "forward + backward"),
                      ("forward", "forward alone (training mode)")):
    share = "100%" if part == "step" else f"{100 * _share(record, part):.0f}%"
    cells = [label, _milliseconds(record["jax"][part]), share]
    if "skipped" not in torch:
      cells += [_milliseconds(torch[part]), f"{record['ratio'][part]:.2f}x"]
    rows.append(cells)
  return rows


def _share(record: dict[str, Any], part: str) -> float:
  split = record["split"]
  return split["forward"] + (split["backward"] if part == "forward_backward" else 0)


def _conv_rows(record: dict[str, Any]) -> list[list[Any]]:
  rows = []
  for row in record["convs"]:
    shape = (f"{record['shape']['batch']}x{row['size']}x{row['size']}x{row['channels']} "
             f"(x{row['count']})")
    for op, label in _CONV_OP_NAMES.items():
      jax_time = row["jax"][op]
      cells = [f"{row['stage']}", shape, label,
               f"{_milliseconds(jax_time)}, {jax_time['flops_per_second'] / 1e9:.0f} GFLOP/s"]
      if "torch" in row:
        torch_time = row["torch"][op]
        cells += [f"{_milliseconds(torch_time)}, {torch_time['flops_per_second'] / 1e9:.0f} GFLOP/s",
                  f"{row['ratio'][op]:.2f}x"]
      rows.append(cells)
  return rows


def _convolution(record: dict[str, Any]) -> str:
  """How the engine's ``resnet20`` computed its convolutions in this record."""
  return {"patches": "patches times a matrix, the engine's `convolution=\"auto\"` on CPU",
          "xla": "XLA's convolution"}.get(record.get("convolution", "xla"), record.get("convolution"))


def _kernel_rows(record: dict[str, Any]) -> list[list[Any]]:
  """Each kind of work: JAX's kernels and PyTorch's ops, milliseconds per step and share."""
  jax_side = record["jax_kernels"]["categories"]
  torch_side = (record.get("torch_ops") or {}).get("categories", {})
  rows = []
  for category in list(jax_side) + [c for c in torch_side if c not in jax_side]:
    cells = [category]
    for side in (jax_side, torch_side):
      row = side.get(category)
      cells.append(f"{1e3 * row['seconds']:.0f} ms ({100 * row['share']:.0f}%)" if row else "")
    rate = jax_side.get(category, {}).get("flops_per_second")
    cells.append(f"{rate / 1e9:.0f} GFLOP/s" if rate else "")
    rows.append(cells)
  return rows


def resnet_kernels_text(record: dict[str, Any]) -> str:
  """Where each framework's step spends its time, by kind of work (markdown), or ``""``."""
  if "jax_kernels" not in record:
    return ""
  kernels_record = record["jax_kernels"]
  slowest = ", ".join(f"`{row['name']}` ({row['category']}) {1e3 * row['seconds']:.0f} ms"
                      for row in kernels_record["slowest"][:5])
  return (
      "\n\nWhere each step's time goes: JAX's kernels from XLA's trace of the step (each "
      "kernel's events summed over XLA's threads, named by its optimized HLO: a matmul is a dot "
      "alone or fused, *slices and pads* build the convolutions' patches and their gradients "
      "with the elementwise work XLA fused into them), "
      f"{1e3 * kernels_record['kernel_seconds']:.0f} ms of kernels per step; PyTorch's ops "
      "from `torch.profiler` (self CPU time per op, by name)"
      + (f", {1e3 * record['torch_ops']['self_seconds']:.0f} ms per step" if "torch_ops" in record
         else "") + ". Matmul rate: the dots' FLOPs (from the HLO shapes) over their time.\n\n"
      + _table(["work", "JAX kernels", "PyTorch ops", "JAX rate"], _kernel_rows(record))
      + f"\n\nJAX's slowest kernels: {slowest}."
  )


def resnet_step_section(record: dict[str, Any]) -> str:
  """The ResNet-20 step table, its convolutions, and their share of the step (markdown)."""
  shape, torch = record["shape"], record["torch"]
  with_torch = "skipped" not in torch
  compared = (f"PyTorch {torch['version']} eager on {torch['threads']} thread(s), "
              f"`{torch['memory_format']}` layout (the faster: step "
              + ", ".join(f"{name} {_milliseconds(timing)}"
                          for name, timing in torch["step_by_memory_format"].items())
              + ")") if with_torch else f"PyTorch skipped: {torch['skipped']}"
  torch_columns = ["PyTorch", "PyTorch / JAX"] if with_torch else []
  names = {"jax": "JAX", "torch": "PyTorch"}
  shares = ", ".join(
      f"{names[side]} {1e3 * seconds:.0f} ms ({100 * record['conv_share_of_step'][side]:.0f}% "
      "of its step)" for side, seconds in record["conv_seconds_per_step"].items())
  flags = f"`XLA_FLAGS={record['xla_flags']}`" if record["xla_flags"] else "no `XLA_FLAGS`"
  return (
      "## ResNet-20 training step\n\n"
      f"One SGD step (0.1, momentum 0.9) of the CIFAR ResNet-20 (relu, BatchNorm in training "
      f"mode, softmax cross-entropy): batch {shape['batch']}, {shape['image_size']}x"
      f"{shape['image_size']}x3 float32 images, {shape['num_classes']} classes, width "
      f"{shape['width']}. JAX: one jitted function of (params, batch statistics, optimizer "
      f"state, batch), state donated, on {record['threads']} core(s), {flags}. {compared}. "
      f"{record['rounds']} interleaved rounds; shares are of JAX's step, per round. "
      "Ratio: PyTorch time / JAX time (above 1: JAX is faster).\n\n"
      + _table(["JAX program", "JAX", "share of step"] + torch_columns, _resnet_step_rows(record))
      + "\n\nIts convolutions: at each stage's shape (NHWC, and how many of the network's 19 "
      "convolutions have it) one 3x3 stride-1 convolution and the two of its backward pass, "
      f"each jitted alone, computed as the step computes them here ({_convolution(record)}; "
      "PyTorch: `aten.convolution_backward`, as autograd calls it); "
      f"{record['conv_rounds']} rounds of 3 calls.{' Ratio: PyTorch / JAX.' if with_torch else ''}\n\n"
      + _table(["stage", "shape", "convolution", "JAX"] + torch_columns, _conv_rows(record))
      + f"\n\nTimed alone, these 16 convolutions (forward and both gradients each) add up to "
      f"{shares}: an isolated timing can exceed its cost inside the step (above 100%), so this "
      "bounds the convolutions' share rather than measuring it."
      + resnet_kernels_text(record)
  )


def memory_estimate_section(rows: dict[str, Any]) -> str:
  """The memory estimate of each grid's program against XLA's count of it (markdown)."""
  table = [[f"`{name}`: {row['grid']}", row["runs_per_device"], f"{row['estimate_mib']:.1f}",
            f"{row['measured_mib']:.1f} ({row['largest']})", f"**{row['ratio']:.2f}**",
            f"{row['seconds']:.0f} s"] for name, row in rows.items()]
  return (
      "## Memory estimate against XLA\n\n"
      "`research.memory.estimate` sizes one device's share of a grid's largest program before "
      "anything is built (the refusal of a grid that cannot fit rests on it); the program is "
      "then compiled as the engine compiles it, never run, and XLA's `memory_analysis()` of it "
      "read: arguments (and the data arrays a program leaves unread, on the device all the "
      "same), outputs and temporaries, less aliased, of the larger of the training chunk and "
      "the evaluation. Target: the ratio between 0.8 and 1.25.\n\n"
      + _table(["grid", "runs per device", "estimate MiB", "XLA MiB (program)", "estimate / XLA",
                "estimate + compile"], table)
  )


def _targets(result: dict[str, Any]) -> str:
  rows = [[target.name, target.reason, target.measured, f"**{target.verdict}**"]
          for target in targets.check(result)]
  return "## Targets\n\n" + _table(["target", "why", "measured", "verdict"], rows)


def markdown(result: dict[str, Any]) -> str:
  """The whole report: header, targets, then every table present in ``result``."""
  parts = ["# Benchmarks", "Generated by `python -m research bench"
           + (" --quick" if result["quick"] else "") + "`; do not edit by hand.", _header(result),
           _targets(result)]
  if result.get("main_job"):
    parts.append(_main_job(result))
  if result.get("activations"):
    parts.append(_activations(result))
  if result.get("grids"):
    parts.append(_grids(result))
  if result.get("torch"):
    parts.append(_torch(result))
  if result.get("resnet_step"):
    parts.append(resnet_step_section(result["resnet_step"]))
  if result.get("memory_estimate"):
    parts.append(memory_estimate_section(result["memory_estimate"]))
  return "\n\n".join(parts) + "\n"
