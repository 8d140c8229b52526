"""``bench``: parameters, GMACs, inference and training images/s, batch-1 latency, peak memory.

Timings are medians over ``repeats`` timed runs after a warm-up (at least ``warmup`` untimed runs
and :data:`WARMUP_S` seconds: the first calls pay for allocation and kernel selection), with CUDA
synchronised around each; a run of a fast model repeats the call until it lasts
:data:`MIN_RUN_S`. The spread, (slowest - fastest) / median, says how far the repeats disagree: on
a busy machine it is large, and the table says so. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA; on the CPU it is the rise of the process's resident
set size over the training steps, sampled every 2 ms by a background thread (an upper-bound-ish
figure: it includes the allocator's slack).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvzooError

log = logging.getLogger(__name__)


@dataclass
class BenchResult:
    model: str
    device: str
    input_shape: list[int]  # (C, H, W)
    batch_size: int
    amp: str  # autocast mode: none, bf16 or fp16 (as train's --amp)
    channels_last: bool
    params: int
    gmacs: float  # per image
    infer_images_per_s: float
    train_images_per_s: float
    latency_ms: float  # batch 1, median
    peak_memory_mb: float  # training step; see the module docstring
    threads: int = 1  # torch.get_num_threads() during the timing
    repeats: int = 5
    # (slowest - fastest) / median of the repeats, per timing
    spread: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


WARMUP_S = 0.3  # seconds of untimed calls, at least
MIN_RUN_S = 0.02  # a timed run repeats a fast call until it lasts this long
LARGE_SPREAD = 0.25  # a spread above this is reported as unreliable


def _timed(fn: Callable[[], Any], device: torch.device, calls: int) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / calls


def _times(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int
           ) -> list[float]:
    """Seconds per call of ``repeats`` timed runs, after the warm-up."""
    start, n, one = time.perf_counter(), 0, 0.0
    while n < warmup or (time.perf_counter() - start < WARMUP_S and n < 1000):
        one = _timed(fn, device, 1)
        n += 1
    calls = max(1, min(1000, int(MIN_RUN_S / one))) if one > 0 else 1
    return [_timed(fn, device, calls) for _ in range(repeats)]


def spread(times: list[float]) -> float:
    """(slowest - fastest) / median."""
    return (max(times) - min(times)) / statistics.median(times)


def _median_time(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    return statistics.median(_times(fn, device, warmup, repeats))


def median_seconds(fn: Callable[[], Any], *, device: torch.device | str = "cpu", warmup: int = 1,
                   repeats: int = 5) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed ones
    (CUDA synchronised around each), as ``bench`` times its latency."""
    return _median_time(fn, torch.device(device), warmup, repeats)


def seconds_per_call(fn: Callable[[], Any], *, device: torch.device | str = "cpu",
                     warmup: int = 1, repeats: int = 5) -> list[float]:
    """Seconds per call of ``fn()`` in each of ``repeats`` timed runs, after the warm-up (as
    :func:`median_seconds`, every run rather than their median)."""
    return _times(fn, torch.device(device), warmup, repeats)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _RssSampler:
    def __init__(self) -> None:
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def bench_model(
    model: str | nn.Module,
    *,
    input_size: tuple[int, int, int] | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    amp: bool | str = False,
    channels_last: bool = False,
    warmup: int = 2,
    repeats: int = 5,
    threads: int | None = None,
    **model_args: Any,
) -> BenchResult:
    """Benchmark a registered model (freshly initialised) or a module on ``device``; ``threads``
    sets torch's CPU threads for the measurement (default: as they are). ``amp``: an autocast
    mode as train's (``"none"``, ``"bf16"``, ``"fp16"``), or True: bf16 on the CPU, fp16 on
    CUDA."""
    from ..engine.config import check_threads

    check_threads(threads)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _bench(model, input_size=input_size, batch_size=batch_size, device=device,
                      amp=amp, channels_last=channels_last, warmup=warmup, repeats=repeats,
                      **model_args)
    finally:
        torch.set_num_threads(before)


