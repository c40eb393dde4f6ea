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
  """Dense, BatchNorm, ReLU, dense: ``activation`` is what the author wrote."""

  def __init__(self, activation=nnx.relu, *, rngs: nnx.Rngs):
    self.activation = activation
    self.linear = nnx.Linear(4, 8, rngs=rngs)
    self.norm = nnx.BatchNorm(8, rngs=rngs)
    self.out = nnx.Linear(8, 1, rngs=rngs)

  def __call__(self, x):
    return self.out(self.activation(self.norm(self.linear(x))))


class _MLP(nnx.Module):
  def __init__(self, activation=nnx.relu, *, rngs: nnx.Rngs):
    self.activation = activation
    self.hidden = nnx.Linear(4, 8, rngs=rngs)
    self.out = nnx.Linear(8, 2, rngs=rngs)

  def __call__(self, x):
    return self.out(self.activation(self.hidden(x)))


class _Scanned(nnx.Module):
  """Three layers made with nnx.vmap and applied with nnx.scan inside the model."""

  def __init__(self, activation=nnx.relu, *, rngs: nnx.Rngs):
    self.activation = activation

    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
      return nnx.Linear(4, 4, rngs=rngs)

    self.layers = make(rngs)

  def __call__(self, x):
    activation = self.activation

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def body(x, layer):
      return activation(layer(x))

    return body(x, self.layers)


def _models(model_class):
  """(original, swapped, written): written with NecroReLU, from the same initial parameters."""
  original = model_class(rngs=nnx.Rngs(0))
  written = model_class(activations.necro_relu, rngs=nnx.Rngs(0))
  return original, activations.swap(original, NECRO), written


def _assert_trees_close(actual, expected):
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6), actual, expected)


def _squared(model, x):
  return jnp.sum(model(x) ** 2)


# Each transform applied to a model, and what it must equal on the written model.
# (The written _Scanned fails under jax.jit/grad/vmap of a closure, a Flax
# limitation, so references are computed eagerly or with NNX transforms.)
_TRANSFORMS = {
    "jax.jit": (lambda m, x: jax.jit(lambda x: m(x))(x), "output"),
    "jax.jit-module-argument": (lambda m, x: jax.jit(lambda m, x: m(x))(m, x), "output"),
    "jax.grad": (lambda m, x: jax.grad(lambda x: _squared(m, x))(x), "input gradient"),
    "jax.vmap": (lambda m, x: jax.vmap(m)(x), "output"),
    "nnx.jit": (lambda m, x: nnx.jit(lambda m, x: m(x))(m, x), "output"),
    "nnx.grad": (lambda m, x: nnx.grad(_squared)(m, x), "parameter gradient"),
    "nnx.remat": (lambda m, x: nnx.grad(nnx.remat(_squared))(m, x), "parameter gradient"),
    "nnx.vmap": (lambda m, x: nnx.vmap(lambda m, x: m(x), in_axes=(None, 0))(m, x), "output"),
}


def _reference(kind, written, x):
  if kind == "output":
    return written(x)
  if kind == "input gradient":
    return nnx.grad(_squared, argnums=1)(written, x)
  return nnx.grad(_squared)(written, x)


@pytest.mark.parametrize("model_class", [_MLP, _Scanned], ids=["mlp", "scanned"])
@pytest.mark.parametrize("transform", list(_TRANSFORMS))
def test_a_swapped_module_works_under_every_transform_with_the_original_state_tree(
    model_class, transform
):
  original, swapped, written = _models(model_class)
  apply, kind = _TRANSFORMS[transform]
  x = jax.random.normal(jax.random.key(1), (6, 4))
  _assert_trees_close(apply(swapped, x), _reference(kind, written, x))
  assert jax.tree.structure(nnx.state(swapped)) == jax.tree.structure(nnx.state(original))


@pytest.mark.standard_promotion
def test_swapped_nnx_module_trains_like_the_written_one_and_updates_batch_statistics():
  model, swapped, written = _models(_Model)
  x = jax.random.normal(jax.random.key(1), (16, 4))

  @nnx.jit
  def step(model, optimizer, x):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
    optimizer.update(model, grads)
    return loss, grads

  before = model.norm.mean[...]
  relu_grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(_Model(rngs=nnx.Rngs(0)))
  optimizers = [nnx.Optimizer(m, optax.sgd(0.1), wrt=nnx.Param) for m in (swapped, written)]
  for _ in range(3):
    (loss, grads), (written_loss, written_grads) = (
        step(m, o, x) for m, o in zip((swapped, written), optimizers))
    np.testing.assert_allclose(loss, written_loss, rtol=1e-5)
    _assert_trees_close(grads, written_grads)
  _assert_trees_close(nnx.state(swapped), nnx.state(written))
  assert not np.allclose(model.norm.mean[...], before)  # the original's statistics updated
  _assert_trees_close(nnx.state(model), nnx.state(written))  # it shares the swapped's state
  with pytest.raises(AssertionError):  # NecroReLU's gradient, not ReLU's
    _assert_trees_close(relu_grads, nnx.grad(lambda m: jnp.mean(m(x) ** 2))(_models(_Model)[1]))


