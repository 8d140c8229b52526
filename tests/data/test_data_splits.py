"""holdout_split, load_splits, make_loader, and the presets (sizes per model, lighting noise)."""

from __future__ import annotations

import pytest
import torch

from convzoo.data import (
    PRESETS,
    BatchLoader,
    ImageDataset,
    finish_batch,
    holdout_split,
    load_splits,
    make_loader,
    preset_for,
)
from convzoo.data.presets import PCA_EIGVAL, PCA_EIGVEC, apply_preset, lighting_noise
from convzoo.data.stream import stream_transform
from convzoo.errors import DataError
from convzoo.hub import eval_sizes


def _toy(counts=(50, 30, 7, 1)) -> ImageDataset:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    return ImageDataset(images.contiguous(), labels, [str(c) for c in range(len(counts))], "toy",
                        "test")


def test_holdout_is_stratified_disjoint_and_seeded():
    ds = _toy()
    train, val = holdout_split(ds, 0.2, seed=3)
    assert torch.bincount(val.labels, minlength=4).tolist() == [10, 6, 1, 0]  # round(0.2 n)
    assert torch.bincount(train.labels, minlength=4).tolist() == [40, 24, 6, 1]
    ids_train = set(train.images[:, 0, 0, 0].tolist())
    ids_val = set(val.images[:, 0, 0, 0].tolist())
    assert not ids_train & ids_val and len(ids_train | ids_val) == len(ds)
    again = holdout_split(ds, 0.2, seed=3)[1]
    other = holdout_split(ds, 0.2, seed=4)[1]
    assert torch.equal(again.images, val.images)
    assert not torch.equal(other.images, val.images)
    with pytest.raises(DataError, match="between 0 and 1"):
        holdout_split(ds, 1.0, seed=0)


def test_load_splits_embedded_mnist_with_holdout():
    s = load_splits("mnist", holdout=0.1, seed=0)
    full = load_splits("mnist")
    assert full.val is None and len(s.train) + len(s.val) == len(full.train)
    assert s.classes == [str(i) for i in range(10)] and s.skipped == [] and not s.streamed
    assert s.image_size == 28 and s.channels == 1
    summary = s.summary()
    assert summary["val"] == len(s.val) and summary["test"] == len(full.test)
    assert isinstance(make_loader(s.train, preset_for("mnist", in_chans=1, image_size=28,
                                                      input_size=28), batch_size=8, train=True),
                      BatchLoader)


def test_a_data_source_in_code_registers_nothing():
    """An experiment's subset without augmentation: its own splits and preset rules, nothing added
    to the global SOURCES / PRESETS."""
    from convzoo.data import PRESETS, SOURCES, DataSource

    base = load_splits("mnist")
    before = (dict(SOURCES), dict(PRESETS))
    src = DataSource(name="xp-mnist-n50", preset_of="mnist", augment=False,
                     load=lambda split: getattr(base, split).subset(torch.arange(50)))
    s = load_splits(src, holdout=0.2, seed=1)
    assert (dict(SOURCES), dict(PRESETS)) == before
    assert s.source is src and len(s.train) + len(s.val) == 50 and len(s.test) == 50
    p = s.preset(in_chans=1, input_size=28)
    assert p.mean == PRESETS["mnist"].mean and p.crop_padding == 0 and not p.hflip
    augmented = base.preset(in_chans=1, input_size=28)
    assert augmented.crop_padding == PRESETS["mnist"].crop_padding == 2
    assert augmented == preset_for("mnist", in_chans=1, image_size=28, input_size=28)
    with pytest.raises(DataError, match="unknown data set 'xp-mnist-n50'"):
        load_splits("xp-mnist-n50")


def test_splits_of_two_kinds_are_both_streamed(tmp_path):
    """A uniform 32 px train/ (in memory on its own) and a mixed-size val/ (streamed): one preset
    must serve both, so both are streamed."""
    from torchvision.io import encode_jpeg

    from convzoo.data import FolderDataset

    g = torch.Generator().manual_seed(0)
    for split, sizes in (("train", [(32, 32)] * 3), ("val", [(32, 32), (40, 48), (30, 36)])):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i, (h, w) in enumerate(sizes):
                img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
                (tmp_path / split / c / f"{i}.jpg").write_bytes(encode_jpeg(img).numpy().tobytes())
    s = load_splits("folder", tmp_path)
    assert isinstance(s.train, FolderDataset) and isinstance(s.test, FolderDataset)
    assert s.streamed and len(s.train) == len(s.test) == 6
    assert isinstance(load_splits("folder", tmp_path / "train", train_split=".", val_split=".")
                      .train, ImageDataset)  # on its own, train/ is decoded into memory
    from convzoo.data import DataSource, load_dataset

    mixed = DataSource(name="mixed", preset_of="folder", load=lambda split: load_dataset(
        "folder", tmp_path, split, in_memory=split == "train"))
    with pytest.raises(DataError, match="train split is in memory at 32x32 px and the test split "
                                        "streamed"):
        load_splits(mixed)


