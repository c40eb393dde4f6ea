"""Test configuration, after equinox's: strict dtypes, no silent rank promotion."""

import csv
import os
import pathlib
import shutil
import tempfile

import jax
import pytest

# Run each check eagerly and under jit: custom gradients must hold in both.
WRAPS = [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")]


_CACHE = "JAX_COMPILATION_CACHE_DIR"


def _share_compilations(config) -> None:
  """One empty on-disk compilation cache for this run, shared by every process it starts.

  Many tests compile the same programs (the engine builds new jitted functions
  for each experiment, and subprocesses and notebook kernels start cold);
  JAX's persistent cache keys a program by its HLO, so each is compiled once
  per run. The folder starts empty and is removed at the end: nothing is
  carried from one run to the next. The xdist workers, ``python -m research``
  subprocesses and notebook kernels inherit it through JAX's environment
  variables; a cache the caller set is kept.
  """
  if hasattr(config, "workerinput") or _CACHE in os.environ:
    return
  folder = tempfile.mkdtemp(prefix="surrogate-tests-compilations-")
  config._shared_compilations = folder
  os.environ[_CACHE] = folder
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["SURROGATE_COMPILATION_CACHE"] = folder  # what python -m research would use
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def pytest_unconfigure(config):
  folder = getattr(config, "_shared_compilations", None)
  if folder:
    shutil.rmtree(folder, ignore_errors=True)


def pytest_configure(config):
  _share_compilations(config)
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
