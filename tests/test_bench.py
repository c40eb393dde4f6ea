"""``python -m research bench`` at tiny sizes: the structure of bench.json and
the targets that do not depend on load (compiled memory, saved residuals).

Times are never asserted: they depend on the machine's load. The bench itself
checks and reports the timed targets (BENCHMARKS.md).
"""

import json

import jax
import pytest
from flax import nnx

import activations
from research.bench import activation_cost, kernels, report, resnet_step, suite, targets, timing
from research.bench.config import BenchConfig
from research.config import Config

TINY_MLP = activation_cost.MlpShape(depth=2, width=128, batch=64, dtype="float32")


@pytest.fixture(scope="module")
def relu_memory():
  return activation_cost.compiled_step_costs(jax.nn.relu, TINY_MLP)


@pytest.mark.parametrize("name", activation_cost.relu_forward_surrogates())
def test_relu_forward_surrogates_need_no_more_temporary_memory_than_relu(name, relu_memory):
  relu = relu_memory
  function = activations.get(name)
  mine = activation_cost.compiled_step_costs(function, TINY_MLP)
  # A rule that reads the whole batch (revival_relu) keeps at most one flag per unit and layer.
  allowance = TINY_MLP.depth * TINY_MLP.width if activation_cost.reads_the_batch(function) else 0
  assert mine["temp_bytes"] <= relu["temp_bytes"] + allowance, (name, mine, relu)


@pytest.mark.parametrize("name", [
    name for name in activation_cost.relu_forward_surrogates()
    if name not in targets.BORROWED_DERIVATIVE
    and not activation_cost.reads_the_batch(activations.get(name))])
def test_a_mask_like_surrogates_compiled_step_does_relus_work(name):
  relu = activation_cost.compiled_step_costs(activations.relu, TINY_MLP)
  mine = activation_cost.compiled_step_costs(activations.get(name), TINY_MLP)
  assert mine["bytes_accessed"] == relu["bytes_accessed"] > 0  # XLA's count: no byte more
  assert mine["flops"] <= 1.01 * relu["flops"] and mine["transcendentals"] == 0


def test_xla_counts_the_batch_read_of_revival_relu_and_the_exp_of_sugar_elu():
  relu = activation_cost.compiled_step_costs(activations.relu, TINY_MLP)
  revival = activation_cost.compiled_step_costs(activations.revival_relu, TINY_MLP)
  assert revival["bytes_accessed"] > relu["bytes_accessed"]  # the reduction over the batch
  sugar_elu = activation_cost.compiled_step_costs(activations.sugar_elu, TINY_MLP)
  assert sugar_elu["transcendentals"] == TINY_MLP.depth * TINY_MLP.width * TINY_MLP.batch


def test_relu_forward_surrogates_include_necro_relu_and_sugar():
  names = activation_cost.relu_forward_surrogates()
  assert {"relu_with_leaky_backward", "necro_relu", "sugar_bsilu", "sugar_softplus"} <= set(names)
  assert "relu" not in names and "heaviside_straight_through" not in names


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_necro_relu_saves_one_byte_per_element(dtype):
  saved, described = activation_cost.residual_bytes_per_element(activations.necro_relu, dtype)
  assert saved <= 1, described
  relu, _ = activation_cost.residual_bytes_per_element(jax.nn.relu, dtype)
  assert relu == 1  # the bool mask; the broadcast zeros are a constant


def test_paired_timing_gives_a_ratio_per_round():
  seconds, ratios = timing.paired(lambda: 1, {"a": lambda: 2, "b": lambda: 3}, rounds=3)
  assert set(seconds) == set(ratios) == {"a", "b"}
  assert all(len(values) == 3 and all(v > 0 for v in values) for values in ratios.values())
  with pytest.raises(ValueError, match="rounds"):
    timing.interleaved({"a": lambda: 1}, rounds=0)


TINY = suite.Sizes(
    mlp=TINY_MLP, array_size=4096, activation_rounds=1, grid_sizes=(2,), grid_steps=20,
    grid_rounds=1, job_rounds=1, torch_seeds=1, torch_steps=20, command_rounds=0,
    job=Config(activations=("relu",), seeds=2, steps=20, eval_every=10),
    activation_names=("necro_relu", "sugar_bsilu", "tanh"), grid_batchings=("map",),
    torch_compile=False, memory_grids=(),
)


