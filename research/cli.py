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

import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import tyro

from research import devices, distributed
from research.bench.config import BenchConfig
from research.command import ParseErrors, command_line, run_command
from research.config import Config
from research.run_options import RunOptions

DESCRIPTION = "Experiments on surrogate activations. `compare` runs the main job."


def compare_command(default: Config | None = None) -> Callable[..., int]:
  """The ``compare`` subcommand, its flags' defaults taken from ``default`` (a preset)."""

  def compare(
      config: Annotated[Config, tyro.conf.arg(name="")] = default or Config(),
      out: str = "", quiet: bool = False, preset: str = "",
      options: Annotated[RunOptions, tyro.conf.arg(name="")] = RunOptions(),
  ) -> int:
    """Compare activations: every activation x seed x learning rate, with metrics.

    Args:
      config: the experiment.
      out: output folder; empty means results/compare-<timestamp>. Rerunning with the same folder resumes.
      quiet: no progress bar and no line per finished program (the table is still printed).
      preset: start from a named configuration, the other flags overriding it: sugar-cifar100-vgg16, sugar-cifar100-resnet18 (see research.presets).
      options: how the command runs, never what it computes (research.run_options).
    """
    from research import experiment, summary, tensorboard

    del preset  # applied to the defaults before parsing (main)

    def work() -> None:
      distributed.join(options.processes())  # before JAX computes anything
      if options.tensorboard:
        tensorboard.require()  # before the data is loaded
      comparison = experiment.run(
          experiment.prepare(config, out or None), quiet=quiet or not devices.writes_results(),
          command=command_line(), checkpoints=options.checkpoints(),
          tensorboard=options.tensorboard,
      )
      if not devices.writes_results():
        print(distributed.done_line())
        return
      if quiet:
        print(summary.plain_table(comparison.findings.tables[0].frame))
      print(f"\nResults: {comparison.out}/")

    return distributed.run(lambda: run_command(work, out=out))

  return compare


compare = compare_command()


def _preset_default(argv: Sequence[str]) -> Config | None:
  """The config of ``--preset NAME`` in ``argv`` (compare only), to serve as the defaults."""
  if not argv or argv[0] != "compare":
    return None
  for index, arg in enumerate(argv):
    if arg.startswith("--preset="):
      name = arg.split("=", 1)[1]
    elif arg == "--preset" and index + 1 < len(argv):
      name = argv[index + 1]
    else:
      continue
    from research import presets

    return presets.preset(name) if name else None
  return None


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


def commands(default: Config | None = None) -> dict[str, Callable[..., Any]]:
  """Every subcommand: compare (its defaults from ``default``), each study, report, bench."""
  from research import studies

  return {"compare": compare_command(default), **studies.commands(), "report": report,
          "bench": bench}


def main(argv: Sequence[str] | None = None) -> int:
  """Parses ``argv``, runs the subcommand and returns the exit status."""
  devices.use_every_cpu_core()  # before JAX starts its CPU backend
  arguments = list(sys.argv[1:] if argv is None else argv)
  try:
    default = _preset_default(arguments)
  except ValueError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  parsing = ParseErrors()
  wrapped = {name: parsing.wrap(command) for name, command in commands(default).items()}
  return parsing.run(lambda: tyro.extras.subcommand_cli_from_dict(
      wrapped, prog="python -m research", args=arguments, description=DESCRIPTION))
