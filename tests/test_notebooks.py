"""Every notebook runs top to bottom, quickly, and is stored without outputs.

Notebooks run in a fresh kernel of this interpreter (the one with the library
installed) with ``SURROGATE_QUICK=1``, which each notebook reads to shorten its
training. A cell that raises fails the test. Any new ``notebooks/*.ipynb`` is
picked up without changes here.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Iterator

import jupyter_client.kernelspec
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
KERNEL_NAME = "python3"
TIMEOUT_SECONDS = 180  # per cell

# Names jupyter_client replaces with sys.executable when it starts a kernel.
_THIS_PYTHON = {"python", f"python{sys.version_info[0]}"} | {
    "python{}.{}".format(*sys.version_info[:2])
}


def _runs_this_interpreter(argv: list[str]) -> bool:
  return argv[0] in _THIS_PYTHON or os.path.realpath(argv[0]) == os.path.realpath(
      sys.executable
  )


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
  """A ``python3`` kernel that runs this interpreter, installed if need be."""
  try:
    spec = jupyter_client.kernelspec.KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    usable = _runs_this_interpreter(spec.argv)
  except jupyter_client.kernelspec.NoSuchKernel:
    usable = False
  if usable:
    yield KERNEL_NAME
    return
  # A python3 kernel of another interpreter would not see this checkout:
  # install one for this interpreter where only this session looks first.
  import ipykernel.kernelspec

  prefix = tmp_path_factory.mktemp("jupyter")
  ipykernel.kernelspec.install(kernel_name=KERNEL_NAME, prefix=str(prefix))
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    yield KERNEL_NAME


def _ids(path: pathlib.Path) -> str:
  return path.stem


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_is_stored_without_outputs(path: pathlib.Path):
  notebook = nbformat.read(path, as_version=4)
  nbformat.validate(notebook)
  for index, cell in enumerate(notebook.cells):
    if cell.cell_type != "code":
      continue
    assert not cell.outputs and cell.execution_count is None, (
        f"{path.name}: code cell {index} was saved with outputs; clear them"
        " (e.g. jupyter nbconvert --clear-output --inplace) before committing."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs(
    path: pathlib.Path, kernel_name: str, monkeypatch: pytest.MonkeyPatch
):
  monkeypatch.setenv("SURROGATE_QUICK", "1")
  notebook = nbformat.read(path, as_version=4)
  # One more cell reports which interpreter the kernel ran.
  notebook.cells.append(
      nbformat.v4.new_code_cell("import sys\nprint(sys.executable, end='')")
  )
  client = NotebookClient(
      notebook,
      kernel_name=kernel_name,
      timeout=TIMEOUT_SECONDS,
      resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
  )
  client.execute()  # raises CellExecutionError, naming the cell, on any error
  (output,) = notebook.cells[-1].outputs
  assert os.path.realpath(output["text"]) == os.path.realpath(sys.executable)
