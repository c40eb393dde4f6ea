"""The configuration of a comparison: one frozen dataclass, one source of truth.

The command line (``python -m research compare --help``) is derived from
:class:`Config` by tyro, including the help text, which comes from the comment
after each field. The defaults are the canonical experiment: relu vs
leaky_relu(0.01) vs necro_relu(0.1) on MNIST-1D with the reference MLP
40-100-100-10 trained by Adam (learning rate 1e-2, batch 100, 6000 steps), five
seeds.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Annotated, Any, Literal, get_args

import tyro

import activations
from research import data, models

Optimizer = Literal["sgd", "momentum", "adam", "adamw"]
Schedule = Literal["constant", "cosine", "warmup_cosine"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)


def split_top_level(text: str) -> tuple[str, ...]:
  """Splits on commas outside brackets, so specs may hold lists.

  Examples:
    >>> split_top_level("relu, necro_relu(negative_slope=[0.05, 0.1])")
    ('relu', 'necro_relu(negative_slope=[0.05, 0.1])')
  """
  parts, depth, current = [], 0, []
  for character in text:
    depth += character in "([{"
    depth -= character in ")]}"
    if character == "," and depth == 0:
      parts.append("".join(current))
      current = []
    else:
      current.append(character)
  parts.append("".join(current))
  return tuple(part.strip() for part in parts if part.strip())


def comma_separated(kind: type, metavar: str) -> Any:
  """A tyro constructor for a tuple flag that takes ``a,b,c`` as well as ``a b c``.

  Used as ``Annotated[tuple[int, ...], comma_separated(int, "INT,INT,...")]``
  by the config and the studies' settings.
  """
  return tyro.constructors.PrimitiveConstructorSpec(
      nargs="*",
      metavar=metavar,
      instance_from_str=lambda args: tuple(
          kind(item) for arg in args for item in split_top_level(arg)
      ),
      is_instance=lambda value: isinstance(value, tuple),
      str_from_instance=lambda value: [",".join(map(str, value))],
  )


Specs = Annotated[tuple[str, ...], comma_separated(str, "SPEC,SPEC,...")]
Floats = Annotated[tuple[float, ...], comma_separated(float, "FLOAT,FLOAT,...")]


Batching = Literal["auto", "map", "vmap"]
BATCHINGS: tuple[str, ...] = get_args(Batching)


@dataclasses.dataclass(frozen=True)
class Config:
  """Compare activations: every activation x seed x learning rate, with metrics.

  The config is the experiment: it holds only what determines the results.
  Where they are written and how loudly are arguments of the command
  (``compare(config, out=..., quiet=...)``).
  """

  dataset: str = "mnist1d"  # research.data spec: mnist1d, digits, mnist5k, xor, moons, spirals, regression, teacher, or "local(path='...')"
  model: models.ModelName = "mlp"  # mlp, cnn1d (for MNIST-1D) or cnn2d (for images)
  width: int = 100  # hidden units per layer (channels for the CNNs)
  depth: int = 2  # hidden layers (convolutions for the CNNs)
  residual: bool = False  # MLP only: skip connections around hidden layers of equal width
  activations: Specs = ("relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)")  # comma-separated registry specs; a list value sweeps it, e.g. "necro_relu(negative_slope=[0.05,0.1,0.3])"
  seeds: int = 5  # runs per configuration: seeds 0..N-1 (same seed = same init and batches across activations)
  learning_rates: Floats = (1e-2,)  # swept learning rates
  optimizer: Optimizer = "adam"  # optax optimizer
  schedule: Schedule = "constant"  # learning-rate schedule, peak 1 scaled by each run's rate (warmup_cosine: 5% linear warmup)
  momentum: float = 0.9  # for the momentum optimizer
  weight_decay: float = 1e-4  # for adamw
  steps: int = 6000  # optimizer steps per run
  batch_size: int = 100  # examples per step, drawn with replacement from a seeded key
  eval_every: int = 250  # steps between evaluations (the history's resolution); metrics use the whole training set
  init: models.Initializer = "lecun_normal"  # kernel initialiser (lecun_normal is Flax's default; normal_002 is N(0, 0.02^2); rai is Lu et al. 2019)
  bias_init: float = 0.0  # constant bias initialisation (a positive value fights dying units); rai sets its own
  divergence_factor: float = 10.0  # a run is marked diverged when its training loss is non-finite or exceeds this multiple of its initial loss
  data_seed: int = 0  # seed of synthetic datasets (ignored by mnist1d, digits, mnist5k)
  batching: Batching = "auto"  # how a device trains its runs: map = one after another in the program (each run bit-identical to training it alone), vmap = batched (fast on GPU/TPU, rounds differently); auto = map on CPU, vmap on GPU/TPU

  def __post_init__(self) -> None:
    # Accept lists from Python callers and JSON; store hashable tuples.
    for field in ("activations", "learning_rates"):
      value = getattr(self, field)
      if isinstance(value, str):
        value = split_top_level(value)
      value = tuple(value)
      if field == "learning_rates":
        value = tuple(float(v) for v in value)
      object.__setattr__(self, field, value)


def to_dict(config: Any) -> dict[str, Any]:
  """A config (or a study's settings) dataclass as JSON-ready values (tuples become lists)."""
  return {
      key: list(value) if isinstance(value, tuple) else value
      for key, value in dataclasses.asdict(config).items()
  }


def _choice(field: str, value: str, valid: tuple[str, ...]) -> None:
  if value not in valid:
    close = difflib.get_close_matches(value, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{field}={value!r} is not valid.{hint} Choose from: {', '.join(valid)}.")


def validate(config: Config) -> None:
  """Raises a ``ValueError`` naming the first invalid field and the valid choices.

  Cheap checks of the fields only (no data is loaded);
  :func:`research.grid.expand` checks the activation specs.

  Examples:
    >>> validate(Config(optimizer="adma"))
    Traceback (most recent call last):
    ...
    ValueError: optimizer='adma' is not valid. Did you mean 'adam'? Choose from: sgd, momentum, adam, adamw.
  """
  _choice("model", config.model, models.MODELS)
  _choice("optimizer", config.optimizer, OPTIMIZERS)
  _choice("schedule", config.schedule, SCHEDULES)
  _choice("init", config.init, models.INITIALIZERS)
  _choice("batching", config.batching, BATCHINGS)
  name, _ = activations.parse_spec(config.dataset)
  _choice("dataset", name, data.DATASETS)
  positive = {
      "width": config.width,
      "depth": config.depth,
      "seeds": config.seeds,
      "steps": config.steps,
      "batch_size": config.batch_size,
      "eval_every": config.eval_every,
  }
  for field, value in positive.items():
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"{field} must be a positive integer, got {value!r}.")
  if not config.learning_rates or any(not lr > 0 for lr in config.learning_rates):
    raise ValueError(
        f"learning_rates must be one or more positive numbers, got {config.learning_rates!r}."
    )
  if len(set(config.learning_rates)) != len(config.learning_rates):
    raise ValueError(f"learning_rates has duplicates: {config.learning_rates!r}.")
  if not config.divergence_factor > 1:
    raise ValueError(
        f"divergence_factor must be above 1, got {config.divergence_factor!r}."
    )
  if config.residual and config.model != "mlp":
    raise ValueError("residual=True is only available for model='mlp'.")
  if not config.activations:
    raise ValueError("activations must name at least one activation spec.")
