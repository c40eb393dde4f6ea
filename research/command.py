"""Running a command-line job: one line for a user's mistake, never a traceback.

Every subcommand of ``python -m research`` (``compare``, each study, ``bench``,
``report``) runs its work through :func:`run_command`: a bad value, a missing
package, a busy or unwritable folder, or a disk that fills up ends in one line
on stderr and an exit status, and finished work is kept.
"""

from __future__ import annotations

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
