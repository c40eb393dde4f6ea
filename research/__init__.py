"""Experiments on surrogate activations: data, models, training and studies.

Built on the public API of :mod:`activations` only. The main job compares
activations with several seeds and confidence intervals::

    python -m research compare                       # the canonical comparison
    python -m research compare --help                # every flag

or from Python, ``research.compare(research.Config(...), out="results/mine")``.
"""

from research.config import Config
from research.experiment import Comparison, compare

__all__ = ["Comparison", "Config", "compare"]
