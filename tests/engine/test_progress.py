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


def test_evaluation_progress_counts_every_image_once():
    # evaluate_model reports (images scored, images to score) after each batch; the trainer's
    # bar (TqdmReporter.evaluating) fills to the split's size and closes.
    import torch

    from convzoo.data import ImageDataset, preset_for
    from convzoo.engine.scoring import evaluate_model

    ds = ImageDataset(torch.randint(0, 256, (23, 1, 8, 8), dtype=torch.uint8),
                      torch.arange(23) % 3, ["a", "b", "c"], "t", "t")
    seen = []
    evaluate_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), ds,
                   preset_for("mnist", in_chans=1, image_size=8), batch_size=10,
                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 23), (20, 23), (23, 23)]
    out = io.StringIO()
    bar = TqdmReporter(out).evaluating("test")
    for done, total in seen:
        bar(done, total)
    text = out.getvalue()
    assert "scoring test" in text and "/23 " in text  # the split's size as the bar's total
    assert text.endswith("\r") and text.rstrip("\r").split("\r")[-1].strip() == ""  # closed
