"""Tests of research.plots: valid PNGs, one panel per layer, the awkward cases."""

from __future__ import annotations

import math
import os

import matplotlib
import matplotlib.figure
import matplotlib.image
import numpy as np
import pytest

from research import plots

ACTIVATIONS = ("relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)")
STEPS = (0, 50, 100)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_rows(num_seeds: int = 4, num_layers: int = 2, diverged=(), regression=False):
  """Runs, history and layer rows: 3 activations x ``num_seeds`` seeds, known curves."""
  runs, history, layer_rows = [], [], []
  for index, activation in enumerate(ACTIVATIONS):
    for seed in range(num_seeds):
      run_id = f"{activation}|seed={seed}|learning_rate=0.01"
      is_diverged = (activation.split("(")[0], seed) in diverged
      accuracy = 0.6 + 0.02 * index + 0.01 * seed
      layers = {layer + 1: 0.1 * (layer + 1) for layer in range(num_layers)}
      runs.append({
          "run_id": run_id, "activation": activation, "name": activation.split("(")[0],
          "grid": activation, "seed": seed, "learning_rate": 0.01,
          "diverged": is_diverged, "diverged_step": 50 if is_diverged else None,
          "test_accuracy": math.nan if regression else accuracy,
          "test_loss": 1 - accuracy, "train_loss": (1 - accuracy) / 2,
          "dead_fraction": 0.2, "sparsity": 0.5,
      })
      for step in STEPS:
        progress = step / STEPS[-1]
        history.append({
            "run_id": run_id, "activation": activation, "seed": seed,
            "learning_rate": 0.01, "step": step, "diverged": is_diverged and step >= 50,
            "test_accuracy": math.nan if regression else 0.1 + (accuracy - 0.1) * progress,
            "test_loss": 2.3 - (1.3 + accuracy) * progress,
            "train_loss": math.nan if is_diverged and step >= 50 else 2.3 / (1 + step),
            "dead_fraction": 0.2 * progress, "sparsity": 0.5,
        })
        layer_rows += [
            {"run_id": run_id, "step": step, "layer": layer,
             "inactive_fraction": value * progress, "dead_fraction": value * progress / 2}
            for layer, value in layers.items()
        ]
  return runs, history, layer_rows


@pytest.fixture
def figures(monkeypatch):
  """The figures write_plots saves, in order, to inspect their panels."""
  saved = []
  savefig = matplotlib.figure.Figure.savefig

  def recording_savefig(self, *args, **kwargs):
    saved.append(self)
    return savefig(self, *args, **kwargs)

  monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
  return saved


def _panels(figure) -> list:
  return [axis for axis in figure.axes if axis.get_visible()]


def _assert_png(path) -> None:
  content = path.read_bytes()
  assert len(content) > 1000 and content.startswith(PNG_SIGNATURE)
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) > 100


def test_writes_three_valid_pngs_atomically(tmp_path, figures):
  backend = matplotlib.get_backend()
  runs, history, layers = make_rows()
  paths = plots.write_plots(tmp_path / "out", runs, history, layers)
  assert [path.name for path in paths] == [
      "learning_curves.png", "dead_fraction.png", "final_accuracy.png"]
  for path in paths:
    assert path.parent == tmp_path / "out"
    _assert_png(path)
  assert sorted(os.listdir(tmp_path / "out")) == sorted(path.name for path in paths)
  assert matplotlib.get_backend() == backend  # the caller's backend is untouched

  curves, dead, final = figures
  metric_axis, loss_axis = _panels(curves)
  assert metric_axis.get_title() == "test accuracy" and loss_axis.get_title() == "train loss"
  assert [line.get_label() for line in metric_axis.get_lines()] == list(ACTIVATIONS)
  # The relu line is the mean over seeds, in percent: its last point is known.
  relu_final = np.mean([0.6 + 0.01 * seed for seed in range(4)])
  assert metric_axis.get_lines()[0].get_ydata()[-1] == pytest.approx(100 * relu_final)
  assert len(metric_axis.collections) == 3  # one 95% band per configuration
  assert [axis.get_title() for axis in _panels(dead)] == [
      "hidden layer 1: inactive units", "hidden layer 2: inactive units",
      "hidden layer 1: dead units", "hidden layer 2: dead units"]
  (final_axis,) = _panels(final)
  assert "diverged" not in final_axis.get_title()


def test_one_column_per_hidden_layer(tmp_path, figures):
  runs, history, layers = make_rows(num_layers=5)
  plots.write_plots(tmp_path, runs, history, layers)
  titles = [axis.get_title() for axis in _panels(figures[1])]
  assert titles[:5] == [f"hidden layer {layer}: inactive units" for layer in range(1, 6)]
  assert titles[5:] == [f"hidden layer {layer}: dead units" for layer in range(1, 6)]


