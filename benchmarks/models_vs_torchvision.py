"""Throughput of convzoo's ImageNet forms against torchvision's twins, measured in the same run.

For every registered model with a ``torchvision_name`` (or the subset given by ``--models``), both
models are built with the same options, convzoo's gets torchvision's weights, and each repeat times
one forward (eval, no_grad) and one forward+backward (train mode, sum of the logits as the loss) of
convzoo and torchvision back to back, alternating which goes first. Prints images/s (the median
over ``--repeats``) and the ratio convzoo / torchvision as a Markdown table.

    nice -n 10 .venv/bin/python benchmarks/models_vs_torchvision.py --models 'resnet*,densenet*'
    python benchmarks/models_vs_torchvision.py --device cuda --batch-size 64
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import inspect
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

import convzoo

# Options torchvision's builders take with other defaults than ours (see tests/models/test_zoo.py).
MIRRORED = ("aux_logits", "transform_input")


def _pair(name: str, device: torch.device) -> tuple[nn.Module, nn.Module]:
    info = convzoo.model_info(name)
    params = inspect.signature(info.builder).parameters
    kwargs = {k: params[k].default for k in MIRRORED if k in params}
    if info.torchvision_name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True
    torch.manual_seed(0)
    tv = torchvision.models.get_model(info.torchvision_name, weights=None, **kwargs)
    ours = convzoo.create_model(name)
    ours.load_state_dict(tv.state_dict(), strict=True)
    return ours.to(device), tv.to(device)


def _timer(device: torch.device, clock: str) -> Callable[[Callable[[], object]], float]:
    # "cpu" counts this process's CPU seconds: on a shared, oversubscribed CPU it is far less
    # disturbed by other processes than the wall clock (use it with --threads 1).
    now = time.process_time if clock == "cpu" else time.perf_counter

    def timed(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = now()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return now() - t0

    return timed


def _first(out: object) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]  # type: ignore[index]


def bench_model(
    name: str, *, device: torch.device, batch: int, side: int, repeats: int, warmup: int,
    clock: str = "wall", control: bool = False,
) -> dict[str, float]:
    ours, tv = _pair(name, device)
    if control:  # A/A: torchvision against a copy of itself, to show the harness's noise
        ours = copy.deepcopy(tv)
    x = torch.randn(batch, 3, side, side, device=device)
    timed = _timer(device, clock)

    def forward(m: nn.Module) -> Callable[[], object]:
        def run() -> object:
            m.eval()
            with torch.no_grad():
                return m(x)

        return run

    def train_step(m: nn.Module) -> Callable[[], object]:
        def run() -> object:
            m.train()
            m.zero_grad(set_to_none=True)
            _first(m(x)).sum().backward()
            return None

        return run

    times: dict[str, list[float]] = {k: [] for k in ("fwd_ours", "fwd_tv", "bwd_ours", "bwd_tv")}
    for r in range(warmup + repeats):
        # Interleave, and alternate the order so neither side always runs on a warmer cache.
        order = [("ours", ours), ("tv", tv)] if r % 2 == 0 else [("tv", tv), ("ours", ours)]
        for kind, make in (("fwd", forward), ("bwd", train_step)):
            for who, m in order:
                t = timed(make(m))
                if r >= warmup:
                    times[f"{kind}_{who}"].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {k: batch / v for k, v in med.items()}  # images/s


def print_params(names: list[str]) -> None:
    """Parameter counts with each side's default options, built on the meta device (no memory)."""
    print(f"# parameters, convzoo vs torchvision {torchvision.__version__} (default options)")
    print("| model | convzoo | torchvision | equal |")
    print("| --- | ---: | ---: | --- |")
    for name in names:
        info = convzoo.model_info(name)
        params = inspect.signature(info.builder).parameters
        kwargs = {k: params[k].default for k in MIRRORED if k in params}
        with torch.device("meta"):
            ours = sum(p.numel() for p in convzoo.create_model(name).parameters())
            tv = sum(p.numel() for p in torchvision.models.get_model(
                info.torchvision_name, weights=None, **kwargs).parameters())
        print(f"| {name} | {ours:,} | {tv:,} | {'yes' if ours == tv else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*",
                        help="comma-separated names or globs of torchvision-compatible forms")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=224,
                        help="image side; inception_v3 uses at least 299 unless --no-inception-299")
    parser.add_argument("--no-inception-299", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or process CPU time (CPU device, shared machines)")
    parser.add_argument("--control", action="store_true",
                        help="also time torchvision against a copy of itself (A/A noise floor)")
    parser.add_argument("--params-only", action="store_true",
                        help="print the parameter counts of both sides and exit (no timing)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    compatible = [n for n in convzoo.list_models() if convzoo.model_info(n).torchvision_name]
    patterns = [p.strip() for p in args.models.split(",") if p.strip()]
    names = [n for n in compatible if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not names:
        raise SystemExit(f"no torchvision-compatible model matches {args.models!r}")

    if args.params_only:
        print_params(names)
        return
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads")
    print(f"# convzoo vs torchvision {torchvision.__version__}, torch {torch.__version__}, {where}")
    if args.clock == "cpu" and device.type != "cpu":
        raise SystemExit("--clock cpu only makes sense with --device cpu")
    print(f"# batch {args.batch_size}, median of {args.repeats} interleaved repeats "
          f"after {args.warmup} warm-up; images per {args.clock}-clock second")
    print("| model | input | fwd convzoo | fwd torchvision | fwd ratio "
          "| fwd+bwd convzoo | fwd+bwd torchvision | fwd+bwd ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        side = args.input_size
        if name == "inception_v3" and not args.no_inception_299:
            side = max(side, 299)
        for control in (False, True) if args.control else (False,):
            r = bench_model(name, device=device, batch=args.batch_size, side=side,
                            repeats=args.repeats, warmup=args.warmup, clock=args.clock,
                            control=control)
            label = f"{name} (A/A control)" if control else name
            print(f"| {label} | {side} | "
                  f"{r['fwd_ours']:.1f} | {r['fwd_tv']:.1f} | {r['fwd_ours'] / r['fwd_tv']:.3f} | "
                  f"{r['bwd_ours']:.1f} | {r['bwd_tv']:.1f} | {r['bwd_ours'] / r['bwd_tv']:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
