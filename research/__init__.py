"""Experiments on surrogate activations: data, models, training and studies.

Built on the public API of :mod:`activations` only.
"""