def test_a_deep_network_is_drawn_as_a_profile_over_its_layers(tmp_path, figures):
  depth = plots.MAX_LAYER_PANELS + 13  # a ResNet-20's 19 activation calls
  runs, history, layers = make_rows(num_layers=depth)
  plots.write_plots(tmp_path, runs, history, layers)
  inactive, dead = _panels(figures[1])
  assert inactive.get_title() == "inactive units at the last evaluation"
  assert dead.get_title() == "dead units at the last evaluation"
  relu = inactive.get_lines()[0]
  assert relu.get_label() == "relu"
  # x: the layer; y: the last evaluation's fraction (0.1 * layer in make_rows), in percent.
  np.testing.assert_allclose(relu.get_xdata(), np.arange(1, depth + 1))
  np.testing.assert_allclose(relu.get_ydata(), 10.0 * np.arange(1, depth + 1))
  np.testing.assert_allclose(dead.get_lines()[0].get_ydata(), 5.0 * np.arange(1, depth + 1))


def test_layers_missing_from_some_runs_or_all(tmp_path, figures):
  runs, history, layers = make_rows(num_layers=2)
  # A deeper model for one activation only: its third layer gets its own panels.
  layers += [dict(row, layer=3) for row in layers if row["run_id"].startswith("relu|") and row["layer"] == 2]
  plots.write_plots(tmp_path / "deeper", runs, history, layers)
  third = _panels(figures[1])[2]
  assert third.get_title() == "hidden layer 3: inactive units"
  assert [line.get_label() for line in third.get_lines()] == ["relu"]

  figures.clear()
  paths = plots.write_plots(tmp_path / "none", runs, history, [])
  assert [path.name for path in paths] == ["learning_curves.png", "final_accuracy.png"]


def test_bands_of_fractions_stay_within_0_and_100_percent(tmp_path, figures):
  runs, history, layers = make_rows(num_seeds=2)
  for row in layers:  # two seeds far apart: the t interval spans far beyond [0, 1]
    row["inactive_fraction"] = 0.0 if row["run_id"].endswith("seed=0|learning_rate=0.01") else 0.9
  plots.write_plots(tmp_path, runs, history, layers)
  panel = _panels(figures[1])[0]
  for band in panel.collections:
    for path in band.get_paths():
      assert path.vertices[:, 1].min() >= 0.0 and path.vertices[:, 1].max() <= 100.0


def test_single_seed_and_all_diverged_configuration(tmp_path, figures):
  runs, history, layers = make_rows(num_seeds=1, diverged=(("leaky_relu", 0),))
  paths = plots.write_plots(tmp_path, runs, history, layers)
  for path in paths:
    _assert_png(path)
  metric_axis, _ = _panels(figures[0])
  # One seed: a line without a band; the diverged configuration: no line at all.
  assert [line.get_label() for line in metric_axis.get_lines()] == [ACTIVATIONS[0], ACTIVATIONS[2]]
  assert len(metric_axis.collections) == 0
  (final_axis,) = _panels(figures[2])
  assert "1 diverged run (red x)" in final_axis.get_title()
  crosses = final_axis.collections[-1]
  assert crosses.get_label() == "diverged run"
  (x, y), = crosses.get_offsets()
  assert abs(x - 1) <= 0.15 and y < final_axis.get_ylim()[0] + 0.5 * np.ptp(final_axis.get_ylim())


def test_diverged_runs_are_left_out_of_the_curves(tmp_path, figures):
  runs, history, layers = make_rows(diverged=(("relu", 0), ("relu", 1)))
  plots.write_plots(tmp_path, runs, history, layers)
  metric_axis, loss_axis = _panels(figures[0])
  relu_final = np.mean([0.6 + 0.01 * seed for seed in (2, 3)])
  assert metric_axis.get_lines()[0].get_ydata()[-1] == pytest.approx(100 * relu_final)
  assert np.all(np.isfinite(loss_axis.get_lines()[0].get_ydata()))
  assert loss_axis.get_yscale() == "log"
  assert "2 diverged runs (red x)" in _panels(figures[2])[0].get_title()


def test_regression_plots_test_loss(tmp_path, figures):
  runs, history, layers = make_rows(num_seeds=2, regression=True)
  plots.write_plots(tmp_path, runs, history, layers)
  metric_axis, _ = _panels(figures[0])
  assert metric_axis.get_title() == "test loss" and metric_axis.get_ylabel() == "test loss"
  assert "Final test loss" in _panels(figures[2])[0].get_title()


def test_rewriting_replaces_the_files(tmp_path):
  runs, history, layers = make_rows(num_seeds=2)
  first = plots.write_plots(tmp_path, runs[:2], history[:6], layers[:12])
  second = plots.write_plots(tmp_path, runs, history, layers)
  assert first[0] == second[0]
  assert sorted(os.listdir(tmp_path)) == sorted(path.name for path in second)
