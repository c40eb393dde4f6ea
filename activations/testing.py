"""The catalogue's test battery, for your own activations.

``check_activation(fn)`` runs on ``fn`` the checks every activation of this
library passes, and raises one ``AssertionError`` listing every failed check
by name with the inputs where it failed. In a pytest suite:

.. code-block:: python

  import activations
  from activations.testing import check_activation, parametrize_activations

  @parametrize_activations()            # every registered activation
  def test_activation(name, activation):
    check_activation(activation)

  def test_mine():
    mine = activations.surrogate(jax.nn.relu, jax.nn.softplus)
    check_activation(mine, forward=jax.nn.relu, derivative=jax.nn.sigmoid)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckReport", "backward_notes", "check_activation", "parametrize_activations"]

# Points for value checks: the usual range, off the common kinks (0, ±0.5,
# ±1, 6), where a reference and the activation must agree elementwise.
_GRID = np.linspace(-4.0, 4.0, 41) + 0.0123


def _edges(dtype: Any) -> np.ndarray:
  """Points for finiteness: 0, then 1 and 3 times every power of ten from 1e-7 up to the
  dtype's largest finite value, both signs (so no decade is skipped, inside or at its ends).

  Examples:
    >>> _edges(jnp.float16)[:5].tolist(), _edges(jnp.float16)[-2:].tolist()
    ([0.0, 1e-07, -1e-07, 3e-07, -3e-07], [30000.0, -30000.0])
  """
  largest = float(jnp.finfo(dtype).max)
  points = np.outer(10.0 ** np.arange(-7, int(np.log10(largest)) + 1), [1.0, 3.0]).ravel()
  points = points[points <= largest]
  return np.concatenate([[0.0], np.stack([points, -points], axis=1).ravel()])


@dataclasses.dataclass(frozen=True)
class CheckReport:
  """What :func:`check_activation` ran.

  Attributes:
    passed: the names of the checks that passed.
    skipped: checks not run, with why (e.g. forward mode for a custom_vjp).
    notes: what the battery found that is allowed but worth knowing: a
      backward pass that reads the rest of the batch (not elementwise) or the
      cotangent's sign (not linear in it).
  """

  passed: tuple[str, ...]
  skipped: tuple[str, ...]
  notes: tuple[str, ...] = ()


def _tolerance(dtype: Any) -> dict[str, float]:
  if jnp.finfo(dtype).bits < 32:
    return {"rtol": 2e-2, "atol": 2e-2}
  return {"rtol": 2e-5, "atol": 1e-5}


def _gradient(fn: Callable[..., Any]) -> Callable[..., Any]:
  return jax.grad(lambda x: jnp.sum(fn(x).astype(jnp.float32)))


def _where_not_close(actual, expected, **tolerance) -> np.ndarray:
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  close = np.isclose(actual, expected, equal_nan=True, **tolerance)
  return ~close


class _Battery:
  """Runs named checks, collecting failures instead of stopping at the first."""

  def __init__(self) -> None:
    self.failures: list[str] = []
    self.passed: list[str] = []
    self.skipped: list[str] = []
    self.notes: list[str] = []

  def run(self, name: str, check: Callable[[], str | None]) -> None:
    try:
      problem = check()
    except Exception as error:  # noqa: BLE001 (a raising check is a failure)
      problem = f"raised {type(error).__name__}: {str(error).splitlines()[0]}"
    if problem:
      self.failures.append(f"{name}: {problem}")
    else:
      self.passed.append(name)

  def skip(self, reason: str) -> None:
    if reason not in self.skipped:
      self.skipped.append(reason)

  def report(self, fn: Callable[..., Any]) -> CheckReport:
    """What ran, or one ``AssertionError`` listing every failed check."""
    if self.failures:
      name = getattr(fn, "__name__", "...")
      name = name if name.isidentifier() else "..."
      raise AssertionError(
          f"check_activation({name}) failed {len(self.failures)} check(s):\n"
          + "\n".join(f"- {failure}" for failure in self.failures)
      )
    return CheckReport(tuple(self.passed), tuple(self.skipped), tuple(self.notes))


def _differ(x, actual, expected, what: str, **tolerance) -> str | None:
  bad = _where_not_close(actual, expected, **tolerance)
  if not bad.any():
    return None
  xs = np.asarray(x, np.float64)[bad][:4]
  got = np.asarray(actual, np.float64)[bad][:4]
  want = np.asarray(expected, np.float64)[bad][:4]
  return f"{what} differ at x = {xs.tolist()}: got {got.tolist()}, expected {want.tolist()}"


def _not_finite(x, values, what: str) -> str | None:
  values = np.asarray(values, np.float64)
  bad = ~np.isfinite(values)
  if not bad.any():
    return None
  return (
      f"{what} not finite at x = {np.asarray(x, np.float64)[bad][:4].tolist()}:"
      f" {values[bad][:4].tolist()}"
  )


def check_activation(
    fn: Callable[..., Any],
    *,
    forward: Callable[..., Any] | None = None,
    derivative: Callable[..., Any] | None = None,
    dtypes: Sequence[Any] = (jnp.float32, jnp.bfloat16, jnp.float16),
) -> CheckReport:
  """Runs the catalogue's battery on an elementwise activation ``fn(x)``.

  For each dtype: finite values and gradients (at 0 and at every power of ten
  from 1e-7 to the dtype's largest, both signs);
  output and gradient of the input's shape and dtype; the same values and
  gradients under ``jit``, ``vmap``, ``jax.checkpoint`` and ``lax.scan``;
  forward mode (``jax.jvp``) agreeing with reverse mode, skipped and reported
  when ``fn`` is a ``custom_vjp`` (which refuses forward mode); and, when
  given, values equal to ``forward(x)`` and gradients equal to
  ``derivative(x)`` elementwise (references are evaluated in float32).

  Args:
    fn: the activation, ``fn(x)``; bind hyperparameters first
      (``functools.partial``).
    forward: the reference forward function, or ``None``.
    derivative: the reference for the derivative backprop should use.
    dtypes: the input dtypes to check.

  Returns:
    A :class:`CheckReport` of what passed and what was skipped.

  Raises:
    AssertionError: listing every failed check by name, with the inputs.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import activations
    >>> report = check_activation(
    ...     activations.necro_relu,
    ...     forward=jax.nn.relu,
    ...     derivative=lambda x: jnp.where(x >= 0, 1.0, 0.1),
    ...     dtypes=[jnp.float32])  # the default also checks bfloat16 and float16
    >>> report.skipped
    ('forward mode: a custom_vjp function has no forward mode',)
    >>> broken = activations.surrogate(jax.nn.relu, jnp.sqrt)
    >>> check_activation(broken, dtypes=[jnp.float32])
    Traceback (most recent call last):
    ...
    AssertionError: check_activation(...) failed 1 check(s):
    - finite gradients [float32]: gradients not finite at x = ...
  """
  battery = _Battery()
  for dtype in dtypes:
    _check_dtype(battery, fn, jnp.dtype(dtype), forward, derivative)
  battery.notes.extend(backward_notes(fn))
  return battery.report(fn)


# Each unit (column) is active on one example and inactive on the other, so a
# backward that reads the whole batch sees a different batch per example.
_BATCH_PROBE = ((-1.5, 2.0, 0.5, -0.25), (1.5, -2.0, -0.5, 0.25))


def backward_notes(fn: Callable[..., Any]) -> list[str]:
  """Notes on a backward pass that reads the rest of the batch or the cotangent's sign (float32 probe).

  Examples:
    >>> import activations
    >>> backward_notes(activations.necro_relu)
    []
    >>> [note.split(":")[0] for note in backward_notes(activations.revival_relu)]
    ['not elementwise', 'not linear in the cotangent']
  """
  x = jnp.asarray(_BATCH_PROBE, jnp.float32)
  try:
    _, pullback = jax.vjp(fn, x)
    per_example = jax.vmap(lambda row, c: jax.vjp(fn, row[None])[1](c[None])[0][0])
    found = []
    for cotangent in (-jnp.ones_like(x), jnp.ones_like(x)):
      if not np.allclose(pullback(cotangent)[0], per_example(x, cotangent), equal_nan=True):
        found.append("not elementwise: an example's gradient depends on the rest of its batch"
                     " (units on the last axis); under vmap over examples each is its own batch")
        break
    ones = jnp.ones_like(x)
    linear = all(np.allclose(up, -down, equal_nan=True) for up, down in (
        (pullback(-ones)[0], pullback(ones)[0]), (per_example(x, -ones), per_example(x, ones))))
    if not linear:
      found.append("not linear in the cotangent: it reads the cotangent's sign, so it has no"
                   " forward-mode (jvp) form")
    return found
  except Exception:  # noqa: BLE001 (the battery above already reports a failing call)
    return []


def _values_and_gradients(fn: Callable[..., Any], x: jax.Array) -> tuple[jax.Array, jax.Array]:
  return fn(x), _gradient(fn)(x)


def _check_dtype(
    battery: _Battery, fn: Callable[..., Any], dtype: np.dtype,
    forward: Callable[..., Any] | None, derivative: Callable[..., Any] | None,
) -> None:
  """Every check of :func:`check_activation` on inputs of ``dtype``, in order."""
  tag = f"[{dtype.name}]"
  tolerance = _tolerance(dtype)
  x = jnp.asarray(_GRID, jnp.float32).astype(dtype)
  edges = jnp.asarray(_edges(dtype), jnp.float32).astype(dtype)
  try:
    y, g = _values_and_gradients(fn, x)
  except Exception as error:  # noqa: BLE001 (e.g. a backward of the wrong shape)
    battery.run(f"values and gradients {tag}", lambda: _call_failure(error))
    return
  battery.run(f"finite values {tag}", lambda: _not_finite(edges, fn(edges), "values"))
  battery.run(
      f"finite gradients {tag}",
      lambda: _not_finite(edges, _gradient(fn)(edges), "gradients"),
  )
  battery.run(f"shape and dtype {tag}", lambda: _shape_and_dtype(x, y, g, dtype))
  for name, transformed in _transforms(fn).items():
    battery.run(
        f"{name} agrees {tag}",
        lambda name=name, transformed=transformed: _disagreement(
            name, transformed, x, y, g, tolerance),
    )
  _check_forward_mode(battery, fn, x, g, tag, tolerance)
  x_wide = x.astype(jnp.float32)  # references are evaluated in float32
  if forward is not None:
    battery.run(
        f"forward equals reference {tag}",
        lambda: _differ(x, y, forward(x_wide), "values and the reference", **tolerance),
    )
  if derivative is not None:
    battery.run(
        f"derivative equals reference {tag}",
        lambda: _differ(
            x, g, derivative(x_wide), "gradients and the reference derivative", **tolerance),
    )


def _shape_and_dtype(x: jax.Array, y: jax.Array, g: jax.Array, dtype: np.dtype) -> str | None:
  """Whether the output ``y`` and gradient ``g`` have the input's shape and dtype."""
  problems = [
      f"{what} is {a.dtype}{list(a.shape)}, expected {dtype.name}{list(x.shape)}"
      for what, a in (("output", y), ("gradient", g))
      if a.shape != x.shape or a.dtype != dtype
  ]
  return "; ".join(problems) or None


def _transforms(fn: Callable[..., Any]) -> dict[str, Callable[[jax.Array], tuple[jax.Array, jax.Array]]]:
  """``x -> (values, gradients)`` of ``fn`` under each transformation that must not change them."""
  both = functools.partial(_values_and_gradients, fn)

  def scanned(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    _, (ys, gs) = jax.lax.scan(lambda carry, row: (carry, both(row)), None, x.reshape(41, 1))
    return ys.reshape(-1), gs.reshape(-1)

  return {
      "jit": jax.jit(both),
      "vmap": lambda x: tuple(a.reshape(-1) for a in jax.vmap(both)(x.reshape(41, 1))),
      "checkpoint": lambda x: (fn(x), _gradient(jax.checkpoint(fn))(x)),
      "scan": scanned,
  }


def _disagreement(
    name: str, transformed: Callable[..., Any], x: jax.Array, y: jax.Array, g: jax.Array,
    tolerance: dict[str, float],
) -> str | None:
  """Where ``transformed(x)`` differs from the plain values ``y`` and gradients ``g``."""
  y2, g2 = transformed(x)
  problem = _differ(x, y2, y, f"values under {name}", **tolerance)
  if problem:
    return problem
  problem = _differ(x, g2, g, f"gradients under {name}", **tolerance)
  if problem and name in _SPLITS_THE_BATCH:
    problem += (f" (under {name} each example is its own batch: the backward is not elementwise,"
                " it depends on the other examples of the batch)")
  return problem


_SPLITS_THE_BATCH = ("vmap", "scan")


def _call_failure(error: Exception) -> str:
  """What went wrong computing the values and gradients at all, in one line."""
  first = str(error).strip().splitlines()[0] if str(error).strip() else ""
  if "bwd rule" in str(error) or "cotangent" in str(error).lower():
    return f"the backward pass returned a gradient of the wrong shape or dtype: {first}"
  return f"raised {type(error).__name__}: {first}"


def _check_forward_mode(
    battery: _Battery, fn: Callable[..., Any], x: jax.Array, g: jax.Array, tag: str,
    tolerance: dict[str, float],
) -> None:
  """``jax.jvp``'s tangents against the gradients; a skip when ``fn`` is a ``custom_vjp``."""

  def forward_mode() -> str | None:
    try:
      _, tangent = jax.jvp(fn, (x,), (jnp.ones_like(x),))
    except TypeError as error:
      if "custom_vjp" in str(error):
        return "skip"
      raise
    return _differ(x, tangent, g, "jvp tangents and gradients", **tolerance)

  try:
    skip = forward_mode() == "skip"
  except Exception:  # noqa: BLE001 (reported by the run below)
    skip = False
  if skip:
    battery.skip("forward mode: a custom_vjp function has no forward mode")
  else:
    battery.run(f"forward mode {tag}", forward_mode)


def parametrize_activations(names: Iterable[str] | None = None) -> Any:
  """A ``pytest.mark.parametrize`` over registered activations.

  The test receives ``name`` and ``activation`` (the function ``get(name)``).

  Args:
    names: registry names; ``None`` for all of ``activations.names()``.
  """
  import pytest  # only where tests run

  from activations.registry import get, names as registered

  chosen = list(registered() if names is None else names)
  return pytest.mark.parametrize(
      "name,activation", [(name, get(name)) for name in chosen], ids=chosen
  )
