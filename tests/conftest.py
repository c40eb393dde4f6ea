"""Test configuration, after equinox's: strict dtypes, no silent rank promotion."""

import csv
import pathlib

import jax
import pytest

# Run each check eagerly and under jit: custom gradients must hold in both.
WRAPS = [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")]


def pytest_configure(config):
  config.addinivalue_line(
      "markers",
      "standard_promotion: run with JAX's standard dtype promotion (for code"
      " that calls optax, whose adam mixes Python floats and int32 counts).",
  )
  config.addinivalue_line(
      "markers",
      "slow: an end-to-end test of several seconds (subprocesses); deselect with"
      " -m 'not slow' for a quick run.",
  )


@pytest.fixture(autouse=True)
def strict_promotion(request):
  """Mixed-dtype arithmetic and implicit rank broadcasting raise.

  A custom gradient that silently changes dtype or shape then fails loudly.
  """
  if request.node.get_closest_marker("standard_promotion"):
    yield
    return
  with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
    yield


@pytest.fixture
def key() -> jax.Array:
  return jax.random.key(0)


def rows_by_run(out: pathlib.Path) -> dict[str, dict[str, list[dict[str, str]]]]:
  """A results folder's runs.csv, history.csv and layers.csv as their exact text, by run_id."""
  tables = {}
  for name in ("runs.csv", "history.csv", "layers.csv"):
    with open(out / name, newline="") as file:
      rows = list(csv.DictReader(file))
    tables[name] = {}
    for row in rows:
      tables[name].setdefault(row["run_id"], []).append(row)
  return tables
