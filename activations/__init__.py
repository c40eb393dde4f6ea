"""Activations whose backward pass differs on purpose from the true derivative.

Build a surrogate in one line, or take one from the catalogue:

>>> import functools, jax, jax.numpy as jnp
>>> import activations
>>> x = jnp.array([-2.0, 3.0])
>>> activations.necro_relu(x)
Array([0., 3.], dtype=float32)
>>> jax.grad(lambda x: activations.necro_relu(x).sum())(x)
Array([0.1, 1. ], dtype=float32)
>>> mine = activations.surrogate(jax.nn.relu, jax.nn.softplus)
>>> activations.backward_derivative(mine)(jnp.array([0.0]))
Array([0.5], dtype=float32)
"""

from activations._core import (
    IMPLS,
    Impl,
    backward_derivative,
    custom_backward,
    elementwise_derivative,
    surrogate,
    with_derivative,
)
from activations.baselines import (
    abs,
    celu,
    elu,
    gelu,
    hard_tanh,
    identity,
    leaky_relu,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softplus,
    tanh,
)
from activations.interpreter import Call, intercept
from activations.plotting import plot
from activations.registry import (
    catalogue_markdown,
    get,
    hyperparameters,
    impls,
    names,
    register,
    unregister,
)
from activations.relu_family import (
    necro_relu,
    relu_with_leaky_backward,
    sugar_bsilu,
    sugar_elu,
    sugar_gelu,
    sugar_nelu,
    sugar_selu,
    sugar_silu,
    sugar_softplus,
    windowed_necro_relu,
)
from activations.revival import revival_relu
from activations.spec import parse_spec
from activations.spiking import (
    heaviside_arctan,
    heaviside_boxcar,
    heaviside_fast_sigmoid,
    heaviside_gaussian,
    heaviside_sigmoid,
    heaviside_straight_through,
    heaviside_triangle,
    sign_straight_through,
)

from activations.stats import ActivationStats, activation_stats
from activations.swap import SwappedModule, swap
from activations import functional  # registers the mixed combinator with the registry
from activations import testing  # noqa: E402 (after the catalogue it tests)

__version__ = "0.1.0"

__all__ = [
    "IMPLS",
    "ActivationStats",
    "Call",
    "Impl",
    "SwappedModule",
    "abs",
    "activation_stats",
    "backward_derivative",
    "catalogue_markdown",
    "celu",
    "custom_backward",
    "elementwise_derivative",
    "elu",
    "gelu",
    "get",
    "hard_tanh",
    "heaviside_arctan",
    "heaviside_boxcar",
    "heaviside_fast_sigmoid",
    "heaviside_gaussian",
    "heaviside_sigmoid",
    "heaviside_straight_through",
    "heaviside_triangle",
    "hyperparameters",
    "identity",
    "impls",
    "intercept",
    "leaky_relu",
    "names",
    "necro_relu",
    "parse_spec",
    "plot",
    "register",
    "relu",
    "relu6",
    "relu_with_leaky_backward",
    "revival_relu",
    "selu",
    "sigmoid",
    "sign_straight_through",
    "silu",
    "softplus",
    "sugar_bsilu",
    "sugar_elu",
    "sugar_gelu",
    "sugar_nelu",
    "sugar_selu",
    "sugar_silu",
    "sugar_softplus",
    "surrogate",
    "swap",
    "tanh",
    "testing",
    "unregister",
    "windowed_necro_relu",
    "with_derivative",
]
