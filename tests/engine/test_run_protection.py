"""Nothing a command writes lands on a finished run, and a finished run is never rewritten
(issue 26): an output path in a run is refused in one line (exit 2) with every file of the run
unchanged, bytes and modification times."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from convzoo import TrainConfig, fit
from convzoo.cli import main
from convzoo.engine.checkpoint import list_checkpoints
from convzoo.engine.rundir import LOCK_NAME, RunLock, lock_holder
from engine.enginehelp import popen_cli, shrink_mnist, tiny_mnist_dir

# 128 train images, batch 16: 8 steps per epoch.
BASE = ["lenet5", "--batch-size", "16", "--no-tensorboard", "--device", "cpu"]


@pytest.fixture(autouse=True)
def small_mnist(monkeypatch):
    shrink_mnist(monkeypatch, 128, 32)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 2-epoch run, made once; tests work on copies (see ``run``)."""
    with pytest.MonkeyPatch.context() as m:
        shrink_mnist(m, 128, 32)
        out = tmp_path_factory.mktemp("finished") / "run"
        # With TensorBoard (when installed): a resume must not add an event file either.
        assert main(["train", *BASE, "--tensorboard", "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(finished, tmp_path) -> Path:
    copy = tmp_path / "runs" / "run"
    shutil.copytree(finished, copy)  # copy2: bytes and modification times
    return copy


def state(folder: Path) -> dict:
    """Every entry under ``folder``: a file's bytes and modification time, a folder's name."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv", [
    ("eval", "{run}", "--confusion", "{run}/curves"),
    ("eval", "{run}", "--confusion", "{run}/sub/cm.png"),
    ("report", "{run}", "--out", "{run}/model.safetensors"),
    ("report", "{run}", "--out", "{run}/report.html"),
    ("compare", "{run}", "{other}", "--out", "{run}"),
    ("compare", "{other}", "{run}", "--out", "{run}/cmp"),
    ("visualize", "{run}", "filters", "--out", "{run}/curves.png"),
    ("export", "{run}", "--out", "{run}/model.onnx"),
    ("export", "{run}", "--out", "{link}/model.pt2"),  # a symbolic link into the run
    ("train", *BASE, "--epochs", "1", "--out", "{run}/sub"),
], ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_output_into_a_run_is_refused(run, tmp_path, capsys, argv):
    other = tmp_path / "runs" / "other"
    shutil.copytree(run, other)
    (tmp_path / "link").symlink_to(run)
    before, before_other = state(run), state(other)
    capsys.readouterr()
    filled = [a.format(run=run, other=other, link=tmp_path / "link") for a in argv]
    assert main(filled) == 2
    err = one_error_line(capsys)
    assert str(run.resolve()) in err, err
    assert "only `convzoo train` writes into a run" in err or "only training that run" in err
    assert state(run) == before and state(other) == before_other


def test_compare_default_folder_that_is_a_run_is_refused(run, capsys):
    """``compare A B`` writes into ``compare/`` beside A: not when that folder is a run."""
    a = run.parent / "a"
    shutil.copytree(run, a)
    shutil.move(run, run.parent / "compare")
    target = run.parent / "compare"
    before = state(target)
    capsys.readouterr()
    assert main(["compare", str(a), str(target)]) == 2
    err = one_error_line(capsys)
    assert "default output folder" in err and "--out" in err
    assert state(target) == before


def test_outputs_beside_a_run_are_written(run, tmp_path, capsys):
    """The check refuses only paths in a run: the same commands write outside it, and the
    report's default page lies beside the run, not in it."""
    before = state(run)
    assert main(["eval", str(run), "--confusion", str(tmp_path / "cm")]) == 0
    assert (tmp_path / "cm.csv").is_file() and (tmp_path / "cm.png").is_file()
    assert main(["report", str(run), "--images", "2"]) == 0
    assert (run.parent / "run-report.html").is_file()
    assert main(["visualize", str(run), "filters", "--out", str(tmp_path / "f.png")]) == 0
    assert state(run) == before
    capsys.readouterr()


def test_report_with_a_truncated_final_json_says_so_and_writes(run, tmp_path, capsys, caplog):
    final = run / "final.json"
    final.write_text(final.read_text()[:40])
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--images", "2", "--out", str(out)]) == 0
    assert out.is_file() and "test set: 32 images" in out.read_text()
    assert any("final.json is not valid JSON" in r.getMessage() for r in caplog.records)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["{\"model\": \"len", "[1, 2]"])
@pytest.mark.parametrize("command", ["eval", "predict", "report"])
def test_damaged_config_json_falls_back_to_the_weights_metadata(run, tmp_path, capsys, caplog,
                                                                damage, command):
    """The weights file names the model, its arguments, classes, data and input size: a
    damaged config.json is said, not fatal (a missing one already worked)."""
    from PIL import Image

    assert main(["eval", str(run), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["top1_acc"]
    (run / "config.json").write_text(damage)
    caplog.clear()
    if command == "eval":
        assert main(["eval", str(run), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["top1_acc"] == expected
    elif command == "predict":
        Image.new("L", (28, 28)).save(tmp_path / "digit.png")
        assert main(["predict", str(run), str(tmp_path / "digit.png"), "--json"]) == 0
    else:
        assert main(["report", str(run), "--images", "2", "--out", str(tmp_path / "r.html")]) == 0
    said = [r.getMessage() for r in caplog.records if "config.json" in r.getMessage()]
    assert said and "metadata" in said[0], said
    assert "Traceback" not in capsys.readouterr().err


# --- a resume of a finished run changes no byte ------------------------------------------------

@pytest.mark.parametrize("which", ["run", "latest checkpoint"])
def test_resume_of_a_finished_run_writes_nothing(run, capsys, which):
    before = state(run)
    source = run if which == "run" else list_checkpoints(run / "checkpoints")[-1]
    capsys.readouterr()
    assert main(["train", "--resume", str(source)]) == 0
    said = capsys.readouterr().out
    assert "is a finished run (2 epochs, step 16" in said and "nothing written" in said
    assert "more --epochs (it trained 2)" in said
    assert state(run) == before


def test_resume_of_a_finished_run_through_the_api_returns_its_results(run):
    before = state(run)
    r = fit(TrainConfig(model="lenet5", batch_size=16, tensorboard=True, device="cpu", epochs=2,
                        resume=str(run)))
    assert r.run_dir == run and r.final == json.loads((run / "final.json").read_text())
    assert state(run) == before


@pytest.mark.parametrize("change", [["--lr", "0.5"], ["--batch-size", "8"], ["--wd", "0.1"],
                                    ["--label-smoothing", "0.2"], ["--epochs", "1"]])
def test_conflicting_resume_of_a_finished_run_is_refused(run, capsys, change):
    before = state(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), *change]) == 2
    err = one_error_line(capsys)
    assert "is a finished run" in err and "nothing was written" in err
    assert f"{change[0][2:].replace('-', '_')} {change[1]} (run: " in err, err
    assert state(run) == before


def test_resume_from_an_earlier_checkpoint_of_a_finished_run_is_refused(run, capsys):
    earlier = list_checkpoints(run / "checkpoints")[0]
    before = state(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(earlier)]) == 2
    err = one_error_line(capsys)
    assert "not its latest checkpoint" in err and "--out" in err
    assert state(run) == before


def test_more_epochs_train_a_finished_run_further(run, capsys):
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert json.loads((run / "final.json").read_text())["steps"] == 24
    assert not (run / LOCK_NAME).exists()  # released


# --- one process trains a run at a time ---------------------------------------------------------

def test_a_run_being_trained_is_refused_to_a_second_command(run, capsys):
    lock = RunLock.acquire(run)  # as a training process holds it
    try:
        before = state(run)
        for argv in (["train", "--resume", str(run), "--epochs", "3"],
                     ["train", *BASE, "--epochs", "1", "--out", str(run), "--overwrite"]):
            capsys.readouterr()
            assert main(argv) == 2
            err = one_error_line(capsys)
            assert f"is in use: process {os.getpid()} is training it" in err, err
            assert state(run) == before
    finally:
        lock.release()
    assert lock_holder(run) is None and not (run / LOCK_NAME).exists()
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0


def test_the_lock_goes_with_a_failed_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *BASE, "--epochs", "1", "--lr", "1e6", "--out", str(out)]) == 2
    assert "diverged" in one_error_line(capsys)
    assert lock_holder(out) is None and not (out / LOCK_NAME).exists()


