"""`lenet5-mnist-fast` (benchmarks/mnist_time_to_99.py's recipe) at the size its users run it:
full MNIST, through the command line, to 99% test accuracy in its two epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from shareddata import MNIST_DIR, needs_mnist


@needs_mnist
def test_fast_recipe_reaches_99_percent_on_full_mnist_in_nhwc(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(
        [sys.executable, "-m", "convzoo", "train", "lenet5", "--recipe", "lenet5-mnist-fast",
         "--data-dir", str(MNIST_DIR), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["channels_last"] is True and config["epochs"] == 2
    final = json.loads((out / "final.json").read_text())
    assert final["top1_acc"] >= 0.99 and final["n"] == 10_000, final
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 2 and epochs[-1]["test_top1_acc"] >= 0.99
