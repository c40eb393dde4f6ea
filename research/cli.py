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
from research.bench.config import BenchConfig
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


def report(
    folders: tyro.conf.Positional[tuple[str, ...]], out: str = "", title: str = "Findings"
) -> int:
  """Write one Markdown document from results folders (compare or any study).

  Args:
    folders: results folders, e.g. results/compare-20260101-120000 results/dying.
    out: the file to write (e.g. FINDINGS.md); empty prints it.
    title: the document's heading.
  """
  from research import report as report_lib

  def work() -> None:
    text = report_lib.report(folders, out=out or None, title=title, command=command_line())
    print(f"Wrote {out}" if out else text, end="\n" if out else "")

  return run_command(work, out=out)


def bench(options: Annotated[BenchConfig, tyro.conf.arg(name="")]) -> int:
  """Speed and memory: activations vs relu, grids, the main job, PyTorch (BENCHMARKS.md).

  Args:
    options: what to measure; --quick for a CPU-sized run of a few minutes.
  """
  from research import bench as bench_lib

  def work() -> None:
    bench_lib.run(options)

  return run_command(work, out=options.out)


def commands() -> dict[str, Callable[..., Any]]:
  """Every subcommand: compare, each study (found by module), then report."""
  from research import studies

  return {"compare": compare, **studies.commands(), "report": report, "bench": bench}


def main(argv: Sequence[str] | None = None) -> int:
  """Parses ``argv``, runs the subcommand and returns the exit status."""
  devices.use_every_cpu_core()  # before JAX starts its CPU backend
  return tyro.extras.subcommand_cli_from_dict(
      commands(), prog="python -m research", args=argv, description=DESCRIPTION
  )
