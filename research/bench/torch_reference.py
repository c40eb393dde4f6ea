"""The default comparison and the MLP step written as a PyTorch user would.

Optional (the ``bench`` extra installs ``torch``): :func:`available` says
whether it can run, and why not. Threads are limited to the cores JAX uses
(``torch.set_num_threads``), so both sides get the same machine.

The comparison: MNIST-1D from :func:`research.data.load`, an ``nn.Sequential``
MLP 40-100-100-10, Adam at 1e-2, batches of 100 drawn with replacement,
evaluation every 250 steps as the engine does it (loss, accuracy and a
gradient pass over the whole training set, unit counts, the test set), runs
one after another: seeds x (relu, leaky_relu 0.01, NecroReLU 0.1, the last a
``torch.autograd.Function`` saving a one-byte mask).

:func:`compare_batched` is the strongest PyTorch user of the same comparison:
the seeds of each activation trained as one model, each layer's weights
stacked ``[seeds, out, in]`` and multiplied with ``torch.baddbmm``, one fused
Adam on the stacked tensors (elementwise, so each slice gets its own run's update),
each seed initialised, batched and evaluated as :func:`compare` does it.
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

import numpy as np

from research.bench import timing


def available() -> str | None:
  """``None`` if torch can be imported, else why not (a line for the report)."""
  if importlib.util.find_spec("torch") is None:
    return "torch is not installed: pip install -e '.[bench]' to add the PyTorch reference"
  return None


def cores() -> int:
  """The cores this process may run on (its CPU affinity): JAX's CPU threads use them all."""
  count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, count or 1)


def import_torch():
  """torch, its threads limited to the cores JAX uses (:func:`cores`)."""
  import torch  # the optional extra, imported only when measured

  torch.set_num_threads(cores())
  return torch


def _necro_relu_class(torch):
  class NecroReLU(torch.autograd.Function):
    """ReLU forward; slope ``negative_slope`` below zero backward."""

    @staticmethod
    def forward(ctx, x, negative_slope):
      positive = x >= 0
      ctx.save_for_backward(positive)  # one byte per element
      ctx.negative_slope = negative_slope
      return torch.relu(x)

    @staticmethod
    def backward(ctx, grad_output):
      (positive,) = ctx.saved_tensors
      slope = torch.where(positive, 1.0, ctx.negative_slope).to(grad_output.dtype)
      return grad_output * slope, None

  class Module(torch.nn.Module):
    def __init__(self, negative_slope: float):
      super().__init__()
      self.negative_slope = negative_slope

    def forward(self, x):
      return NecroReLU.apply(x, self.negative_slope)

  return Module


def _activation(torch, name: str):
  if name == "relu":
    return torch.nn.ReLU()
  if name == "leaky_relu":
    return torch.nn.LeakyReLU(0.01)
  return _necro_relu_class(torch)(0.1)


HIDDEN = 100  # units per hidden layer, two hidden layers
EVAL_BATCH = 1000  # the engine's evaluation batches


def _model(torch, activation: str, seed: int, input_size: int, num_outputs: int):
  """The MLP of ``seed``: PyTorch's default initialisation after ``torch.manual_seed(seed)``."""
  torch.manual_seed(seed)
  return torch.nn.Sequential(
      torch.nn.Linear(input_size, HIDDEN), _activation(torch, activation),
      torch.nn.Linear(HIDDEN, HIDDEN), _activation(torch, activation),
      torch.nn.Linear(HIDDEN, num_outputs),
  )


def _tensors(torch, dataset) -> tuple:
  """``x_train, y_train, x_test, y_test`` as torch tensors (labels int64, as the loss wants)."""
  return (torch.from_numpy(np.array(dataset.x_train)),
          torch.from_numpy(np.array(dataset.y_train)).long(),
          torch.from_numpy(np.array(dataset.x_test)),
          torch.from_numpy(np.array(dataset.y_test)).long())


