"""The command line, derived from the config dataclasses by tyro.

``python -m research compare --help`` lists every flag of
:class:`research.config.Config` with its default and the comment beside it,
then the command's own ``--out`` and ``--quiet``. Each study in
:mod:`research.studies` adds its subcommand the same way. Bad flags and bad
values fail before any training, naming the valid choices; a folder that
cannot be written, or a disk that fills up, ends in one line, not a traceback
(:func:`research.command.run_command`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import tyro

from research import devices
from research.command import command_line, run_command
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
  from research import experiment, summary

  def work() -> None:
    comparison = experiment.run(
        experiment.prepare(config, out or None), quiet=quiet, command=command_line()
    )
    if quiet:
      print(summary.summary_table(comparison.runs))
    print(f"\nResults: {comparison.out}/")

  return run_command(work, out=out)


def commands() -> dict[str, Callable[..., Any]]:
  """Every subcommand: compare, then each study's and tool's (found by module)."""
  from research import studies

  return {"compare": compare, **studies.commands()}


def main(argv: Sequence[str] | None = None) -> int:
  """Parses ``argv``, runs the subcommand and returns the exit status."""
  devices.use_every_cpu_core()  # before JAX starts its CPU backend
  return tyro.extras.subcommand_cli_from_dict(
      commands(), prog="python -m research", args=argv, description=DESCRIPTION
  )
