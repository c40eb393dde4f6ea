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


def _train_run(torch, dataset, activation: str, seed: int, steps: int, batch_size: int,
               eval_every: int, input_size: int, num_outputs: int) -> dict[str, float]:
  torch.manual_seed(seed)
  model = torch.nn.Sequential(
      torch.nn.Linear(input_size, 100), _activation(torch, activation),
      torch.nn.Linear(100, 100), _activation(torch, activation),
      torch.nn.Linear(100, num_outputs),
  )
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
  x_train = torch.from_numpy(np.array(dataset.x_train))
  y_train = torch.from_numpy(np.array(dataset.y_train)).long()
  x_test = torch.from_numpy(np.array(dataset.x_test))
  y_test = torch.from_numpy(np.array(dataset.y_test)).long()
  generator = torch.Generator().manual_seed(seed)
  loss_function = torch.nn.CrossEntropyLoss()
  hidden = [model[0], model[2]]

  def evaluate() -> float:
    inactive = [torch.ones(100, dtype=torch.bool) for _ in hidden]
    captured: list = []
    hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(o)) for layer in hidden]
    model.zero_grad()
    for start in range(0, len(x_train), 1000):  # the engine's evaluation batches
      captured.clear()
      outputs = model(x_train[start:start + 1000])
      torch.nn.functional.cross_entropy(outputs, y_train[start:start + 1000], reduction="sum").backward()
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
  seconds = time.perf_counter() - started
  runs = 3 * seeds
  return {
      "seeds": seeds, "steps": steps, "runs": runs, "seconds": seconds,
      "seconds_per_run_step": seconds / (runs * steps),
      "mean_test_accuracy": {name: float(np.mean(values)) for name, values in accuracies.items()},
      "threads": torch.get_num_threads(), "version": torch.__version__,
  }


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
