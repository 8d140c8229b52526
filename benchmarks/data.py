"""Images/s of one training epoch of the input pipeline (no model): convzoo against torchvision.

Cases, each against a torchvision baseline at the same worker count, run interleaved:

* ``mnist-memory``: convzoo's BatchLoader over the decoded uint8 tensor (normalise, batch-wise)
  vs a tensor dataset + DataLoader with per-sample v2 transforms (ToDtype + Normalize).
* ``cifar10-memory``: BatchLoader over the decoded (cached) CIFAR-10 JPEG copy, with the CIFAR
  preset (4-pixel pad + random crop + flip + normalise, batch-wise) vs a tensor dataset +
  DataLoader with per-sample v2 RandomCrop(32, padding=4) + flip + ToDtype + Normalize.
* ``cifar10-folder``: from the JPEG folder with a cold cache: convzoo decodes the folder once
  (``workers`` processes) then runs the epoch from memory, vs torchvision.datasets.ImageFolder
  (PIL decode) + the same per-sample v2 transforms + DataLoader.

Usage: nice -n 10 .venv/bin/python benchmarks/data.py [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms import v2

from convzoo.data import BatchLoader, load_dataset, preset_for

warnings.filterwarnings("ignore", category=DeprecationWarning)
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"


class _TensorDataset(torch.utils.data.Dataset):
    """torch's TensorDataset plus a per-sample transform: the usual baseline for in-memory data."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def _epoch(loader) -> int:
    n = 0
    for _x, y in loader:
        n += len(y)
    return n


def _tv_loader(ds, batch: int, workers: int):
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                       persistent_workers=False)


def _tv_transform(preset, *, augment: bool, pil: bool) -> v2.Compose:
    ops = [v2.PILToTensor()] if pil else []
    if augment:
        ops += [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(preset.mean, preset.std)]
    return v2.Compose(ops)


def _timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2, help="DataLoader/decode processes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--cifar-dir", help="extracted cifar10-jpg (default: extract to a tmp dir)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # like a DataLoader worker; the machine's cores go to the workers
    w, bs = args.workers, args.batch_size
    tmp = Path(tempfile.mkdtemp(prefix="convzoo-bench-"))
    os.environ["CONVZOO_CACHE"] = str(tmp / "cache")
    try:
        cifar_dir = Path(args.cifar_dir) if args.cifar_dir else tmp / "cifar10-jpg"
        if not args.cifar_dir:
            cifar_dir.mkdir()
            subprocess.run(["tar", "-xzf", str(SHARED / "cifar10-jpg.tar.gz"), "-C",
                            str(cifar_dir)], check=True)
        mnist_dir = SHARED / "mnist"
        rows = []

        # --- in memory -------------------------------------------------------------------
        mnist = load_dataset("mnist", mnist_dir if mnist_dir.is_dir() else None, "train")
        cifar = load_dataset("folder", cifar_dir, "train", val_split="test", workers=w)
        cases = [("mnist-memory", mnist, "mnist", False), ("cifar10-memory", cifar, "cifar10",
                                                          True)]
        for name, ds, preset_name, augment in cases:
            preset = preset_for(preset_name, in_chans=ds.shape[0], image_size=ds.shape[1],
                                input_size=ds.shape[1])
            ours_t, base_t = [], []
            for r in range(args.repeats):
                ours = BatchLoader(ds, preset, batch_size=bs, train=True, seed=r)
                base = _tv_loader(_TensorDataset(ds.images, ds.labels, _tv_transform(
                    preset, augment=augment, pil=False)), bs, w)
                t, n = _timed(lambda: _epoch(ours))  # noqa: B023 - called at once
                ours_t.append(t)
                t, n2 = _timed(lambda: _epoch(base))  # noqa: B023
                base_t.append(t)
                assert n == n2 == len(ds)
            rows.append((name, len(ds), statistics.median(ours_t), statistics.median(base_t)))
            print(f"{name}: ours {ours_t}, torchvision {base_t}", file=sys.stderr)

        # --- from the JPEG folder, cold cache ----------------------------------------------
        preset = preset_for("cifar10", in_chans=3, image_size=32, input_size=32)
        ours_t, base_t = [], []
        for r in range(max(1, args.repeats - 1)):
            shutil.rmtree(tmp / "cache", ignore_errors=True)

            def ours_epoch() -> int:
                ds = load_dataset("folder", cifar_dir, "train", val_split="test", workers=w)
                return _epoch(BatchLoader(ds, preset, batch_size=bs, train=True, seed=r))  # noqa: B023

            base_ds = datasets.ImageFolder(str(cifar_dir / "train"), transform=_tv_transform(
                preset, augment=True, pil=True))
            t, n = _timed(ours_epoch)
            ours_t.append(t)
            t, n2 = _timed(lambda: _epoch(_tv_loader(base_ds, bs, w)))  # noqa: B023
            base_t.append(t)
            assert n == n2 == 50000
        rows.append(("cifar10-folder (cold)", 50000, statistics.median(ours_t),
                     statistics.median(base_t)))
        print(f"cifar10-folder: ours {ours_t}, torchvision {base_t}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"workers {w}, batch {bs}, median of {args.repeats} (folder: "
          f"{max(1, args.repeats - 1)}) epochs, torch {torch.__version__}")
    print("| case | images | convzoo img/s | torchvision img/s | ratio |")
    print("|---|---|---|---|---|")
    for name, n, ours, base in rows:
        print(f"| {name} | {n} | {n / ours:,.0f} | {n / base:,.0f} | {base / ours:.1f}x |")


if __name__ == "__main__":
    main()
