"""Test configuration, after equinox's: strict dtypes, no silent rank promotion."""

import jax
import pytest

# Mixed-dtype arithmetic and implicit broadcasting across ranks raise, so a
# custom gradient that silently changes dtype or shape fails loudly here.
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
  return jax.random.key(0)


# Run each check eagerly and under jit: custom gradients must hold in both.
WRAPS = [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")]
