"""A tiny real training run: the loss falls and every run-directory file exists and parses."""

import csv
import json

import pytest
import torch

import convzoo
from convzoo import TrainConfig
from convzoo.data import datasets
from convzoo.errors import ConvzooError


@pytest.fixture
def small_mnist(monkeypatch):
    """The embedded subset cut to 600 train / 200 test images (a few seconds of training)."""
    original = datasets.SOURCES["mnist"]

    def small(data_dir, split, **kwargs):
        ds = original(data_dir, split, **kwargs)
        n = 600 if split == "train" else 200
        return ds.subset(torch.arange(n))

    monkeypatch.setitem(datasets.SOURCES, "mnist", small)


def test_fit_writes_a_complete_run_directory(tmp_path, small_mnist):
    cfg = TrainConfig(model="lenet5", epochs=2, batch_size=32, lr=0.05, out=str(tmp_path / "run"))
    result = convzoo.fit(cfg)
    run = result.run_dir
    for name in ("config.json", "metrics.csv", "final.json", "model.safetensors", "curves.png",
                 "classes.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["model"] == "lenet5"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # The loss fell: the second epoch's mean training loss is below the first's, and well below
    # the chance level ln(10) = 2.30.
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"]) < 2.30
    final = json.loads((run / "final.json").read_text())
    for key in ("top1_acc", "top5_acc", "top1_err", "top5_err"):
        assert 0.0 <= final[key] <= 1.0
    assert final["top1_acc"] + final["top1_err"] == pytest.approx(1.0)
    assert final["top5_acc"] >= final["top1_acc"] > 0.25  # chance is 0.10
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wf = convzoo.read_weights(run / "model.safetensors")
    assert wf.model == "lenet5" and wf.classes == [str(i) for i in range(10)]
    assert wf.model_args == {"num_classes": 10, "in_chans": 1}
    # No temporary files left behind by the atomic writes.
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]

    # evaluate() on the run directory reproduces final.json.
    ev = convzoo.evaluate(run)
    assert ev["top1_acc"] == pytest.approx(final["top1_acc"])
    ev_w = convzoo.evaluate(run / "model.safetensors")
    assert ev_w["top5_acc"] == pytest.approx(final["top5_acc"])


def test_slide_lenet_on_mnist_gets_resized_input(tmp_path, small_mnist):
    result = convzoo.fit(TrainConfig(model="lenet", epochs=1, out=str(tmp_path / "r")))
    # lenet (LeCun 1998) takes 32 px: the 28 px digits are resized up to it (no longer padded).
    assert json.loads((result.run_dir / "preset.json").read_text())["resize_to"] == 32
    assert json.loads((result.run_dir / "config.json").read_text())["input_size"] == 32
    wf = convzoo.read_weights(result.run_dir / "model.safetensors")
    assert wf.model_args["in_chans"] == 1  # built with the data's channel count
    assert 0 <= result.final["top1_acc"] <= 1


def test_same_seed_same_weights(tmp_path, small_mnist):
    a = convzoo.fit(TrainConfig(model="lenet5", epochs=1, out=str(tmp_path / "a"))).model
    b = convzoo.fit(TrainConfig(model="lenet5", epochs=1, out=str(tmp_path / "b"))).model
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("field,value,match", [
    ("epochs", 0, "--epochs"), ("batch_size", 0, "--batch-size"), ("lr", 0.0, "--lr"),
    ("lr", -1.0, "--lr"), ("momentum", 1.5, "--momentum"),
])
def test_impossible_arguments(field, value, match):
    with pytest.raises(ConvzooError, match=match):
        convzoo.fit(TrainConfig(model="lenet5", **{field: value}))
