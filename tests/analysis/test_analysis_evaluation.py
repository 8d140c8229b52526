"""convzoo.evaluate with its extras: ten and 144 crops, ECE and the confusion matrix give what the
removed evaluate_extra gave (its figures for the shipped lenet5:mnist on the embedded 2,000-image
test subset, measured at b99d034 with `convzoo eval lenet5:mnist --ece --ten-crop --confusion P
--json` and `--crops-144`), and each is the one loop's result with a function applied."""

from __future__ import annotations

import csv

import pytest

import convzoo
from convzoo import ConvzooError
from convzoo.analysis.evaluation import (
    MultiCrop,
    confusion_matrix,
    expected_calibration_error,
    multi_crop,
    prepare_eval,
)
from convzoo.engine.scoring import Evaluation, evaluate_model

SOURCE = "lenet5:mnist"


@pytest.fixture(scope="module")
def extras(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("eval") / "cm"
    out = convzoo.evaluate(SOURCE, crops=10, ece=True, confusion=prefix, device="cpu", workers=0)
    return out, prefix


def test_the_figures_of_evaluate_extra(extras):
    out, prefix = extras
    assert isinstance(out, Evaluation) and "<table" in out._repr_html_()
    assert (out["n"], out["top1_acc"], out["top2_acc"]) == (2000, 0.989, 0.999)
    assert out["ece"] == pytest.approx(0.00475327718257903, abs=1e-6)
    # digits are not trained flipped: AlexNet's five crops without their mirror images
    assert out["multi_crop"] == pytest.approx({"crops": 5, "top1_acc": 0.988, "top5_acc": 1.0,
                                               "top1_gain": -0.001, "top5_gain": 0.0})
    assert (out["confusion_csv"], out["confusion_png"]) == (f"{prefix}.csv", f"{prefix}.png")
    rows = list(csv.reader(open(f"{prefix}.csv")))
    assert rows[0] == ["true \\ predicted", *map(str, range(10))]
    assert rows[1] == ["0", "198", "0", "0", "0", "0", "0", "1", "1", "0", "0"]
    assert rows[2] == ["1", "0", "199", "0", "1", "0", "0", "0", "0", "0", "0"]


def test_each_extra_is_a_function_of_the_loops_result(extras):
    out, prefix = extras
    job = prepare_eval(SOURCE, device="cpu")
    ev = evaluate_model(job.model, job.split.dataset, job.split.preset, in_chans=1, workers=0,
                        keep_outputs=True)
    assert ev.topk_acc[1] == out["top1_acc"] and ev.loss == pytest.approx(out["loss"])
    assert expected_calibration_error(ev.probs, ev.labels) == out["ece"]
    cm = confusion_matrix(ev.probs.argmax(1), ev.labels, 10)
    rows = list(csv.reader(open(f"{prefix}.csv")))[1:]
    assert [[int(v) for v in r[1:]] for r in rows] == cm.tolist()
    fn, preset, n = multi_crop("ten", job.split.preset, mirror=False)
    multi = evaluate_model(MultiCrop(job.model, fn), job.split.dataset, preset, in_chans=1,
                           workers=0)
    assert (n, multi.topk_acc[1]) == (out["multi_crop"]["crops"], out["multi_crop"]["top1_acc"])


def test_without_extras_the_result_has_none(extras):
    plain = convzoo.evaluate(SOURCE, device="cpu", workers=0)
    out, _ = extras
    assert not {"ece", "multi_crop", "confusion_csv"} & set(plain)
    assert {k: v for k, v in out.items() if k in plain} == plain


@pytest.mark.slow
def test_googlenets_144_crops():
    out = convzoo.evaluate(SOURCE, crops=144, device="cpu", workers=0, batch_size=100)
    assert out["multi_crop"]["crops"] == 144
    assert out["multi_crop"]["top1_acc"] == pytest.approx(0.9095)
    assert out["multi_crop"]["top5_acc"] == pytest.approx(0.999)


@pytest.mark.parametrize("crops", [5, 0, True, "ten"])
def test_other_crop_counts_are_refused(crops):
    with pytest.raises(ConvzooError, match="crops must be 1, 10 or 144"):
        convzoo.evaluate(SOURCE, crops=crops)
