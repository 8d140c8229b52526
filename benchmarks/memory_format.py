"""One training step in NCHW (torch's default layout) against NHWC (``--channels-last``).

    python benchmarks/memory_format.py [--model lenet5] [--batch-size 128] [--threads N]
        [--repeats 7] [--steps 60] [--device cpu|cuda]

The step is what ``convzoo train`` runs: forward, cross-entropy with label smoothing 0.1,
backward, SGD Nesterov with weight decay. Both layouts start from the same weights and batch;
they are timed in turn (NCHW, NHWC, NCHW, ...) ``--repeats`` times after a warm-up, and the
medians and their ratio are printed. The input has the model's own size
(``convzoo.model_info(NAME).input_size``: 1x28x28 for lenet5, 3x32x32 for resnet20, 3x224x224
for resnet18); the pixels do not change the time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from convzoo import create_model, model_info


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=60, help="steps per timing")
    ap.add_argument("--device", default="cpu")
    return ap.parse_args()


def _arm(name: str, channels_last: bool, device: torch.device, batch: tuple):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    x, y = batch[0].contiguous(memory_format=fmt), batch[1]

    def steps(n: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) / n

    return steps


def main() -> None:
    args = _parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = model_info(args.model)
    chans, h, w = info.input_size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, chans, h, w, generator=g).to(device)
    y = torch.randint(0, 10, (args.batch_size,), generator=g).to(device)
    arms = {"NCHW": _arm(args.model, False, device, (x, y)),
            "NHWC (channels-last)": _arm(args.model, True, device, (x, y))}
    times: dict[str, list[float]] = {k: [] for k in arms}
    for steps in arms.values():
        steps(max(3, args.steps // 6))  # warm-up: oneDNN primitives, allocator
    for _ in range(args.repeats):
        for k, steps in arms.items():
            times[k].append(steps(args.steps))
    base = statistics.median(times["NCHW"])
    print(f"{info.name}, batch {args.batch_size}, {chans}x{h}x{w}, {device}, "
          f"{torch.get_num_threads()} thread(s), medians of {args.repeats} x {args.steps} steps")
    for k, v in times.items():
        med = statistics.median(v)
        print(f"  {k:22s} {med * 1e3:8.2f} ms/step  {args.batch_size / med:9.0f} img/s  "
              f"{base / med:5.2f}x NCHW's speed (min {min(v) * 1e3:.2f}, max {max(v) * 1e3:.2f})")


if __name__ == "__main__":
    main()
