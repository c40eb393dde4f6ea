"""Which network a run trains: a built-in model, a deep architecture, or yours.

``Config.model`` is a spec: a built-in name (``mlp``, ``cnn1d``, ``cnn2d``,
shaped by the config's ``width``, ``depth``, ``residual``, ``init``,
``bias_init`` and ``norm``), an architecture of :mod:`research.architectures`
with its keyword options (``"resnet20"``, ``"vgg16(width=16)"``), a reference
to a user's factory (``"my_models:small_resnet"``, ``"my_models:net(width=32)"``),
or, from Python, the factory itself.

**The contract.** A factory is called as::

    factory(activation, *, input_shape, num_outputs, rngs, **options) -> nnx.Module

``activation`` is the run's activation ``f(z)``, its hyperparameters bound:
call it wherever the model wants the activation under study, on arrays whose
last axis holds the units (neurons, or channels of a convolution).
``input_shape`` is one example's shape, ``(40,)`` or ``(32, 32, 3)``;
``rngs`` is an ``nnx.Rngs`` with a ``params`` stream (and a ``dropout`` stream
the engine reseeds at every step). The module's ``__call__(x)`` maps a batch
``(batch, *input_shape)`` to ``(batch, num_outputs)`` logits (or
predictions, for regression). BatchNorm and Dropout follow ``model.train()``
and ``model.eval()``: the engine trains in one mode and evaluates in the other.
A Linen module goes through :func:`from_linen`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array

from activations import parse_spec
from research import architectures, choices, models, observe, user_code

SMALL_MODELS = models.MODELS  # shaped by the config's width and depth
BUILT_IN = (*SMALL_MODELS, *architectures.ARCHITECTURES)
NORMS = ("default", *models.NORMS)  # default: batch for the ResNets, none for the others
Factory = Callable[..., nnx.Module]


def is_built_in(spec: Any) -> bool:
  """Whether ``spec`` names a built-in model (perhaps with options)."""
  return isinstance(spec, str) and not user_code.is_reference(spec) and (
      _name(spec) in BUILT_IN)


def _name(spec: str) -> str:
  return spec.split("(", 1)[0].strip()


def describe(spec: Any) -> str:
  """The model as ``config.json`` and the run ids record it.

  Examples:
    >>> describe("resnet20(width=4)"), describe(models.MLP)
    ('resnet20(width=4)', 'research.models:MLP')
  """
  return user_code.describe(spec)


def check(spec: Any) -> None:
  """Cheap checks of a model spec (no import of user code): a ``ValueError`` naming what is valid.

  Examples:
    >>> check("resnet2")
    Traceback (most recent call last):
    ...
    ValueError: model='resnet2' is not a built-in model (mlp, cnn1d, cnn2d, resnet20, resnet18, vgg11, vgg16) nor a reference MODULE:FACTORY to your own (e.g. 'my_models:small_resnet'). Did you mean 'resnet20'?
  """
  if callable(spec) or user_code.is_reference(spec):
    return
  if not isinstance(spec, str):
    raise ValueError(f"model must be a spec string or a factory, got {spec!r}.")
  try:
    name, options = parse_spec(spec)
  except ValueError as error:
    raise ValueError(f"model={spec!r}: {error}") from None
  if name not in BUILT_IN:
    raise ValueError(
        f"model={spec!r} is not a built-in model ({', '.join(BUILT_IN)}) nor a reference"
        " MODULE:FACTORY to your own (e.g. 'my_models:small_resnet')."
        + choices.hint(name, BUILT_IN)
    )
  if name in SMALL_MODELS and options:
    raise ValueError(
        f"model={spec!r}: {name} takes no options in its spec; it is shaped by --width,"
        " --depth, --residual, --init, --bias-init and --norm."
    )


def factory(spec: Any) -> tuple[Factory, dict[str, Any]]:
  """The factory a spec names and the spec's keyword options (user code imported here)."""
  if callable(spec):
    return spec, {}
  if user_code.is_reference(spec):
    function, options = user_code.load_object(spec, what="--model")
    return user_code.check_callable(function, spec, "--model"), options
  check(spec)
  name, options = parse_spec(spec)
  return architectures.ARCHITECTURES[name], options


def builder(
    spec: Any, input_shape: tuple[int, ...], num_outputs: int, *, width: int, depth: int,
    residual: bool, init: str, bias_init: float, norm: str,
) -> observe.Builder:
  """``build(activation, key) -> nnx.Module`` for the model ``spec`` names.

  Examples:
    >>> import activations
    >>> build = builder("mlp", (40,), 10, width=8, depth=1, residual=False,
    ...                 init="lecun_normal", bias_init=0.0, norm="default")
    >>> build(activations.relu, jax.random.key(0))(jnp.ones((2, 40))).shape
    (2, 10)
  """
  if isinstance(spec, str) and _name(spec) in SMALL_MODELS:
    small = dict(width=width, depth=depth, residual=residual, init=init, bias_init=bias_init,
                 norm="none" if norm == "default" else norm)
    return lambda activation, key: models.build(
        spec, input_shape, num_outputs, activation=activation, rngs=_rngs(key), **small)
  make, options = factory(spec)
  if norm != "default" and is_built_in(spec):
    options = {"norm": norm, **options}
  return lambda activation, key: make(
      activation, input_shape=input_shape, num_outputs=num_outputs, rngs=_rngs(key), **options)


