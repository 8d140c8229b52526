"""Write the embedded MNIST subset shipped inside the package.

    python scripts/make_mnist_subset.py ../shared/data/mnist src/convzoo/data/embedded/mnist

Takes the first 1,000 images of each digit from the training files (10,000 in all) and the first
200 of each digit from the test files (2,000), in their original order, and writes them as gzip
IDX files (gzip mtime 0, so the output is byte-for-byte reproducible). MNIST is by Yann LeCun,
Corinna Cortes and Christopher J.C. Burges, licensed CC BY-SA 3.0.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

from convzoo.data.datasets import MNIST_FILES
from convzoo.data.idx import read_idx

PER_CLASS = {"train": 1000, "test": 200}


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="folder with the four full MNIST IDX files")
    ap.add_argument("dst", type=Path, help="output folder")
    args = ap.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    for split, (img_stem, lbl_stem) in MNIST_FILES.items():
        images = read_idx(args.src / f"{img_stem}.gz")
        labels = read_idx(args.src / f"{lbl_stem}.gz")
        keep = np.sort(np.concatenate(
            [np.flatnonzero(labels == c)[: PER_CLASS[split]] for c in range(10)]
        ))
        write_idx(args.dst / f"{img_stem}.gz", images[keep])
        write_idx(args.dst / f"{lbl_stem}.gz", labels[keep])
        print(f"{split}: {len(keep)} images -> {args.dst}")


if __name__ == "__main__":
    main()
