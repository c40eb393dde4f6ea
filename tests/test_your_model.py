"""A user's model, surrogate and dataset through the engine, and every bad input as one line."""

from __future__ import annotations

import importlib
import sys

import jax
import numpy as np
import pytest
from flax import nnx

import activations
import research
from research import cli, experiment, grid, observe
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # optax and user code, run as users run them

TINY = Config(dataset="moons(num_train=128, num_test=64)", activations=("relu", "necro_relu"),
              seeds=2, steps=20, batch_size=16, eval_every=10)

MODEL_FILE = '''
from flax import nnx


class Net(nnx.Module):
  def __init__(self, activation, input_shape, num_outputs, rngs):
    self.activation = activation
    self.first = nnx.Linear(input_shape[0], 8, rngs=rngs)
    self.norm = nnx.BatchNorm(8, rngs=rngs)
    self.dropout = nnx.Dropout(0.2, rngs=rngs)
    self.second = nnx.Linear(8, 6, rngs=rngs)
    self.head = nnx.Linear(6, num_outputs, rngs=rngs)

  def __call__(self, x):
    h = self.dropout(self.activation(self.norm(self.first(x))))
    return self.head(self.activation(self.second(h)))


def net(activation, *, input_shape, num_outputs, rngs):
  return Net(activation, input_shape, num_outputs, rngs)


def wrong_signature(activation, size):
  return None


def wrong_outputs(activation, *, input_shape, num_outputs, rngs):
  return nnx.Linear(input_shape[0], num_outputs + 1, rngs=rngs)


def no_activation(activation, *, input_shape, num_outputs, rngs):
  return nnx.Linear(input_shape[0], num_outputs, rngs=rngs)


def not_a_module(activation, *, input_shape, num_outputs, rngs):
  return lambda x: x


NOT_CALLABLE = 3
'''

SURROGATE_FILE = '''
import jax
import activations

# Built once, hyperparameters as arguments: a surrogate built anew inside each
# call is a new custom_vjp at every trace.
_revive = activations.surrogate(lambda z, slope: jax.nn.relu(z),
                                lambda z, slope: jax.nn.leaky_relu(z, slope))


def revive(x, slope=0.1):
  """ReLU forward, LeakyReLU(slope) backward."""
  return _revive(x, slope)


def as_float(x, slope=0.1):
  """Wrong: slope arrives as a traced array, which float() cannot read."""
  return jax.nn.leaky_relu(x, float(slope))


def branches(x, slope=0.1, scale=1.0):
  """Wrong: an if on a traced array."""
  return jax.nn.leaky_relu(x, slope) * scale if slope > 0 else jax.nn.relu(x)
'''


@pytest.fixture
def user_files(tmp_path, monkeypatch):
  """my_models.py and my_surrogates.py in the working directory, imported fresh."""
  (tmp_path / "my_models.py").write_text(MODEL_FILE)
  (tmp_path / "my_surrogates.py").write_text(SURROGATE_FILE)
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  for name in ("my_models", "my_surrogates"):
    sys.modules.pop(name, None)
  yield tmp_path
  for name in ("my_models", "my_surrogates"):
    sys.modules.pop(name, None)


@pytest.fixture
def trained_user_model(user_files):
  config = Config(**{**TINY.__dict__, "model": "my_models:net"})
  return research.compare(config, out=user_files / "results", quiet=True)


def test_a_user_model_with_batchnorm_and_dropout_trains_with_every_metric(trained_user_model):
  runs, layers = (trained_user_model.runs.to_dict("records"),
                  trained_user_model.layers.to_dict("records"))
  assert len(runs) == 4 and {row["parameters"] for row in runs} == {24 + 16 + 54 + 14}
  for row in runs:
    assert 0 <= row["inactive_fraction"] <= 1 and 0 <= row["dead_fraction"] <= 1
    assert np.isfinite(row["test_loss"]) and not row["diverged"]
  final = [row for row in layers if row["step"] == 20 and row["seed"] == 0 and row["name"] == "relu"]
  # Two activation calls, three kernels (first, second, head) in order of use.
  assert [row["layer"] for row in final] == [1, 2, 3]
  assert np.isnan(final[2]["inactive_fraction"]) and not np.isnan(final[1]["inactive_fraction"])
  shapes = [row["weight_norm"] for row in final]
  assert all(value > 0 for value in shapes)


