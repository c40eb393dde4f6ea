"""One jaxpr interpreter that finds activation calls, for :func:`swap` and stats.

``intercept(fn, interceptor, names)`` traces ``fn`` to a jaxpr and evaluates it
again, handing every call of a named activation to ``interceptor`` instead of
evaluating it. What the interceptor does is the only difference between its
uses: :func:`activations.swap` calls a replacement, and
:func:`activations.activation_stats` calls the original and records its input
and output. It mirrors Flax's ``nn.intercept_methods``: the interceptor is
``interceptor(next_fun, args, context)``, where ``next_fun(*args)`` evaluates
the original call and ``context`` is a :class:`Call`.

How an activation shows up in a jaxpr. An activation is found by the name JAX
records for a call: the ``name`` of a ``jit`` (pjit) equation, or the function
name of a ``custom_jvp_call`` / ``custom_vjp_call``. In JAX 0.10:

* ``jax.nn.relu`` and ``jax.nn.relu6`` (and so ``nnx.relu``, ``nn.relu``) are
  ``custom_jvp_call`` named ``relu`` / ``relu6``;
* ``leaky_relu``, ``elu``, ``celu``, ``selu``, ``silu`` (also ``swish``),
  ``softplus``, ``hard_tanh``, ``hard_sigmoid``, ``hard_silu``,
  ``log_sigmoid``, ``soft_sign``, ``mish``, ``squareplus``, ``sparse_plus``,
  ``glu``, ``log_softmax``, ``identity`` are ``jit`` calls with their names;
* every activation of this library is a ``custom_vjp_call`` (``impl="jvp"``:
  ``custom_jvp_call``) named after it: ``necro_relu``, ``sugar_bsilu``, ...;
* **inlined, so not found**: ``jax.nn.gelu`` (a few ``mul``/``tanh``
  equations), ``jax.nn.sigmoid`` and ``jnp.tanh`` (the single primitives
  ``logistic`` and ``tanh``, which also occur inside other functions) and
  ``jax.nn.softmax``. Use the library's ``activations.gelu``,
  ``activations.sigmoid`` or ``activations.tanh`` in a model to make them
  swappable.

Higher-order primitives are not inlined: the bodies of ``jit``, ``scan``,
``cond``, ``while``, ``checkpoint`` (remat), ``custom_jvp_call``,
``custom_vjp_call`` and ``shard_map`` are rewritten and the primitive is bound
again around the new body with its own parameters, so JAX's rules for it
(and a custom rule's own JVP or forward rule, rewritten the same way) still
apply. A ``custom_vjp`` backward rule is Python, not a jaxpr, and is kept as
written. An equation with no named call inside is bound unchanged.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

import jax
from jax._src import core as jax_core
from jax._src import linear_util
from jax._src.interpreters import partial_eval

__all__ = ["Call", "Interceptor", "Interpreter", "called_activations", "intercept"]


class Call(NamedTuple):
  """The context an interceptor gets for one activation call.

  Attributes:
    name: the activation's name, as recorded in the jaxpr (``"relu"``).
    index: the call's position in trace order, from 0 (the same call site
      inside a loop body keeps one index).
  """

  name: str
  index: int


Interceptor = Callable[[Callable[..., Any], tuple[Any, ...], Call], Any]

_CUSTOM_CALLS = ("custom_jvp_call", "custom_vjp_call")

# The jax.nn activations that keep a named call in a jaxpr (JAX 0.10); the
# others (gelu, sigmoid, softmax, and jnp.tanh) are inlined.
JAX_ACTIVATIONS = (
    "relu", "relu6", "leaky_relu", "elu", "celu", "selu", "silu", "softplus",
    "hard_tanh", "hard_sigmoid", "hard_silu", "log_sigmoid", "soft_sign", "mish",
    "squareplus", "sparse_plus", "glu", "log_softmax", "identity",
)


def call_name(equation: jax_core.JaxprEqn) -> str | None:
  """The name of a ``jit`` or custom-derivative call, or ``None``."""
  name = equation.primitive.name
  if name in ("jit", "pjit"):
    return equation.params.get("name")
  if name in _CUSTOM_CALLS:
    return equation.params["call_jaxpr"].jaxpr.debug_info.func_name
  return None


def _sub_jaxprs(equation: jax_core.JaxprEqn) -> list[jax_core.Jaxpr]:
  found = []
  for value in equation.params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if isinstance(item, jax_core.ClosedJaxpr):
        found.append(item.jaxpr)
      elif isinstance(item, jax_core.Jaxpr):
        found.append(item)
  return found


def names_called(jaxpr: jax_core.Jaxpr) -> list[str]:
  names: list[str] = []
  for equation in jaxpr.eqns:
    name = call_name(equation)
    if name is not None:
      names.append(name)
    for sub in _sub_jaxprs(equation):
      names.extend(names_called(sub))
  return names


def _calls_any(jaxpr: jax_core.Jaxpr, names: Collection[str]) -> bool:
  return any(name in names for name in names_called(jaxpr))


def known_activation_names() -> set[str]:
  from activations import registry  # the registry imports nothing from here

  return set(registry.names()) | set(JAX_ACTIVATIONS)


def called_activations(jaxpr: jax_core.Jaxpr) -> list[str]:
  """The activations a jaxpr calls, in trace order, each name once."""
  known = known_activation_names()
  return list(dict.fromkeys(n for n in names_called(jaxpr) if n in known))


class Interpreter:
  """Evaluates jaxprs, handing each named call to an interceptor."""

  def __init__(self, interceptor: Interceptor, names: Collection[str]):
    self.interceptor = interceptor
    self.names = frozenset(names)
    self.counter = itertools.count()

  # --- evaluation -----------------------------------------------------------

  def evaluate(
      self, jaxpr: jax_core.Jaxpr, consts: Sequence[Any], args: Sequence[Any]
  ) -> list[Any]:
    env: dict[jax_core.Var, Any] = {}

    def read(atom: Any) -> Any:
      return atom.val if isinstance(atom, jax_core.Literal) else env[atom]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for equation in jaxpr.eqns:
      invals = [read(v) for v in equation.invars]
      with equation.ctx.manager:
        outvals = self.evaluate_equation(equation, invals)
      if not equation.primitive.multiple_results:
        outvals = [outvals]
      env.update(zip(equation.outvars, outvals))
    return [read(v) for v in jaxpr.outvars]

  def evaluate_equation(self, equation: jax_core.JaxprEqn, invals: list[Any]) -> Any:
    name = call_name(equation)
    if name in self.names:
      return self.intercept_call(equation, name, invals)
    if not any(_calls_any(sub, self.names) for sub in _sub_jaxprs(equation)):
      return _bind(equation, invals)  # unchanged, with every rule it has
    rebuild = _REBUILDERS.get(equation.primitive.name)
    if rebuild is None:
      raise NotImplementedError(
          f"Cannot look inside a {equation.primitive.name!r} equation, which"
          f" calls {sorted(set(names_called(_sub_jaxprs(equation)[0])))}."
          " Supported: " + ", ".join(sorted(_REBUILDERS)) + "."
      )
    return rebuild(self, equation, invals)

  def intercept_call(self, equation: jax_core.JaxprEqn, name: str, invals: list[Any]):
    context = Call(name, next(self.counter))

    def next_fun(*args: Any) -> Any:
      outvals = _bind(equation, list(args))
      return outvals[0] if equation.primitive.multiple_results else outvals

    result = self.interceptor(next_fun, tuple(invals), context)
    (outvar,) = equation.outvars
    expected = outvar.aval
    result = jax.numpy.asarray(result)
    if result.shape != expected.shape or result.dtype != expected.dtype:
      raise ValueError(
          f"The replacement of {name!r} (call {context.index}) must keep its"
          f" output's shape and dtype {expected.str_short()}, got"
          f" {result.dtype}{list(result.shape)}."
      )
    return [result] if equation.primitive.multiple_results else result

  # --- rewriting bodies -----------------------------------------------------

  def rewrite_closed(self, closed: jax_core.ClosedJaxpr) -> jax_core.ClosedJaxpr:
    """The same computation, traced again with the calls intercepted."""
    jaxpr, consts = self.rewrite(closed.jaxpr, closed.consts, closed.in_avals)
    return jax_core.ClosedJaxpr(jaxpr, consts)

  def rewrite(self, jaxpr, consts, in_avals) -> tuple[jax_core.Jaxpr, list[Any]]:
    def body(*args):
      return self.evaluate(jaxpr, consts, args)

    wrapped = linear_util.wrap_init(body, debug_info=jaxpr.debug_info)
    new_jaxpr, _, new_consts = partial_eval.trace_to_jaxpr_dynamic(wrapped, in_avals)
    return new_jaxpr, new_consts

  def rewrite_thunk(self, thunk: Any) -> Any:
    """A custom rule's jaxpr thunk whose jaxpr is rewritten when JAX builds it."""

    def build(*flags):
      jaxpr, consts, *rest = thunk.call_wrapped(*flags)
      new_jaxpr, new_consts = self.rewrite(jaxpr, consts, [v.aval for v in jaxpr.invars])
      return (new_jaxpr, new_consts, *rest)

    return linear_util.wrap_init(build, debug_info=thunk.debug_info)


