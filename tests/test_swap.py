"""activations.swap and activations.activation_stats: one jaxpr interpreter."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import activations
from conftest import WRAPS

X = jnp.array([-1.0, 2.0, -3.0, 0.5])
NECRO = {jax.nn.relu: activations.necro_relu}


def _everything(x):
  """relu inside jit, checkpoint, scan, cond and a custom_jvp rule."""
  y = jax.jit(lambda x: jax.nn.relu(x) * 2)(x)
  y = jax.checkpoint(lambda y: jax.nn.relu(y * jnp.arange(1.0, 5.0)))(y) + x
  y = jax.lax.scan(lambda c, r: (c, jax.nn.relu(r)), 0.0, y[None])[1][0] + x
  y = jax.lax.cond(y[0] > -10, jax.nn.relu, jnp.sin, y) + x
  return jnp.sum(y * x)


def _everything_direct(x):
  """The same function written with necro_relu."""
  relu = activations.necro_relu
  y = jax.jit(lambda x: relu(x) * 2)(x)
  y = jax.checkpoint(lambda y: relu(y * jnp.arange(1.0, 5.0)))(y) + x
  y = jax.lax.scan(lambda c, r: (c, relu(r)), 0.0, y[None])[1][0] + x
  y = jax.lax.cond(y[0] > -10, relu, jnp.sin, y) + x
  return jnp.sum(y * x)


@pytest.mark.parametrize("wrap", WRAPS)
def test_swap_reaches_into_every_higher_order_primitive(wrap):
  swapped = activations.swap(_everything, NECRO)
  np.testing.assert_allclose(wrap(swapped)(X), _everything_direct(X), rtol=1e-6)
  np.testing.assert_allclose(
      wrap(jax.grad(swapped))(X), jax.grad(_everything_direct)(X), rtol=1e-6
  )
  assert not np.allclose(jax.grad(_everything)(X), jax.grad(_everything_direct)(X))


def test_swap_composes_with_transforms_on_both_sides():
  swapped = activations.swap(lambda x: jax.vmap(jax.nn.relu)(x).sum(), {"relu": activations.necro_relu})
  rows = jnp.stack([X, -X])
  per_row = jax.jit(jax.vmap(jax.grad(swapped)))(rows)
  np.testing.assert_allclose(per_row, jnp.where(rows >= 0, 1.0, 0.1))


def test_swapped_program_equals_the_direct_one_after_jit():
  """No overhead after jit: the same optimised HLO as necro_relu written in."""
  swapped = jax.jit(jax.grad(activations.swap(_everything, NECRO)))
  direct = jax.jit(jax.grad(_everything_direct))

  def optimised(f):
    text = f.lower(X).compile().as_text()
    # Names and metadata differ; the operations must not.
    return sorted(
        line.split("=", 1)[1].split(", metadata")[0].split("(")[0].strip()
        for line in text.splitlines()
        if " = " in line and not line.lstrip().startswith(("ROOT", "//"))
    )

  assert optimised(swapped) == optimised(direct)


def test_swap_keeps_custom_rules_of_code_it_does_not_replace():
  @jax.custom_vjp
  def clipped(x):
    return x

  clipped.defvjp(lambda x: (x, None), lambda _, g: (jnp.clip(g, -1.0, 1.0),))

  def loss(x):
    return 5.0 * jnp.sum(clipped(jax.nn.relu(x)))

  swapped = activations.swap(loss, NECRO)
  np.testing.assert_allclose(jax.grad(swapped)(X), jnp.where(X >= 0, 1.0, 0.1))


def test_swap_rewrites_a_custom_jvp_rule_with_its_body():
  @jax.custom_jvp
  def tripled(x):
    return 3.0 * jax.nn.relu(x)

  tripled.defjvp(lambda p, t: (tripled(p[0]), 3.0 * jax.nn.relu(p[0]) * t[0]))
  swapped = activations.swap(tripled, {"relu": jnp.abs})
  np.testing.assert_allclose(swapped(X), 3.0 * jnp.abs(X))
  np.testing.assert_allclose(jax.grad(lambda x: swapped(x).sum())(X), 3.0 * jnp.abs(X))


def test_swap_names_what_the_function_calls_when_asked_for_something_else():
  with pytest.raises(ValueError, match=r"never calls 'elu'; it calls 'relu', 'silu'"):
    activations.swap(lambda x: jax.nn.silu(jax.nn.relu(x)), {"elu": jnp.abs})(X)


def test_swap_refuses_replacements_that_change_shape_or_dtype():
  with pytest.raises(ValueError, match="keep its output's shape and dtype"):
    activations.swap(jax.nn.relu, {"relu": lambda x: x.sum()})(X)
  with pytest.raises(TypeError, match="non-empty mapping"):
    activations.swap(jax.nn.relu, {})


@pytest.mark.parametrize(
    "name", ["relu", "relu6", "leaky_relu", "elu", "celu", "selu", "silu", "softplus",
             "hard_tanh", "soft_sign", "log_sigmoid"]
)
def test_swap_finds_each_named_jax_activation(name):
  fn = getattr(jax.nn, name)
  swapped = activations.swap(lambda x: fn(x), {name: activations.identity})
  np.testing.assert_array_equal(swapped(X), X)


def test_library_activations_are_found_by_name():
  swapped = activations.swap(activations.necro_relu, {"necro_relu": activations.relu})
  np.testing.assert_array_equal(jax.grad(lambda x: swapped(x).sum())(X), X > 0)


class _Model(nnx.Module):
  def __init__(self, *, rngs: nnx.Rngs):
    self.linear = nnx.Linear(4, 8, rngs=rngs)
    self.norm = nnx.BatchNorm(8, rngs=rngs)
    self.out = nnx.Linear(8, 1, rngs=rngs)

  def __call__(self, x):
    return self.out(nnx.relu(self.norm(self.linear(x))))


@pytest.mark.standard_promotion
def test_swapped_nnx_module_trains_and_updates_batch_statistics():
  model = _Model(rngs=nnx.Rngs(0))
  swapped = activations.swap(model, {nnx.relu: activations.necro_relu})
  assert isinstance(swapped, activations.SwappedModule) and swapped.module is model
  optimizer = nnx.Optimizer(swapped, optax.sgd(0.1), wrt=nnx.Param)
  x = jax.random.normal(jax.random.key(1), (16, 4))

  @nnx.jit
  def step(model, optimizer, x):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  before = model.norm.mean[...]
  losses = [float(step(swapped, optimizer, x)) for _ in range(3)]
  assert losses[-1] < losses[0]
  assert not np.allclose(model.norm.mean[...], before)  # statistics updated
  # The gradient is NecroReLU's: compare with the model written with it.
  written = _Model(rngs=nnx.Rngs(0))
  written_call = lambda m, x: m.out(activations.necro_relu(m.norm(m.linear(x))))  # noqa: E731
  fresh = activations.swap(_Model(rngs=nnx.Rngs(0)), {nnx.relu: activations.necro_relu})
  g_swapped = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(fresh)
  g_written = nnx.grad(lambda m: jnp.mean(written_call(m, x) ** 2))(written)
  np.testing.assert_allclose(
      g_swapped["module"]["linear"]["kernel"][...],
      g_written["linear"]["kernel"][...], rtol=1e-5, atol=1e-7,
  )


# --- activation_stats ------------------------------------------------------


def test_activation_stats_records_each_call_in_order():
  x = jnp.array([[-1.0, 2.0, -3.0], [-2.0, 0.0, 4.0]])

  def fn(x):
    h = jax.nn.relu(x)
    return jax.jit(jax.nn.silu)(h - 1.0)

  relu, silu = activations.activation_stats(fn, x)
  assert (relu.name, relu.shape, silu.name) == ("relu", (2, 3), "silu")
  assert relu.sparsity == pytest.approx(4 / 6)
  assert relu.inactive_fraction == pytest.approx(1 / 3)  # column 0 only
  assert relu.input_mean == pytest.approx(float(x.mean()))
  assert relu.input_std == pytest.approx(float(x.std()), rel=1e-5)
  assert silu.sparsity == 0.0


def test_activation_stats_in_a_scan_is_one_record_over_iterations():
  rows = jnp.array([[-1.0, 2.0], [-3.0, -4.0]])
  fn = lambda rows: jax.lax.scan(lambda c, r: (c, jax.nn.relu(r)), 0.0, rows)[1]  # noqa: E731
  (stats,) = activations.activation_stats(fn, rows)
  assert stats.shape == (2,) and stats.sparsity == pytest.approx(3 / 4)
  assert stats.inactive_fraction == pytest.approx(1 / 2)


@pytest.mark.standard_promotion
def test_activation_stats_of_a_module_leaves_its_state_alone():
  model = _Model(rngs=nnx.Rngs(0))
  before = model.norm.mean[...]
  (stats,) = activations.activation_stats(model, jnp.ones((4, 4)))
  assert stats.name == "relu" and stats.shape == (4, 8)
  np.testing.assert_array_equal(model.norm.mean[...], before)


@pytest.mark.parametrize("transform", [jax.jit, jax.vmap, jax.grad], ids=["jit", "vmap", "grad"])
def test_activation_stats_under_a_transform_is_refused_in_one_line(transform):
  x = jnp.array([[-1.0, 2.0], [3.0, -4.0]])
  with pytest.raises(TypeError, match="cannot run inside jax.jit, vmap or grad: call it outside"):
    transform(lambda x: activations.activation_stats(jax.nn.relu, x)[0].sparsity)(x)
  (stats,) = activations.activation_stats(jax.jit(jax.nn.relu), x)  # a jitted fn is fine
  assert stats.sparsity == 0.5


def test_a_replacement_can_be_a_registry_spec():
  x = jnp.array([-1.0, 2.0])
  swapped = activations.swap(lambda x: jax.nn.relu(x).sum(), {"relu": "necro_relu(negative_slope=0.05)"})
  np.testing.assert_allclose(jax.grad(swapped)(x), [0.05, 1.0])
  with pytest.raises(ValueError, match="Did you mean 'necro_relu'"):
    activations.swap(jax.nn.relu, {"relu": "necro_rleu"})


def test_an_inlined_activation_is_refused_with_the_fix_in_the_message():
  x = jnp.array([-1.0, 2.0])
  with pytest.raises(ValueError, match=r"call the catalogue's version \(activations.gelu\) or a jitted"):
    activations.swap(lambda x: jax.nn.gelu(x).sum(), {"gelu": "relu"})(x)
  for fixed in (jax.jit(jax.nn.gelu), activations.gelu):  # the fix the message names works
    assert activations.swap(lambda x, fixed=fixed: fixed(x).sum(), {"gelu": "relu"})(x) == 2.0
