"""Turning what a user names on the command line into a model: a run directory, a weights file
(``.safetensors`` with convzoo metadata, or a torchvision ``.pth`` with ``model=``), or a
registered model name (``resnet18``; ``lenet5:mnist`` for shipped weights), and the model's eval
preprocessing for single images.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConvzooError
from ..registry import ModelInfo, create_model, model_info

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Native image side of the data sets the engine reads (the size a run's model was fed before any
# padding inside the preset); anything else is taken to be the model's own input size.
NATIVE_SIZE = {"mnist": 28, "fashion-mnist": 28, "fashion_mnist": 28, "fashionmnist": 28,
               "kmnist": 28, "emnist": 28, "cifar10": 32, "cifar-10": 32, "cifar100": 32,
               "cifar-100": 32, "svhn": 32}
CLASS_INDEX = Path(__file__).resolve().parents[1] / "data" / "imagenet_class_index.json"
_WNID = re.compile(r"^n\d{8}$")


@dataclass
class Loaded:
    """A model ready for inference, with what is known about how it was trained."""

    model: nn.Module
    name: str
    info: ModelInfo
    model_args: dict[str, Any]
    classes: list[str] | None  # display names, one per output
    source: str
    run_dir: Path | None = None
    data: str | None = None  # the data set it was trained on, when known
    preset: dict[str, Any] | None = None  # the run's preset.json, when known

    @property
    def in_chans(self) -> int:
        return int(self.model_args.get("in_chans", self.info.input_size[0]))

    @property
    def num_classes(self) -> int:
        return int(self.model_args.get("num_classes", self.info.default_num_classes))


def imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 ILSVRC-2012 classes as ``(wnid, short name)`` in index order."""
    try:
        index = json.loads(CLASS_INDEX.read_text())
    except OSError as e:
        raise ConvzooError(f"cannot read the ImageNet class index {CLASS_INDEX}: {e}") from None
    return [tuple(index[str(i)]) for i in range(len(index))]  # type: ignore[misc]


def imagenet_display_names() -> list[str]:
    """Short names with ``_`` as spaces; a name two classes share (``crane``, ``maillot``) gets
    its WordNet id, e.g. ``crane (n02012849)``."""
    pairs = imagenet_classes()
    names = [n.replace("_", " ") for _, n in pairs]
    dup = {n for n in names if names.count(n) > 1}
    return [f"{n} ({w})" if n in dup else n for (w, _), n in zip(pairs, names, strict=False)]


def display_classes(classes: list[str] | None, num_classes: int) -> list[str] | None:
    """Class names to show: ImageNet WordNet ids become names; 1000 unnamed outputs are ImageNet."""
    if classes is not None and len(classes) == num_classes:
        if len(classes) == 1000 and all(_WNID.match(c) for c in classes):
            wnids = [w for w, _ in imagenet_classes()]
            by_wnid = dict(zip(wnids, imagenet_display_names(), strict=True))
            return [by_wnid.get(c, c) for c in classes]
        return list(classes)
    if num_classes == 1000:
        return imagenet_display_names()
    return None


def _head_mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int] | None:
    """(classes in the file, classes of the model) when only the classifier's shape differs."""
    own = model.state_dict()
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if not wrong:
        return None
    last = [k for k in own if own[k].ndim == 2 or (own[k].ndim == 4 and k.endswith("weight"))]
    head = last[-1] if last else None
    if head in wrong and all(k.rsplit(".", 1)[0] == head.rsplit(".", 1)[0] for k in wrong):
        return int(state[head].shape[0]), int(own[head].shape[0])
    return None


