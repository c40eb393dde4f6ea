"""Experiments on surrogate activations: data, models, training and studies.

Built on the public API of :mod:`activations` only. The main job compares
activations with several seeds and confidence intervals::

    python -m research compare                       # the canonical comparison
    python -m research compare --help                # every flag

or from Python, ``research.compare(research.Config(...), out="results/mine")``.
"""

import sys

if sys.argv[:1] == ["-m"]:  # `python -m research`: a Ctrl-C during the imports below is one line too
  from research import command

  command.exit_at_once_on_interrupt()

from research.config import Config  # noqa: E402
from research.experiment import Comparison, compare  # noqa: E402

__all__ = ["Comparison", "Config", "compare"]
