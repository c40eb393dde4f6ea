"""The output folder of an experiment: its config once, then rows as runs finish.

A folder holds:

* ``config.json``: the experiment's configuration, written once. Reopening the
  folder with a different configuration is refused, so that one folder never
  mixes two experiments; reopening it with the same one resumes it.
* ``runs.csv``: one row per *finished* run (final metrics). It is the record of
  what is done: a run whose ``run_id`` is in it is never trained or written again.
* ``history.csv``: one row per run and evaluation (run metrics over training).
* ``layers.csv``: one row per run, evaluation and layer (layer metrics).
* ``grids.csv``: one row per trained program (its grids, devices, seconds):
  what is per program, not per run.

Every row ends with a ``checksum`` of its values, so a row cut short by a full
disk, a missing field or a value edited by hand is found when the folder is
read (:meth:`ResultsFolder.damage`), named by file and line, and never read
as a result. Rows that are missing are found too: each ``runs.csv`` row
records how many rows its run wrote to each other file (``history_rows``,
``layers_rows``, ``grids_rows``), and each ``grids.csv`` row the runs its
program trained (``run_ids``), so a deleted or emptied file, a deleted row or
a lost ``grids.csv`` row sends the runs concerned back to training. The counts
are written with the run's row, after its other rows; they are the same
however the runs are grouped into programs, so a run's row is too. The
readers (:meth:`ResultsFolder.runs`, :meth:`ResultsFolder.grids`) leave these
bookkeeping columns out. Folders written before them resume unchecked, but
for a run without a single row in a file (every run of the engine writes one
at step 0). A file whose header is cut or damaged cannot be read at all:
:meth:`ResultsFolder.drop_damaged` sets it aside (``runs.csv.damaged``) and
the runs it concerned are trained again.

New rows are appended to the end of each file, flushed and synced to disk
(:func:`os.fsync`), so adding a program's runs costs the same in a folder of
ten runs as in one of ten thousand. A crash, Ctrl-C or full disk during an
append leaves the earlier rows as they were and at most one last row cut short,
which its checksum finds; the next run of the experiment drops it, with every
row of its run, and trains that run again (:meth:`ResultsFolder.drop_damaged`).
The per-step files are written before ``runs.csv`` (``history.csv``,
``layers.csv``, ``grids.csv``, then ``runs.csv``), so a run is only marked
finished once its curves are on disk.

Two rare writes replace a whole file instead, atomically (a temporary file in
the same folder, flushed to disk, then :func:`os.replace`, so the file is
either as it was or fully updated): a row that brings a new column (the header
changes), and a run added again after an attempt interrupted between its
writes, whose leftover rows are replaced. A file's first rows are written the
same way, so a header is never cut short.

``config.json`` records the folder's format (``results_format``); a folder of
another format is refused, naming it, rather than misread.

One process writes a folder at a time: :class:`ResultsFolder` takes an
exclusive lock (``fcntl.flock`` on ``.lock``) and a second writer is refused at
once, naming the holder's pid. Being the only writer, an open folder keeps
each file's columns and run ids in memory after reading the file once, instead
of reading every file again on each add.

Values are written so that they read back unchanged: floats with :func:`repr`
(exact, including ``nan`` and ``inf``), booleans as ``True``/``False``, a
missing value as an empty field.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import io
import itertools
import json
import math
import os
import pathlib
import re
import tempfile
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

try:
  import fcntl
except ImportError:  # Windows: no advisory locks; one writer is then up to the user
  fcntl = None

CONFIG_FILE, RUNS_FILE, HISTORY_FILE = "config.json", "runs.csv", "history.csv"
# config.json's record of how the folder's files are written; a reader refuses
# any other. Raise it when a change makes old readers misread new folders.
FORMAT_KEY, FORMAT_VERSION = "results_format", 1
LAYERS_FILE, GRIDS_FILE, LOCK_FILE = "layers.csv", "grids.csv", ".lock"
CHECKSUM = "checksum"
# The per-run files whose rows belong to a run, written before runs.csv.
_RUN_TABLES = (HISTORY_FILE, LAYERS_FILE)
_FILES = (RUNS_FILE, *_RUN_TABLES, GRIDS_FILE)
# runs.csv's bookkeeping: how many rows each run wrote to each other file;
# grids.csv's: the runs of each program, a JSON list (also the row's key).
_COUNTS = {HISTORY_FILE: "history_rows", LAYERS_FILE: "layers_rows", GRIDS_FILE: "grids_rows"}
RUN_IDS = "run_ids"
_BOOKKEEPING = frozenset({*_COUNTS.values(), RUN_IDS})

# Columns that hold text even when the text looks like a number.
_TEXT_COLUMNS = frozenset({"run_id", "activation", "name", "grid", RUN_IDS, CHECKSUM})
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


class Damage(NamedTuple):
  """What of a results file cannot be trusted: a row, its header, or rows that are missing.

  Examples:
    >>> print(Damage("history.csv", 4, "relu|seed=0", "3 fields where the header has 9"))
    history.csv line 4: 3 fields where the header has 9
    >>> lost = Damage("layers.csv", None, None, "is missing (deleted?)", ("a", "b"))
    >>> print(lost.notice)
    layers.csv: is missing (deleted?); 2 run(s) will be trained again, their rows dropped from every file.
  """

  file: str
  line: int | None  # 1 is the header; None: rows missing from the file
  run_id: str | None  # the run it belongs to, when that much is readable
  reason: str
  runs: tuple[str, ...] = ()  # every run it concerns, when it is not one row's

  def __str__(self) -> str:
    return f"{self.file} line {self.line}: {self.reason}" if self.line else (
        f"{self.file}: {self.reason}")

  @property
  def run_ids(self) -> frozenset[str]:
    """The runs that repairing it trains again."""
    return frozenset(self.runs) | ({self.run_id} if self.run_id else set())

  @property
  def notice(self) -> str:
    """What was found and what repairing it does, one line (stderr, even when quiet)."""
    if self.line and self.line > 1:
      return f"Dropped a damaged row, {self}" + (
          "; its run will be trained again." if self.run_id else ".")
    if self.line == 1 and self.file == RUNS_FILE:
      return f"{self}; the runs it held will be trained again."
    if not self.runs:
      return f"{self}."
    return (f"{self}; {len(self.runs)} run(s) will be trained again, their rows dropped from"
            " every file.")


class FolderBusy(RuntimeError):
  """Another process is writing the folder."""


class ResultsWriteError(RuntimeError):
  """Writing to a results folder failed after work began (a full disk, say).

  The cause is the :class:`OSError`; what was written before is intact.
  """

  def __init__(self, folder: os.PathLike | str):
    super().__init__(f"could not write results to '{folder}'")
    self.folder = pathlib.Path(folder)


class ResultsFolder:
  """The output folder of one experiment, locked for writing while open.

  Args:
    path: the folder; created (with its parents) if absent.
    config: the experiment's configuration, JSON-ready values (a dataclass
      instance is converted with :func:`dataclasses.asdict`). Written to
      ``config.json`` the first time; compared with it afterwards.
    ignore: top-level config keys that may differ between attempts.
    read_only: neither create, lock nor write the folder (the processes of a
      multi-host job other than process 0 read it to resume, and never write).

  Raises:
    ValueError: ``config.json`` exists and differs from ``config`` (each
      differing field is named), or is not a JSON object.
    FolderBusy: another process holds the folder's lock.
    OSError: the folder cannot be created or written.

  Examples:
    >>> import tempfile
    >>> directory = tempfile.TemporaryDirectory()
    >>> folder = ResultsFolder(directory.name, {"steps": 100})
    >>> run = {"run_id": "relu|seed=0", "activation": "relu", "seed": 0,
    ...        "diverged": False, "test_loss": 0.1}
    >>> curve = [{"run_id": "relu|seed=0", "step": step, "test_loss": loss}
    ...          for step, loss in ((0, 2.3), (100, 0.1))]
    >>> folder.add([run], curve)
    >>> folder.runs() == [run]
    True
    >>> [row["test_loss"] for row in folder.history()]
    [2.3, 0.1]
    >>> folder.close()
    >>> with ResultsFolder(folder.path, {"steps": 100}) as resumed:
    ...   print(resumed.finished_run_ids())
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
      ignore: Collection[str] = (),
      read_only: bool = False,
  ) -> None:
    if not str(path).strip() or pathlib.Path(path).name != pathlib.Path(path).name.strip():
      raise ValueError(f"the results folder {str(path)!r} is blank or starts or ends with a space;"
                       " name a folder, e.g. --out results/my-run.")
    self.path = pathlib.Path(path).expanduser()
    self.read_only = read_only
    self._lock = None
    self._files: dict[str, _FileState] = {}  # the writer's memory of each file
    requested = _json_ready(config)
    if not isinstance(requested, dict):
      raise TypeError(f"config must be a mapping or a dataclass, got {config!r}.")
    if not read_only:
      self.path.mkdir(parents=True, exist_ok=True)
      self._lock = _lock(self.path)
    try:
      self._check_config(requested, set(ignore))
    except BaseException:
      self.close()
      raise

  def _check_config(self, requested: dict[str, Any], ignored: set[str]) -> None:
    config_path = self.path / CONFIG_FILE
    requested = {key: value for key, value in requested.items() if key != FORMAT_KEY}
    if not config_path.exists():
      if self.read_only:
        return
      stored = {**requested, FORMAT_KEY: FORMAT_VERSION}
      write_text_atomic(config_path, json.dumps(stored, sort_keys=True, indent=2) + "\n")
      return
    stored = _read_config(config_path)
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

  def close(self) -> None:
    """Releases the folder's lock; the folder can still be read."""
    self._files.clear()  # another process may write the folder once it is unlocked
    if self._lock is not None:
      self._lock.close()  # closing the file releases the flock
      self._lock = None

  def __enter__(self) -> ResultsFolder:
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()

  def __repr__(self) -> str:
    return f"ResultsFolder('{self.path}')"

  def damage(self) -> list[Damage]:
    """Everything of the folder that cannot be trusted, by file and line.

    Rows cut short, incomplete or edited; headers cut or damaged; rows that
    ``runs.csv`` records and the files do not hold (a deleted or emptied file,
    a deleted row, a lost ``grids.csv`` row). Each names the runs it concerns.
    """
    return _damage({name: _read_table(self.path / name) for name in _FILES})

  def drop_damaged(self) -> list[Damage]:
    """Removes what :meth:`damage` finds, and every row of a run it concerns, so it is retrained.

    A file whose header is damaged is set aside (``runs.csv`` becomes
    ``runs.csv.damaged``), and ``grids.csv`` rows of programs none of whose
    runs are kept go with them. Returns what was found, each set-aside file
    named; files without damage are left untouched.
    """
    found = self.damage()
    if not found:
      return []
    dropped_runs = frozenset().union(*(item.run_ids for item in found))
    reported = []
    for item in found:
      if item.line == 1:  # the header: none of the file's rows can be read
        aside = _set_aside(self.path / item.file)
        item = item._replace(reason=f"{item.reason}; set aside as '{aside.name}'")
      reported.append(item)
    damaged_files = {item.file for item in found if item.line and item.line > 1}
    kept_runs = [row for row in _read_table(self.path / RUNS_FILE).rows
                 if row["run_id"] not in dropped_runs]
    kept_ids = {row["run_id"] for row in kept_runs}
    # A grids row that lists no runs (an older folder) stays while a run of that age does.
    older = any(row.get(_COUNTS[GRIDS_FILE]) is None for row in kept_runs)
    for name in _FILES:
      table = _read_table(self.path / name)
      if name == GRIDS_FILE:
        kept = [row for row in table.rows
                if (kept_ids.intersection(_listed(row)) if row.get(RUN_IDS) else older)]
      else:
        kept = [row for row in table.rows if row.get("run_id") not in dropped_runs]
      if name in damaged_files or len(kept) < len(table.rows):
        _write_table(self.path / name, table.header, [_as_text(row) for row in kept])
    self._files.clear()
    return reported

  def finished_run_ids(self) -> set[str]:
    """The ``run_id`` of every run in ``runs.csv``: the work a resume skips."""
    return {row["run_id"] for row in self._rows(RUNS_FILE)}

  def add(
      self,
      runs: Sequence[Mapping[str, Any]],
      history: Sequence[Mapping[str, Any]] = (),
      layers: Sequence[Mapping[str, Any]] = (),
      grid: Mapping[str, Any] | None = None,
  ) -> None:
    """Records finished runs with their history and layer rows, appended to each file.

    ``history.csv`` and ``layers.csv`` are written first, then ``grids.csv``,
    then ``runs.csv``, so that ``runs.csv`` only names runs whose other rows
    are on disk. Rows of a run being added replace that run's existing rows
    (left by an interrupted attempt).

    Args:
      runs: one row per finished run; each needs a ``run_id`` not yet in
        ``runs.csv``.
      history: rows with a ``run_id`` each, usually those of ``runs``.
      layers: rows with a ``run_id`` each, usually those of ``runs``.
      grid: one row about the program that trained them (``grids.csv``).

    Raises:
      ValueError: a row lacks a ``run_id``, a ``run_id`` is repeated in
        ``runs`` or is already finished; nothing is written then.
      TypeError: a value is not a number, bool, string or None.
    """
    if self.read_only:
      raise PermissionError(f"{self!r} was opened read-only.")
    run_ids = [_run_id(row, "runs") for row in runs]
    per_run = {HISTORY_FILE: history, LAYERS_FILE: layers}
    self._refuse_finished(run_ids, per_run)
    # Format every value before writing anything: a bad value writes nothing.
    formatted = {name: [_format_row(row) for row in rows] for name, rows in per_run.items()}
    new_grid = [_format_row({**grid, RUN_IDS: _run_list(run_ids)})] if grid else []
    counts = {name: collections.Counter(row["run_id"] for row in rows)
              for name, rows in formatted.items()}
    counts[GRIDS_FILE] = collections.Counter(run_ids if grid else ())
    new_runs = [
        _format_row({**row, **{column: counts[name][run_id] for name, column in _COUNTS.items()}})
        for row, run_id in zip(runs, run_ids)]
    for name, rows in formatted.items():
      self._write_rows(name, rows, replacing=set(run_ids))
    # A program added again after an interrupted attempt replaces that attempt's row.
    self._write_rows(GRIDS_FILE, new_grid, replacing={row[RUN_IDS] for row in new_grid})
    self._write_rows(RUNS_FILE, new_runs)  # last, with the counts: the run is finished

  def _refuse_finished(
      self, run_ids: list[str], per_run: Mapping[str, Sequence[Mapping[str, Any]]]
  ) -> None:
    """Raises unless ``run_ids`` are distinct and no row belongs to a finished run."""
    repeated = sorted(
        run_id for run_id, count in collections.Counter(run_ids).items() if count > 1
    )
    if repeated:
      raise ValueError(f"runs names these run_ids more than once: {repeated}.")
    finished = self._known(RUNS_FILE).keys
    already = sorted(finished.intersection(run_ids))
    if already:
      raise ValueError(
          f"These runs are already finished in '{self.path / RUNS_FILE}' and are"
          f" never overwritten: {already}. Skip the run_ids that"
          " finished_run_ids() returns."
      )
    for name, rows in per_run.items():
      late = sorted({_run_id(row, name.split(".")[0]) for row in rows} & finished)
      if late:
        raise ValueError(
            f"{name.split('.')[0]} has rows for runs already finished in"
            f" '{self.path / RUNS_FILE}': {late}. A finished run's rows are never changed."
        )

  def runs(self) -> list[dict[str, Any]]:
    """The rows of ``runs.csv``, values converted back (see :func:`parse_value`).

    As they were added: the folder's bookkeeping columns (``history_rows``,
    ``layers_rows``, ``grids_rows``) are left out.
    """
    return self._rows(RUNS_FILE)

  def history(self) -> list[dict[str, Any]]:
    """The rows of ``history.csv``, values converted back (see :func:`parse_value`)."""
    return self._rows(HISTORY_FILE)

  def layers(self) -> list[dict[str, Any]]:
    """The rows of ``layers.csv``, values converted back (see :func:`parse_value`)."""
    return self._rows(LAYERS_FILE)

  def grids(self) -> list[dict[str, Any]]:
    """The rows of ``grids.csv``: one per trained program (its list of runs left out)."""
    return self._rows(GRIDS_FILE)

  def _rows(self, name: str) -> list[dict[str, Any]]:
    table = _read_table(self.path / name)
    if table.damage:
      listed = "; ".join(map(str, table.damage[:3]))
      more = f" (and {len(table.damage) - 3} more)" if len(table.damage) > 3 else ""
      raise ValueError(
          f"'{self.path / name}' is damaged: {listed}{more}. Rerun the experiment"
          " with the same folder to drop these rows and retrain their runs."
      )
    return [{k: v for k, v in row.items() if k != CHECKSUM and k not in _BOOKKEEPING}
            for row in table.rows]

  def _known(self, file_name: str) -> _FileState:
    """The columns and keys of ``file_name``, read from disk once while the folder is open."""
    if file_name not in self._files:
      table = _read_table(self.path / file_name)
      if table.damage[:1] and table.damage[0].line == 1:  # never append to (or replace) it unread
        raise ValueError(
            f"'{self.path / file_name}' {table.damage[0].reason}. Rerun the experiment with the"
            " same folder to set it aside and train its runs again.")
      key = _key(file_name)
      self._files[file_name] = _FileState(
          [column for column in table.header if column != CHECKSUM],
          {row[key] for row in table.rows if row.get(key)},
      )
    return self._files[file_name]

  def _write_rows(
      self, file_name: str, rows: list[dict[str, str]], replacing: Collection[str] = ()
  ) -> None:
    """Appends ``rows`` to ``file_name``, first removing the rows keyed by ``replacing``.

    Rows are keyed by their run (``run_id``), in ``grids.csv`` by the runs
    of their program (``run_ids``). An append when it can; a whole new file, atomically, when the
    file is new, a row brings a new column, or a key in ``replacing`` already
    has rows.
    """
    known = self._known(file_name)
    stale = known.keys.intersection(replacing)
    if not rows and not stale:
      return  # nothing to change: keep the file (and its timestamp) as it is
    key = _key(file_name)
    try:
      if known.columns and not stale and _columns(known.columns, rows) == known.columns:
        _append_rows(self.path / file_name, known.columns, rows)
        known.keys.update(row[key] for row in rows if row.get(key))
      else:
        self._rewrite(file_name, rows, stale)
    except BaseException:
      self._files.pop(file_name, None)  # how much reached the disk is unknown: read it again
      raise

  def _rewrite(self, file_name: str, rows: list[dict[str, str]], stale: set[str]) -> None:
    """Rewrites ``file_name`` atomically: its rows but those keyed by ``stale``, then ``rows``."""
    path = self.path / file_name
    key = _key(file_name)
    # A file without a header holds no rows: nothing to read back.
    table = _read_table(path) if self._known(file_name).columns else _Table([], [], [], [])
    kept = [_as_text(row) for row in table.rows if row.get(key) not in stale]
    columns = _write_table(path, table.header, kept + rows)
    self._files[file_name] = _FileState(
        columns, {row[key] for row in kept + rows if row.get(key)})


