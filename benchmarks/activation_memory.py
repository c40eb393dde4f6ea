"""Temporary memory and time of an MLP training step, per activation.

Compiles one SGD step of an MLP for each activation and reads the compiled
program's temporary buffer size (``memory_analysis().temp_size_in_bytes``),
then times the step. Ratios are against ``jax.nn.relu``, measured in this one
process. The point: NecroReLU saves a one-byte mask, so it needs ReLU's memory;
a custom_vjp that saves the float input, or jax.nn.leaky_relu, needs more.

    python benchmarks/activation_memory.py                 # CPU-sized
    python benchmarks/activation_memory.py --batch 8192 --width 4096 --depth 8   # GPU
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp

import activations


def candidates() -> dict[str, object]:
  leaky_backward = functools.partial(jax.nn.leaky_relu, negative_slope=0.1)
  return {
      "jax.nn.relu": jax.nn.relu,
      "activations.relu": activations.relu,
      "activations.necro_relu (mask)": activations.necro_relu,
      "activations.necro_relu(impl='jvp')": functools.partial(activations.necro_relu, impl="jvp"),
      "surrogate(relu, leaky) (saves x)": activations.surrogate(jax.nn.relu, leaky_backward),
      "jax.nn.leaky_relu": leaky_backward,
      "activations.leaky_relu (mask)": functools.partial(activations.leaky_relu, negative_slope=0.1),
      "activations.sugar_bsilu (saves x)": activations.sugar_bsilu,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=1024)
  parser.add_argument("--width", type=int, default=1024)
  parser.add_argument("--depth", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  args = parser.parse_args()
  dtype = jnp.dtype(args.dtype)
  keys = jax.random.split(jax.random.key(0), args.depth + 1)
  weights = [jax.random.normal(k, (args.width, args.width), dtype) / args.width**0.5 for k in keys[:-1]]
  x = jax.random.normal(keys[-1], (args.batch, args.width), dtype)

  print(f"MLP {args.depth} x {args.width}, batch {args.batch}, {args.dtype}, on {jax.devices()[0].device_kind}")
  print(f"{'activation':38s} {'temp MiB':>9s} {'x relu':>7s} {'ms/step':>8s} {'x relu':>7s}")
  baseline = None
  for name, activation in candidates().items():

    def loss(weights, activation=activation):
      h = x
      for w in weights:
        h = activation(h @ w)
      return jnp.mean(h.astype(jnp.float32) ** 2)

    @jax.jit
    def step(weights, loss=loss):
      grads = jax.grad(loss)(weights)
      return [w - 0.01 * g for w, g in zip(weights, grads)]

    compiled = step.lower(weights).compile()
    temporary = compiled.memory_analysis().temp_size_in_bytes
    jax.block_until_ready(compiled(weights))
    started = time.perf_counter()
    for _ in range(args.repeats):
      result = compiled(weights)
    jax.block_until_ready(result)
    milliseconds = (time.perf_counter() - started) / args.repeats * 1e3
    if baseline is None:
      baseline = (temporary, milliseconds)
    print(
        f"{name:38s} {temporary / 2**20:9.1f} {temporary / baseline[0]:7.2f}"
        f" {milliseconds:8.2f} {milliseconds / baseline[1]:7.2f}"
    )


if __name__ == "__main__":
  main()
