"""Every registered activation, checked against an independent closed form.

One table (``REFERENCES``) gives each catalogue entry's forward function and the
derivative its backward pass is meant to use, written here from the formulas,
not from the library. Every test is parameterised over the registry, so a new
catalogue entry is tested as soon as it has a row (a test refuses entries
without one).
"""

from __future__ import annotations

import contextlib
import io
import math
import re

import chex
import jax
import jax.ad_checkpoint
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

import activations
from conftest import WRAPS

NAMES = activations.names()  # at collection time: the catalogue alone
IMPLS = activations.IMPLS
NAME_IMPLS = [(name, impl) for name in NAMES for impl in activations.impls(name)]
FORWARD_MODE = [name for name in NAMES if "jvp" in activations.impls(name)]

_SELU_SCALE = 1.0507009873554805
_SELU_ALPHA = 1.6732632423543772
_GELU_C = math.sqrt(2 / math.pi)


def _sig(x):
  return jax.nn.sigmoid(x)  # stable for large |x|, unlike 1 / (1 + exp(-x))


def _relu(x, **_):
  return jnp.maximum(x, 0.0)


def _step(x, **_):
  return jnp.where(x > 0, 1.0, 0.0)


def _gelu_tanh(x):
  return 0.5 * x * (1 + jnp.tanh(_GELU_C * (x + 0.044715 * x**3)))


def _gelu_tanh_derivative(x):
  t = jnp.tanh(_GELU_C * (x + 0.044715 * x**3))
  return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * _GELU_C * (1 + 3 * 0.044715 * x**2)


def _gelu_exact_derivative(x):
  cdf = 0.5 * (1 + jax.scipy.special.erf(x / math.sqrt(2)))
  return cdf + x * jnp.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def _silu_derivative(x):
  return _sig(x) * (1 + x * (1 - _sig(x)))


def _below_zero_only(derivative):
  def wrapped(x, below_zero_only=False, **kwargs):
    d = derivative(x, **kwargs)
    return jnp.where(below_zero_only & (x > 0), 1.0, d)

  return wrapped


