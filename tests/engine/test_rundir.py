"""Run directories never lose work: resume writes where the run now is, --out never silently
replaces a run, a refused resume or a failed command writes nothing, the checkpoint comes before
the evaluation, stale temporary files go, a full disk is one line."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch

from convzoo import TrainConfig, fit
from convzoo.cli import main
from convzoo.engine.checkpoint import list_checkpoints, load_checkpoint
from convzoo.errors import ConvzooError
from engine.enginehelp import same_weights, shrink_mnist, tiny_mnist_dir

# 128 train images, batch 16: 8 steps per epoch.
BASE = ["lenet5", "--batch-size", "16", "--no-tensorboard", "--device", "cpu"]


@pytest.fixture(autouse=True)
def small_mnist(monkeypatch):
    shrink_mnist(monkeypatch, 128, 32)


def train(*args: str) -> int:
    return main(["train", *BASE, *args])


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_resume_of_a_copy_writes_into_the_copy(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert train("--epochs", "2", "--max-steps", "5", "--out", str(a)) == 0
    shutil.copytree(a, b)
    before = snapshot(a)
    assert train("--epochs", "2", "--resume", str(b), "--max-steps", "12") == 0
    assert snapshot(a) == before  # the original run is untouched
    final = json.loads((b / "final.json").read_text())
    assert final["steps"] == 12
    assert json.loads((b / "config.json").read_text())["out"] == str(b)
    assert [load_checkpoint(p)["step"] for p in list_checkpoints(b / "checkpoints")][-1] == 12


def test_resume_of_a_moved_run_writes_where_it_now_is(tmp_path):
    a, b = tmp_path / "a", tmp_path / "moved"
    assert train("--epochs", "2", "--max-steps", "3", "--out", str(a)) == 0
    shutil.move(a, b)
    assert train("--epochs", "2", "--max-steps", "6", "--resume", str(b)) == 0
    assert not a.exists()
    assert json.loads((b / "final.json").read_text())["steps"] == 6


def test_out_naming_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--epochs", "1", "--checkpoint-every-steps", "1", "--keep-checkpoints", "3",
                 "--out", str(out)) == 0
    (out / "notes.txt").write_text("mine")  # a user's own file in the run folder
    before = snapshot(out)
    capsys.readouterr()
    assert train("--epochs", "1", "--max-steps", "2", "--out", str(out)) == 2
    assert "--overwrite" in one_error_line(capsys)
    assert snapshot(out) == before
    assert train("--epochs", "1", "--max-steps", "2", "--checkpoint-every-steps", "1",
                 "--keep-checkpoints", "3", "--out", str(out), "--overwrite") == 0
    # Only the new run's checkpoints (steps 1-2), none of the old run's (steps up to 8).
    steps = [load_checkpoint(p)["step"] for p in list_checkpoints(out / "checkpoints")]
    assert steps and max(steps) == 2
    assert json.loads((out / "final.json").read_text())["steps"] == 2
    assert (out / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    return tiny_mnist_dir(tmp_path_factory.mktemp("mnist"), n_train=128, n_test=32)


@pytest.mark.parametrize("change", [["--model", "lenet"], ["--opt", "adamw"],
                                    ["--num-classes", "12"], ["--data-dir", "MNIST_DIR"],
                                    ["--data", "cifar10"], ["--seed", "1"]])
def test_conflicting_resume_is_one_line_and_changes_nothing(tmp_path, capsys, change, mnist_dir):
    out = tmp_path / "run"
    assert train("--epochs", "2", "--max-steps", "3", "--out", str(out)) == 0
    before = snapshot(out)
    capsys.readouterr()
    change = [str(mnist_dir) if c == "MNIST_DIR" else c for c in change]
    if change[0] == "--model":  # the model is the positional argument
        code = main(["train", change[1], "--resume", str(out), "--max-steps", "6"])
    else:
        code = main(["train", "--resume", str(out), "--max-steps", "6", *change])
    assert code == 2
    err = one_error_line(capsys)
    assert f"--resume {out}" in err and change[0].lstrip("-").split("-")[0] in err
    assert snapshot(out) == before


def test_changed_batch_size_mid_epoch_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--epochs", "1", "--checkpoint-every-steps", "3", "--keep-checkpoints", "9",
                 "--out", str(out)) == 0
    mid = next(p for p in list_checkpoints(out / "checkpoints") if load_checkpoint(p)["batch"])
    before = snapshot(out)
    capsys.readouterr()
    assert main(["train", "--resume", str(mid), "--batch-size", "8", "--out", str(out)]) == 2
    assert "batch_size 8 mid-epoch" in one_error_line(capsys)
    assert snapshot(out) == before


def test_checkpoint_comes_before_the_evaluation(tmp_path, monkeypatch):
    """An evaluation that crashes loses no training; the resume evaluates and goes on."""
    cfg = dict(model="lenet5", epochs=2, batch_size=16, tensorboard=False, device="cpu",
               deterministic=True)
    ref = fit(TrainConfig(**cfg, out=str(tmp_path / "ref")))

    def crash(self):
        raise RuntimeError("evaluation crashed")

    with monkeypatch.context() as m:
        m.setattr(torch.nn.Module, "eval", crash)
        with pytest.raises(RuntimeError, match="evaluation crashed"):
            fit(TrainConfig(**cfg, out=str(tmp_path / "crash")))
    (latest,) = list_checkpoints(tmp_path / "crash" / "checkpoints")
    state = load_checkpoint(latest)
    assert (state["epoch"], state["batch"], state["step"]) == (2, 0, 8)  # epoch 1 is kept
    resumed = fit(TrainConfig(**cfg, resume=str(tmp_path / "crash")))
    assert resumed.run_dir == tmp_path / "crash"
    assert same_weights(ref.run_dir / "model.safetensors",
                        resumed.run_dir / "model.safetensors") == 0.0
    rows = [json.loads(x) for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    ref_rows = [json.loads(x) for x in (ref.run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = ("epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_top1_acc")
    assert [[r[k] for k in keys] for r in rows] == [[r[k] for k in keys] for r in ref_rows]
    final = load_checkpoint(list_checkpoints(resumed.run_dir / "checkpoints")[-1])
    assert final["unevaluated"] is None and len(final["rows"]) == 2


def test_stale_temporary_files_are_removed_on_the_next_start(tmp_path):
    out = tmp_path / "run"
    assert train("--epochs", "2", "--max-steps", "3", "--out", str(out)) == 0
    stale = [out / ".model.safetensors.k1ll3d.tmp",
             out / "checkpoints" / ".ckpt-e0001-s00000004.pt.k1ll3d.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    assert train("--epochs", "2", "--max-steps", "4", "--resume", str(out)) == 0
    assert not any(p.exists() for p in stale)


@pytest.mark.parametrize("args", [
    ["--data-dir", "/nonexistent/mnist"],
    ["--weights", "/nonexistent/w.safetensors"],
    ["--test-only"],
    ["--model-arg", "bogus=1"],
])
def test_a_failed_command_leaves_no_run_directory(tmp_path, capsys, args):
    out = tmp_path / "new" / "run"
    assert train("--epochs", "1", *args, "--out", str(out)) == 2
    one_error_line(capsys)
    assert not out.exists()


def test_a_failure_keeps_a_folder_that_was_there(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert train("--epochs", "1", "--test-only", "--out", str(out)) == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_disk_full_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)  # the checkpoint's writer
    assert train("--epochs", "1", "--out", str(tmp_path / "run")) == 2
    err = one_error_line(capsys)
    assert "no space left" in err and "ckpt-e0002-s00000008.pt" in err
    assert not (tmp_path / "run").exists()  # nothing of value was saved: no half-made run


def test_resume_errors_name_the_argument(tmp_path):
    with pytest.raises(ConvzooError, match="no such run directory"):
        fit(TrainConfig(model="lenet5", resume=str(tmp_path / "nonexistent")))
    assert not (tmp_path / "nonexistent").exists()


def _jpeg_folder(root, size=96, per_class=4):
    from torchvision.io import write_jpeg

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c, cls in enumerate(("cat", "dog")):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                img = torch.randint(0, 256, (3, size, size + 8 * i), generator=g,
                                    dtype=torch.uint8) // (c + 1)
                write_jpeg(img, str(root / split / cls / f"{i}.jpg"))
    return root


def test_test_only_on_a_streamed_folder(tmp_path):
    from convzoo import create_model
    from convzoo.weights import save_weights

    data = _jpeg_folder(tmp_path / "data")
    weights = tmp_path / "w.safetensors"
    args = {"num_classes": 2, "in_chans": 3}
    save_weights(weights, create_model("resnet20", **args), model_name="resnet20",
                 model_args=args, classes=["cat", "dog"])
    r = fit(TrainConfig(model="resnet20", data="folder", data_dir=str(data), test_only=True,
                        weights=str(weights), device="cpu", out=str(tmp_path / "t"),
                        tensorboard=False))
    assert r.final["test_only"] and r.final["n"] == 8
    assert json.loads((r.run_dir / "final.json").read_text())["n"] == 8


def test_input_size_is_said_and_recorded(tmp_path, capsys):
    """The size the model sees: one line at the start, config.json (with the reason), and the
    metadata of model.safetensors and best.safetensors (what eval/predict/export reuse)."""
    from convzoo import read_weights

    out = tmp_path / "run"
    assert train("--epochs", "1", "--holdout", "0.25", "--input-size", "28", "--out",
                 str(out)) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "--input-size" in line]
    assert len(said) == 1 and "28 px" in said[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["input_size"] == 28 and "--input-size" in cfg["input_size_reason"]
    preset = json.loads((out / "preset.json").read_text())
    for name in ("model.safetensors", "best.safetensors"):  # they evaluate as the run did
        extra = read_weights(out / name).extra
        assert extra["input_size"] == 28 and extra["preset"] == preset
    # Fine-tuning from these weights: their size is the default, and said so.
    ft = tmp_path / "ft"
    assert train("--epochs", "1", "--max-steps", "1", "--weights", str(out / "model.safetensors"),
                 "--out", str(ft)) == 0
    assert json.loads((ft / "config.json").read_text())["input_size"] == 28
    assert "weights" in json.loads((ft / "config.json").read_text())["input_size_reason"]
