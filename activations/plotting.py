"""Forward and backward curves of an activation, with matplotlib (optional)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from activations._core import backward_derivative
from activations.registry import get


def plot(
    activation: str | Callable[..., Any],
    *,
    x_min: float = -4.0,
    x_max: float = 4.0,
    num_points: int = 801,
    ax: Any = None,
    title: str | None = None,
) -> Any:
  """Plots ``f(x)`` and the derivative backprop uses, on one matplotlib axis.

  Args:
    activation: a registry spec such as ``"necro_relu"`` or a callable.
    x_min: left end of the plotted range.
    x_max: right end of the plotted range.
    num_points: points on the curve.
    ax: a matplotlib axis to draw on; a new figure if ``None``.
    title: the axis title; the spec or function name if ``None``.

  Returns:
    The matplotlib axis.

  Examples:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot("necro_relu")
    >>> ax.get_legend_handles_labels()[1]
    ['forward f(x)', 'backward g(x)']
  """
  try:
    import matplotlib.pyplot as plt
  except ImportError:
    raise ImportError(
        "activations.plot needs matplotlib: pip install matplotlib"
        " (or pip install 'surrogate-activations[research]')."
    ) from None
  if not x_min < x_max:
    raise ValueError(f"x_min must be below x_max, got {x_min} and {x_max}.")
  if num_points < 2:
    raise ValueError(f"num_points must be at least 2, got {num_points}.")
  fn = get(activation)
  x = jnp.linspace(x_min, x_max, num_points)
  if ax is None:
    _, ax = plt.subplots(figsize=(4.5, 3.2))
  ax.plot(x, fn(x), label="forward f(x)")
  ax.plot(x, backward_derivative(fn)(x), "--", label="backward g(x)")
  ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
  ax.set_xlabel("x")
  ax.set_title(title or (activation if isinstance(activation, str) else getattr(fn, "__name__", "")))
  ax.legend(frameon=False)
  return ax
