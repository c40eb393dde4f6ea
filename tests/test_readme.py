"""The README's and docs' Python blocks run as written (their >>> blocks are doctests)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    (document, block)
    for document in DOCUMENTS
    for block in re.findall(r"```python\n(.*?)```", document.read_text(), re.S)
    if not block.lstrip().startswith(">>>")
]


@pytest.mark.standard_promotion  # user code, run as users run it
@pytest.mark.parametrize("document,block", BLOCKS,
                         ids=[f"{document.stem}-{index}" for index, (document, _) in enumerate(BLOCKS)])
def test_documented_block_runs(document, block, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # examples may write results/
  exec(compile(block, str(document), "exec"), {})


def test_every_relative_link_of_the_documents_resolves():
  for document in [*DOCUMENTS, ROOT / "FINDINGS.md"]:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text()):
      assert (document.parent / target).exists(), f"{document.name} links to missing {target}"


def test_the_readme_is_what_a_newcomer_needs():
  text = README.read_text()
  assert len(text.splitlines()) <= 280
  assert [line for line in text.splitlines() if line.startswith("## ")] == [
      "## Quickstart", "## The library in five examples", "## The engine in one example",
      "## Studies", "## Where to go next"]


def test_readme_has_the_two_quickstart_commands():
  quickstart = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
  commands = re.findall(r"^python3 dev\.py (\w+)", quickstart, re.M)
  assert commands == ["compare", "test"]


def _quickstart_table() -> str:
  section = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
  return re.search(r"```\n(activation .*?)```", section, re.S).group(1).rstrip()


@pytest.mark.slow
@pytest.mark.standard_promotion
def test_readme_table_is_what_the_command_prints_on_the_quoted_cpu(tmp_path):
  import subprocess
  import sys

  from research import devices

  section = README.read_text().split("## Quickstart", 1)[1]
  cpu = devices.cpu_model()
  if f"({cpu}, jax" not in section:
    pytest.skip(f"the README's table was measured on another CPU than this {cpu!r}")
  completed = subprocess.run(
      [sys.executable, "-m", "research", "compare", "--out", str(tmp_path), "--quiet"],
      capture_output=True, text=True, cwd=README.parent, timeout=600,
  )
  assert completed.returncode == 0, completed.stderr
  printed = completed.stdout.split("\n\nResults:")[0].strip()
  assert printed == _quickstart_table()
