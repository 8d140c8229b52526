"""End-to-end training images/s of ``convzoo train resnet18`` against torchvision's reference
trainer (``references/classification/train.py``, run from ../shared/peers/torchvision-reference as
a subprocess of the same python, never copied), on the same image folder, with the same model,
batch size, DataLoader workers and input size.

Cases:

* ``32px``: a subset of the CIFAR-10 JPEG copy (32x32 JPEGs in class folders; convzoo takes its
  in-memory path, decoding the folder once at start-up into a fresh, empty cache);
* ``128px`` (``--large-size``): JPEGs of 144-200 px a side that this script writes (streamed path
  in convzoo, cropped to 128 px in both trainers).

Each trainer runs one epoch as its own process, interleaved (the order alternates per round),
``--rounds`` times. Both run under a pseudo-terminal and are timed the same way, from outside, by
the time at which their progress output shows each step done: the reference prints a line per
step with ``--print-freq 1``, convzoo draws its progress bar (tqdm, at most every 0.1 s).
Reported per run:

* steady img/s: batch x (steps between the first shown step >= ``--skip`` and the last shown
  full-batch step) / the time between them (no start-up, no evaluation, no checkpoint);
* start-up s: process launch to the first step shown (imports, scanning and, for convzoo's
  in-memory path, decoding the folder; the reference decodes per step in its workers);
* total s: process launch to exit (includes the end-of-epoch evaluation and writing files).

The ratio is convzoo / reference of the steady img/s, one per round, and its median.

Usage: .venv/bin/python benchmarks/train_vs_reference.py [--rounds 3] [--batch-size 32]
       [--workers 2] [--threads N] [--per-class 256] [--large-per-class 96] [--sizes 32 128]
       [--skip 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
CIFAR_JPG = SHARED / "data" / "cifar10-jpg.tar.gz"
REFERENCE = SHARED / "peers" / "torchvision-reference"
CONVZOO = Path(sys.executable).with_name("convzoo")


def convzoo_cmd() -> list[str]:
    """The console script of this python's environment, else ``python -m convzoo`` (a machine
    with the source tree on PYTHONPATH and no install, e.g. a lent GPU)."""
    return [str(CONVZOO)] if CONVZOO.exists() else [sys.executable, "-m", "convzoo"]

# The reference prints "Epoch: [0]  [ 12/80]  eta: ..." after each step (--print-freq 1).
REF_STEP = re.compile(r"Epoch: \[0\]\s+\[\s*(\d+)/(\d+)\]")
# convzoo's tqdm bar: "epoch 1/1:  40%|####      | 32/80 [00:05<00:07, ...]".
CZ_STEP = re.compile(r"epoch \d+/\d+:.*?\|\s*(\d+)/(\d+) \[")  # not its "scoring" bars


@dataclass
class Run:
    trainer: str
    case: str
    round: int
    steps: int  # steps in the epoch
    steady_images_per_s: float
    startup_s: float  # launch -> first step shown
    total_s: float  # launch -> exit
    measured_steps: int  # steps inside the steady window


# --- data ------------------------------------------------------------------------------------

def cifar_subset(root: Path, per_class: int, test_per_class: int) -> Path:
    """The first files of each class of the CIFAR-10 JPEG copy: root/{train,test}/CLASS/NNNN.jpg."""
    if not CIFAR_JPG.is_file():
        sys.exit(f"{CIFAR_JPG} not found: the 32 px case needs the CIFAR-10 JPEG copy")
    patterns = [f"train/*/{i:04d}.jpg" for i in range(per_class)]
    patterns += [f"test/*/{i:04d}.jpg" for i in range(test_per_class)]
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(CIFAR_JPG), "-C", str(root), "--wildcards", *patterns],
                   check=True)
    return root


def write_large_folder(root: Path, classes: int, per_class: int, val_per_class: int,
                       lo: int = 144, hi: int = 200) -> Path:
    """JPEGs of lo..hi px a side (random, most not square): a colour and stripes per class."""
    from torchvision.io import encode_jpeg

    gen = torch.Generator().manual_seed(0)
    for split, n in (("train", per_class), ("test", val_per_class)):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            colour = torch.rand(3, 1, 1, generator=gen) * 200 + 30
            for i in range(n):
                h, w = (int(v) for v in torch.randint(lo, hi + 1, (2,), generator=gen))
                ys = torch.arange(h).view(-1, 1) * (c % 3) + torch.arange(w).view(1, -1) * (c // 3)
                stripes = ((ys // (6 + c)) % 2).float()
                img = colour * (0.6 + 0.4 * stripes) + torch.randn(3, h, w, generator=gen) * 15
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    data = encode_jpeg(img.clamp(0, 255).to(torch.uint8), quality=90)
                (folder / f"{i:04d}.jpg").write_bytes(data.numpy().tobytes())
    return root


def reference_layout(data: Path, where: Path) -> Path:
    """train.py reads DATA/train and DATA/val: a folder of two links (val -> test)."""
    where.mkdir(parents=True, exist_ok=True)
    for name, target in (("train", "train"), ("val", "test")):
        link = where / name
        if not link.exists():
            link.symlink_to((data / target).resolve(), target_is_directory=True)
    return where


# --- running a trainer under a pseudo-terminal ------------------------------------------------

def timed_run(cmd: list[str], env: dict[str, str], cwd: Path, pattern: re.Pattern,
              log: Path, timeout: float) -> tuple[list[tuple[float, int, int]], float, int]:
    """Run ``cmd`` on a pty; return ((seconds since launch, step, steps) per progress update,
    total seconds, exit status). Every byte of output goes to ``log``."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                            cwd=cwd, close_fds=True)
    os.close(slave)
    seen: list[tuple[float, int, int]] = []
    pending = ""
    with log.open("w", encoding="utf-8", errors="replace") as f:
        while True:
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                break
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not chunk:
                break
            now = time.perf_counter() - t0
            text = chunk.decode("utf-8", errors="replace")
            f.write(text)
            pending += text
            *parts, pending = re.split(r"[\r\n]", pending)
            for part in parts:
                m = pattern.search(part)
                if m:
                    seen.append((now, int(m.group(1)), int(m.group(2))))
    os.close(master)
    code = proc.wait()
    return seen, time.perf_counter() - t0, code


