"""Where the time of a streamed training step goes, convzoo against torchvision's reference.

    .venv/bin/python benchmarks/stream_costs.py [--size 128] [--per-class 32] [--repeats 3]

On the folder of 144-200 px JPEGs that ``train_vs_reference.py`` writes (10 classes), in one run,
interleaved: (1) decode + RandomResizedCrop/flip per image, convzoo's ``stream_transform`` on a
``FolderDataset`` against the reference's ``ClassificationPresetTrain`` on an ``ImageFolder``
(../shared/peers/torchvision-reference, imported, not copied), one thread; (2) images/s of one
pass of each DataLoader with 0 and 2 workers; (3) seconds per bare SGD step (batch 32) of
convzoo's and torchvision's resnet18 at ``--size``, and of convzoo's in channels_last (NHWC)
memory format, as ``convzoo train --channels-last`` runs it. docs/engine.md quotes a run.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from train_vs_reference import REFERENCE, write_large_folder

import convzoo
from convzoo.data import load_dataset, make_loader, preset_for
from convzoo.data.stream import stream_transform
from convzoo.hub import eval_sizes


def per_image_ms(ds) -> float:
    t = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return (time.perf_counter() - t) / len(ds) * 1e3


def loader_rate(loader) -> float:
    t, n = time.perf_counter(), 0
    for _, y in loader:
        n += len(y)
    return n / (time.perf_counter() - t)


def step_seconds(model, size: int, steps: int = 5, channels_last: bool = False) -> float:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, size, size, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    if channels_last:  # what `convzoo train --channels-last` does to the model and its inputs
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--per-class", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REFERENCE))
    import presets as ref_presets  # the reference's own transforms module

    root = write_large_folder(Path(tempfile.mkdtemp(prefix="stream-costs-")), 10,
                              args.per_class, 2)
    ds = load_dataset("folder", str(root), "train", val_split="test")
    preset = preset_for("folder", in_chans=3, image_size=None, input_size=args.size,
                        eval_sizes=eval_sizes("resnet18"))
    cz = ds.with_transform(stream_transform(preset, train=True))
    ref = torchvision.datasets.ImageFolder(
        str(root / "train"), ref_presets.ClassificationPresetTrain(crop_size=args.size))
    print(f"torch {torch.__version__}, {len(ds)} JPEGs of 144-200 px, input {args.size} px")
    torch.set_num_threads(1)
    for _ in range(args.repeats):
        print(f"decode + crop per image, 1 thread: convzoo {per_image_ms(cz):.2f} ms, "
              f"reference {per_image_ms(ref):.2f} ms")
    for workers in (0, 2):
        for _ in range(args.repeats):
            a = loader_rate(make_loader(ds, preset, batch_size=32, train=True, workers=workers,
                                        in_chans=3))
            b = loader_rate(torch.utils.data.DataLoader(ref, batch_size=32, shuffle=True,
                                                        num_workers=workers))
            print(f"loader, {workers} workers: convzoo {a:.0f} img/s, reference {b:.0f} img/s")
    torch.set_num_threads(os.cpu_count() or 1)
    ours = convzoo.create_model("resnet18", num_classes=10)
    theirs = torchvision.models.resnet18(num_classes=10)
    for _ in range(args.repeats):
        print(f"bare SGD step, batch 32, {args.size} px, {torch.get_num_threads()} threads: "
              f"convzoo {step_seconds(ours, args.size):.3f} s, torchvision "
              f"{step_seconds(theirs, args.size):.3f} s, convzoo channels_last "
              f"{step_seconds(copy.deepcopy(ours), args.size, channels_last=True):.3f} s")


if __name__ == "__main__":
    main()
