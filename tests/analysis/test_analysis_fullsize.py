"""load_trained and the eval extras on full-size images: a streamed folder of 120-220 px JPEGs
(plain class folders and the ILSVRC layout, written by tests/fullsize/fullhelp.py), scored by an
untrained resnet18 saved at input size 96 (the figures do not matter; that every path agrees
does)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torchvision.transforms import v2

import convzoo
from convzoo.analysis.evaluation import MultiCrop, multi_crop, prepare_eval, ten_crops
from convzoo.analysis.predict import predict
from convzoo.cli import main
from convzoo.data.images import decode_file
from convzoo.data.stream import stream_transform
from convzoo.engine.loaded import load_trained
from convzoo.weights import PRETRAINED_DIR
from fullsize.fullhelp import make_folder, make_ilsvrc
from shareddata import SHARED_DATA

SIDE = 96  # pixels: the input size the weights say they were trained at (> 64: ImageNet crops)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    yield
    torch.set_num_threads(before)


def _weights(path, data: str, classes: list[str] | None, num_classes: int):
    torch.manual_seed(0)
    net = convzoo.create_model("resnet18", num_classes=num_classes)
    convzoo.save_weights(path, net, model_name="resnet18",
                         model_args={"num_classes": num_classes, "in_chans": 3}, classes=classes,
                         extra={"data": data, "input_size": SIDE})
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tree = make_folder(tmp_path_factory.mktemp("folder"))
    w = _weights(tree.root / "resnet18.safetensors", "folder", sorted(tree.classes), 3)
    return tree, w


def test_eval_extras_on_a_streamed_folder(folder, tmp_path, capsys):
    tree, weights = folder
    prefix = tmp_path / "cm"
    assert main(["eval", str(weights), "--data-dir", str(tree.root), "--ece", "--ten-crop",
                 "--confusion", str(prefix), "--device", "cpu", "--batch-size", "4",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n"] == tree.n_val and d["data"] == "folder" and 0 <= d["ece"] <= 1
    assert d["multi_crop"]["crops"] == 10  # folders are trained with flips: mirror images too
    rows = (tmp_path / "cm.csv").read_text().splitlines()
    assert rows[0].split(",")[1:] == sorted(tree.classes)
    assert sum(int(v) for r in rows[1:] for v in r.split(",")[1:]) == tree.n_val
    assert (tmp_path / "cm.png").stat().st_size > 1000

    # eval's probabilities are predict's for the same files: one preprocessing for both.
    job = prepare_eval(weights, data_dir=str(tree.root), device="cpu")
    assert job.split.preset.crop_size == SIDE and job.split.preset.resize_size > SIDE
    ev = job.score(batch_size=4, keep_outputs=True)
    # eval prints what was measured to 10 significant digits (no float noise in its JSON)
    assert ev.topk_acc[1] == pytest.approx(d["top1_acc"], rel=1e-9)
    assert ev.loss == pytest.approx(d["loss"])
    classes = job.split.dataset.classes
    preds = predict(str(weights), [tree.root / "val"], topk=3).predictions
    assert [p.path for p in preds] == job.split.dataset.paths
    for p, row in zip(preds, ev.probs, strict=True):
        got = dict(p.top)
        assert [got[c] for c in classes] == pytest.approx(row.tolist(), abs=1e-5)


def test_ten_crop_of_a_streamed_image_is_torchvisions_tencrop_of_the_resized_image(folder):
    tree, weights = folder
    preset = prepare_eval(weights, data_dir=str(tree.root), device="cpu").split.preset
    crops, whole, n = multi_crop("ten", preset, mirror=True)
    assert n == 10 and whole.crop_size == preset.resize_size
    img = decode_file(tree.sample, 3)
    x = stream_transform(whole, train=False)(img)  # (3, R, R): the resized image's center square
    ours = crops(x[None].float())
    resized = v2.functional.resize(img, preset.resize_size, antialias=True)
    square = v2.functional.center_crop(resized, [preset.resize_size] * 2).float()
    # torchvision: five crops of the image, then five crops of its mirror image (whose top-left
    # crop is the mirror of the top-right one); ours: center first, each crop's mirror after.
    tl, tr, bl, br, c, mtl, mtr, mbl, mbr, mc = v2.functional.ten_crop(square, SIDE)
    assert len(ours) == 10 and all(x.shape == (1, 3, SIDE, SIDE) for x in ours)
    for mine, ref in zip(ours, [c, tl, tr, bl, br, mc, mtr, mtl, mbr, mbl], strict=True):
        assert torch.equal(mine[0], ref)


def test_multi_crop_averages_the_softmax_of_the_crops():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5)).double()
    x = torch.randn(4, 3, 10, 10, dtype=torch.float64)

    def crops(b):
        return ten_crops(b, size=8)

    got = MultiCrop(net, crops)(x).softmax(1)
    want = torch.stack([net(c).softmax(1) for c in crops(x)]).mean(0)
    assert torch.allclose(got.double(), want, atol=1e-6)


def test_eval_on_the_ilsvrc_layout(tmp_path_factory, tmp_path, capsys):
    if not (SHARED_DATA / "imagenet_class_index.json").is_file():
        pytest.skip(f"imagenet_class_index.json not found in {SHARED_DATA}")
    tree = make_ilsvrc(tmp_path_factory.mktemp("ilsvrc"))
    weights = _weights(tmp_path / "r18-imagenet.safetensors", "imagenet", None, 1000)
    assert main(["eval", str(weights), "--data-dir", str(tree.root), "--ece", "--device", "cpu",
                 "--batch-size", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n"] == tree.n_val and 0 <= d["ece"] <= 1
    scored = {c for c, acc in d["per_class_acc"].items() if acc is not None}
    assert scored == {"tench", "goldfish", "golden retriever"}  # the classes with val images


def test_export_defaults_to_the_size_the_weights_were_trained_at(folder, monkeypatch, tmp_path):
    from convzoo.analysis import export

    seen = {}
    monkeypatch.setattr(export, "export_model",
                        lambda model, out, *, input_size, **kw: seen.setdefault("size", input_size))
    export.export_source(str(folder[1]), tmp_path / "m.onnx")
    assert tuple(seen["size"]) == (3, SIDE, SIDE)


def _same(a, b) -> None:
    for key in ("name", "model_args", "classes", "run_dir", "extra", "data", "preset",
                "input_size", "config"):
        assert getattr(a, key) == getattr(b, key), key
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_trained_is_the_same_from_a_run_dir_or_its_weights_file(tiny_run):
    by_dir = load_trained(tiny_run)
    _same(by_dir, load_trained(tiny_run / "model.safetensors"))
    assert by_dir.run_dir == tiny_run and by_dir.path == tiny_run / "model.safetensors"
    assert by_dir.preset is not None and by_dir.data == "mnist"
    saved = json.loads((tiny_run / "preset.json").read_text())
    assert json.loads(json.dumps(by_dir.preset.to_dict())) == saved


def test_load_trained_is_the_same_from_a_shipped_tag_or_its_file():
    tagged = load_trained("lenet5:mnist")
    _same(tagged, load_trained(PRETRAINED_DIR / "lenet5-mnist.safetensors"))
    assert tagged.path == PRETRAINED_DIR / "lenet5-mnist.safetensors" and tagged.run_dir is None
    assert tagged.data == "mnist" and tagged.classes == [str(i) for i in range(10)]
    assert not tagged.model.training


def test_load_trained_names_what_it_could_not_find(tmp_path):
    with pytest.raises(convzoo.ConvzooError, match="nope/run does not exist"):
        load_trained(tmp_path / "nope" / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(convzoo.ConvzooError, match="has no model.safetensors"):
        load_trained(tmp_path / "empty")


def test_report_of_a_run_on_a_streamed_folder(folder, tmp_path):
    # A run directory as the trainer leaves it (weights, config.json, preset.json), made without
    # training: report scores its streamed test split and shows thumbnails of the large files.
    from convzoo.analysis.report import build_report
    from convzoo.data import preset_for
    from convzoo.hub import eval_sizes

    tree, weights = folder
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(weights.read_bytes())
    (run / "config.json").write_text(json.dumps({"model": "resnet18", "data": "folder",
                                                 "data_dir": str(tree.root),
                                                 "input_size": SIDE}))
    preset = preset_for("folder", in_chans=3, image_size=None, input_size=SIDE,
                        eval_sizes=eval_sizes("resnet18"))
    (run / "preset.json").write_text(json.dumps(preset.to_dict()))
    html = build_report(run, n_images=4, batch_size=4).read_text()
    assert f"test set: {tree.n_val} images" in html
    assert len(re.findall(r"<img alt='test image \d+' src='data:image/png;base64,", html)) == 4
