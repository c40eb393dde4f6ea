"""Statistics over seeds: pure functions, tested against scipy.

A run is one draw (one seed); a configuration's runs are a sample. The summary
reports each mean with a Student t interval, and compares a configuration with
the baseline seed by seed: the same seed gives the same initialisation and
batches, so the paired difference removes most of the seed-to-seed noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # of every interval in the summaries


def check_confidence(confidence: float) -> None:
  """Raises a ``ValueError`` unless ``0 < confidence < 1``."""
  if not 0 < confidence < 1:
    raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}.")


def mean_confidence_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float]:
  """The mean of ``values`` and the half width of its Student t interval.

  The interval is ``mean ± t((1 + confidence) / 2, n - 1) * s / sqrt(n)``, with
  ``s`` the sample standard deviation (``ddof=1``): it assumes the values are
  independent draws (e.g. one per seed) from a roughly normal distribution.

  Args:
    values: the sample, e.g. one final accuracy per seed.
    confidence: the coverage of the interval, in (0, 1).

  Returns:
    ``(mean, half_width)``. The half width is NaN for fewer than two values
    (no spread to estimate); both are NaN for no values.

  Examples:
    >>> mean, half_width = mean_confidence_interval([1, 2, 3, 4])
    >>> mean, round(half_width, 6)  # 3.182446 * 1.290994 / 2
    (2.5, 2.054260)
    >>> mean_confidence_interval([0.7])
    (0.7, nan)
  """
  check_confidence(confidence)
  sample = np.asarray(values, dtype=np.float64)
  if sample.ndim != 1:
    raise ValueError(f"values must be a flat sequence of numbers, got shape {sample.shape}.")
  if sample.size == 0:
    return math.nan, math.nan
  with np.errstate(invalid="ignore"):  # an inf among the values gives NaN, quietly
    mean = float(sample.mean())
    if sample.size < 2:
      return mean, math.nan
    spread = float(sample.std(ddof=1))
  quantile = float(stats.t.ppf((1 + confidence) / 2, sample.size - 1))
  return mean, quantile * spread / math.sqrt(sample.size)


class PairedComparison(NamedTuple):
  """A treatment against a baseline over the seeds both have.

  Attributes:
    num_pairs: seeds present in both.
    mean_difference: mean of ``treatment - baseline`` over those seeds.
    half_width: half width of the t interval of that mean (NaN below 2 pairs).
    p_value: two-sided paired t-test, :func:`scipy.stats.ttest_rel`; NaN below 2
      pairs, and NaN when every difference is the same (zero variance: there
      is no t statistic, see ``computable``).
    wins: pairs where the treatment is better: higher, or lower when lower is
      better. Ties are not wins.
  """

  num_pairs: int
  mean_difference: float
  half_width: float
  p_value: float
  wins: int

  @property
  def computable(self) -> bool:
    """Whether the t-test has a statistic: two pairs or more, differences that vary."""
    return not math.isnan(self.p_value)


def paired_comparison(
    treatment: Mapping[int, float],
    baseline: Mapping[int, float],
    confidence: float = CONFIDENCE,
    *,
    higher_is_better: bool = True,
) -> PairedComparison:
  """Compares two configurations seed by seed.

  Args:
    treatment: final metric by seed.
    baseline: final metric by seed of the configuration compared against.
    confidence: the coverage of the interval of the mean difference.
    higher_is_better: False for a loss: then a win is a lower value.

  Returns:
    A :class:`PairedComparison` over the seeds both mappings have.

  Examples:
    >>> result = paired_comparison({0: 0.70, 1: 0.72, 2: 0.69, 3: 0.75},
    ...                            {0: 0.68, 1: 0.71, 2: 0.70, 3: 0.71, 4: 0.99})
    >>> result.num_pairs, round(result.mean_difference, 4), result.wins
    (4, 0.015, 3)
    >>> round(result.p_value, 4)
    0.2452
  """
  seeds = sorted(set(treatment) & set(baseline))
  treated = np.array([treatment[seed] for seed in seeds], dtype=np.float64)
  control = np.array([baseline[seed] for seed in seeds], dtype=np.float64)
  mean_difference, half_width = mean_confidence_interval(treated - control, confidence)
  p_value = math.nan
  differences = treated - control
  if len(seeds) >= 2 and np.all(np.isfinite(differences)) and np.ptp(differences) > 0:
    # Identical differences have zero variance and no t statistic (scipy
    # would give p = 0 for equal non-zero ones): p stays NaN, not computable.
    p_value = float(stats.ttest_rel(treated, control).pvalue)
  better = treated > control if higher_is_better else treated < control
  return PairedComparison(
      num_pairs=len(seeds),
      mean_difference=mean_difference,
      half_width=half_width,
      p_value=p_value,
      wins=int(np.sum(better)),
  )


def wilson(successes: int, trials: int) -> tuple[float, float]:
  """The 95% Wilson interval of a binomial proportion.

  Examples:
    >>> [round(v, 3) for v in wilson(9, 10)]
    [0.596, 0.982]
  """
  interval = stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
  return float(interval.low), float(interval.high)
