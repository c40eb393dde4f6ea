"""Running a command-line job: one line for a user's mistake, never a traceback.

Every subcommand of ``python -m research`` (``compare``, each study, ``bench``,
``report``) runs its work through :func:`run_command`: a bad value, a missing
package, a busy or unwritable folder, or a disk that fills up ends in one line
on stderr and an exit status, and finished work is kept.
"""

from __future__ import annotations

import functools
import io
import shlex
import sys
from collections.abc import Callable
from typing import Any

from research import results


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
  finished is kept; rerunning the same command resumes).

  Examples:
    >>> def bad():
    ...   raise ValueError("steps must be a positive integer, got 0.")
    >>> run_command(bad)
    2
  """
  try:
    work()
  except results.ResultsWriteError as error:
    return _fail(
        f"could not write results to '{error.folder}': {error.__cause__}. The runs finished"
        " before this are kept; rerun the same command to resume.", status=1,
    )
  except (ValueError, ImportError, FileNotFoundError, results.FolderBusy) as error:
    return _fail(error, status=2)
  except OSError as error:
    return _fail(f"cannot use the output folder {out or '(default)'!r}: {error}", status=2)
  return 0


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
