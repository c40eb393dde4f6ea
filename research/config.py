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
import math
from typing import Annotated, Any, Literal, get_args

import tyro

from research import choices, data, model_spec, models, optimizers, user_code

Optimizer = optimizers.Optimizer
Schedule = optimizers.Schedule
OPTIMIZERS: tuple[str, ...] = optimizers.OPTIMIZERS
SCHEDULES: tuple[str, ...] = optimizers.SCHEDULES
Norm = Literal["default", "none", "batch"]
DTYPES = ("float32", "bfloat16")
Dtype = Literal["float32", "bfloat16"]


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

  dataset: str = "mnist1d"  # research.data spec: mnist1d, digits, mnist5k, xor, moons, spirals, regression, teacher, "local(path='...')" (MNIST IDX, .npz, CIFAR-10/100), or your loader MODULE:FUNCTION
  model: str = "mlp"  # mlp, cnn1d (MNIST-1D), cnn2d (images); resnet20, resnet18, vgg11, vgg16 (options in the spec, e.g. "resnet20(width=8)"); or your factory MODULE:FACTORY (see the README's "Your own model")
  width: int = 100  # mlp/cnn1d/cnn2d: hidden units per layer (channels for the CNNs)
  depth: int = 2  # mlp/cnn1d/cnn2d: hidden layers (convolutions for the CNNs)
  residual: bool = False  # mlp only: skip connections around hidden layers of equal width
  norm: Norm = "default"  # built-in models: batch = BatchNorm before each activation, none = without; default: batch for the ResNets, none for the others
  activations: Specs = ("relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)")  # comma-separated registry specs; a list value sweeps it, e.g. "necro_relu(negative_slope=[0.05,0.1,0.3])"
  seeds: int = 5  # runs per configuration: seeds 0..N-1 (same seed = same init and batches across activations)
  learning_rates: Floats = (1e-2,)  # swept learning rates
  optimizer: Optimizer = "adam"  # optax optimizer (nesterov: SGD with Nesterov momentum)
  schedule: Schedule = "constant"  # learning-rate schedule, peak 1 scaled by each run's rate (warmup_cosine: 5% linear warmup; multistep: times decay_factor at each milestone)
  momentum: float = 0.9  # for the momentum and nesterov optimizers
  weight_decay: float = 1e-4  # decoupled weight decay, for adamw
  l2_penalty: float = 0.0  # coupled weight decay for any optimizer: l2_penalty * params added to the gradient (PyTorch SGD's weight_decay, the CIFAR recipes' 5e-4)
  milestones: Floats = (0.5, 0.75)  # multistep: fractions of the steps where the rate is multiplied by decay_factor
  decay_factor: float = 0.1  # multistep: the factor at each milestone
  steps: int = 6000  # optimizer steps per run (ignored when epochs is set)
  epochs: int = 0  # if set, train this many passes over the training set (shuffled each epoch, last partial batch dropped) instead of --steps
  batch_size: int = 100  # examples per step, drawn with replacement from a seeded key (a permutation per epoch with --epochs)
  augment: bool = False  # images: random crop with 4-pixel padding and horizontal flip, on the device, from each run's seeded key
  dtype: Dtype = "float32"  # computation dtype; bfloat16 = mixed precision (float32 parameters and optimizer state)
  eval_every: int = 250  # steps between evaluations (the history's resolution); metrics use the whole training set
  init: models.Initializer = "lecun_normal"  # kernel initialiser (lecun_normal is Flax's default; normal_002 is N(0, 0.02^2); rai is Lu et al. 2019)
  bias_init: float = 0.0  # constant bias initialisation (a positive value fights dying units); rai sets its own
  divergence_factor: float = 10.0  # a run is marked diverged when its training loss is non-finite or exceeds this multiple of its initial loss
  data_seed: int = 0  # seed of synthetic datasets (ignored by mnist1d, digits, mnist5k)
  batching: Batching = "auto"  # how a device trains its runs: map = one after another in the program (each run bit-identical to training it alone), vmap = batched (fast on GPU/TPU, rounds differently); auto = map on CPU, vmap on GPU/TPU

  def __post_init__(self) -> None:
    # Accept lists from Python callers and JSON; store hashable tuples.
    for field in ("activations", "learning_rates", "milestones"):
      value = getattr(self, field)
      if isinstance(value, str):
        value = split_top_level(value)
      value = tuple(value)
      if field != "activations":
        value = tuple(float(v) for v in value)
      object.__setattr__(self, field, value)


