"""``predict``: the top-5 classes of images, in the course's format::

    cat.jpg: tabby (0.61), Egyptian cat (0.22), tiger cat (0.11), lynx (0.03), Persian cat (0.01)

Class names come from the weights' metadata (ImageNet weights: the ILSVRC-2012 names, a name two
classes share shown with its WordNet id); the preprocessing is the model's eval preset (see
:func:`convzoo.analysis.loading.image_transform`). Files that are not readable images are skipped
and listed in the result's ``skipped`` (the command line warns once, naming them); when no
file is an image, nothing could be predicted and that is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..engine.loaded import Loaded, load_trained
from ..errors import ConvzooError
from .loading import display_classes, image_transform, open_image

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, probability), best first
    name: str | None = None  # what to show: the path relative to the folder given, else the name

    def format(self) -> str:
        return f"{self.name or self.path}: " + ", ".join(f"{c} ({p:.2f})" for c, p in self.top)

    def to_dict(self) -> dict:
        return {"path": self.path, "top": [{"class": c, "prob": p} for c, p in self.top]}


@dataclass
class PredictResult:
    predictions: list[Prediction]
    skipped: list[str] = field(default_factory=list)  # files that are not readable images

    def to_dict(self) -> dict:
        return {"predictions": [p.to_dict() for p in self.predictions], "skipped": self.skipped}


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
                   batch_size: int = 32, device: str | torch.device = "cpu") -> PredictResult:
    """Top-``topk`` classes of every readable image among ``inputs`` (files or folders)."""
    transform = image_transform(loaded)
    files = expand_inputs(inputs)
    model = loaded.model.to(device).eval()
    classes = display_classes(loaded.classes, loaded.num_classes)
    result = PredictResult([])
    batch: list[tuple[tuple[Path, str], torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        x = torch.stack([t for _, t in batch]).to(device)
        out = model(x)
        logits = out if isinstance(out, torch.Tensor) else out[0]
        for ((path, shown), _), top in zip(batch, top_classes(logits, classes, topk),
                                           strict=True):
            result.predictions.append(Prediction(str(path), top, shown))
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
            topk: int = 5, device: str = "cpu") -> PredictResult:
    """Load ``source`` (run directory, weights file or ``model:tag``) and predict ``inputs``."""
    from ..engine.device import resolve_device

    if topk < 1:
        raise ConvzooError(f"--topk must be >= 1, got {topk}")
    dev = resolve_device(device)
    loaded = load_trained(source, model=model)
    return predict_images(loaded, inputs, topk=topk, device=dev)
