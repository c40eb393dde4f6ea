"""Where a compiled program's time goes, kernel by kernel: XLA's trace read against its HLO.

A program is called a few times under ``jax.profiler.trace``; XLA:CPU records
one event per kernel it runs (a thunk, named after its HLO instruction), on
whichever of its threads ran it. Each event's name is looked up in the
compiled program's optimized HLO (``compiled.as_text()``), which says what
the kernel is:

* ``matmul``: a dot, alone or fused (a YNNPACK or oneDNN fusion around it);
  its FLOPs are counted from the HLO shapes, so the kernels' own rate shows;
* ``convolution``: XLA's convolution, alone or fused;
* ``reduction``: a fusion that reduces (BatchNorm's statistics, their
  gradients, a bias gradient, the loss);
* ``slices and pads``: a fusion that slices or pads (the patches of a
  convolution and the gradients of those slices), with whatever elementwise
  work XLA fused into it;
* ``concatenate``: a concatenation (the patches laid side by side);
* ``copy``: a copy or transpose (a change of layout);
* ``elementwise``: every other fusion (activations, BatchNorm's
  normalisation, the optimizer's update).

A kernel's seconds are its events' durations summed over threads and divided
by the calls: their sum over the program can exceed the wall time when
kernels run side by side, and falls short of it by the time between kernels.
"""

from __future__ import annotations

import collections
import glob
import math
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax

CATEGORIES = ("matmul", "convolution", "reduction", "slices and pads", "concatenate", "copy",
              "elementwise")
_INSTRUCTION = re.compile(  # name = shape (an array's, or a tuple's) opcode(operands), attributes
    r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.+?)\s+([\w\-]+)\((.*)$")
_COMPUTATION = re.compile(r"^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_CONTROL = ("while", "call", "conditional", "parameter", "constant", "bitcast", "tuple",
            "get-tuple-element")


def _dims(text: str) -> tuple[int, ...]:
  return tuple(int(d) for d in text.split(",") if d)


def parse_hlo(text: str) -> dict[str, dict[str, Any]]:
  """Every instruction of an HLO module: its opcode, shape, computation, operands, called fusion.

  Examples:
    >>> hlo = '''ENTRY %main (a: f32[2,3], b: f32[3,4]) -> f32[2,4] {
    ...   %a = f32[2,3]{1,0} parameter(0)
    ...   %b = f32[3,4]{1,0} parameter(1)
    ...   ROOT %dot.1 = f32[2,4]{1,0} dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
    ... }'''
    >>> parse_hlo(hlo)["dot.1"]["opcode"], parse_hlo(hlo)["dot.1"]["shape"]
    ('dot', (2, 4))
  """
  instructions: dict[str, dict[str, Any]] = {}
  computation = ""
  for line in text.splitlines():
    match = _INSTRUCTION.match(line)
    if match is None:
      header = _COMPUTATION.match(line)
      if header is not None and "=" not in line.split("(")[0]:
        computation = header.group(1)
      continue
    name, shape, opcode, rest = match.groups()
    dims = re.search(r"\[([\d,]*)\]", shape)
    arguments = rest.split(")")[0]
    calls = re.search(r"calls=%?([\w.\-]+)", rest)
    contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
    instructions[name] = {
        "opcode": opcode, "shape": _dims(dims.group(1)) if dims else (), "computation": computation,
        "operands": re.findall(r"%([\w.\-]+)", arguments),
        "calls": calls.group(1) if calls else None,
        "lhs_contracting": _dims(contracting.group(1)) if contracting else None,
    }
  return instructions


def _dot_flops(instruction: dict[str, Any], instructions: dict[str, dict[str, Any]]) -> int:
  """2 x output elements x contracted length, from the HLO shapes."""
  lhs = instructions.get(instruction["operands"][0]) if instruction["operands"] else None
  if lhs is None or instruction["lhs_contracting"] is None:
    return 0
  contracted = math.prod(lhs["shape"][d] for d in instruction["lhs_contracting"])
  return 2 * math.prod(instruction["shape"]) * contracted


def kernel_kinds(text: str) -> dict[str, dict[str, Any]]:
  """Each kernel XLA can run for this module (its top-level instructions): category and FLOPs.

  Examples:
    >>> hlo = '''ENTRY %main (a: f32[2,3], b: f32[3,4]) -> f32[2,4] {
    ...   %a = f32[2,3]{1,0} parameter(0)
    ...   %b = f32[3,4]{1,0} parameter(1)
    ...   ROOT %dot.1 = f32[2,4]{1,0} dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
    ... }'''
    >>> kernel_kinds(hlo)
    {'dot.1': {'category': 'matmul', 'flops': 48}}
  """
  instructions = parse_hlo(text)
  by_computation: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
  for instruction in instructions.values():
    by_computation[instruction["computation"]].append(instruction)
  fused = {i["calls"] for i in instructions.values() if i["opcode"] == "fusion" and i["calls"]}
  kinds = {}
  for name, instruction in instructions.items():
    if instruction["computation"] in fused or instruction["opcode"] in _CONTROL:
      continue
    inside = (by_computation[instruction["calls"]] if instruction["opcode"] == "fusion"
              else [instruction])
    opcodes = {i["opcode"] for i in inside}
    flops = sum(_dot_flops(i, instructions) for i in inside if i["opcode"] == "dot")
    kinds[name] = {"category": _category(opcodes), "flops": flops}
  return kinds


def _category(opcodes: set[str]) -> str:
  if "dot" in opcodes:
    return "matmul"
  if "convolution" in opcodes:
    return "convolution"
  if "reduce" in opcodes or "reduce-window" in opcodes:
    return "reduction"
  if opcodes & {"slice", "pad", "dynamic-slice", "dynamic-update-slice"}:
    return "slices and pads"
  if "concatenate" in opcodes:
    return "concatenate"
  if opcodes <= {"copy", "transpose", "bitcast", "parameter"}:
    return "copy"
  return "elementwise"


def thunk_seconds(call: Callable[[], Any], calls: int = 3
                  ) -> tuple[dict[str, float], dict[str, float], float]:
  """Seconds per call of each event XLA's CPU threads record while ``call`` runs ``calls`` times.

  Also how many times per call each ran (a kernel inside a loop runs once per
  iteration), and the wall seconds per call under the trace.
  """
  from jax._src.lib import _profile_data  # jaxlib's reader of the trace it writes

  jax.block_until_ready(call())  # compiled and warm before the trace
  totals: dict[str, float] = collections.defaultdict(float)
  counts: dict[str, float] = collections.defaultdict(float)
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder):
      started = time.perf_counter()
      for _ in range(calls):
        jax.block_until_ready(call())
      wall = (time.perf_counter() - started) / calls
    data = _profile_data.ProfileData.from_file(
        glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)[0])
    for plane in data.planes:
      for line in plane.lines:
        if line.name.startswith("tf_XLA"):  # XLA's threads, not Python's
          for event in line.events:
            totals[event.name] += event.duration_ns / 1e9 / calls
            counts[event.name] += 1 / calls
  return dict(totals), dict(counts), wall


