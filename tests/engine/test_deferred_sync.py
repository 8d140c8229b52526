"""The GPU path of the training loop, run on the CPU: the host reads the loss only every few
steps (``SYNC_EVERY_CUDA``). It must change nothing but when the reporter hears of each step."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo import TrainConfig, fit, read_weights
from convzoo.engine import trainer
from convzoo.engine.checkpoint import list_checkpoints, load_checkpoint
from convzoo.errors import TrainingDiverged
from engine.enginehelp import shrink_mnist


@pytest.fixture(autouse=True)
def small_mnist(monkeypatch):
    shrink_mnist(monkeypatch, 300, 60)


class Keep:
    def __init__(self):
        self.infos = []

    def start(self, message):
        pass

    def start_epoch(self, epoch, epochs, steps):
        pass

    def step(self, info):
        self.infos.append(info)

    def end_epoch(self, row):
        pass

    def finish(self, message):
        pass


def train(tmp_path, name, every, monkeypatch, **kw):
    monkeypatch.setattr(trainer, "SYNC_EVERY_CPU", every)
    keep = Keep()
    cfg = TrainConfig(**{"model": "lenet5", "epochs": 2, "batch_size": 32, "device": "cpu",
                         "tensorboard": False, "out": str(tmp_path / name), **kw})
    return fit(cfg, keep), keep


def test_reading_every_4th_step_changes_nothing_but_the_timing(tmp_path, monkeypatch):
    a, ka = train(tmp_path, "a", 1, monkeypatch, accum_steps=2, checkpoint_every_steps=3)
    b, kb = train(tmp_path, "b", 4, monkeypatch, accum_steps=2, checkpoint_every_steps=3)
    wa = read_weights(a.run_dir / "model.safetensors").state_dict
    wb = read_weights(b.run_dir / "model.safetensors").state_dict
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    def rows(run):
        lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items()
                 if "time" not in k and k not in ("images_per_s", "elapsed_s")} for x in lines]

    assert rows(a) == rows(b)
    fields = ("step", "epoch", "batch", "loss", "correct", "images", "lr", "acc")
    assert [[getattr(i, f) for f in fields] for i in ka.infos] == [
        [getattr(i, f) for f in fields] for i in kb.infos]
    assert [i.step for i in kb.infos] == list(range(1, 2 * 5 + 1))  # 10 micro-batches / 2 x 2
    # the same checkpoints, at every 3rd step and each epoch's end
    names = [p.name for p in list_checkpoints(a.run_dir / "checkpoints")]
    assert names == [p.name for p in list_checkpoints(b.run_dir / "checkpoints")]


def test_resume_mid_epoch_with_deferred_reads_is_exact(tmp_path, monkeypatch):
    a, _ = train(tmp_path, "a", 4, monkeypatch, checkpoint_every_steps=3, keep_checkpoints=20)
    mid = next(p for p in list_checkpoints(a.run_dir / "checkpoints")
               if load_checkpoint(p)["batch"] == 6)
    b, kb = train(tmp_path, "b", 4, monkeypatch, checkpoint_every_steps=3, keep_checkpoints=20,
                  resume=str(mid))
    wa = read_weights(a.run_dir / "model.safetensors").state_dict
    wb = read_weights(b.run_dir / "model.safetensors").state_dict
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [i.step for i in kb.infos] == list(range(7, 21))


def test_divergence_found_at_the_next_read_and_no_nan_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(TrainingDiverged, match=r"diverged: the loss is not finite in a step of "
                                           r"\d+-\d+ at epoch 1 \(lr 1e\+06\)") as e:
        train(tmp_path, "nan", 4, monkeypatch, lr=1e6, lr_scheduler="constant",
              checkpoint_every_steps=2)
    files = list_checkpoints(tmp_path / "nan" / "checkpoints")
    for path in files:  # whatever was saved holds finite weights only
        state = load_checkpoint(path)["model"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    if files:
        assert "last good checkpoint is" in str(e.value)
