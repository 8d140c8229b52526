"""The commands of issue 12's opening block, which all failed on streamed folders, and an exact
resume after kill -9 in the middle of an epoch of streamed data."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fullsize.fullhelp import DEVICE, Tree, call_cli, cli_cmd, cli_env, run_cli


def final_of(run: Path) -> dict:
    return json.loads((run / "final.json").read_text())


def test_issue_catdog_96px_folder_trains(catdog96_dir: Tree, tmp_path):
    # convzoo train resnet18 --data folder --data-dir data --train-split train --val-split val
    #   --epochs 1 --num-classes 2   (was: AttributeError 'FolderDataset' has no 'images')
    out = tmp_path / "run"
    r = run_cli("train", "resnet18", "--data", "folder", "--data-dir", "data", "--train-split",
                "train", "--val-split", "val", "--epochs", "1", "--num-classes", "2",
                "--out", out, cwd=_data_link(catdog96_dir, tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    final = final_of(out)
    assert final["n"] == catdog96_dir.n_val
    assert 0.0 <= final["top1_acc"] <= 1.0 and final["top2_acc"] == 1.0  # 2 classes
    cfg = json.loads((out / "config.json").read_text())
    # Streamed (96 px is over the 64 px in-memory limit), at the images' own size, which
    # resnet18 accepts (docs/data.md, "How the input size is chosen"), said in one line and
    # recorded; the preset crops to it.
    assert cfg["input_size"] == 96 and "the images' own size" in cfg["input_size_reason"]
    said = [line for line in r.stdout.splitlines() if line.startswith("input 96 px")]
    assert said == [cfg["input_size_reason"]]
    assert json.loads((out / "preset.json").read_text())["crop_size"] == 96
    assert json.loads((out / "classes.json").read_text()) == ["cat", "dog"]


def _data_link(tree: Tree, tmp_path: Path) -> Path:
    """A working directory where ``data`` is the tree (the issue's command names ``data``)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "data").symlink_to(tree.root, target_is_directory=True)
    return cwd


@pytest.fixture(scope="module")
def imagenet_run(ilsvrc_dir: Tree, tmp_path_factory) -> Path:
    """convzoo train resnet18 --data imagenet --data-dir <ILSVRC layout>, two steps of four."""
    out = tmp_path_factory.mktemp("imagenet") / "run"
    r = run_cli("train", "resnet18", "--data", "imagenet", "--data-dir", ilsvrc_dir.root,
                "--max-steps", "2", "--batch-size", "4", "--device", DEVICE, "--workers", "1",
                "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_issue_imagenet_layout_trains(imagenet_run: Path, ilsvrc_dir: Tree):
    final = final_of(imagenet_run)
    assert final["n"] == ilsvrc_dir.n_val
    assert 0.0 <= final["top1_acc"] <= final["top5_acc"] <= 1.0
    classes = json.loads((imagenet_run / "classes.json").read_text())
    assert len(classes) == 1000 and classes[207] == "golden retriever"
    # The training itself is on disk: weights and a checkpoint.
    assert (imagenet_run / "model.safetensors").is_file()
    assert [p for p in (imagenet_run / "checkpoints").iterdir() if not p.name.endswith(".tmp")]


def test_issue_eval_on_imagenet_layout(imagenet_run: Path, ilsvrc_dir: Tree, capsys):
    # convzoo eval RUN  (was: IndexError, evaluate.py read test_set.shape[1])
    code, out, err = call_cli(capsys, "eval", imagenet_run, "--device", DEVICE, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == ilsvrc_dir.n_val
    assert result["top1_acc"] == pytest.approx(final_of(imagenet_run)["top1_acc"])
    assert result["top5_acc"] == pytest.approx(final_of(imagenet_run)["top5_acc"])
    # with --data-dir given explicitly, as on another machine
    code, out, err = call_cli(capsys, "eval", imagenet_run, "--data", "imagenet", "--data-dir",
                              ilsvrc_dir.root, "--device", DEVICE, "--json")
    assert code == 0, err
    assert json.loads(out)["top1_acc"] == pytest.approx(result["top1_acc"])


def test_issue_test_only_on_imagenet_layout(imagenet_run: Path, ilsvrc_dir: Tree, tmp_path,
                                            capsys):
    # convzoo train resnet18 --data imagenet --data-dir D --test-only --weights W
    #   (was: AttributeError 'FolderDataset' has no 'images')
    out = tmp_path / "test-only"
    code, stdout, err = call_cli(capsys, "train", "resnet18", "--data", "imagenet", "--data-dir",
                                 ilsvrc_dir.root, "--test-only", "--weights",
                                 imagenet_run / "model.safetensors", "--device", DEVICE,
                                 "--out", out)
    assert code == 0, err
    final = final_of(imagenet_run)
    # the same accuracy as the run's own evaluation at the end of training
    assert top1_printed(stdout) == pytest.approx(final["top1_acc"], abs=1e-4)
    assert final_of(out)["n"] == ilsvrc_dir.n_val
    # --test-only --resume RUN scores the run's weights the same way, and leaves the run's own
    # results as they were
    before = {p.name: p.read_bytes() for p in imagenet_run.iterdir() if p.is_file()}
    code, stdout, err = call_cli(capsys, "train", "--resume", imagenet_run, "--test-only",
                                 "--device", DEVICE)
    assert code == 0, err
    assert top1_printed(stdout) == pytest.approx(final["top1_acc"], abs=1e-4)
    after = {p.name: p.read_bytes() for p in imagenet_run.iterdir() if p.is_file()}
    changed = sorted(n for n in before if after.get(n) != before[n])
    assert not changed, f"--test-only --resume rewrote the run's {changed}"


def top1_printed(stdout: str) -> float:
    m = re.search(r"top-1 acc ([0-9.]+)", stdout)
    assert m, stdout
    return float(m.group(1))


# --- kill -9 mid-epoch on streamed data, then an exact resume --------------------------------

def resume_args(tree: Tree, out: Path) -> list:
    # 12 training images, batch 4: 3 steps in the epoch; a checkpoint after every step.
    return ["train", "resnet18", "--data", tree.data, "--data-dir", tree.root, "--epochs", "1",
            "--batch-size", "4", "--device", DEVICE, "--deterministic",
            "--checkpoint-every-steps", "1", "--keep-checkpoints", "2", "--workers", "2",
            "--no-tensorboard",
            "--input-size", "128", "--out", out]


def checkpoints(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".tmp"))


def test_kill_9_mid_epoch_on_streamed_data_resumes_bit_identically(folder_dir: Tree, tmp_path):
    straight = tmp_path / "straight"
    r = run_cli(*resume_args(folder_dir, straight))
    assert r.returncode == 0, r.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cli_cmd(), *map(str, resume_args(folder_dir, killed))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not checkpoints(killed):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed: {err[-2000:]}"
    assert checkpoints(killed) and not (killed / "final.json").exists()

    resumed = run_cli("train", "--resume", killed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(straight / "model.safetensors")
    b = load_file(killed / "model.safetensors")
    assert sorted(a) == sorted(b)
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert not unequal, f"{len(unequal)} tensors differ after the resume, e.g. {unequal[:3]}"
    fa, fb = final_of(straight), final_of(killed)
    assert {k: fa[k] for k in ("loss", "top1_acc")} == {k: fb[k] for k in ("loss", "top1_acc")}
