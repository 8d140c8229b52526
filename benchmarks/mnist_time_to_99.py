"""Seconds from process start to 99% MNIST test accuracy: ``convzoo train`` against PyTorch's own
MNIST example, one after the other on the same machine.

    .venv/bin/python benchmarks/mnist_time_to_99.py                    # target: ratio <= 0.05
    .venv/bin/python benchmarks/mnist_time_to_99.py --recipe lenet5-mnist --skip-peer

* convzoo: ``convzoo train lenet5 --recipe RECIPE --data-dir ../shared/data/mnist`` (the console
  script beside this python, else ``python -m convzoo``), in a temporary run directory; its
  plain per-epoch line ``epoch E/N ... test top1 ACC`` (scored on the 10,000 test images after
  every epoch) gives the time.
* the peer: ``python main.py`` of ../shared/peers/pytorch-examples-mnist, unedited and with no
  arguments, as its README says. Its ``datasets.MNIST('../data', download=True)`` finds the four
  IDX files that this script unpacks from ../shared/data/mnist into a temporary ``data/MNIST/raw``
  (the peer runs in the sibling folder ``work``), so nothing is downloaded; its line ``Test set:
  ... Accuracy: C/10000`` after every epoch gives the time.

Each program is a fresh process of this python, timed from just before it is launched to the
moment its output shows a test accuracy >= 99.0% (counted in images, not the printed
percentage), and then stopped: the peer would run 14 epochs. Both get the environment as it is
(torch's default threads unless ``--threads`` sets OMP_NUM_THREADS for both) plus
PYTHONUNBUFFERED=1, so a line is seen when it is printed, not when a pipe buffer fills.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"
PEER = REPO.parent / "shared" / "peers" / "pytorch-examples-mnist" / "main.py"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
TARGET = 0.99

# An epoch's test accuracy in each program's output, as a fraction.
CONVZOO_LINE = re.compile(r"^epoch\s+(\d+)/\d+.*test top1 ([0-9.]+)")
PEER_LINE = re.compile(r"Test set: .*Accuracy: (\d+)/(\d+)")


@dataclass
class Timing:
    name: str
    command: list[str]
    seconds_to_target: float | None = None
    epochs: list[tuple[float, float]] = field(default_factory=list)  # (seconds, test accuracy)
    exit_code: int | None = None
    tail: list[str] = field(default_factory=list)  # the last lines, for a failed run


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="lenet5-mnist-fast", help="convzoo's recipe")
    p.add_argument("--data-dir", type=Path, default=MNIST, help="the four MNIST .gz files")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS for both programs (default: the environment's)")
    p.add_argument("--skip-peer", action="store_true", help="time convzoo only")
    p.add_argument("--peer-first", action="store_true", help="run the peer before convzoo")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per program")
    return p.parse_args()


def unpack_for_peer(data_dir: Path, root: Path) -> Path:
    """``root/data/MNIST/raw/<the four IDX files>`` and an empty ``root/work`` for the peer's
    ``../data``; returns the work folder."""
    raw = root / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        with gzip.open(data_dir / f"{name}.gz", "rb") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    work = root / "work"
    work.mkdir()
    return work


def accuracy_in(name: str, line: str) -> float | None:
    """The test accuracy a line of program ``name`` reports, else None."""
    if name == "convzoo":
        m = CONVZOO_LINE.search(line)
        return float(m.group(2)) if m else None
    m = PEER_LINE.search(line)
    return int(m.group(1)) / int(m.group(2)) if m else None


def run_until_target(timing: Timing, cwd: Path, env: dict[str, str], timeout: float) -> Timing:
    """Launch, read the output line by line, stop the process at the first accuracy >= TARGET."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(timing.command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    try:
        for line in proc.stdout:
            now = time.perf_counter() - t0
            timing.tail = (timing.tail + [line.rstrip()])[-5:]
            acc = accuracy_in(timing.name, line)
            if acc is not None:
                timing.epochs.append((now, acc))
                print(f"  {timing.name}: {now:7.1f} s  test accuracy {acc:.4f}", flush=True)
                if acc >= TARGET:
                    timing.seconds_to_target = now
                    break
            if now > timeout:
                break
    finally:
        proc.terminate()
        try:
            timing.exit_code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            timing.exit_code = proc.wait()
    return timing


def convzoo_command(recipe: str, data_dir: Path, out: Path) -> list[str]:
    script = Path(sys.executable).with_name("convzoo")
    launcher = [str(script)] if script.is_file() else [sys.executable, "-m", "convzoo"]
    return [*launcher, "train", "lenet5", "--recipe", recipe, "--data-dir", str(data_dir),
            "--out", str(out)]


def report(timings: list[Timing]) -> None:
    print("\n| program | seconds to 99.0% | epochs run | test accuracy per epoch (s) |")
    print("| --- | ---: | ---: | --- |")
    for t in timings:
        secs = f"{t.seconds_to_target:.1f}" if t.seconds_to_target is not None else "not reached"
        accs = ", ".join(f"{100 * a:.2f} ({s:.1f})" for s, a in t.epochs)
        print(f"| {t.name} | {secs} | {len(t.epochs)} | {accs} |")
    for t in timings:
        if t.seconds_to_target is None:
            print(f"\n{t.name} did not reach 99.0% (exit {t.exit_code}); its last lines:")
            print("\n".join(f"    {line}" for line in t.tail))
    by_name = {t.name: t.seconds_to_target for t in timings}
    if by_name.get("convzoo") and by_name.get("peer"):
        ratio = by_name["convzoo"] / by_name["peer"]
        print(f"\nconvzoo / peer: {ratio:.3f}x (target <= 0.05x)")


def main() -> int:
    args = _parse()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"# benchmarks/mnist_time_to_99.py: {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}; threads: "
          f"{args.threads or env.get('OMP_NUM_THREADS', 'torch default')}", flush=True)
    with tempfile.TemporaryDirectory(prefix="convzoo-tt99-") as tmp:
        root = Path(tmp)
        runs = [("convzoo", convzoo_command(args.recipe, args.data_dir, root / "run"), REPO)]
        if not args.skip_peer:
            work = unpack_for_peer(args.data_dir, root)
            peer = ("peer", [sys.executable, str(PEER)], work)
            runs = [peer, *runs] if args.peer_first else [*runs, peer]
        timings = []
        for name, command, cwd in runs:
            print(f"{name}: {' '.join(command)}  (in {cwd})", flush=True)
            timings.append(run_until_target(Timing(name, command), cwd, env, args.timeout))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    report(timings)
    return 0 if all(t.seconds_to_target is not None for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