class _FileState(NamedTuple):
  """What the folder's only writer knows of one of its files without reading it again."""

  columns: list[str]  # the header without the checksum; empty while the file has none
  keys: set[str]  # the key (run_id; run_ids in grids.csv) of every intact row


def _key(file_name: str) -> str:
  """The column that names what a row of ``file_name`` belongs to."""
  return RUN_IDS if file_name == GRIDS_FILE else "run_id"


def _run_list(run_ids: Collection[str]) -> str:
  """A program's runs as ``grids.csv`` lists them: the same runs, the same text, across attempts."""
  return json.dumps(sorted(run_ids), separators=(",", ":"))


def _listed(grid: Mapping[str, Any]) -> list[str]:
  """The runs a ``grids.csv`` row lists (none in a folder older than the lists)."""
  return json.loads(grid[RUN_IDS]) if grid.get(RUN_IDS) else []


def _set_aside(path: pathlib.Path) -> pathlib.Path:
  """Renames a file that cannot be read to ``<name>.damaged`` (``.damaged.2``... if taken)."""
  for number in itertools.count(1):
    aside = path.with_name(f"{path.name}.damaged" + (f".{number}" if number > 1 else ""))
    if not aside.exists():
      os.replace(path, aside)
      _sync_folder(path.parent)
      return aside
  raise AssertionError("unreachable")


