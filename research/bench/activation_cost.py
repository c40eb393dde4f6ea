"""What each activation costs against ``jax.nn.relu``: time, memory, residuals.

Three measurements per name of :func:`activations.names` (defaults), each
against ``jax.nn.relu`` in the same process:

* **forward + backward** of the activation alone on a large array
  (``jax.vjp`` and its pullback, jitted);
* an **MLP training step** (``depth`` layers of ``width`` units, SGD on the
  mean square of the output): its time and its compiled
  temporary bytes (``memory_analysis().temp_size_in_bytes``), plus the
  program's whole footprint (arguments + outputs + temporaries - aliased);
* the **residuals** its forward pass saves for the backward pass (what
  ``jax.ad_checkpoint.print_saved_residuals`` prints, read from the jaxpr of
  ``jax.vjp``: :func:`saved_residuals`), in bytes per element of the input. A residual made by ``broadcast_in_dim`` of a constant (the zeros
  ``jax.nn.relu``'s rule selects from) is listed but not counted: XLA fuses it
  and never stores it.

Times are taken in rounds, each candidate right after ``jax.nn.relu``
(:func:`research.bench.timing.paired`), and a ratio is the median of its
per-round ratios. Memory and residuals do not depend on load.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.extend.core
import jax.numpy as jnp

import activations
from research.bench import timing

BASELINE = "jax.nn.relu"


def relu_forward_surrogates() -> tuple[str, ...]:
  """ReLU in the forward pass, another derivative backward: the targets' subjects.

  Examples:
    >>> relu_forward_surrogates()[:2]
    ('relu_with_leaky_backward', 'necro_relu')
  """
  return tuple(name for name in activations.names()
               if name != "relu" and activations.registry.relu_forward(name))


def reads_the_batch(function: Callable[[jax.Array], jax.Array]) -> bool:
  """Whether ``function``'s backward pass is not elementwise: it reads the rest of the batch.

  Examples:
    >>> reads_the_batch(activations.revival_relu), reads_the_batch(activations.necro_relu)
    (True, False)
  """
  return any(note.startswith("not elementwise")
             for note in activations.testing.backward_notes(function))


@dataclasses.dataclass(frozen=True)
class MlpShape:
  """The MLP of the step benchmark."""

  depth: int  # hidden layers, each width x width
  width: int  # units per layer
  batch: int  # examples per step
  dtype: str  # parameter and activation dtype


CPU_MLP = MlpShape(depth=4, width=1024, batch=512, dtype="float32")
GPU_MLP = MlpShape(depth=8, width=4096, batch=8192, dtype="bfloat16")


def candidates(names: Sequence[str] | None = None) -> dict[str, Callable[[jax.Array], jax.Array]]:
  """``jax.nn.relu`` first, then every registered activation with its defaults."""
  names = activations.names() if names is None else names
  return {BASELINE: jax.nn.relu, **{name: activations.get(name) for name in names}}


def residual_bytes_per_element(
    function: Callable[[jax.Array], jax.Array], dtype: str = "float32", size: int = 1024
) -> tuple[float, list[str]]:
  """Bytes per input element the forward pass saves for the backward pass.

  Returns the bytes and a description of every residual (shape, origin).

  Examples:
    >>> residual_bytes_per_element(activations.necro_relu)[0]
    1.0
  """
  x = jnp.linspace(-1.0, 1.0, size, dtype=dtype)
  saved = saved_residuals(function, x)
  total, described = 0, []
  for aval, origin in saved:
    described.append(f"{aval.str_short()} {origin}".strip())
    constant = origin.startswith("output of broadcast_in_dim")
    if aval.shape == x.shape and not constant:
      total += aval.dtype.itemsize * aval.size
  return total / size, described


def saved_residuals(
    function: Callable[[jax.Array], jax.Array], x: jax.Array
) -> list[tuple[jax.core.ShapedArray, str]]:
  """What ``jax.vjp(function, x)`` keeps for the backward pass: each residual and its origin.

  The residuals are the leaves of the pullback ``jax.vjp`` returns; the jaxpr
  of the forward pass says which operation made each, as
  ``jax.ad_checkpoint.print_saved_residuals`` prints it.

  Examples:
    >>> [(aval.str_short(), origin) for aval, origin in saved_residuals(jax.nn.relu, jnp.ones(4))]
    [('bool[4]', 'output of gt'), ('float32[4]', 'output of broadcast_in_dim')]
  """
  closed, shapes = jax.make_jaxpr(lambda x: jax.vjp(function, x), return_shape=True)(x)
  jaxpr = closed.jaxpr
  count = len(jax.tree.leaves(shapes[1]))
  made_by = {var: eqn for eqn in jaxpr.eqns for var in eqn.outvars}
  saved = []
  for var in jaxpr.outvars[len(jaxpr.outvars) - count:]:
    if isinstance(var, jax.extend.core.Literal):
      origin = "from a literal"
    elif var in jaxpr.invars:
      origin = "from the argument"
    elif var in made_by:
      eqn = made_by[var]
      name = eqn.params.get("name") if eqn.primitive.name in ("jit", "pjit") else None
      origin = f"output of jitted function '{name}'" if name else f"output of {eqn.primitive.name}"
    else:
      origin = "from a constant"
    saved.append((var.aval, origin))
  return saved


def mlp_step(
    activation: Callable[[jax.Array], jax.Array], shape: MlpShape
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
  """A jitted SGD step of the MLP with ``activation``, and its arguments."""
  dtype = jnp.dtype(shape.dtype)
  keys = jax.random.split(jax.random.key(0), shape.depth + 1)
  weights = [
      (jax.random.normal(key, (shape.width, shape.width), jnp.float32) / shape.width**0.5).astype(dtype)
      for key in keys[:-1]
  ]
  inputs = jax.random.normal(keys[-1], (shape.batch, shape.width), jnp.float32).astype(dtype)

  def loss(weights: list[jax.Array], inputs: jax.Array) -> jax.Array:
    hidden = inputs
    for weight in weights:
      hidden = activation(hidden @ weight)
    return jnp.mean(jnp.square(hidden.astype(jnp.float32)))

  @jax.jit
  def step(weights: list[jax.Array], inputs: jax.Array) -> list[jax.Array]:
    grads = jax.grad(loss)(weights, inputs)
    return [w - jnp.asarray(0.01, w.dtype) * g for w, g in zip(weights, grads)]

  return step, (weights, inputs)


def compiled_step_costs(activation: Callable[[jax.Array], jax.Array],
                        shape: MlpShape) -> dict[str, int]:
  """The compiled step's temporary bytes and whole footprint, and XLA's count of its work.

  ``flops``, ``bytes_accessed`` and ``transcendentals`` are XLA's cost
  analysis of the compiled step (``compiled.cost_analysis()``): what the
  program computes and moves, independent of load, where a time ratio of a
  few percent is within the noise of the rounds.
  """
  step, arguments = mlp_step(activation, shape)
  compiled = step.lower(*arguments).compile()
  analysis = compiled.memory_analysis()
  footprint = (
      analysis.argument_size_in_bytes + analysis.output_size_in_bytes
      + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes
  )
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost  # one entry per program in older jax
  return {"temp_bytes": int(analysis.temp_size_in_bytes), "footprint_bytes": int(footprint),
          "flops": int(cost.get("flops", 0)), "bytes_accessed": int(cost.get("bytes accessed", 0)),
          "transcendentals": int(cost.get("transcendentals", 0))}


def measure(
    shape: MlpShape, array_size: int, rounds: int, names: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
  """Every measurement for every candidate; ratios are to :data:`BASELINE`.

  Args:
    shape: the MLP of the step benchmark.
    array_size: elements of the forward + backward benchmark's array.
    rounds: interleaved rounds of each timing.
    names: registered activations to measure (default: all of them).

  Returns:
    Per candidate: ``forward_backward`` and ``step`` timings (median, fastest,
    slowest seconds and the ratio to relu), ``temp_bytes``, ``footprint_bytes``
    and their ratios, ``temp_extra_per_unit`` (temporary bytes beyond relu's
    per hidden unit and layer), XLA's ``flops``, ``bytes_accessed`` and
    ``transcendentals`` of the step with the first two's ratios,
    ``residual_bytes_per_element`` and the residuals.
  """
  functions = candidates(names)
  elementwise = _paired_forward_backward(functions, shape.dtype, array_size, rounds)
  steps = _paired_steps(functions, shape, rounds)
  results: dict[str, dict[str, Any]] = {}
  base_memory = compiled_step_costs(functions[BASELINE], shape)
  for name, function in functions.items():
    memory = base_memory if name == BASELINE else compiled_step_costs(function, shape)
    residual, described = residual_bytes_per_element(function, shape.dtype)
    results[name] = {
        "forward_backward": _timed(elementwise, name),
        "step": _timed(steps, name),
        **memory,
        "temp_ratio": memory["temp_bytes"] / max(base_memory["temp_bytes"], 1),
        # beyond relu's, per hidden unit and layer: a rule reading the batch keeps one flag each
        "temp_extra_per_unit": (memory["temp_bytes"] - base_memory["temp_bytes"])
                               / (shape.depth * shape.width),
        "footprint_ratio": memory["footprint_bytes"] / max(base_memory["footprint_bytes"], 1),
        "flops_ratio": memory["flops"] / max(base_memory["flops"], 1),
        "bytes_accessed_ratio": memory["bytes_accessed"] / max(base_memory["bytes_accessed"], 1),
        "residual_bytes_per_element": residual,
        "residuals": described,
    }
  return results


Paired = tuple[dict[str, list[float]], dict[str, list[float]]]  # seconds, ratios to relu


def _paired_forward_backward(
    functions: dict[str, Callable[[jax.Array], jax.Array]], dtype: str, array_size: int,
    rounds: int,
) -> Paired:
  """Each function's ``jax.vjp`` and pullback on one large array, timed beside relu's."""
  array = jax.random.normal(jax.random.key(1), (array_size,), jnp.float32).astype(dtype)

  def forward_backward(function):
    def both(x):
      outputs, pullback = jax.vjp(function, x)
      return outputs, pullback(outputs)
    compiled = jax.jit(both)
    return lambda: compiled(array)

  calls = {name: forward_backward(function) for name, function in functions.items()}
  return timing.paired(calls[BASELINE], calls, rounds, calls_per_round=10)


def _paired_steps(
    functions: dict[str, Callable[[jax.Array], jax.Array]], shape: MlpShape, rounds: int
) -> Paired:
  """Each function's MLP training step, timed beside relu's."""
  # Every step reads the same weight and input buffers: a candidate's own
  # copies start cold in the caches that relu's, timed before each, keep warm.
  _, shared_arguments = mlp_step(jax.nn.relu, shape)

  def training_step(function):
    step, _ = mlp_step(function, shape)
    return functools.partial(step, *shared_arguments)

  steps = {name: training_step(function) for name, function in functions.items()}
  return timing.paired(steps[BASELINE], steps, rounds)


def _timed(paired: Paired, name: str) -> dict[str, Any]:
  """One candidate's median, fastest and slowest seconds, and its median ratio to relu."""
  seconds, ratios = paired
  return {**timing.Timing.of(seconds[name]).to_dict(), "ratio": statistics.median(ratios[name])}
