"""Models, initialisers, metrics and the grid expansion, on values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import activations
from research import grid, metrics, models
from research.config import Config, split_top_level, validate


def _param_count(model) -> int:
  return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize(
    "name,input_shape,width,depth,expected",
    [
        ("mlp", (40,), 100, 2, 15_210),  # MNIST-1D reference MLP 40-100-100-10
        ("cnn1d", (40,), 25, 3, 5_210),  # MNIST-1D reference CNN: 150 + 1900 + 1900 + 1260
        ("cnn2d", (8, 8, 1), 16, 2, 3_130),  # 160 + 2320 + 650
    ],
)
def test_parameter_counts_are_pinned(name, input_shape, width, depth, expected):
  model = models.build(
      name, input_shape, 10, width=width, depth=depth, activation=activations.relu,
      rngs=nnx.Rngs(0),
  )
  assert _param_count(model) == expected
  forward = model.forward(jnp.ones((3, *input_shape)))
  assert forward.outputs.shape == (3, 10) and forward.outputs.dtype == jnp.float32
  assert len(forward.preactivations) == depth
  assert forward.preactivations[-1].shape[-1] == width


def test_activation_hyperparameters_reach_every_layer():
  model = models.MLP(4, 2, width=3, depth=2, activation=activations.necro_relu, rngs=nnx.Rngs(0))
  x = -jnp.ones((5, 4))

  def input_gradient(slope):
    return jax.grad(lambda x: model(x, negative_slope=slope).sum())(x)

  # Different slopes give different gradients; ReLU's forward is unchanged.
  assert not np.allclose(input_gradient(0.1), input_gradient(0.5))
  np.testing.assert_array_equal(model(x, negative_slope=0.1), model(x, negative_slope=0.5))


def test_residual_mlp_adds_skip_connections():
  plain = models.MLP(4, 2, width=4, depth=3, activation=activations.identity, rngs=nnx.Rngs(0))
  skip = models.MLP(4, 2, width=4, depth=3, activation=activations.identity, residual=True, rngs=nnx.Rngs(0))
  x = jnp.ones((1, 4))
  h = plain.forward(x)
  expected = h.activations[0] + skip.hidden[1](h.activations[0])
  np.testing.assert_allclose(skip.forward(x).activations[1], expected, rtol=1e-6)


@pytest.mark.parametrize("init", models.INITIALIZERS)
def test_initialisers_have_their_documented_scale(init):
  model = models.MLP(400, 10, width=400, depth=1, activation=activations.relu, init=init, bias_init=0.1, rngs=nnx.Rngs(0))
  kernel = np.asarray(model.hidden[0].kernel[...])
  expected_std = {
      "lecun_normal": np.sqrt(1 / 400),
      "he_normal": np.sqrt(2 / 400),
      "he_uniform": np.sqrt(2 / 400),
      "xavier_normal": np.sqrt(2 / 800),
      "xavier_uniform": np.sqrt(2 / 800),
      "normal_002": 0.02,
      "rai": 0.6007 / np.sqrt(400),
  }[init]
  if init == "rai":  # a robust scale: each unit also has one Beta(2, 1) entry
    spread = 1.4826 * np.median(np.abs(kernel - np.median(kernel)))
  else:
    spread = kernel.std()
  assert spread == pytest.approx(expected_std, rel=0.05)
  bias = np.asarray(model.hidden[0].bias[...])
  if init == "rai":
    assert (bias != np.float32(0.1)).all()  # RAI draws biases with the weights
  else:
    np.testing.assert_array_equal(bias, np.float32(0.1))


def test_rai_gives_each_unit_one_positive_beta_entry():
  kernel, bias = models.rai(jax.random.key(0), 3, 2000)
  joint = np.concatenate([np.asarray(kernel), np.asarray(bias)[None]], axis=0)
  # Beta(2, 1) has mean 2/3; the rest are N(0, 0.6007^2 / 3) with mean 0.
  largest = joint.max(axis=0)
  assert (largest > 0).all()
  assert joint.mean() == pytest.approx((2 / 3) / 4, abs=0.02)


def test_dead_units_and_revival():
  pre = jnp.array([[-1.0, 0.5, 0.0, -2.0], [-3.0, -0.5, 0.0, 1.0]])
  np.testing.assert_array_equal(metrics.dead_units(pre), [True, False, True, False])
  before = jnp.array([False, True, False, True])
  values, ever = metrics.hidden_layer_metrics([pre], [jnp.maximum(pre, 0)], [before])
  assert float(values["dead/layer_0"]) == 0.5
  assert float(values["revived/layer_0"]) == 0.5  # units 1 and 3: dead before, alive now
  assert float(values["sparsity/layer_0"]) == 0.75
  np.testing.assert_array_equal(ever[0], [True, True, True, True])


def test_dead_units_of_a_convolution_are_channels():
  pre = jnp.stack([-jnp.ones((2, 5)), jnp.ones((2, 5))], axis=-1)  # (batch, length, 2 channels)
  np.testing.assert_array_equal(metrics.dead_units(pre), [True, False])


def test_loss_and_accuracy():
  logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
  labels = jnp.array([0, 1, 1])
  assert float(metrics.accuracy(logits, labels, "classification")) == pytest.approx(2 / 3)
  expected = np.mean([np.log1p(np.exp(-2)), np.log1p(np.exp(-2)), np.log1p(np.exp(2))])
  assert float(metrics.loss(logits, labels, "classification")) == pytest.approx(expected, rel=1e-6)
  assert float(metrics.loss(jnp.array([[1.0]]), jnp.array([[3.0]]), "regression")) == 4.0
  assert np.isnan(metrics.accuracy(jnp.array([[1.0]]), jnp.array([[3.0]]), "regression"))


def test_grid_expands_sweeps_and_keeps_static_arguments():
  config = Config(
      activations=("relu", "necro_relu(negative_slope=[0.05, 0.2])", "gelu(approximate=False)"),
      seeds=2,
      learning_rates=(0.01, 0.001),
  )
  relu, necro, gelu = grid.expand(config)
  assert len(relu.runs) == 4 and len(necro.runs) == 8 and len(gelu.runs) == 4
  assert necro.swept == ("negative_slope",)
  assert {r.activation for r in necro.runs} == {
      "necro_relu(negative_slope=0.05)", "necro_relu(negative_slope=0.2)"
  }
  assert gelu.static == (("approximate", False),)
  np.testing.assert_allclose(gelu.activation()(jnp.array([1.0])), jax.nn.gelu(1.0, approximate=False))
  assert len({r.run_id for g in (relu, necro, gelu) for r in g.runs}) == 16


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"optimizer": "adma"}, "Did you mean 'adam'"),
        ({"model": "transformer"}, "Choose from: mlp, cnn1d, cnn2d"),
        ({"init": "he"}, "Choose from"),
        ({"dataset": "mnist1e"}, "Did you mean 'mnist1d'"),
        ({"activations": ("necro_rleu",)}, "Did you mean 'necro_relu'"),
        ({"activations": ("necro_relu(slope=0.1)",)}, "no parameter 'slope'"),
        ({"activations": ("gelu(approximate=[True, False])",)}, "only numeric hyperparameters"),
        ({"activations": ("relu", "relu")}, "same runs"),
        ({"activations": ()}, "at least one"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"learning_rates": (0.1, -1.0)}, "positive numbers"),
        ({"divergence_factor": 0.5}, "above 1"),
        ({"residual": True, "model": "cnn1d"}, "only available for model='mlp'"),
    ],
)
def test_bad_configs_fail_with_the_valid_choices(changes, message):
  with pytest.raises(ValueError, match=message):
    validate(Config(**changes))


def test_split_top_level_keeps_lists_inside_specs():
  assert split_top_level("a(x=[1,2]),b , c(y=3)") == ("a(x=[1,2])", "b", "c(y=3)")
