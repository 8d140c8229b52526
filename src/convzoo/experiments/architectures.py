"""``architectures``: the lecture's comparison across the zoo.

For every ImageNet architecture of the zoo: parameters and multiply-adds (counted by
``convzoo.analysis.summary`` on the model itself, 224x224, 299 for Inception v3), measured CPU/GPU
inference speed (batch 1, median), and ImageNet top-1/top-5 accuracy of torchvision's first
(IMAGENET1K_V1) weights: *quoted* from torchvision's weights enums, and *measured* as well when an
ILSVRC-2012 validation folder is given (``--imagenet DIR``: each network scored with its weights,
fetched once, and their own eval transform). One plot of accuracy against multiply-adds. Then the
small-image variants are trained on CIFAR-10 within the profile's budget and their accuracy
reported (quick: far from converged, and said so).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ..engine import TrainConfig
from ._common import cifar_data, pct, train_arms
from ._plots import figure, save
from ._registry import Experiment, Outcome, PaperSetup, register_experiment
from ._training import Context
from .verdict import NOT_COMPARABLE, Verdict

SOURCE = ("torchvision 0.29 ImageNet weights IMAGENET1K_V1 (ILSVRC-2012 val, single centre "
          "crop), read from torchvision's installed weights enums")
TAG = "IMAGENET1K_V1"  # the weights closest to each paper's own training
FULL_MODELS = ("alexnet", "vgg11", "vgg16", "vgg19", "vgg16_bn", "googlenet", "inception_v3",
               "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121",
               "densenet169", "densenet201", "densenet161")


def quoted_accuracy(name: str) -> tuple[float | None, float | None]:
    """(top-1 %, top-5 %) torchvision publishes for ``name``'s IMAGENET1K_V1 weights."""
    from ..errors import ConvzooError
    from ..hub import imagenet_weights

    try:
        m = imagenet_weights(name, TAG).metrics
    except ConvzooError:
        return None, None
    return m.get("acc@1"), m.get("acc@5")


def measured_accuracy(name: str, imagenet: str, device: str) -> tuple[float, float, int]:
    """(top-1 %, top-5 %, images) of ``name:IMAGENET1K_V1`` scored on the ILSVRC folder."""
    from ..analysis.evaluation import evaluate

    ev = evaluate(f"{name}:{TAG}", data="imagenet", data_dir=imagenet, device=device,
                  batch_size=64)
    return 100 * ev["top1_acc"], 100 * ev["top5_acc"], int(ev["n"])


def judge() -> Verdict:
    """A comparison table, not one claim: nothing here is reproduced that could disagree."""
    return Verdict(NOT_COMPARABLE, "a comparison table, not a single claim: the counted "
                                   "parameters and multiply-adds can be checked against the "
                                   "papers (REFERENCES.md), the accuracies are quoted, not "
                                   "reproduced")


@dataclass(frozen=True)
class Params:
    models: tuple[str, ...] = ("alexnet", "vgg16", "googlenet", "inception_v3", "resnet18",
                               "resnet50", "resnet152", "densenet121")
    repeats: int = 3  # timing repeats (median), batch 1
    cifar_models: tuple[str, ...] = ("lenet", "resnet20")
    n_train: int | None = 5000
    n_test: int | None = 2000  # test images (None: all 10,000)
    epochs: int = 3
    batch_size: int = 128
    max_steps: int | None = None
    input_size: int | None = None  # tests: a smaller input for the speed measurement
    imagenet: str | None = None  # an ILSVRC-2012 val folder: measure the accuracy columns too


