"""Flax NNX models whose activation is injected: an MLP and two small CNNs.

Every model takes a ready activation, ``f(z) -> array``: the caller binds its
hyperparameters (which may be traced arrays, one per run of a grid), so a model
never sees their names. ``forward`` also returns each hidden layer's
pre-activations ``z`` and the activation's own outputs ``f(z)``, which the
metrics need; hidden *units* are always on the last axis (neurons of a dense
layer, channels of a conv).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array

from research import observe

ModelName = Literal["mlp", "cnn1d", "cnn2d"]  # the small built-in models; see research.model_spec for all
Initializer = Literal[
    "lecun_normal", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "normal_002", "rai"
]
MODELS: tuple[str, ...] = get_args(ModelName)
NORMS = ("none", "batch")  # "batch": nnx.BatchNorm after each hidden layer, before the activation
INITIALIZERS: tuple[str, ...] = get_args(Initializer)

_KERNEL_INITS: dict[str, Callable[..., Any]] = {
    "lecun_normal": nnx.initializers.lecun_normal(),  # Flax's default
    "he_normal": nnx.initializers.he_normal(),
    "he_uniform": nnx.initializers.he_uniform(),
    "xavier_normal": nnx.initializers.xavier_normal(),
    "xavier_uniform": nnx.initializers.xavier_uniform(),
    "normal_002": nnx.initializers.normal(0.02),  # N(0, 0.02^2), as in GPT-2/BERT
    "rai": nnx.initializers.lecun_normal(),  # replaced by rai() after construction
}


def rai(key: Array, fan_in: int, fan_out: int) -> tuple[Array, Array]:
  """Randomized asymmetric initialization (Lu, Shin, Su, Karniadakis 2019).

  For each unit, the weights and bias together are drawn from
  N(0, 0.6007^2 / fan_in), then one of them, chosen at random, is replaced by a
  Beta(2, 1) draw: a positive, asymmetric entry that keeps deep narrow ReLU
  networks from being born dead.

  Returns:
    ``(kernel, bias)`` of shapes ``(fan_in, fan_out)`` and ``(fan_out,)``.

  Examples:
    >>> kernel, bias = rai(jax.random.key(0), 3, 4)
    >>> kernel.shape, bias.shape
    ((3, 4), (4,))
  """
  normal_key, index_key, beta_key = jax.random.split(key, 3)
  values = jax.random.normal(normal_key, (fan_out, fan_in + 1)) * (0.6007 / math.sqrt(fan_in))
  chosen = jax.random.randint(index_key, (fan_out,), 0, fan_in + 1)
  positive = jax.random.beta(beta_key, 2.0, 1.0, (fan_out,))
  values = values.at[jnp.arange(fan_out), chosen].set(positive)
  return values[:, :-1].T, values[:, -1]


def _initialise(layer: nnx.Linear | nnx.Conv, init: str, rngs: nnx.Rngs) -> None:
  if init != "rai":
    return
  kernel = layer.kernel[...]
  fan_in, fan_out = math.prod(kernel.shape[:-1]), kernel.shape[-1]
  new_kernel, new_bias = rai(rngs.params(), fan_in, fan_out)
  layer.kernel[...] = new_kernel.reshape(kernel.shape).astype(kernel.dtype)
  layer.bias[...] = new_bias.astype(kernel.dtype)


class Forward(NamedTuple):
  """A forward pass with what the metrics need from inside the network."""

  outputs: Array  # (batch, num_outputs): logits, or predictions for regression
  preactivations: tuple[Array, ...]  # per activation call, its input z, units last
  activations: tuple[Array, ...]  # the activation's own output f(z), same shapes


class Model(nnx.Module):
  """Shared by the models: hidden layers, an output layer, an activation."""

  hidden: nnx.List
  output: nnx.Linear
  activation: Callable[[Array], Array]
  residual: bool = False
  norms: nnx.List | None = None  # BatchNorm after each hidden layer, before the activation

  def _hidden_input(self, x: Array) -> Array:
    return x

  def _finish(self, init: str, norm: str, rngs: nnx.Rngs) -> None:
    """Applies a custom initialiser, then adds BatchNorm layers if ``norm="batch"``."""
    for layer in self.hidden:
      _initialise(layer, init, rngs)
    if norm not in NORMS:
      raise ValueError(f"norm={norm!r} is not valid; choose from {', '.join(NORMS)}.")
    if norm == "batch":
      self.norms = nnx.List([
          nnx.BatchNorm(layer.kernel.shape[-1], momentum=0.9, epsilon=1e-5, rngs=rngs)
          for layer in self.hidden
      ])

  def forward(self, x: Array) -> Forward:
    """Runs the model, keeping each activation call's input and output.

    The same recording the engine does for any model
    (:func:`research.observe.recording`).
    """
    record, calls = observe.recording(self.activation)
    outputs = self._apply(x, record)
    return Forward(outputs, tuple(z for z, _ in calls), tuple(out for _, out in calls))

  def _apply(self, x: Array, activation: Callable[[Array], Array]) -> Array:
    h = self._hidden_input(x)
    for index, layer in enumerate(self.hidden):
      preactivation = layer(h)
      if self.norms is not None:
        preactivation = self.norms[index](preactivation)
      activated = activation(preactivation)
      h = h + activated if self.residual and index > 0 else activated  # equal widths past the first layer
    return self.output(h.reshape(h.shape[0], -1))

  def __call__(self, x: Array) -> Array:
    return self._apply(x, self.activation)

  def kernels(self) -> tuple[Array, ...]:
    """Each layer's weights, from the input: the hidden layers, then the output."""
    return (*(layer.kernel[...] for layer in self.hidden), self.output.kernel[...])


