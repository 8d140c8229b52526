"""What Jupyter shows of convzoo's results (``_repr_html_``), the bars, the plotting backend."""

from __future__ import annotations

import subprocess
import sys

import torch

import convzoo
from convzoo.analysis.summary import summarize
from convzoo.engine.curves import plot_curves
from convzoo.engine.rundir import FitResult


def test_a_model_summary_is_an_html_table_of_every_layer():
    s = summarize("lenet5")
    page = s._repr_html_()
    assert page.startswith("<table") and page.count("<tr>") == len(s.rows) + 2  # head, total
    assert "61,706" in page and "Conv2d" in page and "receptive field 32" in page


def test_an_evaluation_shows_top1_to_top5_and_per_class():
    from convzoo.data import ImageDataset, preset_for
    from convzoo.engine.scoring import evaluate_model

    ds = ImageDataset(torch.randint(0, 256, (12, 1, 4, 4), dtype=torch.uint8),
                      torch.arange(12) % 6, list("abcdef"), "t", "t")
    ev = evaluate_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6)), ds,
                        preset_for("mnist", in_chans=1, image_size=4))
    page = ev._repr_html_()
    for k in range(1, 6):
        assert f"text-align:right'>{k}</td>" in page
    assert f"{100 * ev.topk_acc[5]:.2f}%" in page
    assert "per class (6)" in page and ">f</td>" in page


def test_convzoo_evaluate_returns_a_plain_dict_that_jupyter_shows_as_tables():
    result = convzoo.evaluate("lenet5:mnist")
    assert isinstance(result, dict) and result["top1_acc"] > 0.95
    page = result._repr_html_()
    assert "lenet5" in page and "top-k error" in page and f"{100 * result['top1_err']:.2f}%" in page


def test_a_fit_result_shows_its_accuracy_and_curves_inline(tmp_path):
    rows = [{"epoch": e, "lr": 0.1, "train_loss": 1 / e, "test_loss": 1.2 / e,
             "train_acc": 0.5 + e / 10, "test_top1_err": 0.4 / e, "test_top5_err": 0.1 / e}
            for e in (1, 2)]
    plot_curves(rows, tmp_path / "curves.png")
    final = {"model": "lenet5", "data": "mnist", "epochs": 2, "n": 2000, "top1_acc": 0.98,
             "top1_err": 0.02, "top5_acc": 1.0, "train_time_s": 3.2}
    page = FitResult(tmp_path, final, torch.nn.Identity())._repr_html_()
    assert "98.00%" in page and "lenet5" in page and str(tmp_path) in page
    assert "<img alt='training curves' src='data:image/png;base64," in page
    no_curves = FitResult(tmp_path / "none", final, torch.nn.Identity())._repr_html_()
    assert "<img" not in no_curves


def test_a_prediction_shows_the_image_beside_its_top5_bars(tmp_path):
    from PIL import Image

    from convzoo.analysis.predict import predict
    from convzoo.data import load_dataset

    digit = tmp_path / "digit.png"
    Image.fromarray(load_dataset("mnist", split="test").images[0, 0].numpy()).save(digit)
    page = predict("lenet5:mnist", [digit])._repr_html_()
    assert page.count("<img") == 1 and "data:image/png;base64," in page
    assert page.count("background:#4c78a8") == 5 and "digit.png" in page


def test_a_report_page_is_shown_in_a_frame(tmp_path):
    from convzoo.analysis.report import ReportPage

    page = tmp_path / "report.html"
    page.write_text("<html><body><h1>it's \"here\"</h1></body></html>")
    frame = ReportPage(page)._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"") and "&lt;h1&gt;it&#x27;s &quot;here&quot;" in frame


def _backend_after_pyplot(env_backend: str | None) -> str:
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    if env_backend:
        env["MPLBACKEND"] = env_backend
    code = ("from convzoo._plotting import pyplot; import matplotlib; pyplot(); "
            "print(matplotlib.get_backend())")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_figures_for_files_keep_a_notebooks_backend():
    # A Jupyter kernel sets MPLBACKEND to its inline backend; switching it to Agg would stop
    # every later plt.show() of the notebook from showing anything.
    assert _backend_after_pyplot(None).lower() == "agg"
    assert _backend_after_pyplot("module://matplotlib_inline.backend_inline") == (
        "module://matplotlib_inline.backend_inline")


def test_the_bars_are_text_outside_a_notebook():
    from convzoo.engine.progress import in_notebook

    assert in_notebook() is False  # the CLI and scripts keep tqdm's terminal bar


def test_the_explorer_runs_inside_a_notebook_cell(tmp_path):
    import pytest

    pytest.importorskip("uvicorn")
    import urllib.request

    from convzoo.explore import Explorer, embed

    shown = embed(Explorer(runs=tmp_path), height=500)
    try:
        assert shown.url.startswith("http://127.0.0.1:") and shown.thread.is_alive()
        frame = shown._repr_html_()
        assert f"<iframe src='{shown.url}'" in frame and "height:500px" in frame
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
        with opener.open(shown.url + "api/models", timeout=30) as answer:
            assert answer.status == 200 and b"lenet5:mnist" in answer.read()
    finally:
        shown.stop()
    assert not shown.thread.is_alive()