def _damage(tables: Mapping[str, _Table]) -> list[Damage]:
  """What :meth:`ResultsFolder.damage` finds, from each file's table."""
  runs_table = tables[RUNS_FILE]
  runs = list(zip(runs_table.rows, runs_table.lines))
  found = []
  for name in _FILES:
    for item in tables[name].damage:
      if item.line == 1 and name != RUNS_FILE:  # a header: the runs that wrote rows under it
        item = item._replace(runs=tuple(
            row["run_id"] for row, _ in runs if row.get(_COUNTS[name]) != 0))
      found.append(item)
  for name, counted in _COUNTS.items():
    table = tables[name]
    if table.damage[:1] and table.damage[0].line == 1:
      continue  # unreadable: its runs are already concerned
    # A run with a damaged row here has fewer intact ones: said once, by its row.
    concerned = {item.run_id for item in table.damage}
    if name == GRIDS_FILE:
      # Listed at least once: a run trained again may also stay listed by its first program's
      # row. A folder older than the lists has none, nor counts: its runs are not checked.
      listed = {run_id for row in table.rows for run_id in _listed(row)}
      missing = [(row, line) for row, line in runs if row["run_id"] not in concerned
                 and row.get(counted) and row["run_id"] not in listed]
    else:
      have = collections.Counter(row["run_id"] for row in table.rows)
      # Without a count (an older folder), only a run without a single row is known to miss some.
      missing = [(row, line) for row, line in runs if row["run_id"] not in concerned and (
          have[row["run_id"]] != row[counted] if row.get(counted) is not None
          else not have[row["run_id"]])]
    if missing:
      found.append(Damage(name, None, None, _missing_reason(table, missing, counted),
                          tuple(row["run_id"] for row, _ in missing)))
  return found


