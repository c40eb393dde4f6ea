#!/usr/bin/env python3
"""Runs the project's jobs in a virtual environment it makes on first use.

    python3 dev.py compare [flags]    the main job: python -m research compare
    python3 dev.py test [pytest args]  the test suite
    python3 dev.py python [args]       the environment's Python

Only python3 and pip are needed: the first call creates ``.venv`` and installs
the project with its ``research`` and ``test`` extras (a few minutes); later
calls reuse it, reinstalling only when ``pyproject.toml`` changes. Set
``SURROGATE_EXTRAS`` (e.g. ``research,test,cuda``) to install other extras.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import venv

ROOT = pathlib.Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / "installed-from"


def _ensure_environment() -> None:
  extras = os.environ.get("SURROGATE_EXTRAS", "research,test")
  wanted = hashlib.sha256(
      (ROOT / "pyproject.toml").read_bytes() + extras.encode()
  ).hexdigest()
  if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
    return
  if not PYTHON.exists():
    print(f"dev.py: creating a virtual environment in {VENV}", flush=True)
    venv.EnvBuilder(with_pip=True).create(VENV)
  print(f"dev.py: installing surrogate-activations[{extras}] (first run: a few minutes)", flush=True)
  subprocess.run(
      [str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True
  )
  subprocess.run(
      [str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f".[{extras}]"],
      cwd=ROOT,
      check=True,
  )
  STAMP.write_text(wanted)


COMMANDS = {
    "compare": ["-m", "research", "compare"],
    "test": ["-m", "pytest", "-n", "auto", "--dist", "worksteal"],  # long tests leave no core idle
    "python": [],
}


def main(argv: list[str]) -> int:
  if not argv or argv[0] not in COMMANDS:
    print(__doc__)
    return 2
  _ensure_environment()
  command = [str(PYTHON), *COMMANDS[argv[0]], *argv[1:]]
  return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