def test_a_user_model_trains_the_same_twice_and_dropout_masks_come_from_the_seed(trained_user_model):
  config = Config(**{**TINY.__dict__, "model": "my_models:net", "activations": ("relu",)})
  again = research.compare(config, out=trained_user_model.out.parent / "again", quiet=True)
  first = {row["run_id"]: row for row in trained_user_model.runs.to_dict("records")}
  for row in again.runs.to_dict("records"):  # same ids (same code and data), same numbers, bit for bit
    assert first[row["run_id"]]["test_loss"] == row["test_loss"]


def test_run_ids_cover_the_code_behind_a_name(user_files):
  config = Config(**{**TINY.__dict__, "model": "my_models:net"})
  before = _run_ids(config)
  (user_files / "my_models.py").write_text(MODEL_FILE.replace("nnx.Dropout(0.2", "nnx.Dropout(0.3"))
  sys.modules.pop("my_models", None)
  importlib.invalidate_caches()
  assert _run_ids(config).isdisjoint(before)


def test_run_ids_cover_a_registered_activations_body(tmp_path):
  config = Config(**{**TINY.__dict__, "activations": ("probe",)})
  try:
    activations.register("probe", activations.necro_relu, overwrite=True)
    before = _run_ids(config)
    activations.register("probe", activations.relu_with_leaky_backward, overwrite=True)
    assert _run_ids(config).isdisjoint(before)  # same name, same forward, another backward
  finally:
    activations.unregister("probe")


def _run_ids(config: Config) -> set[str]:
  prepared = experiment.prepare(config, out=None)
  prepared.folder.close()
  return {run.run_id for grids in prepared.grids for g in grids for run in g.runs}


def test_a_user_surrogate_from_the_command_line_sweeps_its_keywords(user_files, capsys):
  status = cli.main([
      "compare", "--dataset", "moons(num_train=128, num_test=64)", "--seeds", "1",
      "--steps", "10", "--eval-every", "10", "--batch-size", "16", "--out", "results", "--quiet",
      "--activations", "relu,my_surrogates:revive(slope=[0.1, 0.5])",
  ])
  assert status == 0, capsys.readouterr().err
  import csv

  with open(user_files / "results" / "runs.csv") as file:
    rows = list(csv.DictReader(file))
  assert [row["activation"] for row in rows] == [
      "relu", "my_surrogates:revive(slope=0.1)", "my_surrogates:revive(slope=0.5)"]
  assert rows[1]["test_loss"] != rows[2]["test_loss"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "missing_module:net"], "no module named 'missing_module'"),
        (["--model", "my_models:nett"], "has no attribute 'nett'. It has: "),
        (["--model", "my_models:NOT_CALLABLE"], "names 3 (of type int), not a function"),
        (["--model", "my_models:wrong_signature"], "a factory is called as factory(activation, *"),
        (["--model", "my_models:wrong_outputs"], "the dataset needs (batch, 2)"),
        (["--model", "my_models:no_activation"], "never calls the activation"),
        (["--model", "my_models:not_a_module"], "not an nnx.Module"),
        (["--activations", "relu,my_surrogates:revive(slop=0.2)"], "no keyword hyperparameter 'slop'"),
        (["--activations", "my_surrogates:missing"], "has no attribute 'missing'"),
        # Regression: a 90-line ConcretizationTypeError traceback, exit 1.
        (["--activations", "relu,my_surrogates:as_float(slope=[0.1, 0.3])"],
         "my_surrogates:as_float needs a Python value of its hyperparameter 'slope'"
         " (ConcretizationTypeError), but float hyperparameters arrive as JAX arrays"),
        (["--activations", "my_surrogates:branches(scale=[1.0, 2.0])"],
         "my_surrogates:branches needs a Python value of its hyperparameter 'slope'"
         " (TracerBoolConversionError)"),
        (["--dataset", "missing_data:load"], "no module named 'missing_data'"),
        (["--model", "resnet2"], "Did you mean 'resnet20'?"),
        (["--preset", "sugar"], "Unknown preset 'sugar'"),
    ],
)
def test_bad_user_code_is_one_line_and_status_2_before_training(user_files, capsys, flags, message):
  status = cli.main(["compare", "--dataset", "moons(num_train=64, num_test=32)", "--steps", "5",
                     "--out", "never", *flags])
  error = capsys.readouterr().err.strip()
  assert status == 2 and len(error.splitlines()) == 1, error
  assert message in error
  assert not (user_files / "never" / "runs.csv").exists()