def _rngs(key: Array) -> nnx.Rngs:
  # Dropout's stream is reseeded at every training step from the run's own key.
  return nnx.Rngs(params=key, dropout=jax.random.fold_in(key, 1))


def check_model(
    build: observe.Builder, spec: Any, activation: Callable[[Array], Array],
    input_shape: tuple[int, ...], num_outputs: int,
) -> None:
  """Builds and calls the model abstractly: every contract breach is one ``ValueError``.

  A factory of the wrong signature, one that raises or returns something
  other than an ``nnx.Module``, outputs of the wrong shape, or a model that
  never calls the activation (or calls it where it cannot be observed) all
  fail here, before anything is trained.
  """
  where = f"model {describe(spec)!r}"
  _check_signature(spec, where)
  returned: list[Any] = []

  def built() -> Any:
    returned.append(build(activation, jax.random.key(0)))
    return returned[-1] if isinstance(returned[-1], nnx.Module) else None

  try:
    model = nnx.eval_shape(built)
  except Exception as error:  # the user's code raised: one line naming it
    raise ValueError(f"{where} could not be built for inputs {input_shape}:"
                     f" {type(error).__name__}: {error}") from None
  if not isinstance(model, nnx.Module):
    raise ValueError(
        f"{where}: the factory returned a {type(returned[-1]).__name__}, not an nnx.Module"
        " (wrap a Linen module with research.model_spec.from_linen)."
    )
  params, model_state = observe.split(model)
  x = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)
  try:
    observed = jax.eval_shape(
        lambda p, s, x: observe.call(build, activation, p, s, x, training=True), params,
        model_state, x)
  except jax.errors.UnexpectedTracerError:
    raise ValueError(
        f"{where} calls the activation inside a transform (jax.checkpoint, scan, an nnx"
        " lifted transform), where the engine cannot observe it; call it directly."
    ) from None
  except Exception as error:
    raise ValueError(f"{where} failed on a batch of shape {x.shape}:"
                     f" {type(error).__name__}: {error}") from None
  if observed.outputs.shape != (2, num_outputs):
    raise ValueError(
        f"{where} maps a batch of shape {x.shape} to {observed.outputs.shape}; the dataset"
        f" needs (batch, {num_outputs}): one output per class (or target)."
    )
  if not observed.preactivations:
    raise ValueError(
        f"{where} never calls the activation it is given, so the runs would not differ"
        " by activation: call activation(z) where the network's nonlinearity goes."
    )


def _check_signature(spec: Any, where: str) -> None:
  """A factory that cannot be called as the contract says: one line naming its signature."""
  if is_built_in(spec):
    return
  make, options = factory(spec)
  try:
    signature = inspect.signature(make)
  except (TypeError, ValueError):  # a builtin or C function: no signature to read
    return
  try:
    signature.bind(None, input_shape=(), num_outputs=0, rngs=None, **options)
  except TypeError as error:
    raise ValueError(
        f"{where}: a factory is called as factory(activation, *, input_shape, num_outputs,"
        f" rngs, **options), but its signature is {make.__name__}{signature} ({error})."
        " See 'Your own model' in the README."
    ) from None


def from_linen(make_module: Callable[..., Any]) -> Factory:
  """A factory of the contract from a Linen module with an ``activation`` field.

  ``make_module(activation, num_outputs=..., **options)`` returns the Linen
  module; it is wrapped with ``nnx.bridge.ToNNX`` and initialised on a batch
  of zeros. BatchNorm's ``use_running_average`` and Dropout's
  ``deterministic`` must be module fields the bridge can set.

  Examples:
    >>> import flax.linen as nn
    >>> import activations
    >>> class Linen(nn.Module):
    ...   activation: Callable
    ...   num_outputs: int
    ...   @nn.compact
    ...   def __call__(self, x):
    ...     return nn.Dense(self.num_outputs)(self.activation(nn.Dense(8)(x)))
    >>> make = from_linen(lambda activation, num_outputs: Linen(activation, num_outputs))
    >>> model = make(activations.relu, input_shape=(3,), num_outputs=2, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((4, 3))).shape
    (4, 2)
  """

  def make(activation, *, input_shape, num_outputs, rngs, **options):
    module = make_module(activation, num_outputs=num_outputs, **options)
    model = nnx.bridge.ToNNX(module, rngs=rngs)
    nnx.bridge.lazy_init(model, jnp.zeros((1, *input_shape), jnp.float32))
    return model

  make.__name__ = make.__qualname__ = getattr(make_module, "__name__", "linen_model")
  make.__module__ = getattr(make_module, "__module__", __name__)
  return make
