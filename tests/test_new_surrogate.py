"""windowed_necro_relu: ReLU's forward exactly, NecroReLU's backward only near zero."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import activations
from activations.testing import check_activation
from tests.conftest import WRAPS


def _gradient(x, **hyperparameters):
  return jax.grad(lambda x: activations.windowed_necro_relu(x, **hyperparameters).sum())(x)


@pytest.mark.parametrize("impl", ["vjp", "jvp"])
@pytest.mark.parametrize("wrap", WRAPS)
def test_forward_is_relu_exactly(wrap, impl, key):
  x = jnp.concatenate([
      jax.random.normal(key, (1000,)) * 10,
      jnp.array([0.0, -0.0, -3.0, -1e30, 1e30, jnp.inf, -jnp.inf]),
  ])
  got = wrap(lambda x: activations.windowed_necro_relu(x, impl=impl))(x)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(jax.nn.relu(x)))


@pytest.mark.parametrize("wrap", WRAPS)
def test_backward_follows_its_rule_at_fixed_points(wrap):
  x = jnp.array([-10.0, -3.5, -3.0, -2.9, -0.5, -1e-7, 0.0, 1e-7, 2.0])
  # 1 at and above 0; negative_slope in [-window, 0); 0 below -window.
  expected = jnp.array([0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0])
  chex.assert_trees_all_close(wrap(_gradient)(x), expected)


@pytest.mark.parametrize("wrap", WRAPS)
def test_hyperparameters_reach_the_backward(wrap):
  x = jnp.array([-2.0, -0.75, -0.25, 1.0])
  got = wrap(functools.partial(_gradient, negative_slope=0.3, window=0.5))(x)
  chex.assert_trees_all_close(got, jnp.array([0.0, 0.0, 0.3, 1.0]))


def test_window_zero_is_relu_backward_and_a_huge_window_is_necro_relu(key):
  x = jax.random.normal(key, (256,)) * 5
  chex.assert_trees_all_close(_gradient(x, window=0.0), jnp.where(x >= 0, 1.0, 0.0))
  necro = jax.grad(lambda x: activations.necro_relu(x).sum())(x)
  chex.assert_trees_all_close(_gradient(x, window=1e6), necro)


def test_window_can_be_swept_with_vmap():
  x = jnp.array([-2.0, -0.5])
  windows = jnp.array([0.25, 1.0, 3.0])
  got = jax.vmap(lambda w: _gradient(x, window=w))(windows)
  chex.assert_trees_all_close(got, jnp.array([[0.0, 0.0], [0.0, 0.1], [0.1, 0.1]]))


def test_hyperparameters_get_no_gradient():
  """They shape only the backward pass: the forward does not depend on them."""
  grads = jax.grad(
      lambda s, w: activations.windowed_necro_relu(jnp.array([-0.5, 1.0]), s, w).sum(),
      argnums=(0, 1),
  )(0.1, 3.0)
  assert grads == (0.0, 0.0)


def test_negative_window_is_refused_naming_the_range():
  with pytest.raises(ValueError, match="window must be >= 0"):
    activations.windowed_necro_relu(jnp.array([1.0]), window=-1.0)


def test_registry_spec_and_check_activation():
  fn = activations.get("windowed_necro_relu(negative_slope=0.2, window=1.5)")
  report = check_activation(
      fn,
      forward=jax.nn.relu,
      derivative=lambda x: jnp.where(x >= 0, 1.0, jnp.where(x >= -1.5, 0.2, 0.0)),
      dtypes=[jnp.float32],  # 16-bit: the catalogue's battery, at the defaults
  )
  assert report.skipped  # a custom_vjp has no forward mode: reported, not silently passed
  check_activation(
      functools.partial(activations.windowed_necro_relu, impl="jvp"), forward=jax.nn.relu,
      derivative=lambda x: jnp.where(x >= 0, 1.0, jnp.where(x >= -3.0, 0.1, 0.0)),
      dtypes=[jnp.float32],
  )
