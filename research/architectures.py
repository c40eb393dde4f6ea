"""Deep image networks with an injected activation: CIFAR ResNets and VGGs.

Each factory follows the engine's model contract (:mod:`research.model_spec`):
``factory(activation, *, input_shape, num_outputs, rngs, width=..., norm=...)``
returns an ``nnx.Module`` mapping an NHWC batch to logits, calling
``activation`` once wherever the standard network has a ReLU, on tensors whose
last axis holds the channels.

* ``resnet20``: the CIFAR ResNet of He et al. 2016 (section 4.2), a 3x3 stem of
  16 channels, 3 stages of 3 basic blocks (16, 32, 64 channels), identity
  shortcuts that subsample and zero-pad where the shape changes (option A, no
  parameters): 269,722 parameters for 10 classes (272,474, the count often
  quoted, is option B's, with 1x1 projections).
* ``resnet18``: the CIFAR variant of He et al.'s ResNet-18: a 3x3 stride-1 stem,
  no max-pool, 4 stages of 2 basic blocks (64 to 512 channels), 1x1
  projection shortcuts where the shape changes: 11,173,962 parameters for 10
  classes.
* ``vgg11`` and ``vgg16``: Simonyan & Zisserman 2015's configurations A and D
  for 32x32 images, 3x3 convolutions, 2x2 max-pools, then one linear layer
  from 512 features: 14,719,818 parameters for VGG-16 without normalisation
  and 10 classes (14,724,042 with BatchNorm).

All four end with global average pooling, so any image size works (a VGG's
last feature map is 1x1 at 32x32, where pooling and flattening agree).
``convolution`` chooses how convolutions run (:mod:`research.convolution`:
``"auto"``, the default, is patches times a matrix on CPU, 13x faster inside
the engine's training loop there, and XLA's convolution on GPU and TPU).
``width`` scales the channels (``resnet20(width=4)`` for tests); ``norm``
puts BatchNorm (momentum 0.9, epsilon 1e-5: PyTorch's defaults) after each
convolution, whose bias it then replaces. Convolutions start He-normal with
fan-out, as in the ResNet paper and torchvision; the final linear layer has
Flax's default init. The ResNets default to ``norm="batch"``, the VGGs to
``"none"``: the plain deep network on which SUGAR (Horuz et al. 2025) reports
its largest gain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array

from research import convolution as convolutions

Activation = Callable[[Array], Array]
NORMS = ("none", "batch")
_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
VGG_LAYERS = {  # channels per conv at width 64; "M" is a 2x2 max-pool
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}


def _check(name: str, input_shape: Sequence[int], norm: str, width: int,
           convolution: str) -> None:
  if len(input_shape) != 3:
    raise ValueError(
        f"{name} needs images of shape (height, width, channels), got {tuple(input_shape)}.")
  if norm not in NORMS:
    raise ValueError(f"{name}: norm={norm!r} is not valid; choose from {', '.join(NORMS)}.")
  if isinstance(width, bool) or not isinstance(width, int) or width < 1:
    raise ValueError(f"{name}: width must be a positive integer, got {width!r}.")
  if convolution not in convolutions.IMPLEMENTATIONS:
    raise ValueError(f"{name}: convolution={convolution!r} is not valid; choose from "
                     f"{', '.join(convolutions.IMPLEMENTATIONS)}.")


class ConvNorm(nnx.Module):
  """A 3x3 (or 1x1) convolution, then BatchNorm if asked: what precedes an activation."""

  def __init__(self, in_channels: int, out_channels: int, *, norm: str, convolution: str,
               rngs: nnx.Rngs, kernel: int = 3, stride: int = 1):
    by = (convolutions.patches_convolution if convolutions.resolve(convolution) == "patches"
          else jax.lax.conv_general_dilated)
    self.conv = nnx.Conv(in_channels, out_channels, (kernel, kernel), strides=stride,
                         padding="SAME", use_bias=norm == "none", kernel_init=_CONV_INIT,
                         conv_general_dilated=by, rngs=rngs)
    self.norm = (nnx.BatchNorm(out_channels, momentum=0.9, epsilon=1e-5, rngs=rngs)
                 if norm == "batch" else None)

  def __call__(self, x: Array) -> Array:
    z = self.conv(x)
    return z if self.norm is None else self.norm(z)


class BasicBlock(nnx.Module):
  """conv-norm-act-conv-norm, plus the shortcut, then the activation."""

  def __init__(self, in_channels: int, channels: int, stride: int, *, activation: Activation,
               norm: str, convolution: str, projection: bool, rngs: nnx.Rngs):
    self.activation = activation
    layer = dict(norm=norm, convolution=convolution, rngs=rngs)
    self.first = ConvNorm(in_channels, channels, stride=stride, **layer)
    self.second = ConvNorm(channels, channels, **layer)
    self.stride, self.extra_channels = stride, channels - in_channels
    changes = stride != 1 or in_channels != channels
    self.projection = (ConvNorm(in_channels, channels, kernel=1, stride=stride, **layer)
                       if projection and changes else None)

  def shortcut(self, x: Array) -> Array:
    if self.projection is not None:
      return self.projection(x)
    x = x[:, ::self.stride, ::self.stride]  # option A: subsample, pad the new channels with 0
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, self.extra_channels)))

  def __call__(self, x: Array) -> Array:
    h = self.activation(self.first(x))
    return self.activation(self.second(h) + self.shortcut(x))


class ResNet(nnx.Module):
  """A stem, stages of basic blocks, global average pooling and a linear layer."""

  def __init__(self, activation: Activation, *, input_shape: Sequence[int], num_outputs: int,
               stage_channels: Sequence[int], blocks: int, norm: str, convolution: str,
               projection: bool,
               rngs: nnx.Rngs):
    self.activation = activation
    self.stem = ConvNorm(input_shape[-1], stage_channels[0], norm=norm,
                         convolution=convolution, rngs=rngs)
    layers, channels = [], stage_channels[0]
    for stage, out_channels in enumerate(stage_channels):
      for block in range(blocks):
        stride = 2 if stage > 0 and block == 0 else 1
        layers.append(BasicBlock(channels, out_channels, stride, activation=activation,
                                 norm=norm, convolution=convolution, projection=projection,
                                 rngs=rngs))
        channels = out_channels
    self.blocks = nnx.List(layers)
    self.head = nnx.Linear(channels, num_outputs, rngs=rngs)

  def __call__(self, x: Array) -> Array:
    h = self.activation(self.stem(x))
    for block in self.blocks:
      h = block(h)
    return self.head(jnp.mean(h, axis=(1, 2)))


class VGG(nnx.Module):
  """3x3 convolutions (each followed by the activation) and max-pools, then a linear layer."""

  def __init__(self, activation: Activation, *, input_shape: Sequence[int], num_outputs: int,
               layers: Sequence[int | str], norm: str, convolution: str, rngs: nnx.Rngs):
    self.activation = activation
    self.layers_spec = tuple(layers)
    convs, channels = [], input_shape[-1]
    for item in layers:
      if item != "M":
        convs.append(ConvNorm(channels, item, norm=norm, convolution=convolution, rngs=rngs))
        channels = item
    self.convs = nnx.List(convs)
    self.head = nnx.Linear(channels, num_outputs, rngs=rngs)

  def __call__(self, x: Array) -> Array:
    convs = iter(self.convs)
    for item in self.layers_spec:
      if item == "M":
        x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
      else:
        x = self.activation(next(convs)(x))
    return self.head(jnp.mean(x, axis=(1, 2)))


def resnet20(activation: Activation, *, input_shape: Sequence[int], num_outputs: int,
             rngs: nnx.Rngs, width: int = 16, norm: str = "batch",
             convolution: str = "auto") -> nnx.Module:
  """The CIFAR ResNet-20 (He et al. 2016): 19 activation calls, 269,722 parameters for 10 classes (option-A shortcuts).

  Examples:
    >>> import activations
    >>> model = nnx.eval_shape(lambda: resnet20(  # shapes only: nothing initialised
    ...     activations.relu, input_shape=(32, 32, 3), num_outputs=10, rngs=nnx.Rngs(0)))
    >>> parameter_count(model)
    269722
    >>> nnx.eval_shape(lambda m, x: m(x), model, jnp.ones((2, 32, 32, 3))).shape
    (2, 10)
  """
  _check("resnet20", input_shape, norm, width, convolution)
  return ResNet(activation, input_shape=input_shape, num_outputs=num_outputs,
                stage_channels=(width, 2 * width, 4 * width), blocks=3, norm=norm,
                convolution=convolution,
                projection=False, rngs=rngs)


def resnet18(activation: Activation, *, input_shape: Sequence[int], num_outputs: int,
             rngs: nnx.Rngs, width: int = 64, norm: str = "batch",
             convolution: str = "auto") -> nnx.Module:
  """The CIFAR ResNet-18: 17 activation calls, 11,173,962 parameters for 10 classes.

  Examples:
    >>> import activations
    >>> model = nnx.eval_shape(lambda: resnet18(  # shapes only: nothing initialised
    ...     activations.relu, input_shape=(32, 32, 3), num_outputs=10, rngs=nnx.Rngs(0)))
    >>> parameter_count(model)
    11173962
  """
  _check("resnet18", input_shape, norm, width, convolution)
  return ResNet(activation, input_shape=input_shape, num_outputs=num_outputs,
                stage_channels=(width, 2 * width, 4 * width, 8 * width), blocks=2, norm=norm,
                convolution=convolution,
                projection=True, rngs=rngs)


def _vgg(name: str, activation: Activation, input_shape: Sequence[int], num_outputs: int,
         rngs: nnx.Rngs, width: int, norm: str, convolution: str) -> nnx.Module:
  _check(name, input_shape, norm, width, convolution)
  layers = [item if item == "M" else item * width // 64 for item in VGG_LAYERS[name]]
  return VGG(activation, input_shape=input_shape, num_outputs=num_outputs, layers=layers,
             norm=norm, convolution=convolution, rngs=rngs)


def vgg11(activation: Activation, *, input_shape: Sequence[int], num_outputs: int,
          rngs: nnx.Rngs, width: int = 64, norm: str = "none",
          convolution: str = "auto") -> nnx.Module:
  """VGG-11 (configuration A) for CIFAR: 8 activation calls.

  Examples:
    >>> import activations
    >>> model = nnx.eval_shape(lambda: vgg11(  # shapes only: nothing initialised
    ...     activations.relu, input_shape=(32, 32, 3), num_outputs=10, rngs=nnx.Rngs(0)))
    >>> parameter_count(model)
    9225610
  """
  return _vgg("vgg11", activation, input_shape, num_outputs, rngs, width, norm, convolution)


def vgg16(activation: Activation, *, input_shape: Sequence[int], num_outputs: int,
          rngs: nnx.Rngs, width: int = 64, norm: str = "none",
          convolution: str = "auto") -> nnx.Module:
  """VGG-16 (configuration D) for CIFAR: 13 activation calls, 14,719,818 parameters for 10 classes.

  Examples:
    >>> import activations
    >>> model = nnx.eval_shape(lambda: vgg16(  # shapes only: nothing initialised
    ...     activations.relu, input_shape=(32, 32, 3), num_outputs=10, rngs=nnx.Rngs(0)))
    >>> parameter_count(model)
    14719818
  """
  return _vgg("vgg16", activation, input_shape, num_outputs, rngs, width, norm, convolution)


ARCHITECTURES: dict[str, Callable[..., nnx.Module]] = {
    "resnet20": resnet20, "resnet18": resnet18, "vgg11": vgg11, "vgg16": vgg16,
}


def parameter_count(model: nnx.Module) -> int:
  """How many numbers ``model`` trains: the sizes of its ``nnx.Param`` leaves.

  Examples:
    >>> parameter_count(nnx.Linear(3, 4, rngs=nnx.Rngs(0)))
    16
  """
  return sum(int(leaf.size) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
