"""The training progress bar (convzoo train on a terminal)."""

from __future__ import annotations

import io
import time

from convzoo.engine.progress import StepInfo, TqdmReporter


def _info(step: int) -> StepInfo:
    return StepInfo(step=step, epoch=1, batch=step, loss=1.0, correct=1, images=2, lr=0.1,
                    acc=0.5, images_per_s=10.0)


def test_the_bar_shows_the_last_step_before_the_epoch_closes():
    # The end-of-epoch checkpoint and evaluation come between the last step and end_epoch: the
    # bar must already read 3/3 then (benchmarks time the trainer by what it shows).
    out = io.StringIO()
    rep = TqdmReporter(out)
    rep.start_epoch(1, 1, 3)
    for step in (1, 2, 3):
        rep.step(_info(step))
        time.sleep(0.01)  # quicker than tqdm's mininterval: it would hold the updates back
    assert "3/3" in out.getvalue()
    rep.end_epoch({"epoch": 1, "epochs": 1, "lr": 0.1, "train_loss": 1.0, "train_acc": 0.5,
                   "test_top1_acc": 0.5, "test_top5_acc": 1.0, "images_per_s": 10.0,
                   "epoch_time_s": 0.1})
