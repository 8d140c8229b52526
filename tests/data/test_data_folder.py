"""Image folders: decoding and conversion, bad files, the decode cache, the streamed path, the
ILSVRC-2012 val layouts."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.data import FolderDataset, ImageDataset, load_dataset, load_splits
from convzoo.data import folder as folder_mod
from convzoo.data.imagenet import imagenet_classes
from convzoo.data.images import decode_bytes
from convzoo.errors import DataError

rng = np.random.default_rng(0)


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    b = io.BytesIO()
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(b, "PNG")
    return b.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _small_folder(root: Path, classes=("cat", "dog"), n=3, size=8, splits=("train", "val")):
    """PNG files (lossless) with known pixels; returns {path: array (H, W, 3)}."""
    pixels = {}
    for split in splits:
        for c in classes:
            for i in range(n):
                a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                pixels[_write(root / split / c / f"{i}.png", _png(a))] = a
    return pixels


# --- decoding and conversion -----------------------------------------------------------------

def test_conversions_to_rgb_and_grey():
    a = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(decode_bytes(_png(a)).permute(1, 2, 0).numpy(), a)
    # Grey -> RGB repeats the value in every channel.
    rgb = decode_bytes(_png(grey))
    assert rgb.shape == (3, 5, 7)
    for ch in range(3):
        np.testing.assert_array_equal(rgb[ch].numpy(), grey)
    # RGBA: alpha dropped, colour kept.
    rgba = np.concatenate([a, np.full((5, 7, 1), 77, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_bytes(_png(rgba)).permute(1, 2, 0).numpy(), a)
    # 16-bit grey: the top 8 bits.
    g16 = (grey.astype(np.uint16) << 8) | 0xAB
    b = io.BytesIO()
    Image.fromarray(g16).save(b, "PNG")
    assert Image.open(io.BytesIO(b.getvalue())).mode.startswith("I;16")
    np.testing.assert_array_equal(decode_bytes(b.getvalue(), channels=1)[0].numpy(), grey)
    # RGB -> grey for a grey data set, and CMYK JPEG -> RGB.
    assert decode_bytes(_png(a), channels=1).shape == (1, 5, 7)
    b = io.BytesIO()
    Image.fromarray(a).convert("CMYK").save(b, "JPEG", quality=95)
    cmyk = decode_bytes(b.getvalue()).permute(1, 2, 0).numpy().astype(int)
    assert np.abs(cmyk - a).mean() < 12  # JPEG is lossy; an inverted or garbled image is ~100
    # A format torchvision lacks (BMP) goes through PIL.
    b = io.BytesIO()
    Image.fromarray(a).save(b, "BMP")
    np.testing.assert_array_equal(decode_bytes(b.getvalue()).permute(1, 2, 0).numpy(), a)


@pytest.mark.parametrize("data,match", [
    (b"", "empty"),
    (b"just some text, not an image", "not a readable image"),
    (None, "truncated"),
])
def test_undecodable(data, match):
    if data is None:
        b = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(b, "JPEG")
        data = b.getvalue()[:300]
    with pytest.raises(DataError, match=match):
        decode_bytes(data)


# --- a folder of small images ------------------------------------------------------------------

def test_small_folder_decoded_in_memory_exactly(tmp_path):
    pixels = _small_folder(tmp_path)
    ds = load_dataset("folder", tmp_path, "train")
    assert isinstance(ds, ImageDataset) and ds.classes == ["cat", "dog"]
    assert ds.images.shape == (6, 3, 8, 8) and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.stack([pixels[tmp_path / "train" / c / f"{i}.png"] for c in ("cat", "dog")
                         for i in range(3)])
    np.testing.assert_array_equal(ds.images.permute(0, 2, 3, 1).numpy(), expected)
    assert len(load_dataset("folder", tmp_path, "test")) == 6  # "test" reads the val folder


def test_split_names_are_parameters(tmp_path):
    _small_folder(tmp_path, splits=("training", "held"))
    with pytest.raises(DataError, match="no 'train' sub-folder.*--train-split"):
        load_dataset("folder", tmp_path, "train")
    s = load_splits("folder", tmp_path, train_split="training", val_split="held")
    assert (len(s.train), len(s.test), s.val) == (6, 6, None)


def test_cache_hit_and_invalidation(tmp_path, isolated_cache, monkeypatch):
    _small_folder(tmp_path)
    first = load_dataset("folder", tmp_path, "train")
    assert list(isolated_cache.rglob("*.safetensors"))
    calls = []
    real = folder_mod.decode_all
    monkeypatch.setattr(folder_mod, "decode_all", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_dataset("folder", tmp_path, "train")
    assert calls == [] and torch.equal(again.images, first.images)
    # A changed file (new content and mtime) is decoded again, and the new pixels are seen.
    new = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = tmp_path / "train" / "dog" / "1.png"
    path.write_bytes(_png(new))
    os.utime(path, ns=(1, 1))
    changed = load_dataset("folder", tmp_path, "train")
    assert calls == [1]
    np.testing.assert_array_equal(changed.images[4].permute(1, 2, 0).numpy(), new)


def test_corrupt_cache_entry_is_decoded_again(tmp_path, isolated_cache):
    _small_folder(tmp_path)
    first = load_dataset("folder", tmp_path, "train")
    for p in isolated_cache.rglob("*.safetensors"):
        p.write_bytes(b"garbage")
    assert torch.equal(load_dataset("folder", tmp_path, "train").images, first.images)


def _bad_folder(root: Path) -> dict[str, str]:
    _small_folder(root, n=5)
    good = np.zeros((8, 8, 3), np.uint8)
    bad = {
        "train/cat/empty.png": "empty file",
        "train/cat/notes.txt": "not an image file",
        "train/dog/broken.jpg": "not a readable image",
        "train/dog/truncated.png": "corrupt or truncated",
        "train/horse": "empty class folder",
    }
    _write(root / "train/cat/empty.png", b"")
    _write(root / "train/cat/notes.txt", b"hello")
    _write(root / "train/dog/broken.jpg", b"<html>404</html>")
    _write(root / "train/dog/truncated.png", _png(good)[:40])
    (root / "train/horse").mkdir()
    (root / "val/horse").mkdir()
    _write(root / "val/horse/0.png", _png(good))
    _write(root / "train/cat/.DS_Store", b"\0\0")  # hidden: ignored, not reported
    return bad


def test_bad_files_error_names_the_file(tmp_path):
    _bad_folder(tmp_path)
    with pytest.raises(DataError, match=r"empty\.png: empty file.*--on-bad-file skip"):
        load_dataset("folder", tmp_path, "train")


def test_bad_files_skipped_and_listed(tmp_path):
    bad = _bad_folder(tmp_path)
    s = load_splits("folder", tmp_path, on_bad_file="skip")
    got = {os.path.relpath(p, tmp_path): reason for p, reason in s.skipped}
    assert set(got) == set(bad)
    for k, reason in bad.items():
        assert reason in got[k], (k, got[k])
    assert len(s.train) == 10 and s.classes == ["cat", "dog", "horse"]
    assert len(s.test) == 11 and s.test.labels.tolist()[-1] == 2
    # A cached decode still reports its skipped files, and still refuses with "error".
    assert len(load_splits("folder", tmp_path, on_bad_file="skip").skipped) == len(bad)
    with pytest.raises(DataError):
        load_splits("folder", tmp_path)


def test_one_odd_size_streams_the_folder_unless_forced_in_memory(tmp_path):
    _small_folder(tmp_path, n=20)
    _write(tmp_path / "train/dog/big.png", _png(np.zeros((8, 9, 3), np.uint8)))
    # 41 files: the 32 probed miss big.png (the last, sorted), the full decode meets it.
    ds = load_dataset("folder", tmp_path, "train")
    assert isinstance(ds, FolderDataset) and len(ds) == 41 and ds.skipped == []
    forced = load_dataset("folder", tmp_path, "train", in_memory=True, on_bad_file="skip")
    assert isinstance(forced, ImageDataset) and len(forced) == 40
    assert [(os.path.basename(p), r) for p, r in forced.skipped] == [
        ("big.png", "image is 9x8, the folder's images are 8x8")]


def test_val_class_unknown_to_train(tmp_path):
    _small_folder(tmp_path)
    _write(tmp_path / "val" / "zebra" / "0.png", _png(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(DataError, match="zebra.*training split"):
        load_dataset("folder", tmp_path, "test")


def test_no_class_folders(tmp_path):
    (tmp_path / "train").mkdir()
    _write(tmp_path / "train" / "x.png", _png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset("folder", tmp_path, "train")


def test_bad_on_bad_file_value(tmp_path):
    with pytest.raises(DataError, match="on_bad_file"):
        load_dataset("folder", tmp_path, "train", on_bad_file="ignore")


# --- large images: the streamed path -------------------------------------------------------------

def _jpeg(h: int, w: int) -> bytes:
    b = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(b, "JPEG")
    return b.getvalue()


def test_large_images_are_streamed(tmp_path):
    from convzoo.data import make_loader, preset_for
    from convzoo.hub import eval_sizes

    for split in ("train", "val"):
        for c in ("a", "b"):
            for i in range(3):
                _write(tmp_path / split / c / f"{i}.jpg", _jpeg(90 + 10 * i, 120))
    _write(tmp_path / "train" / "a" / "bad.jpg", _jpeg(90, 120)[:200])
    s = load_splits("folder", tmp_path, on_bad_file="skip")
    assert s.streamed and isinstance(s.train, FolderDataset) and s.image_size is None
    preset = preset_for("folder", in_chans=3, image_size=None, input_size=80,
                        eval_sizes=eval_sizes("resnet18"))
    assert (preset.crop_size, preset.resize_size) == (80, 91)  # 256/224 scaled to 80
    loader = make_loader(s.train, preset, batch_size=3, train=True, workers=0, seed=1)
    batches = list(loader)
    assert sum(len(y) for _, y in batches) == 6
    assert all(x.shape[1:] == (3, 80, 80) and x.dtype == torch.float32 for x, _ in batches)
    assert [os.path.basename(p) for p, _ in loader.skipped] == ["bad.jpg"]
    ev = make_loader(s.test, preset, batch_size=4, train=False, workers=0)
    assert [tuple(x.shape) for x, _ in ev] == [(4, 3, 80, 80), (2, 3, 80, 80)]
    with pytest.raises(DataError, match="bad.jpg"):  # error mode: the first bad file stops it
        s2 = load_splits("folder", tmp_path)
        for _ in make_loader(s2.train, preset, batch_size=7, train=False, workers=0):
            pass


# --- ImageNet layouts ---------------------------------------------------------------------------

def _imagenet_tree(root: Path) -> list[str]:
    wnids, _ = imagenet_classes()
    picked = [wnids[0], wnids[5], wnids[999]]
    for w in picked:
        _write(root / "train" / w / f"{w}_1.JPEG", _jpeg(80, 100))
    for i in range(1, 4):
        _write(root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", _jpeg(80, 100))
    return picked


def test_imagenet_train_folders_use_the_class_index(tmp_path):
    picked = _imagenet_tree(tmp_path)
    ds = load_dataset("imagenet", tmp_path, "train")
    assert len(ds.classes) == 1000 and ds.classes[0] == "tench"
    assert ds.labels.tolist() == [0, 5, 999] and isinstance(ds, FolderDataset)
    assert picked[0] == "n01440764"


@pytest.mark.parametrize("layout", ["labels", "kaggle", "devkit"])
def test_imagenet_flat_val(tmp_path, layout):
    wnids, _ = imagenet_classes()
    _imagenet_tree(tmp_path)
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 4)]
    if layout == "labels":
        (tmp_path / "val_labels.txt").write_text(
            f"{names[0]} {wnids[7]}\n{names[1]} 3\n{names[2]} {wnids[999]}\n")
    elif layout == "kaggle":
        (tmp_path / "LOC_val_solution.csv").write_text(
            "ImageId,PredictionString\n" + "".join(
                f"{n.split('.')[0]},{w} 1 2 3 4 {w} 5 6 7 8\n"
                for n, w in zip(names, [wnids[7], wnids[3], wnids[999]], strict=True)))
    else:
        devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
        devkit.mkdir(parents=True)
        # ILSVRC2012_IDs are not the sorted-wnid index: map them explicitly.
        (devkit / "map_clsloc.txt").write_text(
            f"{wnids[999]} 1 toilet_tissue\n{wnids[7]} 2 cock\n{wnids[3]} 3 shark\n")
        (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n3\n1\n")
    ds = load_dataset("imagenet", tmp_path, "test")
    assert ds.labels.tolist() == [7, 3, 999]


def test_imagenet_val_mismatched_labels(tmp_path):
    _imagenet_tree(tmp_path)
    (tmp_path / "val_labels.txt").write_text("ILSVRC2012_val_00000009.JPEG 1\n")
    with pytest.raises(DataError, match="00000009.JPEG is not a file"):
        load_dataset("imagenet", tmp_path, "test")
    (tmp_path / "val_labels.txt").write_text("ILSVRC2012_val_00000001.JPEG 1\n")
    with pytest.raises(DataError, match="00000002.JPEG: no label"):
        load_dataset("imagenet", tmp_path, "test")
    s = load_splits("imagenet", tmp_path, on_bad_file="skip")
    assert len(s.test) == 1 and len(s.skipped) == 2
    (tmp_path / "val_labels.txt").unlink()
    devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n")
    (devkit / "map_clsloc.txt").write_text("n01440764 1 tench\nn01443537 2 goldfish\n")
    with pytest.raises(DataError, match="2 labels but .* 3 images"):
        load_dataset("imagenet", tmp_path, "test")