def _missing_reason(table: _Table, missing: list[tuple[dict[str, Any], int]], counted: str) -> str:
  """Why rows of ``missing`` runs are missing from a file, naming the first run."""
  if not table.exists:
    return f"is missing (deleted?), though runs.csv records rows in it for {len(missing)} run(s)"
  if not table.header:
    return f"is empty (emptied?), though runs.csv records rows in it for {len(missing)} run(s)"
  (row, line) = missing[0]
  if counted == _COUNTS[GRIDS_FILE]:
    return (f"has no intact row for the program that trained {len(missing)} run(s) of runs.csv"
            f" (damaged or deleted?), e.g. run {row['run_id']!r} (runs.csv line {line})")
  have = sum(1 for other in table.rows if other["run_id"] == row["run_id"])
  want = row.get(counted)
  return (f"does not hold the rows runs.csv records for {len(missing)} run(s) (deleted or"
          f" added by hand?), e.g. run {row['run_id']!r} (runs.csv line {line}): {have} of its"
          f" {'at least 1' if want is None else want} row(s)")


def _lock(folder: pathlib.Path) -> Any:
  """Takes the folder's exclusive lock, or raises :class:`FolderBusy` at once."""
  handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115  (held open)
  if fcntl is None:
    return handle
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.seek(0)
    holder = handle.read().strip() or "unknown"
    handle.close()
    raise FolderBusy(
        f"'{folder}' is being written by another process (pid {holder}). Wait for it"
        " to finish, or choose another output folder (--out)."
    ) from None
  handle.seek(0)
  handle.truncate()
  handle.write(str(os.getpid()))
  handle.flush()
  return handle


