"""report: one self-contained HTML file, rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from convzoo.cli import main

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(tiny_run), "--out", str(out), "--images", "12"]) == 0
    return out


def test_report_is_self_contained(report):
    html = report.read_text()
    for section in ("Config", "Training curves", "Confusion matrix", "Per-class accuracy",
                    "top-5 predictions"):
        assert section in html
    srcs = re.findall(r"src='([^']*)'", html)
    assert len(srcs) >= 3 + 12 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(href|src)=['\"]?(https?:|//|file:)", html)


def _screenshot(html_file, tmp_path, name):
    shot = tmp_path / f"{name}.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / ('profile-' + name)}",
           f"--screenshot={shot}", "--window-size=1100,1400", "--hide-scrollbars",
           html_file.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)


def _colourful(px):
    """Fraction of pixels with a saturated colour (plot lines and cells; text is grey)."""
    return float((px.max(axis=2) - px.min(axis=2) > 60).mean())


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary installed (CI installs Debian's "
                    "chromium with apt-get)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    px = _screenshot(report, tmp_path, "report")
    # The same page with its images removed: what text and tables alone draw.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"src='data:[^']*'", "src=''", report.read_text()))
    px_bare = _screenshot(bare, tmp_path, "bare")
    assert px.std() > 20 and (px.min(axis=2) < 200).mean() > 0.03
    assert _colourful(px) > 0.01 and _colourful(px) > 5 * _colourful(px_bare), (
        _colourful(px), _colourful(px_bare))


# --- pictures that answer a question (issue 13) ------------------------------------------------

def test_report_gallery_of_misclassified_images(report, tiny_run):
    import json

    html = report.read_text()
    final = json.loads((tiny_run / "final.json").read_text())
    n_wrong = round(final["n"] * final["top1_err"])
    assert f"{n_wrong} of {final['n']} test images are misclassified" in html
    cells = re.findall(r"<div class='cell wrong'>.*?</div>", html)
    assert len(cells) == min(12, n_wrong) > 0
    confidences = [float(c) for c in re.findall(r"predicted: <b class='bad'>[^<]*</b> \(([\d.]+)\)",
                                                html)]
    assert len(confidences) == len(cells) and confidences == sorted(confidences, reverse=True)
    for cell in cells:  # true and predicted class differ in every cell
        true, pred = re.search(r"true: <b>([^<]*)</b>.*predicted: <b class='bad'>([^<]*)</b>",
                               cell).groups()
        assert true != pred


def test_report_command_line_and_config_changes(report):
    html = report.read_text()
    assert "command: <code>" in html
    changes = re.search(r"<table class='changes'>(.*?)</table>", html).group(1)
    keys = re.findall(r"<tr><th>([^<]*)</th><td>", changes)
    # tiny_run sets these; momentum, wd, optimizer keep their defaults and are not listed.
    assert {"model", "epochs", "max_steps", "tensorboard"} <= set(keys)
    assert not {"momentum", "wd", "optimizer", "batch_size", "out", "world_size"} & set(keys)
    assert "Training curves and learning rate" in html


def test_config_changes_and_command_line():
    from convzoo.analysis.report import command_line, config_changes

    changes = config_changes({"model": "lenet5", "lr": 0.05, "epochs": 3, "lr_milestones": [],
                              "out": "runs/x", "world_size": 1, "rrc_scale": None})
    assert changes["epochs"][1] == 3 and "lr_milestones" not in changes and "out" not in changes
    assert command_line({"argv": ["/x/.venv/bin/convzoo", "train", "lenet5", "--lr", "0.1 x"]}
                        ) == "convzoo train lenet5 --lr '0.1 x'"
    assert command_line({}) is None


def test_per_class_chart_is_zoomed_to_the_data():
    from convzoo.analysis.report import per_class_figure

    fig = per_class_figure(["a", "b", "c"], [0.945, 0.99, None])
    lo, hi = fig.axes[0].get_ylim()
    assert 90 < lo < 94.5 and 99 < hi <= 100


def test_misclassified_most_confident_first():
    import torch

    from convzoo.analysis.report import misclassified

    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    labels = torch.tensor([0, 0, 0, 1])  # wrong: 1 (0.8), 2 (0.6), 3 (0.7)
    assert misclassified(probs, labels, 5) == [1, 3, 2] and misclassified(probs, labels, 1) == [1]


def test_curves_have_a_learning_rate_panel_and_whole_epoch_ticks():
    from convzoo.engine.curves import curves_figure

    rows = [{"epoch": e, "lr": 0.1 / e, "train_loss": 1 / e, "test_loss": 1.1 / e,
             "train_acc": 0.5, "test_top1_err": 0.4, "test_top5_err": 0.1} for e in (1, 2, 3)]
    fig = curves_figure(rows)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "error", "learning rate"]
    assert list(fig.axes[2].lines[0].get_ydata()) == [0.1, 0.05, 0.1 / 3]
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    no_lr = curves_figure([{k: v for k, v in r.items() if k != "lr"} for r in rows])
    assert len(no_lr.axes) == 2
    one = curves_figure(rows[:1])  # one epoch: one tick, 1 (not 0.95, 0.975, ...)
    assert all(list(ax.get_xticks()) == [1] for ax in one.axes)
