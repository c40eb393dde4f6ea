"""TensorBoard event files of every run's history, to watch a long grid (``--tensorboard``).

With :attr:`research.run_options.RunOptions.tensorboard` each run gets one
event file, ``<out>/tensorboard/<part>/<run>/events.out.tfevents.surrogate-activations``,
written when its program's rows are written and from those same rows, so
TensorBoard shows exactly what ``history.csv`` and ``layers.csv`` hold: at
each evaluation step the run metrics (``test_accuracy``, ``train_loss``,
``test_loss``...) and each layer's ``inactive_fraction/layer_<n>`` and
``dead_fraction/layer_<n>``. ``<part>`` is a study part's columns
(``depth=4``), none for ``compare``; ``<run>`` is the run id made safe for
a folder name (:func:`run_folder`). Then::

  tensorboard --logdir <out>/tensorboard

The records are TensorBoard's (``tensorboardX``'s protocol buffers, no
TensorFlow): the ``tensorboard`` extra, ``pip install
surrogate-activations[tensorboard]``. Each file is written whole and
atomically, once: a rerun writes only the finished runs that have none
(all of them when ``--tensorboard`` is first given to a finished folder),
so no scalar is ever written twice. Only the process that writes results
writes them.

Example:
  >>> import tempfile
  >>> history = [{"run_id": "relu|seed=0|learning_rate=0.1|abc", "step": step,
  ...             "test_accuracy": accuracy} for step, accuracy in ((0, 0.5), (10, 0.75))]
  >>> layers = [{"run_id": "relu|seed=0|learning_rate=0.1|abc", "step": 10, "layer": 1,
  ...            "dead_fraction": 0.25}]
  >>> folder = tempfile.mkdtemp()
  >>> write(folder, history, layers)
  ['relu,seed=0,learning_rate=0.1,abc']
  >>> read(folder)
  {'relu,seed=0,learning_rate=0.1,abc': {'test_accuracy': [(0, 0.5), (10, 0.75)], 'dead_fraction/layer_1': [(10, 0.25)]}}
  >>> write(folder, history, layers)  # already written: nothing is
  []
"""

from __future__ import annotations

import collections
import os
import pathlib
import re
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from research import atomic, metrics, results

FOLDER = "tensorboard"
FILE = "events.out.tfevents.surrogate-activations"  # TensorBoard reads files named *tfevents*
LAYER_TAGS = ("inactive_fraction", "dead_fraction")  # per layer: "dead_fraction/layer_1"
INSTALL = "pip install surrogate-activations[tensorboard]"

Rows = Sequence[Mapping[str, Any]]
Scalars = dict[str, list[tuple[int, float]]]  # tag -> [(step, value), ...]


def require() -> None:
  """Raises a one-line ``ImportError`` naming the extra to install if ``tensorboardX`` is missing."""
  try:
    import tensorboardX  # noqa: F401
  except ImportError:
    raise ImportError(f"--tensorboard writes event files with tensorboardX, which is not"
                      f" installed: {INSTALL}") from None


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,()+ -]")


def run_folder(run_id: str, keys: Mapping[str, Any] | None = None) -> str:
  """A run's folder under ``<out>/tensorboard``: its part's columns, then its run id, made path-safe.

  Examples:
    >>> run_folder("necro_relu(negative_slope=0.1)|seed=0|learning_rate=0.01|3f2a")
    'necro_relu(negative_slope=0.1),seed=0,learning_rate=0.01,3f2a'
    >>> run_folder("relu|seed=1|learning_rate=0.1|3f2a", {"dataset": "mnist1d", "depth": 4})
    'dataset=mnist1d/depth=4/relu,seed=1,learning_rate=0.1,3f2a'
  """
  safe = lambda text: _UNSAFE.sub("_", text.replace("|", ","))  # noqa: E731
  return "/".join([*(safe(f"{name}={value}") for name, value in (keys or {}).items()),
                   safe(run_id)])


def scalars(history: Rows, layers: Rows) -> dict[str, Scalars]:
  """Each run's scalars from its ``history.csv`` and ``layers.csv`` rows, by run id.

  Empty fields (a metric not measured) are left out.

  Examples:
    >>> scalars([{"run_id": "a", "step": 5, "test_loss": 0.5, "diverged": False}],
    ...         [{"run_id": "a", "step": 5, "layer": 2, "inactive_fraction": 0.0,
    ...           "sparsity": 0.5}])
    {'a': {'test_loss': [(5, 0.5)], 'inactive_fraction/layer_2': [(5, 0.0)]}}
  """
  found: dict[str, Scalars] = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in history:
    for name in metrics.RUN_METRICS:
      if row.get(name) is not None:
        found[row["run_id"]][name].append((int(row["step"]), float(row[name])))
  for row in layers:
    for name in LAYER_TAGS:
      if row.get(name) is not None:
        found[row["run_id"]][f"{name}/layer_{row['layer']}"].append(
            (int(row["step"]), float(row[name])))
  return {run_id: dict(tags) for run_id, tags in found.items()}


