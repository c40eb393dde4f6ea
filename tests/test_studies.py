"""Every study has the one shape: a declaration, the engine's Config as its base, one runner."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import pathlib

import pytest

from research import cli, study
from research import studies as studies_lib
from research.config import Config

STUDIES = studies_lib.all_studies()
NAMES = sorted(STUDIES)
CONFIG_FIELDS = {field.name for field in dataclasses.fields(Config)}


def test_every_study_module_declares_a_study_and_is_a_command():
  modules = [path.stem for path in pathlib.Path(studies_lib.__file__).parent.glob("[!_]*.py")]
  assert len(STUDIES) == len(modules) == 9
  assert set(cli.commands()) >= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_settings_hold_the_study_axes_and_the_engine_config_as_base(name):
  declared = STUDIES[name]
  fields = {field.name: field for field in dataclasses.fields(declared.settings)}
  assert declared.settings.__dataclass_params__.frozen
  assert isinstance(declared.settings().base, Config)
  redeclared = (set(fields) - {"base"}) & CONFIG_FIELDS
  assert not redeclared, f"{name} re-declares Config fields {redeclared}: set them on base"
  assert set(declared.owns) <= CONFIG_FIELDS


@pytest.mark.parametrize("name", NAMES)
def test_the_default_parts_are_valid_engine_configs(name):
  declared = STUDIES[name]
  settings = declared.settings()
  study.check(declared, settings)
  parts = declared.parts(settings)
  assert parts and all(isinstance(part.config, Config) for part in parts)
  for part in parts:  # what differs from base is what the study sets, and says it owns
    changed = {field for field in CONFIG_FIELDS
               if getattr(part.config, field) != getattr(settings.base, field)}
    if set(part.config.activations) <= set(settings.base.activations):
      changed.discard("activations")  # a part may train some of base's activations
    assert changed <= set(declared.owns), (name, changed - set(declared.owns))


@pytest.mark.parametrize("name", NAMES)
def test_an_owned_base_field_is_refused_not_ignored(name, capsys, tmp_path):
  declared = STUDIES[name]
  if not declared.owns:
    pytest.skip(f"{name} owns no base field")
  field = declared.owns[0]
  value = getattr(declared.settings().base, field)
  changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v * 2,
             str: lambda v: v + "x", tuple: lambda v: v[:1] if len(v) > 1 else v + v}[type(value)](value)
  settings = dataclasses.replace(declared.settings(), base=dataclasses.replace(
      declared.settings().base, **{field: changed}))
  with pytest.raises(ValueError, match=f"base.{field} is set per part by the {name} study"):
    study.check(declared, settings)


@pytest.mark.parametrize("name", NAMES)
def test_help_lists_the_study_axes_and_the_base_flags(name, capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  with pytest.raises(SystemExit) as exit_info:
    cli.main([name, "--help"])
  assert exit_info.value.code == 0
  text = capsys.readouterr().out
  assert "--base.steps" in text and "--base.seeds" in text and "--out" in text and "--quiet" in text
  for field in dataclasses.fields(STUDIES[name].settings):
    if field.name != "base":
      assert f"--{field.name.replace('_', '-')}" in text, field.name


# One-line errors for each study's own checks, from its axes and from its base.
BAD_FLAGS = [
    ('born-dead', ['--inits', 'he'], 'Choose from: he_normal, rai'),
    ('born-dead', ['--widths', '0'], 'widths must be'),
    ('born-dead', ['--base.dataset', 'regresion'], "Did you mean 'regression'"),
    ('born-dead', ['--base.init', 'rai'], 'base.init is set per part by the born-dead study'),
    ('depth', ['--networks', 'resnet20'], 'at least one plain network'),
    ('depth', ['--datasets', 'digits,digits'], 'datasets must name one or more distinct values'),
    ('depth', ['--optimizers', 'adam,adam'], 'optimizers must name one or more distinct values'),
    ('depth', ['--base.activations', 'necro_relu'], 'must include relu once'),
    ('depth', ['--base.model', 'cnn2d'], 'base.model is set per part by the depth study'),
    ('dying', ['--optimizers', 'adma'], "Did you mean 'adam'?"),
    ('dying', ['--optimizers', 'nesterov'], 'has no default learning rates'),
    ('dying', ['--datasets', 'mnist2d'], 'Choose from:'),
    ('dying', ['--base.activations', 'rleu'], 'Did you mean'),
    ('dying', ['--base.steps', '0'], 'steps must be a positive integer'),
    ('dying', ['--base.optimizer', 'sgd'], 'base.optimizer is set per part by the dying study'),
    ('dying', ['--base.learning-rates', '0.1'], 'base.learning_rates is set per part by the dying study'),
    ('gradient-flow', ['--initialisation', 'glorot'], 'Choose from: usual, lecun_normal'),
    ('gradient-flow', ['--depths', '0'], 'depths must be'),
    ('gradient-flow', ['--base.activations', 'sigmod'], "Did you mean 'sigmoid'"),
    ('gradient-flow', ['--base.init', 'rai'], 'base.init is set per part by the gradient-flow study'),
    ('init', ['--inits', 'he'], 'Choose from: lecun_normal'),
    ('init', ['--base.activations', 'relu,nekro_relu'], "Did you mean 'necro_relu'"),
    ('init', ['--base.bias-init', '0.5'], 'base.bias_init is set per part by the init study'),
    ('init', ['--bias-kernel-init', 'rai'], 'draws its own biases'),
    ('slope-sweep', ['--slopes', '0.1,0.3'], 'slopes must include 0'),
    ('slope-sweep', ['--families', 'necro_relu(negative_slope=0.1)'], 'sets negative_slope'),
    ('slope-sweep', ['--base.dataset', 'xor'], 'base.dataset is set per part by the slope-sweep study'),
    ('slope-sweep', ['--base.activations', 'relu'], 'base.activations is set per part by the slope-sweep study'),
    ('sparsity', ['--models', 'rnn'], 'Choose from: mlp, cnn1d, cnn2d'),
    ('sparsity', ['--base.activations', 'relu,sofplus'], "Did you mean 'softplus'"),
    ('sparsity', ['--models', 'cnn1d', '--base.dataset', 'digits'], 'needs 1-D examples'),
    ('sparsity', ['--base.width', '7'], 'base.width is set per part by the sparsity study'),
    ('surrogates', ['--base.activations', 'relu,sugar_bslu'], "Did you mean 'sugar_bsilu'"),
    ('surrogates', ['--base.activations', 'necro_relu'], 'must include relu'),
    ('surrogates', ['--base.dataset', 'digits'], 'base.dataset is set per part by the surrogates study'),
    ('surrogates', ['--datasets', 'xor'], "cnn2d does not fit dataset 'xor'"),
    ('xor', ['--datasets', 'xor,mnist1d', '--depths', '1,1', '--thresholds', '0.9,0.9'], 'Choose from: xor, moons, spirals'),
    ('xor', ['--base.activations', "relu,mixed(activations='relu,abz')"], "Did you mean 'abs'"),
    ('xor', ['--widths', '3'], 'does not fit width 3'),
    ('xor', ['--base.activations', 'relu,sofplus'], "Did you mean 'softplus'"),
    ('xor', ['--base.width', '4'], 'base.width is set per part by the xor study'),
    ('xor', ['--base.dataset', 'moons'], 'base.dataset is set per part by the xor study'),
]


def test_every_study_has_bad_flag_cases():
  assert {name for name, _, _ in BAD_FLAGS} == set(NAMES)


@pytest.mark.parametrize("name,flags,message", BAD_FLAGS)
def test_a_bad_flag_fails_in_one_line_before_anything_runs(name, flags, message, capsys, tmp_path,
                                                           monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  assert cli.main([name, *flags, "--out", str(tmp_path / "never"), "--quiet"]) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith("error:") and "\n" not in error and message in error, error
  assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("name", NAMES)
def test_no_study_repeats_the_shell(name):
  """Each study file keeps its axes, parts and analysis: no own runner, command or outcome."""
  module = inspect.getmodule(STUDIES[name].analyse)
  tree = ast.parse(inspect.getsource(module))
  defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
  assert not defined & {"run", "command", "Outcome", "StudyResult"}, defined
  source = inspect.getsource(module)
  assert "lines.append(f\"|" not in source and "settings_record" not in source
  longest = max((node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef)), default=0)
  assert longest <= 60, f"{name}: a function of {longest} lines"


def test_the_readme_lists_every_study_from_the_registry():
  readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
  assert studies_lib.table_markdown() in readme


def test_run_refuses_settings_of_another_study():
  first = STUDIES[NAMES[0]]
  with pytest.raises(TypeError, match=f"{first.name} needs {first.settings.__name__}, got Config"):
    study.check(first, Config())


def test_a_study_is_run_by_name_or_declaration():
  with pytest.raises(ValueError, match="No study named 'dyng'. Choose from: "):
    studies_lib.run("dyng")
