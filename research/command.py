"""Running a command-line job: one line for a user's mistake, never a traceback.

Every subcommand of ``python -m research`` (``compare``, each study, ``bench``,
``report``) runs its work through :func:`run_command`: a bad value, a missing
package, a busy or unwritable folder, or a disk that fills up ends in one line
on stderr and an exit status, and finished work is kept.

Ctrl-C is one of these: the command stops, says in one line which finished
runs are kept where, and exits with status 130 (:func:`interrupted`). Python
raises ``KeyboardInterrupt`` only between bytecodes of the main thread, and
loses it when it lands in a garbage-collector callback (JAX installs one), so
:func:`run_command` takes Ctrl-C itself: the work checks for one between
chunks and programs (:func:`check_interrupt`), writes finish first
(:func:`uninterrupted`), and on the command line a watchdog ends a main thread
that is stuck in one long XLA call (:func:`exit_at_once_on_interrupt`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import pathlib
import shlex
import signal
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

from research import atomic, csv_rows, results


def command_line() -> str:
  """The command as the user typed it (``python -m research ...``), for the record.

  From Python (a notebook, a test) there is no such command: then it says so.
  """
  main = sys.argv[0] if sys.argv else ""
  if main.replace("\\", "/").endswith(("research/__main__.py", "research/cli.py")):
    return "python -m research " + shlex.join(sys.argv[1:])
  return "(called from Python)"


def run_command(work: Callable[[], Any], *, out: str = "") -> int:
  """Runs ``work()`` and turns the errors a user can cause into one line.

  Returns 0 on success, 2 for a bad input or a folder that cannot be used
  (nothing was trained), 1 for a failure while writing results (what was
  finished is kept; rerunning the same command resumes), and 130 for Ctrl-C
  (:func:`interrupted`: the finished runs are kept, rerunning resumes).

  Examples:
    >>> def bad():
    ...   raise ValueError("steps must be a positive integer, got 0.")
    >>> run_command(bad)
    2
    >>> def stopped():
    ...   raise KeyboardInterrupt
    >>> run_command(stopped)
    130
  """
  with _handling_interrupts():
    _state.progress = _Progress()
    try:
      work()
      check_interrupt()  # a Ctrl-C that a garbage-collector callback swallowed
    except BaseException as error:  # noqa: BLE001  (what is not a user's error is raised again)
      # A Ctrl-C that a library turned into an error of its own is still a Ctrl-C.
      if isinstance(error, KeyboardInterrupt) or (_state.installed and _state.pending):
        return interrupted()
      return _status(error, out)
  return 0


def _status(error: BaseException, out: str) -> int:
  """The exit status of a user's error, after its one line; anything else is raised."""
  if isinstance(error, results.ResultsWriteError):
    return _fail(
        f"could not write results to '{error.folder}': {error.__cause__}. The runs finished"
        " before this are kept; rerun the same command to resume.", status=1,
    )
  if isinstance(error, (ValueError, ImportError, FileNotFoundError, results.FolderBusy)):
    return _fail(error, status=2)
  if isinstance(error, OSError):
    return _fail(f"cannot use the output folder {out or '(default)'!r}: {error}", status=2)
  raise error


# The status a shell gives a command that Ctrl-C stopped: 128 + SIGINT.
INTERRUPTED = 130
# How long the main thread may take to stop after Ctrl-C before the command
# line ends without it: Python runs a signal handler only between bytecodes,
# never inside one long XLA compilation or training chunk.
EXIT_WITHIN_SECONDS = 1.0


@dataclasses.dataclass
class _Progress:
  """What a Ctrl-C leaves behind, for its one line (:func:`record_progress`)."""

  folder: pathlib.Path | None = None
  finished: int = 0  # runs the folder holds
  total: int = 0  # runs the command trains


