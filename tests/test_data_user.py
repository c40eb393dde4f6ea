"""Your own data: loaders by reference or object, arrays checked, CIFAR-100, per-channel scaling."""

from __future__ import annotations

import pickle
import sys
import textwrap

import numpy as np
import pytest

from research import data


@pytest.fixture
def loader_module(tmp_path, monkeypatch):
  (tmp_path / "my_data.py").write_text(textwrap.dedent("""
      import numpy as np

      def load(num_train=6, shift=0.0):
          rng = np.random.default_rng(0)
          x = rng.normal(size=(num_train + 2, 3)) + shift
          y = np.arange(num_train + 2) % 3
          return x[:num_train], y[:num_train], x[num_train:], y[num_train:]

      def broken():
          return {"x_train": np.zeros((2, 3))}

      NOT_CALLABLE = 3
  """))
  monkeypatch.syspath_prepend(str(tmp_path))
  yield
  sys.modules.pop("my_data", None)


def test_a_loader_reference_with_options_gives_a_checked_dataset(loader_module):
  dataset = data.load("my_data:load(num_train=4, shift=1.0)")
  assert dataset.name == "my_data:load(num_train=4, shift=1.0)"
  assert dataset.x_train.shape == (4, 3) and dataset.x_train.dtype == np.float32
  assert dataset.y_train.dtype == np.int32 and dataset.num_outputs == 3
  other = data.load("my_data:load(num_train=4, shift=2.0)")
  np.testing.assert_allclose(other.x_train - dataset.x_train, 1.0, rtol=1e-6)
  assert other.fingerprint != dataset.fingerprint  # run ids see the new numbers


def test_a_loader_object_is_called_and_named_by_its_module(loader_module):
  import my_data

  dataset = data.load(my_data.load)
  assert dataset.name == "my_data:load" and len(dataset.x_test) == 2
  assert data.load(dataset) is dataset


@pytest.mark.parametrize("spec,message", [
    ("my_data:broken", "the loader must return a research.data.Dataset, a dict"),
    ("my_data:load(rows=3)", "calling the loader failed"),
    ("my_data:NOT_CALLABLE", "names 3 \\(of type int\\), not a function"),
    ("my_data:missing", "missing"),
    ("no_such_module_here:load", "no_such_module_here"),
])
def test_bad_loaders_are_one_value_error_naming_the_spec(loader_module, spec, message):
  with pytest.raises((ValueError, ImportError), match=message):
    data.load(spec)


@pytest.mark.parametrize("arrays,message", [
    ((np.zeros((4, 3)), [0, 1, 2], np.ones((2, 3)), [2, 0]), "4 examples but 3 labels"),
    ((np.zeros((4, 3)), [0, 1, 2, 1], np.ones((2, 2)), [2, 0]), "test examples"),
    ((np.full((4, 3), np.nan), [0, 1, 2, 1], np.ones((2, 3)), [2, 0]), "NaN"),
    ((np.zeros((4, 3)), [0, 1, 2.5, 1], np.ones((2, 3)), [2, 0]), "integers"),
    ((np.zeros((4, 3)), [0, -1, 2, 1], np.ones((2, 3)), [2, 0]), r"in \[0, 3\)"),
])
def test_from_arrays_names_what_is_wrong(arrays, message):
  with pytest.raises(ValueError, match=message):
    data.from_arrays(*arrays)


def test_regression_arrays_keep_float_targets():
  dataset = data.from_arrays(np.zeros((4, 2)), np.ones((4, 1)), np.zeros((2, 2)), np.ones((2, 1)),
                             task="regression")
  assert dataset.task == "regression" and dataset.num_outputs == 1
  assert dataset.y_train.dtype == np.float32


def _cifar100(folder, count=(6, 4)):
  rng = np.random.default_rng(5)
  path = folder / "cifar-100-python"
  path.mkdir()
  written = {}
  for name, size in zip(("train", "test"), count):
    rows = rng.integers(0, 256, (size, 3072), np.uint8)
    rows[:, :1024] //= 4  # a dark red plane: the channels differ in mean
    batch = {b"data": rows, b"fine_labels": rng.integers(0, 100, size).tolist(),
             b"coarse_labels": rng.integers(0, 20, size).tolist()}
    (path / name).write_bytes(pickle.dumps(batch))
    written[name] = batch
  return path, written


def test_cifar100_reads_fine_or_coarse_labels_standardised_per_channel(tmp_path):
  path, written = _cifar100(tmp_path)
  fine = data.load_local(tmp_path)
  assert fine.input_shape == (32, 32, 3) and fine.num_outputs == 100
  np.testing.assert_array_equal(fine.y_train, written["train"][b"fine_labels"])
  means = fine.x_train.mean(axis=(0, 1, 2))
  stds = fine.x_train.std(axis=(0, 1, 2))
  np.testing.assert_allclose(means, 0, atol=1e-5)
  np.testing.assert_allclose(stds, 1, atol=1e-5)  # each channel, though red is darker
  coarse = data.load(f"local(path={str(path)!r}, labels='coarse')")
  assert coarse.num_outputs == 20
  np.testing.assert_array_equal(coarse.y_test, written["test"][b"coarse_labels"])
  np.testing.assert_array_equal(coarse.x_test, fine.x_test)


def test_cifar100_errors_name_the_missing_file_and_valid_labels(tmp_path):
  path, _ = _cifar100(tmp_path)
  with pytest.raises(ValueError, match="labels='medium' is not valid; choose from"):
    data.load_local(path, labels="medium")
  (path / "test").unlink()
  with pytest.raises(FileNotFoundError, match="lacks test"):
    data.load_local(path)
