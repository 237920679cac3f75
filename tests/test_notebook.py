"""The tutorial notebook, demo/flexconv.ipynb, runs from top to bottom on a CPU and is committed with its outputs."""
from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "demo" / "flexconv.ipynb"
MAX_BYTES = 300_000  # read on the repository's web page: small figures only


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_committed_notebook_shows_its_outputs_and_stays_small():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    cells = code_cells(notebook)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), "run it top to bottom"
    assert all(cell.outputs for cell in cells), "every code cell shows what it did"
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    assert NOTEBOOK.stat().st_size < MAX_BYTES


def test_the_notebook_runs_from_a_clean_copy(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in code_cells(notebook):
        cell.outputs, cell.execution_count = [], None
    try:  # the per-cell timeout only guards against a hang (the training cell takes ~35 s on 2 idle cores)
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    except Exception as error:  # nbclient's CellExecutionError carries the cell's traceback
        pytest.fail(f"demo/flexconv.ipynb failed: {error}")
    text = "\n".join(o.get("text", "") for cell in code_cells(notebook) for o in cell.outputs)
    # The training cell reached a real accuracy on MNIST-1D, and the kernels grew from their initial 4 taps.
    accuracy = float(text.split("test accuracy ")[-1].split(" ")[0])
    assert accuracy > 0.8, text
    # The same continuous mask on the twice as fine grid: 2 * 8 + 1 taps; crop_to(9) puts the crop boundary
    # midway between two taps of the 33-grid, which is exactly on a tap of the 65-grid, so 19 is as right.
    assert re.search(r"kernel \(9, 9\) at 64x64 -> \((17, 17|19, 19)\) at 128x128", text), text
    assert "figures: kernels.png, masks.png" in text
