"""Checkpoints inside a run: a program's in-flight state, saved, restored and cleaned.

A program (the runs that train together, :func:`research.programs.train_grids`)
is written to the results folder only when it finishes. So that a kill in hour
three of a four-hour program loses minutes, not hours, the program's state is
saved with Orbax at evaluation boundaries into
``<out>/checkpoints/<program key>/<step>/``:

- ``state``: every array of the runs' :class:`research.train.RunState`
  (parameters, optimizer state, BatchNorm statistics and Dropout's RNG
  streams, divergence and inactive-unit bookkeeping), with their shardings;
- ``record``: the step, the history and layer rows recorded so far and the
  training seconds, as JSON.

Each mini-batch is drawn from the run's data key and the step alone
(:func:`research.train.batch_indices`), so a program restored at step ``s``
trains steps ``s..`` exactly as the uninterrupted program did: its rows are
bit-identical. The program key is a hash of the program's run ids (which hash
everything that determines their numbers), so a checkpoint is never taken for
another configuration's runs, and the checkpoint settings are not part of it.

Orbax writes each checkpoint into a temporary directory and renames it when
complete; then the list of its files with their sizes and hashes is added
(``files.json``). The last two are kept. One whose files differ from that list
(a truncated, changed or missing file), or that Orbax cannot read back, is
reported in one line and deleted, and the previous one, or a fresh start, is
used. A finished program's checkpoints are deleted once its rows
are written (:meth:`Checkpoints.finished`), and those of programs no longer
pending when a rerun starts (:meth:`Checkpoints.keep_only`): only programs in
flight have any, at most two each.

Example:
  >>> import tempfile
  >>> saver = Checkpoints(tempfile.mkdtemp(), Schedule(every_steps=100, minutes=0))
  >>> program = saver.program(["relu-s0-abc", "relu-s1-abc"])
  >>> [program.due(step, eval_every=50, steps=300) for step in (100, 150)]
  [True, False]
  >>> program.due(step=300, eval_every=50, steps=300)  # the end: the rows are written instead
  False
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from research import atomic, devices
from research.command import uninterrupted

FOLDER = "checkpoints"
FORMAT = 1  # of the ``record`` item; another is not read


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When a program's state is saved: every so many steps and/or minutes of training.

  Not part of the experiment (``config.json`` and the run ids do not hold it):
  a rerun may change it and still resume. Saves happen at evaluation
  boundaries only, never at a program's last step (its rows are written then).
  """

  every_steps: int = 0  # every this many steps (rounded up to eval_every's multiple); 0: not by steps
  minutes: float = 5.0  # once this many minutes passed since the start or last save; 0: not by time

  def interval(self, eval_every: int) -> int:
    """``every_steps`` rounded up to a multiple of ``eval_every`` (0: no saves by steps).

    Examples:
      >>> Schedule(every_steps=120).interval(50), Schedule().interval(50)
      (150, 0)
    """
    if self.every_steps <= 0:
      return 0
    return math.ceil(self.every_steps / eval_every) * eval_every

  @property
  def off(self) -> bool:
    """Whether no checkpoint is ever written."""
    return self.every_steps <= 0 and self.minutes <= 0


def program_key(run_ids: Sequence[str]) -> str:
  """The name of a program's checkpoint folder: a hash of its run ids, in order.

  Examples:
    >>> program_key(["relu-s0-abc"]) == program_key(["relu-s0-abc"]) != program_key(["relu-s1-abc"])
    True
  """
  return hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:16]


def _stderr(message: str) -> None:
  """One line on stderr, below a progress bar if one is shown."""
  import tqdm

  tqdm.tqdm.write(message, file=sys.stderr)


class Restored(NamedTuple):
  """A program's state as a checkpoint held it."""

  step: int
  state: Any  # the RunState, its arrays with the shardings of the example given to restore
  record: dict[str, Any]  # what save was given besides the state (rows so far, seconds)