def test_unknown_name_and_split():
    with pytest.raises(DataError, match="unknown data set 'svhn'"):
        load_splits("svhn")
    with pytest.raises(DataError, match="needs a data dir"):
        load_splits("cifar10")


def test_cifar_preset_and_augmentation():
    p = preset_for("cifar10", in_chans=3, image_size=32, input_size=32)
    assert p.mean == (0.4914, 0.4822, 0.4465) and p.std == (0.2470, 0.2435, 0.2616)
    assert p.crop_padding == 4 and p.hflip and not p.streamed
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = apply_preset(x, p, train=True, generator=g)
    assert out.shape == (16, 3, 32, 32)
    # Each augmented image is a shifted (and maybe mirrored) window of the image padded with the
    # mean pixel (uint8), normalised.
    fill = torch.tensor([round(m * 255) for m in p.mean], dtype=torch.uint8).view(1, 3, 1, 1)
    padded = fill.expand(16, 3, 40, 40).clone()
    padded[:, :, 4:36, 4:36] = x
    ref = apply_preset(padded, p, train=False)
    assert ref[:, :, 0, 0].abs().max() < 0.01  # the padding normalises to ~0
    flips = 0
    for i in range(16):
        windows = [ref[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or mirrored, i
        flips += mirrored and not plain
    assert 0 < flips < 16
    # Folders of small images get the same treatment, with ImageNet statistics.
    f = preset_for("folder", in_chans=3, image_size=32, input_size=32)
    assert f.crop_padding == 4 and f.hflip and f.mean == PRESETS["imagenet"].mean


def test_eval_sizes_per_model():
    assert eval_sizes("resnet50") == (256, 224)
    assert eval_sizes("resnet50", "IMAGENET1K_V2") == (232, 224)
    assert eval_sizes("inception_v3") == (342, 299)
    p = preset_for("imagenet", in_chans=3, image_size=None, input_size=299,
                   eval_sizes=eval_sizes("inception_v3"))
    assert (p.resize_size, p.crop_size) == (342, 299)
    t = stream_transform(p, train=False)
    assert t(torch.zeros(3, 400, 500, dtype=torch.uint8)).shape == (3, 299, 299)


def test_stream_transforms_shapes_and_scale_jitter():
    p = preset_for("imagenet", in_chans=3, image_size=None, input_size=224,
                   eval_sizes=eval_sizes("vgg16"),
                   scale_jitter=(256, 512))
    img = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    for _ in range(3):
        assert stream_transform(p, train=True)(img).shape == (3, 224, 224)
    names = [type(t).__name__ for t in stream_transform(p, train=True).transforms]
    assert names == ["RandomShortestSize", "RandomCrop", "RandomHorizontalFlip"]
    p2 = preset_for("imagenet", in_chans=3, image_size=None, input_size=224)
    names = [type(t).__name__ for t in stream_transform(p2, train=True).transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip"]


def test_lighting_noise_against_float64_loop():
    x = torch.rand(4, 3, 5, 6, dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    out = lighting_noise(x, 0.1, g1)
    alpha = torch.randn(4, 3, generator=g2, dtype=torch.float64) * 0.1
    for b in range(4):
        for c in range(3):
            shift = sum(PCA_EIGVEC[c][j] * alpha[b, j].item() * PCA_EIGVAL[j] for j in range(3))
            torch.testing.assert_close(out[b, c], x[b, c] + shift)


def test_finish_batch_normalises_and_channels_last():
    p = preset_for("imagenet", in_chans=3, image_size=None, input_size=224)
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = finish_batch(x, p, train=False, channels_last=True)
    expected = (1.0 - torch.tensor(p.mean)) / torch.tensor(p.std)
    torch.testing.assert_close(out[0, :, 0, 0], expected)
    assert out.is_contiguous(memory_format=torch.channels_last)