def _bind(equation: jax_core.JaxprEqn, invals: Sequence[Any]) -> Any:
  params = equation.primitive.get_bind_params(equation.params)
  return equation.primitive.bind(*invals, **params)


def _bind_with(equation: jax_core.JaxprEqn, invals: Sequence[Any], **changes: Any):
  params = equation.primitive.get_bind_params({**equation.params, **changes})
  return equation.primitive.bind(*invals, **params)


# One rebuilder per higher-order primitive: the body rewritten, the primitive
# bound again with its own parameters.


def _rebuild_jit(interpreter: Interpreter, equation, invals):
  return _bind_with(
      equation, invals, jaxpr=interpreter.rewrite_closed(equation.params["jaxpr"])
  )


def _rebuild_scan(interpreter: Interpreter, equation, invals):
  return _bind_with(
      equation, invals, jaxpr=interpreter.rewrite_closed(equation.params["jaxpr"])
  )


def _rebuild_cond(interpreter: Interpreter, equation, invals):
  branches = tuple(
      interpreter.rewrite_closed(branch) for branch in equation.params["branches"]
  )
  return _bind_with(equation, invals, branches=branches)


def _rebuild_while(interpreter: Interpreter, equation, invals):
  return _bind_with(
      equation,
      invals,
      cond_jaxpr=interpreter.rewrite_closed(equation.params["cond_jaxpr"]),
      body_jaxpr=interpreter.rewrite_closed(equation.params["body_jaxpr"]),
  )


