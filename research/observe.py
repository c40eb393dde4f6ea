"""Running any model while watching the activation it was handed.

The engine measures every model, its own and a user's, the same way: the model
is built with a *recording* activation, a closure that computes the run's
activation and keeps each call's input ``z`` and output ``f(z)`` in a Python
list while the program is traced. The recorded arrays are ordinary values of
the traced computation, returned beside the logits, so the metrics are
computed inside the compiled program, with no host callback, and a model never
has to return its pre-activations. Calls must happen in the model's own trace:
a call inside ``jax.checkpoint``, ``scan`` or an ``nnx`` lifted transform
cannot be recorded this way (:func:`check_model` says so, before training).

A model's state is split as Flax NNX splits it: the trained ``nnx.Param``
leaves, and everything else (BatchNorm's running averages, Dropout's random
streams), which the engine carries from step to step beside the parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.extend as jax_extend
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import Array

Activation = Callable[[Array], Array]
Builder = Callable[[Activation, Array], nnx.Module]  # (activation, init key) -> model


class Observed(NamedTuple):
  """A forward pass with what the metrics need from inside the network."""

  outputs: Array  # (batch, num_outputs): logits, or predictions for regression
  preactivations: tuple[Array, ...]  # per activation call, in call order: its input z
  activations: tuple[Array, ...]  # per call, the activation's output f(z)
  model_state: nnx.State  # the non-parameter state after the call (BatchNorm averages...)


def recording(activation: Activation) -> tuple[Activation, list[tuple[Array, Array]]]:
  """``activation`` that also appends ``(z, f(z))`` to the returned list at each call.

  Examples:
    >>> record, calls = recording(jax.nn.relu)
    >>> record(jnp.array([-1.0, 2.0]))
    Array([0., 2.], dtype=float32)
    >>> [z.tolist() for z, _ in calls]
    [[-1.0, 2.0]]
  """
  calls: list[tuple[Array, Array]] = []

  def record(z: Array) -> Array:
    out = activation(z)
    calls.append((z, out))
    return out

  return record, calls


def graphdef(build: Builder, activation: Activation) -> nnx.GraphDef:
  """The structure of the model ``build`` makes with ``activation``, nothing computed."""
  return nnx.graphdef(nnx.eval_shape(lambda: build(activation, jax.random.key(0))))


def split(model: nnx.Module) -> tuple[nnx.State, nnx.State]:
  """The model's trained parameters and the rest of its state."""
  _, params, rest = nnx.split(model, nnx.Param, ...)
  return params, rest


def merged(
    build: Builder, activation: Activation, params: nnx.State, model_state: nnx.State,
    *, training: bool,
) -> nnx.Module:
  """The model with ``params`` and ``model_state``, in training or evaluation mode."""
  # Fresh variables, so the model's own updates (BatchNorm's averages) belong
  # to the trace this is called in, not the one the state came from.
  model = nnx.merge(graphdef(build, activation), params, model_state, copy=True)
  if training:
    model.train()
  else:
    model.eval()
  return model


def call(
    build: Builder, activation: Activation, params: nnx.State, model_state: nnx.State, x: Array,
    *, training: bool, dropout_key: Array | None = None, dtype: Any = jnp.float32,
) -> Observed:
  """Runs the model on ``x``, recording each activation call.

  ``dtype`` is the computation's: the parameters and inputs are cast to it
  (``bfloat16``: mixed precision, the float32 parameters stay the master copy
  and their gradients float32); the outputs return as float32, and so does
  the non-parameter state.
  """
  record, calls = recording(activation)
  compute_params = jax.tree.map(lambda p: p.astype(dtype), params)
  if dropout_key is not None:
    model_state = reseeded(model_state, dropout_key)
  model = merged(build, record, compute_params, model_state, training=training)
  calls.clear()  # a factory may call its model while building it (nnx.bridge's lazy_init)
  outputs = model(x.astype(dtype))
  new_state = nnx.state(model, nnx.Not(nnx.Param))
  new_state = jax.tree.map(_like, new_state, model_state)
  return Observed(
      outputs.astype(jnp.float32),
      tuple(z for z, _ in calls), tuple(out for _, out in calls), new_state,
  )


