"""Trainer overhead and time to accuracy, measured in one run.

    python benchmarks/engine.py [--repeats 3] [--lenet-steps N] [--resnet-steps 100] [--threads N]
        [--skip-tta] [--skip-resnet] [--device cpu|cuda] [--amp none|bf16]

1. Time per epoch of ``convzoo.fit`` against a minimal hand-written PyTorch loop (same model
   and initial weights, same uint8 data tensors normalised per batch, batch size, SGD optimizer,
   no evaluation counted), interleaved (trainer, loop, trainer, loop, ...), medians of the
   repeats: lenet5 on MNIST (60k images, batch 64) and resnet20 on CIFAR-10-shaped data (batch
   128, ``--resnet-steps`` steps; the pixels do not change the time).
   With ``--streamed-size S`` (e.g. 128), also resnet18 on a streamed folder of JPEGs of
   144-200 px (``--streamed-per-class`` per class, 10 classes, the folder of
   ``train_vs_reference.py``) at S px, batch 32: ``fit`` against the hand loop iterating the very
   loader the trainer uses (``convzoo.data.make_loader``, ``--workers`` processes).
2. Seconds from the start of ``fit`` (data loading included) until the end of the first epoch
   whose MNIST test accuracy (10,000 images) is >= 99.0%, with the ``lenet5-mnist`` recipe.

MNIST comes from ../shared/data/mnist (the embedded 10k subset when absent). Prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from convzoo import TrainConfig, create_model, fit
from convzoo.data import (
    DataPreset,
    ImageDataset,
    datasets,
    load_dataset,
    make_loader,
    preset_for,
)
from convzoo.engine.recipes import recipe_config
from convzoo.hub import eval_sizes

MNIST_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def mnist_dir() -> str | None:
    return str(MNIST_DIR) if (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file() else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def minimal_loop(
    model_name,
    train: ImageDataset,
    batch_size: int,
    lr: float,
    seed: int,
    model_args: dict,
    steps: int | None,
    device: torch.device,
    amp: str,
) -> float:
    """The loop a person writes by hand; returns its seconds for one epoch (or ``steps``).

    On a GPU it never waits for the device inside the loop (no ``.item()``), the fastest a hand
    loop gets; the clock stops after a final synchronisation."""
    torch.manual_seed(seed)
    model = create_model(model_name, **model_args).to(device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    preset = preset_for(train.name, in_chans=train.shape[0], image_size=train.shape[1])
    mean = torch.tensor(preset.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(preset.std, device=device).view(1, -1, 1, 1)
    images, labels = train.images.to(device), train.labels.to(device)
    order = torch.randperm(len(labels)).to(device)
    n_batches = -(-len(labels) // batch_size)
    if steps:
        n_batches = min(n_batches, steps)
    dtype = torch.bfloat16 if amp == "bf16" else None
    _sync(device)
    t0 = time.perf_counter()
    for i in range(n_batches):
        idx = order[i * batch_size : (i + 1) * batch_size]
        x = (images[idx].float() / 255 - mean) / std
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def bench_dataset(train: ImageDataset, test: ImageDataset) -> datasets.DataSet:
    """``train`` and ``test`` as the data set ``bench``: its preset normalises by 0.5/0.5 and
    augments nothing."""
    c, side = train.shape[0], train.shape[1]
    return datasets.DataSet("bench", lambda d, split, **kw: train if split == "train" else test,
                            DataPreset(mean=(0.5,) * c, std=(0.5,) * c), channels=c,
                            image_size=side, num_classes=len(train.classes))


def trainer_epoch(
    model_name, data: str, batch_size: int, lr: float, seed: int, steps, out: Path,
    device: torch.device, amp: str,
) -> float:
    cfg = TrainConfig(
        model=model_name,
        data=data,
        epochs=1,
        batch_size=batch_size,
        lr=lr,
        lr_scheduler="constant",
        momentum=0.9,
        wd=5e-4,
        seed=seed,
        max_steps=steps,
        tensorboard=False,
        out=str(out),
        device=str(device),
        amp=amp,
    )
    result = fit(cfg)
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    return rows[0]["epoch_time_s"]


def overhead(name, model_name, train, test, batch_size, lr, steps, repeats, tmp: Path, device,
             amp):
    # A named in-memory source so fit() sees the very same tensors as the loop; its preset
    # normalises with 0.5/0.5 and augments nothing (the loop does none either).
    datasets.DATASETS["bench"] = bench_dataset(train, test)
    train.name = test.name = "bench"
    model_args = {"num_classes": 10, "in_chans": train.shape[0]}
    t_trainer, t_loop = [], []
    for r in range(repeats):
        t_trainer.append(
            trainer_epoch(model_name, "bench", batch_size, lr, r, steps, tmp / f"{name}{r}",
                          device, amp)
        )
        t_loop.append(minimal_loop(model_name, train, batch_size, lr, r, model_args, steps,
                                   device, amp))
    mt, ml = statistics.median(t_trainer), statistics.median(t_loop)
    return {
        "case": name,
        "trainer_s": mt,
        "loop_s": ml,
        "ratio": mt / ml,
        "steps": steps or -(-len(train) // batch_size),
        "repeats": repeats,
    }


def streamed_overhead(size: int, per_class: int, workers: int, repeats: int, tmp: Path,
                      device: torch.device, amp: str, batch_size: int = 32) -> dict:
    """resnet18 on a streamed JPEG folder at ``size`` px: ``fit`` (one epoch, no evaluation
    counted) against a hand loop over the same ``make_loader`` loader, interleaved."""
    from train_vs_reference import write_large_folder

    root = write_large_folder(tmp / "jpegs", 10, per_class, 2)
    ds = load_dataset("folder", str(root), "train", val_split="test")
    preset = preset_for("folder", in_chans=3, image_size=None, input_size=size,
                        eval_sizes=eval_sizes("resnet18"))
    dtype = torch.bfloat16 if amp == "bf16" else None
    t_trainer, t_loop = [], []
    for r in range(repeats):
        cfg = TrainConfig(model="resnet18", data="folder", data_dir=str(root), val_split="test",
                          input_size=size, epochs=1, batch_size=batch_size, lr=0.05,
                          lr_scheduler="constant", momentum=0.9, wd=5e-4, seed=r,
                          workers=workers, tensorboard=False, out=str(tmp / f"stream{r}"),
                          device=str(device), amp=amp)
        run_dir = fit(cfg).run_dir
        t_trainer.append(json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
                         ["epoch_time_s"])
        torch.manual_seed(r)
        model = create_model("resnet18", num_classes=10).to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        loader = make_loader(ds, preset, batch_size=batch_size, train=True, device=device,
                             in_chans=3, seed=r, workers=workers)
        _sync(device)
        t0 = time.perf_counter()
        for x, y in loader:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        t_loop.append(time.perf_counter() - t0)
        print(f"  streamed round {r + 1}: trainer {t_trainer[-1]:.2f} s, loop {t_loop[-1]:.2f} s",
              flush=True)
    mt, ml = statistics.median(t_trainer), statistics.median(t_loop)
    return {"case": f"resnet18 / {len(ds)} JPEGs streamed at {size} px, batch {batch_size}, "
                    f"{workers} workers", "trainer_s": mt, "loop_s": ml, "ratio": mt / ml,
            "steps": -(-len(ds) // batch_size), "repeats": repeats}


def time_to_99(tmp: Path, device: torch.device) -> dict:
    cfg = recipe_config(
        "lenet5-mnist", data_dir=mnist_dir(), tensorboard=False, out=str(tmp / "tta"),
        device=str(device),
    )
    t0 = time.perf_counter()
    result = fit(cfg)
    total = time.perf_counter() - t0
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    hit = next((r for r in rows if r["test_top1_acc"] >= 0.99), None)
    return {
        "seconds_to_99": None if hit is None else hit["elapsed_s"],
        "epoch": None if hit is None else hit["epoch"],
        "final_acc": rows[-1]["test_top1_acc"],
        "accs": [r["test_top1_acc"] for r in rows],
        "total_s": total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resnet-steps", type=int, default=100)
    ap.add_argument("--lenet-steps", type=int, default=None, help="default: a whole epoch")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--skip-tta", action="store_true")
    ap.add_argument("--skip-resnet", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--amp", choices=("none", "bf16"), default="none")
    ap.add_argument("--skip-lenet", action="store_true")
    ap.add_argument("--streamed-size", type=int, default=0, help="px; 0: no streamed case")
    ap.add_argument("--streamed-per-class", type=int, default=64, help="JPEGs per class (10)")
    ap.add_argument("--workers", type=int, default=2, help="loader processes, streamed case")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {device} ({where}), amp {args.amp}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results = []
        train = load_dataset("mnist", mnist_dir(), "train")
        test = load_dataset("mnist", mnist_dir(), "test").subset(torch.arange(500))
        if not args.skip_lenet:
            results.append(overhead("lenet5 / MNIST, batch 64", "lenet5", train, test, 64, 0.05,
                                    args.lenet_steps, args.repeats, tmp, device, args.amp))
        if not args.skip_resnet:
            g = torch.Generator().manual_seed(0)
            n = 128 * args.resnet_steps
            imgs = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
            c_train = ImageDataset(
                imgs,
                torch.randint(0, 10, (n,), generator=g),
                [str(i) for i in range(10)],
                "bench",
                "random CIFAR-shaped",
            )
            c_test = c_train.subset(torch.arange(256))
            results.append(
                overhead(
                    "resnet20 / CIFAR-10 shape, batch 128",
                    "resnet20",
                    c_train,
                    c_test,
                    128,
                    0.1,
                    args.resnet_steps,
                    args.repeats,
                    tmp,
                    device,
                    args.amp,
                )
            )
        if args.streamed_size:
            results.append(streamed_overhead(args.streamed_size, args.streamed_per_class,
                                             args.workers, args.repeats, tmp, device, args.amp))
        print("\n| case | steps | trainer s/epoch | loop s/epoch | ratio |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for r in results:
            print(
                f"| {r['case']} | {r['steps']} | {r['trainer_s']:.2f} | {r['loop_s']:.2f} | "
                f"{r['ratio']:.3f} |"
            )
        if not args.skip_tta:
            tta = time_to_99(tmp, device)
            print(
                f"\nlenet5-mnist recipe: first >= 99.0% test accuracy after "
                f"{tta['seconds_to_99']} s (epoch {tta['epoch']}); per-epoch accuracy "
                f"{tta['accs']}; whole run {tta['total_s']:.1f} s"
            )


if __name__ == "__main__":
    main()
