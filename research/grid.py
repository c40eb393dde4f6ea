"""The runs of a comparison: activation specs x seeds x learning rates x sweeps.

A spec such as ``"necro_relu(negative_slope=[0.05, 0.1])"`` is one *grid*: its
list values are swept. Every run of a grid shares one activation function, so the
whole grid trains as one compiled program, with the seed, learning rate and
swept hyperparameters as arrays along a leading "runs" axis (on a CPU, the grids
of one config share a program: :func:`research.programs.train_grids`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

import activations
from research import devices, user_code
from research.config import Config, recorded


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run: an activation with fixed hyperparameters, a seed, a rate."""

  grid: str  # the user's spec this run came from
  name: str  # registry name
  activation: str  # canonical spec of this run, e.g. "necro_relu(negative_slope=0.1)"
  hyperparameters: tuple[tuple[str, float], ...]  # float hyperparameters, arrays per run
  seed: int
  learning_rate: float
  settings_hash: str  # a short hash of everything that determines this run's numbers

  @property
  def run_id(self) -> str:
    """A unique key, readable and tied to the run's settings by their hash.

    Rerunning skips ids already in ``runs.csv``; results of another config
    (another dataset, model, optimizer, step count, ...) have another hash, so
    they can never be taken for this run's.
    """
    return (
        f"{self.activation}|seed={self.seed}|learning_rate={self.learning_rate!r}"
        f"|{self.settings_hash}"
    )


@dataclasses.dataclass(frozen=True)
class Grid:
  """The runs that share one activation function and so one compiled program."""

  spec: str
  name: str
  static: tuple[tuple[str, Any], ...]  # non-float hyperparameters, fixed at trace time
  swept: tuple[str, ...]  # names of the float hyperparameters passed as arrays
  runs: tuple[Run, ...]

  def activation(self) -> Callable[..., Any]:
    """The activation with its static hyperparameters bound."""
    function = activation_function(self.name)
    return functools.partial(function, **dict(self.static)) if self.static else function


def activation_function(name: str) -> Callable[..., Any]:
  """The function a registry name or a reference ``MODULE:FUNCTION`` names.

  Examples:
    >>> activation_function("relu") is activations.get("relu")
    True
  """
  if user_code.is_reference(name):
    function, _ = user_code.load_object(name, what="--activations")
    return user_code.check_callable(function, name, "--activations")
  return activations.get(name)


def _parse(spec: str) -> tuple[str, dict[str, Any]]:
  """A spec's name (a registry name, or ``MODULE:FUNCTION``) and keyword arguments."""
  if user_code.is_reference(spec):
    reference = user_code.parse_reference(spec, what="--activations")
    return f"{reference.module}:{reference.attribute}", reference.options
  return activations.parse_spec(spec)


def _defaults(name: str) -> dict[str, Any]:
  """The keyword hyperparameters an activation takes, with their defaults.

  A user's function declares them in its signature: ``revive(x, slope=0.1)``.
  """
  if not user_code.is_reference(name):
    return activations.hyperparameters(name)  # raises for an unknown name
  parameters = list(inspect.signature(activation_function(name)).parameters.values())[1:]
  return {p.name: p.default for p in parameters
          if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is not p.empty}


def _check_value(name: str, key: str, value: Any, defaults: dict[str, Any]) -> None:
  """Validates one hyperparameter value: the registry's checks, or the user function's signature."""
  if not user_code.is_reference(name):
    activations.get(_canonical(name, {key: value}))
    return
  if key not in defaults:
    raise ValueError(
        f"{name} has no keyword hyperparameter {key!r}; its signature declares:"
        f" {', '.join(defaults) or 'none'} (each needs a default, e.g. slope=0.1)."
    )
  if isinstance(defaults[key], float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
    raise ValueError(f"{name}: {key} must be a number, got {value!r}.")


# Config fields that say which runs there are, not how each one is computed.
_GRID_FIELDS = ("activations", "seeds", "learning_rates")


def run_settings(config: Config) -> dict[str, Any]:
  """What every run of ``config`` shares and its numbers depend on.

  The config less the lists that make the grid, with ``batching`` resolved
  for this machine's devices (``map`` and ``vmap`` round differently).
  """
  settings = {
      key: value for key, value in dataclasses.asdict(config).items() if key not in _GRID_FIELDS
  }
  settings["batching"] = devices.resolved_batching(config.batching)
  settings["model"] = recorded(config.model)
  settings["dataset"] = recorded(config.dataset)
  return settings


def settings_hash(settings: dict[str, Any]) -> str:
  """Ten hex digits of the SHA-256 of ``settings`` as canonical JSON.

  Examples:
    >>> settings_hash({"seed": 0, "steps": 100})
    '44cedd6293'
  """
  text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=list)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def _canonical(name: str, values: dict[str, Any]) -> str:
  if not values:
    return name
  return f"{name}({', '.join(f'{key}={value!r}' for key, value in values.items())})"


