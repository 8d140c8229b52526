"""How fast are the first-principles convolutions? Ratios measured in one run, interleaved.

    .venv/bin/python benchmarks/scratch.py --threads 1          # all sections, a few minutes
    .venv/bin/python benchmarks/scratch.py --threads 2 --only conv,gemm

Sections (each prints a table; every ratio is a median over ``--repeats`` interleaved runs):

1. ``naive``: NumPy im2col Conv2d forward vs ``conv2d_naive`` (the loop over output elements) on
   LeNet and AlexNet (2012 paper) layer shapes, batch 1. Target >= 100x.
2. ``conv``: NumPy Conv2d forward + backward vs torch.nn.functional.conv2d forward + backward
   (autograd, all three gradients), float32, LeNet (batch 64) and CIFAR-ResNet (batch 128) shapes,
   and the GFLOP/s reached against this machine's measured GEMM rate. Target <= 3x.
3. ``epoch``: one epoch of LeNet-5 on MNIST, NumPy layers vs torch eager, the same batches
   (BatchLoader, batch 64) and SGD; evaluation excluded. NumPy runs as the engine does:
   ``scratch.BatchParallel`` cuts each batch into ``--threads`` slices, one thread each, with
   BLAS on one thread inside. Target <= 2x.
4. ``gemm``: convzoo.gemm (unfold + matmul) vs nn.Conv2d, forward + backward of whole models
   (convzoo's alexnet, vgg11, resnet18 at 224x224). Target <= 1.5x.

Thread counts are set before NumPy is imported (OPENBLAS/OMP/MKL_NUM_THREADS) and for torch with
torch.set_num_threads; both libraries get the same number (in ``epoch``, NumPy's as slices).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per measurement")
    p.add_argument("--only", default="naive,conv,epoch,gemm", help="comma-separated sections")
    p.add_argument("--epoch-images", type=int, default=None,
                   help="images per 'epoch' (default: all of full MNIST, else the embedded set)")
    p.add_argument("--gemm-batch", type=int, default=4, help="batch of the whole-model section")
    p.add_argument("--max-epoch-repeats", type=int, default=3,
                   help="at most this many of the --repeats for the epoch section")
    return p.parse_args()


ARGS = _parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy (and torch) load their BLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from convzoo import scratch  # noqa: E402

torch.set_num_threads(ARGS.threads)
REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO / ".." / "shared" / "data" / "mnist"


def median(xs: list[float]) -> float:
    return float(np.median(xs))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, object], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each callable, run in turn (a, b, a, b, ...) after a warm-up."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    return {k: median(v) for k, v in times.items()}


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(flush=True)


# ---- shapes: (name, N, C_in, H, C_out, k, stride, pad, groups)
NAIVE_SHAPES = [
    ("LeNet C1 (1x32x32 -> 6, 5x5)", 1, 1, 32, 6, 5, 1, 0, 1),
    ("LeNet C3 (6x14x14 -> 16, 5x5)", 1, 6, 14, 16, 5, 1, 0, 1),
    ("AlexNet conv1 (3x227x227 -> 96, 11x11/4)", 1, 3, 227, 96, 11, 4, 0, 1),
    ("AlexNet conv2 (96x27x27 -> 256, 5x5, 2 groups)", 1, 96, 27, 256, 5, 1, 2, 2),
    ("AlexNet conv3 (256x13x13 -> 384, 3x3)", 1, 256, 13, 384, 3, 1, 1, 1),
]
CONV_SHAPES = [
    ("LeNet C1, batch 64 (1x32x32 -> 6, 5x5)", 64, 1, 32, 6, 5, 1, 0, 1),
    ("LeNet C3, batch 64 (6x14x14 -> 16, 5x5)", 64, 6, 14, 16, 5, 1, 0, 1),
    ("ResNet stage 1, batch 128 (16x32x32 -> 16, 3x3)", 128, 16, 32, 16, 3, 1, 1, 1),
    ("ResNet stage 2, batch 128 (32x16x16 -> 32, 3x3)", 128, 32, 16, 32, 3, 1, 1, 1),
    ("ResNet stage 3, batch 128 (64x8x8 -> 64, 3x3)", 128, 64, 8, 64, 3, 1, 1, 1),
    ("ResNet 1->2 downsample, batch 128 (16x32x32 -> 32, 3x3/2)", 128, 16, 32, 32, 3, 2, 1, 1),
]


def conv_macs(n, c, h, co, k, s, p, g) -> int:
    oh = (h + 2 * p - k) // s + 1
    return n * co * oh * oh * (c // g) * k * k


def gemm_rate() -> tuple[float, float]:
    """GFLOP/s of a 1024^3 float32 matrix product: NumPy (its BLAS) and torch."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    ta = torch.from_numpy(a)
    t = interleaved({"np": lambda: a @ a, "torch": lambda: ta @ ta}, max(3, ARGS.repeats))
    flop = 2 * 1024**3
    return flop / t["np"] / 1e9, flop / t["torch"] / 1e9