@pytest.mark.standard_promotion  # optax's adam, as users run it
def test_bench_writes_json_and_markdown_with_every_table(tmp_path):
  cache_before = jax.config.jax_enable_compilation_cache
  result = suite.run(BenchConfig(out=str(tmp_path), torch=False), TINY)
  assert jax.config.jax_enable_compilation_cache == cache_before  # off only while it measures
  written = json.loads((tmp_path / "bench.json").read_text())
  assert written["machine"] == result["machine"]
  assert {"jax", "jaxlib", "flax"} <= set(written["versions"])
  assert written["dtype"] == "float32" and written["platform"] == "cpu"
  assert list(written["activations"]) == [activation_cost.BASELINE, "necro_relu", "sugar_bsilu", "tanh"]
  necro = written["activations"]["necro_relu"]
  assert {"median", "fastest", "slowest", "rounds", "ratio"} <= set(necro["step"])
  assert necro["temp_ratio"] <= 1 and necro["residual_bytes_per_element"] == 1
  (row,) = written["grids"]
  assert row["runs"] == 2 and row["map_speedup"] > 0 and row["one_by_one"]["run_steps_per_second"] > 0
  job = written["main_job"]
  assert job["runs"] == 2 and set(job["split_seconds"]) == {
      "data", "compilation", "training", "evaluation", "other"}
  assert 0 < job["matmul_fraction"] and job["split_seconds"]["compilation"] > 0
  # the chunk's dots (10 steps of 2 runs of the tiny MLP), counted once per loop iteration
  sizes = [40] + [TINY.job.width] * TINY.job.depth + [10]
  shapes = kernels.mlp_matmul_shapes(sizes, TINY.job.batch_size)
  assert job["chunk_kernels"]["categories"]["matmul"]["flops"] == 10 * 2 * sum(
      2 * m * k * n for m, k, n in shapes)
  assert [tuple(row["shape"]) for row in job["matmul_shapes_alone"]] == list(dict.fromkeys(shapes))
  assert written["torch"] == {"skipped": "turned off (--no-torch)"}
  verdicts = {target["name"]: target["verdict"] for target in written["targets"]}
  assert verdicts["NecroReLU residual <= 1 byte per element"] == "met"
  assert verdicts[">= 150x one-after-another throughput, 256 runs, one GPU"] == "not measured"
  text = (tmp_path / "bench.md").read_text()
  for heading in ("## Targets", "## The main job", "## Activations", "## Grids", "## PyTorch"):
    assert heading in text
  assert "No GPU was lent" in text
  assert "What stands in the way" in text


def test_kernel_profile_counts_each_kernel_and_its_matmul_flops():
  left, right = jax.numpy.ones((64, 32)), jax.numpy.ones((32, 16))
  program = jax.jit(lambda a, b: jax.numpy.tanh(a @ b).sum(axis=0))
  hlo = program.lower(left, right).compile().as_text()
  kinds = kernels.kernel_kinds(hlo)
  assert sum(kind["flops"] for kind in kinds.values()) == 2 * 64 * 32 * 16
  profile = kernels.profile(lambda: program(left, right), hlo, calls=2)
  assert profile["categories"]["matmul"]["flops"] == 2 * 64 * 32 * 16
  assert abs(sum(row["share"] for row in profile["categories"].values()) - 1) < 1e-9


def test_targets_say_met_or_not_with_the_measured_value():
  result = {"platform": "cpu", "activations": {
      "necro_relu": {"step": {"ratio": 1.05}, "temp_ratio": 1.0, "residual_bytes_per_element": 1.0}}}
  checked = {target.name: target for target in targets.check(result)}
  assert checked[targets.STEP_TIME].verdict == "NOT met"
  assert "1.050x" in checked[targets.STEP_TIME].measured
  memory = checked[targets.TEMPORARY_MEMORY]
  assert memory.met and "0.00 B per unit and layer" in memory.measured
  over = {"revival_relu": {"step": {"ratio": 1.0}, "temp_ratio": 1.001, "temp_extra_per_unit": 1.5,
                           "residual_bytes_per_element": 1.0}}
  assert not {t.name: t for t in targets.check({"platform": "cpu", "activations": over})}[targets.TEMPORARY_MEMORY].met
  assert all(target.reason for target in checked.values())  # each says why the project asks it
  assert "| target | why | measured | verdict |" in report._targets(result)


