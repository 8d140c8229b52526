"""``convzoo report RUN_DIR``: one self-contained HTML file about a training run.

It holds the training curves, the confusion matrix, per-class accuracy, and a grid of
test images with their top-5 predictions. Every image is a base64 ``data:`` URI and the styling is
inline, so the file opens offline in any browser and can be mailed as it is.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write
from ..errors import ConvzooError

log = logging.getLogger(__name__)

_CSS = """body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left}th{background:#f3f3f3}img.plot{max-width:100%;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:10px}.cell{border:1px solid #ddd;padding:6px;width:170px;
font-size:.78em}.cell img{width:96px;height:96px;image-rendering:pixelated;display:block}
.ok{color:#1a7f37}.bad{color:#c62828}"""


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _fig_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return _png_uri(buf.getvalue())


def _image_uri(img: torch.Tensor) -> str:
    """uint8 (C, H, W) as a PNG data URI."""
    from PIL import Image

    a = img.permute(1, 2, 0).numpy()
    pil = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a[:, :, :3])
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return _png_uri(buf.getvalue())


def _thumbnail(dataset, i: int, side: int = 96) -> torch.Tensor:
    """Test image ``i`` as uint8 (C, H, W): in-memory images as they are, a streamed folder's
    file decoded and its shorter side resized to ``side``, center-cropped."""
    if hasattr(dataset, "images"):
        return dataset.images[i]
    from torchvision.transforms import v2

    from ..data.folder import decode_file

    img = decode_file(dataset.paths[i], dataset.channels)
    img = v2.functional.resize(img, side, antialias=True)
    return v2.functional.center_crop(img, [side, side])


def _read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = []
        for r in csv.DictReader(f):
            rows.append({k: float(v) if v not in ("", None) else None for k, v in r.items()})
    return rows


def _per_class_plot(classes: list[str], acc: list[float | None]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = [100 * (a or 0) for a in acc]
    fig, ax = plt.subplots(figsize=(min(12, 1 + 0.4 * len(classes)), 3.2))
    ax.bar(range(len(classes)), vals, color="#4c72b0")
    if len(classes) <= 40:
        ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 10 else 0,
                      ha="right" if len(classes) > 10 else "center", fontsize=8)
    ax.set(ylabel="top-1 accuracy (%)", ylim=(0, 100), title="per-class accuracy")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def build_report(run_dir: str | Path, out: str | Path | None = None, *, n_images: int = 24,
                 device: str = "cpu", batch_size: int = 500, workers: int = 4) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) and return its path."""
    from ..engine.loaded import prepare_eval
    from .evaluation import confusion_matrix, plot_confusion

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConvzooError(f"run directory {run_dir} does not exist")
    out = Path(out) if out else run_dir / "report.html"
    # The same test split and preset as `convzoo eval RUN_DIR` (a folder run's --val-split too).
    job = prepare_eval(run_dir, device=device)
    loaded, data, test_set = job.loaded, job.split.data, job.split.dataset
    config = loaded.config
    final = json.loads((run_dir / "final.json").read_text()) if (
        run_dir / "final.json").is_file() else {}
    ev = job.run(batch_size=batch_size, workers=workers, keep_outputs=True)
    probs, targets = ev.probs, ev.labels
    k = probs.shape[1]
    classes = test_set.classes if len(test_set.classes) == k else [str(i) for i in range(k)]
    pred1 = probs.argmax(1)
    top1, top5 = ev.topk_acc[1], ev.topk_acc[5]
    per_class = ev.per_class_acc

    sections: list[str] = []
    title = f"{loaded.name} on {data}"
    sections.append(f"<h1>convzoo report: {html.escape(title)}</h1><p>run directory "
                    f"<code>{html.escape(str(run_dir))}</code>; test set: {len(targets)} images. "
                    f"Top-1 accuracy <b>{100 * top1:.2f}%</b> (error {100 * (1 - top1):.2f}%), "
                    f"top-5 accuracy <b>{100 * top5:.2f}%</b>.</p>")
    rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(json.dumps(v))}</td>"
                   f"</tr>" for key, v in config.items())
    tail = [f"<h2>Config (config.json)</h2><table>{rows}</table>"]
    if final:
        keep = {key: v for key, v in final.items() if not isinstance(v, dict)}
        rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(v))}</td></tr>"
                       for key, v in keep.items())
        tail.insert(0, f"<h2>Final metrics (final.json)</h2><table>{rows}</table>")

    curves = run_dir / "curves.png"
    metrics = _read_metrics(run_dir)
    if not curves.is_file() and metrics:
        from .plots import plot_curves

        curves = out.with_name(out.stem + ".curves.png")
        try:
            plot_curves(metrics, curves, title=title)
        except (KeyError, TypeError) as e:
            log.warning("cannot plot metrics.csv of %s: %s", run_dir, e)
    if curves.is_file():
        sections.append(f"<h2>Training curves</h2><img class='plot' alt='training curves' "
                        f"src='{_png_uri(curves.read_bytes())}'>")
        if curves.parent == out.parent and curves.name.startswith(out.stem + "."):
            curves.unlink()

    cm = confusion_matrix(pred1, targets, k)
    cm_png = out.with_name(out.stem + ".confusion.png")
    plot_confusion(cm, classes, cm_png, title=f"{title}: confusion matrix")
    cm_uri = _png_uri(cm_png.read_bytes())
    cm_png.unlink()
    sections.append(f"<h2>Confusion matrix</h2><img class='plot' alt='confusion matrix' "
                    f"src='{cm_uri}'>")

    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{'-' if a is None else f'{100 * a:.2f}%'}"
                   f"</td><td>{int(cm[i].sum())}</td></tr>"
                   for i, (c, a) in enumerate(zip(classes, per_class, strict=False)))
    sections.append(f"<h2>Per-class accuracy</h2><img class='plot' alt='per-class accuracy' "
                    f"src='{_fig_uri(_per_class_plot(classes, per_class))}'>"
                    f"<table><tr><th>class</th><th>top-1 accuracy</th><th>test images</th></tr>"
                    f"{rows}</table>")

    # A fixed, evenly spread sample of test images with their top-5 predictions.
    n = min(n_images, len(targets))
    idx = torch.linspace(0, len(targets) - 1, n).long() if n else torch.zeros(0, dtype=torch.long)
    cells = []
    top = probs.topk(min(5, k), 1)
    for i in idx.tolist():
        truth = classes[int(targets[i])]
        lines = []
        for p, c in zip(top.values[i].tolist(), top.indices[i].tolist(), strict=False):
            cls = "ok" if c == int(targets[i]) else ""
            lines.append(f"<span class='{cls}'>{html.escape(classes[c])} ({p:.2f})</span>")
        verdict = "ok" if int(top.indices[i, 0]) == int(targets[i]) else "bad"
        cells.append(f"<div class='cell'><img alt='test image {i}' "
                     f"src='{_image_uri(_thumbnail(test_set, i))}'><b class='{verdict}'>true: "
                     f"{html.escape(truth)}</b><br>{'<br>'.join(lines)}</div>")
    sections.append(f"<h2>Test images and their top-5 predictions</h2><div class='grid'>"
                    f"{''.join(cells)}</div>")

    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
           f"{html.escape(title)}</title><style>{_CSS}</style></head><body>"
           f"{''.join(sections + tail)}<p style='color:#888'>written by convzoo report</p>"
           f"</body></html>")
    atomic_write(out, lambda tmp: Path(tmp).write_text(doc, encoding="utf-8"))
    return out