def section_naive() -> None:
    print("## NumPy im2col Conv2d vs conv2d_naive, forward, batch 1, float32\n")
    rows = []
    rng = np.random.default_rng(0)
    for name, n, c, h, co, k, s, p, g in NAIVE_SHAPES:
        conv = scratch.Conv2d(c, co, k, stride=s, padding=p, groups=g, rng=rng)
        x = rng.standard_normal((n, c, h, h)).astype(np.float32)
        w, b = conv.params["weight"], conv.params["bias"]
        naive = partial(scratch.conv2d_naive, x, w, b, s, p, 1, g)
        t_naive = timed(naive)  # seconds: once
        t_fast = interleaved({"fast": partial(conv.forward, x)}, ARGS.repeats)["fast"]
        err = np.abs(conv.forward(x) - naive()).max() if t_naive < 2 else float("nan")
        rows.append([name, f"{t_naive * 1e3:.0f}", f"{t_fast * 1e3:.3f}",
                     f"{t_naive / t_fast:.0f}x", f"{err:.1e}"])
    table(["layer", "naive ms", "im2col ms", "speed-up", "max abs diff"], rows)


def _np_fb(conv, x, gout) -> None:
    conv.forward(x)
    conv.backward(gout)


def _torch_fb(tx, tw, tb, tg, s, p, g) -> None:
    tx.grad = tw.grad = tb.grad = None
    F.conv2d(tx, tw, tb, stride=s, padding=p, groups=g).backward(tg)


def section_conv() -> None:
    np_rate, torch_rate = gemm_rate()
    print(f"## NumPy Conv2d vs torch F.conv2d, forward + backward, float32\n\n"
          f"Machine GEMM rate (1024^3 float32, {ARGS.threads} thread(s)): NumPy "
          f"{np_rate:.1f} GFLOP/s, torch {torch_rate:.1f} GFLOP/s\n")
    rows = []
    rng = np.random.default_rng(0)
    for name, n, c, h, co, k, s, p, g in CONV_SHAPES:
        conv = scratch.Conv2d(c, co, k, stride=s, padding=p, groups=g, rng=rng)
        x = rng.standard_normal((n, c, h, h)).astype(np.float32)
        gout = rng.standard_normal(conv.forward(x).shape).astype(np.float32)
        tx = torch.from_numpy(x).requires_grad_(True)
        tw = torch.from_numpy(conv.params["weight"].copy()).requires_grad_(True)
        tb = torch.from_numpy(conv.params["bias"].copy()).requires_grad_(True)
        tg = torch.from_numpy(gout)

        t = interleaved({"np": partial(_np_fb, conv, x, gout),
                         "torch": partial(_torch_fb, tx, tw, tb, tg, s, p, g)}, ARGS.repeats)
        flop = 3 * 2 * conv_macs(n, c, h, co, k, s, p, g)  # forward, dW and dX: 3 GEMMs
        gf = flop / t["np"] / 1e9
        rows.append([name, f"{t['np'] * 1e3:.2f}", f"{t['torch'] * 1e3:.2f}",
                     f"{t['np'] / t['torch']:.2f}x", f"{gf:.1f}", f"{100 * gf / np_rate:.0f}%"])
    table(["layer", "NumPy ms", "torch ms", "NumPy / torch", "NumPy GFLOP/s",
           "of GEMM rate"], rows)


