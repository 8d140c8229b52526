"""predict, eval extras, visualize, bench, compare on a tiny trained run."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo import ConvzooError
from convzoo.analysis.evaluation import (
    confusion_matrix,
    expected_calibration_error,
    googlenet_crops,
    ten_crops,
)
from convzoo.analysis.loading import display_classes
from convzoo.analysis.predict import predict
from convzoo.cli import main
from convzoo.data import imagenet_classes
from convzoo.engine.loaded import load_trained

LINE = re.compile(r"^[\w.-]+: (\S+ \(\d\.\d\d\)(, )?){5}$")


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(d / "digit.png")
    Image.fromarray(rng.integers(0, 255, (60, 40, 3), dtype=np.uint8)).save(d / "photo.jpg")
    (d / "notes.txt").write_text("not an image")
    return d


def test_predict_course_format_and_skips(tiny_run, images, caplog):
    with caplog.at_level(logging.WARNING):
        r = predict(str(tiny_run), [images])
    assert [p.path.endswith(n) for p, n in zip(r.predictions, ["digit.png", "photo.jpg"],
                                                strict=True)]
    assert r.skipped == [str(images / "notes.txt")]
    for p in r.predictions:
        assert LINE.match(p.format()), p.format()
        probs = [v for _, v in p.top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert {c for c, _ in p.top} <= set("0123456789")


def test_predict_matches_the_model_on_the_eval_preset(tiny_run, images):
    loaded = load_trained(tiny_run)
    img = np.asarray(Image.open(images / "digit.png"), dtype=np.float64) / 255
    x = (torch.from_numpy(img) - 0.1307) / 0.3081  # MNIST eval preset: normalise only
    with torch.no_grad():
        probs = loaded.model.double()(x.view(1, 1, 28, 28)).softmax(1)[0]
    loaded.model.float()
    top = predict(str(tiny_run), [images / "digit.png"]).predictions[0].top
    assert top[0][0] == str(int(probs.argmax()))
    assert top[0][1] == pytest.approx(float(probs.max()), abs=1e-5)


def test_cli_predict_json(tiny_run, images, capsys):
    assert main(["predict", str(tiny_run), str(images), "--json"]) == 0
    out = capsys.readouterr()
    assert len(json.loads(out.out)["predictions"]) == 2 and "notes.txt" in out.err


def test_imagenet_names_are_torchvisions_and_unique():
    names = imagenet_classes()[1]
    assert len(names) == 1000 and names[281] == "tabby" and names[285] == "Egyptian cat"
    assert names[134] == "crane bird" and names[517] == "crane" and len(set(names)) == 1000
    assert display_classes(None, 1000) == names
    assert display_classes(["a", "b"], 2) == ["a", "b"]


def test_wrong_model_or_class_count_names_both(tiny_run, tmp_path):
    with pytest.raises(ConvzooError, match="'lenet5', not 'lenet'"):
        load_trained(tiny_run, model="lenet")
    from convzoo.weights import read_weights

    torch.save(read_weights(tiny_run / "model.safetensors").state_dict, tmp_path / "w.pth")
    with pytest.raises(ConvzooError, match="have 10 classes but model 'lenet5' is built for 7"):
        load_trained(tmp_path / "w.pth", model="lenet5", model_args={"num_classes": 7})


def test_confusion_and_ece_against_hand_computation():
    targets = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(preds, targets, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], dtype=torch.float64)
    t = torch.tensor([0, 1, 1, 1])
    # bins of width 0.5 (n_bins=2): {0.9, 0.6, 0.7, 0.8} all in (0.5, 1]: acc 3/4, conf 0.75
    assert expected_calibration_error(probs, t, n_bins=2) == pytest.approx(0.0)
    # 10 bins: 0.9 (right), 0.6 (wrong), 0.7 (right), 0.8 (right): |1-.9|+|0-.6|+|1-.7|+|1-.8|
    assert expected_calibration_error(probs, t, n_bins=10) == pytest.approx(
        (0.1 + 0.6 + 0.3 + 0.2) / 4)


def test_multi_crop_patches():
    x = torch.randn(2, 3, 32, 32)
    crops = ten_crops(x, 4)
    assert len(crops) == 10 and all(c.shape == x.shape for c in crops)
    assert torch.equal(crops[0], x) and torch.equal(crops[5], x.flip(-1))
    assert len(googlenet_crops(x)) == 144


def test_cli_eval_extras(tiny_run, tmp_path, capsys):
    prefix = tmp_path / "cm"
    assert main(["eval", str(tiny_run), "--ece", "--ten-crop", "--confusion", str(prefix),
                 "--device", "cpu", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert 0 <= d["ece"] <= 1 and d["multi_crop"]["crops"] == 5  # digits: no mirror images
    assert d["multi_crop"]["top1_gain"] == pytest.approx(d["multi_crop"]["top1_acc"]
                                                         - d["top1_acc"])
    rows = (tmp_path / "cm.csv").read_text().splitlines()
    assert len(rows) == 11 and sum(int(v) for r in rows[1:] for v in r.split(",")[1:]) == d["n"]
    assert (tmp_path / "cm.png").stat().st_size > 1000
    assert main(["eval", str(tiny_run), "--ten-crop", "--device", "cpu"]) == 0
    assert "gain over the center crop" in capsys.readouterr().out


def test_visualize_functions_and_cli(tiny_run, images, tmp_path):
    from convzoo.analysis.visualize import feature_maps, filter_grid, gradcam

    model = load_trained(tiny_run).model
    grid = filter_grid(model, tmp_path / "f.png")
    assert grid.shape == (13, 19, 3) and 0 <= grid.min() and grid.max() <= 1
    x = torch.randn(1, 28, 28)
    assert feature_maps(model, "features.3", x, tmp_path / "m.png").shape == (16, 10, 10)
    cam, cls = gradcam(model, x, target=3, path=tmp_path / "g.png")
    assert cls == 3 and cam.shape == (28, 28) and 0 <= float(cam.min()) <= float(cam.max()) <= 1
    # Normalised at the layer's resolution (its peak is 1); placed at the receptive fields'
    # centres, the pixels between two centres interpolate, so the image's peak may be lower.
    small, _ = gradcam(model, x, target=3, upsample=False)
    assert float(small.max()) in (0.0, pytest.approx(1.0))
    for kind in ("filters", "features", "gradcam"):
        out = tmp_path / f"{kind}.png"
        assert main(["visualize", str(tiny_run), kind, "--image", str(images / "digit.png"),
                     "--out", str(out)]) == 0
        assert out.stat().st_size > 1000
    assert main(["visualize", str(tiny_run), "features", "--image", str(images / "digit.png"),
                 "--layer", "nope", "--out", str(tmp_path / "x.png")]) == 2


def test_bench_and_compare(tiny_run, tmp_path, capsys):
    assert main(["bench", "lenet5", "--batch-size", "8", "--repeats", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)[0]
    assert r["params"] == 61_706 and r["gmacs"] == pytest.approx(416_520 / 1e9)
    assert r["infer_images_per_s"] > 0 and r["train_images_per_s"] > 0 and r["latency_ms"] > 0
    assert main(["compare", str(tiny_run), str(tiny_run), "--out", str(tmp_path / "c"),
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert len(rows) == 2 and rows[0]["model"] == "lenet5" and rows[0]["params"] == 61_706
    assert (tmp_path / "c" / "accuracy.png").stat().st_size > 1000
