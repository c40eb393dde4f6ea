"""Files replaced all at once or not at all: what every results file is written with.

A kill, a full disk or Ctrl-C in the middle of a write leaves the old file (or
none), never half of the new one.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


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
  sync_folder(path.parent)


def sync_folder(folder: pathlib.Path) -> None:
  """Makes a rename in ``folder`` durable where the platform allows it (POSIX)."""
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
