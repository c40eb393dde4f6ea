"""``swap(fn, replacements)``: another activation in code you did not write.

``swap`` traces ``fn`` to a jaxpr and evaluates it again with every call of a
named activation replaced (see :mod:`activations.interpreter` for how calls
are found, and which activations JAX inlines). Nothing in ``fn``'s code
changes, so a Flax example, a ``model.apply`` or a loss function can be
trained with NecroReLU where it was written with ReLU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
from flax import nnx

from activations import interpreter, registry

__all__ = ["SwappedModule", "activation_name", "functional_call", "swap"]

Replacements = Mapping[str | Callable[..., Any], Callable[..., Any] | str]


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


def _check_replacements(replacements: Any) -> dict[str, Callable[..., Any]]:
  if not isinstance(replacements, Mapping) or not replacements:
    raise TypeError(
        "swap needs a non-empty mapping from activations to their replacements,"
        " e.g. {jax.nn.relu: activations.necro_relu}, got"
        f" {replacements!r}."
    )
  checked = {}
  for activation, replacement in replacements.items():
    if isinstance(replacement, str):  # a registry spec: "necro_relu(negative_slope=0.05)"
      replacement = registry.get(replacement)
    if not callable(replacement):
      raise TypeError(
          f"The replacement of {activation_name(activation)!r} must be callable or a"
          f" registry spec such as 'necro_relu(negative_slope=0.05)', got {replacement!r}."
      )
    checked[activation_name(activation)] = replacement
  return checked


def _replacing(replacements: dict[str, Callable[..., Any]]) -> interpreter.Interceptor:
  def interceptor(next_fun, args, context):
    del next_fun  # the original is not evaluated
    return replacements[context.name](args[0])

  return interceptor


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
      spec such as ``"necro_relu(negative_slope=0.05)"``. The replacement
      gets the activation's input alone (a ``leaky_relu``'s slope is dropped)
      and must keep its shape and dtype.

  Returns:
    For a function, a function with ``fn``'s signature that composes with
    ``jit``, ``grad`` and ``vmap`` on either side. For an NNX module, a
    :class:`SwappedModule` that shares the module's state, so it trains with
    ``nnx.grad`` and ``nnx.Optimizer`` like the original (BatchNorm statistics
    still update).

  Raises:
    ValueError: when called, if ``fn`` never calls one of the activations to
      replace; the message names those it calls.

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
  """
  checked = _check_replacements(replacements)
  if isinstance(fn, nnx.Module):
    return SwappedModule(fn, checked)
  if not callable(fn):
    raise TypeError(f"swap needs a function or an NNX module, got {fn!r}.")
  return interpreter.intercept(
      fn, _replacing(checked), checked, required=checked, owner="swap"
  )


def functional_call(
    module: nnx.Module,
    interceptor: interpreter.Interceptor,
    names: Any,
    *,
    required: Any = (),
) -> Callable[..., Any]:
  """``(state, *args) -> (output, new_state)`` for ``module``, intercepted."""
  graphdef, _ = nnx.split(module)

  def call(state: nnx.State, *args: Any, **kwargs: Any) -> tuple[Any, nnx.State]:
    model = nnx.merge(graphdef, state)
    output = model(*args, **kwargs)
    return output, nnx.state(model)

  return interpreter.intercept(
      call, interceptor, names, required=required, owner="swap"
  )


class SwappedModule(nnx.Module):
  """An NNX module whose calls go through :func:`swap`.

  It holds the original module as ``module`` (so its parameters are this
  module's parameters) and, on each call, splits it into graph and state,
  makes the swapped functional call and writes the updated state (BatchNorm
  statistics, RNG counts) back.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> import activations
    >>> model = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), nnx.relu)
    >>> necro = activations.swap(model, {nnx.relu: activations.necro_relu})
    >>> necro.module is model
    True
    >>> bool(jnp.all(necro(jnp.ones((1, 2))) == model(jnp.ones((1, 2)))))
    True
  """

  def __init__(
      self,
      module: nnx.Module,
      replacements: Replacements,
  ):
    self.module = module
    self.replacements = nnx.static(_check_replacements(replacements))

  def __call__(self, *args: Any, **kwargs: Any) -> Any:
    replacements = dict(self.replacements)
    call = functional_call(
        self.module, _replacing(replacements), replacements, required=replacements
    )
    output, state = call(nnx.state(self.module), *args, **kwargs)
    nnx.update(self.module, state)
    return output
