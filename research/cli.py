"""The command line, derived from the config dataclasses by tyro.

``python -m research compare --help`` lists every flag of
:class:`research.config.Config` with its default and the comment beside it.
Bad flags and bad values fail before any training, naming the valid choices.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import tyro

from research import devices
from research.config import Config

SUBCOMMANDS = {"compare": Config}
DESCRIPTION = "Experiments on surrogate activations. `compare` runs the main job."


def main(argv: Sequence[str] | None = None) -> int:
  """Parses ``argv``, runs the subcommand and returns the exit status."""
  devices.use_every_cpu_core()  # before JAX starts its CPU backend
  from research import experiment

  config = tyro.extras.subcommand_cli_from_dict(
      SUBCOMMANDS, prog="python -m research", args=argv, description=DESCRIPTION
  )
  try:
    prepared = experiment.prepare(config)
  except (ValueError, ImportError, FileNotFoundError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  experiment.main_from_cli(prepared)
  return 0
