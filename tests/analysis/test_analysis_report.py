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
