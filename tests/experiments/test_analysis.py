"""The experiments' analysis helpers on constructed curves, and the per-step recorder."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from convzoo.data.splits import balanced_subset
from convzoo.experiments import format_mean_spread, mean_spread, moving_average, steps_to_threshold
from convzoo.experiments._training import StepRecorder
from convzoo.experiments.data import subset_source


def test_steps_to_threshold_interpolates_a_falling_line():
    xs = list(range(0, 101, 10))
    ys = [1.0 - 0.01 * x for x in xs]  # error falls from 1.0 to 0.0
    assert steps_to_threshold(xs, ys, 0.25) == pytest.approx(75.0)
    assert steps_to_threshold(xs, ys, 0.95) == pytest.approx(5.0)  # between the first two points


def test_steps_to_threshold_first_point_and_never():
    assert steps_to_threshold([5, 6], [0.1, 0.2], 0.25) == 5.0
    assert steps_to_threshold([1, 2, 3], [0.9, 0.8, 0.7], 0.25) is None
    assert steps_to_threshold([], [], 0.5) is None


def test_steps_to_threshold_rising_accuracy():
    xs, ys = [0, 100, 200], [0.5, 0.9, 0.99]
    assert steps_to_threshold(xs, ys, 0.95, below=False) == pytest.approx(100 + 100 * 5 / 9)


def test_steps_to_threshold_window_ignores_a_lucky_batch():
    # One mini-batch dips under the threshold; its trailing mean over 4 does not.
    ys = [0.5, 0.5, 0.1, 0.5, 0.5, 0.2, 0.2, 0.2, 0.2]
    xs = list(range(1, len(ys) + 1))
    assert steps_to_threshold(xs, ys, 0.25) == pytest.approx(2.625)  # raw: the lucky batch
    smoothed = steps_to_threshold(xs, ys, 0.25, window=4)
    assert smoothed is not None and smoothed > 7


def test_steps_to_threshold_length_mismatch():
    with pytest.raises(ValueError):
        steps_to_threshold([1, 2], [0.1], 0.5)


def test_moving_average_is_trailing():
    assert moving_average([1, 2, 3, 4, 5], 2) == [1, 1.5, 2.5, 3.5, 4.5]
    assert moving_average([3.0], 10) == [3.0]


def test_mean_spread_matches_statistics():
    vals = [1.0, 2.0, 4.0, 7.0]
    mean, spread, n = mean_spread(vals)
    assert (mean, n) == (statistics.mean(vals), 4)
    assert spread == pytest.approx(statistics.stdev(vals))


def test_mean_spread_drops_missing_and_handles_one_and_none():
    assert mean_spread([2.0, None, float("nan")]) == (2.0, 0.0, 1)
    assert mean_spread([None, None]) == (None, None, 0)


def test_format_mean_spread_reports_censored_runs():
    assert format_mean_spread([0.1, 0.2], ".1f", scale=100) == "15.0 ± 7.1"
    assert format_mean_spread([10.0, None, 30.0], ".0f", censored="budget") == \
        "20 ± 14 (2/3 runs; 1 > budget)"
    assert format_mean_spread([None], censored="budget").startswith("> budget")
    assert format_mean_spread([]) == "–"


def test_step_recorder_keeps_each_steps_number_loss_and_batch_error(tmp_path):
    """Through the real trainer: the recorder's per-step error is each mini-batch's own, and the
    running accuracies the engine reports add up to the epoch's train_acc in metrics.jsonl."""
    from convzoo import TrainConfig, fit
    from convzoo.engine.progress import StepInfo

    source = subset_source("mnist", None, n_train=100, n_test=50)
    infos: list[StepInfo] = []

    class Both(StepRecorder):
        def step(self, info):
            infos.append(info)
            super().step(info)

    rec = Both()
    r = fit(TrainConfig(model="lenet5", data=source.name, epochs=2, batch_size=32, device="cpu",
                        tensorboard=False, out=str(tmp_path / "run")), rec, source=source)
    assert rec.steps == [1, 2, 3, 4, 5, 6, 7, 8]  # 4 steps (32, 32, 32, 4 images) per epoch
    assert [i.images for i in infos] == [32, 32, 32, 4] * 2
    assert [i.epoch for i in infos] == [1] * 4 + [2] * 4
    assert rec.err == [1 - i.correct / i.images for i in infos]
    rows = [json.loads(x) for x in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    for e, row in enumerate(rows):
        last = infos[4 * e + 3]
        assert math.isclose(last.acc, row["train_acc"], abs_tol=1e-12)
        assert math.isclose(sum(i.correct for i in infos[4 * e: 4 * e + 4]) / 100,
                            row["train_acc"], abs_tol=1e-12)
        # the loss of each step weighted by its images gives the epoch's train_loss
        mean = sum(i.loss * i.images for i in infos[4 * e: 4 * e + 4]) / 100
        assert math.isclose(mean, row["train_loss"], rel_tol=1e-5)


def test_balanced_subset_takes_every_class_equally():
    labels = torch.arange(10).repeat_interleave(50)
    idx = balanced_subset(labels, 95, seed=0)
    counts = torch.bincount(labels[idx], minlength=10)
    assert len(idx) == 95 and counts.max() - counts.min() <= 1
    assert torch.equal(idx, balanced_subset(labels, 95, seed=0))  # the same draw every time


def test_subset_source_is_the_experiments_own_and_registers_nothing():
    from convzoo.data import PRESETS, SOURCES, load_dataset, load_splits

    before = (dict(SOURCES), dict(PRESETS))
    source = subset_source("mnist", None, n_train=30, n_test=20, augment=False)
    assert source.name == "xp-mnist-n30-t20-noaug" and source.name not in SOURCES
    s = load_splits(source)
    assert (dict(SOURCES), dict(PRESETS)) == before
    assert len(s.train) == 30 and len(s.test) == 20 and s.train.name == source.name
    assert torch.bincount(s.train.labels, minlength=10).tolist() == [3] * 10
    full = load_dataset("mnist", None, "train")
    assert torch.equal(s.train.images, full.images[balanced_subset(full.labels, 30, 0)])
    p = s.preset(in_chans=1, input_size=28)
    assert (p.crop_padding, p.hflip, p.mean) == (0, False, PRESETS["mnist"].mean)
    augmented = load_splits(subset_source("mnist", None, n_train=30)).preset(in_chans=1,
                                                                             input_size=28)
    assert augmented.crop_padding == PRESETS["mnist"].crop_padding > 0



def test_train_tuned_keeps_the_lowest_final_training_loss_and_never_a_diverged_run():
    from pathlib import Path

    from convzoo.experiments._common import train_tuned
    from convzoo.experiments._training import TrainRecord

    calls = []
    losses = {"a": [1.0, 0.5], "b": [1.0, 0.2], "c": [1.0, 0.01]}  # c: lowest, but diverged

    class Ctx:
        seeds = [0, 1]

        def train(self, cfg, *, arm, seed):
            calls.append((arm, seed))
            return TrainRecord(arm, seed, Path("."), [], [1, 2], losses[cfg], [0.5, 0.5], {}, 0.0,
                               diverged="loss is nan" if cfg == "c" else None)

    lr, recs, trials = train_tuned(Ctx(), "arm x", {0.1: "a", 0.2: "b", 0.4: "c"}, window=1)
    assert lr == 0.2 and [r.seed for r in recs] == [0, 1] and set(trials) == {0.1, 0.2, 0.4}
    assert calls == [("arm-x-lr-0-1", 0), ("arm-x-lr-0-2", 0), ("arm-x-lr-0-4", 0),
                     ("arm-x-lr-0-2", 1)]  # the first seed's tuning run is reused
    calls.clear()
    lr, recs, _ = train_tuned(Ctx(), "arm x", {0.1: "a", 0.2: "b"}, window=2,
                              final={0.1: "a", 0.2: "b"})
    # window 2: a ends at 0.75, b at 0.6; every seed then trains the chosen final config
    assert lr == 0.2 and calls[2:] == [("arm-x-lr-0-2-final", 0), ("arm-x-lr-0-2-final", 1)]


def test_a_window_at_exactly_the_threshold_has_reached_it():
    # Mini-batch errors of 128 images (k/128); a running total would drift off 0.25 by rounding
    # here, and a run the engine stopped at its --target-train-err would look as if it had not
    # got there. Each window's mean is summed afresh, as the engine sums its own.
    import random

    rng = random.Random(0)
    errs = [1.0 - rng.randint(60, 127) / 128 for _ in range(3000)]
    last = [1.0 - h / 128 for h in (96,) * 40]  # a window whose mean is 0.25
    errs += last
    assert moving_average(errs, 40)[-1] == sum(errs[-40:]) / 40 == 0.25
    assert steps_to_threshold(list(range(len(errs))), errs, 0.25, window=40) is not None
