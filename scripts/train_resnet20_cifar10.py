"""Train the shipped ``resnet20`` CIFAR-10 weights on this CPU within a wall-clock budget.

    nice -n 10 python scripts/train_resnet20_cifar10.py --budget-min 55 --out runs/resnet20-c10

He et al. §4.2 trains 64k iterations (about 5 h on an idle 2-core CPU). This script runs a
shortened schedule instead, on a machine shared with other jobs: SGD (Nesterov momentum 0.9,
weight decay 5e-4, batch 64) with a one-cycle learning rate (peak 0.1) whose clock is the
fraction of a wall-clock budget used (20% rising, then cosine to 0), so the run uses the whole
budget whatever share of the CPU it gets; the number of steps it reached is recorded. The
paper's augmentation (4-pixel pad + 32x32 crop + horizontal flip) is applied, on the JPEG
copy of CIFAR-10 (decoded by
``scripts/cifar10_jpg_to_npz.py``). The step count, epochs and test accuracy go into the weights
file's metadata and docs/model_cards.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from convzoo import create_model, save_weights
from convzoo.data.presets import DataPreset, apply_preset

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--npz", default="/tmp/convzoo-cache/cifar10-jpg.npz")
    ap.add_argument("--budget-min", type=float, default=55.0)
    ap.add_argument("--out", default="runs/resnet20-cifar10")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    arrays = np.load(args.npz)
    train_x, train_y = torch.from_numpy(arrays["train_x"]), torch.from_numpy(arrays["train_y"])
    test_x, test_y = torch.from_numpy(arrays["test_x"]), torch.from_numpy(arrays["test_y"])
    classes = [str(c) for c in arrays["classes"]]
    train_p = DataPreset(mean=CIFAR_MEAN, std=CIFAR_STD, crop_padding=4, hflip=True)
    test_p = DataPreset(mean=CIFAR_MEAN, std=CIFAR_STD)

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = create_model("resnet20", num_classes=10)
    opt = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    n, b = len(train_y), args.batch_size
    spe = n // b  # drop the last partial batch
    budget_s = args.budget_min * 60 - (time.time() - t_start)
    train_budget = 0.93 * budget_s  # the rest for the final evaluation and saving
    step = 0
    log = open(out / "log.txt", "a")

    def lr_at(frac: float) -> float:
        if frac < 0.2:
            return args.lr * (1 / 25 + (1 - 1 / 25) * frac / 0.2)
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - 0.2) / 0.8)))

    t_train = time.time()
    epoch = 0
    done = False
    while not done:
        epoch += 1
        order = torch.randperm(n, generator=gen)
        model.train()
        for i in range(spe):
            frac = (time.time() - t_train) / train_budget
            if frac >= 1.0:
                done = True
                break
            idx = order[i * b : (i + 1) * b]
            x = apply_preset(train_x[idx], train_p, train=True, generator=gen)
            for g in opt.param_groups:
                g["lr"] = lr_at(frac)
            loss = F.cross_entropy(model(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 50 == 0:
                print(
                    f"epoch {epoch} step {step} loss {loss.item():.4f} lr {lr_at(frac):.4f} "
                    f"{time.time() - t_start:.0f}s",
                    file=log,
                    flush=True,
                )
            if step % 500 == 0:
                torch.save(model.state_dict(), out / "partial.pt")
    total = step

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test_y), 500):
            x = apply_preset(test_x[i : i + 500], test_p, train=False)
            correct += int((model(x).argmax(1) == test_y[i : i + 500]).sum())
    acc = correct / len(test_y)
    meta = {
        "data": "cifar10",
        "data_source": "../shared/data/cifar10-jpg.tar.gz (JPEG q~75)",
        "recipe": f"shortened resnet-cifar: {total} steps ({total / spe:.2f} epochs) of batch {b}, "
        f"SGD Nesterov 0.9, wd 5e-4, one-cycle lr peak {args.lr} over a "
        f"{args.budget_min:g}-minute wall-clock budget (20% up, cosine down), "
        "4-px pad + crop + flip, seed 0",
        "top1_acc": acc,
        "date": date.today().isoformat(),
        "steps": total,
        "epochs": round(total / spe, 3),
        "train_time_s": round(time.time() - t_train, 1),
    }
    save_weights(
        out / "model.safetensors",
        model,
        model_name="resnet20",
        model_args={"num_classes": 10, "in_chans": 3},
        classes=classes,
        extra=meta,
    )
    (out / "final.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"done: test top-1 {acc:.4f}", file=log, flush=True)


if __name__ == "__main__":
    main()
