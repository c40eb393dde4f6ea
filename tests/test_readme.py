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
