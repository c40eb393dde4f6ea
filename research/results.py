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
import dataclasses
import itertools
import json
import math
import os
import pathlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from research import atomic, csv_rows
from research.csv_rows import CHECKSUM, RUN_IDS, Damage

try:
  import fcntl
except ImportError:  # Windows: no advisory locks; one writer is then up to the user
  fcntl = None

CONFIG_FILE, RUNS_FILE, HISTORY_FILE = "config.json", "runs.csv", "history.csv"
# config.json's record of how the folder's files are written; a reader refuses
# any other. Raise it when a change makes old readers misread new folders.
FORMAT_KEY, FORMAT_VERSION = "results_format", 1
LAYERS_FILE, GRIDS_FILE, LOCK_FILE = "layers.csv", "grids.csv", ".lock"
# The per-run files whose rows belong to a run, written before runs.csv.
_RUN_TABLES = (HISTORY_FILE, LAYERS_FILE)
_FILES = (RUNS_FILE, *_RUN_TABLES, GRIDS_FILE)
# runs.csv's bookkeeping: how many rows each run wrote to each other file;
# grids.csv's: the runs of each program, a JSON list (also the row's key).
_COUNTS = {HISTORY_FILE: "history_rows", LAYERS_FILE: "layers_rows", GRIDS_FILE: "grids_rows"}
_BOOKKEEPING = frozenset({*_COUNTS.values(), RUN_IDS})




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
      atomic.write_text_atomic(config_path, json.dumps(stored, sort_keys=True, indent=2) + "\n")
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
    return _damage({name: csv_rows.read_table(self.path / name) for name in _FILES})

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
    kept_runs = [row for row in csv_rows.read_table(self.path / RUNS_FILE).rows
                 if row["run_id"] not in dropped_runs]
    kept_ids = {row["run_id"] for row in kept_runs}
    # A grids row that lists no runs (an older folder) stays while a run of that age does.
    older = any(row.get(_COUNTS[GRIDS_FILE]) is None for row in kept_runs)
    for name in _FILES:
      table = csv_rows.read_table(self.path / name)
      if name == GRIDS_FILE:
        kept = [row for row in table.rows
                if (kept_ids.intersection(_listed(row)) if row.get(RUN_IDS) else older)]
      else:
        kept = [row for row in table.rows if row.get("run_id") not in dropped_runs]
      if name in damaged_files or len(kept) < len(table.rows):
        csv_rows.write_table(self.path / name, table.header,
                             [csv_rows.as_text(row) for row in kept])
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
    formatted = {name: [csv_rows.format_row(row) for row in rows] for name, rows in per_run.items()}
    new_grid = [csv_rows.format_row({**grid, RUN_IDS: _run_list(run_ids)})] if grid else []
    counts = {name: collections.Counter(row["run_id"] for row in rows)
              for name, rows in formatted.items()}
    counts[GRIDS_FILE] = collections.Counter(run_ids if grid else ())
    new_runs = [
        csv_rows.format_row(
            {**row, **{column: counts[name][run_id] for name, column in _COUNTS.items()}})
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
    table = csv_rows.read_table(self.path / name)
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
      table = csv_rows.read_table(self.path / file_name)
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
      unchanged = csv_rows.extended_columns(known.columns, rows) == known.columns
      if known.columns and not stale and unchanged:
        csv_rows.append_rows(self.path / file_name, known.columns, rows)
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
    known = self._known(file_name).columns
    table = csv_rows.read_table(path) if known else csv_rows.Table([], [], [], [])
    kept = [csv_rows.as_text(row) for row in table.rows if row.get(key) not in stale]
    columns = csv_rows.write_table(path, table.header, kept + rows)
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
      atomic.sync_folder(path.parent)
      return aside
  raise AssertionError("unreachable")


def _damage(tables: Mapping[str, csv_rows.Table]) -> list[Damage]:
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


def _missing_reason(table: csv_rows.Table, missing: list[tuple[dict[str, Any], int]],
                    counted: str) -> str:
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


def _run_id(row: Mapping[str, Any], which: str) -> str:
  run_id = row.get("run_id") if isinstance(row, Mapping) else None
  if not isinstance(run_id, str) or not run_id:
    raise ValueError(f"Every {which} row needs a non-empty string run_id, got {row!r}.")
  return run_id


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