# name: (forward(x, **hyperparameters), derivative(x, **hyperparameters)),
# with the library's defaults as the references' defaults.
REFERENCES = {
    "relu": (_relu, lambda x: jnp.where(x > 0, 1.0, 0.0)),
    "leaky_relu": (
        lambda x, negative_slope=0.01: jnp.where(x >= 0, x, negative_slope * x),
        lambda x, negative_slope=0.01: jnp.where(x >= 0, 1.0, negative_slope),
    ),
    "relu6": (
        lambda x: jnp.clip(x, 0.0, 6.0),
        lambda x: jnp.where((x > 0) & (x < 6), 1.0, 0.0),
    ),
    "hard_tanh": (
        lambda x: jnp.clip(x, -1.0, 1.0),
        lambda x: jnp.where(jnp.abs(x) <= 1, 1.0, 0.0),
    ),
    "abs": (jnp.abs, jnp.sign),
    "identity": (lambda x: x, jnp.ones_like),
    "elu": (
        lambda x, alpha=1.0: jnp.where(x > 0, x, alpha * jnp.expm1(x)),
        lambda x, alpha=1.0: jnp.where(x > 0, 1.0, alpha * jnp.exp(x)),
    ),
    "celu": (
        lambda x, alpha=1.0: jnp.where(x > 0, x, alpha * jnp.expm1(x / alpha)),
        lambda x, alpha=1.0: jnp.where(x > 0, 1.0, jnp.exp(x / alpha)),
    ),
    "selu": (
        lambda x: _SELU_SCALE * jnp.where(x > 0, x, _SELU_ALPHA * jnp.expm1(x)),
        lambda x: _SELU_SCALE * jnp.where(x > 0, 1.0, _SELU_ALPHA * jnp.exp(x)),
    ),
    "gelu": (
        lambda x, approximate=True: _gelu_tanh(x),
        lambda x, approximate=True: _gelu_tanh_derivative(x),
    ),
    "silu": (lambda x: x * _sig(x), _silu_derivative),
    "softplus": (lambda x: jnp.logaddexp(x, 0.0), _sig),
    "tanh": (jnp.tanh, lambda x: 1 - jnp.tanh(x) ** 2),
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x))),
    "relu_with_leaky_backward": (
        _relu,
        lambda x, negative_slope=0.01: jnp.where(x >= 0, 1.0, negative_slope),
    ),
    "necro_relu": (
        _relu,
        lambda x, negative_slope=0.1: jnp.where(x >= 0, 1.0, negative_slope),
    ),
    # On a vector each element is its own unit; a sum's cotangent (1) never asks
    # a unit to go up, so the reference is ReLU's (the batch rule: test_revival.py).
    "revival_relu": (_relu, lambda x, negative_slope=0.3: jnp.where(x > 0, 1.0, 0.0)),
    "windowed_necro_relu": (
        _relu,
        lambda x, negative_slope=0.1, window=3.0: jnp.where(
            x >= 0, 1.0, jnp.where(x >= -window, negative_slope, 0.0)
        ),
    ),
    "sugar_bsilu": (
        _relu,
        _below_zero_only(
            lambda x, alpha=1.67: _sig(x) + (x + alpha) * _sig(x) * (1 - _sig(x))
        ),
    ),
    "sugar_nelu": (
        _relu,
        _below_zero_only(
            lambda x, alpha=0.2: jnp.where(x > 0, 1.0, 2 * alpha * x / (1 + x**2) ** 2)
        ),
    ),
    "sugar_elu": (
        _relu,
        _below_zero_only(
            lambda x, alpha=1.0: jnp.where(x > 0, 1.0, alpha * jnp.exp(x))
        ),
    ),
    "sugar_selu": (
        _relu,
        _below_zero_only(
            lambda x: _SELU_SCALE * jnp.where(x > 0, 1.0, _SELU_ALPHA * jnp.exp(x))
        ),
    ),
    "sugar_gelu": (_relu, _below_zero_only(_gelu_exact_derivative)),
    "sugar_silu": (_relu, _below_zero_only(_silu_derivative)),
    "sugar_softplus": (_relu, _below_zero_only(_sig)),
    "heaviside_straight_through": (_step, jnp.ones_like),
    "heaviside_fast_sigmoid": (
        _step,
        lambda x, slope=25.0: 1 / (1 + slope * jnp.abs(x)) ** 2,
    ),
    "heaviside_arctan": (
        _step,
        lambda x, alpha=2.0: (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2),
    ),
    "heaviside_sigmoid": (
        _step,
        lambda x, slope=25.0: slope * _sig(slope * x) * (1 - _sig(slope * x)),
    ),
    "heaviside_triangle": (
        _step,
        lambda x, width=1.0: jnp.maximum(0.0, 1 - jnp.abs(x) / width) / width,
    ),
    "heaviside_boxcar": (
        _step,
        lambda x, width=1.0: jnp.where(jnp.abs(x) < width / 2, 1 / width, 0.0),
    ),
    "heaviside_gaussian": (
        _step,
        lambda x, sigma=0.5: jnp.exp(-0.5 * (x / sigma) ** 2)
        / (sigma * math.sqrt(2 * math.pi)),
    ),
    "sign_straight_through": (
        lambda x: jnp.where(x >= 0, 1.0, -1.0),
        lambda x: jnp.where(jnp.abs(x) <= 1, 1.0, 0.0),
    ),
}