def _train_run(torch, dataset, activation: str, seed: int, steps: int, batch_size: int,
               eval_every: int, input_size: int, num_outputs: int) -> dict[str, float]:
  model = _model(torch, activation, seed, input_size, num_outputs)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
  x_train, y_train, x_test, y_test = _tensors(torch, dataset)
  generator = torch.Generator().manual_seed(seed)
  loss_function = torch.nn.CrossEntropyLoss()
  hidden = [model[0], model[2]]

  def evaluate() -> float:
    inactive = [torch.ones(HIDDEN, dtype=torch.bool) for _ in hidden]
    captured: list = []
    hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(o)) for layer in hidden]
    model.zero_grad()
    for start in range(0, len(x_train), EVAL_BATCH):
      captured.clear()
      x, y = x_train[start:start + EVAL_BATCH], y_train[start:start + EVAL_BATCH]
      torch.nn.functional.cross_entropy(model(x), y, reduction="sum").backward()
      for index, pre in enumerate(captured):
        inactive[index] &= (pre <= 0).all(dim=0)
    for hook in hooks:
      hook.remove()
    model.zero_grad()
    with torch.no_grad():
      return float((model(x_test).argmax(-1) == y_test).float().mean())

  accuracy = evaluate()
  for step in range(steps):
    indices = torch.randint(0, len(x_train), (batch_size,), generator=generator)
    optimizer.zero_grad()
    loss = loss_function(model(x_train[indices]), y_train[indices])
    loss.backward()
    optimizer.step()
    if (step + 1) % eval_every == 0 or step + 1 == steps:
      accuracy = evaluate()
  return {"test_accuracy": accuracy}


def compare(dataset, *, seeds: int = 5, steps: int = 6000, batch_size: int = 100,
            eval_every: int = 250, input_size: int = 40, num_outputs: int = 10) -> dict[str, Any]:
  """The default comparison in PyTorch, runs one after another, timed whole."""
  torch = import_torch()
  started = time.perf_counter()
  accuracies: dict[str, list[float]] = {}
  for activation in ("relu", "leaky_relu", "necro_relu"):
    for seed in range(seeds):
      result = _train_run(torch, dataset, activation, seed, steps, batch_size, eval_every,
                          input_size, num_outputs)
      accuracies.setdefault(activation, []).append(result["test_accuracy"])
  return _summary(torch, seeds, steps, time.perf_counter() - started, accuracies)


def _summary(torch, seeds: int, steps: int, seconds: float,
             accuracies: dict[str, list[float]]) -> dict[str, Any]:
  runs = len(accuracies) * seeds
  return {
      "seeds": seeds, "steps": steps, "runs": runs, "seconds": seconds,
      "seconds_per_run_step": seconds / (runs * steps),
      "mean_test_accuracy": {name: float(np.mean(values)) for name, values in accuracies.items()},
      "test_accuracy": accuracies,  # per seed
      "threads": torch.get_num_threads(), "version": torch.__version__,
  }


