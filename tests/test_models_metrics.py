"""Models, initialisers, metrics and the grid expansion, on values."""

from __future__ import annotations

import functools

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


def test_the_model_uses_the_activation_it_is_given():
  x = -jnp.ones((5, 4))

  def input_gradient(slope):
    activation = functools.partial(activations.necro_relu, negative_slope=slope)
    model = models.MLP(4, 2, width=3, depth=2, activation=activation, rngs=nnx.Rngs(0))
    return model(x), jax.grad(lambda x: model(x).sum())(x)

  # Different slopes give different gradients; ReLU's forward is unchanged.
  (out_small, grad_small), (out_large, grad_large) = input_gradient(0.1), input_gradient(0.5)
  assert not np.allclose(grad_small, grad_large)
  np.testing.assert_array_equal(out_small, out_large)


def test_residual_mlp_records_the_activation_output_not_the_sum():
  # Regression: the residual model stored h + f(z) as the activation's output,
  # so sparsity counted the skip connection's values.
  plain = models.MLP(4, 2, width=4, depth=3, activation=activations.relu, rngs=nnx.Rngs(0))
  skip = models.MLP(4, 2, width=4, depth=3, activation=activations.relu, residual=True, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (16, 4))
  forward = skip.forward(x)
  for pre, out in zip(forward.preactivations, forward.activations):
    np.testing.assert_array_equal(out, jnp.maximum(pre, 0.0))  # exactly f(z)
  h0 = plain.forward(x).activations[0]
  np.testing.assert_allclose(forward.preactivations[1], skip.hidden[1](h0), rtol=1e-6)
  h1 = h0 + forward.activations[1]  # the next layer sees the sum
  np.testing.assert_allclose(forward.preactivations[2], skip.hidden[2](h1), rtol=1e-6)


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


def _counts(activation, pre):
  return metrics.unit_counts(activation, [pre], [activation(pre)], jnp.ones(pre.shape[0]))


def test_inactive_is_the_forward_view_and_dead_the_backward_view():
  pre = jnp.array([[-1.0, 0.5, 0.0, -2.0], [-3.0, -0.5, 0.0, 1.0]])
  before = (jnp.array([False, True, False, True]),)
  relu, _ = metrics.activation_metrics(_counts(activations.relu, pre), before)
  necro, ever = metrics.activation_metrics(_counts(activations.necro_relu, pre), before)
  leaky, _ = metrics.activation_metrics(_counts(activations.leaky_relu, pre), before)
  # Units 0 and 2 never have z > 0: inactive for all three.
  for values in (relu, necro, leaky):
    assert float(values["inactive_fraction"][0]) == 0.5
    assert float(values["revived_fraction"][0]) == 0.5  # units 1 and 3 came back
  # Only ReLU's inactive units get no gradient; NecroReLU's and LeakyReLU's learn.
  assert float(relu["dead_fraction"][0]) == 0.5
  assert float(necro["dead_fraction"][0]) == 0.0 and float(leaky["dead_fraction"][0]) == 0.0
  assert float(relu["sparsity"][0]) == 0.75 and float(leaky["sparsity"][0]) == 0.25
  np.testing.assert_array_equal(ever[0], [True, True, True, True])


def test_counts_merge_over_batches_and_ignore_padding():
  pre = jnp.array([[-1.0, 2.0], [-1.0, -2.0], [5.0, 5.0]])
  whole = _counts(activations.relu, pre[:2])
  # The same two examples in two batches, the second padded with a positive row.
  first = _counts(activations.relu, pre[:1])
  padded = metrics.unit_counts(activations.relu, [pre[1:]], [jnp.maximum(pre[1:], 0)],
                               jnp.array([1.0, 0.0]))
  merged = metrics.merge_counts(first, padded)
  for key in whole:
    np.testing.assert_array_equal(merged[key][0], whole[key][0])
  np.testing.assert_array_equal(merged["active"][0], [False, True])


def test_units_of_a_convolution_are_channels():
  pre = jnp.stack([-jnp.ones((2, 5)), jnp.ones((2, 5))], axis=-1)  # (batch, length, 2 channels)
  values, _ = metrics.activation_metrics(_counts(activations.relu, pre), (jnp.zeros(2, bool),))
  assert float(values["inactive_fraction"][0]) == 0.5 and float(values["sparsity"][0]) == 0.5


