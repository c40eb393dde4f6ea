"""``activation_stats(fn, *args)``: what each activation call in ``fn`` sees.

The same traversal as :func:`activations.swap`, with a different action: each
activation call is evaluated as written, and its input and output are
summarised. Calls are found as :mod:`activations.interpreter` describes, also
inside ``jit``, ``scan``, ``cond``, ``while`` and ``checkpoint``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from activations import interpreter, swap

__all__ = ["ActivationStats", "activation_stats"]


class ActivationStats(NamedTuple):
  """Statistics of one activation call, over every example and position.

  Attributes:
    name: the activation, as named in the jaxpr (``"relu"``).
    shape: the shape of its output (of one iteration, inside a loop).
    sparsity: the fraction of exact zeros in the output.
    inactive_fraction: the fraction of units (entries of the last axis) whose
      input is ``<= 0`` for every example and position: for ReLU, the dead
      units of this batch.
    input_mean: the mean of the input.
    input_std: the standard deviation of the input.
  """

  name: str
  shape: tuple[int, ...]
  sparsity: float
  inactive_fraction: float
  input_mean: float
  input_std: float


@dataclasses.dataclass
class _Totals:
  """Running sums of one call site; a loop body adds once per iteration."""

  name: str
  shape: tuple[int, ...]
  count: int = 0
  zeros: int = 0
  total: float = 0.0
  total_of_squares: float = 0.0
  ever_positive: np.ndarray | None = None

  def add(self, zeros, total, total_of_squares, ever_positive, count) -> None:
    self.count += int(count)
    self.zeros += int(zeros)
    self.total += float(total)
    self.total_of_squares += float(total_of_squares)
    positive = np.asarray(ever_positive)
    self.ever_positive = (
        positive if self.ever_positive is None else self.ever_positive | positive
    )

  def finish(self) -> ActivationStats:
    count = max(self.count, 1)
    mean = self.total / count
    variance = max(self.total_of_squares / count - mean**2, 0.0)
    inactive = 1.0 - float(np.mean(self.ever_positive))
    return ActivationStats(
        self.name, self.shape, self.zeros / count, inactive, mean, variance**0.5
    )


def _recording(totals: dict[int, _Totals]) -> interpreter.Interceptor:
  def interceptor(next_fun, args, context):
    y = next_fun(*args)
    x = jnp.asarray(args[0])
    if context.index not in totals:
      totals[context.index] = _Totals(context.name, tuple(y.shape))
    units = x.reshape(-1, x.shape[-1] if x.ndim else 1)
    wide = units.astype(jnp.float32)
    summary = (
        jnp.sum(y == 0),
        jnp.sum(wide),
        jnp.sum(jnp.square(wide)),
        jnp.any(units > 0, axis=0),
        jnp.asarray(x.size),
    )
    jax.debug.callback(totals[context.index].add, *summary)
    return y

  return interceptor


def activation_stats(
    fn: Callable[..., Any] | nnx.Module, *args: Any, **kwargs: Any
) -> list[ActivationStats]:
  """Runs ``fn(*args, **kwargs)`` and summarises every activation call, in order.

  Statistics are in float32 (float64 sums on the host) over the whole batch;
  a call inside a loop body is one record, over all its iterations. An NNX
  module is called functionally: its state (BatchNorm statistics, RNG counts)
  is left as it was. Not meant to be traced (it returns Python numbers).

  Args:
    fn: any JAX-traceable function, or an NNX module.
    *args: the arguments to call it with.
    **kwargs: keyword arguments to call it with.

  Returns:
    One :class:`ActivationStats` per activation call site, in call order.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import activations
    >>> x = jnp.array([[-1.0, 2.0], [-3.0, 4.0]])
    >>> (stats,) = activations.activation_stats(jax.nn.relu, x)
    >>> stats.name, stats.shape, stats.sparsity, stats.inactive_fraction
    ('relu', (2, 2), 0.5, 0.5)
  """
  if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs))):
    raise TypeError(
        "activation_stats returns Python numbers, so it cannot run inside jax.jit, vmap or grad:"
        " call it outside them, on concrete arrays (fn itself may be jitted).")
  totals: dict[int, _Totals] = {}
  names = interpreter.known_activation_names()
  interceptor = _recording(totals)
  if isinstance(fn, nnx.Module):
    call = swap.functional_call(fn, interceptor, names)
    call(nnx.state(fn), *args, **kwargs)
  else:
    interpreter.intercept(fn, interceptor, names)(*args, **kwargs)
  jax.effects_barrier()
  return [totals[index].finish() for index in sorted(totals)]
