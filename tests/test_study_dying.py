"""The dying study end to end at tiny settings, its CLI, and its diagnosis."""

from __future__ import annotations

import csv
import json
import math

import pandas as pd
import pytest

from research import cli, devices, divergence, findings, tables
from research.config import Config
from research.findings import Estimate
from research.studies import dying

pytestmark = pytest.mark.standard_promotion  # optax's adam mixes dtypes

TINY = dying.Settings(
    datasets=("digits",), optimizers=("sgd",), rates=(0.01, 3.0),
    base=Config(activations=("relu", "necro_relu"), seeds=2, steps=60, eval_every=20, width=16),
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  out = tmp_path_factory.mktemp("dying")
  return dying.STUDY.run(TINY, out=out, quiet=True, command="python -m research dying (test)")


def test_writes_the_engine_files_the_summary_the_findings_and_the_plots(study):
  for name in ("config.json", "runs.csv", "history.csv", "layers.csv", "grids.csv",
               "summary.md", "findings.json", dying.DEAD_VS_RATE_PLOT, dying.ACCURACY_VS_RATE_PLOT):
    assert (study.out / name).stat().st_size > 0, name
  config = json.loads((study.out / "config.json").read_text())
  assert config["study"] == "dying" and config["rates"] == [0.01, 3.0]
  assert config["base"]["steps"] == 60 and config["base"]["width"] == 16


def test_findings_json_holds_the_headline_answers(study):
  content = findings.from_json((study.out / "findings.json").read_text())
  assert content["study"] == "dying"
  headlines = [answer for answer in content["answers"] if answer["headline"]]
  assert [answer["text"].split(":")[0] for answer in headlines] == [
      "CS231n's \"as much as 40% of your network can be dead\" at a high learning rate",
      "`necro_relu` at the rates where ReLU dies"]
  worst = headlines[0]["estimates"][0]
  assert headlines[0]["verdict"] == ("held" if worst["value"] >= 0.395 else "did not hold")
  assert worst["kind"] == "percent" and worst["low"] <= worst["value"] <= worst["high"]


def test_rows_carry_dataset_and_optimizer(study):
  with open(study.out / "runs.csv", newline="") as file:
    header = next(csv.reader(file))
  assert header[:3] == ["run_id", "dataset", "optimizer"]
  with open(study.out / "layers.csv", newline="") as file:
    header = next(csv.reader(file))
  for column in ("dataset", "optimizer", "layer", "inactive_fraction", "dead_fraction",
                 "weight_norm", "max_abs_weight", "gradient_norm"):
    assert column in header, column
  assert len(study.runs) == 2 * 2 * 2  # activations x rates x seeds
  assert set(study.runs["learning_rate"]) == {0.01, 3.0} and set(study.runs["optimizer"]) == {"sgd"}


def test_a_high_sgd_rate_makes_relu_lose_units(study):
  relu = study.runs[study.runs["activation"] == "relu"]
  assert not relu["diverged"].any()
  inactive = relu.groupby("learning_rate")["inactive_fraction"].mean()
  assert inactive[3.0] > inactive[0.01] + 0.1


def test_summary_numbers_come_from_the_runs(study):
  text = study.summary
  assert devices.machine_description() in text
  assert "python -m research dying (test)" in text
  runs = study.runs
  relu_high = runs.loc[(runs["activation"] == "relu") & (runs["learning_rate"] == 3.0), "dead_fraction"]
  assert f"lr 3: {Estimate.of_mean(list(relu_high), 'dead_fraction').text()}" in text
  diverged = int(runs["diverged"].sum())
  assert (f"{diverged} of {len(runs)} runs diverged" in text) if diverged else ("No run diverged." in text)
  assert "## digits, sgd: final metrics per activation and learning rate" in text


def test_rerunning_resumes_without_training(study, monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError("a finished run was trained again")

  monkeypatch.setattr(dying.experiment.programs, "train_grids", refuse)
  again = dying.STUDY.run(TINY, out=study.out, quiet=True)
  assert again.runs["run_id"].tolist() == study.runs["run_id"].tolist()


def test_default_rates_span_stable_to_divergent_per_optimizer():
  settings = dying.Settings()
  for optimizer in settings.optimizers:
    rates = dying.learning_rates(settings, optimizer)
    assert len(rates) >= 6 and list(rates) == sorted(rates), optimizer
  assert dying.learning_rates(settings, "adam")[0] <= 1e-4
  assert dying.learning_rates(settings, "adam")[-1] >= 1e-1
  assert dying.learning_rates(settings, "sgd")[-1] >= 1.0
  assert "windowed_necro_relu(negative_slope=0.1,window=3.0)" in settings.base.activations


def test_default_parts_are_the_full_study():
  parts = dying.parts(dying.Settings())
  assert [part.keys for part in parts] == [
      {"dataset": d, "optimizer": o} for d in ("mnist1d", "mnist5k") for o in ("adam", "sgd")]
  assert parts[3].config == Config(
      dataset="mnist5k", optimizer="sgd", learning_rates=(0.01, 0.1, 0.3, 0.6, 1.0, 2.0, 3.0),
      activations=dying.ACTIVATIONS, seeds=3, steps=1500, eval_every=100)
  assert sum(len(p.config.activations) * len(p.config.learning_rates) * p.config.seeds
             for p in parts) == 468
  assert "revival_relu(negative_slope=0.3)" in dying.ACTIVATIONS


def test_the_layer_mechanism_compares_pre_activations_and_kernel_growth_at_the_dying_rates():
  rows = []
  for name, lowest, growth in (("relu", -2.0, 1.5), ("necro_relu", -900.0, 40.0),
                               ("revival_relu", -1.0, 1.2)):
    for seed in (0, 1):
      for step, scale in ((0, 1.0), (100, growth)):
        rows.append({"dataset": "d", "optimizer": "adam", "learning_rate": 0.1, "name": name,
                     "run_id": f"{name}{seed}", "layer": 1, "step": step,
                     "preactivation_mean": 0.0 if step == 0 else lowest, "weight_norm": 2.0 * scale,
                     "dead_fraction": 0.5 if name == "relu" and step else 0.0})
  layers = pd.DataFrame(rows + [dict(rows[0], learning_rate=0.001, preactivation_mean=-1e9)])
  found = dying.layer_mechanism(pd.DataFrame(), layers, {("d", "adam"): [0.1]})
  by = found.set_index("name")
  assert by.loc["necro_relu", "lowest_preactivation"] == -900.0  # the 0.001 row is not a dying rate
  assert by.loc["relu", "lowest_preactivation"] == -2.0
  assert by.loc["revival_relu", "kernel_growth"] == pytest.approx(1.2)
  assert by.loc["relu", "dead_fraction"] == 0.5 and set(by["runs"]) == {2}
  [answer] = dying._mechanism_answers(found)
  assert "necro_relu -900 (kernel x40" in answer.text and "revival_relu -1 (kernel x1.2" in answer.text
  assert "necro_relu goes more than 10 times below relu's in layer 1" in answer.text
  assert "revival_relu stays within 10 times relu's in every layer" in answer.text




def _layer_rows(run_id, norms, pre):
  return pd.DataFrame([{"run_id": run_id, "step": 100 * i, "layer": layer, "weight_norm": norm,
                        "preactivation_mean": pre[layer - 1], "inactive_fraction": 0.3}
                       for i, step_norms in enumerate(norms) for layer, norm in enumerate(step_norms, 1)])


def test_diagnose_finds_the_layer_that_grows_and_its_doubling_time():
  # Layer 2 doubles every 100 steps; rows after the divergence (step 300) are ignored.
  norms = [(10.0, 10.0), (11.0, 20.0), (12.0, 40.0), (13.0, 80.0), (1e9, 1e9)]
  layers = _layer_rows("r", norms, pre=(-0.5, -900.0))
  found = divergence.diagnose({"run_id": "r", "diverged": True, "diverged_step": 300}, layers)
  assert found["layer"] == 2 and found["step"] == 300 and found["num_layers"] == 2
  assert math.isclose(found["growth"], 8.0) and math.isclose(found["doubling_steps"], 100.0)
  assert found["lowest_preactivation_mean"] == -900.0
  assert divergence.diagnose({"run_id": "other", "diverged": True, "diverged_step": 300}, layers) is None


def test_divergence_focus_prefers_a_surrogate_that_diverges_where_relu_does_not():
  def row(activation, rate, diverged):
    return {"dataset": "d", "optimizer": "o", "activation": activation, "name": activation,
            "learning_rate": rate, "diverged": diverged, "seed": 0}

  runs = pd.DataFrame([row("relu", 0.1, True), row("necro_relu", 0.1, True),
                       row("relu", 0.03, False), row("necro_relu", 0.03, True),
                       row("relu", 0.01, False), row("necro_relu", 0.01, False)])
  assert dying.divergence_focus(runs) == ("d", "o", 0.03)
  assert dying.divergence_focus(runs[4:]) is None


def test_verdicts_are_computed_from_the_rows():
  def row(activation, rate, seed, dead, diverged=False):
    return {"run_id": f"{activation}|{rate}|{seed}", "dataset": "d", "optimizer": "adam",
            "activation": activation, "name": activation, "learning_rate": rate, "seed": seed,
            "diverged": diverged, "diverged_step": 50 if diverged else None,
            "dead_fraction": dead, "inactive_fraction": dead, "test_accuracy": 0.5,
            "train_loss": 1.0}

  runs = [row("relu", 0.001, s, 0.0) for s in range(2)] + [row("relu", 0.1, s, 0.45) for s in range(2)]
  runs += [row("leaky_relu", rate, s, 0.0) for rate in (0.001, 0.1) for s in range(2)]
  runs += [row("necro_relu", 0.001, s, 0.0) for s in range(2)]
  runs += [row("necro_relu", 0.1, s, None, diverged=True) for s in range(2)]
  found = dying.analyse(TINY, tables.Tables.of(runs))
  text = findings.to_markdown(found, name="dying")
  assert "| d | adam | leaky_relu | 0.1 | 2 | 0 | 0.0% [0.0, 0.0] |" in text
  assert ("`leaky_relu` at the rates where ReLU dies: prevents dying on d/adam (0.0% [0.0, 0.0]"
          " dead). (held)") in text
  assert ("`necro_relu` at the rates where ReLU dies: diverges more often than ReLU on d/adam"
          " (2/2 diverged, ReLU 0/2). (did not hold)") in text
  assert ("CS231n's \"as much as 40% of your network can be dead\" at a high learning rate: the"
          " largest mean dead fraction of ReLU over every dataset and optimizer is 45.0% [45.0, 45.0]."
          " (held)") in text
  assert ("`necro_relu` diverged in 2 of 2 runs where ReLU merely lost 45.0% [45.0, 45.0] of its"
          " units. It blew up within 50 steps (median)") in text
  assert "| d | adam | necro_relu | 0.1 | 2/2 | 50 | - |" in text  # no layer record: no diagnosis
  remedy = found.tables[0].frame.set_index("activation")["verdict"]
  assert remedy.to_dict() == {"relu": "baseline", "leaky_relu": "prevents",
                              "necro_relu": "diverges instead (from lr 0.1; ReLU does not diverge there)"}
  assert found.plots == (dying.DEAD_VS_RATE_PLOT, dying.ACCURACY_VS_RATE_PLOT, dying.DIVERGENCE_PLOT)


def test_accuracy_pairs_pair_each_remedy_with_relu_and_leaky_relu_by_seed_and_rate():
  def row(activation, rate, seed, accuracy, diverged=False):
    name = activation.split("(")[0]
    return {"dataset": "d", "optimizer": "adam", "activation": activation, "name": name,
            "learning_rate": rate, "seed": seed, "diverged": diverged,
            "test_accuracy": None if diverged else accuracy}

  runs = [row("relu", rate, s, 0.50 + 0.01 * s) for rate in (0.01, 0.1, 0.3) for s in range(3)]
  runs += [row("leaky_relu(negative_slope=0.01)", rate, s, 0.60 + 0.01 * s)
           for rate in (0.01, 0.1, 0.3) for s in range(3)]
  runs += [row("revival_relu", rate, s, 0.55 + 0.02 * s, diverged=(rate, s) == (0.3, 2))
           for rate in (0.01, 0.1, 0.3) for s in range(3)]
  pairs = dying.accuracy_pairs(pd.DataFrame(runs), {("d", "adam"): [0.1, 0.3]})
  mine = pairs[pairs["name"] == "revival_relu"].set_index(["baseline", "learning_rate"])
  # pooled over the two dying rates (0.01 is not one): 3 + 2 pairs, the diverged run left out
  assert mine.loc[("relu", "pooled"), "pairs"] == 5 and mine.loc[("relu", "pooled"), "diverged"] == 1
  assert mine.loc[("relu", "pooled"), "difference"] == pytest.approx((0.05 + 0.06 + 0.07 + 0.05 + 0.06) / 5)
  assert mine.loc[("leaky_relu", 0.1), "difference"] == pytest.approx(-0.04)
  assert mine.loc[("leaky_relu", 0.1), "wins"] == 0 and mine.loc[("relu", 0.1), "wins"] == 3
  assert 0.01 not in set(pairs["learning_rate"])
  [answer] = dying._accuracy_answers(pairs)
  assert answer.text.startswith("`revival_relu` at the rates where ReLU dies")
  assert "d/adam minus relu {}, minus leaky_relu {} (1 diverged run left out)" in answer.text
  assert answer.verdict == "did not hold" and answer.headline