def _latency_ms(name: str, size: tuple[int, int, int], device: str, repeats: int) -> float:
    from ..registry import create_model

    net = create_model(name).eval().to(device)
    x = torch.randn(1, *size, device=device)
    with torch.inference_mode():
        net(x)
        times = []
        for _ in range(repeats):
            if x.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            net(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _measured_cells(r: dict, imagenet: str | None) -> dict[str, str]:
    if not imagenet:
        return {}
    if "top1_measured" not in r:
        return {"top1_m": "–", "top5_m": "–"}
    return {"top1_m": f"{r['top1_measured']:.1f}", "top5_m": f"{r['top5_measured']:.1f}"}


def run(ctx: Context, p: Params) -> Outcome:
    from ..analysis.summary import summarize
    from ..registry import list_models, model_info

    registered = set(list_models())
    rows, raw, missing = [], {}, []
    for name in p.models:
        if name not in registered:
            missing.append(name)
            continue
        info = model_info(name)
        size = info.input_size if p.input_size is None else (3, p.input_size, p.input_size)
        s = summarize(name, size)
        lat = [_latency_ms(name, size, ctx.device, p.repeats) for _ in ctx.seeds]
        top1, top5 = quoted_accuracy(name)
        raw[name] = {"params": s.params, "gmacs": s.macs / 1e9, "latency_ms": lat,
                     "top1": top1, "top5": top5, "input": list(size)}
        if p.imagenet and top1 is not None:
            m1, m5, n = measured_accuracy(name, p.imagenet, ctx.device)
            raw[name].update(top1_measured=m1, top5_measured=m5, n_val=n)
        ctx.say(f"  {name}: {s.params / 1e6:.1f}M params, {s.macs / 1e9:.2f} GMACs, "
                f"{statistics.mean(lat):.0f} ms")
        from .analysis import format_mean_spread

        rows.append({"model": name, "input": "x".join(map(str, size)),
                     "params": f"{s.params / 1e6:.2f}M", "gmacs": f"{s.macs / 1e9:.3f}",
                     "ms": format_mean_spread(lat, ".3g"),
                     "top1": "–" if top1 is None else f"{top1:.1f}",
                     "top5": "–" if top5 is None else f"{top5:.1f}", "cifar": "",
                     **_measured_cells(raw[name], p.imagenet)})
    cifar_acc = {}
    if p.cifar_models and p.epochs:
        data, data_dir = cifar_data(ctx, n_train=p.n_train, n_test=p.n_test)
        arms = {m: TrainConfig(model=m, data=data, data_dir=data_dir, epochs=p.epochs,
                               max_steps=p.max_steps, batch_size=p.batch_size, lr=0.05,
                               lr_scheduler="onecycle") for m in p.cifar_models
                if m in registered}
        for m, rs in train_arms(ctx, arms).items():
            accs = [None if r.test_err is None else 1 - r.test_err for r in rs]
            cifar_acc[m] = accs
            s = summarize(m)
            raw[f"{m} (CIFAR-10)"] = {"params": s.params, "gmacs": s.macs / 1e9,
                                      "cifar10_test_acc": accs}
            rows.append({"model": m, "input": "3x32x32", "params": f"{s.params / 1e6:.2f}M",
                         "gmacs": f"{s.macs / 1e9:.4f}", "ms": "", "top1": "", "top5": "",
                         "cifar": pct(accs)})
    fig, (ax,) = figure(1, width=6.5, height=4.5)
    for name, r in raw.items():
        if r.get("top1") is None:
            continue
        ax.scatter(r["gmacs"], r["top1"], s=20 + r["params"] / 1e6 * 2, alpha=0.6)
        ax.annotate(name, (r["gmacs"], r["top1"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xscale="log", xlabel="GMACs per image (counted here)",
           ylabel="ImageNet top-1 (%) (quoted, torchvision)",
           title="accuracy vs multiply-adds (marker area ~ parameters)")
    save(fig, ctx.plot_path)
    cifar_text = "; ".join(f"{m} {pct(a)} %" for m, a in cifar_acc.items())
    measured = (
        "Parameters and multiply-adds are counted on the zoo's own models; inference latency is "
        f"measured at batch 1 on {ctx.device} (median of {p.repeats}, mean ± std over "
        f"{len(ctx.seeds)} repetitions); ImageNet accuracy is quoted from {SOURCE}"
        + (f", and measured here on {p.imagenet} with the same weights and their own eval "
           f"transform." if p.imagenet else ".")
        + (f" CIFAR-10 test accuracy after {p.epochs} epoch(s) on {p.n_train or 50000} images "
           f"(far from converged on the quick profile): {cifar_text}." if cifar_acc else ""))
    return Outcome(
        columns=[("model", "model"), ("input", "input"), ("params", "params"),
                 ("gmacs", "GMACs"), ("ms", "latency ms (batch 1)"),
                 ("top1", "ImageNet top-1 % (quoted)"), ("top5", "top-5 % (quoted)"),
                 *([("top1_m", "top-1 % (measured)"), ("top5_m", "top-5 % (measured)")]
                   if p.imagenet else []),
                 ("cifar", "CIFAR-10 test acc % (trained here)")],
        rows=rows, measured=measured, verdict=judge(),
        raw=raw,
        notes=[f"Not registered in this build, left out: {', '.join(missing)}."]
        if missing else [])


PAPER = PaperSetup(
    source=SOURCE,
    rows={"architecture": "torchvision's ImageNet models (alexnet is the one-GPU 2014 variant)",
          "init": "trained weights", "optimiser": "each model's own recipe (torchvision)",
          "lr": "each model's own recipe", "batch": "each model's own recipe",
          "data": "ILSVRC-2012 (1.28M training images, 50,000 validation)",
          "preprocessing": "resize 256 (232 for V2 ResNets, 342 for inception_v3), centre "
                           "crop 224 (299)",
          "schedule": "each model's own recipe", "seeds": "one published set of weights"})


def run_setup(p: Params, seeds: int) -> dict[str, str]:
    quoted = "quoted, not measured (no ImageNet here)"
    return {"architecture": f"the zoo's {', '.join(p.models)}; trained: "
                            f"{', '.join(p.cifar_models) or 'none'}",
            "init": "ImageNet part: " + (f"torchvision's {TAG} weights, measured on "
                                         f"{p.imagenet}" if p.imagenet else quoted)
            + "; CIFAR part: each model's default",
            "optimiser": "CIFAR part: SGD (TrainConfig defaults)", "lr": "CIFAR part: "
            "one-cycle, peak 0.05", "batch": f"CIFAR part: {p.batch_size}",
            "data": f"CIFAR part: CIFAR-10, {p.n_train or 50000} training images",
            "preprocessing": "CIFAR part: the cifar10 preset (normalised, pad + crop + flip)",
            "schedule": f"CIFAR part: {p.epochs} epochs",
            "seeds": f"{seeds} (timing repetitions, CIFAR runs)"}


register_experiment(Experiment(
    name="architectures",
    title="The zoo compared: parameters, multiply-adds, speed, accuracy",
    paper="torchvision weights tables; AlexNet/VGG/GoogLeNet/ResNet/DenseNet papers",
    claim=("Accuracy has risen from AlexNet to ResNet and DenseNet while multiply-adds did not "
           "rise with it: VGG-16 spends about 15.5 GMACs for 71.6% top-1, ResNet-50 about 4.1 "
           "for 76.1%, GoogLeNet 1.5 for 69.8%."),
    run=run,
    profiles={"smoke": Params(models=("resnet18",), repeats=1, cifar_models=("lenet",),
                             n_train=100, n_test=50, epochs=1, batch_size=50, max_steps=1,
                             input_size=64),
              "quick": Params(),
              "full": Params(models=FULL_MODELS, repeats=10,
                             cifar_models=("lenet", "alexnet_cifar", "vgg16_cifar", "resnet20",
                                           "resnet56", "densenet_bc100"),
                             n_train=None, n_test=None, epochs=30)},
    data="cifar10",
    default_seeds={"smoke": 1, "quick": 1, "full": 3},
    quick_note="latency on batch 1 only; lenet and resnet20 trained 3 epochs on 5,000 images.",
    paper_setup=PAPER,
    run_setup=run_setup,
))
