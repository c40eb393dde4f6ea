"""The builders (surrogate, with_derivative, custom_backward) and the registry."""

from __future__ import annotations

import functools
import pathlib

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import activations
from conftest import WRAPS

LIBRARY_DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "library.md"
X = jnp.array([-3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0])


def _grad(fn, *args, **kwargs):
  return jax.grad(lambda x: fn(x, *args, **kwargs).sum())


# --- builders -------------------------------------------------------------


@pytest.mark.parametrize("impl", activations.IMPLS)
@pytest.mark.parametrize("wrap", WRAPS)
def test_necro_relu_equals_its_one_line_definition(wrap, impl):
  one_liner = activations.surrogate(
      jax.nn.relu, functools.partial(jax.nn.leaky_relu, negative_slope=0.1), impl=impl
  )
  np.testing.assert_array_equal(wrap(one_liner)(X), wrap(activations.necro_relu)(X))
  np.testing.assert_allclose(
      wrap(_grad(one_liner))(X), wrap(_grad(activations.necro_relu, impl=impl))(X),
      rtol=1e-7,
  )
  np.testing.assert_array_equal(activations.necro_relu(X), jax.nn.relu(X))


@pytest.mark.parametrize("impl", activations.IMPLS)
def test_surrogate_derives_the_backward_derivative(impl):
  fn = activations.surrogate(jnp.sign, jnp.sin, impl=impl)
  np.testing.assert_array_equal(fn(X), jnp.sign(X))
  np.testing.assert_allclose(_grad(fn)(X), jnp.cos(X), rtol=1e-6)


@pytest.mark.parametrize("impl", activations.IMPLS)
def test_surrogate_passes_hyperparameters_as_arrays(impl):
  fn = activations.surrogate(
      lambda x, slope: jax.nn.relu(x), jax.nn.leaky_relu, impl=impl
  )
  slopes = jnp.array([0.1, 0.2])
  gradients = jax.vmap(lambda s: _grad(fn, s)(X))(slopes)
  np.testing.assert_allclose(gradients[:, 0], slopes)
  per_channel = jnp.array([0.1, 0.2, 0.3])
  np.testing.assert_allclose(
      _grad(fn, per_channel)(-jnp.ones(3)), per_channel, rtol=1e-6
  )


def test_hyperparameters_get_no_gradient_unless_given_a_derivative():
  assert jax.grad(lambda s: activations.necro_relu(X, s).sum())(0.1) == 0.0
  scaled = activations.with_derivative(
      lambda x, a: a * x, lambda x, a: a * jnp.ones_like(x),
      hyperparameter_derivatives=[lambda x, a: x],
  )
  assert jax.grad(lambda a: scaled(X, a).sum())(2.0) == pytest.approx(float(X.sum()))


@pytest.mark.parametrize("impl", activations.IMPLS)
def test_with_derivative_from_the_output(impl):
  fn = activations.with_derivative(jnp.tanh, lambda y: 1 - y**2, wrt="output", impl=impl)
  np.testing.assert_allclose(_grad(fn)(X), 1 - jnp.tanh(X) ** 2, rtol=1e-6)


@pytest.mark.parametrize("impl", activations.IMPLS)
def test_with_derivative_from_a_mask(impl):
  fn = activations.with_derivative(
      jax.nn.relu,
      lambda positive: jnp.where(positive, 1.0, 0.5),
      wrt=lambda x: x > 0,
      impl=impl,
  )
  np.testing.assert_allclose(_grad(fn)(X), jnp.where(X > 0, 1.0, 0.5))


def test_custom_backward_gets_residuals_and_cotangent():
  noisy = activations.custom_backward(
      lambda x, scale: (x, scale), lambda scale, g: g * scale
  )
  assert jax.grad(lambda x: noisy(x, 3.0))(2.0) == 3.0
  clipped = activations.custom_backward(
      lambda x: (jax.nn.relu(x), None), lambda _, g: jnp.clip(g, -1.0, 1.0)
  )
  np.testing.assert_array_equal(
      jax.grad(lambda x: (10.0 * clipped(x)).sum())(X), jnp.ones_like(X)
  )
  assert clipped(X.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_builders_reject_bad_arguments():
  with pytest.raises(ValueError, match="impl must be one of"):
    activations.surrogate(jax.nn.relu, jax.nn.relu, impl="fwd")
  with pytest.raises(ValueError, match="wrt must be"):
    activations.with_derivative(jnp.tanh, jnp.tanh, wrt="x")
  with pytest.raises(ValueError, match="impl must be one of"):
    activations.necro_relu(X, impl="reverse")
  with pytest.raises(TypeError, match="hyperparameters must be real"):
    activations.necro_relu(X, "0.1")


def test_jitting_twice_traces_the_backward_once():
  traces = 0

  def derivative(x):
    nonlocal traces
    traces += 1
    return jnp.ones_like(x)

  fn = activations.with_derivative(jnp.sin, derivative)
  step = jax.jit(_grad(fn))
  first = step(X)
  assert traces == 1  # the backward was traced, once
  step(X + 1.0)
  assert traces == 1, "the second call with the same shapes retraced"
  np.testing.assert_array_equal(first, jnp.ones_like(X))
  step(jnp.ones(3))  # a new shape must trace again: the counter does count
  assert traces == 2


def test_backward_derivative_takes_hyperparameters():
  np.testing.assert_allclose(
      activations.backward_derivative(activations.necro_relu)(X, negative_slope=0.3),
      jnp.where(X >= 0, 1.0, 0.3),
  )


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    x=hnp.arrays(
        np.float32, (16,), elements=st.floats(-1e4, 1e4, width=32, allow_subnormal=False)
    )
)
def test_relu_forward_surrogates_keep_relus_exact_zeros(x):
  relu = np.maximum(x, 0)
  for name in ("necro_relu", "sugar_bsilu", "sugar_nelu", "sugar_gelu"):
    np.testing.assert_array_equal(activations.get(name)(x), relu)
  gradient = np.asarray(_grad(activations.necro_relu)(x))
  np.testing.assert_array_equal(gradient, np.where(x >= 0, 1.0, 0.1).astype(np.float32))


