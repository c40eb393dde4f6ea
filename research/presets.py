"""Named configurations: ``python -m research compare --preset NAME [flags]``.

A preset is a :class:`~research.config.Config` whose values become the
command's defaults; any flag given beside it overrides them, e.g.
``--preset sugar-cifar100-vgg16 --dataset 'local(path="~/data")' --epochs 2``.

The SUGAR presets set up the comparison of Horuz et al. 2025 ("The
Resurrection of the ReLU"), whose headline result is on CIFAR-100 without
data augmentation: VGG-16 48.73% with ReLU against 64.47% with the B-SiLU
surrogate, ResNet-18 48.99% against 56.51%. They need the CIFAR-100 python
folder (``cifar-100-python`` with ``train`` and ``test``, from the dataset's
official page) and a GPU: VGG-16 costs 0.63 GFLOP per 32x32 image forward,
about 1.9 GFLOP per training image, and 100 epochs of 5 activations x 3 seeds
are 15 runs x 5M images, about 140 PFLOP (an estimate, not yet measured). The paper's optimiser, schedule and epoch count are not restated in
this project's sources; the presets use the standard CIFAR recipe (SGD with
momentum 0.9, batch 128, coupled weight decay 5e-4, the rate divided by 10
at 50% and 75% of 100 epochs). Results will be comparable in direction, not
digit for digit, and the summary should be read with that in mind.
"""

from __future__ import annotations

import dataclasses

from research import choices
from research.config import Config

SUGAR_ACTIVATIONS = ("relu", "sugar_bsilu", "sugar_nelu", "sugar_elu", "sugar_selu")
_SUGAR = Config(
    dataset="local(path='cifar-100-python')",
    model="vgg16",
    norm="none",
    activations=SUGAR_ACTIVATIONS,
    seeds=3,
    learning_rates=(0.01,),
    optimizer="momentum",
    momentum=0.9,
    l2_penalty=5e-4,
    schedule="multistep",
    milestones=(0.5, 0.75),
    decay_factor=0.1,
    epochs=100,
    batch_size=128,
    eval_every=1950,  # every 5 epochs of CIFAR's 50,000 images at batch 128 (390 steps each)
    augment=False,
)

PRESETS: dict[str, Config] = {
    # VGG-16 without BatchNorm: the plain deep network SUGAR reports its largest gain on.
    "sugar-cifar100-vgg16": _SUGAR,
    # ResNet-18 (CIFAR variant, BatchNorm), SGD at the usual 0.1.
    "sugar-cifar100-resnet18": dataclasses.replace(
        _SUGAR, model="resnet18", norm="default", learning_rates=(0.1,)),
}


def preset(name: str) -> Config:
  """The configuration named ``name``; a ``ValueError`` naming the valid ones otherwise.

  Examples:
    >>> preset("sugar-cifar100-vgg16").model
    'vgg16'
    >>> preset("sugar-vgg16")
    Traceback (most recent call last):
    ...
    ValueError: Unknown preset 'sugar-vgg16'. Did you mean 'sugar-cifar100-vgg16'? Presets: sugar-cifar100-vgg16, sugar-cifar100-resnet18.
  """
  if name not in PRESETS:
    raise ValueError(
        f"Unknown preset {name!r}.{choices.hint(name, PRESETS)} Presets: {', '.join(PRESETS)}.")
  return PRESETS[name]
