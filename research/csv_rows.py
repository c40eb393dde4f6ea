"""The CSV format of a results folder's tables: rows that carry their own checksum.

Each row ends with a ``checksum`` of its non-empty fields (:func:`checksum`),
so a row cut short by a full disk, a missing field or a value edited by hand
is found when the file is read (:func:`read_table`), named by file and line
(:class:`Damage`), and never read as a result. Values are written as the
shortest text that reads back the same (``repr`` of a float) and read back
as what was written (:func:`parse_value`).

Example:
  >>> text = csv_lines(["run_id", "test_accuracy"], [{"run_id": "a", "test_accuracy": "0.5"}],
  ...                  header=True)
  >>> print(text, end="")
  run_id,test_accuracy,checksum
  a,0.5,...
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from research import atomic

CHECKSUM = "checksum"
RUN_IDS = "run_ids"  # grids.csv: the runs of each program, a JSON list
# Columns that hold text even when the text looks like a number.
_TEXT_COLUMNS = frozenset({"run_id", "activation", "name", "grid", RUN_IDS, CHECKSUM})
# What repr() writes for a float, and what str() writes for an int.
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf)")

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
    if self.line == 1 and self.file == "runs.csv":
      return f"{self}; the runs it held will be trained again."
    if not self.runs:
      return f"{self}."
    return (f"{self}; {len(self.runs)} run(s) will be trained again, their rows dropped from"
            " every file.")



class Table(NamedTuple):
  """A results file as read: its header, its intact rows and what is damaged."""

  header: list[str]  # empty when the file is missing, empty or its header damaged
  rows: list[dict[str, Any]]  # intact rows, values parsed, checksum included
  damage: list[Damage]  # a damaged header (line 1) comes first, alone
  lines: list[int]  # the line of each intact row
  exists: bool = True


def checksum(fields: Mapping[str, str]) -> str:
  """Eight hex digits over a row's non-empty fields, independent of column order."""
  text = "\x1f".join(f"{key}\x1e{value}" for key, value in sorted(fields.items())
                     if value != "" and key != CHECKSUM)
  return f"{zlib.crc32(text.encode('utf-8')):08x}"


def read_table(path: pathlib.Path) -> Table:
  """The file at ``path``: rows whose checksum holds, parsed; every other line as :class:`Damage`."""
  if not path.exists():
    return Table([], [], [], [], exists=False)
  # A grids.csv row lists every run of its program: a field may pass csv's 128 KB limit.
  limit = csv.field_size_limit(2**31 - 1)
  try:
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
      lines = list(csv.reader(file))
  finally:
    csv.field_size_limit(limit)
  if not lines:
    return Table([], [], [], [])
  header, rows, damage, numbers = lines[0], [], [], []
  if not header or header[-1] != CHECKSUM or len(set(header)) != len(header):
    return Table([], [], [Damage(path.name, 1, None, (
        f"has no valid header (its first line should name the columns, ending with"
        f" {CHECKSUM!r}; cut short or edited?): none of its rows can be trusted"))], [])
  for number, fields in enumerate(lines[1:], start=2):
    run_id = fields[0] if fields and header[0] == "run_id" and fields[0] else None
    if len(fields) != len(header):
      damage.append(Damage(path.name, number, run_id,
                           f"{len(fields)} fields where the header has {len(header)} (cut short?)"))
      continue
    text = dict(zip(header, fields))
    if checksum(text) != text[CHECKSUM]:
      damage.append(Damage(path.name, number, run_id,
                           "its values do not match its checksum (edited or damaged)"))
      continue
    rows.append({column: parse_value(column, value) for column, value in text.items()})
    numbers.append(number)
  return Table(header, rows, damage, numbers)


def as_text(row: Mapping[str, Any]) -> dict[str, str]:
  """A parsed row as the fields it is written with, its checksum left out."""
  return {key: value for key, value in format_row(row).items() if key != CHECKSUM}


def extended_columns(header: Sequence[str], rows: Sequence[Mapping[str, str]]) -> list[str]:
  """``header``'s columns, then each new column of ``rows`` after its neighbour in the row.

  Keys stay first: a new hyperparameter's column goes beside the others.

  Examples:
    >>> extended_columns(["run_id", "seed", "checksum"],
    ...                  [{"run_id": "a", "slope": "0.1", "seed": "0"}])
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


def csv_lines(columns: Sequence[str], rows: Sequence[Mapping[str, str]], *, header: bool) -> str:
  """``rows`` as CSV lines under ``columns``, each ending with its checksum."""
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  if header:
    writer.writerow([*columns, CHECKSUM])
  for row in rows:
    writer.writerow([*(row.get(column, "") for column in columns), checksum(row)])
  return buffer.getvalue()


def write_table(path: pathlib.Path, header: list[str], rows: list[dict[str, str]]) -> list[str]:
  """Replaces ``path`` with ``rows`` under ``header`` (extended by new columns), atomically.

  Returns the columns written, the checksum left out.
  """
  columns = extended_columns(header, rows)
  atomic.write_text_atomic(path, csv_lines(columns, rows, header=True))
  return columns


def append_rows(path: pathlib.Path, columns: Sequence[str],
                rows: Sequence[Mapping[str, str]]) -> None:
  """Appends ``rows`` (no new columns) to the end of ``path``, then flushes and syncs it.

  Only the new bytes are written. A last line that an interrupted append left
  without its newline is ended first: it stays a line of its own, found by its
  checksum, and the new rows stay intact.
  """
  text = csv_lines(columns, rows, header=False)
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


def format_row(row: Mapping[str, Any]) -> dict[str, str]:
  """A row's values as the text written to the file (:func:`parse_value` reads it back)."""
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
