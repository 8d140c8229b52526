"""Turn a finished ``convzoo train resnet20 --data folder`` run into the shipped weights file.

    python scripts/ship_resnet20_cifar10.py RUN_DIR CIFAR10_JPG_DIR --command "..." --machine "..."

Scores the run's weights on the 10,000 test images twice: with the training (folder) preset and
with the standard CIFAR-10 mean/std preset (what ``--data cifar10`` and the tests use; stored as
``top1_acc``), then writes ``src/convzoo/pretrained/resnet20-cifar10.safetensors`` with the
recipe, data, step count, accuracies, machine and date in its metadata (docs/model_cards.md).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from convzoo import evaluate, load_trained, read_weights
from convzoo.experiments.data import subset_source
from convzoo.weights import PRETRAINED_DIR, save_weights


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("cifar_dir", type=Path, help="the extracted JPEG copy (train/, test/)")
    ap.add_argument("--command", required=True, help="the training command, for the metadata")
    ap.add_argument("--machine", required=True, help="where it trained, for the metadata")
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR / "resnet20-cifar10.safetensors")
    args = ap.parse_args()
    cfg = json.loads((args.run_dir / "config.json").read_text())
    final = json.loads((args.run_dir / "final.json").read_text())
    own = evaluate(args.run_dir, data_dir=str(args.cifar_dir), device="cpu")
    std_name = subset_source("folder", args.cifar_dir, val_split="test", preset_of="cifar10")
    std = evaluate(args.run_dir / "model.safetensors", data=std_name, device="cpu")
    net, wf, _ = load_trained(args.run_dir)
    recipe = (f"{cfg['epochs']} epochs ({final['steps']:,} steps) of batch {cfg['batch_size']}, "
              f"SGD{' Nesterov' if cfg['nesterov'] else ''} momentum {cfg['momentum']}, "
              f"wd {cfg['wd']:g}, lr {cfg['lr']:g} {cfg['lr_scheduler']} to 0, 4-px pad + crop + "
              f"flip, seed {cfg['seed']}")
    extra = {
        "data": "cifar10", "recipe": recipe, "command": args.command, "machine": args.machine,
        "data_source": "../shared/data/cifar10-jpg.tar.gz (JPEG q~75), decoded as a folder",
        "train_preset": "the folder preset (ImageNet mean/std)",
        "top1_acc_train_preset": own["top1_acc"], "top5_acc_train_preset": own["top5_acc"],
        "top1_acc": std["top1_acc"], "top5_acc": std["top5_acc"],
        "steps": final["steps"], "epochs": cfg["epochs"],
        "train_time_s": round(final["train_time_s"], 1), "date": date.today().isoformat(),
    }
    save_weights(args.out, net, model_name=wf.model, model_args=wf.model_args,
                 classes=wf.classes, extra=extra)
    print(json.dumps(read_weights(args.out).extra, indent=1))


if __name__ == "__main__":
    main()
