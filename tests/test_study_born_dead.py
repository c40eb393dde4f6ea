"""The born-dead study: born-dead probability as a vmapped program, collapse through the engine."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
import pandas as pd
import pytest
from flax import nnx

import activations
from research import models
from research.studies import born_dead

pytestmark = pytest.mark.standard_promotion  # trains with optax
# One compiled program per (width, init): every test draws this many networks of depth 20.
SHARED = {"trials": 256, "grid_points": 51}


def _rows(path):
  with open(path, newline="", encoding="utf-8") as file:
    return list(csv.DictReader(file))


def test_a_width_2_depth_20_he_network_is_born_dead_in_more_than_half_of_256_trials():
  counts = born_dead.born_dead_fractions(2, [1, 5, 10, 20], "he_normal", **SHARED)
  assert counts[20] > 128
  assert counts[1] == 0  # one layer of 1-D input, zero bias: a unit is active for x > 0 or x < 0


def test_the_program_draws_networks_as_the_engines_mlp_does():
  # The same born-dead rate as research.models.MLP (what the engine trains), within noise.
  inputs = jnp.linspace(-math.sqrt(3), math.sqrt(3), 51).reshape(-1, 1)

  def mlp_born_dead(key):
    model = models.build("mlp", (1,), 1, width=3, depth=10, activation=activations.relu,
                         init="he_normal", rngs=nnx.Rngs(params=key))
    return jnp.any(jnp.stack([jnp.all(z <= 0) for z in model.forward(inputs).preactivations]))

  keys = jax.random.split(jax.random.key(1), 1024)
  engine = float(jnp.mean(jax.jit(jax.vmap(mlp_born_dead))(keys)))  # about 62%
  study = born_dead.born_dead_fractions(3, [10, 20], "he_normal", **SHARED)[10] / 256
  assert abs(engine - study) < 0.1, (engine, study)  # 3 standard errors


def test_the_lower_bound_is_below_the_measurement_and_tends_to_one():
  counts = born_dead.born_dead_fractions(2, [1, 5, 10, 20], "he_normal", **SHARED)
  for depth in (5, 10, 20):
    assert counts[depth] / 256 > born_dead.he_lower_bound(2, depth)
  assert born_dead.he_lower_bound(2, 200) > 0.999


def test_rai_is_born_dead_less_often_than_he():
  he = born_dead.born_dead_fractions(3, [10, 20], "he_normal", **SHARED)[10]
  rai = born_dead.born_dead_fractions(3, [10, 20], "rai", **SHARED)[10]
  assert rai < he / 2, (rai, he)


@functools.cache
def _tiny(folder):
  base = dataclasses.replace(born_dead.Settings().base, seeds=3, steps=4, batch_size=8, depth=3)
  settings = born_dead.Settings(widths=(3,), depths=(2, 20), base=base, **SHARED)
  return settings, born_dead.STUDY.run(settings, out=folder, quiet=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return _tiny(str(tmp_path_factory.mktemp("born_dead")))


def test_the_study_writes_its_files_and_columns(tiny):
  settings, outcome = tiny
  for name in ("born_dead.csv", "collapse.csv", "summary.md", "findings.json", "born_dead.png", "collapse.png",
               "runs.csv", "layers.csv", "config.json"):
    assert (outcome.out / name).exists(), name
  rows = _rows(outcome.out / "born_dead.csv")
  assert list(rows[0]) == ["width", "depth", "init", "trials", "born_dead_fraction"]
  assert len(rows) == 1 * 2 * 2  # widths x depths x inits
  for width in ("3",):
    for init in ("he_normal", "rai"):
      by_depth = {r["depth"]: float(r["born_dead_fraction"]) for r in rows
                  if r["width"] == width and r["init"] == init}
      assert by_depth["2"] <= by_depth["20"]  # a deeper network holds the shallower one's layers
  collapse = _rows(outcome.out / "collapse.csv")
  assert [r["init"] for r in collapse] == ["he_normal", "rai"]
  assert list(collapse[0])[:3] == ["init", "trials", "collapse_fraction"]
  assert all(r["trials"] == "3" for r in collapse)


def test_the_collapse_fraction_is_read_from_the_final_layers(tiny):
  settings, outcome = tiny
  layers = _rows(outcome.out / "layers.csv")
  final = {}
  for row in layers:
    if row["step"] == str(settings.base.steps) and int(row["layer"]) <= settings.base.depth:
      final[row["run_id"]] = final.get(row["run_id"], False) or float(row["inactive_fraction"]) == 1.0
  init_of = {row["run_id"]: row["init"] for row in _rows(outcome.out / "runs.csv")}
  for _, row in outcome.findings.data["collapse"].iterrows():
    ids = [run for run, init in init_of.items() if init == row["init"]]
    assert row["collapse_fraction"] == sum(final[run] for run in ids) / len(ids)


def test_the_summary_answers_with_intervals_hardware_and_command(tiny):
  _, outcome = tiny
  text = outcome.summary
  assert "Wilson" in text and "Lu et al." in text and "machine:" in text and "wall time" in text
  assert "research.studies.run('born-dead', Settings(" in text  # how it was run, from Python here
  headlines = [answer.render() for answer in outcome.findings.headlines]
  assert [line.split(":")[0] for line in headlines] == [
      "Trained width-2, depth-3 networks on |x|, he_normal", "Trained width-2, depth-3 networks on |x|, rai"]
  assert all("% [" in line and "of 3 runs" in line for line in headlines)
  written = json.loads((outcome.out / "findings.json").read_text())
  assert written["study"] == "born-dead" and written["data"] == ["born_dead.csv", "collapse.csv"]
  assert [a["text"] for a in written["answers"] if a["headline"]] == headlines
  assert written["answers"][-1]["estimates"][0]["kind"] == "percent"


def test_rerunning_the_folder_reads_the_born_dead_counts_back_and_trains_nothing(tiny):
  settings, outcome = tiny
  again = born_dead.STUDY.run(settings, out=outcome.out, quiet=True)
  pd.testing.assert_frame_equal(again.tables.measured["born_dead"], outcome.tables.measured["born_dead"])
  assert again.tables.runs["run_id"].tolist() == outcome.tables.runs["run_id"].tolist()
  assert len(again.tables.grids) == len(outcome.tables.grids)  # no program trained again
  assert again.summary.split("## Reproduce")[0] == outcome.summary.split("## Reproduce")[0]
