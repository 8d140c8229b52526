"""How fast `convzoo explore` answers a click on a layer, measured through its HTTP API.

    python benchmarks/explore_latency.py [--model resnet50] [--size 224] [--threads N]
        [--layers all|conv]

One 224x224 image is uploaded, then ``/api/predict`` runs the first pass (the forward pass with a
hook on every leaf module, cached per (model, image)); after it every layer of the table is
clicked once, as the page does: ``/api/maps.png`` (the feature maps), and for a convolution also
``/api/im2col``. Prints the first pass, the model load, and the median / 90th percentile / maximum
per-layer answer time, in-process through Starlette's TestClient (no network, same code path as
uvicorn). The issue's bar: every layer of resnet50 at 224 px in < 1 s on the 2-core CPU after the
first pass. The model has random weights (no ImageNet weights ship); the time does not depend on
them.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--size", type=int, default=224, help="side of the uploaded image (px)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--layers", choices=["all", "conv"], default="all")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from PIL import Image
    from starlette.testclient import TestClient

    from convzoo.explore import Explorer, create_app

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (args.size, args.size, 3), dtype=np.uint8)).save(
        buf, format="PNG")
    client = TestClient(create_app(Explorer(runs=os.devnull)), raise_server_exceptions=True)

    t0 = time.perf_counter()
    info = client.get("/api/model", params={"model": args.model}).json()
    t_load = time.perf_counter() - t0
    image = client.post("/api/upload", files={"image": ("x.png", buf.getvalue(),
                                                        "image/png")}).json()["image"]
    t0 = time.perf_counter()
    client.post("/api/predict", params={"model": args.model, "image": image}).raise_for_status()
    t_first = time.perf_counter() - t0

    times: list[tuple[float, str]] = []
    for row in info["layers"]:
        if args.layers == "conv" and row["type"] != "Conv2d":
            continue
        q = {"model": args.model, "image": image, "layer": row["index"]}
        t0 = time.perf_counter()
        client.get("/api/maps.png", params=q).raise_for_status()
        if row["type"] == "Conv2d":
            client.get("/api/im2col", params=q).raise_for_status()
        times.append((time.perf_counter() - t0, f"{row['index']} {row['name']} ({row['type']})"))

    secs = sorted(t for t, _ in times)
    worst = max(times)
    print(f"{args.model}, input {'x'.join(map(str, info['input']))}, torch threads "
          f"{torch.get_num_threads()}, CPUs {os.cpu_count()}")
    print(f"load + summary:            {t_load:8.2f} s")
    print(f"first pass (/api/predict): {t_first:8.2f} s")
    print(f"per layer, {len(secs)} layers (maps.png, + im2col for a conv):")
    print(f"  median {1000 * statistics.median(secs):8.1f} ms")
    print(f"  p90    {1000 * secs[int(0.9 * (len(secs) - 1))]:8.1f} ms")
    print(f"  max    {1000 * worst[0]:8.1f} ms  ({worst[1]})")
    print(f"layers answered in < 1 s: {sum(t < 1 for t in secs)} of {len(secs)}")


if __name__ == "__main__":
    main()
