"""The command line, derived from the config dataclasses by tyro.

``python -m research compare --help`` lists every flag of
:class:`research.config.Config` with its default and the comment beside it,
then the command's own ``--out`` and ``--quiet``. Bad flags and bad values
fail before any training, naming the valid choices; a folder that cannot be
written, or a disk that fills up, ends in one line, not a traceback.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import Annotated

import tyro

from research import devices
from research.config import Config

DESCRIPTION = "Experiments on surrogate activations. `compare` runs the main job."


def compare(
    config: Annotated[Config, tyro.conf.arg(name="")], out: str = "", quiet: bool = False
) -> int:
  """Compare activations: every activation x seed x learning rate, with metrics.

  Args:
    config: the experiment.
    out: output folder; empty means results/compare-<timestamp>. Rerunning with the same folder resumes.
    quiet: no progress bar (the table is still printed).
  """
  from research import experiment, summary  # after XLA_FLAGS is set, before JAX starts

  command = "python -m research " + shlex.join(sys.argv[1:] or ["compare"])
  try:
    prepared = experiment.prepare(config, out or None)
  except (ValueError, ImportError, FileNotFoundError, RuntimeError) as error:
    return _fail(error, status=2)
  except OSError as error:
    return _fail(f"cannot write the output folder {out or '(default)'!r}: {error}", status=2)
  try:
    comparison = experiment.run(prepared, quiet=quiet, command=command)
  except OSError as error:
    return _fail(
        f"could not write results to '{prepared.folder.path}': {error}. The runs finished"
        " before this are kept; rerun the same command to resume.", status=1,
    )
  if quiet:
    print(summary.summary_table(comparison.runs))
  print(f"\nResults: {comparison.out}/")
  return 0


def _fail(error: object, *, status: int) -> int:
  print(f"error: {error}", file=sys.stderr)
  return status


COMMANDS = {"compare": compare}


def main(argv: Sequence[str] | None = None) -> int:
  """Parses ``argv``, runs the subcommand and returns the exit status."""
  devices.use_every_cpu_core()  # before JAX starts its CPU backend
  return tyro.extras.subcommand_cli_from_dict(
      COMMANDS, prog="python -m research", args=argv, description=DESCRIPTION
  )