class Checkpoints:
  """A results folder's checkpoints: one :class:`ProgramCheckpoints` per program in flight.

  Create it only in the process that holds the folder's lock: it writes
  into ``<folder>/checkpoints``.

  Args:
    folder: the results folder.
    schedule: when to save.
    say: where the one-line notices go (resumed, damaged); default stderr.
  """

  def __init__(self, folder: str | os.PathLike, schedule: Schedule = Schedule(), *,
               say: Callable[[str], None] = _stderr):
    self.path = pathlib.Path(folder) / FOLDER
    self.schedule = schedule
    self.say = say

  @classmethod
  def of(cls, folder: str | os.PathLike, schedule: Schedule = Schedule()) -> Checkpoints | None:
    """The folder's checkpoints, or None where this process must not use them.

    Only a single-process job uses checkpoints: in a job of several processes
    a save would gather every process's state at the same step (a time-based
    one need not come at the same step everywhere), and a resume would need
    process 0's checkpoint on every host; not supported, so process 0 says so
    in one line and a killed job resumes from its finished programs.
    """
    if jax.process_count() > 1:
      if jax.process_index() == 0 and not schedule.off:
        _stderr("checkpoints: none in a job of several processes; a rerun resumes from the"
                " programs that finished.")
      return None
    return cls(folder, schedule)

  def program(self, run_ids: Sequence[str]) -> ProgramCheckpoints:
    """The checkpoints of the program that trains ``run_ids`` (in this order)."""
    return ProgramCheckpoints(self.path / program_key(run_ids), list(run_ids), self.schedule,
                              self.say)

  def finished(self, run_ids: Sequence[str]) -> None:
    """Deletes a program's checkpoints: call once its rows are safely written."""
    shutil.rmtree(self.path / program_key(run_ids), ignore_errors=True)
    self._remove_if_empty()

  def _remove_if_empty(self) -> None:
    try:
      self.path.rmdir()  # only if empty
    except OSError:
      pass

  def keep_only(self, programs: Iterable[Sequence[str]]) -> None:
    """Deletes the checkpoints of every program but ``programs`` (each given by its run ids).

    A rerun calls it with the programs still pending: checkpoints of programs
    that finished (or of another grouping of the runs) go.
    """
    keep = {program_key(run_ids) for run_ids in programs}
    if self.path.is_dir():
      for entry in self.path.iterdir():
        if entry.name not in keep:
          shutil.rmtree(entry, ignore_errors=True)
      self._remove_if_empty()