def write(folder: str | os.PathLike, history: Rows, layers: Rows,
          keys: Callable[[str], Mapping[str, Any]] | None = None) -> list[str]:
  """Writes the event file of each run in ``history`` that has none yet; returns their folders.

  Args:
    folder: the results folder; the files go under ``<folder>/tensorboard``.
    history: ``history.csv`` rows of finished runs (all of each run's).
    layers: their ``layers.csv`` rows.
    keys: a run id's part columns, for its folder (:func:`run_folder`).
  """
  root = pathlib.Path(folder) / FOLDER
  written = []
  for run_id, tags in scalars(history, layers).items():
    path = root / run_folder(run_id, keys(run_id) if keys else None) / FILE
    if path.exists():
      continue
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes_atomic(path, _events(tags))
    written.append(str(path.parent.relative_to(root)))
  return written


def catch_up(folder: results.ResultsFolder,
             keys: Callable[[str], Mapping[str, Any]] | None = None) -> list[str]:
  """Writes the event files of the folder's finished runs that have none; returns their folders.

  Those of runs trained without ``--tensorboard``, or whose program's rows were
  written just before a kill. Reads the folder's rows only if one is missing.
  """
  root = folder.path / FOLDER
  lacking = {run_id for run_id in folder.finished_run_ids()
             if not (root / run_folder(run_id, keys(run_id) if keys else None) / FILE).exists()}
  if not lacking:
    return []
  return write(folder.path, [row for row in folder.history() if row["run_id"] in lacking],
               [row for row in folder.layers() if row["run_id"] in lacking], keys)


def read(folder: str | os.PathLike) -> dict[str, Scalars]:
  """Every run's scalars as its event file holds them, by run folder (:func:`run_folder`).

  Checks each record's checksums; values are the float32 that TensorBoard shows.
  """
  from tensorboardX.proto import event_pb2

  root = pathlib.Path(folder) / FOLDER
  found = {}
  for path in sorted(root.rglob(FILE)):
    tags: Scalars = collections.defaultdict(list)
    for record in _records(path.read_bytes()):
      event = event_pb2.Event.FromString(record)
      for value in event.summary.value:
        tags[value.tag].append((int(event.step), float(value.simple_value)))
    found[str(path.parent.relative_to(root))] = dict(tags)
  return found


def _events(tags: Scalars) -> bytes:
  """An event file: the version record, then one event per step holding all its scalars."""
  from tensorboardX.proto import event_pb2, summary_pb2

  now = time.time()
  by_step: dict[int, list[Any]] = collections.defaultdict(list)
  for tag, points in tags.items():
    for step, value in points:
      by_step[step].append(summary_pb2.Summary.Value(tag=tag, simple_value=value))
  events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2")]
  events += [event_pb2.Event(wall_time=now, step=step, summary=summary_pb2.Summary(value=values))
             for step, values in sorted(by_step.items())]
  return b"".join(_record(event.SerializeToString()) for event in events)


def _record(data: bytes) -> bytes:
  """One TFRecord: length, its checksum, the data, its checksum."""
  from tensorboardX.record_writer import masked_crc32c

  header = struct.pack("<Q", len(data))
  return (header + struct.pack("<I", masked_crc32c(header)) + data
          + struct.pack("<I", masked_crc32c(data)))


def _records(content: bytes) -> list[bytes]:
  """The records of an event file; a checksum that does not match raises ``ValueError``."""
  from tensorboardX.record_writer import masked_crc32c

  found, position = [], 0
  while position < len(content):
    header = content[position:position + 8]
    (length,), (header_crc,) = struct.unpack("<Q", header), struct.unpack(
        "<I", content[position + 8:position + 12])
    data = content[position + 12:position + 12 + length]
    (data_crc,) = struct.unpack("<I", content[position + 12 + length:position + 16 + length])
    if header_crc != masked_crc32c(header) or data_crc != masked_crc32c(data):
      raise ValueError(f"an event file record at byte {position} has a wrong checksum.")
    found.append(data)
    position += 16 + length
  return found
