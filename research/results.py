"""The output folder of a comparison: its config once, then rows as runs finish.

A folder holds three files:

* ``config.json``: the experiment's configuration, written once. Reopening the
  folder with a different configuration is refused, so that one folder never
  mixes two experiments; reopening it with the same one resumes it.
* ``runs.csv``: one row per *finished* run (final metrics). It is the record of
  what is done: a run whose ``run_id`` is in it is never trained or written again.
* ``history.csv``: one row per run and evaluation step (learning curves).

Every write replaces a whole file atomically (a temporary file in the same
folder, flushed to disk, then :func:`os.replace`), so a crash or Ctrl-C leaves
each file either as it was or fully updated, never half written. The history
is written before the runs, so a run is only marked finished once its curves
are on disk; curves left by an attempt interrupted between the two writes are
replaced when the run is added again.

Values are written so that they read back unchanged: floats with :func:`repr`
(exact, including ``nan`` and ``inf``), booleans as ``True``/``False``, a
missing value as an empty field. One process writes a folder at a time.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import re
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

CONFIG_FILE, RUNS_FILE, HISTORY_FILE = "config.json", "runs.csv", "history.csv"

# Columns that hold text even when the text looks like a number.
_TEXT_COLUMNS = frozenset({"run_id", "activation", "name", "grid"})
# What repr() writes for a float, and what str() writes for an int.
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf)")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
  """Replaces the file at ``path`` with ``text`` (UTF-8), all at once or not at all.

  See :func:`write_bytes_atomic`.

  Examples:
    >>> import os, pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   path = pathlib.Path(folder, "summary.md")
    ...   write_text_atomic(path, "first")
    ...   write_text_atomic(path, "second")
    ...   print(path.read_text(), os.listdir(folder))
    second ['summary.md']
  """
  if not isinstance(text, str):
    raise TypeError(f"write_text_atomic needs a str, got {type(text).__name__}.")
  write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
  """Replaces the file at ``path`` with ``data``, all at once or not at all.

  The data goes to a temporary file in the same folder (so that the final
  rename stays on one file system), is flushed and synced to disk, and then
  renamed over ``path`` with :func:`os.replace`, which is atomic on POSIX and
  Windows. If anything fails, the temporary file is removed and ``path`` is
  left as it was.

  Args:
    path: the file to write; its folder must exist.
    data: the new content.

  Examples:
    >>> import os, pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   path = pathlib.Path(folder, "plot.png")
    ...   write_bytes_atomic(path, b"\\x89PNG")
    ...   print(path.read_bytes(), os.listdir(folder))
    b'\\x89PNG' ['plot.png']
  """
  path = pathlib.Path(path)
  descriptor, temporary = tempfile.mkstemp(
      dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
  )
  try:
    # mkstemp makes the file private (0600); give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    with os.fdopen(descriptor, "wb") as file:
      file.write(data)
      file.flush()
      os.fsync(file.fileno())
    os.replace(temporary, path)
  except BaseException:  # KeyboardInterrupt too: never leave the temporary file
    with contextlib.suppress(OSError):
      os.remove(temporary)
    raise
  _sync_folder(path.parent)


def _sync_folder(folder: pathlib.Path) -> None:
  """Makes the rename itself durable where the platform allows it (POSIX)."""
  try:
    descriptor = os.open(folder, os.O_RDONLY)
  except OSError:  # Windows cannot open a folder; its rename is already durable
    return
  try:
    os.fsync(descriptor)
  except OSError:
    pass
  finally:
    os.close(descriptor)


class ResultsFolder:
  """The output folder of one experiment: ``config.json``, ``runs.csv``, ``history.csv``.

  Args:
    path: the folder; created (with its parents) if absent.
    config: the experiment's configuration, JSON-ready values (a dataclass
      instance is converted with :func:`dataclasses.asdict`). Written to
      ``config.json`` the first time; compared with it afterwards.
    ignore: top-level config keys that do not change the results (where the
      output goes, how verbose the run is); they may differ between attempts.

  Raises:
    ValueError: ``config.json`` exists and differs from ``config`` (each
      differing field is named), or is not a JSON object.

  Examples:
    >>> import tempfile
    >>> directory = tempfile.TemporaryDirectory()
    >>> folder = ResultsFolder(directory.name, {"steps": 100, "quiet": False})
    >>> run = {"run_id": "relu|seed=0", "activation": "relu", "seed": 0,
    ...        "diverged": False, "test_loss": 0.1}
    >>> curve = [{"run_id": "relu|seed=0", "step": step, "test_loss": loss}
    ...          for step, loss in ((0, 2.3), (100, 0.1))]
    >>> folder.add([run], curve)
    >>> folder.runs() == [run]
    True
    >>> [row["test_loss"] for row in folder.history()]
    [2.3, 0.1]
    >>> resumed = ResultsFolder(folder.path, {"steps": 100, "quiet": True})
    >>> resumed.finished_run_ids()
    {'relu|seed=0'}
    >>> ResultsFolder(folder.path, {"steps": 200})
    Traceback (most recent call last):
    ...
    ValueError: The folder ... holds results of a different configuration:
      steps: 100 != 200
    Choose another output folder (e.g. --out ...) for this configuration, or rerun
    with the same configuration to resume.
    >>> directory.cleanup()
  """

  path: pathlib.Path

  def __init__(
      self,
      path: str | os.PathLike,
      config: Mapping[str, Any],
      *,
      ignore: Collection[str] = ("out", "quiet"),
  ) -> None:
    self.path = pathlib.Path(path).expanduser()
    self.path.mkdir(parents=True, exist_ok=True)
    requested = _json_ready(config)
    if not isinstance(requested, dict):
      raise TypeError(f"config must be a mapping or a dataclass, got {config!r}.")
    config_path = self.path / CONFIG_FILE
    if not config_path.exists():
      write_text_atomic(
          config_path, json.dumps(requested, sort_keys=True, indent=2) + "\n"
      )
      return
    stored = _read_config(config_path)
    ignored = set(ignore)
    differences = _differences(
        {key: value for key, value in stored.items() if key not in ignored},
        {key: value for key, value in requested.items() if key not in ignored},
    )
    if differences:
      listed = "\n".join(f"  {line}" for line in differences)
      raise ValueError(
          f"The folder '{self.path}' holds results of a different configuration:\n"
          f"{listed}\n"
          "Choose another output folder (e.g. --out ...) for this configuration,"
          " or rerun with the same configuration to resume."
      )

  def __repr__(self) -> str:
    return f"ResultsFolder('{self.path}')"

  def finished_run_ids(self) -> set[str]:
    """The ``run_id`` of every run in ``runs.csv``: the work a resume skips."""
    header, rows = _read_csv(self.path / RUNS_FILE)
    if not rows:
      return set()
    if "run_id" not in header:
      raise ValueError(f"'{self.path / RUNS_FILE}' has no run_id column.")
    column = header.index("run_id")
    return {row[column] for row in rows if column < len(row)}

  def add(
      self, runs: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]]
  ) -> None:
    """Records finished runs and their history rows, each file atomically.

    The history is written first, then the runs, so that ``runs.csv`` only
    names runs whose curves are on disk. History rows of a run being added
    replace that run's existing history rows (left by an interrupted attempt).

    Args:
      runs: one row per finished run; each needs a ``run_id`` not yet in
        ``runs.csv``.
      history: rows with a ``run_id`` each, usually those of ``runs``.

    Raises:
      ValueError: a row lacks a ``run_id``, a ``run_id`` is repeated in
        ``runs`` or is already finished; nothing is written then.
      TypeError: a value is not a number, bool, string or None.
    """
    run_ids = [_run_id(row, "runs") for row in runs]
    history_ids = {_run_id(row, "history") for row in history}
    repeated = sorted(
        run_id for run_id, count in collections.Counter(run_ids).items() if count > 1
    )
    if repeated:
      raise ValueError(f"runs names these run_ids more than once: {repeated}.")
    finished = self.finished_run_ids()
    already = sorted(finished.intersection(run_ids))
    if already:
      raise ValueError(
          f"These runs are already finished in '{self.path / RUNS_FILE}' and are"
          f" never overwritten: {already}. Skip the run_ids that"
          " finished_run_ids() returns."
      )
    late = sorted(history_ids.intersection(finished))
    if late:
      raise ValueError(
          f"history has rows for runs already finished in '{self.path / RUNS_FILE}':"
          f" {late}. A finished run's history is never changed."
      )
    # Format every value before writing anything: a bad value writes nothing.
    new_history = [_format_row(row) for row in history]
    new_runs = [_format_row(row) for row in runs]
    if new_history or run_ids:
      replaced = set(run_ids)
      self._append(HISTORY_FILE, new_history, drop=lambda row: row.get("run_id") in replaced)
    if new_runs:
      self._append(RUNS_FILE, new_runs, drop=lambda row: False)

  def runs(self) -> list[dict[str, Any]]:
    """The rows of ``runs.csv``, values converted back (see :func:`parse_value`)."""
    return _read_rows(self.path / RUNS_FILE)

  def history(self) -> list[dict[str, Any]]:
    """The rows of ``history.csv``, values converted back (see :func:`parse_value`)."""
    return _read_rows(self.path / HISTORY_FILE)

  def _append(
      self,
      file_name: str,
      rows: list[dict[str, str]],
      drop: Callable[[dict[str, str]], bool],
  ) -> None:
    """Rewrites ``file_name`` with its kept rows, then ``rows``, atomically."""
    path = self.path / file_name
    header, existing = _read_csv(path)
    kept = [dict(zip(header, row)) for row in existing]
    kept = [row for row in kept if not drop(row)]
    if not rows and len(kept) == len(existing):
      return  # nothing to change: keep the file (and its timestamp) as it is
    columns = list(header)
    for row in rows:
      columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in kept + rows:
      writer.writerow([row.get(column, "") for column in columns])
    write_text_atomic(path, buffer.getvalue())


def parse_value(column: str, text: str) -> Any:
  """A CSV field back as the value that was written.

  Empty is ``None``; ``True``/``False`` are bools; integers are ints; floats
  (including ``nan`` and ``inf``) are floats; anything else, and every value of
  ``run_id``, ``activation``, ``name`` and ``grid``, stays a string.

  Examples:
    >>> [parse_value("x", text) for text in ("", "True", "3", "0.1", "-inf", "relu")]
    [None, True, 3, 0.1, -inf, 'relu']
    >>> parse_value("activation", "1")
    '1'
  """
  if column in _TEXT_COLUMNS:
    return text
  if text == "":
    return None
  if text in ("True", "False"):
    return text == "True"
  if _INT.fullmatch(text):
    return int(text)
  if _FLOAT.fullmatch(text):
    return float(text)
  return text


def _run_id(row: Mapping[str, Any], which: str) -> str:
  run_id = row.get("run_id") if isinstance(row, Mapping) else None
  if not isinstance(run_id, str) or not run_id:
    raise ValueError(f"Every {which} row needs a non-empty string run_id, got {row!r}.")
  return run_id


def _format_row(row: Mapping[str, Any]) -> dict[str, str]:
  formatted = {}
  for column, value in row.items():
    if not isinstance(column, str):
      raise TypeError(f"Column names must be strings, got {column!r} in {row!r}.")
    formatted[column] = _format_value(column, value, row)
  return formatted


def _format_value(column: str, value: Any, row: Mapping[str, Any]) -> str:
  if getattr(value, "shape", None) == () and hasattr(value, "__array__"):
    value = np.asarray(value).item()  # NumPy and JAX scalars become Python ones
  if value is None:
    return ""
  if isinstance(value, bool):
    return repr(value)
  if isinstance(value, int):
    return str(value)
  if isinstance(value, float):
    return repr(value)  # the shortest text that reads back as the same float
  if isinstance(value, str):
    return value
  raise TypeError(
      f"Column {column!r} of run {row.get('run_id')!r} holds {value!r}; a results"
      " value must be a number, a bool, a string or None."
  )


def _read_csv(path: pathlib.Path) -> tuple[list[str], list[list[str]]]:
  if not path.exists():
    return [], []
  with open(path, newline="", encoding="utf-8") as file:
    lines = list(csv.reader(file))
  if not lines:
    return [], []
  return lines[0], lines[1:]


def _read_rows(path: pathlib.Path) -> list[dict[str, Any]]:
  header, rows = _read_csv(path)
  return [
      {column: parse_value(column, text) for column, text in zip(header, row)}
      | {column: None for column in header[len(row):]}
      for row in rows
  ]


def _json_ready(value: Any) -> Any:
  """``value`` as JSON would read it back: tuples as lists, dataclasses as dicts."""
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    value = dataclasses.asdict(value)
  if isinstance(value, Mapping):
    return {str(key): _json_ready(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_ready(item) for item in value]
  if isinstance(value, os.PathLike):
    return os.fspath(value)
  if getattr(value, "shape", None) == () and hasattr(value, "__array__"):
    return np.asarray(value).item()
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  raise TypeError(
      f"Config values must be JSON values (numbers, strings, bools, None, lists,"
      f" mappings), got {value!r}."
  )


def _read_config(path: pathlib.Path) -> dict[str, Any]:
  try:
    stored = json.loads(path.read_text(encoding="utf-8"))
  except (ValueError, UnicodeDecodeError) as error:
    raise ValueError(
        f"'{path}' is not valid JSON ({error}). It is written once when a folder is"
        " created; choose another output folder (e.g. --out ...) or restore the file."
    ) from None
  if not isinstance(stored, dict):
    raise ValueError(
        f"'{path}' should hold a JSON object of config fields, got"
        f" {type(stored).__name__}. Choose another output folder (e.g. --out ...)."
    )
  return stored


_ABSENT = object()


def _differences(stored: Any, requested: Any, field: str = "") -> list[str]:
  """``field: <in folder> != <requested>`` lines, descending into mappings."""
  if isinstance(stored, dict) and isinstance(requested, dict):
    lines = []
    for key in sorted(set(stored) | set(requested)):
      lines += _differences(
          stored.get(key, _ABSENT),
          requested.get(key, _ABSENT),
          f"{field}.{key}" if field else key,
      )
    return lines
  if _same(stored, requested):
    return []
  return [f"{field}: {_show(stored)} != {_show(requested)}"]


def _same(first: Any, second: Any) -> bool:
  if isinstance(first, list) and isinstance(second, list):
    return len(first) == len(second) and all(map(_same, first, second))
  if isinstance(first, float) and isinstance(second, float):
    return first == second or (math.isnan(first) and math.isnan(second))
  # 1 == 1.0 is the same number, but True == 1 is not the same setting.
  if _is_number(first) and _is_number(second):
    return first == second
  return type(first) is type(second) and first == second


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
  return "<absent>" if value is _ABSENT else json.dumps(value)
