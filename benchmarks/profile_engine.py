"""Where the trainer's time goes, next to the hand-written loop of benchmarks/engine.py.

    python benchmarks/profile_engine.py [--device cuda] [--steps 300] [--model lenet5]
        [--rows 15]

Runs ``convzoo.fit`` and the hand loop on the same in-memory MNIST tensors under
``torch.profiler`` (CPU and, on a GPU, CUDA activity) for ``--steps`` optimizer steps each, and
prints for both: the wall time per step, kernel launches per step, host-device copies and
synchronisations per step, and the top operators by self CPU time. The differences per step are
what the trainer adds on top of the loop (docs/gpu.md records a run on an H100/H200).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from convzoo.data import datasets, load_dataset

try:  # the hand loop and the trainer's settings live in benchmarks/engine.py
    from engine import bench_dataset, minimal_loop, mnist_dir, trainer_epoch
except ImportError:  # run from the repository root
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from engine import bench_dataset, minimal_loop, mnist_dir, trainer_epoch

SYNC_NAMES = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
COPY_NAMES = ("cudaMemcpyAsync", "cudaMemcpy", "Memcpy HtoD", "Memcpy DtoH")


def summarise(prof, steps: int, seconds: float) -> dict:
    events = prof.events()
    names = Counter(e.name for e in events)
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return {
        "ms_per_step": 1000 * seconds / steps,
        "kernels_per_step": kernels / steps,
        "syncs_per_step": sum(names[n] for n in SYNC_NAMES) / steps,
        "copies_per_step": sum(v for k, v in names.items() if any(c in k for c in COPY_NAMES))
        / steps,
        "item_per_step": names["aten::_local_scalar_dense"] / steps,
        "ops_per_step": sum(1 for e in events if e.name.startswith("aten::")) / steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rows", type=int, default=15)
    args = ap.parse_args()
    device = torch.device(args.device)
    train = load_dataset("mnist", mnist_dir(), "train")
    test = load_dataset("mnist", mnist_dir(), "test").subset(torch.arange(500))
    datasets.DATASETS["bench"] = bench_dataset(train, test)
    train.name = test.name = "bench"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    model_args = {"num_classes": 10, "in_chans": 1}
    # Warm-up of both (cuDNN autotuning, allocator, lazy imports) before anything is profiled.
    with tempfile.TemporaryDirectory() as d:
        trainer_epoch(args.model, "bench", args.batch_size, 0.05, 0, 20, Path(d) / "w", device,
                      "none")
    minimal_loop(args.model, train, args.batch_size, 0.05, 0, model_args, 20, device, "none")
    results = {}
    for name in ("trainer", "loop"):
        with tempfile.TemporaryDirectory() as d, profile(activities=activities) as prof:
            t0 = time.perf_counter()
            if name == "trainer":
                seconds = trainer_epoch(args.model, "bench", args.batch_size, 0.05, 0, args.steps,
                                        Path(d) / "t", device, "none")
            else:
                seconds = minimal_loop(args.model, train, args.batch_size, 0.05, 0, model_args,
                                       args.steps, device, "none")
            wall = time.perf_counter() - t0
        results[name] = summarise(prof, args.steps, seconds)
        print(f"\n## {name}: {args.steps} steps, {seconds:.3f} s timed by itself "
              f"({wall:.2f} s under the profiler, with set-up)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    print(f"\ntorch {torch.__version__}, {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"{args.model}, batch {args.batch_size}, {args.steps} steps")
    print("| per step | trainer | hand loop | trainer - loop |")
    print("| --- | ---: | ---: | ---: |")
    for key in results["trainer"]:
        t, lp = results["trainer"][key], results["loop"][key]
        print(f"| {key} | {t:.2f} | {lp:.2f} | {t - lp:+.2f} |")


if __name__ == "__main__":
    main()
