"""A model of your own for the engine: ``--model my_models:small_resnet``.

Copy this file next to where you run ``python -m research``; the engine imports
it from the working directory. The contract: a factory
``factory(activation, *, input_shape, num_outputs, rngs, **options)`` that
returns an ``nnx.Module`` mapping a batch to logits and calling ``activation``
wherever the network's nonlinearity goes. The engine hands in the activation
under study and records each of its calls for the metrics (inactive, dead,
revived units, sparsity, pre-activation means); BatchNorm and Dropout follow
``model.train()`` / ``model.eval()``.
"""

from flax import nnx


class Block(nnx.Module):
  """conv-BatchNorm-activation-conv-BatchNorm, plus the input, then the activation."""

  def __init__(self, channels, activation, rngs):
    self.activation = activation
    self.conv1 = nnx.Conv(channels, channels, (3, 3), use_bias=False, rngs=rngs)
    self.norm1 = nnx.BatchNorm(channels, rngs=rngs)
    self.conv2 = nnx.Conv(channels, channels, (3, 3), use_bias=False, rngs=rngs)
    self.norm2 = nnx.BatchNorm(channels, rngs=rngs)

  def __call__(self, x):
    h = self.activation(self.norm1(self.conv1(x)))
    return self.activation(x + self.norm2(self.conv2(h)))


class SmallResNet(nnx.Module):
  def __init__(self, activation, input_shape, num_outputs, width, blocks, dropout, rngs):
    self.activation = activation
    self.stem = nnx.Conv(input_shape[-1], width, (3, 3), use_bias=False, rngs=rngs)
    self.norm = nnx.BatchNorm(width, rngs=rngs)
    self.blocks = nnx.List([Block(width, activation, rngs) for _ in range(blocks)])
    self.dropout = nnx.Dropout(dropout, rngs=rngs)
    self.head = nnx.Linear(width, num_outputs, rngs=rngs)

  def __call__(self, x):
    h = self.activation(self.norm(self.stem(x)))
    for block in self.blocks:
      h = block(h)
    return self.head(self.dropout(h.mean(axis=(1, 2))))  # global average pooling


def small_resnet(activation, *, input_shape, num_outputs, rngs, width=8, blocks=2, dropout=0.1):
  """A two-block ResNet with BatchNorm and Dropout, for images (height, width, channels)."""
  return SmallResNet(activation, input_shape, num_outputs, width, blocks, dropout, rngs)
