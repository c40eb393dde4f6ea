"""The CIFAR ResNet-20 training step in JAX against PyTorch eager, and where its time goes.

One SGD step (learning rate 0.1, momentum 0.9) of
:func:`research.architectures.resnet20` with ``jax.nn.relu``, BatchNorm in
training mode, softmax cross-entropy, on a fixed batch (128 images of 32x32x3,
float32, 10 classes): the model is ``nnx.split`` into graph, parameters and
batch statistics, and the step is one jitted pure function of (params, stats,
optimizer state, images, labels), its state donated as a training loop would.
PyTorch runs the same network (:mod:`research.bench.torch_resnet`) eagerly, on
as many threads as this process has cores, in both memory layouts (NCHW and
``channels_last``); the faster is the one compared.

Where the time goes, both sides timed in the same rounds:

* the step's **parts**: the training-mode forward pass alone (the loss, no
  gradient), forward + backward (the gradients, no update), the whole step;
* its **convolutions**: at each stage's shape (batch x size x size x channels,
  a 3x3 stride-1 convolution from ``channels`` to ``channels``, the shape of
  16 of the network's 19 convolutions) the forward convolution and the two of
  its backward pass, the input gradient and the kernel gradient, each jitted
  alone in JAX, computed as the step's ``resnet20`` computes them
  (``convolution="auto"``: patches times a matrix on CPU, see
  :mod:`research.convolution`), and ``aten.convolution_backward`` (what
  autograd calls) in PyTorch. Timed alone, they can cost more than inside the
  step (other caches, no overlap), so their sum is a bound on the
  convolutions' share, not a measurement of it;
* its **kernels**, after the timed rounds: JAX's step under XLA's trace, each
  kernel named by its optimized HLO and grouped by kind
  (:func:`research.bench.kernels.profile`: matmuls with their FLOP rate, the
  patches' slices and pads, concatenations, reductions, elementwise), and
  PyTorch's step under ``torch.profiler``, self time per op grouped alike
  (:func:`research.bench.torch_resnet.op_profile`).

Every time comes from :func:`research.bench.timing.interleaved`, all
candidates of a table timed in turn in each round; a ratio is PyTorch's time
over JAX's, per round, its median reported (above 1: JAX is faster).

Run alone: ``python -m research.bench.resnet_step [--quick] [--out FILE] [--convolution xla]``
(``--convolution``: how JAX computes the convolutions; the bench itself times
the engine's ``"auto"``).
XLA's CPU flags (``XLA_FLAGS``, recorded in the result) apply to that
process, so the effect of one on the JAX side is measured by running it with
and without. With jaxlib 0.10 on a CPU, XLA runs some of these convolutions
(the kernel gradients among them) as YNNPACK fusions;
``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=`` (empty) turns those off.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import statistics
from collections.abc import Callable
from typing import Any, Literal

import jax
import optax
from flax import nnx
from jax import Array

from research import architectures, convolution
from research.bench import kernels, timing, torch_reference, torch_resnet

CONV_OPS = ("forward", "input_grad", "kernel_grad")
STEP_PARTS = ("forward", "forward_backward", "step")


@dataclasses.dataclass(frozen=True)
class ResnetShape:
  """The ResNet-20 step of the benchmark."""

  batch: int = 128  # images per step
  image_size: int = 32  # height and width, pixels
  width: int = 16  # channels of the first stage (16: the paper's ResNet-20)
  num_classes: int = 10
  # How the step's resnet20 computes convolutions (research.convolution): "auto"
  # (patches on CPU, what the engine trains with), "xla" or "patches".
  convolution: str = "auto"

  def stages(self) -> list[tuple[int, int]]:
    """(size, channels) of each stage's 3x3 convolutions.

    Examples:
      >>> ResnetShape().stages()
      [(32, 16), (16, 32), (8, 64)]
    """
    return [(-(-self.image_size // 2**stage), self.width * 2**stage) for stage in range(3)]


def convs_per_stage(stage: int) -> int:
  """The stage's 3x3 stride-1 convolutions from ``channels`` to ``channels``.

  Three blocks of two convolutions; a later stage's first one has stride 2 and
  half the input channels (as has the 3-channel stem before the first stage).
  """
  return 6 if stage == 0 else 5


def conv_flops(batch: int, size: int, channels: int) -> int:
  """FLOPs of one 3x3 same-padded stride-1 convolution (each backward one does as many).

  Examples:
    >>> conv_flops(128, 32, 16)
    603979776
  """
  return 2 * batch * size * size * channels * channels * 9


def _loss(graphdef: nnx.GraphDef, params: nnx.State, stats: nnx.State, images: Array,
          labels: Array) -> tuple[Array, nnx.State]:
  """Mean softmax cross-entropy in training mode, and the updated batch statistics."""
  model = nnx.merge(graphdef, params, stats, copy=True)  # variables of this trace
  logits = model(images)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  return loss, nnx.state(model, nnx.BatchStat)


def _train_step(graphdef: nnx.GraphDef, optimizer: optax.GradientTransformation,
                params: nnx.State, stats: nnx.State, opt_state: optax.OptState, images: Array,
                labels: Array) -> tuple[nnx.State, nnx.State, optax.OptState, Array]:
  """One SGD step: the updated parameters, statistics and optimizer state, and the loss."""
  (loss, stats), grads = jax.value_and_grad(_loss, argnums=1, has_aux=True)(
      graphdef, params, stats, images, labels)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), stats, opt_state, loss


def jax_programs(shape: ResnetShape, seed: int = 0) -> dict[str, Callable[[], Any]]:
  """The JAX step and its parts (:data:`STEP_PARTS`) as calls on one fixed batch.

  ``step`` updates the state it holds (donated, as in a training loop); the
  parts read the current state.
  """
  return _jax_programs(shape, seed)[0]


def _jax_programs(shape: ResnetShape, seed: int = 0
                  ) -> tuple[dict[str, Callable[[], Any]], Callable[[], str]]:
  """:func:`jax_programs`, and a call that returns the step's optimized HLO (to read a profile)."""
  # An "rbg" key: the initial values do not change the time, and XLA compiles
  # threefry's random numbers slowly on a CPU (seconds per parameter shape).
  key = jax.random.key(seed, impl="rbg")
  model = architectures.resnet20(
      jax.nn.relu, input_shape=(shape.image_size, shape.image_size, 3),
      num_outputs=shape.num_classes, rngs=nnx.Rngs(key), width=shape.width,
      convolution=shape.convolution)
  model.train()  # BatchNorm normalises with the batch's statistics and updates its averages
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  optimizer = optax.sgd(0.1, momentum=0.9)
  image_key, label_key = jax.random.split(key)
  images = jax.random.normal(image_key, (shape.batch, shape.image_size, shape.image_size, 3))
  labels = jax.random.randint(label_key, (shape.batch,), 0, shape.num_classes)
  state = [params, stats, optimizer.init(params)]
  step = jax.jit(functools.partial(_train_step, graphdef, optimizer), donate_argnums=(0, 1, 2))
  forward = jax.jit(functools.partial(_loss, graphdef))
  forward_backward = jax.jit(jax.value_and_grad(functools.partial(_loss, graphdef), has_aux=True))

  def run_step():
    new_params, new_stats, new_opt_state, loss = step(*state, images, labels)
    state[:] = [new_params, new_stats, new_opt_state]
    return loss

  return {
      "forward": lambda: forward(state[0], state[1], images, labels),
      "forward_backward": lambda: forward_backward(state[0], state[1], images, labels),
      "step": run_step,
  }, lambda: step.lower(*state, images, labels).compile().as_text()