@dataclasses.dataclass
class _Interrupts:
  """Ctrl-C while a command runs: one record per process, as signals are."""

  installed: bool = False  # _on_interrupt is SIGINT's handler
  working: int = 0  # nested run_command() calls
  presses: int = 0  # Ctrl-Cs since it was installed
  pending: bool = False  # a Ctrl-C came; its KeyboardInterrupt may have been lost
  deferred: int = 0  # nested uninterrupted() blocks
  stopping: bool = False  # the line is being written: more Ctrl-Cs change nothing
  exit_at_once: bool = False  # the command line: the process ends with the line
  progress: _Progress = dataclasses.field(default_factory=_Progress)
  claim: threading.Lock = dataclasses.field(default_factory=threading.Lock)  # who writes the line


_state = _Interrupts()


def record_progress(folder: str | os.PathLike, finished: int, total: int) -> None:
  """Notes that ``folder`` holds ``finished`` of the command's ``total`` runs, for Ctrl-C's line.

  Examples:
    >>> record_progress("results/x", 4, 9)
    >>> interrupted_line()
    "interrupted: 4 of 9 runs are finished and kept in 'results/x'; rerun the same command to resume."
  """
  _state.progress = _Progress(pathlib.Path(folder), finished, total)


def interrupted_line() -> str:
  """The line a command stopped by Ctrl-C ends with: what is kept where, and how to go on."""
  progress = _state.progress
  if progress.folder is None:
    return "interrupted before any results were written; rerun the same command to start again."
  if progress.finished < progress.total:
    return (f"interrupted: {progress.finished} of {progress.total} runs are finished and kept in"
            f" '{progress.folder}'; rerun the same command to resume.")
  return (f"interrupted while writing the summary and plots: all {progress.total} runs are kept"
          f" in '{progress.folder}'; rerun the same command to write them.")


def interrupted() -> int:
  """Ends a command stopped by Ctrl-C: one line on stderr, status 130.

  On the command line (:func:`exit_at_once_on_interrupt`) the process ends
  here, without waiting for compilations still running in other threads.
  """
  _state.stopping = True
  if not _state.claim.acquire(blocking=not _state.exit_at_once):
    while True:  # the watchdog is writing the line and ending the process
      time.sleep(1)
  try:
    _write_line()
    if _state.exit_at_once:
      _exit_now(INTERRUPTED)
  finally:
    _state.claim.release()  # from Python: later commands run in this process
  return INTERRUPTED


def _write_line() -> None:
  # The process's own stderr on the command line: while the flags are parsed
  # sys.stderr is a buffer (ParseErrors).
  stream = sys.__stderr__ if _state.exit_at_once and sys.__stderr__ else sys.stderr
  try:
    terminal = stream.isatty()
  except (AttributeError, ValueError):
    terminal = False
  # On a terminal, below the echoed ^C and the progress bar.
  print(("\n" if terminal else "") + interrupted_line(), file=stream)


def check_interrupt() -> None:
  """Raises ``KeyboardInterrupt`` if a Ctrl-C came while a command ran and was not raised.

  Called between chunks and programs: a Ctrl-C whose exception Python lost
  (in a garbage-collector callback) or that a write held back stops the
  command there. Does nothing outside :func:`run_command`.

  Examples:
    >>> check_interrupt()  # no Ctrl-C: nothing happens
  """
  if _state.installed and _state.pending:
    raise KeyboardInterrupt


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
  """A block that a first Ctrl-C does not cut: it takes effect at the block's end.

  For writes that must be whole, such as a program's rows in four files; a
  second Ctrl-C stops at once. Outside :func:`run_command` Ctrl-C raises as
  usual.

  Examples:
    >>> with uninterrupted():
    ...   print("written whole")
    written whole
  """
  _state.deferred += 1
  try:
    yield
  finally:
    _state.deferred -= 1
  check_interrupt()


def _on_interrupt(signum: int, frame: types.FrameType | None) -> None:
  """SIGINT's handler while a command runs: KeyboardInterrupt, but not inside a write."""
  del signum
  _state.presses += 1
  _state.pending = True
  if _state.stopping:
    return
  if _state.exit_at_once and not _state.working:
    interrupted()  # importing, parsing flags: nothing to finish, the process ends here
  if _state.presses == 1 and (_state.deferred or _inside(_writes(), frame)):
    return  # raised at the next check_interrupt(); on the command line the watchdog exits
  raise KeyboardInterrupt


