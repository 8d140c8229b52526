"""DDP under torchrun on the CPU (gloo, 2 processes) equals one process at the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from engine.enginehelp import REPO, cli_env, run_cli, same_weights, tiny_mnist_dir

COMMON = ["--epochs", "2", "--lr", "0.05", "--deterministic", "--no-tensorboard"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "convzoo",
        "train",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=cli_env(), cwd=REPO)


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    # 512 train images: 16 steps of 32 per epoch (no padded duplicates to train on), 200 test.
    return tiny_mnist_dir(tmp_path_factory.mktemp("mnist"), n_train=512, n_test=201)


@pytest.fixture(scope="module")
def two_process_run(mnist_dir, tmp_path_factory):
    """lenet5 trained by 2 processes at batch 16 a rank, a checkpoint every 5 steps (which changes
    no weight): (run folder, torchrun's result), read by both tests below."""
    out = tmp_path_factory.mktemp("ddp") / "two"
    two = torchrun("lenet5", "--data-dir", str(mnist_dir), "--batch-size", "16", *COMMON,
                   "--checkpoint-every-steps", "5", "--keep-checkpoints", "20", "--out", str(out))
    return out, two


def test_two_processes_equal_one_at_the_same_global_batch(mnist_dir, two_process_run, tmp_path):
    one = run_cli(
        "train",
        "lenet5",
        "--data-dir",
        str(mnist_dir),
        "--batch-size",
        "32",
        *COMMON,
        "--out",
        str(tmp_path / "one"),
    )
    assert one.returncode == 0, one.stderr
    two_dir, two = two_process_run
    assert two.returncode == 0, two.stderr[-3000:]
    diff = same_weights(tmp_path / "one" / "model.safetensors", two_dir / "model.safetensors")
    assert diff <= 1e-5
    cfg = json.loads((two_dir / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["batch_size"] == 16 and cfg["global_batch_size"] == 32
    f1, f2 = (json.loads((r / "final.json").read_text()) for r in (tmp_path / "one", two_dir))
    # 201 test images: ranks score 101 and 100, never a padded duplicate.
    assert f1["n"] == f2["n"] == 201
    assert f1["top1_acc"] == pytest.approx(f2["top1_acc"], abs=1 / 201)
    # Only rank 0 wrote: one line per epoch in the metrics, one start line on stdout.
    assert len((two_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert two.stdout.count("run directory: ") == 1


def test_sync_bn_on_cpu_is_a_clear_error(mnist_dir, tmp_path):
    two = torchrun(
        "resnet20",
        "--data-dir",
        str(mnist_dir),
        "--max-steps",
        "1",
        "--sync-bn",
        "--no-tensorboard",
        "--out",
        str(tmp_path / "r"),
    )
    assert two.returncode != 0 and "--sync-bn needs CUDA" in two.stderr


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2,
    reason="needs 2 CUDA devices (torch's SyncBatchNorm is GPU-only)",
)
def test_sync_bn_two_processes_equal_one(mnist_dir, tmp_path):
    """resnet20 has batch norm: with --sync-bn the batch statistics are the global batch's."""
    args = ["resnet20", "--data-dir", str(mnist_dir), "--max-steps", "4", *COMMON]
    one = run_cli("train", *args, "--batch-size", "32", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = torchrun(*args, "--batch-size", "16", "--sync-bn", "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert (
        same_weights(tmp_path / "one" / "model.safetensors", tmp_path / "two" / "model.safetensors")
        <= 1e-4
    )


def test_two_processes_resume_mid_epoch_exactly(two_process_run, tmp_path):
    """A 2-process run resumed (by 2 processes, into another folder) from a mid-epoch checkpoint
    ends with the very weights and metrics of the uninterrupted run."""
    from convzoo.engine.checkpoint import list_checkpoints, load_checkpoint
    from convzoo.engine.runlog import TIMING_FIELDS

    (a, whole), b = two_process_run, tmp_path / "b"
    assert whole.returncode == 0, whole.stderr[-3000:]
    mid = next(p for p in list_checkpoints(a / "checkpoints")
               if load_checkpoint(p)["epoch"] == 2 and load_checkpoint(p)["batch"] != 0)
    resumed = torchrun("--resume", str(mid), "--out", str(b))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert same_weights(a / "model.safetensors", b / "model.safetensors") == 0.0

    def rows(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in TIMING_FIELDS} for x in lines]

    assert rows(a) == rows(b)
