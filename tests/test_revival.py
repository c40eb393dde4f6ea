"""revival_relu: ReLU's forward; a unit dead on the whole batch gets only the upward part of its gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import activations

# unit 0 is dead on this batch (every example <= 0); units 1 and 2 are active somewhere
X = jnp.array([[-1.0, -2.0, 3.0], [-4.0, 5.0, -6.0], [0.0, -1.0, -1.0]])
COTANGENT = jnp.array([[-1.0, -1.0, 2.0], [2.0, -3.0, -1.0], [-0.5, 4.0, 1.0]])


def _pullback(x, cotangent, **kwargs):
  return jax.vjp(lambda x: activations.revival_relu(x, **kwargs), x)[1](cotangent)[0]


@pytest.mark.parametrize("use_jit", [False, True])
def test_dead_units_get_the_upward_part_and_live_ones_relu_gradient(use_jit):
  pullback = jax.jit(_pullback) if use_jit else _pullback
  gradient = pullback(X, COTANGENT)
  assert gradient.dtype == jnp.float32 and gradient.shape == X.shape
  relu_gradient = jax.vjp(jax.nn.relu, X)[1](COTANGENT)[0]
  np.testing.assert_array_equal(gradient[:, 1:], relu_gradient[:, 1:])  # alive: ReLU's own
  np.testing.assert_allclose(gradient[:, 0], 0.3 * jnp.minimum(COTANGENT[:, 0], 0))  # [-0.3, 0, -0.15]


def test_it_never_pushes_a_unit_down():
  """Gradient descent subtracts the gradient: a dead unit's gradient is never positive."""
  x = -jnp.abs(jax.random.normal(jax.random.key(0), (32, 16)))  # every unit dead
  cotangent = jax.random.normal(jax.random.key(1), (32, 16))
  gradient = _pullback(x, cotangent, negative_slope=0.5)
  assert bool(jnp.all(gradient <= 0)) and bool(jnp.any(gradient < 0))


def test_a_convolutions_unit_is_its_channel_over_examples_and_positions():
  x = (-jnp.ones((2, 3, 3, 2))).at[1, 2, 2, 1].set(1.0)  # channel 1 fires at one position only
  gradient = _pullback(x, -jnp.ones_like(x))
  np.testing.assert_allclose(gradient[..., 0], -0.3)  # channel 0: dead everywhere, pulled up
  assert float(gradient[1, 2, 2, 1]) == -1.0 and float(jnp.abs(gradient[..., 1]).sum()) == 1.0


def test_forward_is_relus_exactly_and_nan_gives_nan():
  x = jnp.concatenate([X.ravel(), jnp.array([jnp.nan, -0.0, 1e30])])
  np.testing.assert_array_equal(activations.revival_relu(x), jax.nn.relu(x))
  gradient = _pullback(x, -jnp.ones_like(x))
  assert bool(jnp.isnan(gradient[-3])) and bool(jnp.all(jnp.isfinite(gradient[:-3])))


def test_vmap_over_runs_keeps_each_runs_batch():
  """The engine vmaps over runs: each run's dead units are its own batch's."""
  runs = jnp.stack([X, -X])
  batched = jax.vmap(_pullback)(runs, jnp.stack([COTANGENT, COTANGENT]))
  for run in range(2):
    np.testing.assert_array_equal(batched[run], _pullback(runs[run], COTANGENT))


def test_negative_slope_gets_no_gradient_and_bad_values_are_refused():
  assert jax.grad(lambda s: (activations.revival_relu(X, s) * COTANGENT).sum())(0.3) == 0.0
  with pytest.raises(ValueError, match="negative_slope must be >= 0, got -0.1"):
    activations.revival_relu(X, -0.1)
  with pytest.raises(ValueError, match="impl='vjp' only"):
    activations.revival_relu(X, impl="jvp")
  assert activations.impls("revival_relu") == ("vjp",)


def test_check_activation_reports_a_batch_and_sign_dependent_backward():
  report = activations.testing.check_activation(
      activations.revival_relu, forward=jax.nn.relu,
      derivative=lambda x: jnp.where(x > 0, 1.0, 0.0), dtypes=[jnp.float32])
  assert any(note.startswith("not elementwise") for note in report.notes)
  assert any(note.startswith("not linear in the cotangent") for note in report.notes)
  assert activations.testing.check_activation(activations.necro_relu, dtypes=[jnp.float32]).notes == ()


def _designs():
  """examples/revival_designs.py, the backward passes tried against revival_relu."""
  import importlib.util
  import pathlib
  path = pathlib.Path(__file__).parent.parent / "examples" / "revival_designs.py"
  spec = importlib.util.spec_from_file_location("revival_designs", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("use_jit", [False, True])
def test_the_designs_tried_keep_relus_forward_and_do_what_they_say(use_jit):
  designs = _designs()
  transform = jax.jit if use_jit else (lambda f: f)
  pullbacks = {name: transform(lambda x, t, f=getattr(designs, name): jax.vjp(f, x)[1](t)[0])
               for name in ("upward_relu", "dead_unit_necro", "revival_by_mean")}
  for name in pullbacks:
    np.testing.assert_array_equal(getattr(designs, name)(X), jax.nn.relu(X))
  # every element below zero: 0.1 x the upward part of its cotangent; above: the cotangent
  np.testing.assert_allclose(pullbacks["upward_relu"](X, COTANGENT), jnp.where(
      X > 0, COTANGENT, 0.1 * jnp.minimum(COTANGENT, 0)))
  # unit 0, dead on the batch, gets 0.1 x its cotangent, both signs; units 1 and 2 ReLU's
  expected = jnp.where(X > 0, COTANGENT, 0.0).at[:, 0].set(0.1 * COTANGENT[:, 0])
  np.testing.assert_allclose(pullbacks["dead_unit_necro"](X, COTANGENT), expected)
  # unit 0's cotangents average to 0.1667 > 0 (asks down): nothing; flip them and it gets 0.3 x mean
  by_mean = pullbacks["revival_by_mean"]
  np.testing.assert_allclose(by_mean(X, COTANGENT)[:, 0], [0.0, 0.0, 0.0])
  np.testing.assert_allclose(by_mean(X, -COTANGENT)[:, 0], [-0.05, -0.05, -0.05], rtol=1e-6)
  assert by_mean(X, COTANGENT).dtype == jnp.float32