@contextlib.contextmanager
def reading(folder: str | os.PathLike) -> Iterator[None]:
  """Holds ``folder`` while it is read: refused at once if a process is writing it.

  A shared lock on the writers' ``.lock``: readers do not exclude each other,
  and no writer gets in until the ``with`` block ends, so what is read is one
  state of the folder, not half of a resume.

  Raises:
    FolderBusy: another process is writing the folder (its pid named).

  Examples:
    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> with ResultsFolder(directory, {"steps": 1}), reading(directory):
    ...   pass
    Traceback (most recent call last):
    ...
    research.results.FolderBusy: '...' is being written by another process (pid ...). ...
    >>> with reading(directory):
    ...   print("nobody writes it")
    nobody writes it
  """
  path = pathlib.Path(folder) / LOCK_FILE
  try:
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held open)
  except OSError:  # a read-only copy of a folder: nobody can be writing it there
    handle = None
  try:
    if handle is not None and fcntl is not None:
      try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
      except OSError:
        handle.seek(0)
        raise FolderBusy(
            f"'{folder}' is being written by another process (pid"
            f" {handle.read().strip() or 'unknown'}). Wait for it to finish, then read it again."
        ) from None
    yield
  finally:
    if handle is not None:
      handle.close()


class _Table(NamedTuple):
  header: list[str]  # empty when the file is missing, empty or its header damaged
  rows: list[dict[str, Any]]  # intact rows, values parsed, checksum included
  damage: list[Damage]  # a damaged header (line 1) comes first, alone
  lines: list[int]  # the line of each intact row
  exists: bool = True