def _rebuild_checkpoint(interpreter: Interpreter, equation, invals):
  jaxpr = equation.params["jaxpr"]
  new_jaxpr, consts = interpreter.rewrite(jaxpr, (), [v.aval for v in jaxpr.invars])
  # The body's new constants become leading inputs, as remat's own do.
  new_jaxpr = partial_eval.convert_constvars_jaxpr(new_jaxpr)
  return _bind_with(equation, [*consts, *invals], jaxpr=new_jaxpr)


def _rebuild_custom_jvp(interpreter: Interpreter, equation, invals):
  return _bind_with(
      equation,
      invals,
      call_jaxpr=interpreter.rewrite_closed(equation.params["call_jaxpr"]),
      jvp_jaxpr_fun=interpreter.rewrite_thunk(
          equation.params["jvp_jaxpr_fun"]),
  )


def _rebuild_custom_vjp(interpreter: Interpreter, equation, invals):
  return _bind_with(
      equation,
      invals,
      call_jaxpr=interpreter.rewrite_closed(equation.params["call_jaxpr"]),
      fwd_jaxpr_thunk=interpreter.rewrite_thunk(
          equation.params["fwd_jaxpr_thunk"]),
  )


def _rebuild_shard_map(interpreter: Interpreter, equation, invals):
  params = equation.params
  jaxpr = params["jaxpr"]

  def body(*args):
    outs = interpreter.evaluate(jaxpr, (), args)
    return tuple(outs)

  mapped = jax.shard_map(
      body,
      mesh=params["mesh"],
      in_specs=tuple(params["in_specs"]),
      out_specs=tuple(params["out_specs"]),
      check_vma=params["check_vma"],
      axis_names=set(params["newly_manual_axes"]),
  )
  return list(mapped(*invals))


