"""``predict``: the top-5 classes of images, in the course's format::

    cat.jpg: tabby (0.61), Egyptian cat (0.22), tiger cat (0.11), lynx (0.03), ...
      true class Egyptian cat: rank 2 of 1000 (p 0.22); top-1 … top-5 error (1, 0, 0, 0, 0)

Class names come from the weights' metadata (ImageNet weights: torchvision's names of the
ILSVRC-2012 classes); the preprocessing is the model's eval preset (see
:func:`convzoo.analysis.loading.image_transform`). Files that are not readable images are skipped
and listed in the result's ``skipped`` (the command line warns once, naming them); when no
file is an image, nothing could be predicted and that is an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..engine.loaded import Loaded, load_trained
from ..errors import ConvzooError
from .loading import display_classes, image_transform, open_image

log = logging.getLogger(__name__)


@dataclass
class TrueClass:
    """Where the true class of an image landed: the lecture's top-k error of one answer."""

    name: str
    index: int  # output index
    rank: int  # 1 = the model's first answer
    prob: float
    num_classes: int

    def topk_err(self, kmax: int = 5) -> list[int]:
        """Top-1 … top-``kmax`` error of this one image: 1 while the class is not in the top k."""
        return [int(self.rank > k) for k in range(1, kmax + 1)]

    def format(self) -> str:
        errs = ", ".join(map(str, self.topk_err()))
        return (f"  true class {self.name}: rank {self.rank} of {self.num_classes} "
                f"(p {self.prob:.2f}); top-1 … top-5 error ({errs})")

    def to_dict(self) -> dict:
        return {"class": self.name, "index": self.index, "rank": self.rank, "prob": self.prob,
                "topk_err": self.topk_err()}


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, probability), best first
    name: str | None = None  # what to show: the path relative to the folder given, else the name
    true: TrueClass | None = None  # with --true-class

    def format(self) -> str:
        line = f"{self.name or self.path}: " + ", ".join(f"{c} ({p:.2f})" for c, p in self.top)
        return line + ("\n" + self.true.format() if self.true else "")

    def to_dict(self) -> dict:
        out = {"path": self.path, "top": [{"class": c, "prob": p} for c, p in self.top]}
        return {**out, "true_class": self.true.to_dict()} if self.true else out


def class_index(name: str, classes: list[str] | None, num_classes: int) -> int:
    """The output index of class ``name``: a class name (any case; ``_`` for spaces), an ILSVRC
    WordNet id (``n02124075``) for a 1000-class ImageNet model, or an index. A name that is not
    among the classes fails with the closest ones."""
    import difflib

    text = name.strip()
    if text.isdigit() and int(text) < num_classes:
        return int(text)
    names = classes or [str(i) for i in range(num_classes)]
    folded = [c.lower().replace("_", " ") for c in names]
    key = text.lower().replace("_", " ")
    if key in folded:
        return folded.index(key)
    if num_classes == 1000 and re.fullmatch(r"n\d{8}", text):
        from ..data import imagenet_classes

        wnids = imagenet_classes()[0]
        if text in wnids:
            return wnids.index(text)
    close = difflib.get_close_matches(key, folded, n=3, cutoff=0.6)
    hint = (f"; closest: {', '.join(names[folded.index(c)] for c in close)}" if close
            else "; give a class name" + (" or WordNet id" if num_classes == 1000 else ""))
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise ConvzooError(f"--true-class {shown!r} is not one of the model's {num_classes} "
                       f"classes{hint}")