def load_source(source: str | Path, *, model: str | None = None,
                model_args: dict[str, Any] | None = None, device: str | torch.device = "cpu"
                ) -> Loaded:
    """A model in eval mode from a run directory, a weights file or a registered name."""
    from ..weights import load_state_dict_checked, read_weights, shipped_weights_path

    model_args = dict(model_args or {})
    text = str(source)
    path = Path(text)
    run_dir = None
    if path.is_dir():
        run_dir = path
        path = path / "model.safetensors"
        if not path.is_file():
            raise ConvzooError(
                f"run directory {run_dir} has no model.safetensors (unfinished run?)")
    if not path.is_file():
        name = text.partition(":")[0]
        info = model_info(name)  # an unknown name raises with close suggestions
        shipped = shipped_weights_path(text)
        if shipped is not None:
            path = shipped
        else:
            net = create_model(name, **model_args).to(device).eval()
            args = dict(model_args)
            return Loaded(net, name, info, args, display_classes(None, _classes_of(info, args)),
                          text)
    wf = read_weights(path)
    if model and wf.model and model != wf.model:
        raise ConvzooError(f"weights {path} are for model {wf.model!r}, not {model!r}")
    name = model or wf.model
    if name is None:
        raise ConvzooError(f"weights file {path} does not name its model; pass --model NAME")
    info = model_info(name)
    args = {**wf.model_args, **model_args}
    net = create_model(name, **args)
    mismatch = _head_mismatch(net, wf.state_dict)
    if mismatch:
        raise ConvzooError(
            f"weights {path} have {mismatch[0]} classes but model {name!r} is built for "
            f"{mismatch[1]} classes; pass num_classes={mismatch[0]}"
        )
    load_state_dict_checked(net, wf.state_dict, source=str(path))
    net = net.to(device).eval()
    preset = None
    if run_dir is not None and (run_dir / "preset.json").is_file():
        preset = json.loads((run_dir / "preset.json").read_text())
    data = wf.extra.get("data")
    if data is None and run_dir is not None and (run_dir / "config.json").is_file():
        data = json.loads((run_dir / "config.json").read_text()).get("data")
    classes = display_classes(wf.classes, _classes_of(info, args))
    return Loaded(net, name, info, args, classes, text, run_dir, data, preset)


def _classes_of(info: ModelInfo, args: dict[str, Any]) -> int:
    return int(args.get("num_classes", info.default_num_classes))


def image_transform(loaded: Loaded):
    """The model's eval preprocessing: a function PIL image -> float tensor (C, H, W).

    A run's own preset (normalisation, padding) on images resized to the data set's native size;
    otherwise ImageNet's: shorter side to ``size / 0.875`` (256 for 224, 342 for 299), center
    crop, ImageNet mean/std.
    """
    from ..data import DataPreset, apply_preset, preset_for

    chans = loaded.in_chans
    mode = "L" if chans == 1 else "RGB"
    model_size = loaded.info.input_size[1]
    preset = None
    if loaded.preset is not None:
        names = {f.name for f in fields(DataPreset)}
        preset = DataPreset(**{k: (tuple(v) if isinstance(v, list) else v)
                               for k, v in loaded.preset.items() if k in names})
    elif loaded.data is not None:
        size = NATIVE_SIZE.get(loaded.data, model_size)
        preset = preset_for(loaded.data, in_chans=chans, image_size=size, model_size=model_size)
    if preset is not None and getattr(preset, "crop_size", None) is None:
        native = NATIVE_SIZE.get(loaded.data or "", None)
        if native is None:
            native = model_size if preset.pad_to is None else min(model_size, preset.pad_to)

        def small(img):
            img = img.convert(mode).resize((native, native))
            x = _to_uint8(img, chans)
            return apply_preset(x, preset, train=False, in_chans=chans)[0]

        return small

    # Large images: resize the shorter side, center crop, normalise (torchvision's eval preset).
    crop = getattr(preset, "crop_size", None) or model_size
    resize = getattr(preset, "resize_size", None) or round(crop / 0.875)
    if preset is not None:
        mean, std = tuple(preset.mean), tuple(preset.std)
    elif chans == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = (0.5,) * chans, (0.5,) * chans
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)

    def imagenet(img):
        img = img.convert(mode)
        w, h = img.size
        scale = resize / min(w, h)
        img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))),
                         resample=3 if getattr(preset, "interpolation", "") == "bicubic" else 2)
        w, h = img.size
        left, top = (w - crop) // 2, (h - crop) // 2
        img = img.crop((left, top, left + crop, top + crop))
        x = _to_uint8(img, chans).float().div(255)
        return ((x - mean_t) / std_t)[0]

    return imagenet


def _to_uint8(img, chans: int) -> torch.Tensor:
    import numpy as np

    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(a.copy()).permute(2, 0, 1).unsqueeze(0)[:, :chans]  # (1, C, H, W)


def open_image(path: str | Path):
    """A PIL image, or None (with a warning naming the file) when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
        return img
    except (UnidentifiedImageError, OSError, ValueError) as e:
        log.warning("skipping %s: not a readable image (%s)", path, e)
        return None