def _stacked_linear_class(torch):
  class StackedLinear(torch.autograd.Function):
    """``x @ weight^T + bias`` per seed: ``x`` [seeds, n, in], ``weight`` [seeds, out, in].

    The weight gradient is ``grad^T @ x`` per slice, the product ``nn.Linear``'s
    backward computes for its transposed weight (autograd's ``bmm`` rule would
    compute ``x^T @ grad``, which rounds differently): on one thread, with the
    per-tensor Adam (``fused=False``), each slice was bit for bit its
    one-after-another run over 1000 steps here (MKL, AVX2).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
      ctx.save_for_backward(x, weight)
      return torch.baddbmm(bias, x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
      x, weight = ctx.saved_tensors
      grad_x = grad.bmm(weight) if ctx.needs_input_grad[0] else None  # not for the data
      return grad_x, grad.transpose(1, 2).bmm(x), grad.sum(1, keepdim=True)

  return StackedLinear.apply


def _stacked_parameters(torch, activation: str, seeds: int, input_size: int,
                        num_outputs: int) -> list:
  """Each seed's layers initialised as :func:`_train_run` does, stacked on a first axis.

  Per layer: the weight [seeds, out, in] and the bias [seeds, 1, out], leaves for Adam.
  """
  models = [_model(torch, activation, seed, input_size, num_outputs) for seed in range(seeds)]
  layers = zip(*([layer for layer in model if isinstance(layer, torch.nn.Linear)] for model in models))
  parameters = []
  for per_seed in layers:
    parameters.append(torch.stack([layer.weight.detach() for layer in per_seed]).requires_grad_())
    parameters.append(torch.stack([layer.bias.detach()[None] for layer in per_seed]).requires_grad_())
  return parameters


def _train_stacked(torch, tensors: tuple, activation: str, seeds: int, steps: int,
                   batch_size: int, eval_every: int, input_size: int, num_outputs: int,
                   fused: bool) -> list[float]:
  """The seeds of one activation as one model; each seed's final test accuracy."""
  parameters = _stacked_parameters(torch, activation, seeds, input_size, num_outputs)
  # _train_run's Adam (eps 1e-8, no weight decay), fused: one kernel for the update of every
  # tensor, the fastest on a CPU (its update differs from the per-tensor loop's by rounding).
  optimizer = torch.optim.Adam(parameters, lr=1e-2, fused=fused)
  linear, function = _stacked_linear_class(torch), _activation(torch, activation)
  cross_entropy = torch.nn.functional.cross_entropy
  x_train, y_train, x_test, y_test = tensors
  # Each seed's batches from its own generator, as _train_run draws them (the CPU
  # generator fills a (steps, batch) draw in order, as `steps` draws of `batch`).
  indices = torch.stack([
      torch.randint(0, len(x_train), (steps, batch_size), generator=torch.Generator().manual_seed(seed))
      for seed in range(seeds)], dim=1)  # [steps, seeds, batch]

  def forward(x) -> tuple:  # logits [seeds, n, outputs], pre-activations of each hidden layer
    captured, hidden = [], x
    for index in range(0, len(parameters), 2):
      hidden = linear(hidden, parameters[index], parameters[index + 1])
      if index + 2 < len(parameters):
        captured.append(hidden)
        hidden = function(hidden)
    return hidden, captured

  def evaluate():  # as _train_run's, every seed at once: each sees the same examples
    inactive = torch.ones(len(parameters) // 2 - 1, seeds, HIDDEN, dtype=torch.bool)
    optimizer.zero_grad()
    for start in range(0, len(x_train), EVAL_BATCH):
      x, y = x_train[start:start + EVAL_BATCH], y_train[start:start + EVAL_BATCH]
      outputs, captured = forward(x.expand(seeds, -1, -1))
      cross_entropy(outputs.flatten(0, 1), y.repeat(seeds), reduction="sum").backward()
      for index, pre in enumerate(captured):
        inactive[index] &= (pre <= 0).all(dim=1)
    optimizer.zero_grad()
    with torch.no_grad():
      outputs, _ = forward(x_test.expand(seeds, -1, -1))
      return (outputs.argmax(-1) == y_test).float().mean(dim=1)

  accuracy = evaluate()
  for step in range(steps):
    batch = indices[step]
    optimizer.zero_grad()
    outputs, _ = forward(x_train[batch])
    # Each seed's mean loss, summed: each slice's gradient is its own run's.
    losses = cross_entropy(outputs.flatten(0, 1), y_train[batch].flatten(), reduction="none")
    losses.view(seeds, batch_size).mean(dim=1).sum().backward()
    optimizer.step()
    if (step + 1) % eval_every == 0 or step + 1 == steps:
      accuracy = evaluate()
  return [float(value) for value in accuracy]


def compare_batched(dataset, *, seeds: int = 5, steps: int = 6000, batch_size: int = 100,
                    eval_every: int = 250, input_size: int = 40, num_outputs: int = 10,
                    fused: bool = True) -> dict[str, Any]:
  """The default comparison in PyTorch, each activation's seeds as one model, timed whole.

  Same initialisation, batches, Adam and evaluations per seed as :func:`compare`;
  its ``test_accuracy`` equals :func:`compare`'s up to float32 rounding: the fused
  Adam (``fused=False``: the per-tensor loop :func:`compare` runs) and ``torch.bmm``
  against ``torch.mm`` on several threads round differently, and training amplifies it.
  No example runs: torch is optional, tests/test_bench.py checks it.
  """
  torch = import_torch()
  started = time.perf_counter()
  tensors = _tensors(torch, dataset)
  accuracies = {activation: _train_stacked(torch, tensors, activation, seeds, steps, batch_size,
                                           eval_every, input_size, num_outputs, fused)
                for activation in ("relu", "leaky_relu", "necro_relu")}
  return _summary(torch, seeds, steps, time.perf_counter() - started, accuracies)


def mlp_steps(depth: int, width: int, batch: int, rounds: int, *, compile: bool = True) -> dict[str, Any]:
  """The MLP SGD step of the activation benchmark (ReLU), eager and ``torch.compile``d."""
  torch = import_torch()
  generator = torch.Generator().manual_seed(0)
  weights = [(torch.randn(width, width, generator=generator) / width**0.5).requires_grad_()
             for _ in range(depth)]
  inputs = torch.randn(batch, width, generator=generator)

  def step():
    hidden = inputs
    for weight in weights:
      hidden = torch.relu(hidden @ weight)
    loss = hidden.square().mean()
    grads = torch.autograd.grad(loss, weights)
    with torch.no_grad():
      for weight, grad in zip(weights, grads):
        weight.sub_(0.01 * grad)
    return loss

  candidates = {"eager": step}
  result: dict[str, Any] = {}
  try:
    if not compile:
      raise RuntimeError("not measured (turned off)")
    compiled = torch.compile(step)
    compiled()  # compiles
    candidates["compiled"] = compiled
  except Exception as error:  # noqa: BLE001: torch.compile needs a C++ toolchain
    result["compile_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
  measured = timing.interleaved(candidates, rounds)
  for name, seconds in measured.items():
    result[name] = timing.Timing.of(seconds).to_dict()
  return result