def section_epoch() -> None:
    from convzoo.data import BatchLoader, load_dataset, preset_for
    from convzoo.registry import create_model

    data_dir = str(MNIST_DIR) if (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file() else None
    ds = load_dataset("mnist", data_dir, "train")
    if ARGS.epoch_images:
        ds = ds.subset(torch.arange(min(ARGS.epoch_images, len(ds))))
    preset = preset_for("mnist", in_chans=1, image_size=28, input_size=28)
    # The batches are made once, so both sides time only their training steps.
    batches = [(x, y) for x, y in BatchLoader(ds, preset, batch_size=64, train=True, seed=0)]
    np_batches = [(x.numpy(), y.numpy()) for x, y in batches]
    torch.manual_seed(0)
    tmodel = create_model("lenet5")
    net = scratch.lenet5()
    net.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    nopt = scratch.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss = scratch.CrossEntropyLoss()
    step_net = scratch.BatchParallel(net, ARGS.threads)  # as convzoo's numpy engine trains

    def torch_epoch():
        tmodel.train()
        for x, y in batches:
            out = F.cross_entropy(tmodel(x), y)
            topt.zero_grad(set_to_none=True)
            out.backward()
            topt.step()

    def numpy_epoch():
        for x, y in np_batches:
            loss.forward(step_net.forward(x), y)
            step_net.backward(loss.backward())
            nopt.step()

    reps = max(1, min(ARGS.repeats, ARGS.max_epoch_repeats))
    t = interleaved({"np": numpy_epoch, "torch": torch_epoch}, reps, warmup=0)
    step_net.close()
    n = sum(len(y) for _, y in batches)
    print(f"## One epoch of LeNet-5 on MNIST ({n} images, batch 64, SGD momentum), "
          f"median of {reps}\n")
    table(["engine", "epoch s", "images/s", "NumPy / torch"], [
        ["NumPy (convzoo.scratch)", f"{t['np']:.1f}", f"{n / t['np']:.0f}",
         f"{t['np'] / t['torch']:.2f}x"],
        ["torch eager", f"{t['torch']:.1f}", f"{n / t['torch']:.0f}", "1"],
    ])


def _model_fb(model, x) -> None:
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()


def section_gemm() -> None:
    from convzoo import gemm
    from convzoo.registry import create_model

    b = ARGS.gemm_batch
    print(f"## convzoo.gemm vs nn.Conv2d, whole-model forward + backward, batch {b}, 3x224x224, "
          f"float32, CPU\n")
    rows = []
    for name in ("alexnet", "vgg11", "resnet18"):
        torch.manual_seed(0)
        native = create_model(name)
        converted = gemm.convert(create_model(name))
        converted.load_state_dict(native.state_dict())
        x = torch.randn(b, 3, 224, 224)

        reps = max(1, min(ARGS.repeats, 3))
        t = interleaved({"gemm": partial(_model_fb, converted, x),
                         "native": partial(_model_fb, native, x)}, reps)
        rows.append([name, f"{t['native'] * 1e3:.0f}", f"{t['gemm'] * 1e3:.0f}",
                     f"{t['gemm'] / t['native']:.2f}x"])
    table(["model", "nn.Conv2d ms", "convzoo.gemm ms", "gemm / native"], rows)


def main() -> int:
    print(f"# benchmarks/scratch.py: {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"{ARGS.threads} thread(s) for NumPy and torch; torch {torch.__version__}, "
          f"NumPy {np.__version__}; load average {os.getloadavg()[0]:.1f}\n")
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    sections = {"naive": section_naive, "conv": section_conv, "epoch": section_epoch,
                "gemm": section_gemm}
    for name in ARGS.only.split(","):
        sections[name.strip()]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
