"""``swap(fn, replacements)``: another activation in code you did not write.

``swap`` traces ``fn`` to a jaxpr and evaluates it again with every call of a
named activation replaced (see :mod:`activations.interpreter` for how calls
are found, and which activations JAX inlines). Nothing in ``fn``'s code
changes, so a Flax example, a ``model.apply`` or a loss function can be
trained with NecroReLU where it was written with ReLU.

An NNX module comes back as a shallow copy of itself, of a subclass of its
class whose ``__call__`` is swapped: the same submodules and Variables, so the
same state tree, under every JAX and NNX transform.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
from flax import nnx
from flax.nnx import pytreelib

from activations import interpreter, registry
from activations.interpreter import Call

__all__ = ["SwappedModule", "activation_name", "functional_call", "swap"]

Replacements = Mapping[str | Callable[..., Any] | Call, Callable[..., Any] | str]
# What _check_replacements returns: "relu" (every call) or Call("relu", 1) (one).
_Checked = dict[str | Call, Callable[..., Any]]


def activation_name(activation: str | Callable[..., Any]) -> str:
  """The name an activation's calls have in a jaxpr.

  Examples:
    >>> import jax
    >>> activation_name(jax.nn.relu), activation_name(jax.nn.swish), activation_name("elu")
    ('relu', 'silu', 'elu')
  """
  if isinstance(activation, str):
    if not activation.isidentifier():
      raise ValueError(
          f"An activation to swap is a function or a name such as 'relu', got"
          f" {activation!r}."
      )
    return activation
  name = getattr(activation, "__name__", None)
  if not callable(activation) or not isinstance(name, str):
    raise TypeError(
        "An activation to swap is a function such as jax.nn.relu or a name such"
        f" as 'relu', got {activation!r}."
    )
  return name


def _check_key(key: Any) -> str | Call:
  if not isinstance(key, Call):
    return activation_name(key)
  index = key.index
  if isinstance(index, bool) or not isinstance(index, int) or index < 0:
    raise ValueError(
        f"A call to swap is Call(activation, index) with an index from 0, got {key!r}."
    )
  return Call(activation_name(key.name), index)


def _check_replacements(replacements: Any) -> _Checked:
  if not isinstance(replacements, Mapping) or not replacements:
    raise TypeError(
        "swap needs a non-empty mapping from activations to their replacements,"
        " e.g. {jax.nn.relu: activations.necro_relu}, got"
        f" {replacements!r}."
    )
  checked: _Checked = {}
  for activation, replacement in replacements.items():
    key = _check_key(activation)
    if isinstance(replacement, str):  # a registry spec: "necro_relu(negative_slope=0.05)"
      replacement = registry.get(replacement)
    if not callable(replacement):
      raise TypeError(
          f"The replacement of {key!r} must be callable or a registry spec such"
          f" as 'necro_relu(negative_slope=0.05)', got {replacement!r}."
      )
    checked[key] = replacement
  return checked


def _names(checked: _Checked) -> frozenset[str]:
  return frozenset(key.name if isinstance(key, Call) else key for key in checked)


class _Replacer:
  """The interceptor of one evaluation.

  It numbers each activation's calls on its own, so ``Call("relu", 1)`` is the
  second ReLU call however many other activations are replaced around it.
  """

  def __init__(self, replacements: _Checked):
    self.replacements = replacements
    self.counts: collections.Counter[str] = collections.Counter()

  def __call__(self, next_fun: Callable[..., Any], args: tuple[Any, ...], context: Call) -> Any:
    index = self.counts[context.name]
    self.counts[context.name] += 1
    replacement = self.replacements.get(
        Call(context.name, index), self.replacements.get(context.name)
    )
    if replacement is None:  # another call of an activation replaced at one call
      return next_fun(*args)
    return replacement(args[0])

  def check_targets(self) -> None:
    for key in self.replacements:
      if isinstance(key, Call) and key.index >= self.counts[key.name]:
        raise ValueError(
            f"swap: the function calls {key.name!r} {self.counts[key.name]} time(s),"
            f" so it has no call {key.index} (calls count from 0)."
        )


def swap(
    fn: Callable[..., Any] | nnx.Module, replacements: Replacements
) -> Callable[..., Any]:
  """``fn`` with activations replaced, without editing its code.

  Args:
    fn: any JAX-traceable function (a Linen ``model.apply``, a loss function)
      or a Flax NNX module.
    replacements: maps an activation, given as the function (``jax.nn.relu``,
      ``nnx.relu``) or its name (``"relu"``), to its replacement, any
      elementwise callable such as ``activations.necro_relu``, or a registry
      spec such as ``"necro_relu(negative_slope=0.05)"``. A key
      ``activations.Call("relu", 1)`` replaces one call only: the second call
      of ``relu`` in trace order (calls count from 0, each activation on its
      own; a call inside a loop body is one call), so one layer can be
      targeted; it wins over a key naming the activation. The replacement
      gets the activation's input alone (a ``leaky_relu``'s slope is dropped)
      and must keep its shape and dtype.

  Returns:
    For a function, a function with ``fn``'s signature that composes with
    ``jit``, ``grad`` and ``vmap`` on either side. For an NNX module, a
    :class:`SwappedModule`: a shallow copy of it (the same submodules and
    Variables, so the same state tree) whose ``__call__`` is swapped. It
    behaves as the module does under ``jax.jit``, ``jax.grad``, ``jax.vmap``,
    ``nnx.jit``, ``nnx.grad``, ``nnx.vmap``, ``nnx.remat`` and
    ``nnx.Optimizer``, and training it trains the module (BatchNorm
    statistics still update).

  Raises:
    ValueError: when called, if ``fn`` never calls one of the activations to
      replace, or has no call of a ``Call`` key's index; the message names
      what it calls.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import activations
    >>> def loss(w, x):
    ...   return jax.nn.relu(x @ w).sum()
    >>> necro_loss = activations.swap(loss, {jax.nn.relu: activations.necro_relu})
    >>> w, x = jnp.ones((2, 2)), jnp.array([[-1.0, -2.0]])
    >>> loss(w, x), necro_loss(w, x)
    (Array(0., dtype=float32), Array(0., dtype=float32))
    >>> jax.grad(necro_loss)(w, x)
    Array([[-0.1, -0.1],
           [-0.2, -0.2]], dtype=float32)
    >>> activations.swap(loss, {"silu": activations.necro_relu})(w, x)
    Traceback (most recent call last):
    ...
    ValueError: swap: the function never calls 'silu'; it calls 'relu'. ...
    >>> twice = lambda x: jax.nn.relu(jax.nn.relu(x) - 1.0)
    >>> activations.swap(twice, {activations.Call("relu", 1): jnp.abs})(jnp.array([0.5]))
    Array([0.5], dtype=float32)
  """
  checked = _check_replacements(replacements)
  if isinstance(fn, nnx.Module):
    if not callable(fn):
      raise TypeError(f"swap needs a module with a __call__ method, got a {type(fn).__name__}.")
    return _swapped_copy(fn, checked)
  if not callable(fn):
    raise TypeError(f"swap needs a function or an NNX module, got {fn!r}.")
  names = _names(checked)

  @functools.wraps(fn)
  def swapped(*args: Any, **kwargs: Any) -> Any:
    replacer = _Replacer(checked)  # fresh call counts for each evaluation
    output = interpreter.intercept(fn, replacer, names, required=names, owner="swap")(
        *args, **kwargs
    )
    replacer.check_targets()
    return output

  return swapped


# --- NNX modules --------------------------------------------------------------


def _pure(graphdef: nnx.GraphDef, method: Callable[..., Any]) -> Callable[..., Any]:
  """``(state, *args) -> (output, new_state)``: ``method`` on a module rebuilt from ``state``."""

  def call(state: nnx.State, *args: Any, **kwargs: Any) -> tuple[Any, nnx.State]:
    # Merged inside the interceptor's trace, so its Variables live at that
    # trace level and the call may mutate them (BatchNorm, RNG counts).
    model = nnx.merge(graphdef, state)
    output = method(model, *args, **kwargs)
    return output, nnx.state(model)

  return call


def functional_call(
    module: nnx.Module,
    interceptor: interpreter.Interceptor,
    names: Any,
    *,
    required: Any = (),
) -> Callable[..., Any]:
  """``(state, *args) -> (output, new_state)`` for ``module``, intercepted.

  The module itself is left as it was.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> model = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), nnx.relu)
    >>> seen = []
    >>> spy = lambda next_fun, args, call: seen.append(call.name) or next_fun(*args)
    >>> output, state = functional_call(model, spy, {"relu"})(nnx.state(model), jnp.ones((1, 2)))
    >>> seen, output.shape
    (['relu'], (1, 2))
  """
  graphdef, _ = nnx.split(module)
  return interpreter.intercept(
      _pure(graphdef, type(module).__call__), interceptor, names,
      required=required, owner="swap",
  )


def _unchanged(old: Any, new: Any) -> bool:
  if old is new:  # the interpreter hands an untouched array back as itself
    return True
  # A Python number is held fixed, not traced, and comes back as a literal.
  return isinstance(old, (bool, int, float, complex)) and bool(old == new)


def _same_leaves(before: Any, after: Any) -> bool:
  old, new = jax.tree.leaves(before), jax.tree.leaves(after)
  return len(old) == len(new) and all(map(_unchanged, old, new))


def _swapped_call(
    module: nnx.Module, method: Callable[..., Any], replacements: _Checked,
    args: tuple[Any, ...], kwargs: dict[str, Any],
) -> Any:
  """``method(module, *args, **kwargs)``, swapped, writing back only what it changed."""
  graphdef, state = nnx.split(module)
  names = _names(replacements)
  replacer = _Replacer(replacements)
  output, new_state = interpreter.intercept(
      _pure(graphdef, method), replacer, names, required=names, owner="swap"
  )(state, *args, **kwargs)
  replacer.check_targets()
  # Writing back only the Variables the call changed is what the original
  # does: under an outer jax.jit or jax.grad, rewriting Params it merely read
  # would mutate Variables of an outer trace (Flax's TraceContextError).
  before = dict(nnx.to_flat_state(state))
  changed = [
      (path, variable)
      for path, variable in nnx.to_flat_state(new_state)
      if path not in before or not _same_leaves(before[path], variable)
  ]
  if changed:
    nnx.update(module, nnx.from_flat_state(changed))
  return output


class SwappedModule(nnx.Module):
  """The modules :func:`swap` returns: the original's class with ``__call__`` swapped.

  ``swap(module, replacements)`` makes a subclass of ``type(module)`` and this
  class whose ``__call__`` runs the original ``__call__`` through the
  interpreter, and a shallow copy of ``module`` of that subclass: it holds the
  same submodules and Variables, so ``nnx.state``, gradients and checkpoints
  have the original's tree, and training one trains the other. Each call
  rebuilds the module from its state inside the interpreter's trace (so it
  works at any trace level, under any JAX or NNX transform) and writes back
  the Variables the call changed. Only ``__call__`` is swapped; other methods
  run as written. Constructing the subclass (``type(swapped)(...)``) builds a
  new swapped module with the original's ``__init__``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> import activations
    >>> model = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), nnx.relu)
    >>> necro = activations.swap(model, {nnx.relu: activations.necro_relu})
    >>> isinstance(necro, nnx.Sequential), necro.layers[0] is model.layers[0]
    (True, True)
    >>> jax.tree.structure(nnx.state(necro)) == jax.tree.structure(nnx.state(model))
    True
    >>> bool(jnp.all(jax.jit(necro)(jnp.ones((1, 2))) == model(jnp.ones((1, 2)))))
    True
  """

  def __init__(self, *args: Any, **kwargs: Any):
    if type(self) is SwappedModule:
      raise TypeError(
          "A SwappedModule is made by activations.swap(module, replacements),"
          " not constructed directly."
      )
    super().__init__(*args, **kwargs)


# One subclass per original class and replacements, so swapping the same way
# twice gives equal graphdefs (one nnx.jit cache entry).
_SUBCLASSES: dict[tuple[type, tuple[Any, ...]], type] = {}


def _swapped_class(base: type[nnx.Module], replacements: _Checked) -> type[nnx.Module]:
  key = (base, tuple(replacements.items()))
  try:
    cached = _SUBCLASSES.get(key)
  except TypeError:  # an unhashable replacement: no sharing
    key, cached = None, None
  if cached is not None:
    return cached
  original_call = base.__call__  # a swapped base's own __call__: swaps nest
  # A swapped class is already a SwappedModule; adding it again breaks the MRO.
  bases = (base,) if issubclass(base, SwappedModule) else (base, SwappedModule)

  @functools.wraps(original_call)
  def __call__(self: nnx.Module, *args: Any, **kwargs: Any) -> Any:
    return _swapped_call(self, original_call, replacements, args, kwargs)

  name = f"Swapped{base.__name__}"
  namespace = {"__call__": __call__, "__module__": __name__, "__qualname__": name}
  # The original's pytree flag: a module may opt out of being a JAX pytree.
  cls = type(base)(name, bases, namespace, pytree=base._pytree__is_pytree)
  if key is not None:
    _SUBCLASSES[key] = cls
  return cls


def _swapped_copy(module: nnx.Module, replacements: _Checked) -> nnx.Module:
  cls = _swapped_class(type(module), replacements)
  copy = object.__new__(cls)  # as nnx.merge makes a node, without __init__
  for attribute, value in vars(module).items():
    object.__setattr__(copy, attribute, value)
  # Its own trace context, as a node nnx.merge makes; the same flags.
  state = module._pytree__state
  fresh = pytreelib.PytreeState(state.initializing, state.is_setup)
  object.__setattr__(copy, "_pytree__state", fresh)
  return copy