def _grid(spec: str, config: Config, settings: dict[str, Any]) -> Grid:
  name, kwargs = _parse(spec)
  defaults = _defaults(name)
  float_names = [k for k, v in defaults.items() if isinstance(v, float)]
  static, axes = {}, {}
  for key, value in kwargs.items():
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
      raise ValueError(f"{spec}: {key} has an empty list of values.")
    if len(values) > 1 and key not in float_names:
      raise ValueError(
          f"{spec}: only numeric hyperparameters can be swept"
          f" ({', '.join(float_names) or 'none for ' + name}); {key} cannot."
      )
    for single in values:  # validates the name, key and type
      _check_value(name, key, single, defaults)
    if key in float_names:
      axes[key] = [float(v) for v in values]
    else:
      static[key] = values[0]
  for key in float_names:  # unswept floats still travel as arrays: one program
    axes.setdefault(key, [float(defaults[key])])
  resolved_static = {k: v for k, v in defaults.items() if k not in float_names} | static
  runs = []
  for values in itertools.product(*axes.values()):
    hyperparameters = tuple(zip(axes, values))
    shown = {k: v for k, v in hyperparameters if k in kwargs} | static
    shown = {k: shown[k] for k in kwargs}  # keep the user's order
    for learning_rate in config.learning_rates:
      for seed in range(config.seeds):
        resolved = settings | {
            "activation": name,
            "hyperparameters": dict(hyperparameters) | resolved_static,
            "seed": seed,
            "learning_rate": float(learning_rate),
        }
        runs.append(
            Run(
                grid=spec,
                name=name,
                activation=_canonical(name, shown),
                hyperparameters=hyperparameters,
                seed=seed,
                learning_rate=float(learning_rate),
                settings_hash=settings_hash(resolved),
            )
        )
  grid = Grid(spec, name, tuple(static.items()), tuple(axes), tuple(runs))
  _check_traceable(grid)
  return grid


# What JAX raises when code needs a Python value of a traced array.
_CONCRETE = (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
             jax.errors.TracerArrayConversionError)


def _check_traceable(grid: Grid) -> None:
  """Calls the grid's activation on abstract inputs, its float hyperparameters traced as in training.

  Training passes them as arrays along the runs axis, so a function that
  calls ``float(slope)`` or branches with ``if slope > 0`` fails; here, before
  any data is loaded, in one ``ValueError`` naming the function and the
  hyperparameter. Other errors are left to the model checks that follow.
  """
  if not grid.swept:
    return
  function = grid.activation()
  first = dict(grid.runs[0].hyperparameters)

  def probe(traced: tuple[str, ...]) -> BaseException | None:
    scalar = jax.ShapeDtypeStruct((), jnp.float32)
    try:
      jax.eval_shape(
          lambda z, arrays: function(z, **{**first, **arrays}),
          jax.ShapeDtypeStruct((2, 3), jnp.float32), {key: scalar for key in traced})
    except _CONCRETE as error:
      return error
    except Exception:  # noqa: BLE001  (not this check's business)
      return None
    return None

  error = probe(grid.swept)
  if error is None:
    return
  culprits = [key for key in grid.swept if probe((key,)) is not None] or list(grid.swept)
  raise ValueError(
      f"--activations {grid.spec!r}: {grid.name} needs a Python value of its hyperparameter"
      f" {' and '.join(map(repr, culprits))} ({type(error).__name__}), but float hyperparameters"
      " arrive as JAX arrays, one value per run (swept or not): use jnp operations on them"
      " (jnp.where instead of if), not float(), int() or if; or give it an int or str default,"
      " which stays a Python value but cannot be swept."
  )


def expand(
    config: Config, identities: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[Grid, ...]:
  """The grids of a config, one per activation spec, in the given order.

  Raises a ``ValueError`` for an unknown activation or hyperparameter, naming
  the valid ones, and for a spec given twice.

  Args:
    config: the comparison.
    identities: per spec, what else its runs' numbers depend on and the
      config does not say: the experiment adds the fingerprints of the data
      and of the traced code (:mod:`research.fingerprint`), so a changed
      factory, loader or activation under the same name never resumes old rows.

  Examples:
    >>> grids = expand(Config(activations=("relu", "necro_relu(negative_slope=[0.05, 0.1])"), seeds=2))
    >>> [len(g.runs) for g in grids]
    [2, 4]
    >>> grids[1].runs[2].run_id
    'necro_relu(negative_slope=0.1)|seed=0|learning_rate=0.01|...'
  """
  if not config.activations:
    raise ValueError("activations must name at least one activation spec.")
  settings = run_settings(config)
  identities = identities or {}
  grids = tuple(_grid(spec, config, settings | dict(identities.get(spec, {})))
                for spec in config.activations)
  first_of: dict[str, Run] = {}
  for run in (run for grid in grids for run in grid.runs):
    other = first_of.setdefault(run.settings_hash, run)
    if other is not run:
      raise ValueError(
          f"Two activation specs give the same runs: {other.grid!r} and {run.grid!r}"
          f" both train {run.activation} at seed {run.seed}."
      )
  return grids