def test_a_factory_passed_from_python_and_a_linen_module_train(tmp_path):
  import flax.linen as nn

  from research import model_spec

  class Linen(nn.Module):
    activation: object
    num_outputs: int

    @nn.compact
    def __call__(self, x):
      return nn.Dense(self.num_outputs)(self.activation(nn.Dense(8)(x)))

  factory = model_spec.from_linen(lambda activation, num_outputs: Linen(activation, num_outputs))
  config = Config(**{**TINY.__dict__, "model": factory, "seeds": 1})
  result = research.compare(config, out=tmp_path, quiet=True)
  assert len(result.runs) == 2 and result.runs["parameters"][0] == 2 * 8 + 8 + 8 * 2 + 2
  assert ":" in (tmp_path / "config.json").read_text().split('"model": ')[1].split(",")[0]


@pytest.mark.parametrize("wrap", [lambda f: f, jax.jit], ids=["eager", "jit"])
def test_observed_calls_are_the_activations_inputs_and_outputs(wrap):
  model = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
  build = lambda activation, key: _TwoCalls(activation, key)  # noqa: E731
  params, state = observe.split(build(activations.relu, jax.random.key(0)))
  x = jax.numpy.arange(6.0).reshape(2, 3) - 2.5
  observed = wrap(lambda p, s, x: observe.call(build, activations.relu, p, s, x, training=True))(
      params, state, x)
  assert len(observed.preactivations) == 2 and observed.outputs.dtype == jax.numpy.float32
  for z, out in zip(observed.preactivations, observed.activations):
    np.testing.assert_array_equal(out, np.maximum(z, 0))
  del model


class _TwoCalls(nnx.Module):
  def __init__(self, activation, key):
    self.activation = activation
    self.first = nnx.Linear(3, 4, rngs=nnx.Rngs(key))
    self.second = nnx.Linear(4, 2, rngs=nnx.Rngs(key))

  def __call__(self, x):
    return self.activation(self.second(self.activation(self.first(x))))


def test_kernel_order_follows_use_not_attribute_names():
  class Reversed(nnx.Module):  # attributes sort as "a_last", "z_first"
    def __init__(self, activation, key):
      self.activation = activation
      self.z_first = nnx.Linear(3, 5, rngs=nnx.Rngs(key))
      self.a_last = nnx.Linear(5, 2, rngs=nnx.Rngs(key))

    def __call__(self, x):
      return self.a_last(self.activation(self.z_first(x)))

  paths = observe.kernel_order(lambda f, key: Reversed(f, key), activations.relu,
                               jax.ShapeDtypeStruct((1, 3), jax.numpy.float32))
  assert paths == (("z_first", "kernel"), ("a_last", "kernel"))


def test_grid_expand_keeps_ids_apart_by_identity():
  plain = grid.expand(TINY)[0].runs[0].run_id
  other = grid.expand(TINY, {"relu": {"code": "abc"}})[0].runs[0].run_id
  assert plain != other and plain.split("|")[:3] == other.split("|")[:3]