def _conv(images: Array, kernel: Array) -> Array:
  """A 3x3 same-padded stride-1 convolution, NHWC and HWIO as ``nnx.Conv`` lays them out."""
  return jax.lax.conv_general_dilated(images, kernel, (1, 1), ((1, 1), (1, 1)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _patches_conv(images: Array, kernel: Array) -> Array:
  """:func:`_conv` as the engine computes it on CPU: patches times a matrix."""
  return convolution.patches_convolution(images, kernel, (1, 1), ((1, 1), (1, 1)))


def jax_conv_ops(batch: int, size: int, channels: int,
                 implementation: str = "auto") -> dict[str, Callable[[], Any]]:
  """One convolution's forward and two gradients (:data:`CONV_OPS`) on fixed random arrays.

  ``implementation`` as the engine's models take it (:mod:`research.convolution`):
  ``"auto"``, what the step's ``resnet20`` runs (patches times a matrix on CPU),
  ``"xla"`` or ``"patches"``.
  """
  image_key, kernel_key, cotangent_key = jax.random.split(jax.random.key(0, impl="rbg"), 3)
  images = jax.random.normal(image_key, (batch, size, size, channels))
  kernel = jax.random.normal(kernel_key, (3, 3, channels, channels))
  cotangent = jax.random.normal(cotangent_key, (batch, size, size, channels))
  patches = convolution.resolve(implementation) == "patches"
  conv = _patches_conv if patches else _conv
  forward = jax.jit(conv)
  input_grad = jax.jit(lambda x, w, t: jax.vjp(lambda x: conv(x, w), x)[1](t)[0])
  kernel_grad = jax.jit(lambda x, w, t: jax.vjp(lambda w: conv(x, w), w)[1](t)[0])
  return {
      "forward": lambda: forward(images, kernel),
      "input_grad": lambda: input_grad(images, kernel, cotangent),
      "kernel_grad": lambda: kernel_grad(images, kernel, cotangent),
  }


def _summaries(measured: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
  return {name: timing.Timing.of(seconds).to_dict() for name, seconds in measured.items()}


def _torch_missing(torch: bool) -> str | None:
  return torch_reference.available() if torch else "turned off (--no-torch)"


def measure_step(shape: ResnetShape, rounds: int, *, torch: bool = True,
                 profile_calls: int = 2) -> dict[str, Any]:
  """The step and its parts, JAX and (if installed) PyTorch in both layouts, in turn.

  Returns ``jax`` and ``torch`` (each part's timing; torch's also names the
  layout compared, the faster step), ``ratio`` (PyTorch / JAX per part),
  ``split`` (forward, backward and update shares of JAX's step),
  ``convolution`` (how the engine's ``resnet20`` computes them here), and
  where each step's time goes: ``jax_kernels`` (:func:`research.bench.kernels.profile`
  of ``profile_calls`` steps) and ``torch_ops`` (:func:`research.bench.torch_resnet.op_profile`
  of the compared layout's step).
  """
  programs, step_hlo = _jax_programs(shape)
  candidates = {f"jax {part}": call for part, call in programs.items()}
  missing = _torch_missing(torch)
  torch_steps = {}
  if not missing:
    for layout in torch_resnet.MEMORY_FORMATS:
      calls = torch_resnet.training_step(shape.batch, shape.image_size, shape.num_classes,
                                         shape.width, memory_format=layout)
      candidates |= {f"torch {layout} {part}": call for part, call in calls.items()}
      torch_steps[layout] = calls["step"]
  measured = timing.interleaved(candidates, rounds)
  jax_times = {part: measured[f"jax {part}"] for part in STEP_PARTS}
  result: dict[str, Any] = {"jax": _summaries(jax_times), "split": _split(jax_times),
                            "convolution": convolution.resolve(shape.convolution)}
  # Where the step's time goes, kernel by kernel (after the timed rounds: a trace slows them).
  result["jax_kernels"] = kernels.profile(programs["step"], step_hlo(), calls=profile_calls)
  if missing:
    return result | {"torch": {"skipped": missing}}
  layout = min(torch_resnet.MEMORY_FORMATS,
               key=lambda name: statistics.median(measured[f"torch {name} step"]))
  result["torch_ops"] = torch_resnet.op_profile(torch_steps[layout], calls=profile_calls)
  torch_module = torch_reference.import_torch()
  result["torch"] = {
      "version": torch_module.__version__, "threads": torch_module.get_num_threads(),
      "memory_format": layout,
      **_summaries({part: measured[f"torch {layout} {part}"] for part in STEP_PARTS}),
      "step_by_memory_format": _summaries(
          {name: measured[f"torch {name} step"] for name in torch_resnet.MEMORY_FORMATS}),
  }
  result["ratio"] = {part: timing.median_ratio(measured[f"torch {layout} {part}"], jax_times[part])
                     for part in STEP_PARTS}
  return result


def _split(jax_times: dict[str, list[float]]) -> dict[str, float]:
  """Median shares of JAX's step: forward, backward, update (per round, so drift cancels)."""
  step = jax_times["step"]
  forward = timing.median_ratio(jax_times["forward"], step)
  forward_backward = timing.median_ratio(jax_times["forward_backward"], step)
  return {"forward": forward, "backward": forward_backward - forward,
          "update": 1 - forward_backward}


def measure_convs(shape: ResnetShape, rounds: int, *, memory_format: str | None,
                  calls_per_round: int = 3) -> list[dict[str, Any]]:
  """Each stage's three convolutions, JAX and (``memory_format`` not None) PyTorch, in turn.

  JAX computes them as the step's ``resnet20`` does here (``shape.convolution``).
  """
  rows = []
  for stage, (size, channels) in enumerate(shape.stages()):
    candidates = {f"jax {op}": call for op, call in jax_conv_ops(shape.batch, size, channels,
                                                              shape.convolution).items()}
    if memory_format is not None:
      calls = torch_resnet.conv_ops(shape.batch, size, channels, memory_format)
      candidates |= {f"torch {op}": call for op, call in calls.items()}
    measured = timing.interleaved(candidates, rounds, calls_per_round=calls_per_round)
    flops = conv_flops(shape.batch, size, channels)
    row: dict[str, Any] = {"stage": stage + 1, "size": size, "channels": channels,
                           "count": convs_per_stage(stage), "flops": flops}
    for side in ("jax", "torch") if memory_format is not None else ("jax",):
      row[side] = _summaries({op: measured[f"{side} {op}"] for op in CONV_OPS})
      for op in CONV_OPS:
        row[side][op]["flops_per_second"] = flops / row[side][op]["median"]
    if memory_format is not None:
      row["ratio"] = {op: timing.median_ratio(measured[f"torch {op}"], measured[f"jax {op}"])
                      for op in CONV_OPS}
    rows.append(row)
  return rows


def conv_seconds_per_step(convs: list[dict[str, Any]], side: str) -> float:
  """The stage-shaped convolutions timed alone, as one step runs them: count x (forward + gradients)."""
  return sum(row["count"] * sum(row[side][op]["median"] for op in CONV_OPS)
             for row in convs if side in row)


def measure(shape: ResnetShape = ResnetShape(), rounds: int = 5, *, conv_rounds: int | None = None,
            torch: bool = True) -> dict[str, Any]:
  """The step against PyTorch, its parts and its convolutions: the bench's record."""
  step = measure_step(shape, rounds, torch=torch)
  memory_format = step["torch"].get("memory_format")
  convs = measure_convs(shape, conv_rounds or rounds, memory_format=memory_format)
  conv_seconds = {side: conv_seconds_per_step(convs, side)
                  for side in ("jax", "torch") if side in convs[0]}
  return {
      "shape": dataclasses.asdict(shape), "rounds": rounds, "conv_rounds": conv_rounds or rounds,
      "backend": jax.default_backend(), "threads": torch_reference.cores(),
      "xla_flags": os.environ.get("XLA_FLAGS", "").strip(),  # they change XLA's convolutions
      **step, "convs": convs,
      "conv_seconds_per_step": conv_seconds,
      "conv_share_of_step": {side: seconds / step[side]["step"]["median"]
                             for side, seconds in conv_seconds.items()},
  }


@dataclasses.dataclass(frozen=True)
class ResnetStepConfig:
  """``python -m research.bench.resnet_step``: this measurement alone, printed as markdown."""

  quick: bool = False  # fewer rounds (2 instead of 5)
  torch: bool = True  # also time PyTorch eager when torch is installed (the bench extra)
  out: str = ""  # also write the record as JSON to this file; empty: print only
  # How JAX computes the convolutions: "auto" (patches on CPU, as the engine
  # trains), "xla" (XLA's own; with XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=
  # individual_dot,individual_convolution,reduce,eltwise, YNNPACK's) or "patches".
  convolution: Literal["auto", "xla", "patches"] = "auto"


def main(config: ResnetStepConfig) -> dict[str, Any]:
  """Measures the full-size step (batch 128, 32x32x3) and prints its report section."""
  from research.bench import report  # report reads records; it does not import this module

  rounds = 2 if config.quick else 5
  result = measure(ResnetShape(convolution=config.convolution), rounds, torch=config.torch)
  print(report.resnet_step_section(result))
  if config.out:
    pathlib.Path(config.out).write_text(json.dumps(result, indent=1) + "\n")
  return result


if __name__ == "__main__":
  import tyro

  from research import devices

  devices.use_every_cpu_core()  # as ``python -m research bench`` runs it
  main(tyro.cli(ResnetStepConfig))
