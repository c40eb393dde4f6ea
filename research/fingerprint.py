"""What a run computes, as a short hash: its traced code and its data.

A run's id already holds every config field, but not the code behind the
names: a user's factory, loader or surrogate, or a registered activation,
can change under the same name. So each grid's id also covers

* the **code**: the jaxprs of one run's initialisation and of one training
  step (forward, the activation's backward, the optimizer), traced on
  abstract inputs of the data's shapes, with their constants; and
* the **data**: :attr:`research.data.Dataset.fingerprint`.

Changing a factory's body, a surrogate's backward or a loader's arrays gives
new ids, and a rerun trains the runs anew instead of resuming the old rows.
The same code, JAX version and data give the same ids in every process.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from typing import Any

import jax
import jax.extend as jax_extend
import jax.numpy as jnp
import numpy as np

from research import model_spec, train
from research.grid import activation_function
from research.train import Program, RunInputs, RunState

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # reprs of Python objects differ per process


def _one_run_inputs(program: Program) -> RunInputs:
  key = jax.eval_shape(lambda: jax.random.key(0))
  scalar = jax.ShapeDtypeStruct((), jnp.float32)
  swept = tuple({name: scalar for name in branch.swept} for branch in program.branches)
  return RunInputs(key, key, key, scalar, jax.ShapeDtypeStruct((), jnp.int32), swept)


def _text_and_constants(closed: jax_extend.core.ClosedJaxpr, digest: Any) -> None:
  digest.update(_ADDRESS.sub("", str(closed.jaxpr)).encode())
  for constant in closed.consts:
    array = np.asarray(constant)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())


def code(program: Program) -> str:
  """Ten hex digits of the traced init and training step of one run of ``program``.

  Only what a single run computes is traced (``batching="map"``), so the
  fingerprint of a grid does not depend on the device count or the grids
  trained beside it. Traced once per program and per function objects behind
  its names: a module imported anew, or an activation registered again, is
  traced again.
  """
  model = program.config.model
  functions = (model_spec.factory(model)[0] if not model_spec.is_built_in(model) else None,
               *(activation_function(branch.name) for branch in program.branches))
  return _code(program, functions)


@functools.lru_cache(maxsize=256)
def _code(program: Program, functions: tuple[object, ...]) -> str:
  del functions  # part of the cache's key only
  program = dataclasses.replace(program, config=dataclasses.replace(program.config, batching="map"))
  inputs = _one_run_inputs(program)
  digest = hashlib.sha256()
  _text_and_constants(jax.make_jaxpr(lambda i: train.init_run(program, i))(inputs), digest)
  state: RunState = jax.eval_shape(lambda i: train.init_run(program, i), inputs)
  batch = program.config.batch_size
  targets = (jax.ShapeDtypeStruct((batch,), jnp.int32) if program.task == "classification"
             else jax.ShapeDtypeStruct((batch, program.num_outputs), jnp.float32))
  data = train.Arrays(
      jax.ShapeDtypeStruct((batch, *program.input_shape), jnp.float32), targets, (), ())
  step = (jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((batch,), jnp.int32))
  traced = jax.make_jaxpr(
      lambda state, inputs, data, step: train.train_step(program, data, inputs, state, step)
  )(state, inputs, data, step)
  _text_and_constants(traced, digest)
  return digest.hexdigest()[:10]
