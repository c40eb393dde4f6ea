"""Convolutions as patches times a matrix: XLA:CPU's fast path inside a training loop.

XLA on CPU runs a convolution fast only in its canonical layout (NHWC input,
HWIO kernel). Inside the engine's ``lax.scan`` over training steps, layout
assignment gives the weight- and input-gradient convolutions other layouts,
and XLA:CPU falls back to a generic loop emitter for them
(`jax#12868 <https://github.com/jax-ml/jax/issues/12868>`_): a VGG-11 step of
64 MNIST images (width 8) took 195 ms inside ``scan`` and 34 ms as one jitted
step on a 2-core AMD EPYC. Written as shifted slices concatenated along the
channels (the "patches") and one matrix product, the forward and backward
passes are slices, pads and matmuls, which XLA:CPU runs well anywhere: 15 ms
per step inside ``scan`` on the same machine.

The two give the same values up to float32 rounding (the sums run in another
order), so the choice is part of a model's spec (``convolution=``), never
made silently; :func:`resolve` picks ``patches`` on CPU and XLA's convolution
on GPU and TPU for ``"auto"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import Array, lax

IMPLEMENTATIONS = ("auto", "xla", "patches")


def resolve(implementation: str) -> str:
  """``"patches"`` or ``"xla"``: what ``"auto"`` means on the default backend.

  Examples:
    >>> resolve("xla")
    'xla'
    >>> resolve("auto") in ("patches", "xla")
    True
  """
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"convolution={implementation!r} is not valid; choose from "
                     f"{', '.join(IMPLEMENTATIONS)}.")
  if implementation == "auto":
    return "patches" if jax.default_backend() == "cpu" else "xla"
  return implementation


def patches_convolution(inputs: Array, kernel: Array, window_strides: Sequence[int],
                        padding: str | Sequence[tuple[int, int]],
                        lhs_dilation: Sequence[int] | None = None,
                        rhs_dilation: Sequence[int] | None = None,
                        dimension_numbers=None, feature_group_count: int = 1,
                        precision=None, **unused_keywords) -> Array:
  """A 2-D NHWC/HWIO convolution as concatenated shifted slices times the flattened kernel.

  A drop-in for ``lax.conv_general_dilated`` as ``nnx.Conv`` calls it
  (``nnx.Conv(..., conv_general_dilated=patches_convolution)``); dilated or
  grouped convolutions go to ``lax.conv_general_dilated`` itself.

  Examples:
    >>> x = jnp.arange(2 * 5 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 5, 3) / 50
    >>> k = jnp.ones((3, 3, 3, 4)) / 27
    >>> numbers = ("NHWC", "HWIO", "NHWC")
    >>> expected = lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=numbers)
    >>> bool(jnp.allclose(patches_convolution(x, k, (2, 2), "SAME"), expected, atol=1e-6))
    True
  """
  plain = (all(d == 1 for d in lhs_dilation or (1,)) and all(d == 1 for d in rhs_dilation or (1,))
           and feature_group_count == 1 and inputs.ndim == 4)
  if not plain:
    return lax.conv_general_dilated(
        inputs, kernel, window_strides, padding, lhs_dilation, rhs_dilation,
        dimension_numbers=dimension_numbers or ("NHWC", "HWIO", "NHWC"),
        feature_group_count=feature_group_count, precision=precision)
  kernel_height, kernel_width, in_channels, out_channels = kernel.shape
  stride_height, stride_width = window_strides
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(inputs.shape[1:3], kernel.shape[:2], window_strides, padding)
  padded = jnp.pad(inputs, ((0, 0), *padding, (0, 0)))
  out_height = (padded.shape[1] - kernel_height) // stride_height + 1
  out_width = (padded.shape[2] - kernel_width) // stride_width + 1
  slices = [padded[:, i:i + (out_height - 1) * stride_height + 1:stride_height,
                   j:j + (out_width - 1) * stride_width + 1:stride_width, :]
            for i in range(kernel_height) for j in range(kernel_width)]
  patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
  matrix = kernel.reshape(kernel_height * kernel_width * in_channels, out_channels)
  return jnp.matmul(patches, matrix, precision=precision)
