"""``im2col``: convolution is one matrix product (the lecture's im2col picture), on real layers.

For convolutions of LeNet-5, AlexNet, VGG-16 and ResNet-18 (shapes taken from the zoo models
themselves, batch 1): the im2col matrix (C*kh*kw, OH*OW), its memory blow-up over the input
(about kh*kw / stride^2), and the time of four implementations of the same layer:

- the definition as loops (``convzoo.scratch.conv2d_naive``; on the big layers timed on a few
  output channels and scaled up, as the page says),
- NumPy im2col (``convzoo.scratch.im2col``) + one GEMM,
- ``convzoo.gemm.conv2d`` (torch unfold + matmul),
- the native convolution (``torch.nn.functional.conv2d``),

against the machine's GEMM rate for the very same matrix shapes (torch.matmul) and for a large
square GEMM. The im2col output is checked against the loops (max |difference|).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._plots import figure, save
from ._registry import Experiment, Outcome, PaperSetup, register_experiment
from ._training import Context
from .analysis import format_mean_spread, mean_spread
from .verdict import AGREES, DISAGREES, PARTLY, Verdict

MAX_DIFF = 1e-3  # float32: im2col + GEMM sums in another order than the loops
MIN_SPEEDUP = 10.0  # "at GEMM speed": at least this many times the Python loops


def judge(max_diff: float, min_speedup: float) -> Verdict:
    """The same numbers as the definition (to float32 rounding), and much faster than loops."""
    if not max_diff < MAX_DIFF:  # also NaN
        return Verdict(DISAGREES, f"im2col + GEMM differs from the loops by {max_diff:.1e} "
                                  f"(more than float32 rounding, {MAX_DIFF:g})")
    if min_speedup < MIN_SPEEDUP:
        return Verdict(PARTLY, f"the results match, but the speed-up over the loops is only "
                               f"{min_speedup:.1f}x on some layer")
    return Verdict(AGREES, "the matrix product gives the same numbers as the definition and "
                           "turns a Python loop nest into one call at GEMM speed "
                           f"(at least {min_speedup:.0f}x faster here)")

# (model, indices of its convolutions in forward order, labels)
LAYERS: tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...] = (
    ("lenet5", (0, 1), ("LeNet-5 C1", "LeNet-5 C3")),
    ("alexnet", (0, 1), ("AlexNet conv1", "AlexNet conv2")),
    ("vgg16", (4,), ("VGG-16 conv3_1",)),
    ("resnet18", (0, 1), ("ResNet-18 conv1", "ResNet-18 layer1.0.conv1")),
)


@dataclass(frozen=True)
class Params:
    models: tuple[str, ...] = ("lenet5", "alexnet", "vgg16", "resnet18")
    repeats: int = 5  # timing repeats per seed (median)
    naive_channels: int = 4  # output channels the loop version computes on the big layers
    naive_full_below: int = 20_000  # output elements under which the loops do the whole layer
    gemm_size: int = 1024  # side of the square GEMM that gives the machine's reference rate


@dataclass
class Layer:
    label: str
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def find_layers(model: str, indices: tuple[int, ...], labels: tuple[str, ...]) -> list[Layer]:
    """The given convolutions of a zoo model with their input shapes (a shape-only pass)."""
    from ..analysis.summary import build_for_summary
    from ..registry import model_info

    info = model_info(model)
    net = build_for_summary(model, device="meta")
    found: list[Layer] = []

    def hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
        found.append(Layer("", tuple(args[0].shape), tuple(mod.weight.shape), tuple(mod.stride),
                           tuple(mod.padding)))

    handles = [m.register_forward_pre_hook(hook) for m in net.modules()
               if isinstance(m, nn.Conv2d) and m.groups == 1 and m.dilation == (1, 1)]
    with torch.no_grad():
        net(torch.empty(1, *info.input_size, device="meta"))
    for h in handles:
        h.remove()
    out = []
    for i, label in zip(indices, labels, strict=False):
        layer = found[i]
        layer.label = label
        out.append(layer)
    return out


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def measure(layer: Layer, p: Params, seed: int) -> dict[str, Any]:
    from .. import gemm
    from ..scratch import conv2d_naive, im2col

    rng = np.random.default_rng(seed)
    n, c, h, w = layer.x_shape
    co, _, kh, kw = layer.w_shape
    x = rng.standard_normal(layer.x_shape, dtype=np.float32)
    wt = (rng.standard_normal(layer.w_shape, dtype=np.float32) / np.sqrt(c * kh * kw)).astype(
        np.float32)
    (ph, pw), (sh, sw) = layer.padding, layer.stride
    pad4 = (ph, ph, pw, pw)

    def numpy_gemm() -> np.ndarray:
        cols, (oh, ow) = im2col(x, (kh, kw), (sh, sw), pad4)  # (C*kh*kw, N*OH*OW)
        return (wt.reshape(co, -1) @ cols).reshape(co, n, oh, ow).transpose(1, 0, 2, 3)

    y_np = numpy_gemm()
    oh, ow = y_np.shape[2:]
    k_dim, l_dim = c * kh * kw, n * oh * ow
    macs = co * k_dim * l_dim
    t_np = _median_ms(numpy_gemm, p.repeats)
    # The loops: the whole layer when small, else the first few output channels, scaled up.
    k_out = co if co * oh * ow <= p.naive_full_below else min(p.naive_channels, co)
    y_naive = conv2d_naive(x, wt[:k_out], None, stride=(sh, sw), padding=(ph, pw))
    t_naive = _median_ms(lambda: conv2d_naive(x, wt[:k_out], None, stride=(sh, sw),
                                              padding=(ph, pw)), 1) * co / k_out
    max_diff = float(np.abs(y_naive - y_np[:, :k_out]).max())
    xt, wtt = torch.from_numpy(x), torch.from_numpy(wt)
    with torch.no_grad():
        t_gemm = _median_ms(lambda: gemm.conv2d(xt, wtt, None, (sh, sw), (ph, pw)), p.repeats)
        t_native = _median_ms(lambda: F.conv2d(xt, wtt, None, (sh, sw), (ph, pw)), p.repeats)
        a, b = torch.randn(co, k_dim), torch.randn(k_dim, l_dim)
        t_mm = _median_ms(lambda: torch.matmul(a, b), p.repeats)
        sq = torch.randn(p.gemm_size, p.gemm_size)
        t_sq = _median_ms(lambda: torch.matmul(sq, sq), p.repeats)
    gf = lambda ms: 2 * macs / (ms / 1000) / 1e9  # noqa: E731  GFLOP/s (2 FLOPs per multiply-add)
    return {
        "x": "x".join(map(str, layer.x_shape[1:])),
        "kernel": f"{co}x{c}x{kh}x{kw}/{sh}",
        "cols": f"{k_dim} x {l_dim}",
        "blowup": k_dim * l_dim / (c * h * w),
        "mmacs": macs / 1e6,
        "naive_ms": t_naive, "naive_extrapolated": k_out < co,
        "numpy_ms": t_np, "gemm_ms": t_gemm, "native_ms": t_native, "matmul_ms": t_mm,
        "numpy_gflops": gf(t_np), "gemm_gflops": gf(t_gemm), "native_gflops": gf(t_native),
        "matmul_gflops": gf(t_mm), "peak_gflops": 2 * p.gemm_size ** 3 / (t_sq / 1000) / 1e9,
        "max_diff": max_diff,
    }


def run(ctx: Context, p: Params) -> Outcome:
    from ..registry import list_models

    registered = set(list_models())
    layers: list[Layer] = []
    missing = []
    for model, idx, labels in LAYERS:
        if model not in p.models:
            continue
        if model not in registered:
            missing.append(model)
            continue
        layers += find_layers(model, idx, labels)
    per_layer: dict[str, list[dict[str, Any]]] = {}
    for layer in layers:
        ctx.say(f"  {layer.label}: input {layer.x_shape}, weight {layer.w_shape}")
        per_layer[layer.label] = [measure(layer, p, s) for s in ctx.seeds]

    def ms(key: str, rs: list[dict[str, Any]], fmt: str = ".3g") -> str:
        return format_mean_spread([r[key] for r in rs], fmt)

    rows = []
    for label, rs in per_layer.items():
        r0 = rs[0]
        rows.append({
            "layer": label, "x": r0["x"], "kernel": r0["kernel"], "cols": r0["cols"],
            "blowup": f"{r0['blowup']:.1f}x", "mmacs": f"{r0['mmacs']:.1f}",
            "naive": ms("naive_ms", rs) + (" *" if r0["naive_extrapolated"] else ""),
            "numpy": ms("numpy_ms", rs), "gemm": ms("gemm_ms", rs), "native": ms("native_ms", rs),
            "rates": f"{ms('native_gflops', rs)} / {ms('matmul_gflops', rs)}",
            "diff": f"{max(r['max_diff'] for r in rs):.1e}"})
    fig, (ax_t, ax_b) = figure(2, width=6.0, height=4.2)
    labels = list(per_layer)
    methods = (("naive_ms", "loops (definition)"), ("numpy_ms", "NumPy im2col + GEMM"),
               ("gemm_ms", "convzoo.gemm (torch)"), ("native_ms", "native conv"))
    width = 0.8 / len(methods)
    for j, (key, name) in enumerate(methods):
        vals = [mean_spread([r[key] for r in per_layer[lab]])[0] for lab in labels]
        ax_t.bar([i + j * width for i in range(len(labels))], vals, width, label=name)
    ax_t.set(yscale="log", ylabel="ms per image (batch 1)", title="time per layer")
    ax_t.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=35,
                    ha="right", fontsize=7)
    ax_b.bar(range(len(labels)), [per_layer[lab][0]["blowup"] for lab in labels],
             color="tab:purple")
    ax_b.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=7)
    ax_b.set(ylabel="im2col elements / input elements", title="memory blow-up of im2col")
    save(fig, ctx.plot_path, title="Convolution as a matrix product")

    all_rs = [r for rs in per_layer.values() for r in rs]
    speedups = [r["naive_ms"] / r["numpy_ms"] for r in all_rs]
    eff = [r["native_gflops"] / r["peak_gflops"] for r in all_rs]
    worst = max(r["max_diff"] for r in all_rs) if all_rs else float("nan")
    peak = mean_spread([r["peak_gflops"] for r in all_rs])[0] or 0.0
    raw = {label: rs for label, rs in per_layer.items()}
    measured = (
        f"On {len(labels)} layers, NumPy im2col + one GEMM gives the loops' result to "
        f"{worst:.1e} (max |difference|, float32) and runs {min(speedups):.0f}x to "
        f"{max(speedups):.0f}x faster than the loops. The machine's {p.gemm_size}x{p.gemm_size} "
        f"GEMM runs at {peak:.1f} GFLOP/s; the native convolution reaches "
        f"{100 * min(eff):.0f}% to {100 * max(eff):.0f}% of that. The im2col matrix is "
        f"{min(r['blowup'] for r in all_rs):.1f}x to {max(r['blowup'] for r in all_rs):.1f}x the "
        "input (about kh*kw / stride^2): the price of turning the convolution into one GEMM. "
        "Times are medians of the repeats, mean ± std over seeds (fresh random inputs); "
        "'*' marks loop times measured on a few output channels and scaled to all of them. "
        "'GFLOP/s native / GEMM' is the native convolution's rate and that of torch.matmul on "
        "the layer's own GEMM shape (C_out x C*kh*kw) @ (C*kh*kw x OH*OW).")
    verdict = judge(worst, min(speedups))
    return Outcome(
        columns=[("layer", "layer"), ("x", "input CxHxW"), ("kernel", "weight Co x C x kh x kw/s"),
                 ("cols", "im2col matrix"), ("blowup", "blow-up"), ("mmacs", "M MACs"),
                 ("naive", "loops ms"), ("numpy", "NumPy im2col+GEMM ms"),
                 ("gemm", "convzoo.gemm ms"), ("native", "native ms"),
                 ("rates", "GFLOP/s native / GEMM"), ("diff", "max abs diff, loops vs im2col")],
        rows=rows, measured=measured,
        verdict=verdict,
        raw=raw,
        notes=[f"Models not registered in this build, left out: {', '.join(missing)}."]
        if missing else [])


_NA = "not applicable (no training)"
PAPER = PaperSetup(
    source=("Chellapilla, Puri & Simard 2006 (unfolding + BLAS GEMM, their CPU); the lecture's "
            "slide"),
    rows={"architecture": "the convolution layers of their document-recognition CNNs",
          "init": _NA, "optimiser": _NA, "lr": _NA, "batch": _NA,
          "data": "the layer's input (the method does not depend on the values)",
          "preprocessing": _NA, "schedule": _NA,
          "seeds": "timings on one machine"})


def run_setup(p: Params, seeds: int) -> dict[str, str]:
    return {"architecture": f"layers of {', '.join(p.models)}", "init": "random weights",
            "optimiser": _NA, "lr": _NA, "batch": "1 image",
            "data": "random inputs of the layer's shape", "preprocessing": _NA, "schedule": _NA,
            "seeds": f"{seeds} (fresh random inputs each), median of {p.repeats} repeats"}


register_experiment(Experiment(
    name="im2col",
    title="Convolution as a matrix product (im2col + GEMM) on real layers",
    paper="Chellapilla et al. 2006; the lecture's im2col slide",
    claim=("A convolution layer is one matrix product: unfold every receptive field into a "
           "column (im2col) and multiply by the filter matrix; this trades memory (about "
           "kh*kw/stride^2 times the input) for running at the speed of the machine's GEMM."),
    run=run,
    profiles={"smoke": Params(models=("lenet5",), repeats=1, naive_channels=1, gemm_size=128),
              "quick": Params(),
              "full": Params(repeats=20, naive_channels=16)},
    data="none",
    default_seeds={"smoke": 1, "quick": 3, "full": 5},
    paper_setup=PAPER,
    run_setup=run_setup,
))
