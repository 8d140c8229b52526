"""A newcomer's first hour (issue 13): what a user of torchvision and timm reaches for, and the
commands that must never be silently wrong (random weights, a file format other than the name)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import convzoo
from convzoo.cli import main
from convzoo.registry import ModelInfo


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's --version and usage errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    """A folder of two class folders of 28 px PNGs, and a text file among them."""
    rng = np.random.default_rng(0)
    root = tmp_path / "digits"
    for cls in ("three", "seven"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            img = rng.integers(0, 255, (28, 28), dtype=np.uint8)
            Image.fromarray(img).save(root / cls / f"{i:04d}.png")
    (root / "notes.txt").write_text("not an image")
    return root


# --- --version, list -------------------------------------------------------------------------

def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"convzoo {convzoo.__version__}"


def test_num_params_builds_on_the_meta_device():
    seen = []

    def builder(**kwargs):
        seen.append(torch.empty(1).device)
        return torch.nn.Linear(3, 4)

    info = ModelInfo("probe", builder, "x", "x", (3, 8, 8))
    assert info.num_params() == 16 and seen == [torch.device("meta")]
    assert convzoo.model_info("lenet5").num_params() == 61_706


def test_list_natural_order_weights_column_and_no_match(capsys):
    code, out, _ = run_cli(capsys, "list", "resnet*")
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert code == 0 and names.index("resnet18") < names.index("resnet34") < names.index(
        "resnet101")
    assert "weights" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("resnet20 "))
    assert "cifar10" in row and "269,722" in row
    code, out, _ = run_cli(capsys, "list", "--pretrained", "--json")
    assert code == 0 and [(r["name"], r["weights"]) for r in json.loads(out)] == [
        ("lenet5", ["mnist"]), ("resnet20", ["cifar10"])]
    code, out, err = run_cli(capsys, "list", "nosuchnet*")
    assert code == 2 and out == "" and "nosuchnet*" in err and len(err.splitlines()) == 1


# --- random weights are never used silently ----------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("predict", "lenet5", "{img}"),
    ("visualize", "lenet5", "filters", "--out", "{tmp}/f.png"),
    ("export", "lenet5", "--out", "{tmp}/x.onnx"),
])
def test_bare_model_name_is_refused(capsys, tmp_path, digits, argv):
    args = [a.format(img=digits / "three" / "0000.png", tmp=tmp_path) for a in argv]
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    for needed in ("lenet5:mnist", "resnet20:cifar10", "MODEL:TAG", "MODEL:imagenet",
                   "--random-weights"):
        assert needed in err, needed
    assert list(tmp_path.glob("*.onnx")) == [] and list(tmp_path.glob("*.png")) == []


def test_random_weights_flag_says_so(capsys, digits):
    code, out, err = run_cli(capsys, "predict", "lenet5", digits / "three" / "0000.png",
                             "--random-weights")
    assert code == 0 and "RANDOM WEIGHTS" in err and out.startswith("0000.png: ")


# --- export: format from the extension, metadata in the file ---------------------------------

def test_export_format_follows_the_extension(capsys, tmp_path):
    out = tmp_path / "r20.pt2"
    code, stdout, err = run_cli(capsys, "export", "resnet20:cifar10", "--out", out, "--no-check")
    assert code == 0, err
    assert zipfile.is_zipfile(out) and "(export," in stdout  # a torch.export archive, not ONNX
    meta = json.loads(zipfile.ZipFile(out).read(
        next(n for n in zipfile.ZipFile(out).namelist() if n.endswith("metadata.json"))))
    assert meta["model"] == "resnet20" and json.loads(meta["input_size"]) == [3, 32, 32]

    code, _, err = run_cli(capsys, "export", "resnet20:cifar10", "--out", tmp_path / "x.onnx",
                           "--format", "export")
    assert code == 2 and "--format export disagrees" in err and not (tmp_path / "x.onnx").exists()
    code, _, err = run_cli(capsys, "export", "resnet20:cifar10", "--out", tmp_path / "x.bin")
    assert code == 2 and ".onnx" in err and ".pt2" in err


def test_onnx_carries_classes_normalisation_and_input_size(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "r20.onnx"
    code, _, err = run_cli(capsys, "export", "resnet20:cifar10", "--out", out)
    assert code == 0, err
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    loaded = convzoo.load_trained("resnet20:cifar10")
    assert json.loads(props["classes"]) == loaded.classes
    assert json.loads(props["input_size"]) == [3, 32, 32]
    preset = convzoo.data.preset_for("cifar10", in_chans=3, image_size=32)  # what it trained on
    assert loaded.data == "cifar10"
    assert json.loads(props["mean"]) == pytest.approx(list(preset.mean))
    assert json.loads(props["std"]) == pytest.approx(list(preset.std))
    assert props["model"] == "resnet20"


# --- predict on a folder ------------------------------------------------------------------------

def test_predict_folder_relative_paths_and_one_warning(capsys, digits):
    code, out, err = run_cli(capsys, "predict", "lenet5:mnist", digits)
    assert code == 0
    shown = [line.split(":")[0] for line in out.splitlines()]
    assert shown == ["seven/0000.png", "seven/0001.png", "three/0000.png", "three/0001.png"]
    assert err.count("notes.txt") == 1 and len(err.strip().splitlines()) == 1


def test_predict_nothing_readable_exits_2(capsys, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.csv").write_text("y")
    code, out, err = run_cli(capsys, "predict", "lenet5:mnist", tmp_path)
    assert code == 2 and out == "" and "nothing to predict" in err
    assert len(err.strip().splitlines()) == 1


# --- timm-style data config -------------------------------------------------------------------

def test_resolve_data_config_and_create_transform_match_predict():
    from convzoo.analysis.loading import image_transform

    cfg = convzoo.resolve_data_config("resnet20:cifar10")
    preset = convzoo.data.preset_for("cifar10", in_chans=3, image_size=32)
    assert cfg["input_size"] == (3, 32, 32) and cfg["data"] == "cifar10"
    assert cfg["mean"] == pytest.approx(preset.mean) and cfg["std"] == pytest.approx(preset.std)
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8))
    x = convzoo.create_transform(cfg)(img)
    want = (torch.from_numpy(np.asarray(img, np.float64) / 255).permute(2, 0, 1)
            - torch.tensor(preset.mean, dtype=torch.float64)[:, None, None]) / torch.tensor(
                preset.std, dtype=torch.float64)[:, None, None]
    assert x.shape == (3, 32, 32) and torch.allclose(x.double(), want, atol=1e-5)
    assert torch.equal(x, image_transform(convzoo.load_trained("resnet20:cifar10"))(img))


def test_resolve_data_config_of_a_module_is_imagenets():
    with torch.device("meta"):
        model = convzoo.create_model("resnet50")
    cfg = convzoo.resolve_data_config(model)
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == pytest.approx(224 / 256)
    assert cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))
    img = Image.fromarray(np.zeros((300, 400, 3), np.uint8))
    assert convzoo.create_transform(cfg)(img).shape == (3, 224, 224)
    with pytest.raises(convzoo.ConvzooError, match="create_model"):
        convzoo.resolve_data_config(torch.nn.Linear(2, 2))


# --- threads, bench ---------------------------------------------------------------------------

def test_train_threads_field_flag_and_fit(monkeypatch, tmp_path):
    from convzoo.cli import build_parser

    args = build_parser().parse_args(["train", "lenet5", "--threads", "1"])
    assert args.threads == 1
    with pytest.raises(convzoo.ConvzooError, match="--threads must be >= 1"):
        convzoo.TrainConfig(model="lenet5", threads=0).validate()
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    before = torch.get_num_threads()
    cfg = convzoo.TrainConfig(model="lenet5", max_steps=1, batch_size=8, threads=1,
                              out=str(tmp_path / "run"), device="cpu", tensorboard=False)
    convzoo.fit(cfg)
    assert calls == [1, before] and torch.get_num_threads() == before
    assert json.loads((tmp_path / "run" / "config.json").read_text())["threads"] == 1


def test_bench_threads_repeats_and_spread(capsys):
    from convzoo.analysis.bench import bench_model, format_bench

    before = torch.get_num_threads()
    r = bench_model("lenet5", batch_size=4, repeats=3, threads=1)
    assert r.threads == 1 and torch.get_num_threads() == before
    assert set(r.spread) == {"infer", "train", "latency"}
    assert all(v >= 0 for v in r.spread.values())
    r.spread = {"infer": 0.05, "train": 0.1, "latency": 0.02}  # repeats that agree
    table = format_bench([r])
    assert "1 threads" in table and "median of 3 runs" in table
    r.spread["train"] = 0.8  # repeats that disagree by 80%
    noisy = format_bench([r])
    assert "warning" in noisy and "lenet5 (80%)" in noisy and "warning" not in table
    code, out, _ = run_cli(capsys, "bench", "lenet5", "--threads", "1", "--repeats", "2",
                           "--batch-size", "2")
    assert code == 0 and "1 threads" in out


def test_experiment_threads(monkeypatch, capsys):
    from convzoo import experiments

    seen = []
    before = torch.get_num_threads()

    def fake(name, **kwargs):
        seen.append(torch.get_num_threads())
        return {"verdict": "stub"}

    monkeypatch.setattr(experiments, "run_experiment", fake)
    try:
        code, out, _ = run_cli(capsys, "experiment", "relu_tanh", "--threads", "1")
    finally:
        torch.set_num_threads(before)
    assert code == 0 and seen == [1]
    code, _, err = run_cli(capsys, "experiment", "relu_tanh", "--threads", "0")
    assert code == 2 and "--threads" in err


# --- eval: which test set, folder splits, class names from the weights; archives ------------

CIFAR_JPG = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.fixture(scope="module")
def cifar_jpg(tmp_path_factory) -> Path:
    """50 test and 4 training images per class of the CIFAR-10 JPEG copy, extracted to a tmp
    dir: test/ + train/ class folders (a folder data set with --val-split test)."""
    import tarfile

    if not CIFAR_JPG.is_file():
        pytest.skip(f"the CIFAR-10 JPEG copy is not at {CIFAR_JPG} (../shared is absent)")
    root = tmp_path_factory.mktemp("cifar10-jpg")
    keep = {f"{i:04d}.jpg" for i in range(50)}
    with tarfile.open(CIFAR_JPG) as tar:
        members = [m for m in tar if m.isfile() and (
            (m.name.startswith("test/") and m.name.rsplit("/", 1)[1] in keep)
            or (m.name.startswith("train/") and m.name.rsplit("/", 1)[1] < "0004.jpg"))]
        tar.extractall(root, members=members, filter="data")
    return root


def test_eval_names_the_embedded_subset(capsys):
    code, out, _ = run_cli(capsys, "eval", "lenet5:mnist")
    assert code == 0
    assert out.splitlines()[0] == ("lenet5 on mnist (embedded 2,000-image subset of the "
                                   "10,000-image test set; for the full set pass --data-dir "
                                   "with the MNIST files)")


def test_eval_shipped_weights_on_a_jpeg_folder_with_val_split(capsys, cifar_jpg, tmp_path):
    import shutil

    only_test = tmp_path / "only-test"  # no train/: the class names come from the weights
    shutil.copytree(cifar_jpg / "test", only_test / "test")
    code, out, err = run_cli(capsys, "eval", "resnet20:cifar10", "--data", "folder",
                             "--data-dir", only_test, "--val-split", "test", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["n"] == 500 and r["test_set"].startswith("folder test split from")
    assert list(r["per_class_acc"]) == convzoo.load_trained("resnet20:cifar10").classes
    # The model card's 91-92% on the CIFAR-10 test set (JPEG copy: a little lower); normalised
    # as CIFAR-10, not as a folder of unknown images (ImageNet's mean/std gives far less).
    assert r["top1_acc"] > 0.8


def test_archives_are_accepted_by_data_info_eval_and_train(capsys, cifar_jpg, tmp_path,
                                                           monkeypatch):
    import tarfile

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "small-cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_jpg / "train", arcname="small-cifar/train")
        tar.add(cifar_jpg / "test", arcname="small-cifar/test")
    code, out, err = run_cli(capsys, "data", "info", archive, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["splits"]["train"]["images"] == 40 and info["splits"]["test"]["images"] == 500
    code, out, err = run_cli(capsys, "eval", "resnet20:cifar10", "--data", "folder",
                             "--data-dir", archive, "--val-split", "test", "--json")
    assert code == 0, err and json.loads(out)["n"] == 500
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "lenet", "--data", "folder", "--data-dir", archive,
                             "--val-split", "test", "--max-steps", "1", "--batch-size", "8",
                             "--out", run, "--device", "cpu", "--no-tensorboard")
    assert code == 0, err
    assert json.loads((run / "final.json").read_text())
    assert archive.is_file()  # read, never changed


def test_alexnet_on_28px_mnist_says_the_input_is_resized(capsys, monkeypatch, tmp_path):
    from convzoo.data import datasets

    original = datasets.SOURCES["mnist"]  # the embedded subset, cut to 8 + 4 images
    monkeypatch.setitem(datasets.SOURCES, "mnist", lambda d, split, **kw: original(
        d, split, **kw).subset(torch.arange(8 if split == "train" else 4)))
    code, out, err = run_cli(capsys, "train", "alexnet", "--max-steps", "1", "--batch-size", "4",
                             "--out", tmp_path / "run", "--device", "cpu", "--no-tensorboard")
    assert code == 0, err
    said = "input 63 px: images are 28 px, below alexnet's minimum of 63 px; resized up"
    assert (out + err).count(said) == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["input_size"] == 63 and config["input_size_reason"] == said


def test_extract_archive_zip_top_folder_and_change(tmp_path, monkeypatch):
    import os

    from convzoo.data.cache import archive_entry, extract_archive

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("set/train/a/1.txt", "one")
        z.writestr("set/train/a/old.txt", "old")
    root = extract_archive(archive)
    assert root == archive_entry(archive) / "set"  # the one top folder
    assert root.parent.parent == tmp_path / "cache" / "archives"
    assert (root / "train" / "a" / "1.txt").read_text() == "one"
    assert extract_archive(archive) == root  # once
    with zipfile.ZipFile(archive, "w") as z:  # a changed archive is extracted again, afresh
        z.writestr("set/train/a/1.txt", "two")
    os.utime(archive, ns=(1, 10**18))
    root = extract_archive(archive)
    assert (root / "train" / "a" / "1.txt").read_text() == "two"
    assert not (root / "train" / "a" / "old.txt").exists()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(convzoo.DataError, match="cannot extract"):
        extract_archive(bad)


def test_resolve_data_config_of_an_untrained_small_form():
    cfg = convzoo.resolve_data_config(convzoo.create_model("vgg11_cifar"))
    cifar = convzoo.data.preset_for("cifar10", in_chans=3, image_size=32)
    assert cfg["data"] == "cifar10" and cfg["input_size"] == (3, 32, 32)
    assert cfg["mean"] == pytest.approx(cifar.mean)
    assert convzoo.resolve_data_config("mlp3_mnist")["data"] == "mnist"