def test_every_metric_is_described_once():
  for name, metric in metrics.METRICS.items():
    assert metric.label and metric.description, name
    if metric.percent:
      assert metric.higher_is_better in (True, None), name
  assert metrics.describe("test_loss").higher_is_better is False
  assert metrics.describe("gradient_norm").percent is False


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
        ({"model": "transformer"}, "not a built-in model \\(mlp, cnn1d, cnn2d, resnet20"),
        ({"init": "he"}, "Choose from"),
        ({"dataset": "mnist1e"}, "Did you mean 'mnist1d'"),
        ({"activations": ("necro_rleu",)}, "Did you mean 'necro_relu'"),
        ({"activations": ("necro_relu(slope=0.1)",)}, "no parameter 'slope'"),
        ({"activations": ("gelu(approximate=[True, False])",)}, "only numeric hyperparameters"),
        ({"activations": ("relu", "relu")}, "same runs"),
        ({"activations": ()}, "at least one"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"learning_rates": (0.1, -1.0)}, "positive finite numbers"),
        ({"learning_rates": (float("inf"),)}, "positive finite numbers up to 1e\\+06"),
        ({"bias_init": float("nan")}, "bias_init must be a finite number"),
        ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
        ({"steps": 3_000_000_000}, "steps must be at most 2,147,483,647"),
        ({"data_seed": -1}, "data_seed must be an integer in"),
        ({"divergence_factor": float("inf")}, "divergence_factor must be a finite number above 1"),
        ({"divergence_factor": 0.5}, "above 1"),
        ({"residual": True, "model": "cnn1d"}, "only available for model='mlp'"),
    ],
)
def test_bad_configs_fail_with_the_valid_choices(changes, message):
  with pytest.raises(ValueError, match=message):
    config = Config(**changes)
    validate(config)
    grid.expand(config)


def _ids(config: Config) -> dict[tuple, str]:
  return {(r.activation, r.seed, r.learning_rate): r.run_id for g in grid.expand(config) for r in g.runs}


@pytest.mark.parametrize("field,value", [
    ("dataset", "digits"), ("model", "cnn1d"), ("width", 99), ("depth", 3), ("residual", True),
    ("optimizer", "sgd"), ("schedule", "cosine"), ("momentum", 0.8), ("weight_decay", 0.1),
    ("steps", 100), ("batch_size", 32), ("eval_every", 100), ("init", "he_normal"),
    ("bias_init", 0.1), ("divergence_factor", 5.0), ("data_seed", 1), ("batching", "vmap"),
])
def test_a_run_id_changes_with_every_setting_that_changes_its_numbers(field, value):
  # Regression: ids were activation|seed|rate only, so with config.json deleted
  # a rerun under another config adopted the old runs as its own.
  base = Config(seeds=2)
  changed = Config(**{**base.__dict__, field: value})
  before, after = _ids(base), _ids(changed)
  assert before.keys() == after.keys()
  assert not set(before.values()) & set(after.values())


def test_a_run_id_does_not_depend_on_the_rest_of_the_grid():
  small = _ids(Config(activations=("relu",), seeds=3))
  large = _ids(Config(activations=("necro_relu", "relu"), seeds=5, learning_rates=(0.1, 0.01)))
  assert all(large[key] == run_id for key, run_id in small.items())
  # The defaults of a hyperparameter are part of the settings: spelled or not, same run.
  spelled = _ids(Config(activations=("necro_relu(negative_slope=0.1)",), seeds=1))
  implicit = _ids(Config(activations=("necro_relu",), seeds=1))
  assert [i.rsplit("|", 1)[1] for i in spelled.values()] == [
      i.rsplit("|", 1)[1] for i in implicit.values()]


def test_split_top_level_keeps_lists_inside_specs():
  assert split_top_level("a(x=[1,2]),b , c(y=3)") == ("a(x=[1,2])", "b", "c(y=3)")


@pytest.mark.parametrize("wrap", [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")])
@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e-12, 1.0, 1e12, 1e25])
def test_norms_are_right_where_squares_underflow_or_overflow(wrap, scale):
  # Regression: sqrt(sum(g**2)) read 0 for a gradient whose entries were all
  # below 1e-19, which made a vanishing gradient look like no gradient at all.
  values = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
  x = jnp.asarray(values * np.float32(scale))
  norm = wrap(metrics.frobenius_norm)(x)
  assert norm.dtype == jnp.float32
  expected = np.linalg.norm(np.asarray(x, np.float64))
  np.testing.assert_allclose(float(norm), expected, rtol=1e-6)
  if 1e-15 < scale < 1e18:  # the plain formula where the squares are in range
    assert float(norm) == float(jnp.linalg.norm(x.reshape(-1)))


def test_the_norm_of_zeros_is_zero():
  assert float(metrics.frobenius_norm(jnp.zeros((3, 2)))) == 0.0
