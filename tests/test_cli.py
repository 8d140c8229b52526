"""The command line: help, list, errors as one line with exit status 2, train/eval round trip."""

import json
import subprocess
import sys

import pytest
import torch

from convzoo.cli import build_parser, main
from convzoo.data import datasets


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "convzoo", *args], capture_output=True,
                          text=True, timeout=300)


def test_every_command_has_help(capsys):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"train", "eval", "list"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: convzoo" in capsys.readouterr().out


def test_list_shows_params(capsys):
    assert main(["list", "lenet*"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "61,706" in out and "62,006" in out
    assert main(["list", "lenet5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"name": "lenet5", "family": "lenet", "form": "small", "input": "1x28x28",
                     "params": 61706, "weights": ["mnist"], "paper": "LeCun et al. 1998"}]


@pytest.mark.parametrize("argv,needle", [
    (["train", "lenet6"], "unknown model 'lenet6'"),
    (["train", "lenet5", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "lenet5", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "lenet5", "--lr", "0"], "--lr must be > 0"),
    (["train", "lenet5", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    (["eval", "/nonexistent/run"], "/nonexistent/run"),
    (["train", "lenet5", "--config", "/nonexistent/config.json"], "/nonexistent/config.json"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_path(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "lenet5", "--out", str(blocker / "run")]) == 2
    assert str(blocker / "run") in capsys.readouterr().err


def test_malformed_idx_via_subprocess(tmp_path):
    """A real process: wrong magic number in a data file -> one line naming it, status 2."""
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    proc = run_cli("train", "lenet5", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "magic number" in proc.stderr
    assert str(tmp_path / "train-images-idx3-ubyte") in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_then_eval_and_config_rerun(tmp_path, capsys, monkeypatch):
    original = datasets.SOURCES["mnist"]
    monkeypatch.setitem(datasets.SOURCES, "mnist", lambda d, s, **kw: original(d, s, **kw).subset(
        torch.arange(300 if s == "train" else 100)))
    run = tmp_path / "run"
    assert main(["train", "lenet5", "--epochs", "1", "--batch-size", "50", "--lr", "0.03",
                 "--model-arg", "activation=tanh", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "top-1 acc" in out and str(run) in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["batch_size"] == 50 and cfg["model_args"] == {"activation": "tanh"}

    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    final = json.loads((run / "final.json").read_text())
    assert result["top1_acc"] == pytest.approx(final["top1_acc"])
    assert set(result["per_class_acc"]) == {str(i) for i in range(10)}

    # Re-run the saved config; a flag still overrides it.
    rerun = tmp_path / "rerun"
    assert main(["train", "lenet5", "--config", str(run / "config.json"), "--lr", "0.02",
                 "--out", str(rerun)]) == 0
    cfg2 = json.loads((rerun / "config.json").read_text())
    assert cfg2["batch_size"] == 50 and cfg2["lr"] == 0.02
    assert cfg2["model_args"] == {"activation": "tanh"}


def test_eval_numpy_engine_agrees_with_torch(tmp_path, capsys, monkeypatch):
    original = datasets.SOURCES["mnist"]
    monkeypatch.setitem(datasets.SOURCES, "mnist", lambda d, s, **kw: original(d, s, **kw).subset(
        torch.arange(200 if s == "train" else 100)))
    run = tmp_path / "run"
    assert main(["train", "lenet5", "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    by_torch = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run), "--json", "--engine", "numpy"]) == 0
    by_numpy = json.loads(capsys.readouterr().out)
    for k in range(1, 6):
        assert by_numpy[f"top{k}_acc"] == by_torch[f"top{k}_acc"]
    assert by_numpy["loss"] == pytest.approx(by_torch["loss"], rel=1e-5)


def test_train_and_eval_on_a_folder_with_named_splits(tmp_path, capsys):
    """An ImageNet-layout folder whose test split is called `test` (as the CIFAR-10 JPEG copy)."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 12), ("test", 4)):
        for c, name in enumerate(("cat", "dog")):
            folder = tmp_path / "imgs" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                img = torch.randint(0, 100, (3, 32, 32), generator=g, dtype=torch.uint8) + 100 * c
                write_png(img, str(folder / f"{i}.png"))
    run = tmp_path / "run"
    argv = ["train", "lenet", "--data", "folder", "--data-dir", str(tmp_path / "imgs"),
            "--epochs", "2", "--batch-size", "8", "--out", str(run)]
    assert main(argv + ["--val-split", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(argv + ["--val-split", "test"]) == 0
    capsys.readouterr()
    assert json.loads((run / "classes.json").read_text()) == ["cat", "dog"]
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 8 and set(result["per_class_acc"]) == {"cat", "dog"}
    # Every evaluation path finds the run's `test` split folder: the NumPy engine and eval extras.
    assert main(["eval", str(run), "--json", "--engine", "numpy"]) == 0
    assert json.loads(capsys.readouterr().out)["top1_acc"] == result["top1_acc"]
    assert main(["eval", str(run), "--json", "--ece"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 8
    # ... and the HTML report, with the same accuracy.
    assert main(["report", str(run), "--images", "2"]) == 0
    page = (run.parent / f"{run.name}-report.html").read_text()  # beside the run, not in it
    assert "test set: 8 images" in page and f"<b>{100 * result['top1_acc']:.2f}%</b>" in page


def test_eval_takes_a_shipped_tag_like_predict(capsys):
    from convzoo.weights import PRETRAINED_DIR

    assert main(["eval", "lenet5:mnist", "--json"]) == 0
    by_tag = json.loads(capsys.readouterr().out)
    assert main(["eval", str(PRETRAINED_DIR / "lenet5-mnist.safetensors"), "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    assert by_tag["top1_acc"] == by_path["top1_acc"] > 0.97 and by_tag["n"] == by_path["n"]
    assert main(["eval", "lenet5:cifar10"]) == 2
    assert "shipped tags: mnist" in capsys.readouterr().err
