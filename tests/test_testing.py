"""activations.testing.check_activation catches broken activations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import activations
from activations.testing import check_activation, parametrize_activations


def test_wrong_derivative_is_named():
  with pytest.raises(AssertionError, match=r"derivative equals reference \[float32\]"):
    check_activation(
        activations.necro_relu,
        derivative=lambda x: jnp.where(x >= 0, 1.0, 0.3),
        dtypes=[jnp.float32],
    )


def test_nan_gradient_is_named_with_its_inputs():
  broken = activations.surrogate(jax.nn.relu, jnp.sqrt)
  with pytest.raises(AssertionError, match=r"finite gradients \[float32\]: gradients not finite at x = \[0.0, -1.0"):
    check_activation(broken, dtypes=[jnp.float32])


def test_dtype_change_is_named():
  with pytest.raises(AssertionError, match=r"shape and dtype \[bfloat16\]: output is float32"):
    check_activation(lambda x: jax.nn.relu(x).astype(jnp.float32), dtypes=[jnp.bfloat16])


def test_every_failure_is_listed_not_just_the_first():
  broken = activations.surrogate(lambda x: jnp.log(x), jnp.sqrt)
  with pytest.raises(AssertionError) as error:
    check_activation(broken, forward=jax.nn.relu, dtypes=[jnp.float32])
  message = str(error.value)
  for check in ("finite values", "finite gradients", "forward equals reference"):
    assert check in message


def test_forward_mode_is_checked_for_custom_jvp_and_skipped_for_custom_vjp():
  jvp = check_activation(lambda x: activations.necro_relu(x, impl="jvp"), dtypes=[jnp.float32])
  assert "forward mode [float32]" in jvp.passed and not jvp.skipped
  vjp = check_activation(activations.necro_relu, dtypes=[jnp.float32])
  assert vjp.skipped == ("forward mode: a custom_vjp function has no forward mode",)


@parametrize_activations(["relu", "necro_relu"])
def test_parametrize_helper(name, activation):
  assert activation is activations.get(name)
  check_activation(activation, dtypes=[jnp.float32])


def _relu_with_backward(backward):
  """ReLU forward with ``backward(x, cotangent)`` as its custom VJP."""

  @jax.custom_vjp
  def fn(x):
    return jax.nn.relu(x)

  fn.defvjp(lambda x: (jax.nn.relu(x), x), lambda x, g: (backward(x, g),))
  return fn


def test_a_backward_of_the_wrong_shape_is_a_listed_failure_naming_both_shapes():
  wrong = _relu_with_backward(lambda x, g: g[:3])
  with pytest.raises(AssertionError, match=r"wrong shape or dtype: .*float32\[3\].*float32\[41\]"):
    check_activation(wrong, dtypes=[jnp.float32])


@pytest.mark.parametrize("low,high", [(-100.0, -10.0), (2e5, 4e5), (-2e30, -2e29)])
def test_a_nan_gradient_in_any_decade_is_found(low, high):
  band = _relu_with_backward(lambda x, g: jnp.where((x > low) & (x < high), jnp.nan, jnp.where(x > 0, g, 0.0)))
  with pytest.raises(AssertionError, match="finite gradients \\[float32\\]: gradients not finite"):
    check_activation(band, dtypes=[jnp.float32])


def test_a_batch_dependent_backward_is_reported_as_not_elementwise():
  # Below zero, a gradient only for the example nearest to coming back: it needs the whole batch.
  batchy = _relu_with_backward(lambda x, g: jnp.where(x > 0, g, jnp.where(x == x.max(), 0.1 * g, 0.0)))
  with pytest.raises(AssertionError, match="under vmap each example is its own batch: the backward"
                                           " is not elementwise"):
    check_activation(batchy, dtypes=[jnp.float32])
