"""``convzoo report RUN_DIR``: one self-contained HTML file about a training run.

It holds the command line, the settings that differ from the defaults, the training curves
with the learning rate, the confusion matrix, per-class accuracy (axis zoomed to the data), a
gallery of misclassified test images (true and predicted class, confidence), and a grid of test
images with their top-5 predictions. Every image is a base64 ``data:`` URI and the styling is
inline, so the file opens offline in any browser and can be mailed as it is.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._html import figure_uri, image_uri, png_uri
from .._io import atomic_write
from ..engine.rundir import RunDir
from ..errors import ConvzooError

log = logging.getLogger(__name__)

_CSS = """body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left}th{background:#f3f3f3}img.plot{max-width:100%;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:10px}.cell{border:1px solid #ddd;padding:6px;width:170px;
font-size:.78em}.cell img{width:96px;height:96px;image-rendering:pixelated;display:block}
.ok{color:#1a7f37}.bad{color:#c62828}"""




def _thumbnail(dataset, i: int, side: int = 96) -> torch.Tensor:
    """Test image ``i`` as uint8 (C, H, W): in-memory images as they are, a streamed folder's
    file decoded and its shorter side resized to ``side``, center-cropped."""
    if hasattr(dataset, "images"):
        return dataset.images[i]
    from torchvision.transforms import v2

    from ..data.images import decode_file

    img = decode_file(dataset.paths[i], dataset.channels)
    img = v2.functional.resize(img, side, antialias=True)
    return v2.functional.center_crop(img, [side, side])


def per_class_figure(classes: list[str], acc: list[float | None]):
    """Bar chart of per-class top-1 accuracy, the y axis zoomed to the data's range (classes at
    94.5-99% are told apart, which a 0-100% axis hides); classes without test images are left
    out of the range."""
    from .._plotting import pyplot

    plt = pyplot()

    vals = [100 * (a or 0) for a in acc]
    seen = [100 * a for a in acc if a is not None] or [0.0, 100.0]
    lo, hi = min(seen), max(seen)
    pad = max(0.5, 0.15 * (hi - lo))
    fig, ax = plt.subplots(figsize=(min(12, 1 + 0.4 * len(classes)), 3.2))
    ax.bar(range(len(classes)), vals, color="#4c72b0")
    if len(classes) <= 40:
        ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 10 else 0,
                      ha="right" if len(classes) > 10 else "center", fontsize=8)
    ax.set(ylabel="top-1 accuracy (%)", ylim=(max(0.0, lo - pad), min(100.0, hi + pad)))
    ax.set_title(f"per-class accuracy: {lo:.1f}-{hi:.1f}% (axis zoomed)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def config_changes(config: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings of a run's config.json that differ from TrainConfig's defaults:
    key -> (default, value). Derived keys (world size, version, ...), ``out`` and the command
    line are left out: they are shown elsewhere or say nothing about the training."""
    from dataclasses import MISSING, fields

    from ..engine.config import DERIVED_KEYS, TrainConfig

    out = {}
    for f in fields(TrainConfig):
        if f.name not in config or f.name in ("out",) or f.name in DERIVED_KEYS:
            continue
        default = (f.default_factory() if f.default_factory is not MISSING
                   else None if f.default is MISSING else f.default)
        default = json.loads(json.dumps(default))  # tuples as the lists config.json holds
        if config[f.name] != default:
            out[f.name] = (default, config[f.name])
    return out


def command_line(config: dict[str, Any]) -> str | None:
    """The command that made the run (config.json ``argv``), as one shell line."""
    import shlex

    argv = config.get("argv")
    if not isinstance(argv, list) or not argv:
        return None
    first = Path(str(argv[0])).name
    head = ["convzoo"] if first in ("convzoo", "__main__.py") else [str(argv[0])]
    return shlex.join(head + [str(a) for a in argv[1:]])


def misclassified(probs: torch.Tensor, labels: torch.Tensor, n: int) -> list[int]:
    """Indices of up to ``n`` misclassified test images, the most confident mistakes first."""
    conf, pred = probs.max(1)
    wrong = (pred != labels).nonzero().flatten()
    order = conf[wrong].argsort(descending=True, stable=True)
    return wrong[order][:n].tolist()


def default_report_path(run_dir: str | Path) -> Path:
    """``RUN_DIR-report.html`` beside the run directory."""
    run_dir = Path(run_dir).resolve()
    return run_dir.parent / f"{run_dir.name}-report.html"


def build_report(run_dir: str | Path, out: str | Path | None = None, *, n_images: int = 24,
                 device: str = "cpu", batch_size: int = 500, workers: int = 4) -> Path:
    """Write the report to ``out`` (default :func:`default_report_path`, beside the run: only
    training writes into a run directory) and return its path."""
    from ..engine.rundir import refuse_output_in_run
    from .evaluation import confusion_matrix, prepare_eval

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConvzooError(f"run directory {run_dir} does not exist")
    if n_images < 0:
        raise ConvzooError(f"--images must be >= 0, got {n_images}")
    out = Path(out) if out else default_report_path(run_dir)
    refuse_output_in_run(out, "--out")
    # The same test split and preset as `convzoo eval RUN_DIR` (a folder run's --val-split too).
    job = prepare_eval(run_dir, device=device)
    loaded, data, test_set = job.loaded, job.split.data, job.split.dataset
    config = loaded.config
    final = _read_final(run_dir)
    ev = job.score(batch_size=batch_size, workers=workers, keep_outputs=True)
    probs, targets = ev.probs, ev.labels
    k = probs.shape[1]
    classes = test_set.classes if len(test_set.classes) == k else [str(i) for i in range(k)]
    title = f"{loaded.name} on {data}"

    sections = _overview_html(title, run_dir, len(targets), ev.topk_acc[1], ev.topk_acc[5],
                              command_line(config))
    tail = _config_html(config, final)
    curves = _curves_html(run_dir, title)
    if curves is not None:
        sections.append(curves)
    cm = confusion_matrix(probs.argmax(1), targets, k)
    sections += [_confusion_html(cm, classes, out, title),
                 _per_class_html(classes, ev.per_class_acc, cm),
                 _misclassified_html(probs, targets, classes, test_set, n_images),
                 _top5_html(probs, targets, classes, test_set, n_images)]
    doc = _document(title, sections + tail)
    atomic_write(out, lambda tmp: Path(tmp).write_text(doc, encoding="utf-8"))
    return out


def _read_final(run_dir: Path) -> dict[str, Any]:
    """The run's final.json; {} when it is missing, or (with a warning) damaged: the report
    scores the model itself and shows the recorded results only beside the settings."""
    try:
        return RunDir(run_dir).final(required=False)
    except ConvzooError as e:
        log.warning("%s; the report leaves the recorded results out", e)
        return {}


def _overview_html(title: str, run_dir: Path, n_test: int, top1: float, top5: float,
                   command: str | None) -> list[str]:
    """The heading: model and data, run directory, test accuracy, and the command if known."""
    parts = [f"<h1>convzoo report: {html.escape(title)}</h1><p>run directory "
             f"<code>{html.escape(str(run_dir))}</code>; test set: {n_test} images. "
             f"Top-1 accuracy <b>{100 * top1:.2f}%</b> (error {100 * (1 - top1):.2f}%), "
             f"top-5 accuracy <b>{100 * top5:.2f}%</b>.</p>"]
    if command:
        parts.append(f"<p>command: <code>{html.escape(command)}</code></p>")
    return parts


def _config_html(config: dict[str, Any], final: dict[str, Any]) -> list[str]:
    """The closing sections: final.json's metrics (when there are any), then the settings that
    differ from the defaults, with every key of config.json in a folded table."""
    changes = config_changes(config)
    rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(json.dumps(v))}</td>"
                   f"<td>{html.escape(json.dumps(d))}</td></tr>"
                   for key, (d, v) in changes.items())
    full = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(json.dumps(v))}</td>"
                   f"</tr>" for key, v in config.items())
    tail = [f"<h2>Config: what differs from the defaults</h2><table class='changes'><tr>"
            f"<th>setting</th><th>this run</th><th>default</th></tr>{rows}</table>"
            f"<details><summary>all {len(config)} keys of config.json</summary><table>{full}"
            f"</table></details>"]
    if final:
        keep = {key: v for key, v in final.items() if not isinstance(v, dict)}
        rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(v))}</td></tr>"
                       for key, v in keep.items())
        tail.insert(0, f"<h2>Final metrics (final.json)</h2><table>{rows}</table>")
    return tail


def _curves_html(run_dir: Path, title: str) -> str | None:
    """The training-curves section, or None when the run has neither metrics.csv to plot nor a
    curves.png."""
    # Drawn again from metrics.csv (loss, error and the learning rate over training), so that
    # a run written before curves.png had a learning-rate panel gets one; else its curves.png.
    curves_uri = None
    run = RunDir(run_dir)
    metrics = run.metrics()
    if metrics:
        from ..engine.curves import curves_figure

        try:
            curves_uri = figure_uri(curves_figure(metrics, title=title))
        except (KeyError, TypeError) as e:
            log.warning("cannot plot metrics.csv of %s: %s", run_dir, e)
    if curves_uri is None and run.curves() is not None:
        curves_uri = png_uri(run.curves().read_bytes())
    if curves_uri is None:
        return None
    return (f"<h2>Training curves and learning rate</h2><img class='plot' "
            f"alt='training curves' src='{curves_uri}'>")


def _confusion_html(cm: torch.Tensor, classes: list[str], out: Path, title: str) -> str:
    """The confusion-matrix section; the plot is written beside ``out``, inlined, then removed."""
    from .evaluation import plot_confusion

    cm_png = out.with_name(out.stem + ".confusion.png")
    plot_confusion(cm, classes, cm_png, title=f"{title}: confusion matrix")
    cm_uri = png_uri(cm_png.read_bytes())
    cm_png.unlink()
    return (f"<h2>Confusion matrix</h2><img class='plot' alt='confusion matrix' "
            f"src='{cm_uri}'>")


def _per_class_html(classes: list[str], per_class: list[float | None], cm: torch.Tensor) -> str:
    """The per-class accuracy section: the zoomed bar chart, then a table with each class's
    accuracy and number of test images (the rows of ``cm``)."""
    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{'-' if a is None else f'{100 * a:.2f}%'}"
                   f"</td><td>{int(cm[i].sum())}</td></tr>"
                   for i, (c, a) in enumerate(zip(classes, per_class, strict=False)))
    return (f"<h2>Per-class accuracy</h2><img class='plot' alt='per-class accuracy' "
            f"src='{figure_uri(per_class_figure(classes, per_class))}'>"
            f"<table><tr><th>class</th><th>top-1 accuracy</th><th>test images</th></tr>"
            f"{rows}</table>")


def _misclassified_html(probs: torch.Tensor, targets: torch.Tensor, classes: list[str],
                        test_set, n_images: int) -> str:
    """The gallery of up to ``n_images`` misclassified test images, most confident first."""
    pred1 = probs.argmax(1)
    wrong = misclassified(probs, targets, n_images)
    n_wrong = int((pred1 != targets).sum())
    cells = []
    for i in wrong:
        p = int(pred1[i])
        cells.append(f"<div class='cell wrong'><img alt='misclassified test image {i}' "
                     f"src='{image_uri(_thumbnail(test_set, i))}'>true: "
                     f"<b>{html.escape(classes[int(targets[i])])}</b><br>predicted: "
                     f"<b class='bad'>{html.escape(classes[p])}</b> ({float(probs[i, p]):.2f})"
                     f"<br><span style='color:#888'>#{i}</span></div>")
    return (f"<h2>Misclassified test images</h2><p>{n_wrong} of {len(targets)} test "
            f"images are misclassified; {len(wrong)} shown, the most confident mistakes "
            f"first (confidence: the predicted class's softmax probability).</p>"
            f"<div class='grid'>{''.join(cells)}</div>")


def _top5_html(probs: torch.Tensor, targets: torch.Tensor, classes: list[str], test_set,
               n_images: int) -> str:
    """A fixed, evenly spread sample of ``n_images`` test images with their top-5 predictions."""
    n = min(n_images, len(targets))
    idx = torch.linspace(0, len(targets) - 1, n).long() if n else torch.zeros(0, dtype=torch.long)
    cells = []
    top = probs.topk(min(5, probs.shape[1]), 1)
    for i in idx.tolist():
        truth = classes[int(targets[i])]
        lines = []
        for p, c in zip(top.values[i].tolist(), top.indices[i].tolist(), strict=False):
            cls = "ok" if c == int(targets[i]) else ""
            lines.append(f"<span class='{cls}'>{html.escape(classes[c])} ({p:.2f})</span>")
        verdict = "ok" if int(top.indices[i, 0]) == int(targets[i]) else "bad"
        cells.append(f"<div class='cell'><img alt='test image {i}' "
                     f"src='{image_uri(_thumbnail(test_set, i))}'><b class='{verdict}'>true: "
                     f"{html.escape(truth)}</b><br>{'<br>'.join(lines)}</div>")
    return (f"<h2>Test images and their top-5 predictions</h2><div class='grid'>"
            f"{''.join(cells)}</div>")


def _document(title: str, parts: list[str]) -> str:
    """The whole HTML page around ``parts``, with the inline style sheet."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"{''.join(parts)}<p style='color:#888'>written by convzoo report</p>"
            f"</body></html>")


@dataclass(frozen=True)
class ReportPage:
    """A written report shown inline in Jupyter: ``ReportPage(build_report(run_dir))`` as a
    cell's value displays the whole page in a frame (it is self-contained)."""

    path: Path
    height: int = 720  # pixels of the frame

    def _repr_html_(self) -> str:
        page = Path(self.path).read_text(encoding="utf-8")
        return (f"<iframe srcdoc=\"{html.escape(page, quote=True)}\" style='width:100%;"
                f"height:{self.height}px;border:1px solid #ddd'></iframe>")