_REBUILDERS: dict[str, Callable[..., Any]] = {
    "jit": _rebuild_jit,
    "pjit": _rebuild_jit,
    "scan": _rebuild_scan,
    "cond": _rebuild_cond,
    "while": _rebuild_while,
    "checkpoint": _rebuild_checkpoint,
    "remat2": _rebuild_checkpoint,
    "custom_jvp_call": _rebuild_custom_jvp,
    "custom_vjp_call": _rebuild_custom_vjp,
    "shard_map": _rebuild_shard_map,
}


def _is_dynamic(leaf: Any) -> bool:
  return isinstance(leaf, (jax.Array, jax_core.Tracer)) or hasattr(leaf, "__jax_array__") or (
      hasattr(leaf, "dtype") and hasattr(leaf, "shape")
  )


def trace(fn: Callable[..., Any], args: tuple, kwargs: dict):
  """``fn``'s jaxpr for these arguments, the dynamic leaves and the output tree.

  Array leaves are traced; every other leaf (Python numbers and flags,
  strings) is held fixed, as ``jax.jit`` holds static arguments.
  """
  leaves, tree = jax.tree.flatten((args, kwargs))
  dynamic = [_is_dynamic(leaf) for leaf in leaves]
  arrays = [leaf for leaf, is_array in zip(leaves, dynamic) if is_array]

  def flat_fn(*arrays):
    replaced = iter(arrays)
    full = [next(replaced) if d else leaf for leaf, d in zip(leaves, dynamic)]
    args, kwargs = jax.tree.unflatten(tree, full)
    return fn(*args, **kwargs)

  closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*arrays)
  return closed, arrays, jax.tree.structure(out_shape)


def _check_called(closed: jax_core.ClosedJaxpr, required: Collection[str], owner: str):
  found = set(names_called(closed.jaxpr))
  missing = [name for name in required if name not in found]
  if missing:
    called = called_activations(closed.jaxpr)
    raise ValueError(
        f"{owner}: the function never calls {', '.join(map(repr, missing))}; it"
        f" calls {', '.join(map(repr, called)) or 'no activation found by name'}."
        " jax.nn.gelu, jax.nn.sigmoid and jnp.tanh are inlined by JAX, so a call of"
        " one cannot be found by name: call the catalogue's version (activations.gelu)"
        " or a jitted one (jax.jit(jax.nn.gelu)) in the model instead, and it can."
    )


def intercept(
    fn: Callable[..., Any],
    interceptor: Interceptor,
    names: Collection[str],
    *,
    required: Collection[str] = (),
    owner: str = "intercept",
) -> Callable[..., Any]:
  """``fn`` with every call of an activation in ``names`` handed to ``interceptor``.

  Args:
    fn: any JAX-traceable function.
    interceptor: ``interceptor(next_fun, args, context)`` returns the call's
      output; ``next_fun(*args)`` is the original call, ``args`` its inputs
      (the activation's input first, then any traced hyperparameters) and
      ``context`` a :class:`Call`.
    names: the activation names to intercept.
    required: names ``fn`` must call; a ``ValueError`` naming what it calls
      otherwise.
    owner: the function named in that error.

  Returns:
    A function with ``fn``'s signature.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> seen = []
    >>> def spy(next_fun, args, context):
    ...   seen.append((context.name, args[0].shape))
    ...   return next_fun(*args)
    >>> f = intercept(lambda x: jax.nn.relu(x) + jax.nn.silu(x), spy, {"relu", "silu"})
    >>> f(jnp.ones(3))
    Array([1.7310586, 1.7310586, 1.7310586], dtype=float32)
    >>> seen
    [('relu', (3,)), ('silu', (3,))]
  """

  @functools.wraps(fn)
  def intercepted(*args: Any, **kwargs: Any) -> Any:
    closed, arrays, out_tree = trace(fn, args, kwargs)
    _check_called(closed, required, owner)
    interpreter = Interpreter(interceptor, names)
    outputs = interpreter.evaluate(closed.jaxpr, closed.consts, arrays)
    return jax.tree.unflatten(out_tree, outputs)

  return intercepted
