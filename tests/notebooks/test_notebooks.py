"""notebooks/: stored without outputs and in step with their sources, and each one run top to
bottom in a Jupyter kernel of this environment (nbclient), offline, within its minute."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import time
import warnings
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BUDGET_S = 60  # each notebook, kernel start included, on a 2-core laptop CPU

# The lecture's sections in order, and what each notebook's run must show besides running
# without an error: lines its own checks print, rich displays (MIME types, HTML).
SECTIONS = {
    "01_conv2d": ("the formulas, torch and the NumPy layer agree",),
    # the tqdm.auto widget, the summary table, the fit result's curves, the evaluation table,
    # and a plt.show() after fit wrote its curves.png (the inline backend kept)
    "02_lenet": ("application/vnd.jupyter.widget-view+json", "receptive field 32",
                 "alt='training curves'", "top-k accuracy", "image/png"),
    "03_max_pooling": ("the same as torch's autograd",),
    "04_im2col_gemm": ("GEMM column 0 is the 6x5x5 patch", "same logits: True"),
    "05_alexnet": ("eval mode: the identity", "image/png"),
    "06_ilsvrc_topk": ("top-5 error of the worked example: 25%", "background:#4c78a8"),
    "07_vgg_googlenet_inception": ("Inception module 5x5 branch",),
    "08_batch_norm": ("running statistics: the NumPy layer and torch agree",),
    "09_resnet": ("block(x) == x: True", "image/png"),
    "10_densenet": ("growth rate k = 12: each layer adds 12 channels", "image/png"),
}


def _converter():
    spec = importlib.util.spec_from_file_location("notebooks_script", ROOT / "scripts" /
                                                  "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_notebook_per_section_in_order():
    assert [p.stem for p in NOTEBOOKS] == list(SECTIONS)


def test_notebooks_are_stored_without_outputs_and_built_from_their_sources():
    conv = _converter()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), (
            f"{path.name}: stored with outputs")
        assert path.read_text() == conv.render(path.with_suffix(".py")), (
            f"{path.name} differs from {path.stem}.py: run python scripts/notebooks.py")
        question = nb["cells"][-2]
        assert question["cell_type"] == "markdown" and "## Your turn" in "".join(
            question["source"]), f"{path.name}: does not end with a question to change and re-run"
        assert nb["cells"][-1]["cell_type"] == "code", path.name


def test_the_converter_reads_percent_cells():
    conv = _converter()
    cells = conv.parse("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\ny = 2\n")
    assert cells == [("markdown", "# Title\n\ntext"), ("code", "x = 1"), ("code", "y = 2")]
    with pytest.raises(ValueError, match="before the first"):
        conv.parse("x = 1\n# %%\n")
    with pytest.raises(ValueError, match="start with '#'"):
        conv.parse("# %% [markdown]\nnot a comment\n")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _outputs(nb) -> str:
    """Every cell's text output and the MIME types of its rich outputs, as one text."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                parts.append(out["text"])
            for mime, data in out.get("data", {}).items():
                text = data if isinstance(data, str) else json.dumps(data)
                parts.append(f"{mime}: {text}")
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline_within_its_minute(path, tmp_path, monkeypatch):
    # No network: any download (ImageNet weights) fails at once on a closed local port, and an
    # empty torch hub cache makes the ILSVRC notebook take its offline path.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("CONVZOO_WEIGHTS_MIRROR", "http://127.0.0.1:9/weights")
    nb = nbformat.read(path, as_version=4)
    # A cell may take 10x the budget before it counts as hung: on a machine shared with other
    # jobs a minute's work takes several (the budget is judged below, on an idle machine only).
    client = nbclient.NotebookClient(nb, timeout=10 * BUDGET_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    start, cpu_start = time.perf_counter(), _children_cpu_s()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    elapsed = time.perf_counter() - start
    cpu = _children_cpu_s() - cpu_start  # the kernel's, once it has exited
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    text = _outputs(nb)
    missing = [want for want in SECTIONS[path.stem] if want not in text]
    assert not missing, f"{path.name}: {missing} not in its output"
    if busy:
        warnings.warn(f"{path.name}: {elapsed:.1f} s ({cpu:.1f} s of CPU) on a busy machine (load "
                      f"average above the CPU count): its {BUDGET_S} s budget is not judged",
                      stacklevel=1)
    else:
        assert elapsed < BUDGET_S, f"{path.name} took {elapsed:.1f} s (budget {BUDGET_S} s)"
