"""One training step in NCHW (torch's default layout) against NHWC (``--channels-last``).

    python benchmarks/memory_format.py [--model lenet5] [--batch-size 128] [--threads N]
        [--rounds 7] [--device cpu|cuda]

Each timing is ``convzoo bench``'s (:func:`convzoo.analysis.bench.bench_model`: forward,
cross-entropy, backward, SGD step on a freshly initialised model at its own input size,
``convzoo.model_info(NAME).input_size``), once without and once with ``channels_last``, in turn
(NCHW, NHWC, NCHW, ...) for ``--rounds`` rounds; the medians of the training images/s and their
ratio are printed. The pixels do not change the time.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from convzoo.analysis.bench import bench_model

LAYOUTS = {"NCHW": False, "NHWC (channels-last)": True}


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    return ap.parse_args()


def main() -> None:
    args = _parse()
    rates: dict[str, list[float]] = {k: [] for k in LAYOUTS}
    last = None
    for _ in range(args.rounds):
        for name, channels_last in LAYOUTS.items():
            last = bench_model(args.model, batch_size=args.batch_size, device=args.device,
                               channels_last=channels_last, threads=args.threads, repeats=3)
            rates[name].append(last.train_images_per_s)
    base = statistics.median(rates["NCHW"])
    c, h, w = last.input_shape
    print(f"{args.model}, batch {args.batch_size}, {c}x{h}x{w}, {last.device}, "
          f"{last.threads} thread(s), torch {torch.__version__}; medians of {args.rounds} "
          "rounds of convzoo bench's training step")
    for name, v in rates.items():
        med = statistics.median(v)
        print(f"  {name:22s} {1e3 * args.batch_size / med:8.2f} ms/step  {med:9.0f} img/s  "
              f"{med / base:5.2f}x NCHW's speed (min {min(v):.0f}, max {max(v):.0f} img/s)")


if __name__ == "__main__":
    main()
