"""The zoo comparison of docs/zoo_comparison.md: parameters, GMACs (convzoo summary), measured CPU
speed, and published ImageNet top-1/top-5 (torchvision 0.29, ../shared/REFERENCES.md), plus a
plot of top-1 accuracy against multiply-adds.

    .venv/bin/python benchmarks/zoo_table.py --out docs/zoo_comparison_table.md \
        --plot docs/zoo_accuracy_vs_macs.png

Each model is the registered convzoo ImageNet form with that torchvision name when there is one
(else torchvision's builder), freshly initialised (speed does not depend on the weights). Speed:
batch-1 latency and inference images/s at batch --batch (default 8), median of --repeats runs
after one warm-up, torch.inference_mode, float32, on whatever CPU this runs on (printed in
the table's header).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torchvision

from convzoo import create_model, list_models, model_info
from convzoo.analysis.compare import plot_accuracy_vs_macs
from convzoo.analysis.summary import summarize

# name: (acc@1, acc@5) from ../shared/REFERENCES.md (torchvision 0.29 Weights.meta, V1 weights).
PUBLISHED = {
    "alexnet": (56.522, 79.066), "vgg11": (69.020, 88.628), "vgg13": (69.928, 89.246),
    "vgg16": (71.592, 90.382), "vgg19": (72.376, 90.876), "vgg16_bn": (73.360, 91.516),
    "googlenet": (69.778, 89.530), "inception_v3": (77.294, 93.450),
    "resnet18": (69.758, 89.078), "resnet34": (73.314, 91.420), "resnet50": (76.130, 92.862),
    "resnet101": (77.374, 93.546), "resnet152": (78.312, 94.046),
    "densenet121": (74.434, 91.972), "densenet169": (75.600, 92.806),
    "densenet201": (76.896, 93.370), "densenet161": (77.138, 93.560),
}


def build(tv_name: str):
    for name in list_models():
        if model_info(name).torchvision_name == tv_name:
            return name, create_model(name)
    kwargs = {"aux_logits": False, "init_weights": False} if tv_name in (
        "googlenet", "inception_v3") else {}
    return f"torchvision.{tv_name}", getattr(torchvision.models, tv_name)(**kwargs)


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/zoo_comparison_table.md")
    ap.add_argument("--plot", default="docs/zoo_accuracy_vs_macs.png")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="batch size of the images/s figure")
    ap.add_argument("--models", nargs="*", default=list(PUBLISHED))
    args = ap.parse_args()
    rows = []
    for tv in args.models:
        source, model = build(tv)
        side = 299 if tv == "inception_v3" else 224
        s = summarize(model, (3, side, side))
        model.eval()
        x1, xb = torch.randn(1, 3, side, side), torch.randn(args.batch, 3, side, side)
        with torch.inference_mode():
            lat = timed(lambda m=model, x=x1: m(x), args.repeats)
            ips = args.batch / timed(lambda m=model, x=xb: m(x), args.repeats)
        top1, top5 = PUBLISHED[tv]
        rows.append((tv, source, side, s.params, s.macs / 1e9, lat * 1000, ips, top1, top5))
        print(f"{tv:<14} {s.params:>12,} {s.macs / 1e9:8.3f} GMACs {lat * 1000:9.1f} ms "
              f"{ips:7.2f} img/s", flush=True)
    machine = (f"{torch.get_num_threads()}-thread {platform.machine()} CPU "
               f"({platform.processor() or 'cpu'}), torch {torch.__version__.split('+')[0]}")
    lines = [f"Measured on: {machine}; median of {args.repeats} run(s).", "",
             "| model | built from | input | params | GMACs | CPU latency, batch 1 (ms) | "
             f"CPU images/s, batch {args.batch} | top-1 % | top-5 % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for tv, source, side, params, gmacs, lat, ips, top1, top5 in rows:
        lines.append(f"| {tv} | {source} | {side} | {params:,} | {gmacs:.3f} | {lat:.0f} | "
                     f"{ips:.1f} | {top1:.2f} | {top5:.2f} |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    plot_accuracy_vs_macs([(r[0], r[4], r[7] / 100) for r in rows], args.plot,
                          title="ImageNet top-1 (published, torchvision 0.29) vs multiply-adds",
                          ylabel="ILSVRC-2012 val top-1 accuracy (%)",
                          sizes=[max(20, r[3] / 4e5) for r in rows])
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