# --- registry -------------------------------------------------------------


def test_get_resolves_specs_and_passes_callables_through():
  fn = activations.get("necro_relu(negative_slope=0.05)")
  np.testing.assert_allclose(_grad(fn)(X)[0], 0.05)
  assert activations.get(jax.nn.relu) is jax.nn.relu
  assert activations.get("relu") is activations.relu
  gelu = activations.get("gelu(approximate=False, impl='jvp')")
  np.testing.assert_allclose(gelu(X), jax.nn.gelu(X, approximate=False), rtol=1e-6)


def test_parse_spec_never_evaluates():
  with pytest.raises(ValueError, match="Python literal"):
    activations.parse_spec("necro_relu(negative_slope=__import__('os').getcwd())")
  with pytest.raises(ValueError, match="must be a name"):
    activations.parse_spec("activations.relu")
  assert activations.parse_spec(" leaky_relu(negative_slope=-0.5) ") == (
      "leaky_relu",
      {"negative_slope": -0.5},
  )
  assert activations.parse_spec("necro_relu(negative_slope=[0.01, 0.1])")[1] == {
      "negative_slope": [0.01, 0.1]
  }


@pytest.mark.parametrize(
    "spec,message",
    [
        ("necro_rleu", r"Did you mean 'necro_relu'"),
        ("necro_relu(slope=0.1)", r"no parameter 'slope'.*negative_slope"),
        ("necro_relu(0.1)", r"as keywords, e.g. necro_relu\(negative_slope=...\)"),
        ("necro_relu(negative_slope='big')", r"negative_slope must be a number"),
        ("necro_relu(negative_slope=True)", r"negative_slope must be a number"),
        ("sugar_bsilu(below_zero_only=1)", r"below_zero_only must be True or False"),
        ("relu(impl='fwd')", r"impl must be one of"),
        ("necro_relu(negative_slope=[0.1, 0.2])", r"is a list"),
        ("relu(", r"Cannot parse"),
        ("necro_relu(negative_slope=0.1, negative_slope=0.2)", r"repeated"),
        ("heaviside_gaussian(sigma=0)", r"sigma must be > 0"),
        ("", r"Cannot parse"),
    ],
)
def test_get_explains_bad_specs(spec, message):
  with pytest.raises(ValueError, match=message):
    activations.get(spec)


def test_get_rejects_non_strings():
  with pytest.raises(TypeError, match="must be a string"):
    activations.get(0.1)


def test_register_adds_and_protects_names():
  fn = activations.surrogate(jax.nn.relu, jax.nn.softplus)
  try:
    activations.register("test_soft_backward", fn)
    assert "test_soft_backward" in activations.names()
    assert activations.get("test_soft_backward") is fn
    with pytest.raises(ValueError, match="already registered"):
      activations.register("test_soft_backward", fn)
    activations.register("test_soft_backward", jax.nn.relu, overwrite=True)
    assert activations.get("test_soft_backward") is jax.nn.relu
  finally:
    activations.unregister("test_soft_backward")
  assert "test_soft_backward" not in activations.names()
  with pytest.raises(ValueError, match="identifier"):
    activations.register("not a name", fn)
  with pytest.raises(TypeError, match="callable"):
    activations.register("number", 3)


def test_hyperparameters_lists_defaults():
  assert activations.hyperparameters("sugar_bsilu") == {
      "alpha": 1.67,
      "below_zero_only": False,
      "impl": "vjp",
  }
  assert activations.hyperparameters("relu") == {"impl": "vjp"}


def test_readme_catalogue_is_generated_from_the_registry():
  assert activations.catalogue_markdown() in LIBRARY_DOC.read_text()


def test_spec_errors_never_say_activation():
  """A dataset spec parsed with the same parser must not read 'Activation spec'."""
  for spec in ("moons(0.1)", "moons(", "moons.x", "moons(noise=x)", "moons(a=1, a=2)"):
    with pytest.raises(ValueError) as error:
      activations.parse_spec(spec)
    assert "ctivation" not in str(error.value), error.value
