"""Deep networks through the engine: architectures, epochs, augmentation, bfloat16, presets."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import research
from research import architectures, cli, data, presets, train
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # optax mixes dtypes, as users run it


def _write_cifar100(folder, num_train=40, num_test=20):
  """A CIFAR-100 python folder in the official format, with random images."""
  rng = np.random.default_rng(0)
  path = folder / "cifar-100-python"
  path.mkdir()
  for name, count in (("train", num_train), ("test", num_test)):
    batch = {b"data": rng.integers(0, 256, (count, 3072), np.uint8),
             b"fine_labels": rng.integers(0, 100, count).tolist(),
             b"coarse_labels": rng.integers(0, 20, count).tolist()}
    with open(path / name, "wb") as file:
      pickle.dump(batch, file)
  return path


TINY_IMAGES = Config(dataset="digits", activations=("relu", "necro_relu"), seeds=1, steps=4,
                     batch_size=8, eval_every=2)


@pytest.mark.slow  # one deep network through the whole engine: about a minute on 2 cores
def test_resnet20_trains_on_a_cifar100_folder_with_every_metric(tmp_path):
  # The other architectures share every engine path; tests/test_architectures.py
  # checks their sizes and activation calls.
  folder = _write_cifar100(tmp_path)
  config = Config(**{**TINY_IMAGES.__dict__, "dataset": f"local(path={str(folder)!r})",
                     "model": "resnet20(width=4)", "activations": ("relu",), "steps": 2,
                     "eval_every": 2})
  result = research.compare(config, out=tmp_path / "out", quiet=True)
  (row,) = result.runs.to_dict("records")
  assert row["parameters"] == architectures.parameter_count(nnx.eval_shape(
      lambda: architectures.resnet20(jax.nn.relu, input_shape=(32, 32, 3), num_outputs=100,
                                     rngs=nnx.Rngs(0), width=4)))
  final = [layer for layer in result.layers.to_dict("records") if layer["step"] == 2]
  # 20 kernels (19 convolutions, the head) and 19 activation calls: layer k is both k-th.
  assert sorted(layer["layer"] for layer in final) == list(range(1, 21))
  observed = [layer for layer in final if not np.isnan(layer["inactive_fraction"])]
  assert sorted(layer["layer"] for layer in observed) == list(range(1, 20))
  assert all(0 <= layer["inactive_fraction"] <= 1 for layer in observed)
  assert all(layer["weight_norm"] > 0 and layer["gradient_norm"] > 0 for layer in final)
  assert (tmp_path / "out" / "dead_fraction.png").stat().st_size > 1000


def test_epochs_visit_every_example_once_per_epoch():
  dataset = data.load("moons(num_train=64, num_test=8)")
  config = Config(dataset="moons(num_train=64, num_test=8)", epochs=3, batch_size=10)
  (grid,) = research.grid.expand(Config(**{**config.__dict__, "activations": ("relu",)}))
  program = train.Program.of(config, dataset, grid)
  assert (program.config.steps, program.steps_per_epoch) == (18, 6)  # 64 // 10 full batches a pass
  inputs = research.programs.run_inputs(grid.runs[:1], grid)
  one = jax.tree.map(lambda a: a[0], inputs)
  arrays = train.device_arrays(dataset)
  for epoch in range(3):
    indices = np.concatenate([
        np.asarray(train.batch_indices(program, arrays, one, jnp.asarray(epoch * 6 + position)))
        for position in range(6)])
    assert len(set(indices.tolist())) == 60  # no example twice within an epoch


def test_augmentation_and_bfloat16_train_and_keep_runs_paired(tmp_path):
  config = Config(**{**TINY_IMAGES.__dict__, "augment": True, "dtype": "bfloat16",
                     "model": "cnn2d", "width": 4, "norm": "batch", "seeds": 2})
  result = research.compare(config, out=tmp_path, quiet=True)
  assert len(result.runs) == 4 and np.isfinite(result.runs["test_loss"]).all()
  plain = research.compare(Config(**{**config.__dict__, "augment": False}),
                           out=tmp_path / "plain", quiet=True)
  # Augmentation changes what is trained on: other ids, other numbers.
  assert set(plain.runs["run_id"]).isdisjoint(result.runs["run_id"])
  assert list(plain.runs["train_loss"]) != list(result.runs["train_loss"])


def test_the_sugar_preset_runs_at_a_tiny_size(tmp_path, capsys, monkeypatch):
  folder = _write_cifar100(tmp_path)
  monkeypatch.chdir(tmp_path)
  status = cli.main([
      "compare", "--preset", "sugar-cifar100-vgg16", "--dataset", f"local(path={str(folder)!r})",
      "--model", "cnn2d", "--width", "4", "--epochs", "1", "--batch-size", "8", "--eval-every", "5",
      "--seeds", "1", "--activations", "relu,sugar_bsilu", "--out", "sugar", "--quiet",
  ])
  assert status == 0, capsys.readouterr().err
  recorded = (tmp_path / "sugar" / "config.json").read_text()
  for setting in ('"optimizer": "momentum"', '"l2_penalty": 0.0005', '"schedule": "multistep"',
                  '"epochs": 1', '"norm": "none"'):
    assert setting in recorded
  assert presets.preset("sugar-cifar100-resnet18").model == "resnet18"