class ProgramCheckpoints:
  """Save, restore and delete one program's checkpoints (use :meth:`Checkpoints.program`)."""

  def __init__(self, path: pathlib.Path, run_ids: list[str], schedule: Schedule,
               say: Callable[[str], None]):
    self.path = path
    self.key = path.name
    self.run_ids = run_ids
    self.schedule = schedule
    self.say = say
    self._since = time.monotonic()  # the last save, or the program's start (restore)
    self._manager: Any = None

  def due(self, step: int, eval_every: int, steps: int) -> bool:
    """Whether to save after the evaluation at ``step`` of ``steps``."""
    if self.schedule.off or step >= steps:
      return False
    interval = self.schedule.interval(eval_every)
    if interval and step % interval == 0:
      return True
    return bool(self.schedule.minutes > 0
                and time.monotonic() - self._since >= 60 * self.schedule.minutes)

  def save(self, step: int, state: Any, record: dict[str, Any]) -> None:
    """Saves ``state`` (a pytree of arrays) and ``record`` (JSON-ready) as of ``step``.

    Blocks until the checkpoint is complete on disk (written to a temporary
    directory, then renamed); the oldest beyond two is deleted. A first
    Ctrl-C waits for the checkpoint and its file list to be whole
    (:func:`research.command.uninterrupted`).
    """
    import orbax.checkpoint as ocp

    leaves = jax.tree.leaves(state)
    stored = {str(number): _storable(leaf) for number, leaf in enumerate(leaves)}
    full = {"format": FORMAT, "program": self.key, "run_ids": self.run_ids, "step": step,
            "leaves": len(leaves), "devices": jax.device_count(), **record}
    manager = self._open()
    with uninterrupted():
      manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(stored), record=ocp.args.JsonSave(full)))
      manager.wait_until_finished()
      _write_manifest(self.path / str(step))
    self._since = time.monotonic()

  def restore(self, example: Any) -> Restored | None:
    """The latest readable checkpoint, its arrays shaped and sharded as ``example``'s.

    ``example`` is a state of the same program (e.g. freshly initialised).
    A checkpoint that cannot be read, or that another device count wrote,
    is reported in one line and deleted, and the one before it tried. None
    when none is left: the program starts afresh. Starts the clock of
    ``Schedule.minutes``: call it once the program is compiled.
    """
    self._since = time.monotonic()
    if not self.path.is_dir():
      return None
    import orbax.checkpoint as ocp

    manager = self._open()
    leaves, treedef = jax.tree.flatten(example)
    target = {str(number): _abstract(leaf) for number, leaf in enumerate(leaves)}
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        problem = _check_manifest(self.path / str(step))
        if problem is not None:
          raise _Unusable(problem)
        record = manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))[
            "record"]
        problem = self._mismatch(record, step, len(leaves))
        if problem is None:
          stored = manager.restore(step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(target)))["state"]
          restored = [_restored(stored[str(number)], leaf) for number, leaf in enumerate(leaves)]
          state = jax.tree.unflatten(treedef, restored)
      except _Unusable as error:
        problem = str(error)
      except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is skipped
        problem = f"it cannot be read ({type(error).__name__}: {_first_line(error)})"
      older = [s for s in manager.all_steps() if s < step]
      if problem is not None:
        then = f"using step {max(older)}'s" if older else "starting the program afresh"
        self.say(f"Checkpoint {self.path / str(step)} is unusable, {problem}; {then}.")
        manager.delete(step)
        continue
      self.say(f"Resumed program {self.key} at step {step} from its checkpoint"
               f" ({len(self.run_ids)} run(s)); training the steps after it.")
      self._since = time.monotonic()
      extra = {name: value for name, value in record.items()
               if name not in ("format", "program", "run_ids", "step", "leaves", "devices")}
      return Restored(step, state, extra)
    return None

  def delete(self) -> None:
    """Deletes every checkpoint of the program."""
    self.close()
    shutil.rmtree(self.path, ignore_errors=True)

  def close(self) -> None:
    """Releases Orbax's manager (its threads); the checkpoints stay."""
    if self._manager is not None:
      self._manager.close()
      self._manager = None

  def _mismatch(self, record: Any, step: int, leaves: int) -> str | None:
    """Why a checkpoint's record does not fit this program, or None."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
      return "its record is of another format"
    if record.get("run_ids") != self.run_ids or record.get("step") != step:
      return "its record names other runs or another step"
    if record.get("leaves") != leaves:
      return "its state has another structure"
    if record.get("devices") != jax.device_count():
      return f"it was written on {record.get('devices')} device(s), not {jax.device_count()}"
    return None

  def _open(self) -> Any:
    import orbax.checkpoint as ocp

    if self._manager is None:
      logging.getLogger("absl").setLevel(logging.WARNING)  # Orbax's INFO lines are not ours
      self._manager = ocp.CheckpointManager(
          self.path.absolute(), item_names=("state", "record"),
          options=ocp.CheckpointManagerOptions(
              max_to_keep=2, enable_async_checkpointing=False, create=True,
              cleanup_tmp_directories=True))
    return self._manager


MANIFEST = "files.json"


class _Unusable(Exception):
  """A checkpoint whose files are not those that were written."""


def _digest(path: pathlib.Path) -> str:
  digest = hashlib.blake2b(digest_size=16)
  with open(path, "rb") as file:
    while block := file.read(1 << 20):
      digest.update(block)
  return digest.hexdigest()


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(path for path in folder.rglob("*") if path.is_file() and path.name != MANIFEST)


def _write_manifest(folder: pathlib.Path) -> None:
  """Lists a finished checkpoint's files with their sizes and hashes (written atomically)."""
  listing = {str(path.relative_to(folder)): [path.stat().st_size, _digest(path)]
             for path in _files(folder)}
  atomic.write_text_atomic(folder / MANIFEST, json.dumps(listing))


def _check_manifest(folder: pathlib.Path) -> str | None:
  """Why a checkpoint's files differ from those its save wrote, or None."""
  if not (folder / MANIFEST).exists():
    return None  # killed between Orbax's rename and the list: Orbax's own checks remain
  try:
    listing = json.loads((folder / MANIFEST).read_text())
  except (OSError, ValueError):
    return f"its {MANIFEST} is damaged"
  for name, (size, digest) in listing.items():
    path = folder / name
    if not path.is_file():
      return f"{name} is missing"
    if path.stat().st_size != size:
      return f"{name} has {path.stat().st_size} bytes, not {size}"
    if _digest(path) != digest:
      return f"{name} has changed since it was written"
  return None


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return text[0][:200] if text else ""


def _storable(leaf: Any) -> Any:
  """A typed PRNG key as its raw uint32 data (Orbax stores plain arrays)."""
  leaf = leaf if isinstance(leaf, jax.Array) else np.asarray(leaf)
  return jax.random.key_data(leaf) if devices.is_random_key(leaf) else leaf


def _abstract(leaf: Any) -> Any:
  """The restore target of a leaf: its stored shape, dtype and sharding."""
  stored = _storable(leaf)
  sharding = getattr(stored, "sharding", None)
  return jax.ShapeDtypeStruct(stored.shape, stored.dtype, sharding=sharding)


def _restored(value: Any, example: Any) -> Any:
  """A restored leaf as ``example``'s kind: a typed key again where it was one."""
  if devices.is_random_key(example):
    return jax.random.wrap_key_data(value, impl=jax.random.key_impl(example))
  return value
