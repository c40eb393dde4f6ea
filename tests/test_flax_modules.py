"""The functional forms and their Flax NNX and Linen modules.

Functional forms are checked against references written here (closed forms,
a reshape-max), eagerly and under jit. Every module is checked in both APIs
through one small adapter (``_Api``): it initialises, keeps shapes and dtypes,
gives the functional values, trains inside a small MLP with Optax's adam (the
loss falls; PReLU's slope moves), and refuses bad arguments with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import activations
from activations import functional
from activations import linen as linen_layers
from activations import nnx as nnx_layers
from conftest import WRAPS

APIS = ["nnx", "linen"]
LAYERS = {"nnx": nnx_layers, "linen": linen_layers}

# Two rows with negative, zero and positive entries; 4 channels.
X = jnp.array([[-2.0, -0.5, 0.0, 1.5], [3.0, -1.0, 0.25, -4.0]])


def _mean_slope_leaky_relu(x, lower, upper):
  return jnp.where(x >= 0, x, (lower + upper) / 2 * x)


# ---------------------------------------------------------------- functional


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize(
    "slope", [0.2, [0.1, 0.2, 0.3, 0.4]], ids=["shared", "per_channel"]
)
def test_prelu_values_and_true_gradients(wrap, slope):
  slope = jnp.array(slope)
  x, s = np.asarray(X), np.asarray(slope)
  y = wrap(functional.prelu)(X, slope)
  np.testing.assert_allclose(y, np.where(x >= 0, x, s * x))
  grad_x, grad_slope = wrap(
      jax.grad(lambda x, a: functional.prelu(x, a).sum(), argnums=(0, 1))
  )(X, slope)
  np.testing.assert_allclose(grad_x, np.where(x >= 0, 1.0, s + 0 * x))
  below = np.where(x < 0, x, 0.0)
  expected = below.sum() if s.ndim == 0 else below.sum(axis=0)
  np.testing.assert_allclose(grad_slope, expected)
  assert grad_slope.shape == slope.shape


@pytest.mark.parametrize("wrap", WRAPS)
def test_prelu_casts_the_slope_to_the_input_dtype(wrap):
  x = X.astype(jnp.bfloat16)
  slope = jnp.array([0.1, 0.2, 0.3, 0.4], jnp.float32)
  assert wrap(functional.prelu)(x, slope).dtype == jnp.bfloat16
  grad = wrap(jax.grad(lambda a: functional.prelu(x, a).astype(jnp.float32).sum()))
  assert grad(slope).dtype == jnp.float32


@pytest.mark.parametrize("wrap", WRAPS)
def test_rrelu_deterministic_is_the_mean_slope_leaky_relu(wrap):
  y = wrap(lambda x: functional.rrelu(x, None, 0.1, 0.3, deterministic=True))(X)
  np.testing.assert_array_equal(y, _mean_slope_leaky_relu(X, 0.1, 0.3))
  np.testing.assert_array_equal(y, jax.nn.leaky_relu(X, 0.2))


@pytest.mark.parametrize("wrap", WRAPS)
def test_rrelu_training_draws_slopes_in_range_per_element(wrap, key):
  lower, upper = 0.1, 0.3
  x = -jnp.linspace(1.0, 2.0, 1000)
  rrelu = wrap(lambda x, key: functional.rrelu(x, key, lower, upper))
  slopes = np.asarray(rrelu(x, key) / x)
  assert lower - 1e-6 <= slopes.min() and slopes.max() <= upper + 1e-6
  # Spread over the whole range, not one slope for all elements.
  assert slopes.min() < lower + 0.01 and slopes.max() > upper - 0.01
  np.testing.assert_array_equal(rrelu(x, key), rrelu(x, key))
  assert not np.array_equal(rrelu(x, key), rrelu(x, jax.random.key(1)))
  np.testing.assert_array_equal(rrelu(-x, key), -x)  # x >= 0 passes unchanged
  # The gradient is the sampled slope: the true derivative of what was drawn.
  grad = wrap(jax.grad(lambda x, key: functional.rrelu(x, key, lower, upper).sum()))
  np.testing.assert_allclose(grad(x, key), slopes, rtol=1e-5)


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize("num_pieces", [1, 2, 3, 6])
def test_maxout_matches_a_reshape_max(wrap, key, num_pieces):
  x = jax.random.normal(key, (3, 6))
  y = wrap(lambda x: functional.maxout(x, num_pieces))(x)
  reference = np.asarray(x).reshape(3, 6 // num_pieces, num_pieces).max(axis=-1)
  np.testing.assert_array_equal(y, reference)
  # The gradient picks the winner of each group.
  grad = wrap(jax.grad(lambda x: functional.maxout(x, num_pieces).sum()))(x)
  winners = np.asarray(x) == np.repeat(reference, num_pieces, axis=-1)
  np.testing.assert_array_equal(grad, winners.astype(np.float32))


@pytest.mark.parametrize("wrap", WRAPS)
def test_maxout_along_another_axis(wrap, key):
  x = jax.random.normal(key, (6, 3))
  y = wrap(lambda x: functional.maxout(x, 2, axis=0))(x)
  np.testing.assert_array_equal(y, np.asarray(x).reshape(3, 2, 3).max(axis=1))


@pytest.mark.parametrize("wrap", WRAPS)
def test_mixed_applies_each_activation_to_its_own_group(wrap, key):
  x = jax.random.normal(key, (5, 6))
  chosen = ["relu", "tanh", activations.necro_relu]
  mixed = wrap(lambda x: functional.mixed(x, chosen, group_sizes=(1, 2, 3)))
  expected = jnp.concatenate(
      [jnp.maximum(x[:, :1], 0.0), jnp.tanh(x[:, 1:3]), jnp.maximum(x[:, 3:], 0.0)],
      axis=-1,
  )
  np.testing.assert_allclose(mixed(x), expected, rtol=1e-6)
  grad = wrap(jax.grad(lambda x: functional.mixed(x, chosen, (1, 2, 3)).sum()))(x)
  expected_grad = jnp.concatenate(
      [
          jnp.where(x[:, :1] > 0, 1.0, 0.0),
          1 - jnp.tanh(x[:, 1:3]) ** 2,
          jnp.where(x[:, 3:] >= 0, 1.0, 0.1),  # NecroReLU's surrogate survives
      ],
      axis=-1,
  )
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-5)


def test_mixed_splits_equally_without_group_sizes():
  y = functional.mixed(X, ["abs", "identity"])
  np.testing.assert_array_equal(y[:, :2], jnp.abs(X[:, :2]))
  np.testing.assert_array_equal(y[:, 2:], X[:, 2:])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: functional.prelu(X, jnp.ones(3)), ValueError, r"shape \(4,\)"),
        (lambda: functional.prelu(X, jnp.ones((2, 4))), ValueError, "per channel"),
        (lambda: functional.prelu(jnp.ones(4, jnp.int32), 0.1), TypeError, "floating"),
        (lambda: functional.prelu(X, 1j), TypeError, "real number"),
        (lambda: functional.rrelu(X, None), ValueError, "needs a PRNG key"),
        (lambda: functional.rrelu(X, None, 0.5, 0.1, deterministic=True),
         ValueError, "0 <= lower <= upper"),
        (lambda: functional.rrelu(X, None, -0.1, 0.1, deterministic=True),
         ValueError, "0 <= lower <= upper"),
        (lambda: functional.rrelu(X, None, "0.1", deterministic=True),
         TypeError, "lower must be a Python number"),
        (lambda: functional.rrelu(X, None, deterministic="yes"),
         TypeError, "True or False"),
        (lambda: functional.maxout(jnp.ones((2, 5)), 2), ValueError, "must divide"),
        (lambda: functional.maxout(X, 0), ValueError, "positive integer"),
        (lambda: functional.maxout(X, 2.0), TypeError, "positive integer"),
        (lambda: functional.maxout(X, 2, axis=2), ValueError, "out of range"),
        (lambda: functional.maxout(jnp.array(1.0), 1), ValueError, "feature axis"),
        (lambda: functional.mixed(X, ["relu", "tanh", "abs"]),
         ValueError, "split equally"),
        (lambda: functional.mixed(X, ["relu", "tanh"], [1, 2]),
         ValueError, "sum to 3"),
        (lambda: functional.mixed(X, ["relu", "tanh"], [4]),
         ValueError, "one size per activation"),
        (lambda: functional.mixed(X, ["relu", "tanh"], [4, 0]),
         ValueError, "positive integer"),
        (lambda: functional.mixed(X, "relu"), TypeError, "sequence"),
        (lambda: functional.mixed(X, []), ValueError, "at least one"),
        (lambda: functional.mixed(X, ["relu", "nope"]), ValueError, "Unknown"),
        (lambda: functional.mixed(X, ["relu", lambda x: x.sum()]),
         ValueError, "elementwise"),
    ],
)
def test_functional_refuses_bad_arguments(call, error, match):
  with pytest.raises(error, match=match):
    call()


# ------------------------------------------------------- one adapter, two APIs


class _Api:
  """Builds, calls and trains a layer the same way in NNX and in Linen."""

  def __init__(self, name: str):
    self.name = name
    self.layers = LAYERS[name]

  def call(self, layer, x, key=None, **call_kwargs):
    """``(output, params)`` of a fresh ``layer`` on ``x``."""
    if self.name == "nnx":
      rngs = {} if key is None else {"rngs": key}
      return layer(x, **rngs, **call_kwargs), nnx.state(layer, nnx.Param)
    variables = layer.init(jax.random.key(0), x, **call_kwargs)
    rngs = None if key is None else {"dropout": key}
    return layer.apply(variables, x, rngs=rngs, **call_kwargs), variables


def _slope(params) -> np.ndarray:
  """The ``negative_slope`` leaf, whichever API made ``params``."""
  (slope,) = [
      leaf
      for path, leaf in jax.tree_util.tree_leaves_with_path(params)
      if "negative_slope" in jax.tree_util.keystr(path)
  ]
  return np.asarray(slope)


@pytest.fixture(params=APIS)
def api(request) -> _Api:
  return _Api(request.param)


def test_activation_module_wraps_a_spec_or_a_callable(api):
  layer = api.layers.Activation("necro_relu(negative_slope=0.05)")
  y, _ = api.call(layer, X)
  np.testing.assert_array_equal(y, jnp.maximum(X, 0.0))
  grad = jax.grad(lambda x: api.call(layer, x)[0].sum())(X)
  np.testing.assert_array_equal(grad, jnp.where(X >= 0, 1.0, 0.05))
  y, _ = api.call(api.layers.Activation(jnp.tanh), X)
  np.testing.assert_array_equal(y, jnp.tanh(X))


@pytest.mark.parametrize("num_features", [None, 4])
def test_prelu_module(api, num_features):
  layer = api.layers.PReLU(negative_slope_init=0.2, num_features=num_features)
  y, params = api.call(layer, X)
  slope = _slope(params)
  assert slope.shape == (() if num_features is None else (4,))
  assert slope.dtype == np.float32
  np.testing.assert_array_equal(slope, np.full(slope.shape, 0.2, np.float32))
  np.testing.assert_allclose(y, jnp.where(X >= 0, X, 0.2 * X))
  # bfloat16 activations with a float32 slope stay bfloat16; param_dtype holds.
  y, _ = api.call(api.layers.PReLU(num_features=num_features), X.astype(jnp.bfloat16))
  assert y.dtype == jnp.bfloat16 and y.shape == X.shape
  _, params = api.call(
      api.layers.PReLU(num_features=num_features, param_dtype=jnp.bfloat16), X
  )
  assert _slope(params).dtype == jnp.bfloat16


def test_rrelu_module_evaluation_is_the_mean_slope(api):
  lower, upper = 0.1, 0.3
  reference = _mean_slope_leaky_relu(X, lower, upper)
  layer = api.layers.RReLU(lower, upper, deterministic=True)
  y, _ = api.call(layer, X)
  np.testing.assert_array_equal(y, reference)
  assert y.dtype == X.dtype
  y, _ = api.call(api.layers.RReLU(lower, upper), X, deterministic=True)
  np.testing.assert_array_equal(y, reference)


def _training_slopes(y, x):
  return np.asarray(y)[np.asarray(x) < 0] / np.asarray(x)[np.asarray(x) < 0]


def test_rrelu_nnx_train_and_eval_switch_random_slopes():
  x = -jnp.linspace(1.0, 2.0, 64)
  layer = nnx_layers.RReLU(0.1, 0.3, rngs=nnx.Rngs(dropout=0))
  first, second = layer(x), layer(x)
  for y in (first, second):
    slopes = _training_slopes(y, x)
    assert np.all((slopes >= 0.1 - 1e-6) & (slopes <= 0.3 + 1e-6))
  assert not np.array_equal(first, second)  # the stream moves on between calls
  model = nnx.Sequential(layer)
  model.eval()
  np.testing.assert_array_equal(model(x), 0.2 * x)
  model.train()
  assert not np.array_equal(model(x), 0.2 * x)
  np.testing.assert_array_equal(nnx.view(model, deterministic=True)(x), 0.2 * x)
  # Keys given to the call replace the layer's own stream.
  keyless = nnx_layers.RReLU(0.1, 0.3)
  np.testing.assert_array_equal(
      keyless(x, rngs=jax.random.key(3)),
      functional.rrelu(x, jax.random.key(3), 0.1, 0.3),
  )
  slopes = _training_slopes(keyless(x, rngs=nnx.Rngs(dropout=3)), x)
  assert np.all((slopes >= 0.1 - 1e-6) & (slopes <= 0.3 + 1e-6))
  np.testing.assert_array_equal(keyless(x, deterministic=True), 0.2 * x)


def test_rrelu_linen_draws_from_the_dropout_stream():
  x = -jnp.linspace(1.0, 2.0, 64)
  layer = linen_layers.RReLU(0.1, 0.3, deterministic=False)
  draw = lambda key: layer.apply({}, x, rngs={"dropout": key})
  slopes = _training_slopes(draw(jax.random.key(0)), x)
  assert np.all((slopes >= 0.1 - 1e-6) & (slopes <= 0.3 + 1e-6))
  np.testing.assert_array_equal(draw(jax.random.key(0)), draw(jax.random.key(0)))
  assert not np.array_equal(draw(jax.random.key(0)), draw(jax.random.key(1)))
  other = linen_layers.RReLU(0.1, 0.3, deterministic=False, rng_collection="noise")
  y = other.apply({}, x, rngs={"noise": jax.random.key(0)})
  np.testing.assert_array_equal(y, draw(jax.random.key(0)))


@pytest.mark.parametrize("num_pieces", [1, 2, 4])
def test_maxout_module(api, key, num_pieces):
  x = jax.random.normal(key, (3, 8))
  y, _ = api.call(api.layers.Maxout(num_pieces), x)
  assert y.shape == (3, 8 // num_pieces) and y.dtype == x.dtype
  reference = np.asarray(x).reshape(3, 8 // num_pieces, num_pieces).max(axis=-1)
  np.testing.assert_array_equal(y, reference)


def test_mixed_activation_module(api, key):
  x = jax.random.normal(key, (3, 6))
  layer = api.layers.MixedActivation(["relu", "tanh", "abs"], group_sizes=[3, 2, 1])
  y, _ = api.call(layer, x)
  assert y.shape == x.shape and y.dtype == x.dtype
  np.testing.assert_allclose(y[:, :3], jnp.maximum(x[:, :3], 0.0))
  np.testing.assert_allclose(y[:, 3:5], jnp.tanh(x[:, 3:5]), rtol=1e-6)
  np.testing.assert_allclose(y[:, 5:], jnp.abs(x[:, 5:]))
  y, _ = api.call(api.layers.MixedActivation(["relu", jnp.tanh]), x)
  np.testing.assert_allclose(y[:, 3:], jnp.tanh(x[:, 3:]), rtol=1e-6)
  hash(layer)  # hashable, as jit's static arguments need


# --------------------------------------------- plain functions need no module


def _dead_hidden_layer_kernel_gradient(api: str, activation: Callable) -> np.ndarray:
  """Gradient reaching the first kernel when every hidden unit is below zero."""
  x = jnp.ones((4, 2))
  if api == "nnx":
    model = nnx.Sequential(
        nnx.Linear(2, 3, bias_init=nnx.initializers.constant(-10.0), rngs=nnx.Rngs(0)),
        activation,
        nnx.Linear(3, 1, rngs=nnx.Rngs(1)),
    )
    grads = nnx.grad(lambda model: model(x).sum())(model)
    return np.asarray(grads.layers[0].kernel[...])
  model = nn.Sequential(
      [nn.Dense(3, bias_init=nn.initializers.constant(-10.0)), activation, nn.Dense(1)]
  )
  params = model.init(jax.random.key(0), x)
  grads = jax.grad(lambda params: model.apply(params, x).sum())(params)
  return np.asarray(grads["params"]["layers_0"]["kernel"])


@pytest.mark.parametrize("api_name", APIS)
def test_plain_functions_drop_into_sequential_models(api_name):
  # A bias of -10 kills every hidden unit: ReLU passes no gradient back, while
  # NecroReLU, dropped in as a plain function, still does.
  assert np.all(_dead_hidden_layer_kernel_gradient(api_name, jax.nn.relu) == 0)
  necro = _dead_hidden_layer_kernel_gradient(api_name, activations.necro_relu)
  assert np.all(necro != 0)


def test_plain_functions_drop_into_a_linen_activation_field():
  class Block(nn.Module):
    activation_fn: Callable[..., jax.Array] = jax.nn.relu

    @nn.compact
    def __call__(self, x):
      return self.activation_fn(nn.Dense(3)(x))

  x = jnp.array([[-1.0, 2.0]])
  block = Block(activation_fn=activations.necro_relu)
  variables = block.init(jax.random.key(0), x)
  y = block.apply(variables, x)
  preactivation = Block(activation_fn=lambda h: h).apply(variables, x)
  np.testing.assert_array_equal(y, jnp.maximum(preactivation, 0.0))


# ------------------------------------------------------------------- training

# name: (layer factory taking `layers` and `deterministic`, hidden width out).
# The hidden layer is 8 wide; Maxout(2) halves it.
TRAINING_CASES: dict[str, tuple[Callable[[Any, bool], Any], int]] = {
    "activation": (lambda layers, det: layers.Activation("necro_relu"), 8),
    "prelu": (lambda layers, det: layers.PReLU(negative_slope_init=0.25), 8),
    "prelu_per_channel": (
        lambda layers, det: layers.PReLU(negative_slope_init=0.25, num_features=8), 8
    ),
    "rrelu": (None, 8),  # built per API below: it needs a random stream
    "maxout": (lambda layers, det: layers.Maxout(2), 4),
    "mixed": (
        lambda layers, det: layers.MixedActivation(["necro_relu", "tanh"], [6, 2]),
        8,
    ),
}


def _regression_data() -> tuple[jax.Array, jax.Array]:
  rng = np.random.default_rng(0)
  x = rng.uniform(-2.0, 2.0, (128, 2)).astype(np.float32)
  y = (np.sin(2 * x[:, :1]) + np.abs(x[:, 1:])).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(y)


def _optimizer_update(update: Callable, *args):
  # optax's adam computes `1 - decay**count` with a Python float and an int32
  # step count, which strict dtype promotion refuses. Only the optimizer runs
  # under standard promotion; the model and the loss stay strict.
  with jax.numpy_dtype_promotion("standard"):
    return update(*args)


def _train_nnx(case: str, steps: int) -> tuple[float, float, Any, Any]:
  class MLP(nnx.Module):
    def __init__(self, activation, width_out, *, rngs: nnx.Rngs):
      self.hidden = nnx.Linear(2, 8, rngs=rngs)
      self.activation = activation
      self.output = nnx.Linear(width_out, 1, rngs=rngs)

    def __call__(self, x):
      return self.output(self.activation(self.hidden(x)))

  factory, width_out = TRAINING_CASES[case]
  if case == "rrelu":
    activation = nnx_layers.RReLU(rngs=nnx.Rngs(dropout=1))
  else:
    activation = factory(nnx_layers, False)
  model = MLP(activation, width_out, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(0.03), wrt=nnx.Param)
  x, y = _regression_data()

  def loss_fn(model):
    return jnp.mean((model(x) - y) ** 2)

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    _optimizer_update(optimizer.update, model, grads)
    return loss

  initial_params = nnx.state(model, nnx.Param)
  initial_params = jax.tree.map(np.asarray, initial_params)
  model.eval()
  initial = float(loss_fn(model))
  model.train()
  for _ in range(steps):
    step(model, optimizer)
  model.eval()
  return initial, float(loss_fn(model)), initial_params, nnx.state(model, nnx.Param)


def _train_linen(case: str, steps: int) -> tuple[float, float, Any, Any]:
  class MLP(nn.Module):
    activation: Any

    @nn.compact
    def __call__(self, x):
      # Dense infers its input width, so Maxout's narrower output needs nothing.
      return nn.Dense(1)(self.activation(nn.Dense(8)(x)))

  factory, _ = TRAINING_CASES[case]
  if case == "rrelu":
    factory = lambda layers, det: layers.RReLU(deterministic=det)
  train_model = MLP(factory(linen_layers, False))
  eval_model = MLP(factory(linen_layers, True))
  x, y = _regression_data()
  key = jax.random.key(0)
  params = train_model.init({"params": key, "dropout": key}, x)["params"]
  tx = optax.adam(0.03)
  state = tx.init(params)

  def loss_fn(params, model, key):
    prediction = model.apply({"params": params}, x, rngs={"dropout": key})
    return jnp.mean((prediction - y) ** 2)

  @jax.jit
  def step(params, state, key):
    loss, grads = jax.value_and_grad(loss_fn)(params, train_model, key)
    updates, state = _optimizer_update(tx.update, grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  initial_params = params
  initial = float(loss_fn(params, eval_model, key))
  for index in range(steps):
    params, state, _ = step(params, state, jax.random.fold_in(key, index))
  return initial, float(loss_fn(params, eval_model, key)), initial_params, params


@pytest.mark.parametrize("case", list(TRAINING_CASES))
def test_modules_train_in_a_small_mlp(api, case):
  train = _train_nnx if api.name == "nnx" else _train_linen
  initial, final, initial_params, params = train(case, steps=150)
  assert np.isfinite(final)
  assert final < 0.3 * initial, f"{api.name} {case}: loss {initial} -> {final}"
  if case.startswith("prelu"):
    # The gradient reaches the learned slope, so training moves it.
    moved = np.abs(_slope(params) - _slope(initial_params))
    assert moved.max() > 1e-3, f"{api.name} {case}: slope did not move"


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda layers: layers.Activation("necro_rleu"), ValueError, "necro_relu"),
        (lambda layers: layers.Activation(3), TypeError, "must be a string"),
        (lambda layers: layers.PReLU(num_features=0), ValueError,
         "num_features must be a pos"),
        (lambda layers: layers.PReLU(num_features=2.5), TypeError,
         "num_features must be a pos"),
        (lambda layers: layers.RReLU(0.5, 0.1), ValueError, "0 <= lower <= upper"),
        (lambda layers: layers.Maxout(0), ValueError, "num_pieces must be a pos"),
        (lambda layers: layers.MixedActivation("relu"), TypeError, "sequence"),
        (lambda layers: layers.MixedActivation(["relu", "nope"]),
         ValueError, "Unknown"),
        (lambda layers: layers.MixedActivation(["relu"], [1, 2]),
         ValueError, "one size per activation"),
    ],
)
def test_modules_refuse_bad_arguments_when_built(api, build, error, match):
  with pytest.raises(error, match=match):
    build(api.layers)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda layers: layers.PReLU(num_features=3), r"shape \(4,\)"),
        (lambda layers: layers.Maxout(3), "must divide"),
        (lambda layers: layers.MixedActivation(["relu", "tanh"], [1, 2]), "sum to 3"),
    ],
)
def test_modules_refuse_inputs_that_do_not_fit(api, build, match):
  with pytest.raises(ValueError, match=match):
    api.call(build(api.layers), X)


def test_rrelu_refuses_to_train_without_randomness():
  with pytest.raises(ValueError, match="has no rngs"):
    nnx_layers.RReLU()(X)
  with pytest.raises(TypeError, match="rngs must be"):
    nnx_layers.RReLU(rngs=0)
  with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
    linen_layers.RReLU(deterministic=False).apply({}, X)
  with pytest.raises(ValueError, match="deterministic"):
    linen_layers.RReLU().apply({}, X)


def test_prelu_is_built_as_flax_builds_its_prelu():
  """The same arguments build ours and Flax's, with the same values (D8)."""
  import flax.linen
  from flax import nnx

  import activations.linen
  import activations.nnx

  x = jnp.array([-2.0, 0.5, 3.0])
  for build in (
      lambda prelu: prelu(0.25),
      lambda prelu: prelu(negative_slope_init=0.25, param_dtype=jnp.bfloat16),
      lambda prelu: prelu(0.25, dtype=jnp.bfloat16),
  ):
    ours, theirs = build(activations.nnx.PReLU), build(nnx.PReLU)
    assert ours.negative_slope[...].dtype == theirs.negative_slope[...].dtype
    y, expected = ours(x), theirs(x)
    assert y.dtype == expected.dtype
    np.testing.assert_allclose(y.astype(jnp.float32), expected.astype(jnp.float32))
  for build in (
      lambda prelu: prelu(negative_slope_init=0.25),
      lambda prelu: prelu(jnp.bfloat16, 0.25),
  ):
    ours, theirs = build(activations.linen.PReLU), build(flax.linen.PReLU)
    variables = ours.init(jax.random.key(0), x)
    expected_variables = theirs.init(jax.random.key(0), x)
    assert jax.tree.map(lambda a: a.dtype, variables) == jax.tree.map(
        lambda a: a.dtype, expected_variables
    )
    np.testing.assert_allclose(
        ours.apply(variables, x), theirs.apply(expected_variables, x), rtol=1e-2
    )