def _checksum(fields: Mapping[str, str]) -> str:
  """Eight hex digits over a row's non-empty fields, independent of column order."""
  text = "\x1f".join(f"{key}\x1e{value}" for key, value in sorted(fields.items())
                     if value != "" and key != CHECKSUM)
  return f"{zlib.crc32(text.encode('utf-8')):08x}"


def _read_table(path: pathlib.Path) -> _Table:
  if not path.exists():
    return _Table([], [], [], [], exists=False)
  # A grids.csv row lists every run of its program: a field may pass csv's 128 KB limit.
  limit = csv.field_size_limit(2**31 - 1)
  try:
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
      lines = list(csv.reader(file))
  finally:
    csv.field_size_limit(limit)
  if not lines:
    return _Table([], [], [], [])
  header, rows, damage, numbers = lines[0], [], [], []
  if not header or header[-1] != CHECKSUM or len(set(header)) != len(header):
    return _Table([], [], [Damage(path.name, 1, None, (
        f"has no valid header (its first line should name the columns, ending with"
        f" {CHECKSUM!r}; cut short or edited?): none of its rows can be trusted"))], [])
  for number, fields in enumerate(lines[1:], start=2):
    run_id = fields[0] if fields and header[0] == "run_id" and fields[0] else None
    if len(fields) != len(header):
      damage.append(Damage(path.name, number, run_id,
                           f"{len(fields)} fields where the header has {len(header)} (cut short?)"))
      continue
    text = dict(zip(header, fields))
    if _checksum(text) != text[CHECKSUM]:
      damage.append(Damage(path.name, number, run_id,
                           "its values do not match its checksum (edited or damaged)"))
      continue
    rows.append({column: parse_value(column, value) for column, value in text.items()})
    numbers.append(number)
  return _Table(header, rows, damage, numbers)