def steady(seen: list[tuple[float, int, int]], done_offset: int, skip: int, batch: int,
           full_steps: int) -> tuple[float, float, int, int]:
    """(images/s between the first shown step >= skip and the last full-batch step, start-up s,
    steps measured, steps in the epoch). ``done_offset`` turns a shown index into steps done."""
    points, shown = [], set()
    for t, i, _ in seen:  # the first time each step count is shown: a bar redraws its last
        if i not in shown:  # state again when it closes, after the end-of-epoch evaluation
            shown.add(i)
            points.append((t, i + done_offset))
    total = seen[-1][2] if seen else 0
    started = [t for t, done in points if done >= 1]
    if not started:
        raise RuntimeError("no training step was shown")
    window = [(t, d) for t, d in points if skip <= d <= full_steps]
    if len(window) < 2 or window[-1][1] == window[0][1]:
        raise RuntimeError(f"too few steps shown after --skip {skip} ({len(points)} updates)")
    (t_a, d_a), (t_b, d_b) = window[0], window[-1]
    return batch * (d_b - d_a) / (t_b - t_a), started[0], d_b - d_a, total


def run_reference(data: Path, size: int, args: argparse.Namespace, work: Path, env: dict,
                  case: str, rnd: int) -> Run:
    out = work / f"ref-{case}-{rnd}"
    resize = size if size <= 64 else round(size * 256 / 224)
    cmd = [sys.executable, "-u", str(REFERENCE / "train.py"), "--data-path", str(data),
           "--model", args.model, "--device", args.device, "--epochs", "1",
           "--batch-size", str(args.batch_size), "--workers", str(args.workers),
           "--train-crop-size", str(size), "--val-resize-size", str(resize),
           "--val-crop-size", str(size), "--print-freq", "1", "--output-dir", str(out)]
    if args.amp == "fp16":
        cmd.append("--amp")  # the reference's AMP: float16 autocast + GradScaler
    seen, total, code = timed_run(cmd, env, REFERENCE, REF_STEP, work / f"{out.name}.log",
                                  args.timeout)
    if code != 0:
        raise RuntimeError(f"reference trainer failed ({code}); see {work / out.name}.log")
    full = args.train_images // args.batch_size
    ips, startup, measured, steps = steady(seen, 1, args.skip, args.batch_size, full)
    shutil.rmtree(out, ignore_errors=True)
    return Run("reference", case, rnd, steps, ips, startup, total, measured)