def _bench(model: str | nn.Module, *, input_size: tuple[int, int, int] | None, batch_size: int,
           device: str, amp: bool | str, channels_last: bool, warmup: int, repeats: int,
           **model_args: Any) -> BenchResult:
    from ..engine.device import resolve_device
    from ..engine.scoring import amp_mode, autocast
    from .summary import summarize

    if batch_size < 1:
        raise ConvzooError(f"--batch-size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    mode = amp_mode(amp, dev)
    autocast(mode, dev)  # an unknown mode fails here, before the model is built
    if isinstance(model, str):
        from ..registry import create_model, model_info

        info = model_info(model)
        size = input_size or info.input_size
        summary = summarize(model, size, **dict(model_args))
        net = create_model(model, **{**({"in_chans": size[0]} if size[0] != info.input_size[0]
                                        else {}), **model_args})
        name = model
    else:
        if input_size is None:
            raise ConvzooError("bench_model(module): pass input_size=(C, H, W)")
        size, net, name = input_size, model, type(model).__name__
        summary = summarize(net, size)
    net = net.to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    def make(b: int) -> torch.Tensor:
        return torch.randn(b, *size, device=dev).contiguous(memory_format=fmt)

    x, x1 = make(batch_size), make(1)
    y = torch.randint(0, 2, (batch_size,), device=dev)

    net.eval()

    @torch.inference_mode()
    def infer(inp: torch.Tensor) -> None:
        with autocast(mode, dev):
            net(inp)

    t_infer = _times(lambda: infer(x), dev, warmup, repeats)
    t_lat = _times(lambda: infer(x1), dev, warmup, max(repeats, 10))

    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        with autocast(mode, dev):
            out = net(x)
            logits = out if isinstance(out, torch.Tensor) else out[0]
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        t_train = _times(train_step, dev, warmup, repeats)
        peak = torch.cuda.max_memory_allocated(dev) - base
    else:
        with _RssSampler() as sampler:
            t_train = _times(train_step, dev, warmup, repeats)
        peak = sampler.peak - sampler.base
    med = statistics.median
    return BenchResult(
        model=name, device=str(dev), input_shape=list(size), batch_size=batch_size, amp=mode,
        channels_last=channels_last, params=summary.params,
        gmacs=summary.macs / summary.input_shape[0] / 1e9,
        infer_images_per_s=batch_size / med(t_infer), train_images_per_s=batch_size / med(t_train),
        latency_ms=1000 * med(t_lat), peak_memory_mb=peak / 2**20,
        threads=torch.get_num_threads(), repeats=repeats,
        spread={"infer": spread(t_infer), "train": spread(t_train), "latency": spread(t_lat)},
    )


def format_bench(results: list[BenchResult]) -> str:
    head = (f"{'model':<20} {'params':>13} {'GMACs':>8} {'infer img/s':>12} {'train img/s':>12} "
            f"{'b1 latency ms':>14} {'peak MB':>9} {'spread':>7}")
    lines = [head, "-" * len(head)]
    noisy = []
    for r in results:
        worst = max(r.spread.values(), default=0.0)
        if worst > LARGE_SPREAD:
            noisy.append(f"{r.model} ({worst:.0%})")
        lines.append(f"{r.model:<20} {r.params:>13,} {r.gmacs:>8.3f} {r.infer_images_per_s:>12.1f} "
                     f"{r.train_images_per_s:>12.1f} {r.latency_ms:>14.2f} "
                     f"{r.peak_memory_mb:>9.1f} {worst:>7.0%}")
    if results:
        r = results[0]
        lines.append(f"device {r.device}, {r.threads} threads, batch {r.batch_size}, amp {r.amp}, "
                     f"channels_last {r.channels_last}, torch {torch.__version__}; median of "
                     f"{r.repeats} runs after a warm-up; spread = (slowest - fastest) / median, "
                     f"the largest of the three timings")
    if noisy:
        lines.append(f"warning: the repeats disagree by more than {LARGE_SPREAD:.0%} for "
                     f"{', '.join(noisy)}: the machine is busy or the runs too short; the figures "
                     f"are unreliable (try more --repeats, or a quieter machine)")
    return "\n".join(lines)
