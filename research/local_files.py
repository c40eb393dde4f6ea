"""Reading image datasets already on disk: MNIST IDX, ``.npz``, CIFAR-10 and CIFAR-100.

:func:`read` finds the layout of a file or folder and returns its raw arrays
(uint8 images ``(N, H, W, C)`` and integer labels); :func:`research.data.load_local`
scales and standardises them. Nothing is downloaded: the files are the user's.
"""

from __future__ import annotations

import gzip
import pathlib
import pickle

import numpy as np

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_CIFAR100_FILES = ("train", "test")
_LABELS = {"fine": (b"fine_labels", 100), "coarse": (b"coarse_labels", 20)}
_LAYOUTS = (
    f"Expected a .npz file with arrays {', '.join(_NPZ_ARRAYS)}; a folder with the"
    f" IDX files {', '.join(_IDX_FILES)} (each may end in .gz); a CIFAR-10"
    f" folder cifar-10-batches-py with {', '.join(_CIFAR_FILES)}; or a CIFAR-100"
    " folder cifar-100-python with train and test."
)
# The type byte of an IDX header and the big-endian dtype it stands for.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def _find_idx(folder: pathlib.Path, name: str) -> pathlib.Path | None:
  candidates = (folder / name, folder / f"{name}.gz")
  return next((path for path in candidates if path.is_file()), None)


def _read_idx_array(folder: pathlib.Path, name: str) -> np.ndarray:
  path = _find_idx(folder, name)
  if path is None:
    raise FileNotFoundError(f"'{folder}' lacks {name} (or {name}.gz). {_LAYOUTS}")
  with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as file:
    content = file.read()
  if len(content) < 4 or content[:2] != b"\0\0" or content[2] not in _IDX_DTYPES:
    raise ValueError(
        f"'{path}' is not an IDX file: its magic number should be two zero bytes, a"
        f" type byte (one of {', '.join(f'0x{t:02X}' for t in _IDX_DTYPES)}) and"
        f" the number of dimensions, got 0x{content[:4].hex().upper()}."
    )
  dtype, ndim = np.dtype(_IDX_DTYPES[content[2]]), content[3]
  header = 4 + 4 * ndim
  shape = tuple(int(size) for size in np.frombuffer(content[4:header], ">u4"))
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(shape) != ndim or len(content) != expected:
    raise ValueError(
        f"'{path}' is truncated or padded: its header promises shape {shape} of"
        f" {dtype}, {expected} bytes in all, but it has {len(content)} bytes."
    )
  array = np.frombuffer(content, dtype, offset=header).reshape(shape)
  expected_ndim = 3 if "images" in name else 1
  if array.ndim != expected_ndim:
    raise ValueError(f"'{path}' should have {expected_ndim} dimensions, got {shape}.")
  return array[..., None] if expected_ndim == 3 else array  # images get a channel


def _read_npz(path: pathlib.Path) -> list[np.ndarray]:
  with np.load(path, allow_pickle=False) as archive:
    missing = [name for name in _NPZ_ARRAYS if name not in archive]
    if missing:
      raise ValueError(f"'{path}' lacks the arrays {', '.join(missing)}. {_LAYOUTS}")
    x_train, y_train, x_test, y_test = (archive[name] for name in _NPZ_ARRAYS)
  # Grey images get a channel axis; Keras stores CIFAR labels as (N, 1).
  x_train, x_test = (x[..., None] if x.ndim == 3 else x for x in (x_train, x_test))
  y_train, y_test = (
      y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y for y in (y_train, y_test)
  )
  return [x_train, y_train, x_test, y_test]


def _read_cifar(folder: pathlib.Path) -> list[np.ndarray]:
  missing = [name for name in _CIFAR_FILES if not (folder / name).is_file()]
  if missing:
    raise FileNotFoundError(f"'{folder}' lacks {', '.join(missing)}. {_LAYOUTS}")
  images, labels = [], []
  for name in _CIFAR_FILES:
    with open(folder / name, "rb") as file:
      batch = pickle.load(file, encoding="bytes")
    data = np.asarray(batch.get(b"data") if isinstance(batch, dict) else None)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or b"labels" not in batch:
      raise ValueError(
          f"'{folder / name}' is not a CIFAR-10 batch: expected a dict with b'data'"
          " of shape (N, 3072) and b'labels'."
      )
    # A row is the 32x32 red plane, then the green, then the blue.
    images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    labels.append(np.asarray(batch[b"labels"]))
  return [np.concatenate(images[:5]), np.concatenate(labels[:5]), images[5], labels[5]]


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, "int | None"]


def read(path, labels: str = "fine") -> Arrays:
  """``(x_train, y_train, x_test, y_test, num_classes)`` of the layout at ``path``.

  ``num_classes`` is known for CIFAR (10, or 100 fine / 20 coarse) and
  ``None`` for the others (the labels tell).
  """
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise FileNotFoundError(f"No such file or folder: '{path}'. {_LAYOUTS}")
  for folder in ("cifar-10-batches-py", "cifar-100-python"):
    if path.is_dir() and (path / folder).is_dir():
      path = path / folder
  is_cifar100 = path.is_dir() and any((path / name).is_file() for name in _CIFAR100_FILES)
  if labels not in _LABELS:
    raise ValueError(f"labels={labels!r} is not valid; choose from {', '.join(_LABELS)}.")
  if labels != "fine" and not is_cifar100:
    raise ValueError(f"labels={labels!r} is for CIFAR-100 folders only; '{path}' is not one.")
  if path.is_file() and path.suffix == ".npz":
    return (*_read_npz(path), None)
  if is_cifar100:
    return _read_cifar100(path, labels)
  if path.is_dir() and any((path / name).exists() for name in _CIFAR_FILES):
    return (*_read_cifar(path), 10)
  if path.is_dir() and any(_find_idx(path, name) for name in _IDX_FILES):
    return (*[_read_idx_array(path, name) for name in _IDX_FILES], None)
  raise ValueError(f"'{path}' holds no dataset layout this loader knows. {_LAYOUTS}")


def _cifar_images(batch: dict, path: pathlib.Path) -> np.ndarray:
  data = np.asarray(batch.get(b"data") if isinstance(batch, dict) else None)
  if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
    raise ValueError(f"'{path}' is not a CIFAR batch: expected a dict with b'data' of shape (N, 3072).")
  # A row is the 32x32 red plane, then the green, then the blue.
  return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _read_cifar100(folder: pathlib.Path, labels: str) -> Arrays:
  key, num_classes = _LABELS[labels]
  arrays = []
  for name in _CIFAR100_FILES:
    if not (folder / name).is_file():
      raise FileNotFoundError(f"'{folder}' lacks {name}. {_LAYOUTS}")
    with open(folder / name, "rb") as file:
      batch = pickle.load(file, encoding="bytes")
    images = _cifar_images(batch, folder / name)
    if key not in batch:
      raise ValueError(f"'{folder / name}' is not a CIFAR-100 file: it has no {key!r}.")
    arrays += [images, np.asarray(batch[key])]
  return (*arrays, num_classes)