def test_a_sugar_backward_is_held_to_the_step_of_the_activation_it_borrows():
  def cost(ratio):
    return {"step": {"ratio": ratio}, "temp_ratio": 1.0, "residual_bytes_per_element": 1.0}

  result = {"platform": "cpu", "activations": {
      "necro_relu": cost(1.01), "sugar_elu": cost(1.30), "elu": cost(1.25),
      "sugar_gelu": cost(1.50), "gelu": cost(1.60)}}
  checked = {target.name: target for target in targets.check(result)}
  assert checked[targets.STEP_TIME].met and "necro_relu: 1.010x" in checked[targets.STEP_TIME].measured
  borrowed = checked[targets.BORROWED_STEP]
  assert borrowed.measured == "worst sugar_elu: 1.040x elu's" and not borrowed.met
  result["activations"]["elu"] = cost(1.29)
  assert {t.name: t for t in targets.check(result)}[targets.BORROWED_STEP].met


def test_a_backward_that_reads_the_batch_has_its_own_step_target_with_xlas_count():
  def cost(ratio, moved):
    return {"step": {"ratio": ratio}, "temp_ratio": 1.0, "residual_bytes_per_element": 1.0,
            "flops_ratio": 1.001, "bytes_accessed_ratio": moved}

  result = {"platform": "cpu", "activations": {
      "necro_relu": cost(1.03, 1.0), "revival_relu": cost(1.04, 1.0714)}}
  checked = {target.name: target for target in targets.check(result)}
  mask, batch = checked[targets.STEP_TIME], checked[targets.BATCH_STEP]
  assert mask.measured.startswith("worst necro_relu: 1.030x") and not mask.met
  assert "bytes moved at most 1.0000x (necro_relu)" in mask.measured  # the same work as relu's
  assert batch.measured.startswith("worst revival_relu: 1.040x") and not batch.met
  assert "bytes moved at most 1.0714x (revival_relu)" in batch.measured


@pytest.mark.standard_promotion
def test_torch_reference_trains_the_comparison_when_torch_is_installed():
  from research import data
  from research.bench import torch_reference

  missing = torch_reference.available()
  if missing:
    pytest.skip(missing)
  result = torch_reference.compare(data.load("xor(num_train=64, num_test=32)"), seeds=1, steps=4,
                                   eval_every=2, input_size=2, num_outputs=2)
  assert result["runs"] == 3 and set(result["mean_test_accuracy"]) == {"relu", "leaky_relu", "necro_relu"}


def test_report_of_a_result_without_torch_says_why():
  text = report._torch({"torch": {"skipped": "torch is not installed"}})
  assert "Skipped: torch is not installed" in text


@pytest.mark.slow  # compiles three ResNet-20 programs: tens of seconds on a 2-core CPU
@pytest.mark.standard_promotion  # optax's sgd, as users run it
def test_resnet_step_record_has_each_part_and_convolution():
  shape = resnet_step.ResnetShape(batch=4, image_size=8, width=4)
  record = resnet_step.measure(shape, rounds=1)
  assert set(record["jax"]) == set(resnet_step.STEP_PARTS) == {"forward", "forward_backward", "step"}
  assert all(record["jax"][part]["median"] > 0 for part in resnet_step.STEP_PARTS)
  assert set(record["split"]) == {"forward", "backward", "update"}
  assert [(row["size"], row["channels"], row["count"]) for row in record["convs"]] == [
      (8, 4, 6), (4, 8, 5), (2, 16, 5)]
  for row in record["convs"]:
    assert all(row["jax"][op]["median"] > 0 for op in resnet_step.CONV_OPS)
  assert record["conv_seconds_per_step"]["jax"] > 0
  if "skipped" in record["torch"]:
    assert set(record["conv_seconds_per_step"]) == {"jax"}
  else:
    assert record["torch"]["memory_format"] in ("contiguous", "channels_last")
    assert all(record["ratio"][part] > 0 for part in resnet_step.STEP_PARTS)
    assert all(row["ratio"][op] > 0 for row in record["convs"] for op in resnet_step.CONV_OPS)
  # The step's kernels: its dots do the 19 convolutions' FLOPs, forward and both gradients
  # (the stem's input gradient is dead code), and the head's three small matmuls.
  conv_flops = 2 * 4 * (64 * 27 * 4 + 6 * 64 * 36 * 4 + 16 * 36 * 8 + 5 * 16 * 72 * 8
                        + 4 * 72 * 16 + 5 * 4 * 144 * 16)
  matmul = record["jax_kernels"]["categories"]["matmul"]
  assert matmul["flops"] == 3 * conv_flops - 2 * 4 * 64 * 27 * 4 + 3 * 2 * 4 * 16 * 10
  assert 0 < matmul["share"] < 1 and record["convolution"] in ("patches", "xla")
  if "torch_ops" in record:
    assert record["torch_ops"]["categories"]["convolution"]["seconds"] > 0
  text = report.resnet_step_section(record)
  assert "## ResNet-20 training step" in text and "kernel gradient" in text
  assert "JAX kernels" in text and "| matmul |" in text
  verdicts = {target.name: target.verdict for target in targets.check({"platform": "cpu",
                                                                       "resnet_step": record})}
  if "skipped" in record["torch"]:  # no PyTorch (the bench extra): nothing to compare with
    assert targets.RESNET_STEP not in verdicts
  else:
    assert verdicts[targets.RESNET_STEP] in ("met", "NOT met")