def test_a_killed_trainer_leaves_a_stale_lock_that_does_not_hold(tmp_path, capsys):
    """A second --resume while another process trains is refused; once that process is killed
    (kill -9: no cleanup), its lock file is stale and the resume goes on."""
    data = tiny_mnist_dir(tmp_path / "mnist", n_train=256, n_test=32)
    out = tmp_path / "run"
    proc = popen_cli("train", "lenet5", "--data-dir", str(data), "--epochs", "500",
                     "--batch-size", "16", "--checkpoint-every-steps", "2", "--no-tensorboard",
                     "--device", "cpu", "--out", str(out))
    try:
        deadline = time.monotonic() + 120
        while not (list_checkpoints(out / "checkpoints") and lock_holder(out)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        capsys.readouterr()
        assert main(["train", "--resume", str(out)]) == 2
        assert f"process {proc.pid} is training it" in one_error_line(capsys)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert (out / LOCK_NAME).exists() and lock_holder(out) is None  # stale
    step = int(list_checkpoints(out / "checkpoints")[-1].name[-11:-3])
    assert main(["train", "--resume", str(out), "--max-steps", str(step + 1)]) == 0
    assert json.loads((out / "final.json").read_text())["steps"] == step + 1


# --- faults: a full disk, a failed --overwrite ---------------------------------------------------

def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(run, capsys):
    """A new run that diverges before its first checkpoint leaves the old run as it was (and no
    hidden sibling folder); a stale sibling of a killed --overwrite goes at the next start."""
    (run / "notes.txt").write_text("mine")
    before = state(run)
    capsys.readouterr()
    assert main(["train", *BASE, "--epochs", "1", "--lr", "1e6", "--out", str(run),
                 "--overwrite"]) == 2
    assert "diverged" in one_error_line(capsys)
    assert state(run) == before
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]
    stale = run.parent / ".run.new-k1ll3d"
    (stale / "checkpoints").mkdir(parents=True)
    assert main(["train", *BASE, "--epochs", "1", "--max-steps", "3", "--out", str(run),
                 "--overwrite"]) == 0
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]
    assert json.loads((run / "final.json").read_text())["steps"] == 3
    assert (run / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_the_old_run_at_the_first_checkpoint(run, monkeypatch, capsys):
    """Once the new run has a checkpoint it is the run: a failure after it keeps the new run
    (resumable), not the old one."""
    from convzoo.engine import epoch

    def crash(*args, **kwargs):
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(epoch, "evaluate_epoch", crash)  # after the epoch's first checkpoint
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        main(["train", *BASE, "--epochs", "1", "--max-steps", "3", "--out", str(run),
              "--overwrite"])
    (ckpt,) = list_checkpoints(run / "checkpoints")
    assert ckpt.name == "ckpt-e0002-s00000003.pt"
    assert not (run / "final.json").exists() and not (run / "model.safetensors").exists()
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]


