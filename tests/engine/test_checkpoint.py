"""Never lose work: checkpoints, exact resume after SIGKILL, SIGTERM, NaN stop."""

from __future__ import annotations

import csv
import json
import signal
import time

import pytest
import torch

from convzoo import TrainConfig, fit
from convzoo.engine.checkpoint import list_checkpoints, load_checkpoint
from convzoo.engine.runlog import TIMING_FIELDS
from convzoo.errors import ConvzooError
from engine.enginehelp import popen_cli, run_cli, same_weights, shrink_mnist, tiny_mnist_dir

# 512 train images, batch 16: 32 steps per epoch, 3 epochs, a checkpoint every 8 steps.
TRAIN = [
    "lenet5",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--lr",
    "0.05",
    "--deterministic",
    "--checkpoint-every-steps",
    "8",
    "--keep-checkpoints",
    "3",
    "--no-tensorboard",
]


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    return tiny_mnist_dir(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="module")
def reference_run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = run_cli("train", *TRAIN, "--data-dir", str(mnist_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def rows_without_timing(run):
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


def test_sigkill_mid_epoch_then_resume_is_bit_identical(mnist_dir, reference_run, tmp_path):
    out = tmp_path / "killed"
    proc = popen_cli("train", *TRAIN, "--data-dir", str(mnist_dir), "--out", str(out))
    # Kill as soon as the checkpoint after step 40 (epoch 2, batch 8 of 32) is on disk.
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if any(int(p.name.split("-s")[1][:8]) >= 40 for p in list_checkpoints(out / "checkpoints")):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "final.json").exists()
    latest = list_checkpoints(out / "checkpoints")[-1]
    state = load_checkpoint(latest)
    assert state["step"] >= 40 and state["batch"] not in (0, 32)  # killed mid-epoch
    resumed = run_cli("train", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    assert same_weights(out / "model.safetensors", reference_run / "model.safetensors") == 0.0
    assert rows_without_timing(out) == rows_without_timing(reference_run)
    fa, fb = (json.loads((r / "final.json").read_text()) for r in (out, reference_run))
    assert {k: fa[k] for k in ("loss", "top1_acc", "top5_acc")} == {
        k: fb[k] for k in ("loss", "top1_acc", "top5_acc")
    }
    # keep-last-K: three checkpoints, each loadable, no temporary files
    files = list_checkpoints(out / "checkpoints")
    assert len(files) == 3 and not list((out / "checkpoints").glob("*.tmp"))
    assert load_checkpoint(files[-1])["step"] == 96  # 3 epochs x 32 steps


@pytest.mark.slow
def test_sigterm_checkpoints_and_says_how_to_resume(mnist_dir, reference_run, tmp_path):
    out = tmp_path / "term"
    proc = popen_cli("train", *TRAIN, "--data-dir", str(mnist_dir), "--out", str(out))
    deadline = time.time() + 240
    while time.time() < deadline and not list_checkpoints(out / "checkpoints"):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and f"convzoo train --resume {out}" in err
    assert "Traceback" not in err
    resumed = run_cli("train", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert same_weights(out / "model.safetensors", reference_run / "model.safetensors") == 0.0


def test_nan_loss_stops_with_step_lr_and_checkpoint(mnist_dir, tmp_path):
    proc = run_cli(
        "train",
        "lenet5",
        "--data-dir",
        str(mnist_dir),
        "--epochs",
        "2",
        "--lr",
        "1e6",
        "--lr-scheduler",
        "constant",
        "--checkpoint-every-steps",
        "1",
        "--no-tensorboard",
        "--out",
        str(tmp_path / "nan"),
    )
    assert proc.returncode == 2
    msg = proc.stderr.strip()
    assert msg.count("\n") == 0 and "diverged" in msg and "step" in msg and "lr 1e+06" in msg
    assert "last good checkpoint is" in msg and "ckpt-e0001-s" in msg


def test_in_process_resume_from_a_checkpoint_file_and_best(tmp_path, monkeypatch):
    """Resume from an explicit mid-epoch checkpoint file (EMA, holdout and best included)."""
    shrink_mnist(monkeypatch, 400, 100)
    base = dict(
        model="lenet5",
        epochs=2,
        batch_size=20,
        holdout=0.1,
        ema=True,
        ema_decay=0.9,
        checkpoint_every_steps=5,
        keep_checkpoints=10,
        tensorboard=False,
    )
    a = fit(TrainConfig(**base, out=str(tmp_path / "a")))
    files = list_checkpoints(a.run_dir / "checkpoints")
    mid = next(p for p in files if load_checkpoint(p)["batch"] == 10)
    b = fit(TrainConfig(**base, out=str(tmp_path / "b"), resume=str(mid)))
    assert same_weights(a.run_dir / "model.safetensors", b.run_dir / "model.safetensors") == 0.0
    assert (a.run_dir / "best.safetensors").is_file()
    # model.safetensors holds the EMA weights, not the raw ones of the last checkpoint.
    last = load_checkpoint(files[-1])
    from convzoo import read_weights

    saved = read_weights(a.run_dir / "model.safetensors").state_dict
    assert torch.equal(saved["features.0.weight"], last["ema"]["features.0.weight"])
    assert not torch.equal(saved["features.0.weight"], last["model"]["features.0.weight"])
    rows = [json.loads(line) for line in (a.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0]["val_top1_acc"] is not None


def test_resume_errors():
    with pytest.raises(ConvzooError, match="no such run directory"):
        fit(TrainConfig(model="lenet5", resume="/nonexistent/run"))