def test_torch_resnet20_has_the_option_a_parameter_count():
  from research import architectures
  from research.bench import torch_reference, torch_resnet

  missing = torch_reference.available()
  if missing:
    pytest.skip(missing)
  torch = torch_reference.import_torch()
  model = torch_resnet.resnet20(torch)
  assert torch_resnet.parameter_count(model) == torch_resnet.RESNET20_PARAMETERS == 269_722
  jax_model = nnx.eval_shape(lambda: architectures.resnet20(
      jax.nn.relu, input_shape=(32, 32, 3), num_outputs=10, rngs=nnx.Rngs(0)))
  assert architectures.parameter_count(jax_model) == torch_resnet.RESNET20_PARAMETERS
  images = torch.zeros(2, 3, 8, 8)
  assert tuple(model(images).shape) == (2, 10)


def test_torch_batched_by_seed_equals_the_runs_one_after_another(monkeypatch):
  from research import data
  from research.bench import torch_reference

  missing = torch_reference.available()
  if missing:
    pytest.skip(missing)
  cores = torch_reference.cores()
  monkeypatch.setattr(torch_reference, "cores", lambda: 1)  # one thread: fast on a loaded machine
  dataset = data.load("xor(num_train=64, num_test=32)")
  settings = dict(seeds=2, steps=6, batch_size=8, eval_every=3, input_size=2, num_outputs=2)
  try:
    one_by_one = torch_reference.compare(dataset, **settings)
    batched = {fused: torch_reference.compare_batched(dataset, **settings, fused=fused)
               for fused in (True, False)}  # the fused Adam (timed) and compare's per-tensor one
  finally:
    torch_reference.import_torch().set_num_threads(cores)
  for fused, result in batched.items():
    assert result["runs"] == one_by_one["runs"] == 6
    for name, accuracies in one_by_one["test_accuracy"].items():
      assert result["test_accuracy"][name] == pytest.approx(accuracies, abs=1e-6), (fused, name)


def test_batched_pytorch_target_uses_the_whole_command_where_timed():
  batched = {"full_job_seconds": 33.0, "scaled": False}
  result = {"platform": "cpu", "main_job": {"wall_seconds": 10.0, "matmul_fraction": 0.4},
            "torch": {"compare_batched": batched}}
  target = {t.name: t for t in targets.check(result)}[targets.AGAINST_BATCHED_PYTORCH]
  assert target.met and target.measured.startswith("3.30x") and "in process" in target.measured
  result["command"] = {"median": 15.0, "fastest": 14.6, "slowest": 15.4, "rounds": 2}
  result["load_average"] = [1.0, 1.0, 1.0]
  target = {t.name: t for t in targets.check(result)}[targets.AGAINST_BATCHED_PYTORCH]
  assert target.verdict == "NOT met" and target.measured == (
      "2.20x (PyTorch 33.0 s, the whole command, cold cache, 15.0 s)")
  assert target.reason
  row = report._batched_row(result, batched)
  assert row[1:] == ["33.0 s", "15.0 s (whole command, cold cache)", "2.20x"]


@pytest.mark.slow  # compiles a ResNet-20 step: seconds on a 2-core CPU
@pytest.mark.standard_promotion
def test_resnet_step_with_xla_convolutions_times_xla_s_own_kernels():
  shape = resnet_step.ResnetShape(batch=2, image_size=8, width=4, convolution="xla")
  record = resnet_step.measure(shape, rounds=1, torch=False)
  assert record["convolution"] == "xla"
  categories = record["jax_kernels"]["categories"]
  assert categories["convolution"]["share"] > 0  # the patches path has no convolution kernel
  assert "XLA's convolution" in report.resnet_step_section(record)
