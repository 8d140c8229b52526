"""Engine features on a small MNIST subset: accumulation, AMP, channels_last, fine-tuning, EMA,
test-only, TensorBoard, the recipe flags."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo import TrainConfig, fit, read_weights
from convzoo.cli import main
from convzoo.errors import ConvzooError
from engine.enginehelp import shrink_mnist


@pytest.fixture(autouse=True)
def small_mnist(monkeypatch):
    shrink_mnist(monkeypatch, 256, 64)


def run(tmp_path, name, **kw):
    # On the CPU also where a GPU is present: these compare runs bit for bit (tests/test_cuda.py
    # covers CUDA).
    kw = {"model": "lenet5", "epochs": 1, "tensorboard": False, "out": str(tmp_path / name),
          "device": "cpu", **kw}
    return fit(TrainConfig(**kw))


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    a = run(tmp_path, "a", batch_size=32, lr_scheduler="constant").model
    b = run(tmp_path, "b", batch_size=16, accum_steps=2, lr_scheduler="constant").model
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=False):
        assert torch.allclose(va, vb, atol=1e-5), k


def test_bf16_autocast_channels_last_smoothing_clipping(tmp_path):
    r = run(
        tmp_path,
        "amp",
        amp="bf16",
        channels_last=True,
        label_smoothing=0.1,
        clip_grad_norm=1.0,
        optimizer="adamw",
        lr=2e-3,
        wd=0.01,
        lr_warmup_epochs=0.5,
    )
    assert 0.0 <= r.final["top1_acc"] <= 1.0 and r.final["loss"] == r.final["loss"]  # not NaN
    assert json.loads((r.run_dir / "config.json").read_text())["amp"] == "bf16"


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConvzooError, match="fp16 needs a CUDA"):
        run(tmp_path, "fp16", amp="fp16", device="cpu")


def test_finetune_frozen_backbone_new_head_and_test_only(tmp_path):
    base = run(tmp_path, "base")
    src = str(base.run_dir / "model.safetensors")
    ft = run(
        tmp_path,
        "ft",
        weights=src,
        reset_head=True,
        freeze_backbone=True,
        model_args={"activation": "relu"},
    )
    loaded, tuned = read_weights(src).state_dict, ft.model.state_dict()
    assert torch.equal(loaded["features.0.weight"], tuned["features.0.weight"])  # frozen
    assert not torch.equal(loaded["classifier.5.weight"], tuned["classifier.5.weight"])
    t = run(tmp_path, "test", weights=src, test_only=True)
    assert t.final["test_only"] and t.final["top1_acc"] == pytest.approx(base.final["top1_acc"])
    assert not (t.run_dir / "model.safetensors").exists()


def test_tensorboard_events_and_jsonl(tmp_path):
    r = run(tmp_path, "tb", tensorboard=True)
    assert list((r.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    row = json.loads((r.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert row["epoch"] == 1 and 0 <= row["test_top1_acc"] <= 1


def test_recipe_with_flag_overrides_and_config_rerun(tmp_path, capsys):
    out = tmp_path / "rec"
    assert (
        main(
            [
                "train",
                "lenet5",
                "--recipe",
                "lenet5-mnist",
                "--epochs",
                "1",
                "--lr",
                "0.02",
                "--no-tensorboard",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["recipe"] == "lenet5-mnist" and cfg["lr"] == 0.02 and cfg["epochs"] == 1
    assert cfg["nesterov"] is True and cfg["lr_scheduler"] == "onecycle"  # from the recipe
    assert cfg["batch_size"] == 128 and cfg["global_batch_size"] == 128
    assert (
        main(
            ["train", "--config", str(out), "--batch-size", "64", "--out", str(tmp_path / "again")]
        )
        == 0
    )
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["lr"] == 0.02 and again["batch_size"] == 64 and again["recipe"] == "lenet5-mnist"


def test_recipes_command_lists_every_recipe_with_source(capsys):
    from convzoo.engine.recipes import RECIPES

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for r in RECIPES.values():
        assert r.name in out and r.source[:20] in out
    assert main(["recipes", "resnet-cifar"]) == 0
    assert "64000" in capsys.readouterr().out
    assert main(["train", "lenet5", "--recipe", "nope"]) == 2


@pytest.mark.slow
def test_compile(tmp_path):
    r = run(tmp_path, "compiled", compile=True)
    assert 0.0 <= r.final["top1_acc"] <= 1.0
