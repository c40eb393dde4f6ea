"""The built-in deep architectures: their sizes, activation calls and BatchNorm modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from research import architectures, observe

# (parameters for 32x32x3 images and 10 classes at full width, activation calls)
EXPECTED = {
    ("resnet20", "batch"): (269_722, 19),
    ("resnet18", "batch"): (11_173_962, 17),
    ("vgg11", "none"): (9_225_610, 8),
    ("vgg11", "batch"): (9_228_362, 8),
    ("vgg16", "none"): (14_719_818, 13),
    ("vgg16", "batch"): (14_724_042, 13),
}


@pytest.mark.parametrize("name,norm", sorted(EXPECTED))
def test_full_width_parameter_counts_match_the_papers(name, norm):
  model = nnx.eval_shape(lambda: architectures.ARCHITECTURES[name](
      jax.nn.relu, input_shape=(32, 32, 3), num_outputs=10, rngs=nnx.Rngs(0), norm=norm))
  assert architectures.parameter_count(model) == EXPECTED[name, norm][0]


@pytest.mark.parametrize("name", sorted(architectures.ARCHITECTURES))
def test_each_architecture_calls_the_activation_once_per_relu(name):
  calls = []

  def counting_relu(x):
    calls.append(x.shape)
    return jax.nn.relu(x)

  # Shapes only (eval_shape): the calls happen while tracing, nothing is compiled.
  model = nnx.eval_shape(lambda: architectures.ARCHITECTURES[name](
      counting_relu, input_shape=(32, 32, 3), num_outputs=5, rngs=nnx.Rngs(0), width=4))
  logits = nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 32, 32, 3),
                                                                           jnp.float32))
  assert logits.shape == (2, 5) and logits.dtype == jnp.float32
  assert len(calls) == EXPECTED[(name, "batch" if name.startswith("resnet") else "none")][1]
  assert all(shape[0] == 2 and len(shape) == 4 for shape in calls)  # NHWC, channels last


@pytest.mark.parametrize("use_jit", [False, True])
def test_a_resnet_maps_images_to_finite_float32_logits(use_jit):
  model = architectures.resnet20(jax.nn.relu, input_shape=(8, 8, 3), num_outputs=3,
                                 rngs=nnx.Rngs(jax.random.key(0, impl="rbg")), width=4)
  forward = nnx.jit(lambda m, x: m(x)) if use_jit else (lambda m, x: m(x))
  logits = forward(model, jnp.ones((2, 8, 8, 3)))
  assert logits.shape == (2, 3) and logits.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(logits)))


def test_batchnorm_uses_batch_statistics_in_training_and_running_averages_in_evaluation():
  # An "rbg" key: XLA compiles threefry's initialisers slowly on a CPU, one per shape.
  model = architectures.resnet20(jax.nn.relu, input_shape=(8, 8, 3), num_outputs=3,
                                 rngs=nnx.Rngs(jax.random.key(0, impl="rbg")), width=4)
  images = jax.random.normal(jax.random.key(1), (4, 8, 8, 3)) * 3 + 2
  before = jax.tree.map(np.array, nnx.state(model, nnx.BatchStat))  # copies, not references
  model.train()
  training = model(images)
  after = jax.tree.map(np.array, nnx.state(model, nnx.BatchStat))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after)
  assert all(jax.tree.leaves(changed))  # every running average moved
  model.eval()
  evaluation = model(images)
  assert not np.allclose(training, evaluation)
  # Evaluation is deterministic and leaves the averages alone.
  np.testing.assert_array_equal(evaluation, model(images))
  jax.tree.map(np.testing.assert_array_equal, nnx.state(model, nnx.BatchStat), after)


def test_the_engine_counts_the_same_parameters_without_building_arrays():
  def build(activation, key):
    return architectures.resnet20(activation, input_shape=(8, 8, 3), num_outputs=3,
                                  rngs=nnx.Rngs(key), width=4)

  count = observe.parameter_count(build, jax.nn.relu)
  assert count == architectures.parameter_count(nnx.eval_shape(
      lambda: build(jax.nn.relu, jax.random.key(0))))
  assert count > 0


@pytest.mark.parametrize("bad,message", [
    (dict(input_shape=(32, 3)), "needs images of shape"),
    (dict(norm="layer"), "norm='layer' is not valid; choose from none, batch"),
    (dict(width=0), "width must be a positive integer"),
    (dict(convolution="fft"), "convolution='fft' is not valid; choose from auto, xla, patches"),
])
def test_bad_arguments_name_what_is_valid(bad, message):
  arguments = dict(input_shape=(8, 8, 3), num_outputs=3, rngs=nnx.Rngs(0)) | bad
  for factory in architectures.ARCHITECTURES.values():
    with pytest.raises(ValueError, match=message):
      factory(jax.nn.relu, **arguments)


@pytest.mark.parametrize("name", sorted(architectures.ARCHITECTURES))
def test_patches_and_xla_convolutions_give_the_same_logits(name):
  def logits(convolution):
    model = architectures.ARCHITECTURES[name](
        jax.nn.relu, input_shape=(8, 8, 3), num_outputs=3, width=4, convolution=convolution,
        rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    model.eval()
    return model(jax.random.normal(jax.random.key(1), (2, 8, 8, 3)))

  patches, xla = logits("patches"), logits("xla")
  assert patches.dtype == xla.dtype == jnp.float32
  np.testing.assert_allclose(patches, xla, rtol=1e-4, atol=1e-5)
