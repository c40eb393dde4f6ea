"""The README's Python blocks run as written (its >>> blocks are doctests)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    block
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    if not block.lstrip().startswith(">>>")
]


@pytest.mark.standard_promotion  # user code, run as users run it
@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(block, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # examples may write results/
  exec(compile(block, str(README), "exec"), {})


def test_readme_has_the_two_quickstart_commands():
  quickstart = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
  commands = re.findall(r"^python3 dev\.py (\w+)", quickstart, re.M)
  assert commands == ["compare", "test"]


def _quickstart_table() -> str:
  section = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
  return re.search(r"```\n(activation .*?)```", section, re.S).group(1).rstrip()


def test_readme_prose_quotes_the_numbers_of_its_table():
  section = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
  table = _quickstart_table()
  rows = {line.split()[0]: line for line in table.splitlines()[2:]}
  assert set(rows) == {"relu", "leaky_relu(negative_slope=0.01)", "necro_relu(negative_slope=0.1)"}
  assert "66.1%" in rows["relu"] and "66.1%" in section.split("```")[-1]
  assert "73.0%" in rows["necro_relu(negative_slope=0.1)"] and "(73.0% sparsity" in section
  # "none is dead": NecroReLU's dead-units cell is 0.0%.
  assert rows["necro_relu(negative_slope=0.1)"].split()[13:16] == ["0.0%", "±", "0.0"]


@pytest.mark.slow
@pytest.mark.standard_promotion
def test_readme_table_is_what_the_command_prints_on_the_quoted_cpu(tmp_path):
  import subprocess
  import sys

  from research import devices

  section = README.read_text().split("## Quickstart", 1)[1]
  cpu = devices.machine_description().split(",")[0]
  if f"({cpu}, jax" not in section:
    pytest.skip(f"the README's table was measured on another CPU than this {cpu!r}")
  completed = subprocess.run(
      [sys.executable, "-m", "research", "compare", "--out", str(tmp_path), "--quiet"],
      capture_output=True, text=True, cwd=README.parent, timeout=600,
  )
  assert completed.returncode == 0, completed.stderr
  printed = completed.stdout.split("\n\nResults:")[0].strip()
  assert printed == _quickstart_table()
