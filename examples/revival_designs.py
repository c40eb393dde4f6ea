"""The ReLU-forward backward passes tried against ``revival_relu``, as your own surrogates.

Each keeps ReLU's forward values and changes only what flows back below zero.
They are the designs the ``dying`` study's mechanism suggests (a backward that
can only help a unit come back, or that acts only on units dead on the whole
batch), kept here so that the comparison in docs/studies.md ("Designs tried
for a surrogate that neither dies nor runs away") can be rerun:

    cd examples
    python -m research dying --datasets mnist1d,mnist5k --optimizers adam --rates 0.03,0.1 \\
        --base.activations "relu,leaky_relu(negative_slope=0.01),necro_relu(negative_slope=0.01),revival_relu,\\
    revival_designs:upward_relu(slope=[0.01,0.1,0.3]),revival_designs:dead_unit_necro(slope=[0.01,0.1]),\\
    revival_designs:revival_by_mean(slope=0.3)"

None of them made the catalogue: see that section for why.
"""

import jax
import jax.numpy as jnp


def _dead_units(active):
  """True for each unit (last axis) inactive at every other index: on the whole batch."""
  return jnp.logical_not(jnp.any(active, axis=tuple(range(active.ndim - 1)), keepdims=True))


def _relu_forward(below_zero):
  """ReLU forward; backward: the cotangent where ``x > 0``, ``below_zero(active, cotangent, slope)`` elsewhere."""

  @jax.custom_vjp
  def function(x, slope):
    return jax.nn.relu(x)

  def forward(x, slope):
    return jax.nn.relu(x), (x > 0, slope)

  def backward(residual, cotangent):
    active, slope = residual
    return (jnp.where(active, cotangent, below_zero(active, cotangent, slope)),
            jnp.zeros_like(slope))

  function.defvjp(forward, backward)
  return function


def _batch_mean(cotangent):
  return jnp.mean(cotangent, axis=tuple(range(cotangent.ndim - 1)), keepdims=True)


_upward = _relu_forward(lambda active, cotangent, slope: slope * jnp.minimum(cotangent, 0))
_dead_unit_necro = _relu_forward(
    lambda active, cotangent, slope: jnp.where(_dead_units(active), slope * cotangent, 0))
_revival_by_mean = _relu_forward(lambda active, cotangent, slope: jnp.where(
    _dead_units(active), slope * jnp.minimum(_batch_mean(cotangent), 0), 0))


def upward_relu(x, slope=0.1):
  """Below zero, every element passes ``slope`` times the part of its cotangent that asks it up.

  Elementwise: a unit active on some examples is pushed up by the others too.
  """
  return _upward(x, slope)


def dead_unit_necro(x, slope=0.1):
  """NecroReLU's ``slope * cotangent`` (both signs), but only on units dead on the whole batch."""
  return _dead_unit_necro(x, slope)


def revival_by_mean(x, slope=0.3):
  """``revival_relu``, but a dead unit's every example gets the batch's mean upward cotangent.

  The same push for each example moves the unit's weights along the mean
  input, a gentler direction than each example's own.
  """
  return _revival_by_mean(x, slope)
