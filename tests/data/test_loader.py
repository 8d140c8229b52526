"""make_loader, THE loader: in memory (BatchLoader) and streamed from JPEG files of 120-220 px
(StreamLoader); fixed orders, augmentation drawn per image (the same for any batching, worker
count, DDP shard or mid-pass start), and the trainer's TrainBatches built on them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from convzoo.data import (
    BatchLoader,
    DataPreset,
    FolderDataset,
    ImageDataset,
    decode_file,
    load_dataset,
    make_loader,
)
from convzoo.data.stream import StreamLoader, stream_transform
from convzoo.engine.distributed import DistContext
from convzoo.engine.loader import TrainBatches
from convzoo.errors import DataError
from fullsize.fullhelp import make_folder

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
STREAM = DataPreset(mean=MEAN, std=STD, hflip=True, crop_size=48, resize_size=56)
MEMORY = DataPreset(mean=MEAN, std=STD, crop_padding=3, hflip=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("jpegs")).root


@pytest.fixture(scope="module")
def train_files(folder) -> FolderDataset:
    ds = load_dataset("folder", folder, "train")
    assert isinstance(ds, FolderDataset) and len(ds) == 12
    return ds


def _memory(n: int = 10) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 12, 12), dtype=torch.uint8, generator=g)
    return ImageDataset(images, torch.arange(n) % 3, ["a", "b", "c"], "toy", "test")


def _normalised(images: torch.Tensor) -> torch.Tensor:
    """The float64 oracle of the normalisation: (x / 255 - mean) / std."""
    mean = torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    return (images.double() / 255 - mean) / std


def _cat(batches) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*batches, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_make_loader_picks_the_loader_of_each_kind(train_files):
    mem = make_loader(_memory(), MEMORY, batch_size=4, train=False, channels_last=True)
    assert isinstance(mem, BatchLoader) and len(mem) == 3
    x, y = _cat(mem)
    torch.testing.assert_close(x.double(), _normalised(_memory().images), rtol=0, atol=1e-5)
    assert torch.equal(y, _memory().labels) and y.dtype == torch.int64
    assert next(iter(mem))[0].is_contiguous(memory_format=torch.channels_last)
    streamed = make_loader(train_files, STREAM, batch_size=5, train=False, workers=0)
    assert isinstance(streamed, StreamLoader) and len(streamed) == 3
    with pytest.raises(DataError, match="streamed folder but the preset has no crop_size"):
        make_loader(train_files, MEMORY, batch_size=4, train=False)


def test_streamed_eval_is_resize_center_crop_normalised_in_order(train_files):
    loader = make_loader(train_files, STREAM, batch_size=5, train=False, workers=2,
                         channels_last=True)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [5, 5, 2]
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)
    x, y = _cat(batches)
    t = stream_transform(STREAM, train=False)
    expected = torch.stack([t(decode_file(p)) for p in train_files.paths])
    assert x.shape == (12, 3, 48, 48) and x.dtype == torch.float32
    torch.testing.assert_close(x.double(), _normalised(expected), rtol=0, atol=1e-5)
    assert torch.equal(y, train_files.labels)


def test_in_memory_augmentation_is_per_image_whatever_the_batching():
    ds = _memory()
    order = torch.tensor([7, 2, 9, 0, 4, 4, 1, 8, 3, 6, 5])  # a padded shard repeats an index

    def run(batch_size: int, start: int = 0):
        loader = make_loader(ds, MEMORY, batch_size=batch_size, train=True)
        return _cat(loader.batches(order, start=start,
                                   generator=torch.Generator().manual_seed(5)))

    x4, y4 = run(4)
    x3, _ = run(3)
    assert torch.equal(x4, x3) and torch.equal(y4, ds.labels[order])
    assert torch.equal(x4[5], x4[4])  # the same image, the same crop/flip, within one pass
    tail, _ = run(4, start=2)
    assert torch.equal(tail, x4[8:])
    plain = make_loader(ds, MEMORY, batch_size=4, train=False)
    assert not torch.equal(x4, _cat(plain.batches(order))[0])  # augmented at all
    # Iterating is one shuffled pass, drawn from the loader's seed.
    a = _cat(make_loader(ds, MEMORY, batch_size=4, train=True, seed=1))[1]
    b = _cat(make_loader(ds, MEMORY, batch_size=4, train=True, seed=1))[1]
    assert torch.equal(a, b) and sorted(a.tolist()) == sorted(ds.labels.tolist())


def test_streamed_augmentation_is_per_image_whatever_workers_batching_and_start(train_files):
    order = torch.tensor([3, 11, 0, 5, 8, 1, 10, 2, 7])

    def run(batch_size: int, workers: int, start: int = 0):
        loader = make_loader(train_files, STREAM, batch_size=batch_size, train=True,
                             workers=workers)
        return _cat(loader.batches(order, start=start,
                                   generator=torch.Generator().manual_seed(9)))

    rng = torch.get_rng_state()
    x0, y0 = run(3, workers=0)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone
    x2, _ = run(4, workers=2)
    assert torch.equal(x0, x2) and torch.equal(y0, train_files.labels[order])
    assert x0.shape == (9, 3, 48, 48)
    tail, _ = run(3, workers=2, start=2)
    assert torch.equal(tail, x0[6:])
    other = make_loader(train_files, STREAM, batch_size=3, train=True, workers=0)
    x9 = _cat(other.batches(order, generator=torch.Generator().manual_seed(10)))[0]
    assert not torch.equal(x9, x0)  # another pass seed, other crops
    # AlexNet's lighting noise is drawn per batch, from the pass seed and the batch index.
    lit = make_loader(train_files, dataclasses.replace(STREAM, lighting=0.1), batch_size=3,
                      train=True, workers=0)
    xl = _cat(lit.batches(order, generator=torch.Generator().manual_seed(9)))[0]
    xl_tail = _cat(lit.batches(order, start=2, generator=torch.Generator().manual_seed(9)))[0]
    assert torch.equal(xl_tail, xl[6:]) and not torch.equal(xl, x0)


def test_streamed_bad_files_skipped_or_named(folder, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    good = next((root / "train" / "red").iterdir())
    (root / "train" / "red" / "zz-truncated.jpg").write_bytes(good.read_bytes()[:250])
    skip = load_dataset("folder", root, "train", on_bad_file="skip")
    loader = make_loader(skip, STREAM, batch_size=4, train=True, workers=2, seed=3)
    assert sum(len(y) for _, y in loader) == 12
    assert [p.rsplit("/", 1)[-1] for p, _ in loader.skipped] == ["zz-truncated.jpg"]
    strict = load_dataset("folder", root, "train")
    with pytest.raises(DataError, match="zz-truncated.jpg"):
        list(make_loader(strict, STREAM, batch_size=4, train=False, workers=0))


@pytest.mark.parametrize("kind", ["memory", "streamed"])
def test_train_batches_two_ranks_make_one_process_batch(kind, train_files):
    """Batch i of rank 0 and rank 1 together is batch i of one process at twice the batch size:
    the same images with the same augmentation (what DDP training relies on)."""
    ds, preset = (_memory(12), MEMORY) if kind == "memory" else (train_files, STREAM)

    def batches(rank: int, world: int, batch_size: int, start: int = 0):
        tb = TrainBatches(ds, preset, batch_size=batch_size, device=torch.device("cpu"),
                          in_chans=3, seed=4, ctx=DistContext(rank=rank, world=world), workers=0)
        first = list(tb.batches(1))
        tb.end_epoch()
        return first, list(tb.batches(2, start))

    one, one2 = batches(0, 1, 4)
    r0, _ = batches(0, 2, 2)
    r1, _ = batches(1, 2, 2)
    assert len(one) == len(r0) == 3
    for (x, y), (x0, y0), (x1, y1) in zip(one, r0, r1, strict=True):
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
    assert not torch.equal(_cat(one)[0], _cat(one2)[0])  # each epoch its own order/augmentation
    _, resumed = batches(0, 1, 4, start=1)
    assert all(torch.equal(a, b) for a, b in zip(_cat(resumed), _cat(one2[1:]), strict=True))
