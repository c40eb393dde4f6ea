"""The Optax optimizer of a run: SGD, momentum, Nesterov, Adam, AdamW, with schedules.

Every schedule has peak 1 and the run's learning rate is applied last
(``optax.scale``), so a traced learning rate (one per run of a grid) never
reaches Optax's schedule code. ``l2_penalty`` adds ``l2_penalty * params`` to
the gradient before the optimizer: the coupled weight decay of PyTorch's SGD
and of the CIFAR recipes (``weight_decay`` stays AdamW's decoupled one).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import optax
from jax import Array

from research import choices

Optimizer = Literal["sgd", "momentum", "nesterov", "adam", "adamw"]
Schedule = Literal["constant", "cosine", "warmup_cosine", "multistep"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)


def schedule(settings: Any) -> optax.Schedule | float:
  """The learning-rate multiplier over the steps, peak 1.

  Examples:
    >>> from types import SimpleNamespace
    >>> rates = schedule(SimpleNamespace(schedule="multistep", steps=100, milestones=(0.5, 0.75),
    ...                                  decay_factor=0.1))
    >>> [round(float(rates(step)), 4) for step in (49, 50, 74, 75)]
    [1.0, 0.1, 0.1, 0.01]
  """
  if settings.schedule == "cosine":
    return optax.cosine_decay_schedule(1.0, settings.steps)
  if settings.schedule == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(
        0.0, 1.0, max(1, settings.steps // 20), settings.steps)
  if settings.schedule == "multistep":
    boundaries: dict[int, float] = {}
    for fraction in settings.milestones:
      step = round(fraction * settings.steps)
      boundaries[step] = boundaries.get(step, 1.0) * settings.decay_factor
    return optax.piecewise_constant_schedule(1.0, boundaries)
  return 1.0


def make_optimizer(settings: Any, learning_rate: Array) -> optax.GradientTransformation:
  """The Optax optimizer for one run; ``learning_rate`` may be a traced array.

  ``settings`` is a :class:`research.config.Config` or anything with its
  fields ``optimizer``, ``schedule``, ``momentum``, ``weight_decay``,
  ``l2_penalty``, ``steps``, ``milestones`` and ``decay_factor``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from research.config import Config
    >>> tx = make_optimizer(Config(optimizer="sgd"), jnp.asarray(0.1))
    >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))
    >>> updates["w"]
    Array([-0.1, -0.1], dtype=float32)
  """
  rates = schedule(settings)
  if settings.optimizer == "sgd":
    base = optax.sgd(rates)
  elif settings.optimizer == "momentum":
    base = optax.sgd(rates, momentum=settings.momentum)
  elif settings.optimizer == "nesterov":
    base = optax.sgd(rates, momentum=settings.momentum, nesterov=True)
  elif settings.optimizer == "adamw":
    base = optax.adamw(rates, weight_decay=settings.weight_decay)
  else:
    base = optax.adam(rates)
  if getattr(settings, "l2_penalty", 0.0):
    return optax.chain(optax.add_decayed_weights(settings.l2_penalty), base,
                       optax.scale(learning_rate))
  return optax.chain(base, optax.scale(learning_rate))


def check_settings(settings: Any) -> None:
  """A ``ValueError`` naming the first bad optimizer setting and what is valid.

  Examples:
    >>> from research.config import Config
    >>> check_settings(Config(schedule="multistep", milestones=(0.75, 0.5)))
    Traceback (most recent call last):
    ...
    ValueError: milestones must be increasing fractions of the steps, each in (0, 1), got (0.75, 0.5).
  """
  choices.check("optimizer", settings.optimizer, OPTIMIZERS)
  choices.check("schedule", settings.schedule, SCHEDULES)
  milestones = tuple(settings.milestones)
  if settings.schedule == "multistep" and (
      not milestones or any(not 0 < m < 1 for m in milestones)
      or list(milestones) != sorted(set(milestones))):
    raise ValueError(
        "milestones must be increasing fractions of the steps, each in (0, 1),"
        f" got {milestones!r}.")
  if not 0 < settings.decay_factor <= 1:
    raise ValueError(f"decay_factor must be in (0, 1], got {settings.decay_factor!r}.")
  if not settings.l2_penalty >= 0:
    raise ValueError(f"l2_penalty must be >= 0, got {settings.l2_penalty!r}.")
  if not 0 <= settings.momentum < 1:
    raise ValueError(f"momentum must be in [0, 1), got {settings.momentum!r}.")