class MLP(Model):
  """A multilayer perceptron: ``depth`` hidden layers of ``width`` units.

  Inputs of any shape are flattened. With ``residual=True`` every hidden layer
  after the first adds its input to its output.

  Examples:
    >>> import activations
    >>> import functools
    >>> model = MLP(40, 10, width=100, depth=2, rngs=nnx.Rngs(0),
    ...             activation=functools.partial(activations.necro_relu, negative_slope=0.2))
    >>> sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    15210
    >>> model(jnp.ones((8, 40))).shape
    (8, 10)
  """

  def __init__(
      self,
      in_features: int,
      num_outputs: int,
      *,
      width: int,
      depth: int,
      activation: Callable[[Array], Array],
      residual: bool = False,
      init: str = "lecun_normal",
      bias_init: float = 0.0,
      norm: str = "none",
      rngs: nnx.Rngs,
  ):
    self.activation = activation
    self.residual = residual
    self.hidden = nnx.List(
        [
            nnx.Linear(
                in_features if i == 0 else width,
                width,
                kernel_init=_KERNEL_INITS[init],
                bias_init=nnx.initializers.constant(bias_init),
                rngs=rngs,
            )
            for i in range(depth)
        ]
    )
    self.output = nnx.Linear(width, num_outputs, kernel_init=_KERNEL_INITS[init], rngs=rngs)
    self._finish(init, norm, rngs)

  def _hidden_input(self, x: Array) -> Array:
    return x.reshape(x.shape[0], -1)


