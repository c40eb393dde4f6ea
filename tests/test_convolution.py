"""Convolutions as patches times a matrix agree with XLA's, forward and backward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import convolution

NUMBERS = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("kernel_size,stride,padding", [
    (3, 1, "SAME"), (3, 2, "SAME"), (1, 2, "SAME"), (3, 1, "VALID"), (5, 2, "VALID"),
    (3, 1, ((2, 0), (1, 1))),
])
def test_values_and_gradients_match_xla(use_jit, kernel_size, stride, padding):
  x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))
  kernel = jax.random.normal(jax.random.key(1), (kernel_size, kernel_size, 3, 4))

  def loss(conv, x, kernel):
    return jnp.sum(jnp.sin(conv(x, kernel, (stride, stride), padding)))

  xla = lambda x, k, s, p: jax.lax.conv_general_dilated(x, k, s, p, dimension_numbers=NUMBERS)
  run = jax.jit if use_jit else (lambda f, **_: f)
  ours = run(jax.value_and_grad(lambda x, k: loss(convolution.patches_convolution, x, k), (0, 1)))
  theirs = jax.value_and_grad(lambda x, k: loss(xla, x, k), (0, 1))
  (value, grads), (expected, expected_grads) = ours(x, kernel), theirs(x, kernel)
  assert value.dtype == jnp.float32
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  for grad, expected_grad in zip(grads, expected_grads):
    assert grad.shape == expected_grad.shape and grad.dtype == expected_grad.dtype
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-4)


def test_a_dilated_convolution_is_left_to_xla():
  x, kernel = jnp.ones((1, 7, 7, 2)), jnp.ones((3, 3, 2, 1))
  ours = convolution.patches_convolution(x, kernel, (1, 1), "SAME", rhs_dilation=(2, 2),
                                         dimension_numbers=NUMBERS)
  theirs = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", rhs_dilation=(2, 2),
                                        dimension_numbers=NUMBERS)
  np.testing.assert_array_equal(ours, theirs)


def test_auto_is_patches_on_cpu_and_unknown_names_are_refused():
  assert convolution.resolve("auto") == ("patches" if jax.default_backend() == "cpu" else "xla")
  with pytest.raises(ValueError, match="choose from auto, xla, patches"):
    convolution.resolve("winograd")