def profile(call: Callable[[], Any], hlo_text: str, calls: int = 3,
            top: int = 8) -> dict[str, Any]:
  """Per category (:data:`CATEGORIES`): seconds per call, share, and the matmuls' FLOPs and rate.

  ``hlo_text`` is the optimized HLO of the program ``call`` runs
  (``jitted.lower(...).compile().as_text()``). Also returns the ``top``
  kernels by time, with their category, and the calls' wall seconds under the trace.
  """
  kinds = kernel_kinds(hlo_text)
  all_seconds, runs, wall = thunk_seconds(call, calls)
  seconds = {name: value for name, value in all_seconds.items() if name in kinds}
  flops = {name: kinds[name]["flops"] * runs[name] for name in seconds}  # per call
  total = sum(seconds.values())
  by_category = {}
  for category in CATEGORIES:
    names = [name for name in seconds if kinds[name]["category"] == category]
    spent = sum(seconds[name] for name in names)
    if not names:
      continue
    row = {"seconds": spent, "share": spent / total if total else 0.0, "kernels": len(names)}
    if category == "matmul":
      done = round(sum(flops[name] for name in names))
      row |= {"flops": done, "flops_per_second": done / spent if spent else 0.0}
    by_category[category] = row
  slowest = sorted(seconds, key=seconds.get, reverse=True)[:top]
  return {"kernel_seconds": total, "wall_seconds": wall, "categories": by_category,
          "slowest": [{"name": name, "category": kinds[name]["category"],
                       "seconds": seconds[name], "flops": round(flops[name])}
                      for name in slowest]}


def mlp_matmul_shapes(sizes: list[int], batch: int) -> list[tuple[int, int, int]]:
  """(rows, contracted, columns) of each dot an MLP's training step runs, layer by layer.

  Forward ``batch x a @ a x b``, kernel gradient ``a x batch @ batch x b``, and
  input gradient ``batch x b @ b x a`` for every layer but the first (the
  data need none).

  Examples:
    >>> mlp_matmul_shapes([40, 100, 10], batch=100)
    [(100, 40, 100), (40, 100, 100), (100, 100, 10), (100, 100, 10), (100, 10, 100)]
  """
  shapes = []
  for layer, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    shapes += [(batch, a, b), (a, batch, b)] + ([(batch, b, a)] if layer else [])
  return shapes


def matmuls_alone(shapes: list[tuple[int, int, int]], rounds: int = 5,
                  calls_per_round: int = 200) -> list[dict[str, Any]]:
  """Each distinct shape's float32 matmul jitted alone in XLA: seconds per call and FLOP rate."""
  from research.bench import timing  # timing imports nothing from here

  keys = jax.random.split(jax.random.key(0), 2)
  candidates = {}
  for rows, contracted, columns in shapes:
    left = jax.random.normal(keys[0], (rows, contracted))
    right = jax.random.normal(keys[1], (contracted, columns))
    candidates[(rows, contracted, columns)] = (
        lambda f=jax.jit(jax.numpy.matmul), a=left, b=right: f(a, b))
  measured = timing.interleaved(candidates, rounds, calls_per_round=calls_per_round)
  rows_out = []
  for (rows, contracted, columns), seconds in measured.items():
    summary = timing.Timing.of(seconds)
    flops = 2 * rows * contracted * columns
    rows_out.append({"shape": [rows, contracted, columns], "seconds": summary.median,
                     "flops_per_second": flops / summary.median})
  return rows_out