@dataclass
class PredictResult:
    predictions: list[Prediction]
    skipped: list[str] = field(default_factory=list)  # files that are not readable images

    def to_dict(self) -> dict:
        return {"predictions": [p.to_dict() for p in self.predictions], "skipped": self.skipped}

    def _repr_html_(self) -> str:
        """Jupyter's view: each image (a 128 px thumbnail) beside its top-k as bars."""
        import html

        from .._html import bars, image_uri, img_tag

        cells = []
        for p in self.predictions:
            img = open_image(p.path)
            thumb = ""
            if img is not None:
                img.thumbnail((128, 128))
                thumb = img_tag(image_uri(img.convert("RGB")), p.name or p.path)
            cells.append(f"<div style='display:flex;gap:12px;align-items:center;margin:4px 0'>"
                         f"{thumb}<div><b>{html.escape(p.name or p.path)}</b>{bars(p.top)}</div>"
                         f"</div>")
        if self.skipped:
            cells.append(f"<p>not images: {html.escape(', '.join(self.skipped))}</p>")
        return "".join(cells)


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(file, name to show): files as given (shown by name), and the files of folders (sorted,
    recursively) shown by their paths relative to the folder (``cat/0001.jpg``, not twenty lines
    of ``0001.jpg``)."""
    files: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files.extend((f, f.relative_to(p).as_posix())
                         for f in sorted(p.rglob("*")) if f.is_file())
        elif p.is_file():
            files.append((p, p.name))
        else:
            raise ConvzooError(f"image {p} does not exist")
    return files


def top_classes(logits: torch.Tensor, classes: list[str] | None, topk: int = 5
                ) -> list[list[tuple[str, float]]]:
    """Per row of ``logits`` (N, C): the ``topk`` (class name, softmax probability), best first;
    names are the class indices as text when ``classes`` is None."""
    probs = logits.float().softmax(1).cpu()
    values, index = probs.topk(min(topk, probs.shape[1]), dim=1)
    return [[(classes[j] if classes else str(j), p) for j, p in zip(i, v, strict=True)]
            for v, i in zip(values.tolist(), index.tolist(), strict=True)]


@torch.no_grad()
def predict_images(loaded: Loaded, inputs: Iterable[str | Path], *, topk: int = 5,
                   batch_size: int = 32, device: str | torch.device = "cpu",
                   true_class: str | None = None) -> PredictResult:
    """Top-``topk`` classes of every readable image among ``inputs`` (files or folders);
    with ``true_class`` (see :func:`class_index`) also its rank and top-1 … top-5 error."""
    classes = display_classes(loaded.classes, loaded.num_classes)
    truth = None if true_class is None else class_index(true_class, classes, loaded.num_classes)
    transform = image_transform(loaded)
    files = expand_inputs(inputs)
    model = loaded.model.to(device).eval()
    result = PredictResult([])
    batch: list[tuple[tuple[Path, str], torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        x = torch.stack([t for _, t in batch]).to(device)
        out = model(x)
        logits = out if isinstance(out, torch.Tensor) else out[0]
        probs = logits.float().softmax(1).cpu()
        for ((path, shown), _), top, p in zip(batch, top_classes(logits, classes, topk), probs,
                                              strict=True):
            true = None
            if truth is not None:
                rank = int((p > p[truth]).sum()) + 1
                true = TrueClass(classes[truth] if classes else str(truth), truth, rank,
                                 float(p[truth]), len(p))
            result.predictions.append(Prediction(str(path), top, shown, true))
        batch.clear()

    for f in files:
        img = open_image(f[0])
        if img is None:
            result.skipped.append(str(f[0]))
            continue
        batch.append((f, transform(img)))
        if len(batch) >= batch_size:
            flush()
    flush()
    if not result.predictions:
        what = (f"none of the {len(files)} files is a readable image (e.g. {result.skipped[0]})"
                if files else "the folders given hold no files")
        raise ConvzooError(f"nothing to predict: {what}")
    return result


def predict(source: str, inputs: Iterable[str | Path], *, model: str | None = None,
            topk: int = 5, device: str = "cpu", true_class: str | None = None) -> PredictResult:
    """Load ``source`` (run directory, weights file or ``model:tag``, e.g. ``alexnet:imagenet``)
    and predict ``inputs``; ``true_class`` as in :func:`predict_images`."""
    from ..engine.device import resolve_device

    if topk < 1:
        raise ConvzooError(f"--topk must be >= 1, got {topk}")
    dev = resolve_device(device)
    loaded = load_trained(source, model=model)
    return predict_images(loaded, inputs, topk=topk, device=dev, true_class=true_class)