def _as_text(row: Mapping[str, Any]) -> dict[str, str]:
  return {key: value for key, value in _format_row(row).items() if key != CHECKSUM}


def _columns(header: Sequence[str], rows: Sequence[Mapping[str, str]]) -> list[str]:
  """``header``'s columns, then each new column of ``rows`` after its neighbour in the row.

  Keys stay first: a new hyperparameter's column goes beside the others.

  Examples:
    >>> _columns(["run_id", "seed", "checksum"], [{"run_id": "a", "slope": "0.1", "seed": "0"}])
    ['run_id', 'slope', 'seed']
  """
  columns = [column for column in header if column != CHECKSUM]
  for row in rows:
    previous = None
    for key in row:
      if key not in columns:
        columns.insert(columns.index(previous) + 1 if previous else len(columns), key)
      previous = key
  return columns


def _csv_lines(columns: Sequence[str], rows: Sequence[Mapping[str, str]], *, header: bool) -> str:
  """``rows`` as CSV lines under ``columns``, each ending with its checksum."""
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  if header:
    writer.writerow([*columns, CHECKSUM])
  for row in rows:
    writer.writerow([*(row.get(column, "") for column in columns), _checksum(row)])
  return buffer.getvalue()


def _write_table(path: pathlib.Path, header: list[str], rows: list[dict[str, str]]) -> list[str]:
  """Replaces ``path`` with ``rows`` under ``header`` (extended by new columns), atomically.

  Returns the columns written, the checksum left out.
  """
  columns = _columns(header, rows)
  write_text_atomic(path, _csv_lines(columns, rows, header=True))
  return columns