def reseeded(model_state: nnx.State, key: Array) -> nnx.State:
  """``model_state`` with its ``dropout`` random streams restarted from ``key``.

  Functional, unlike ``nnx.reseed``: the engine draws each step's dropout
  masks from the run's key and the step, so they repeat on a rerun and are
  shared by runs of one seed whatever their activation.
  """

  def restart(variable: Any) -> Any:
    if isinstance(variable, nnx.RngKey) and variable.tag == "dropout":
      return variable.replace(key)
    if isinstance(variable, nnx.RngCount) and variable.tag == "dropout":
      return variable.replace(jnp.zeros_like(variable[...]))
    return variable

  return jax.tree.map(restart, model_state, is_leaf=lambda leaf: isinstance(leaf, nnx.Variable))


def _like(new: Array, old: Array) -> Array:
  """``new`` in ``old``'s dtype: float state (BatchNorm's averages) stays float32 under bfloat16."""
  return new.astype(old.dtype) if jnp.issubdtype(old.dtype, jnp.floating) else new


def kernel_order(build: Builder, activation: Activation, x: jax.ShapeDtypeStruct) -> tuple[tuple[Any, ...], ...]:
  """The paths of the model's kernels (parameters of two or more axes), in order of use.

  A kernel's place is the first operation of the forward pass that reads it,
  so a ResNet's stem comes first whatever its attributes are called; kernels
  read by the same operation keep their order in the state. The built-in
  MLP and CNNs give their hidden layers, then the output layer.
  """
  params, model_state = nnx.eval_shape(lambda: split(build(activation, jax.random.key(0))))
  paths_and_leaves = [
      (path, leaf) for path, leaf in nnx.to_flat_state(params) if len(leaf.shape) >= 2
  ]
  kernel_paths = [path for path, _ in paths_and_leaves]
  flat, treedef = jax.tree.flatten(params)
  path_of_leaf = {index: path for index, (path, _) in enumerate(nnx.to_flat_state(params))}

  def forward(leaves, model_state):
    return call(build, activation, jax.tree.unflatten(treedef, leaves), model_state,
                jnp.zeros(x.shape, x.dtype), training=False).outputs

  jaxpr = jax.make_jaxpr(forward)(flat, model_state).jaxpr
  first_use = {}
  for position, equation in enumerate(jaxpr.eqns):
    for variable in equation.invars:
      if isinstance(variable, jax_extend.core.Var) and variable in jaxpr.invars:
        first_use.setdefault(jaxpr.invars.index(variable), position)
  rank = {path_of_leaf[index]: position for index, position in first_use.items()
          if index in path_of_leaf}  # the parameters come first; the model state after
  state_order = {path: number for number, path in enumerate(kernel_paths)}
  return tuple(sorted(kernel_paths, key=lambda path: (rank.get(path, np.inf), state_order[path])))


def kernels(params: nnx.State, paths: Sequence[tuple[Any, ...]]) -> tuple[Array, ...]:
  """The arrays at ``paths`` of a parameter state (or of its gradient)."""
  flat = dict(nnx.to_flat_state(params))
  return tuple(_value(flat[path]) for path in paths)


def _value(leaf: Any) -> Array:
  return leaf[...] if isinstance(leaf, nnx.Variable) else leaf


def parameter_count(build: Builder, activation: Activation) -> int:
  """How many numbers the model trains (every ``nnx.Param`` leaf's size).

  Examples:
    >>> parameter_count(lambda f, key: nnx.Linear(3, 4, rngs=nnx.Rngs(key)), jax.nn.relu)
    16
  """
  params, _ = nnx.eval_shape(lambda: split(build(activation, jax.random.key(0))))
  return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in jax.tree.leaves(params)))