@functools.cache
def _writes() -> frozenset[types.CodeType]:
  """What a first Ctrl-C does not cut: the results' atomic writes and appends, and :func:`_cache_writes`."""
  codes = {atomic.write_bytes_atomic.__code__, csv_rows.append_rows.__code__}
  return frozenset(codes | _cache_writes())


@functools.cache
def _cache_writes() -> frozenset[types.CodeType]:
  """What even a second Ctrl-C does not cut: JAX's compilation cache writing an entry.

  A half-written entry would be read, and warned about, on every later run.
  """
  try:
    from jax._src import compiler  # a private function of JAX's: protected where it exists

    return frozenset({compiler._cache_write.__code__})
  except (ImportError, AttributeError):
    return frozenset()


def _inside(codes: frozenset[types.CodeType], frame: types.FrameType | None) -> bool:
  """Whether ``frame`` or one of its callers runs one of ``codes``."""
  while frame is not None:
    if frame.f_code in codes:
      return True
    frame = frame.f_back
  return False


def _any_thread_inside(codes: frozenset[types.CodeType]) -> bool:
  return any(_inside(codes, frame) for frame in sys._current_frames().values())


def _quiet_about_interrupts(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
  """``sys.unraisablehook`` that keeps a lost KeyboardInterrupt pending, not printed.

  A Ctrl-C raised inside a garbage-collector callback (JAX's) or a
  ``__del__`` cannot propagate: Python would print a multi-line "Exception
  ignored" and go on. :func:`check_interrupt` or the watchdog stops instead.
  """

  def hook_quietly(arguments: Any) -> None:
    if arguments.exc_type is not None and issubclass(arguments.exc_type, KeyboardInterrupt):
      _state.pending = True
      return
    hook(arguments)

  return hook_quietly


def _install() -> Callable[[], None] | None:
  """Makes :func:`_on_interrupt` SIGINT's handler; returns how to undo it.

  None where it already is, or cannot be (outside the main thread).
  """
  if _state.installed or threading.current_thread() is not threading.main_thread():
    return None
  previous_handler = signal.signal(signal.SIGINT, _on_interrupt)
  previous_hook = sys.unraisablehook
  sys.unraisablehook = _quiet_about_interrupts(previous_hook)
  _state.installed, _state.presses, _state.pending, _state.stopping = True, 0, False, False

  def undo() -> None:
    signal.signal(signal.SIGINT, previous_handler)
    sys.unraisablehook = previous_hook
    _state.installed = False

  return undo


@contextlib.contextmanager
def _handling_interrupts() -> Iterator[None]:
  """The block with :func:`_on_interrupt` as SIGINT's handler."""
  undo = _install()
  _state.working += 1
  try:
    yield
  finally:
    _state.working -= 1
    if undo is not None:
      undo()


def exit_at_once_on_interrupt() -> None:
  """For ``python -m research``: Ctrl-C ends the process within about a second, in one line.

  Installs the handler for the process's lifetime, and a watchdog thread
  woken by the signal itself (:func:`signal.set_wakeup_fd`: the C handler
  writes to it even while the main thread is inside XLA). If the main thread
  has not stopped within :data:`EXIT_WITHIN_SECONDS` (time a write is given
  to finish), or at a second Ctrl-C, the watchdog writes the line and ends
  the process with status 130. The results folder's lock is an ``flock``,
  which the system releases with the process. Not for library use: it exits.
  """
  if _state.exit_at_once or _install() is None:
    return
  _state.exit_at_once = True
  reader, writer = socket.socketpair()
  writer.setblocking(False)
  signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
  threading.Thread(target=_watch, args=(reader, writer), name="Ctrl-C watchdog",
                   daemon=True).start()


def _watch(reader: socket.socket, writer: socket.socket) -> None:
  """The watchdog of :func:`exit_at_once_on_interrupt` (it holds ``writer`` open)."""
  del writer
  presses = 0
  while not presses:
    presses = reader.recv(64).count(signal.SIGINT)
  reader.settimeout(0.02)
  deadline = time.monotonic() + EXIT_WITHIN_SECONDS
  while not _state.stopping:
    with contextlib.suppress(TimeoutError):
      presses += reader.recv(64).count(signal.SIGINT)
    if presses < 2 and (_state.deferred or _any_thread_inside(_writes())):
      deadline = max(deadline, time.monotonic() + 0.1)  # the main thread stops after the write
    if (presses >= 2 or time.monotonic() >= deadline) and _state.claim.acquire(blocking=False):
      _state.stopping = True
      with contextlib.suppress(Exception):
        _write_line()
      _exit_now(INTERRUPTED)


def _exit_now(status: int) -> None:
  """Ends the process now, without waiting for compilations in other threads."""
  deadline = time.monotonic() + 10
  while _any_thread_inside(_cache_writes()) and time.monotonic() < deadline:
    time.sleep(0.01)
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(Exception):
      stream.flush()
  os._exit(status)


def _fail(error: object, *, status: int) -> int:
  print(f"error: {error}", file=sys.stderr)
  return status


class ParseErrors:
  """Turns tyro's boxed parse errors (``--seeds abc``, ``--bogus``) into one line.

  While the command line is parsed, stderr goes to a buffer; each command,
  wrapped by :meth:`wrap`, gets the real stderr back before it runs (its
  progress bars and errors are its own). A parse error then ends in one
  line naming the flag and what it takes, with exit status 2.

  Examples:
    >>> box = ("╭─ Value error ───╮\\n│ Error parsing --seeds: invalid literal for int()"
    ...        " with base 10: 'abc' │\\n│ ─── │\\n│ Argument helptext: │\\n│     --seeds INT │\\n╰───╯")
    >>> ParseErrors.one_line(box)
    "Error parsing --seeds: invalid literal for int() with base 10: 'abc' (--seeds takes INT). See --help."
  """

  def __init__(self) -> None:
    self.buffer = io.StringIO()
    self.stderr = sys.stderr

  def wrap(self, command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with the real stderr restored when it starts."""

    @functools.wraps(command)
    def restored(*args: Any, **kwargs: Any) -> Any:
      sys.stderr = self.stderr
      return command(*args, **kwargs)

    return restored

  def run(self, parse_and_run: Callable[[], int]) -> int:
    """``parse_and_run()``, its parse errors in one line (status 2)."""
    sys.stderr = self.buffer
    try:
      return parse_and_run()
    except SystemExit as exit_info:
      text = self.buffer.getvalue()
      if exit_info.code in (0, None) or not text.strip():
        raise
      sys.stderr = self.stderr
      return _fail(self.one_line(text), status=2)
    finally:
      if sys.stderr is self.buffer:
        sys.stderr = self.stderr

  @staticmethod
  def one_line(text: str) -> str:
    """The message of a tyro error box, with the flag's usage or the flags it suggests."""
    sections, current = [], []
    for line in text.splitlines():  # a Unicode box, or an ASCII one where stderr is not UTF-8
      if line.strip().startswith(("╭", "╰", "+")):
        continue
      content = line.strip().strip("│|").strip()
      if content and set(content) <= set("─-"):
        sections.append(current)
        current = []
      elif content:
        current.append(content)
    sections.append(current)
    if not text.lstrip().startswith(("╭", "+")) and len(sections) > 1:
      sections = sections[1:]  # without a box (no terminal), the title is a section of its own
    if not sections[0]:
      return text.strip()
    message = " ".join(sections[0]).rstrip(".")
    for section in sections[1:]:
      flags = [line.split()[0] if section[0] == "Argument helptext:" else line
               for line in section[1:] if line.startswith("-")]
      if section[0] == "Argument helptext:" and section[1:]:
        usage = section[1].split()
        message += f" ({usage[0]} takes {' '.join(usage[1:]) or 'no value'})"
      elif section[0] == "Perhaps you meant:" and flags:
        message += f"; perhaps you meant {' or '.join(flags[:3])}"
    return f"{message}. See --help."