# Non-default hyperparameters, to check that each one reaches the function.
NONDEFAULT = {
    "leaky_relu": {"negative_slope": 0.2},
    "elu": {"alpha": 0.5},
    "celu": {"alpha": 2.0},
    "relu_with_leaky_backward": {"negative_slope": 0.3},
    "necro_relu": {"negative_slope": 0.05},
    "windowed_necro_relu": {"negative_slope": 0.3, "window": 0.5},
    "sugar_bsilu": {"alpha": 1.0, "below_zero_only": True},
    "sugar_nelu": {"alpha": 0.05},
    "sugar_elu": {"alpha": 0.5, "below_zero_only": True},
    "sugar_selu": {"below_zero_only": True},
    "sugar_gelu": {"below_zero_only": True},
    "sugar_silu": {"below_zero_only": True},
    "sugar_softplus": {"below_zero_only": True},
    "heaviside_fast_sigmoid": {"slope": 10.0},
    "heaviside_arctan": {"alpha": 4.0},
    "heaviside_sigmoid": {"slope": 4.0},
    "heaviside_triangle": {"width": 0.5},
    "heaviside_boxcar": {"width": 2.0},
    "heaviside_gaussian": {"sigma": 1.0},
}

# Where each function has a kink, the points its convention is pinned at.
KINKS = {
    "windowed_necro_relu": (-3.0,),
    "relu6": (6.0,),
    "hard_tanh": (-1.0, 1.0),
    "sign_straight_through": (-1.0, 1.0),
    "heaviside_boxcar": (-0.5, 0.5),
    "heaviside_triangle": (-1.0, 1.0),
}

# What the forward pass saves per element: a one-byte mask, the output (which
# the next layer keeps anyway), or a float copy of the input (leaky_relu, elu
# and celu need it for their hyperparameter's gradient; the ELU family for a
# 16-bit derivative that is exact at saturation).
RESIDUAL = {
    **{name: "input" for name in NAMES},
    **{
        name: "mask"
        for name in (
            "relu", "relu6", "hard_tanh", "relu_with_leaky_backward",
            "necro_relu", "revival_relu", "heaviside_boxcar", "sign_straight_through",
        )
    },
    **{
        name: "output"
        for name in (
            "identity", "tanh", "sigmoid",
            "heaviside_straight_through",
        )
    },
}

TRUE_DERIVATIVE = [n for n in NAMES if activations.registry.kind(n) == "true derivative"]


def _points(n=64, seed=0):
  """Random points in [-4, 7], away from every kink."""
  x = np.random.default_rng(seed).uniform(-4, 7, size=4 * n).astype(np.float32)
  kinks = np.array([0.0, -0.5, 0.5, -1.0, 1.0, 6.0])
  x = x[np.min(np.abs(x[:, None] - kinks[None]), axis=1) > 1e-2]
  return jnp.asarray(x[:n])


X = _points()


def _grad(fn, **kwargs):
  return jax.grad(lambda x: fn(x, **kwargs).sum())