def test_full_disk_in_torch_save_is_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys,
                                                                             monkeypatch):
    """torch.save's own writer reports a refused write as RuntimeError ("unexpected pos");
    the checkpoint is written through a Python file, whose OSError says what happened."""
    import errno
    import io

    from convzoo.engine import checkpoint

    written = {"n": 0}

    class FullDisk(io.FileIO):
        def write(self, data):
            written["n"] += len(data)
            if written["n"] > 2_000_000:  # the first checkpoint (~0.5 MB) and a half fit
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(checkpoint, "open", lambda path, mode: FullDisk(path, "w"),
                        raising=False)
    out = tmp_path / "run"
    assert main(["train", *BASE, "--epochs", "1", "--checkpoint-every-steps", "1",
                 "--keep-checkpoints", "9", "--out", str(out)]) == 2
    err = one_error_line(capsys)
    assert "no space left on the device" in err and "the last checkpoint" in err, err
    assert f"convzoo train --resume {out}" in err
    kept = list_checkpoints(out / "checkpoints")
    assert kept and str(kept[-1]) in err
    assert not [p for p in (out / "checkpoints").iterdir() if p.suffix == ".tmp"]
    monkeypatch.undo()
    shrink_mnist(monkeypatch, 128, 32)
    assert main(["train", "--resume", str(out)]) == 0  # the kept checkpoint is whole


def test_full_disk_at_the_start_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import errno

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)  # atomic_write's, on config.json
    out = tmp_path / "new" / "run"
    assert main(["train", *BASE, "--epochs", "1", "--out", str(out)]) == 2
    err = one_error_line(capsys)
    assert "no space left on the device" in err and "config.json" in err
    assert not out.exists()


def test_an_experiment_reads_no_rows_of_the_run_its_diverged_arm_did_not_replace(finished):
    """An experiment retrains an arm with --overwrite; one that diverges before its first
    checkpoint leaves the earlier run in place, whose metrics are not the new arm's."""
    from convzoo.experiments._training import _read_rows

    saved = json.loads((finished / "config.json").read_text())
    cfg = TrainConfig.from_dict({k: saved[k] for k in ("model", "batch_size", "tensorboard",
                                                       "device", "epochs", "out")})
    assert len(_read_rows(finished, cfg)) == 2
    assert _read_rows(finished, cfg.replace(lr=10.0)) == []


def test_overwrite_with_the_numpy_engine_replaces_the_run_at_its_end(run, capsys):
    """The NumPy engine writes no checkpoint: its run replaces the old one when it ends, and
    its last line names the run directory, not the folder it was written in."""
    capsys.readouterr()
    assert main(["train", *BASE, "--engine", "numpy", "--epochs", "1", "--max-steps", "2",
                 "--out", str(run), "--overwrite"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"run directory: {run}")
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]
    assert json.loads((run / "config.json").read_text())["engine"] == "numpy"
    assert not (run / "checkpoints").exists()  # the old run's are gone


@pytest.mark.parametrize("flag", ["--out", "--runs"])
def test_an_experiment_writes_no_page_or_run_into_a_run(run, tmp_path, capsys, flag):
    before = state(run)
    other = "--runs" if flag == "--out" else "--out"
    capsys.readouterr()
    assert main(["experiment", "im2col", "--profile", "smoke", flag, str(run / "x"), other,
                 str(tmp_path / "elsewhere")]) == 2
    err = one_error_line(capsys)
    assert f"{flag} {run / 'x'} is inside the run directory" in err
    assert state(run) == before and not (tmp_path / "elsewhere").exists()
