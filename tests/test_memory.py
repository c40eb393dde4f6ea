"""Grids that cannot fit are refused in one line, before any run is listed or compiled."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import pytest

from research import (
    cli, data, experiment, grid, memory, memory_check, memory_trace, precompile, programs, train,
)
from research.bench import memory_estimate, report, targets
from research.config import Config

pytestmark = pytest.mark.standard_promotion  # optax's adam state, evaluated abstractly

XOR = "xor(num_train=100, num_test=100)"


@pytest.fixture(autouse=True)
def _keep_xla_flags(monkeypatch):
  # cli.main asks for one CPU device per core; keep that out of other tests.
  monkeypatch.setenv("XLA_FLAGS", "")


@pytest.fixture
def nothing_is_built(monkeypatch):
  """Fails the test if a large list of runs is built, or anything compiled or trained."""
  expand = grid.expand

  def guarded(config, *args, **kwargs):
    if config.seeds * len(config.learning_rates) > 1000:
      pytest.fail(f"listed {config.seeds:,} seeds' runs")
    return expand(config, *args, **kwargs)

  monkeypatch.setattr(grid, "expand", guarded)
  monkeypatch.setattr(precompile, "compile_ahead", lambda *a, **k: pytest.fail("compiled"))
  monkeypatch.setattr(programs, "train_grids", lambda *a, **k: pytest.fail("trained"))


@pytest.mark.parametrize("flags", [
    ["--seeds", "5000", "--width", "4096"],  # XLA aborted after ~70 s
    ["--width", "100000"],  # hung in the initialisation
    ["--seeds", "2000000000"],  # grew a list of runs until MemoryError
], ids=["seeds-and-width", "width", "seeds"])
def test_a_grid_that_cannot_fit_is_refused_in_one_line_at_once(flags, tmp_path, capsys,
                                                               nothing_is_built):
  started = time.perf_counter()
  status = cli.main(["compare", *flags, "--out", str(tmp_path / "never")])
  seconds = time.perf_counter() - started
  err = capsys.readouterr().err
  assert status == 2, err
  assert seconds < 15  # counted and evaluated abstractly: nothing trained or compiled
  assert len(err.strip().splitlines()) == 1, err
  assert err.startswith("error: compare needs about ") and " for its largest program (" in err
  assert "parameters and adam state" in err and "but this machine has " in err
  assert "available: reduce --seeds" in err or "available: reduce --width" in err
  assert not (tmp_path / "never").exists()  # refused before the folder was opened


def test_the_default_compare_is_not_refused(tmp_path, monkeypatch):
  class Checked(Exception):
    pass

  def listing(*args):  # the runs are listed after the check
    raise Checked

  monkeypatch.setattr(experiment, "_grids", listing)
  with pytest.raises(Checked):
    experiment.prepare(Config(), tmp_path / "out")
  found = memory.check_fits(Config(), data.load("mnist1d"))
  assert found.runs == 15 and found.total < 2**30  # well under a GiB
  available = memory.available_memory()
  assert available is None or found.total < available[0] / 10


def test_a_study_part_is_refused_under_the_study_s_name(tmp_path, nothing_is_built):
  part = experiment.Part({"dataset": "mnist1d"}, Config(seeds=5000, width=4096))
  refusal = r"^dying needs about .*: reduce seeds, activations or width\.$"
  with pytest.raises(ValueError, match=refusal):
    experiment.prepare_parts([part], {}, tmp_path / "never", name="dying")


def _estimate(**fields) -> memory.Estimate:
  config = Config(**{"dataset": XOR, "activations": ("relu",), "seeds": 1, "width": 3,
                     "depth": 1, **fields})
  return memory.estimate(config, data.load(XOR), num_devices=1, platform="cpu")


@pytest.mark.parametrize("optimizer,copies", [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_parameters_and_optimizer_state_by_hand(optimizer, copies):
  found = _estimate(optimizer=optimizer, seeds=3)
  assert found.parameters == (2 * 3 + 3) + (3 * 2 + 2)  # 2 inputs, 3 hidden units, 2 classes
  count = 4 if optimizer == "adam" else 0  # Adam's int32 step counter
  assert found.state == 3 * (found.parameters * 4 * (1 + copies) + count)
  # Two more copies of the state, and one run's gradients and updates (map: one at a time).
  assert found.working == 2 * found.state + 2 * found.parameters * 4


@pytest.mark.parametrize("field,small,large", [
    ("seeds", 2, 20), ("width", 16, 256), ("batch_size", 1000, 4000), ("depth", 1, 4),
])
def test_the_estimate_grows_with_each_count(field, small, large):
  assert _estimate(**{field: small}).total < _estimate(**{field: large}).total


def test_vmap_computes_every_run_at_once():
  mapped, batched = _estimate(seeds=8, batching="map"), _estimate(seeds=8, batching="vmap")
  assert batched.activations == 8 * mapped.activations
  assert batched.state == mapped.state


def test_the_advice_names_batching_map_where_it_helps():
  config = Config(dataset=XOR, model="mlp", width=512, seeds=64, batching="vmap",
                  activations=("relu",))
  with pytest.raises(ValueError, match=r"use --batching map \(about .* GiB\)\.$"):
    memory.check_fits(config, data.load(XOR), available=(2**20, "this machine"))


def test_run_counts_need_no_list_of_runs(nothing_is_built):
  config = Config(activations=("relu", "necro_relu(negative_slope=[0.05, 0.1, 0.3])"),
                  seeds=2_000_000_000, learning_rates=(0.01, 0.1))
  assert memory.run_counts(config) == (4_000_000_000, 12_000_000_000)
  with pytest.raises(ValueError, match="Did you mean 'necro_relu'"):
    memory.run_counts(dataclasses.replace(config, activations=("necro_rleu",)))


def test_unknown_memory_refuses_nothing(monkeypatch):
  monkeypatch.setattr(memory, "available_memory", lambda: None)
  found = memory.check_fits(Config(seeds=5000, width=4096), data.load("mnist1d"))
  assert found.total > 2**40


USER_MODEL = textwrap.dedent("""
    from flax import nnx

    class Net(nnx.Module):
      def __init__(self, activation, *, input_shape, num_outputs, rngs, width=16):
        self.hidden = nnx.Linear(input_shape[0], width, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.output = nnx.Linear(width, num_outputs, rngs=rngs)
        self.activation = activation

      def __call__(self, x):
        return self.output(self.dropout(self.activation(self.hidden(x))))
""")


def test_a_user_model_is_counted_as_the_engine_counts_it(tmp_path, monkeypatch):
  (tmp_path / "memory_user_model.py").write_text(USER_MODEL)
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.delitem(sys.modules, "memory_user_model", raising=False)
  config = Config(dataset=XOR, model="memory_user_model:Net(width=32)", optimizer="sgd", seeds=2,
                  activations=("relu",))
  dataset = data.load(XOR)
  found = memory.estimate(config, dataset, num_devices=1, platform="cpu")
  first = grid.expand(dataclasses.replace(config, seeds=1))[0]
  assert found.parameters == programs.parameter_count(train.Program.of(config, dataset, first))
  assert found.parameters == (2 * 32 + 32) + (32 * 2 + 2)
  # SGD keeps no state; Dropout's random stream (a key and a counter) is the model's.
  assert 2 * found.parameters * 4 < found.state <= 2 * (found.parameters * 4 + 16)


def test_the_program_is_one_device_s_state_in_and_out_gradients_activations_and_data():
  found = _estimate(optimizer="sgd", seeds=3)
  parameter_bytes = 4 * found.parameters
  assert found.program == (2 * found.state + 2 * parameter_bytes + found.activations
                           + memory._data_bytes(data.load(XOR)))


def test_a_switch_saves_what_its_neediest_activation_saves():
  one_seed = lambda *specs: memory._one_seed(Config(activations=specs))  # noqa: E731
  assert memory_trace.switch_bytes(one_seed("relu")) == 0
  # relu saves a one-byte mask; leaky_relu its float32 input; a switch keeps both.
  assert memory_trace.switch_bytes(one_seed("relu", "leaky_relu(negative_slope=0.01)")) == 4
  assert memory_trace.switch_bytes(one_seed("relu", "necro_relu(negative_slope=0.1)")) == 0


def test_slices_and_pads_fused_into_a_concatenation_are_not_counted():
  def patches(x):  # a convolution's patches: the input padded, shifted slices side by side
    padded = jnp.pad(x, ((0, 0), (1, 1)))
    return jnp.concatenate([padded[:, :4], padded[:, 2:]], axis=1)

  closed = jax.make_jaxpr(patches)(jnp.zeros((2, 4)))
  assert memory_trace.batch_bytes(closed.jaxpr, set(closed.jaxpr.invars)) == 2 * 8 * 4  # (2, 8) float32


@pytest.mark.slow  # compiles two programs (about 10 s on 2 idle cores)
def test_the_estimate_is_within_25_percent_of_xla_s_count_for_a_tiny_cnn():
  config = Config(model="cnn1d", width=16, depth=1, seeds=1, steps=10, eval_every=10,
                  activations=("relu",))
  found = memory_check.compare(config, data.load(config.dataset))
  assert found.largest == "evaluate"  # its 1,000 examples with gradients
  assert found.measured["evaluate"].temporaries > found.estimate.program / 2  # activations dominate
  assert 0.8 <= found.ratio <= 1.25, memory_check.record(found)


@pytest.mark.slow  # compiles two programs (about 10 s on 2 idle cores)
def test_the_bench_record_of_a_tiny_mlp_grid_is_within_25_percent_of_xla_s_count():
  config = Config(dataset="xor(num_train=1000, num_test=100)", width=256, depth=1, seeds=2,
                  steps=10, eval_every=10, activations=("relu", "leaky_relu(negative_slope=0.01)"))
  (row,) = memory_estimate.measure({"tiny": config}).values()
  assert row["grid"] == "mlp on xor(num_train=1000, num_test=100), 4 runs, batch 100"
  assert set(row["programs"]) == {"train_chunk", "evaluate"} and row["largest"] == "evaluate"
  evaluate = row["programs"]["evaluate"]
  assert set(evaluate) == {"arguments", "unread", "outputs", "temporaries", "aliased"}
  assert evaluate["temporaries"] > row["estimate_mib"] / 2  # the activations (and the switch) dominate
  assert row["ratio"] == pytest.approx(row["estimate_mib"] / row["measured_mib"], rel=1e-2)
  assert row["within"] and 0.8 <= row["ratio"] <= 1.25, row
  (target,) = [t for t in targets.check({"platform": "cpu", "memory_estimate": {"tiny": row}})
               if t.name == targets.MEMORY_ESTIMATE]
  assert target.met and f"tiny {row['ratio']:.2f}" in target.measured
  assert "## Memory estimate against XLA" in report.memory_estimate_section({"tiny": row})
