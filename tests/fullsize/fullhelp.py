"""Full-size image folders made by the tests, and helpers to drive the command line.

The images are JPEGs of 120-220 px (random sides, many not square), written once per session with
torchvision.io.encode_jpeg. Each class has its own colour and stripe direction, so that a net can
tell them apart after a few steps. Three layouts:

* ``ilsvrc_dir``: the ILSVRC-2012 layout, ``train/<wnid>/<wnid>_<n>.JPEG`` for three real wnids,
  a flat ``val/`` of ``ILSVRC2012_val_XXXXXXXX.JPEG`` and the Kaggle copy's
  ``LOC_val_solution.csv`` beside them (at the root);
* ``folder_dir``: plain class folders ``train/<class>/`` and ``val/<class>/``;
* ``catdog96_dir``: the issue's opening example, 24 JPEGs of 96x96 px in train/cat, train/dog,
  val/cat, val/dog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.io import encode_jpeg

from convzoo.data import imagenet_classes
from engine.enginehelp import cli_env
from shareddata import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
CONVZOO = Path(sys.executable).with_name("convzoo")  # the console script of this environment

# Three real ILSVRC-2012 classes (index, wnid): tench, goldfish, golden retriever.
IMAGENET_CLASSES = ((0, "n01440764"), (1, "n01443537"), (207, "n02099601"))
FOLDER_CLASSES = ("red", "green", "blue")
TRAIN_PER_CLASS = 4  # 12 training images: 3 steps of batch 4
VAL_PER_CLASS = 2  # 6 validation images
# (R, G, B) base colour and stripe direction of each class: what the nets learn.
LOOKS = (((200, 40, 40), "h"), ((40, 180, 60), "v"), ((50, 60, 210), "d"))
# The device every command of these tests runs on: CONVZOO_TEST_DEVICE=cuda runs them on a GPU
# (scripts/gpu_session.sh, stage `gpu16`); CI has none.
DEVICE = os.environ.get("CONVZOO_TEST_DEVICE", "cpu")


@dataclass(frozen=True)
class Tree:
    """A made image folder: its root, the class names in label order, and the counts."""

    root: Path
    classes: tuple[str, ...]
    n_train: int
    n_val: int
    num_classes: int  # the model's head (1000 for the ImageNet layout)
    data: str  # the --data name
    sample: Path  # one image for predict


def make_image(label: int, height: int, width: int, gen: torch.Generator) -> torch.Tensor:
    """uint8 (3, H, W): the class's colour with stripes of its direction, plus noise."""
    (r, g, b), direction = LOOKS[label % len(LOOKS)]
    ys = torch.arange(height).view(-1, 1).expand(height, width)
    xs = torch.arange(width).view(1, -1).expand(height, width)
    coord = {"h": ys, "v": xs, "d": ys + xs}[direction]
    stripe = ((coord // 12) % 2).to(torch.float32)  # (H, W) 0/1 bands 12 px wide
    base = torch.tensor([r, g, b], dtype=torch.float32).view(3, 1, 1)
    img = base * (0.55 + 0.45 * stripe) + torch.randn(3, height, width, generator=gen) * 12
    return img.clamp(0, 255).to(torch.uint8)


def random_side(gen: torch.Generator, lo: int = 120, hi: int = 220) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def write_jpeg(path: Path, label: int, gen: torch.Generator, size: tuple[int, int] | None = None
               ) -> tuple[int, int]:
    """Write one JPEG; ``size`` (H, W) or random sides in 120-220 (every third one square)."""
    if size is None:
        h = random_side(gen)
        w = h if int(torch.randint(0, 3, (1,), generator=gen)) == 0 else random_side(gen)
        size = (h, w)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        data = encode_jpeg(make_image(label, *size, gen), quality=90)
    path.write_bytes(data.numpy().tobytes())
    return size


def make_ilsvrc(root: Path, seed: int = 0) -> Tree:
    gen = torch.Generator().manual_seed(seed)
    index = json.loads((SHARED_DATA / "imagenet_class_index.json").read_text())
    rows = ["ImageId,PredictionString"]
    n_val = 0
    for label, (cls_index, wnid) in enumerate(IMAGENET_CLASSES):
        assert index[str(cls_index)][0] == wnid  # the wnids are real ILSVRC-2012 classes
        for n in range(TRAIN_PER_CLASS):
            write_jpeg(root / "train" / wnid / f"{wnid}_{n + 1}.JPEG", label, gen)
    # The flat val folder: files numbered across classes, interleaved as in ILSVRC-2012.
    for _ in range(VAL_PER_CLASS):
        for label, (_, wnid) in enumerate(IMAGENET_CLASSES):
            n_val += 1
            image_id = f"ILSVRC2012_val_{n_val:08d}"
            h, w = write_jpeg(root / "val" / f"{image_id}.JPEG", label, gen)
            # Kaggle's boxes: "WNID XMIN YMIN XMAX YMAX", possibly several per image.
            rows.append(f"{image_id},{wnid} 1 2 {w - 3} {h - 4} {wnid} 5 5 20 20 ")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    names = tuple(imagenet_classes()[1][i] for i, _ in IMAGENET_CLASSES)  # torchvision's names
    return Tree(root, names, len(IMAGENET_CLASSES) * TRAIN_PER_CLASS, n_val, 1000, "imagenet",
                root / "val" / "ILSVRC2012_val_00000001.JPEG")


def make_folder(root: Path, seed: int = 1) -> Tree:
    gen = torch.Generator().manual_seed(seed)
    for label, name in enumerate(FOLDER_CLASSES):
        for n in range(TRAIN_PER_CLASS):
            write_jpeg(root / "train" / name / f"{name}_{n:03d}.jpg", label, gen)
        for n in range(VAL_PER_CLASS):
            write_jpeg(root / "val" / name / f"{name}_{n:03d}.jpg", label, gen)
    return Tree(root, FOLDER_CLASSES, len(FOLDER_CLASSES) * TRAIN_PER_CLASS,
                len(FOLDER_CLASSES) * VAL_PER_CLASS, len(FOLDER_CLASSES), "folder",
                root / "val" / FOLDER_CLASSES[1] / f"{FOLDER_CLASSES[1]}_000.jpg")


def make_catdog96(root: Path, seed: int = 2) -> Tree:
    """The issue's example: 6 JPEGs of 96x96 px in train/cat, train/dog, val/cat, val/dog each."""
    gen = torch.Generator().manual_seed(seed)
    for split in ("train", "val"):
        for label, name in enumerate(("cat", "dog")):
            for n in range(6):
                write_jpeg(root / split / name / f"{name}{n}.jpg", label, gen, size=(96, 96))
    return Tree(root, ("cat", "dog"), 12, 12, 2, "folder", root / "val" / "dog" / "dog0.jpg")


def cli_cmd() -> list[str]:
    """The console script (as a user runs it), else ``python -m convzoo`` (a machine with the
    source tree on PYTHONPATH and no install, e.g. a lent GPU)."""
    return [str(CONVZOO)] if CONVZOO.exists() else [sys.executable, "-m", "convzoo"]


def run_cli(*args: str | os.PathLike, timeout: float = 600, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """``convzoo ARGS`` in a subprocess."""
    return subprocess.run([*cli_cmd(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), cwd=cwd)


def call_cli(capsys, *args: str | os.PathLike) -> tuple[int, str, str]:
    """``convzoo.cli.main(ARGS)`` in this process: (exit status, stdout, stderr)."""
    from convzoo.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err