class CNN1D(Model):
  """The MNIST-1D reference CNN: stride-2 convolutions (kernel 5, then 3).

  ``width`` channels per convolution, ``depth`` convolutions, then a dense
  output layer. With width 25 and depth 3 this is the network the MNIST-1D
  authors report about 94% test accuracy for.

  Examples:
    >>> import activations
    >>> model = CNN1D(40, 10, width=25, depth=3, activation=activations.relu,
    ...               rngs=nnx.Rngs(0))
    >>> model(jnp.ones((2, 40))).shape
    (2, 10)
  """

  def __init__(
      self,
      length: int,
      num_outputs: int,
      *,
      width: int,
      depth: int,
      activation: Callable[[Array], Array],
      init: str = "lecun_normal",
      bias_init: float = 0.0,
      norm: str = "none",
      rngs: nnx.Rngs,
  ):
    self.activation = activation
    layers = []
    for i in range(depth):
      size = 5 if i == 0 else 3
      layers.append(
          nnx.Conv(
              1 if i == 0 else width,
              width,
              kernel_size=(size,),
              strides=2,
              padding=((1, 1),),
              kernel_init=_KERNEL_INITS[init],
              bias_init=nnx.initializers.constant(bias_init),
              rngs=rngs,
          )
      )
      length = (length + 2 - size) // 2 + 1
    self.hidden = nnx.List(layers)
    self.output = nnx.Linear(length * width, num_outputs, kernel_init=_KERNEL_INITS[init], rngs=rngs)
    self._finish(init, norm, rngs)

  def _hidden_input(self, x: Array) -> Array:
    return x.reshape(x.shape[0], -1, 1)


class CNN2D(Model):
  """A small image CNN: ``depth`` 3x3 stride-2 convolutions, then a dense layer.

  For 8x8 digits and 28x28 MNIST-like images (NHWC inputs).

  Examples:
    >>> import activations
    >>> model = CNN2D((8, 8, 1), 10, width=16, depth=2, activation=activations.relu,
    ...               rngs=nnx.Rngs(0))
    >>> model(jnp.ones((2, 8, 8, 1))).shape
    (2, 10)
  """

  def __init__(
      self,
      input_shape: tuple[int, int, int],
      num_outputs: int,
      *,
      width: int,
      depth: int,
      activation: Callable[[Array], Array],
      init: str = "lecun_normal",
      bias_init: float = 0.0,
      norm: str = "none",
      rngs: nnx.Rngs,
  ):
    if len(input_shape) != 3:
      raise ValueError(
          f"cnn2d needs images of shape (height, width, channels), got {input_shape}."
      )
    self.activation = activation
    height, width_pixels, channels = input_shape
    layers = []
    for i in range(depth):
      layers.append(
          nnx.Conv(
              channels if i == 0 else width,
              width,
              kernel_size=(3, 3),
              strides=2,
              padding="SAME",
              kernel_init=_KERNEL_INITS[init],
              bias_init=nnx.initializers.constant(bias_init),
              rngs=rngs,
          )
      )
      height, width_pixels = -(-height // 2), -(-width_pixels // 2)
    self.hidden = nnx.List(layers)
    self.output = nnx.Linear(
        height * width_pixels * width, num_outputs, kernel_init=_KERNEL_INITS[init], rngs=rngs
    )
    self._finish(init, norm, rngs)


def build(
    model: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    width: int,
    depth: int,
    activation: Callable[[Array], Array],
    residual: bool = False,
    init: str = "lecun_normal",
    bias_init: float = 0.0,
    norm: str = "none",
    rngs: nnx.Rngs,
) -> Model:
  """The model named ``model`` for inputs of ``input_shape`` (one example).

  Examples:
    >>> import activations
    >>> build("mlp", (40,), 10, width=8, depth=1, activation=activations.relu,
    ...       rngs=nnx.Rngs(0)).output.kernel.shape
    (8, 10)
  """
  if model not in MODELS:
    raise ValueError(f"Unknown model {model!r}; choose from {', '.join(MODELS)}.")
  if init not in INITIALIZERS:
    raise ValueError(f"Unknown init {init!r}; choose from {', '.join(INITIALIZERS)}.")
  common = dict(width=width, depth=depth, activation=activation, init=init, bias_init=bias_init,
                norm=norm, rngs=rngs)
  if model == "mlp":
    return MLP(math.prod(input_shape), num_outputs, residual=residual, **common)
  if model == "cnn1d":
    if len(input_shape) != 1:
      raise ValueError(f"cnn1d needs 1-D examples such as MNIST-1D's (40,), got {input_shape}.")
    return CNN1D(input_shape[0], num_outputs, **common)
  return CNN2D(input_shape, num_outputs, **common)
