"""The run's optimizer: Optax chains, the multistep schedule, coupled L2, and their errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research import optimizers
from research.config import Config

PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.25])}
pytestmark = pytest.mark.standard_promotion  # optax's adam mixes dtypes, as users run it

GRADS = [{"w": jnp.array([0.3, -0.1, 0.2]), "b": jnp.array([1.0])},
         {"w": jnp.array([-0.2, 0.4, 0.1]), "b": jnp.array([-0.5])}]


def _trajectory(transform, use_jit):
  update = jax.jit(transform.update) if use_jit else transform.update
  params, state = PARAMS, transform.init(PARAMS)
  for grads in GRADS * 2:
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("name,reference", [
    ("sgd", lambda: optax.sgd(0.05)),
    ("momentum", lambda: optax.sgd(0.05, momentum=0.9)),
    ("nesterov", lambda: optax.sgd(0.05, momentum=0.9, nesterov=True)),
    ("adam", lambda: optax.adam(0.05)),
    ("adamw", lambda: optax.adamw(0.05, weight_decay=1e-2)),
])
def test_each_optimizer_follows_its_optax_reference(name, reference, use_jit):
  config = Config(optimizer=name, weight_decay=1e-2)
  ours = _trajectory(optimizers.make_optimizer(config, jnp.asarray(0.05)), use_jit)
  theirs = _trajectory(reference(), use_jit)
  for key in PARAMS:
    np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=1e-7)
    assert ours[key].dtype == jnp.float32


@pytest.mark.parametrize("use_jit", [False, True])
def test_l2_penalty_is_pytorchs_coupled_weight_decay(use_jit):
  config = Config(optimizer="momentum", l2_penalty=5e-4)
  ours = _trajectory(optimizers.make_optimizer(config, jnp.asarray(0.1)), use_jit)
  # PyTorch's SGD(weight_decay=5e-4, momentum=0.9): g + 5e-4 * p enters the momentum.
  params, velocity = dict(PARAMS), {k: jnp.zeros_like(v) for k, v in PARAMS.items()}
  for grads in GRADS * 2:
    for key in params:
      velocity[key] = 0.9 * velocity[key] + grads[key] + 5e-4 * params[key]
      params[key] = params[key] - 0.1 * velocity[key]
  for key in PARAMS:
    np.testing.assert_allclose(ours[key], params[key], rtol=1e-6)


def test_no_l2_penalty_leaves_the_chain_unchanged():
  config = Config(optimizer="sgd")
  without = optimizers.make_optimizer(config, jnp.asarray(0.1))
  assert len(without.init(PARAMS)) == 2  # the optimizer and the learning rate, nothing added
  with_penalty = optimizers.make_optimizer(dataclasses.replace(config, l2_penalty=1e-4),
                                           jnp.asarray(0.1))
  assert len(with_penalty.init(PARAMS)) == 3


def test_multistep_multiplies_at_each_milestone_and_merges_equal_ones():
  config = Config(schedule="multistep", steps=10, milestones=(0.3, 0.31, 0.8), decay_factor=0.5)
  rates = optimizers.schedule(config)
  # 0.3 and 0.31 of 10 steps both round to step 3: one boundary, decayed twice.
  assert [float(rates(step)) for step in (0, 2, 3, 7, 8, 9)] == [1, 1, 0.25, 0.25, 0.125, 0.125]


def test_schedules_peak_at_one():
  for name in optimizers.SCHEDULES:
    rates = optimizers.schedule(Config(schedule=name, steps=100))
    values = [1.0] if not callable(rates) else [float(rates(step)) for step in range(100)]
    assert max(values) == pytest.approx(1.0, abs=1e-6), name


@pytest.mark.parametrize("changes,message", [
    (dict(optimizer="nestrov"), "Did you mean 'nesterov'"),
    (dict(schedule="step"), "schedule='step' is not valid"),
    (dict(schedule="multistep", milestones=(0.5, 1.0)), "each in \\(0, 1\\)"),
    (dict(schedule="multistep", milestones=()), "milestones must be increasing"),
    (dict(decay_factor=0.0), "decay_factor must be in \\(0, 1\\]"),
    (dict(l2_penalty=-1e-4), "l2_penalty must be >= 0"),
    (dict(momentum=1.0), "momentum must be in \\[0, 1\\)"),
])
def test_bad_settings_name_the_field_and_what_is_valid(changes, message):
  with pytest.raises(ValueError, match=message):
    optimizers.check_settings(dataclasses.replace(Config(), **changes))
