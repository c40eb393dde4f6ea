"""The standard CIFAR augmentation, on the device inside the compiled program.

Each image of a batch is padded by ``padding`` zeros on each side, cropped back
to its size at a random offset, and flipped left-right with probability 1/2,
all drawn from one key: the engine folds the run's seeded noise key with the
step, so runs of one seed see the same augmented batches whatever their
activation. The images are already standardised, so the zero padding is the
channel mean, not black.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array


def random_crop_and_flip(key: Array, images: Array, padding: int = 4) -> Array:
  """Random crops (``padding`` pixels each side) and horizontal flips of an NHWC batch.

  Examples:
    >>> images = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)
    >>> out = random_crop_and_flip(jax.random.key(0), images, padding=1)
    >>> out.shape, out.dtype
    ((2, 4, 4, 1), dtype('float32'))
    >>> flipped = random_crop_and_flip(jax.random.key(0), images, padding=0)
    >>> [bool(jnp.all(o == i)) or bool(jnp.all(o == i[:, ::-1])) for o, i in zip(flipped, images)]
    [True, True]
  """
  if images.ndim != 4:
    raise ValueError(
        f"random_crop_and_flip needs a batch of images (batch, height, width, channels),"
        f" got shape {images.shape}.")
  if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
    raise ValueError(f"padding must be a non-negative integer, got {padding!r}.")
  count, height, width, _ = images.shape
  offset_key, flip_key = jax.random.split(key)
  offsets = jax.random.randint(offset_key, (count, 2), 0, 2 * padding + 1)
  flips = jax.random.bernoulli(flip_key, 0.5, (count,))
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

  def one(image: Array, offset: Array, flip: Array) -> Array:
    crop = jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, image.shape[-1]))
    return jnp.where(flip, crop[:, ::-1], crop)

  return jax.vmap(one)(padded, offsets, flips)
