"""``--eval-train N``: the training images scored in eval mode at each epoch's end."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo import TrainConfig, fit
from convzoo.data import ImageDataset, load_dataset
from convzoo.data.splits import balanced_subset
from convzoo.engine.loaded import load_trained
from convzoo.engine.scoring import evaluate_model
from convzoo.engine.trainer import train_eval_set
from engine.enginehelp import shrink_mnist


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_eval_train_scores_the_final_weights_in_eval_mode(tmp_path, monkeypatch):
    shrink_mnist(monkeypatch, 256, 64)
    # A net with dropout: in train mode its units are dropped, in eval mode not.
    cfg = TrainConfig(model="cnn_dropout_cifar", data="mnist", epochs=2, batch_size=64, lr=0.05,
                      lr_scheduler="constant", eval_train=100, tensorboard=False, seed=0,
                      model_args={"dropout": 0.5, "width": 4, "fc": 32},
                      out=str(tmp_path / "run"))
    result = fit(cfg)
    rows = _rows(result.run_dir)
    assert len(rows) == 2 and all(0.0 <= r["train_eval_acc"] <= 1.0 for r in rows)
    assert all(r["train_eval_loss"] > 0 for r in rows)
    # The last epoch's figure is evaluate_model's on the final weights and the same 100 images.
    loaded = load_trained(result.run_dir)
    train = load_dataset("mnist", None, "train")  # the shrunk 256
    picked = train.subset(balanced_subset(train.labels, 100, 0))
    again = evaluate_model(loaded.model, picked, loaded.preset, device="cpu",
                           in_chans=loaded.in_chans)
    assert again.topk_acc[1] == pytest.approx(rows[-1]["train_eval_acc"], abs=1e-12)
    assert again.loss == pytest.approx(rows[-1]["train_eval_loss"], rel=1e-6)
    # The metrics files carry the columns; without the option they stay empty.
    assert "train_eval_acc" in (result.run_dir / "metrics.csv").read_text().splitlines()[0]
    off = fit(TrainConfig(**{**cfg.__dict__, "eval_train": 0, "out": str(tmp_path / "off")}))
    assert all(r["train_eval_acc"] is None for r in _rows(off.run_dir))


def test_train_eval_set_is_balanced_and_fixed():
    labels = torch.arange(10).repeat(30)  # 300 images, 30 per class
    ds = ImageDataset(torch.zeros(300, 1, 8, 8, dtype=torch.uint8), labels,
                      [str(i) for i in range(10)], "t", "t")
    picked = train_eval_set(ds, 50)
    assert len(picked) == 50 and torch.bincount(picked.labels).tolist() == [5] * 10
    assert torch.equal(picked.labels, train_eval_set(ds, 50).labels)
    assert train_eval_set(ds, 1000) is ds and train_eval_set(ds, 0) is None
