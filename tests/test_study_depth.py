"""The depth study: ReLU-forward surrogates against relu in deep VGGs and ResNets, paired by seed."""

from __future__ import annotations

import dataclasses

import pytest

from research.config import Config
from research.studies import depth, surrogates

pytestmark = pytest.mark.standard_promotion  # trains with optax

TINY = depth.Settings(
    networks=("vgg11(width=2)", "resnet20(width=2, norm='none')"), optimizers=("adam",),
    plain_optimizers=(), more_datasets=(), augmented=False,
    base=Config(activations=("relu", "necro_relu", "revival_relu"), seeds=2,
                steps=6, batch_size=16, eval_every=3))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return depth.STUDY.run(TINY, out=tmp_path_factory.mktemp("depth"), quiet=True)


def test_every_network_activation_seed_and_rate_is_a_run(tiny):
  runs = tiny.tables.runs
  assert len(runs) == 2 * 3 * 2 * 2  # networks x activations x seeds x adam's two rates
  assert set(runs["network"]) == {"vgg11, 8 conv, plain", "resnet20, 19 conv, skip"}
  layers = tiny.tables.layers
  assert layers.groupby("network")["layer"].max().to_dict() == {
      "vgg11, 8 conv, plain": 9, "resnet20, 19 conv, skip": 20}  # activation calls + the head


@pytest.mark.parametrize("name", ["necro_relu", "revival_relu"])
def test_a_relu_forward_surrogate_starts_exactly_where_relu_starts(tiny, name):
  history = tiny.tables.history
  for network in set(history["network"]):
    mine = history[history["network"] == network]
    assert surrogates.step_zero_matches(mine, name) == (4, 4)  # 2 seeds x 2 rates


def test_the_answers_have_paired_differences_for_each_question(tiny):
  found = tiny.findings
  topics = [answer.topic for answer in found.answers]
  for topic in ("(a) A plain deep network", "(b) Does BatchNorm or a skip connection remove the effect?",
                "(c) Is the gain explained by relu's dead channels?", "Comparability with SUGAR"):
    assert topic in topics
  cells = found.data["differences"]
  assert len(cells) == 2 * 2 * 2  # (network, rate) x the two surrogates
  assert set(cells["pairs"]) == {2} and set(cells["baseline"]) == {"relu"}
  pooled = found.data["pooled_differences"]
  assert set(pooled["pairs"]) == {4}  # 2 rates x 2 seeds pooled per network
  for plot in (depth.DIFFERENCES_PLOT, depth.LAYERS_PLOT):
    assert (tiny.out / plot).stat().st_size > 1000
  assert "python -m research compare --preset sugar-cifar100-vgg16" in tiny.summary


def test_the_default_grid_and_the_extra_parts():
  found = depth.parts(depth.Settings())
  assert len(found) == 5 + 2 + 1 + 1  # adam x 5 networks, momentum x 2 plain, mnist5k, augmented
  keys = [(p.keys["network"], p.keys["dataset"], p.keys["augment"], p.keys["optimizer"]) for p in found]
  assert keys[5:7] == [("vgg11, 8 conv, plain", "digits", False, "momentum"),
                       ("vgg16, 13 conv, plain", "digits", False, "momentum")]
  mnist5k, augmented = found[7], found[8]
  assert mnist5k.config.model == "vgg11(width=8)" and len(mnist5k.config.activations) == 5
  assert augmented.config.augment and augmented.config.model == "vgg11(width=16)"
  assert {p.config.learning_rates for p in found if p.keys["optimizer"] == "momentum"} == {(0.01, 0.03)}
  assert sum(len(p.config.activations) * len(p.config.learning_rates) * p.config.seeds
             for p in found) == 462


@pytest.mark.parametrize("change,message", [
    (dict(networks=("resnet20",)), "at least one plain network"),
    (dict(optimizers=("adam", "adam")), "optimizers must name one or more distinct values"),
    (dict(base=Config(activations=("necro_relu",))), "must include relu once"),
    (dict(base=Config(activations=("relu", "necro_relu"), seeds=1), more_datasets=()),
     "base.seeds must be 2 or more"),
    (dict(more_data_activations=("relu", "elu")), "more_data_activations must be among base.activations"),
])
def test_bad_settings_are_refused_by_name(change, message):
  with pytest.raises(ValueError, match=message):
    depth.validate(dataclasses.replace(depth.Settings(), **change))