def to_dict(config: Any) -> dict[str, Any]:
  """A config (or a study's settings) dataclass as JSON-ready values.

  Tuples become lists; a model factory or data loader passed from Python as a
  function is recorded as ``module:qualname``; a nested config (a study's
  ``base``) becomes a nested dict.
  """
  return {field.name: _recorded_field(getattr(config, field.name))
          for field in dataclasses.fields(config)}


def _recorded_field(value: Any) -> Any:
  """A nested config (a study's ``base``) as a dict, anything else as :func:`recorded`."""
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return to_dict(value)
  return recorded(value)


def recorded(value: Any) -> Any:
  """A config value as ``config.json`` and the run ids record it.

  Tuples become lists, a function ``module:qualname``, a dataset passed as
  arrays its name and fingerprint.

  Examples:
    >>> recorded((0.5, 0.75)), recorded(data.load)
    ([0.5, 0.75], 'research.data:load')
  """
  if isinstance(value, tuple):
    return list(value)
  if isinstance(value, data.Dataset):
    return f"{value.name} (arrays, fingerprint {value.fingerprint})"
  return user_code.describe(value)


MAX_COUNT = 2**31 - 1  # the largest steps, seeds, width...: int32 on the device
MAX_LEARNING_RATE = 1e6  # above it float32 updates overflow at once


def validate(config: Config) -> None:
  """Raises a ``ValueError`` naming the first invalid field and the valid choices.

  Cheap checks of the fields only (no data is loaded);
  :func:`research.grid.expand` checks the activation specs.

  Examples:
    >>> validate(Config(optimizer="adma"))
    Traceback (most recent call last):
    ...
    ValueError: optimizer='adma' is not valid. Did you mean 'adam'? Choose from: sgd, momentum, nesterov, adam, adamw.
  """
  model_spec.check(config.model)
  choices.check("optimizer", config.optimizer, OPTIMIZERS)
  choices.check("schedule", config.schedule, SCHEDULES)
  choices.check("init", config.init, models.INITIALIZERS)
  choices.check("batching", config.batching, BATCHINGS)
  choices.check("norm", config.norm, model_spec.NORMS)
  choices.check("dtype", config.dtype, DTYPES)
  data.check_dataset_spec(config.dataset)
  optimizers.check_settings(config)
  if isinstance(config.epochs, bool) or not isinstance(config.epochs, int) or config.epochs < 0:
    raise ValueError(f"epochs must be 0 (use --steps) or a positive integer, got {config.epochs!r}.")
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
    if value > MAX_COUNT:  # step counters and run indices are int32 on the device
      raise ValueError(f"{field} must be at most {MAX_COUNT:,} (int32), got {value:,}.")
  if isinstance(config.data_seed, bool) or not isinstance(config.data_seed, int) or not (
      0 <= config.data_seed <= MAX_COUNT):
    raise ValueError(f"data_seed must be an integer in [0, {MAX_COUNT}], got {config.data_seed!r}.")
  if not config.learning_rates or any(
      not 0 < lr <= MAX_LEARNING_RATE for lr in config.learning_rates):
    raise ValueError(
        f"learning_rates must be one or more positive finite numbers up to {MAX_LEARNING_RATE:g},"
        f" got {config.learning_rates!r}."
    )
  for field in ("weight_decay", "bias_init"):
    value = getattr(config, field)
    if not math.isfinite(value) or (field == "weight_decay" and value < 0):
      valid = "a finite number >= 0" if field == "weight_decay" else "a finite number"
      raise ValueError(f"{field} must be {valid}, got {value!r}.")
  if len(set(config.learning_rates)) != len(config.learning_rates):
    raise ValueError(f"learning_rates has duplicates: {config.learning_rates!r}.")
  if not 1 < config.divergence_factor < math.inf:
    raise ValueError(
        f"divergence_factor must be a finite number above 1, got {config.divergence_factor!r}."
    )
  if config.residual and config.model != "mlp":
    raise ValueError("residual=True is only available for model='mlp'.")
  if not config.activations:
    raise ValueError("activations must name at least one activation spec.")
