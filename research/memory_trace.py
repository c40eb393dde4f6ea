"""One run's sizes, counted from one abstract trace of its model: nothing allocated or compiled.

:func:`run_sizes` traces building a run's model and calling it on a batch
of two (``jax.make_jaxpr``); its outputs are the state's shapes, and the
equations the batch feeds are what the forward pass computes per example.
:func:`research.memory.estimate` scales these to a grid.

Example:
  >>> import jax, jax.numpy as jnp
  >>> closed = jax.make_jaxpr(lambda x: jnp.tanh(x @ jnp.ones((3, 4))))(jnp.ones((2, 3)))
  >>> batch_bytes(closed.jaxpr, set(closed.jaxpr.invars))  # x @ w, then tanh: 2 x 4 floats each
  64
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np

from research import grid, observe, optimizers, train
from research.config import Config
from research.data import Dataset

# Outputs XLA never writes: slices and pads are fused into the concatenation
# that reads them (a convolution's patches), reshapes and broadcasts are views.
_VIEWS = frozenset({"slice", "pad", "reshape", "squeeze", "expand_dims", "broadcast_in_dim"})
# A max-pool's gradient (XLA:CPU's select-and-scatter) keeps each input
# element's value and index, and their cotangents: measured 32 bytes on VGG-11.
POOL_BYTES_PER_INPUT = 32


def nbytes(tree: Any) -> int:
  """Bytes of every array leaf of an abstract tree (random keys count their data)."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    dtype = leaf.dtype
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
      itemsize = 8  # two uint32 words per threefry key
    else:
      itemsize = np.dtype(dtype).itemsize
    total += math.prod(leaf.shape) * itemsize
  return total


class RunSizes(NamedTuple):
  """One run's sizes, from one abstract trace of its initialisation and forward pass."""

  parameters: int
  state_bytes: int  # parameters, optimizer state, model state
  example_bytes: int  # what the forward pass computes from one example, in float32
  layers: int  # rows of layers.csv per evaluation
  units: int  # elements one example passes through the activation


def batch_bytes(jaxpr: jax_core.Jaxpr, tainted: set[Any]) -> int:
  """Bytes of every value ``jaxpr`` computes from the variables in ``tainted`` (the batch).

  Follows the data into nested calls (``jit``, custom derivatives), where
  the call's outputs are its last values; of a ``cond``'s branches only the
  largest counts, as only one runs. Views (:data:`_VIEWS`) count nothing; a
  max-pool counts its gradient's :data:`POOL_BYTES_PER_INPUT`.
  """
  total = 0
  for equation in jaxpr.eqns:
    inputs = [isinstance(v, jax_core.Var) and v in tainted for v in equation.invars]
    if not any(inputs):
      continue  # the initialisation: parameters, not the batch
    tainted.update(equation.outvars)
    nested = [
        batch_bytes(sub, {v for v, fed in zip(sub.invars, _aligned(inputs, sub.invars)) if fed})
        for sub in _nested_jaxprs(equation)
    ]
    if nested:
      total += max(nested)
    elif equation.primitive.name == "reduce_window_max":
      total += nbytes([v.aval for v in equation.outvars])
      total += POOL_BYTES_PER_INPUT * math.prod(equation.invars[0].aval.shape)
    elif equation.primitive.name not in _VIEWS:
      total += nbytes([v.aval for v in equation.outvars])
  return total


def _nested_jaxprs(equation: jax_core.JaxprEqn) -> list[jax_core.Jaxpr]:
  """The jaxprs an equation calls: a ``jit``'s, a custom derivative's, a cond's branches."""
  found = []
  for value in equation.params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      item = getattr(item, "jaxpr", item)  # a ClosedJaxpr's Jaxpr
      if isinstance(item, jax_core.Jaxpr):
        found.append(item)
  return found


def _aligned(fed: list[bool], invars: list[Any]) -> list[bool]:
  """Which inputs of a nested jaxpr the batch feeds.

  Those of the equation's last inputs (a cond's branches do not take its
  index); all of them where the two do not line up.
  """
  if len(invars) > len(fed):
    return [True] * len(invars)
  return fed[len(fed) - len(invars):]


def run_sizes(config: Config, dataset: Dataset, first: grid.Grid) -> RunSizes:
  """One run's sizes: its state's shapes and what its forward pass computes, nothing allocated.

  One ``jax.make_jaxpr`` of building the model and calling it on a batch of
  two: the outputs are the state's shapes, the equations fed by the batch its
  intermediate values (every activation, the convolutions' patches...).
  """
  program = train.Program.of(config, dataset, first)
  build = train.model_builder(program)
  traced: dict[str, Any] = {}

  def one_run(x: jax.Array) -> tuple[Any, ...]:
    record, calls = observe.recording(first_activation(first))
    model = build(record, jax.random.key(0))
    params, model_state = observe.split(model)
    opt_state = optimizers.make_optimizer(config, jnp.float32(1)).init(params)
    calls.clear()  # a factory may call its model while building it (nnx.bridge)
    model.train()
    model(x)
    traced.update(calls=len(calls), kernels=sum(1 for p in jax.tree.leaves(params) if p.ndim >= 2),
                  units=sum(math.prod(z.shape[1:]) for z, _ in calls),
                  parameters=sum(math.prod(p.shape) for p in jax.tree.leaves(params)))
    return params, opt_state, model_state

  batch = 2
  closed = jax.make_jaxpr(one_run)(jax.ShapeDtypeStruct((batch, *dataset.input_shape), jnp.float32))
  return RunSizes(
      parameters=traced["parameters"],
      state_bytes=nbytes(closed.out_avals),
      example_bytes=batch_bytes(closed.jaxpr, set(closed.jaxpr.invars)) // batch,
      layers=max(traced["kernels"], traced["calls"]),
      units=traced["units"],
  )


def first_activation(first: grid.Grid) -> Any:
  """The grid's activation at its first run's hyperparameters, as a function of ``z``."""
  return functools.partial(first.activation(), **dict(first.runs[0].hyperparameters))


def _saved_per_element(activation: Any) -> dict[str, int]:
  """Bytes per element, by dtype, that ``activation``'s forward pass saves for its backward."""
  size = 64
  pullback = jax.eval_shape(lambda z: jax.vjp(activation, z)[1],
                            jax.ShapeDtypeStruct((size,), jnp.float32))
  saved: dict[str, int] = {}
  for leaf in jax.tree.leaves(pullback):
    if leaf.shape == (size,):
      saved[str(leaf.dtype)] = saved.get(str(leaf.dtype), 0) + leaf.dtype.itemsize
  return saved


def switch_bytes(grids: tuple[grid.Grid, ...]) -> int:
  """Bytes per activation element that a switch over ``grids``' activations saves beyond the first's.

  Under ``batching="map"`` each run's activation is a ``lax.switch`` over the
  program's activations (:func:`research.train.bound_activation`), and a
  switch's backward keeps, of each type, what the branch needing most saves:
  relu's one-byte mask beside leaky_relu's float32 input, for every run.
  """
  saved = [_saved_per_element(first_activation(g)) for g in grids]
  merged = {dtype: max(each.get(dtype, 0) for each in saved) for dtype in set().union(*saved)}
  return sum(merged.values()) - sum(saved[0].values())
