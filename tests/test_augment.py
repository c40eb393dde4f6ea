"""The CIFAR augmentation: crops and flips drawn from one key, nothing else changed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import augment

IMAGES = jax.random.normal(jax.random.key(0), (16, 6, 6, 3))


@pytest.mark.parametrize("use_jit", [False, True])
def test_each_output_is_a_shifted_window_of_the_padded_image_maybe_flipped(use_jit):
  function = jax.jit(augment.random_crop_and_flip, static_argnums=2) if use_jit else (
      augment.random_crop_and_flip)
  out = function(jax.random.key(3), IMAGES, 2)
  assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
  padded = np.pad(np.asarray(IMAGES), ((0, 0), (2, 2), (2, 2), (0, 0)))
  windows = []
  for image, result in zip(padded, np.asarray(out)):
    found = [(row, column, flip) for row in range(5) for column in range(5) for flip in (0, 1)
             if np.array_equal(result, (lambda w: w[:, ::-1] if flip else w)(
                 image[row:row + 6, column:column + 6]))]
    assert found, "an output is not a crop of its padded image"
    windows.append(found[0])
  assert len(set(windows)) > 4  # offsets and flips vary across the batch


def test_the_same_key_gives_the_same_batch_and_another_key_another():
  first = augment.random_crop_and_flip(jax.random.key(1), IMAGES)
  np.testing.assert_array_equal(first, augment.random_crop_and_flip(jax.random.key(1), IMAGES))
  assert not np.array_equal(first, augment.random_crop_and_flip(jax.random.key(2), IMAGES))


def test_zero_padding_only_flips():
  out = np.asarray(augment.random_crop_and_flip(jax.random.key(4), IMAGES, padding=0))
  flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, np.asarray(IMAGES))]
  same = [np.array_equal(o, i) for o, i in zip(out, np.asarray(IMAGES))]
  assert all(f or s for f, s in zip(flipped, same)) and 0 < sum(flipped) < len(out)


@pytest.mark.parametrize("images,padding,message", [
    (jnp.ones((4, 6, 6)), 4, "needs a batch of images"),
    (IMAGES, -1, "padding must be a non-negative integer"),
    (IMAGES, 1.5, "padding must be a non-negative integer"),
])
def test_bad_input_is_named(images, padding, message):
  with pytest.raises(ValueError, match=message):
    augment.random_crop_and_flip(jax.random.key(0), images, padding)