def _append_rows(path: pathlib.Path, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
  """Appends ``rows`` (no new columns) to the end of ``path``, then flushes and syncs it.

  Only the new bytes are written. A last line that an interrupted append left
  without its newline is ended first: it stays a line of its own, found by its
  checksum, and the new rows stay intact.
  """
  text = _csv_lines(columns, rows, header=False)
  with open(path, "a+b") as file:  # appends land at the end, wherever the file was read
    if file.seek(0, os.SEEK_END):
      file.seek(-1, os.SEEK_END)
      if file.read(1) != b"\n":
        text = "\n" + text
    file.write(text.encode("utf-8"))
    file.flush()
    os.fsync(file.fileno())


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
  """Plain rows as CSV text (header from the first row), for a study's own tables.

  Unlike the folder's tables these carry no checksum: they are derived from
  ``runs.csv`` and its siblings and rewritten whole on every run.

  Examples:
    >>> print(csv_text([{"width": 2, "born_dead_fraction": 0.915}]), end="")
    width,born_dead_fraction
    2,0.915
  """
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  return buffer.getvalue()


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


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
  """The ``config.json`` of a results folder, or a ``ValueError`` saying what is wrong with it."""
  return _read_config(pathlib.Path(folder) / CONFIG_FILE)


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
  found = stored.pop(FORMAT_KEY, FORMAT_VERSION)  # folders from before the key are format 1
  if found != FORMAT_VERSION:
    raise ValueError(
        f"'{path}' is a results folder of format {found!r}; this version of surrogate-activations"
        f" reads format {FORMAT_VERSION}. Use the version that wrote it, or another output folder.")
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