def run_convzoo(data: Path, size: int, args: argparse.Namespace, work: Path, env: dict,
                case: str, rnd: int) -> Run:
    out = work / f"cz-{case}-{rnd}"
    cache = work / f"cache-{case}-{rnd}"  # empty: start-up includes decoding the folder
    cmd = [*convzoo_cmd(), "train", args.model, "--data", "folder", "--data-dir", str(data),
           "--val-split", "test", "--epochs", "1", "--batch-size", str(args.batch_size),
           "--device", args.device, "--amp", args.amp, "--input-size", str(size),
           "--no-tensorboard", "--out", str(out)]
    if args.convzoo_workers_flag:
        cmd += ["--workers", str(args.workers)]
    seen, total, code = timed_run(cmd, {**env, "CONVZOO_CACHE": str(cache)}, REPO, CZ_STEP,
                                  work / f"{out.name}.log", args.timeout)
    if code != 0:
        raise RuntimeError(f"convzoo train failed ({code}); see {work / out.name}.log")
    full = args.train_images // args.batch_size
    try:
        ips, startup, measured, steps = steady(seen, 0, args.skip, args.batch_size, full)
    except RuntimeError:
        # On a GPU the trainer reads the device (and so draws its bar) only every 25 steps
        # (trainer.SYNC_EVERY_CUDA): with fewer steps than that the bar shows no steady window.
        # Fall back to the epoch's own images/s from metrics.jsonl, first steps included, and say
        # so (measured_steps 0).
        row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        ips, measured, steps = row["images_per_s"], 0, full
        startup = seen[0][0] if seen else total
        print(f"  convzoo showed {len(seen)} progress updates: its figure is the whole epoch's "
              f"images/s ({row['epoch_time_s']:.1f} s, first steps included)", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return Run("convzoo", case, rnd, steps, ips, startup, total, measured)


def convzoo_has_workers_flag() -> bool:
    r = subprocess.run([*convzoo_cmd(), "train", "--help"], capture_output=True, text=True,
                       check=True)
    return "--workers" in r.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="resnet18", help="a model both trainers know by name")
    p.add_argument("--device", default="cpu", help="cpu | cuda (both trainers)")
    p.add_argument("--amp", choices=("none", "fp16"), default="none",
                   help="fp16: float16 autocast + GradScaler in both trainers")
    p.add_argument("--large-range", type=int, nargs=2, metavar=("LO", "HI"),
                   help="sides (px) of the written JPEGs of the large case (default 144-200 "
                   "for 128 px, else size+16..size+72)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of both trainers "
                   "(if convzoo train has no --workers flag, its fixed count is used for both)")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 128],
                   help="input sizes: 32 is the CIFAR-10 JPEG subset, larger ones a written "
                   "folder of JPEGs of 144-200 px (or size+16..size+72)")
    p.add_argument("--per-class", type=int, default=256, help="32 px: training images per class")
    p.add_argument("--large-per-class", type=int, default=96,
                   help="large images: training images per class (10 classes)")
    p.add_argument("--skip", type=int, default=5, help="steps left out at the start of the "
                   "steady window")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of both trainers (default: "
                   "torch's own choice; 1 keeps a shared CPU from thrashing)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per trainer run")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--json", type=Path, help="write every run and the ratios here")
    args = p.parse_args()

    args.convzoo_workers_flag = convzoo_has_workers_flag()
    if not args.convzoo_workers_flag:
        args.workers = 4  # the trainer's fixed DataLoader worker count (engine/loader.py)
    work = args.work or Path(tempfile.mkdtemp(prefix="train-vs-ref-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "CONVZOO_CACHE")}
    env["PYTHONUNBUFFERED"] = "1"
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    env["HOME"] = str(work)  # the reference's --cache-dataset path and any ~/.cache stay here
    if args.device.startswith("cuda"):
        print(f"device {torch.cuda.get_device_name(0)}; model {args.model}; amp {args.amp}")
    print(f"python {sys.executable}; torch {torch.__version__}; {platform.machine()}, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; threads "
          f"{args.threads or 'default'}; batch "
          f"{args.batch_size}, workers {args.workers}"
          f"{'' if args.convzoo_workers_flag else ' (convzoo train has no --workers flag)'}; "
          f"scratch {work}", flush=True)

    cases: list[tuple[str, int, Path, Path, int]] = []  # (name, size, data, ref data, images)
    for size in args.sizes:
        if size <= 32:
            data = cifar_subset(work / "cifar32", args.per_class, max(10, args.per_class // 5))
            n = 10 * args.per_class
        else:
            lo, hi = args.large_range or ((144, 200) if size == 128 else (size + 16, size + 72))
            data = write_large_folder(work / f"large{size}", 10, args.large_per_class,
                                      max(2, args.large_per_class // 4), lo, hi)
            n = 10 * args.large_per_class
        cases.append((f"{size}px", size, data, reference_layout(data, work / f"ref{size}"), n))

    runs: list[Run] = []
    print(f"{'case':<7} {'round':>5} {'trainer':<10} {'steady img/s':>12} {'start-up s':>10} "
          f"{'total s':>8} {'steps':>6}", flush=True)
    for rnd in range(1, args.rounds + 1):
        for name, size, data, ref_data, n in cases:
            args.train_images = n
            order = ("reference", "convzoo") if rnd % 2 else ("convzoo", "reference")
            for trainer in order:
                if trainer == "reference":
                    r = run_reference(ref_data, size, args, work, env, name, rnd)
                else:
                    r = run_convzoo(data, size, args, work, env, name, rnd)
                runs.append(r)
                print(f"{name:<7} {rnd:>5} {trainer:<10} {r.steady_images_per_s:>12.1f} "
                      f"{r.startup_s:>10.1f} {r.total_s:>8.1f} {r.measured_steps:>6}",
                      flush=True)

    print("\nmedian over rounds (ratio = convzoo / reference, per round)")
    summary = {}
    for name, *_ in cases:
        by = {t: [r for r in runs if r.case == name and r.trainer == t]
              for t in ("convzoo", "reference")}
        ratios = [c.steady_images_per_s / f.steady_images_per_s
                  for c, f in zip(by["convzoo"], by["reference"], strict=True)]
        med = {t: {k: statistics.median(getattr(r, k) for r in rs)
                   for k in ("steady_images_per_s", "startup_s", "total_s")}
               for t, rs in by.items()}
        summary[name] = {"ratio_median": statistics.median(ratios), "ratios": ratios, **med}
        print(f"  {name}: convzoo {med['convzoo']['steady_images_per_s']:.1f} img/s, reference "
              f"{med['reference']['steady_images_per_s']:.1f} img/s, ratio "
              f"{statistics.median(ratios):.2f}x (rounds: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); start-up convzoo "
              f"{med['convzoo']['startup_s']:.1f} s, reference "
              f"{med['reference']['startup_s']:.1f} s; total convzoo "
              f"{med['convzoo']['total_s']:.1f} s, reference {med['reference']['total_s']:.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": [asdict(r) for r in runs], "summary": summary,
                                         "batch_size": args.batch_size,
                                         "workers": args.workers}, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
