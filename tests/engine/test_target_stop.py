"""``--target-train-err``: a run ends where the trailing mean of its mini-batch training error
reaches the target (the relu-vs-tanh experiment's "steps to 25%" without training past them)."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo import TrainConfig, fit
from convzoo.engine.progress import Reporter
from engine.enginehelp import shrink_mnist


class Steps(Reporter):
    def __init__(self) -> None:
        self.err: list[float] = []
        self.said: list[str] = []

    def step(self, info) -> None:
        self.err.append(1.0 - info.correct / info.images)

    def start(self, message: str) -> None:
        self.said.append(message)


def _cfg(tmp_path, **kw) -> TrainConfig:
    kw = {"out": str(tmp_path / "run"), "epochs": 6, **kw}
    return TrainConfig(model="lenet5", data="mnist", batch_size=32, lr=0.05,
                       lr_scheduler="constant", tensorboard=False, seed=0, **kw)


def test_the_run_stops_at_the_first_step_whose_window_reaches_the_target(tmp_path, monkeypatch):
    shrink_mnist(monkeypatch, 640, 64)  # 20 steps an epoch
    full = Steps()
    fit(_cfg(tmp_path, out=str(tmp_path / "full")), full)
    window, target = 10, 0.5
    means = [sum(full.err[i - window:i]) / window for i in range(window, len(full.err) + 1)]
    first = next(i for i, m in enumerate(means) if m <= target) + window  # steps taken then
    assert first < len(full.err)  # the target is reached before the run's end
    rep = Steps()
    result = fit(_cfg(tmp_path, target_train_err=target, target_window=window), rep)
    assert len(rep.err) == first  # stopped at exactly that step: same seed, same steps
    assert rep.err == pytest.approx(full.err[:first], abs=0)
    assert any("--target-train-err 0.5" in s for s in rep.said)
    rows = [json.loads(r) for r in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["epoch"] == (first - 1) // 20 + 1  # the partial epoch evaluated as the last
    assert json.loads((result.run_dir / "final.json").read_text())["top1_err"] is not None
    # Resuming the stopped run trains nothing more.
    ckpts = sorted((result.run_dir / "checkpoints").glob("*.pt"))
    blob = torch.load(ckpts[-1], weights_only=False)
    assert blob["target_reached"] is True and blob["step"] == first
    again = Steps()
    fit(_cfg(tmp_path, target_train_err=target, target_window=window, resume=str(ckpts[-1]),
             out=None), again)
    assert again.err == []


def test_a_target_never_reached_changes_nothing(tmp_path, monkeypatch):
    shrink_mnist(monkeypatch, 320, 64)
    a, b = Steps(), Steps()
    fit(_cfg(tmp_path, epochs=2, out=str(tmp_path / "a")), a)
    fit(_cfg(tmp_path, epochs=2, target_train_err=1e-9, target_window=5), b)
    assert a.err == b.err and len(a.err) == 20


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1])
def test_bad_targets_are_refused(bad):
    from convzoo.errors import ConvzooError

    with pytest.raises(ConvzooError, match="--target-train-err must be in"):
        TrainConfig(model="lenet5", target_train_err=bad).validate()