def test_every_catalogue_entry_has_a_reference():
  assert set(NAMES) == set(REFERENCES)
  assert set(NONDEFAULT) <= set(NAMES)


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(name, wrap):
  forward, _ = REFERENCES[name]
  y = wrap(activations.get(name))(X)
  chex.assert_type(y, jnp.float32)
  chex.assert_shape(y, X.shape)
  np.testing.assert_allclose(y, forward(X), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize("name,impl", NAME_IMPLS)
def test_backward_matches_reference(name, wrap, impl):
  _, derivative = REFERENCES[name]
  g = wrap(_grad(activations.get(name), impl=impl))(X)
  chex.assert_type(g, jnp.float32)
  chex.assert_shape(g, X.shape)
  np.testing.assert_allclose(g, derivative(X), rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("name,impl", NAME_IMPLS)
def test_convention_at_zero_and_kinks(name, impl):
  forward, derivative = REFERENCES[name]
  x = jnp.array((0.0, *KINKS.get(name, ())))
  fn = activations.get(name)
  np.testing.assert_allclose(fn(x, impl=impl), forward(x), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(
      _grad(fn, impl=impl)(x), derivative(x), rtol=1e-5, atol=1e-7
  )


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize("name", NONDEFAULT)
def test_nondefault_hyperparameters(name, wrap):
  forward, derivative = REFERENCES[name]
  kwargs = NONDEFAULT[name]
  fn = activations.get(name)
  np.testing.assert_allclose(
      wrap(lambda x: fn(x, **kwargs))(X), forward(X, **kwargs), rtol=2e-6, atol=1e-6
  )
  np.testing.assert_allclose(
      wrap(_grad(fn, **kwargs))(X), derivative(X, **kwargs), rtol=2e-5, atol=1e-5
  )


@pytest.mark.parametrize("name,impl", NAME_IMPLS)
def test_transforms_agree(name, impl):
  """vmap, vjp, remat and scan give the plain gradient, elementwise."""
  fn = activations.get(name)
  expected = REFERENCES[name][1](X)
  rows = X.reshape(8, 8)

  per_row = jax.vmap(jax.grad(lambda r: fn(r, impl=impl).sum()))(rows)
  np.testing.assert_allclose(per_row.reshape(-1), expected, rtol=2e-5, atol=1e-5)

  y, pullback = jax.vjp(lambda x: fn(x, impl=impl), X)
  np.testing.assert_allclose(pullback(jnp.ones_like(y))[0], expected, rtol=2e-5, atol=1e-5)

  rematted = jax.grad(lambda x: jax.checkpoint(lambda x: fn(x, impl=impl))(x).sum())(X)
  np.testing.assert_allclose(rematted, expected, rtol=2e-5, atol=1e-5)

  def scanned_loss(rows):
    def body(total, row):
      return total + fn(row, impl=impl).sum(), None

    return jax.lax.scan(body, jnp.zeros(()), rows)[0]

  scanned = jax.jit(jax.grad(scanned_loss))(rows)
  np.testing.assert_allclose(scanned.reshape(-1), expected, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("name", FORWARD_MODE)
def test_impls_give_identical_reverse_gradients(name):
  fn = activations.get(name)
  np.testing.assert_array_equal(_grad(fn, impl="vjp")(X), _grad(fn, impl="jvp")(X))


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize("name", FORWARD_MODE)
def test_forward_mode_with_jvp_impl(name, wrap):
  fn = activations.get(name)
  derivative = REFERENCES[name][1]
  x = X[:16]
  tangent = jnp.linspace(-1.0, 1.0, 16)
  y, y_dot = wrap(lambda x, t: jax.jvp(lambda x: fn(x, impl="jvp"), (x,), (t,)))(x, tangent)
  np.testing.assert_allclose(y, REFERENCES[name][0](x), rtol=2e-6, atol=1e-6)
  np.testing.assert_allclose(y_dot, derivative(x) * tangent, rtol=2e-5, atol=1e-5)

  jacobian = wrap(jax.jacfwd(lambda x: fn(x, impl="jvp")))(x)
  np.testing.assert_allclose(jacobian, jnp.diag(derivative(x)), rtol=2e-5, atol=1e-5)

  # The Hessian of sum(f) is diagonal, holding the derivative of the surrogate
  # derivative (zero for piecewise-constant ones). Jitted only: op-by-op it
  # takes seconds and checks nothing more.
  hessian = jax.jit(jax.hessian(lambda x: fn(x, impl="jvp").sum()))(x)
  second = jax.vmap(jax.grad(derivative))(x)
  np.testing.assert_allclose(hessian, jnp.diag(second), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_vjp_impl_refuses_forward_mode(name):
  with pytest.raises(TypeError, match="custom_vjp"):
    jax.jvp(activations.get(name), (X,), (X,))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", TRUE_DERIVATIVE)
def test_baselines_pass_check_grads(name, impl):
  fn = lambda x: activations.get(name)(x, impl=impl)  # noqa: E731
  modes = ["rev"] if impl == "vjp" else ["fwd", "rev"]
  with jax.enable_x64(True):
    x = jnp.asarray(np.asarray(X, np.float64))
    jax.test_util.check_grads(fn, (x,), order=1, modes=modes, eps=1e-4)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_preserved(name, dtype):
  forward, derivative = REFERENCES[name]
  x = jnp.clip(X, -3.5, 3.5).astype(dtype)  # within float16's comfortable range
  fn = activations.get(name)
  y, g = fn(x), _grad(fn)(x)
  chex.assert_type([y, g], dtype)
  reference_x = x.astype(jnp.float32)
  tolerance = {"rtol": 2e-2, "atol": 2e-2}
  np.testing.assert_allclose(y.astype(jnp.float32), forward(reference_x), **tolerance)
  np.testing.assert_allclose(g.astype(jnp.float32), derivative(reference_x), **tolerance)


@pytest.mark.parametrize("name", NAMES)
def test_float64_under_x64(name):
  with jax.enable_x64(True):
    x = jnp.asarray(np.asarray(X, np.float64))
    fn = activations.get(name)
    y, g = fn(x), _grad(fn)(x)
    assert y.dtype == jnp.float64 and g.dtype == jnp.float64
    np.testing.assert_allclose(g, REFERENCES[name][1](x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("name", NAMES)
def test_stable_at_extreme_inputs(name, dtype):
  info = jnp.finfo(dtype)
  extremes = [-1e4, -100.0, -20.0, 20.0, 100.0, 1e4, float(info.max), float(info.min)]
  x = jnp.array(extremes, dtype)
  fn = activations.get(name)
  for impl in activations.impls(name):
    g = _grad(fn, impl=impl)(x)
    chex.assert_tree_all_finite(g)
    assert not jnp.any(jnp.isnan(fn(x, impl=impl)))


@pytest.mark.parametrize("name,impl", NAME_IMPLS)
def test_nan_input_gives_nan_output_and_gradient(name, impl):
  x = jnp.array([jnp.nan, 1.5, -1.5])
  fn = activations.get(name)
  y, g = fn(x, impl=impl), _grad(fn, impl=impl)(x)
  assert jnp.isnan(y[0]) and jnp.isnan(g[0])
  assert jnp.all(jnp.isfinite(y[1:])) and jnp.all(jnp.isfinite(g[1:]))


@pytest.mark.parametrize(
    "bad", [jnp.array([1, 2]), jnp.array([True]), np.arange(3), True], ids=str
)
@pytest.mark.parametrize("name", NAMES)
def test_integer_and_boolean_inputs_raise(name, bad):
  with pytest.raises(TypeError, match="floating-point"):
    activations.get(name)(bad)


def _saved_residuals(fn, x):
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    jax.ad_checkpoint.print_saved_residuals(lambda x: fn(x).sum(), x)
  return printed.getvalue().strip().splitlines()


@pytest.mark.parametrize("name", NAMES)
def test_forward_saves_only_what_the_derivative_needs(name):
  x = jnp.linspace(-3.0, 3.0, 97)  # an odd size no other array here has
  per_element = [
      line for line in _saved_residuals(activations.get(name), x) if "[97]" in line
  ]
  kind = RESIDUAL[name]
  assert len(per_element) == 1, per_element
  if kind == "mask":
    assert per_element[0].startswith("i8[97]"), per_element
  else:
    assert per_element[0].startswith("f32[97]"), per_element
    is_argument = "from the argument" in per_element[0]
    assert is_argument == (kind == "input"), per_element


def test_necro_relu_saves_no_more_per_element_than_relu():
  x = jnp.linspace(-3.0, 3.0, 97)

  def bytes_per_element(fn):
    sizes = {"i8": 1, "bool": 1, "f32": 4}
    total = 0
    for line in _saved_residuals(fn, x):
      match = re.match(r"(\w+)\[(\d*)\]", line)
      total += sizes[match.group(1)] * (match.group(2) == "97")
    return total

  necro, relu = bytes_per_element(activations.necro_relu), bytes_per_element(jax.nn.relu)
  assert necro == 1
  assert necro <= relu


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_parameters_get_bfloat16_gradients(name):
  fn = activations.get(name)
  w = jnp.full((4, 3), 0.5, jnp.bfloat16)
  x = jnp.linspace(-2.0, 2.0, 8).reshape(2, 4).astype(jnp.bfloat16)
  g = jax.grad(lambda w: fn(x @ w).astype(jnp.float32).sum())(w)
  chex.assert_type(g, jnp.bfloat16)
  chex.assert_shape(g, w.shape)


FLOAT_HYPERPARAMETERS = [
    (name, key)
    for name in NAMES
    for key, default in activations.hyperparameters(name).items()
    if isinstance(default, float)
]


@pytest.mark.parametrize("name,key", FLOAT_HYPERPARAMETERS)
def test_hyperparameters_sweep_with_vmap_and_do_not_retrace(name, key):
  fn = activations.get(name)
  derivative = REFERENCES[name][1]
  values = jnp.array([0.05, 0.5, 2.0])
  swept = jax.vmap(lambda v: _grad(fn, **{key: v})(X))(values)
  for row, value in zip(swept, [0.05, 0.5, 2.0]):
    np.testing.assert_allclose(row, derivative(X, **{key: value}), rtol=2e-5, atol=1e-5)

  traces = 0

  @jax.jit
  def gradient(x, value):
    nonlocal traces
    traces += 1
    return _grad(fn, **{key: value})(x)

  first = gradient(X, 0.5)
  second = gradient(X, 0.7)  # a new float must reuse the compiled program
  assert traces == 1, f"traced {traces} times for two calls"
  # The new value reached the compiled program: it is not a baked constant.
  np.testing.assert_allclose(second, derivative(X, **{key: 0.7}), rtol=2e-5, atol=1e-5)
  np.testing.assert_allclose(first, derivative(X, **{key: 0.5}), rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_catalogue_passes_the_public_battery(name):
  """activations.testing.check_activation on every registered activation.

  In float32: 16-bit inputs are checked for every entry by the tests above
  (dtypes, bfloat16 parameters, the ELU family's saturation), and the
  battery's own 16-bit checks by tests/test_testing.py.
  """
  forward, derivative = REFERENCES[name]
  report = activations.testing.check_activation(
      activations.get(name), forward=forward, derivative=derivative, dtypes=(jnp.float32,)
  )
  assert report.passed


# --- defects, each with the input that showed it ------------------------


@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_elu_family_16_bit_derivative_is_exact_at_saturation(name, dtype):
  """D1: computed from the input in float32, not from the rounded output."""
  x = jnp.array([-20.0, -8.0, -3.0], dtype)
  g = activations.backward_derivative(activations.get(name))(x).astype(jnp.float32)
  expected = REFERENCES[name][1](x.astype(jnp.float32))
  np.testing.assert_allclose(g, expected, rtol=1e-2, atol=1e-4)
  g = activations.backward_derivative(activations.elu)(x, 0.3).astype(jnp.float32)
  assert jnp.all(g >= 0)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("heaviside_gaussian(sigma=0.0)", "sigma must be > 0"),
        ("heaviside_gaussian(sigma=-0.5)", "sigma must be > 0"),
        ("heaviside_triangle(width=0.0)", "width must be > 0"),
        ("heaviside_boxcar(width=-1.0)", "width must be > 0"),
        ("heaviside_fast_sigmoid(slope=-1.0)", "slope must be > 0"),
        ("heaviside_arctan(alpha=0.0)", "alpha must be > 0"),
        ("heaviside_sigmoid(slope=0.0)", "slope must be > 0"),
        ("celu(alpha=0.0)", "alpha must be > 0"),
        ("sugar_nelu(alpha=-0.2)", "alpha must be >= 0"),
        ("sugar_elu(alpha=-1.0)", "alpha must be >= 0"),
    ],
)
def test_hyperparameters_out_of_range_are_refused(spec, message):
  """D2: in get() and in a direct call with a concrete value."""
  with pytest.raises(ValueError, match=message):
    activations.get(spec)
  name, kwargs = activations.parse_spec(spec)
  with pytest.raises(ValueError, match=message):
    activations.get(name)(X, **kwargs)
  with pytest.raises(ValueError, match=message):
    activations.get(name)(X, **{k: jnp.array([v, 1.0])[:1] for k, v in kwargs.items()})


@pytest.mark.parametrize(
    "name, key, value, reference",
    [
        ("leaky_relu", "negative_slope", 0.2, jax.nn.leaky_relu),
        ("elu", "alpha", 0.7, jax.nn.elu),
        ("celu", "alpha", 0.7, jax.nn.celu),
    ],
)
@pytest.mark.parametrize("impl", IMPLS)
def test_baselines_give_true_hyperparameter_gradients(name, key, value, reference, impl):
  """D3: as jax.nn does (jax.nn.elu's alpha gradient at these points is -1.84...)."""
  fn = activations.get(name)
  ours = jax.grad(lambda a: fn(X, **{key: a}, impl=impl).sum())(value)
  expected = jax.grad(lambda a: reference(X, a).sum())(value)
  np.testing.assert_allclose(ours, expected, rtol=1e-5)
  per_channel = jnp.linspace(0.1, 0.8, 8).reshape(1, 8)  # one value per column
  ours = jax.grad(lambda a: fn(X.reshape(8, 8), **{key: a}).sum())(per_channel)
  expected = jax.grad(lambda a: reference(X.reshape(8, 8), a).sum())(per_channel)
  chex.assert_shape(ours, (1, 8))
  np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_backward_only_hyperparameters_get_no_gradient():
  assert jax.grad(lambda s: activations.necro_relu(X, s).sum())(0.1) == 0.0


def test_hyperparameter_of_a_wrong_shape_fails_in_the_forward_pass():
  """D4: a clear ValueError, not an error deep in the backward pass."""
  x = jnp.ones((4, 3))
  for fn in (activations.necro_relu, activations.leaky_relu):
    with pytest.raises(ValueError, match=r"negative_slope has shape \(2,\)"):
      fn(x, jnp.ones(2))
    with pytest.raises(ValueError, match=r"negative_slope has shape \(5, 3\)"):
      jax.jit(fn)(x, jnp.ones((5, 3)))


def test_heaviside_sigmoid_is_symmetric_above_zero():
  """D5: s(z)s(-z) does not cancel; slope * s * (1 - s) was 0.8% off at +x."""
  x = jnp.array([0.2, 0.3, 0.4])
  g = activations.backward_derivative(activations.heaviside_sigmoid)
  np.testing.assert_allclose(g(x), g(-x), rtol=1e-6)


def test_spec_with_a_repeated_keyword_is_refused():
  """D6."""
  with pytest.raises(ValueError, match="'negative_slope' is repeated"):
    activations.get("necro_relu(negative_slope=0.05, negative_slope=0.3)")


@pytest.mark.parametrize(
    "name",
    ["silu", "gelu", "sugar_bsilu", "sugar_nelu", "sugar_elu", "sugar_selu",
     "sugar_gelu", "sugar_silu", "sugar_softplus"],
)
@pytest.mark.parametrize("impl", IMPLS)
def test_gradients_at_infinity_are_the_finite_limits(name, impl):
  """D7: silu and SUGAR gave NaN at ±inf; gelu gives 0 and 1."""
  x = jnp.array([-jnp.inf, jnp.inf])
  g = _grad(activations.get(name), impl=impl)(x)
  limits = REFERENCES[name][1](jnp.array([-1e4, 1e4]))
  np.testing.assert_allclose(g, limits, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_errors_name_the_public_function(name):
  """D9: not 'with_derivative(<lambda>, <lambda>)'."""
  with pytest.raises(TypeError, match=rf"^{name} expects a floating-point array"):
    activations.get(name)(jnp.arange(3))