def test_a_swapped_module_splits_merges_and_loads_the_original_checkpoints():
  original, swapped, written = _models(_MLP)
  x = jax.random.normal(jax.random.key(1), (6, 4))
  merged = nnx.merge(*nnx.split(swapped))
  assert isinstance(merged, activations.SwappedModule) and isinstance(merged, _MLP)
  _assert_trees_close(merged(x), written(x))
  # A checkpoint of one loads into the other, both ways.
  other = _MLP(rngs=nnx.Rngs(7))
  nnx.update(other, nnx.state(swapped))
  _assert_trees_close(nnx.state(other), nnx.state(original))
  fresh = activations.swap(_MLP(rngs=nnx.Rngs(7)), NECRO)
  nnx.update(fresh, nnx.state(original))
  _assert_trees_close(fresh(x), written(x))
  with pytest.raises(TypeError, match="made by activations.swap"):
    activations.SwappedModule(original, NECRO)


class _Scaled(nnx.Module):
  def __init__(self, activation=nnx.relu, *, rngs: nnx.Rngs):
    self.activation = activation
    self.scale = nnx.Variable(3)  # a Python number: held fixed, not traced
    self.linear = nnx.Linear(4, 2, rngs=rngs)

  def __call__(self, x):
    return self.activation(self.linear(x)) * self.scale.get_value()


def test_a_swapped_module_writes_back_only_the_variables_its_call_changed():
  original, swapped, written = _models(_Scaled)
  x = jax.random.normal(jax.random.key(1), (6, 4))
  # Rewriting what the call only read would mutate Variables of the outer trace.
  _assert_trees_close(jax.jit(lambda x: swapped(x))(x), written(x))
  assert type(original.scale.get_value()) is int and original.scale.get_value() == 3


class _TwoLayers(nnx.Module):
  def __init__(self, first=nnx.relu, second=nnx.relu, *, rngs: nnx.Rngs):
    self.first, self.second = first, second
    self.hidden = nnx.Linear(4, 8, rngs=rngs)
    self.out = nnx.Linear(8, 1, rngs=rngs)

  def __call__(self, x):
    return self.out(self.second(self.hidden(self.first(x))))


def test_a_call_key_swaps_one_layer_only():
  x = jax.random.normal(jax.random.key(1), (6, 4))
  necro = activations.necro_relu
  second_only = activations.swap(_TwoLayers(rngs=nnx.Rngs(0)), {activations.Call("relu", 1): necro})
  written = _TwoLayers(nnx.relu, necro, rngs=nnx.Rngs(0))
  input_gradient = lambda m: nnx.grad(_squared, argnums=1)(m, x)  # noqa: E731
  _assert_trees_close(input_gradient(second_only), input_gradient(written))
  _assert_trees_close(nnx.grad(_squared)(second_only, x), nnx.grad(_squared)(written, x))
  both = _TwoLayers(necro, necro, rngs=nnx.Rngs(0))
  assert not np.allclose(input_gradient(second_only), input_gradient(both))
  # The same on a function; a call key wins over the activation's name.
  twice = lambda x: jax.nn.relu(jax.nn.relu(x) - 1.0)  # noqa: E731
  swapped = activations.swap(twice, {"relu": jnp.abs, activations.Call(jax.nn.relu, 1): jnp.negative})
  np.testing.assert_allclose(jax.jit(swapped)(X), 1.0 - jnp.abs(X))


def test_a_call_key_beyond_the_calls_or_not_an_index_is_refused():
  with pytest.raises(ValueError, match=r"calls 'relu' 1 time\(s\), so it has no call 1 \(calls count from 0\)"):
    activations.swap(jax.nn.relu, {activations.Call("relu", 1): jnp.abs})(X)
  with pytest.raises(ValueError, match=r"no call 3"):
    activations.swap(_TwoLayers(rngs=nnx.Rngs(0)), {activations.Call("relu", 3): jnp.abs})(X)
  with pytest.raises(ValueError, match=r"Call\(activation, index\) with an index from 0"):
    activations.swap(jax.nn.relu, {activations.Call("relu", -1): jnp.abs})


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
