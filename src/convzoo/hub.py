"""torchvision's ImageNet weights for the zoo's ImageNet-form networks, fetched once.

``resnet50:imagenet`` is torchvision's DEFAULT weights of ``resnet50``; ``resnet50:IMAGENET1K_V1``
and ``resnet50:IMAGENET1K_V2`` name torchvision's own tags. Everything about a file -- its URL,
file name, categories, eval transform (resize, crop, interpolation, mean, std) and the published
Acc@1/Acc@5 -- is read from torchvision's installed weight enums (``get_model_weights``); convzoo
keeps no table of its own.

Files live where torch.hub keeps them (``$TORCH_HOME/hub/checkpoints/<file name>``), so a file
torchvision has already downloaded is used without network, and the reverse. A download is
written under a temporary name beside the target, its SHA-256 checked against the prefix in the
file name (torchvision's ``resnet18-f37072fd.pth``), then renamed: a killed, cut or corrupted
download leaves nothing under the final name, and two processes fetching at once each rename a
whole file. A cached file is trusted as torch.hub trusts it (its hash was checked when it was
downloaded) and read with ``weights_only=True``. ``$CONVZOO_WEIGHTS_MIRROR`` replaces the
folder of every URL (a local mirror for a classroom without internet).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConvzooError, DataError

log = logging.getLogger(__name__)

DEFAULT_TAG = "imagenet"  # torchvision's DEFAULT member of the model's weights enum
MIRROR_ENV = "CONVZOO_WEIGHTS_MIRROR"
# The ported TensorFlow weights of these two expect inputs in [-1, 1]; torchvision's builders
# switch ``transform_input`` on whenever they load them, so convzoo does too.
TRANSFORM_INPUT = ("googlenet", "inception_v3")
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torch.hub's rule for the hash prefix


@dataclass(frozen=True)
class ImagenetWeights:
    """One member of torchvision's weights enum, as a zoo network loads it."""

    model: str  # the zoo's model name (``resnet50``)
    tag: str  # torchvision's member name (``IMAGENET1K_V2``)
    default: bool  # True when it is the enum's DEFAULT (what ``MODEL:imagenet`` names)
    enum: Any  # the torchvision ``WeightsEnum`` member

    @property
    def source(self) -> str:
        return f"{self.model}:{self.tag}"

    @property
    def url(self) -> str:
        url = self.enum.url
        mirror = os.environ.get(MIRROR_ENV)
        return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url

    @property
    def file_name(self) -> str:
        return self.enum.url.rsplit("/", 1)[-1]

    @property
    def path(self) -> Path:
        """Where torch.hub keeps the file (it may not exist yet)."""
        return hub_dir() / self.file_name

    @property
    def sha256_prefix(self) -> str | None:
        found = _HASH_IN_NAME.search(self.file_name)
        return found.group(1) if found else None

    @property
    def categories(self) -> list[str] | None:
        """torchvision's class names, one per output (None for VGG-16's features-only file)."""
        names = self.enum.meta.get("categories")
        return list(names) if names else None

    @property
    def metrics(self) -> dict[str, float]:
        """The published ``acc@1`` and ``acc@5`` (percent) on the ILSVRC-2012 validation set."""
        return dict(self.enum.meta.get("_metrics", {}).get("ImageNet-1K", {}))

    @property
    def file_size_mb(self) -> float | None:
        return self.enum.meta.get("_file_size")

    @property
    def model_args(self) -> dict[str, Any]:
        """Builder arguments the weights need (``transform_input`` for the TF ports)."""
        return {"transform_input": True} if self.model in TRANSFORM_INPUT else {}

    def eval_sizes(self) -> tuple[int, int]:
        """(resize, crop) in pixels of the weights' eval transform."""
        t = self.enum.transforms()
        return int(t.resize_size[0]), int(t.crop_size[0])

    def preset(self):
        """The weights' eval transform as a streamed :class:`~convzoo.data.DataPreset`."""
        from .data.presets import IMAGENET_MEAN, IMAGENET_STD, DataPreset

        t = self.enum.transforms()
        resize, crop = self.eval_sizes()
        return DataPreset(mean=tuple(t.mean or IMAGENET_MEAN), std=tuple(t.std or IMAGENET_STD),
                          hflip=True, crop_size=crop, resize_size=resize,
                          interpolation=str(t.interpolation.value))

    def cached(self) -> Path | None:
        """The file when it is in the cache; never touches the network."""
        return self.path if self.path.is_file() else None

    def fetch(self, *, progress: Callable[[str, int, int | None], None] | None = None,
              timeout: float = 20.0) -> Path:
        """The cached file, downloading it first when absent (see the module's docstring)."""
        if self.cached():
            return self.path
        return _download(self.url, self.path, self.sha256_prefix,
                         progress=progress or _PROGRESS[0], timeout=timeout)

    def metadata(self) -> dict[str, Any]:
        """What a convzoo weights file would carry: data, tag, published accuracy, URL."""
        return {"data": "imagenet", "source": "torchvision", "tag": self.tag,
                "url": self.enum.url, "published_acc": self.metrics,
                "recipe": self.enum.meta.get("recipe")}


_PROGRESS: list[Callable[[str, int, int | None], None] | None] = [None]


def set_download_progress(callback: Callable[[str, int, int | None], None] | None) -> None:
    """``callback(file name, bytes done, total bytes or None)`` for the downloads that follow
    where none is passed: the command line sets a bar on a terminal; the library stays quiet."""
    _PROGRESS[0] = callback


def hub_dir() -> Path:
    """torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _enum_of(model: str):
    """torchvision's weights enum of zoo model ``model``, or None."""
    from torchvision.models import get_model_weights

    from .models._registry import model_info

    info = model_info(model)
    if info.form != "imagenet" or not info.torchvision_name:
        return None
    try:
        return get_model_weights(info.torchvision_name)
    except (ValueError, KeyError):
        return None


def imagenet_tags(model: str) -> list[str]:
    """torchvision's tags of ``model`` (``IMAGENET1K_V1``, ...); [] when it has none."""
    enum = _enum_of(model)
    return [] if enum is None else list(enum.__members__)


def is_imagenet_tag(tag: str) -> bool:
    """True for ``imagenet`` and torchvision-style tags (``IMAGENET1K_V1``)."""
    return tag == DEFAULT_TAG or tag.upper().startswith("IMAGENET")


def imagenet_weights(model: str, tag: str = DEFAULT_TAG) -> ImagenetWeights:
    """The weights ``model:tag`` names; a model or tag torchvision lacks fails with the choices."""
    enum = _enum_of(model)
    if enum is None:
        from .models._registry import list_models, model_info

        have = [m for m in list_models() if _enum_of(m) is not None]
        shipped = sorted(model_info(model).weights)
        own = f" (its shipped weights: {', '.join(shipped)})" if shipped else ""
        raise ConvzooError(f"{model}:{tag}: model {model!r} has no torchvision ImageNet "
                           f"weights{own}; the networks that do: {', '.join(have)}")
    default = enum.DEFAULT
    if tag == DEFAULT_TAG:
        member = default
    elif tag in enum.__members__:
        member = enum[tag]
    else:
        tags = ", ".join([DEFAULT_TAG, *enum.__members__])
        raise ConvzooError(f"weights tag {tag!r} of model {model!r} is not one of torchvision's: "
                           f"{tags}")
    return ImagenetWeights(model, member.name, member is default, member)


def all_imagenet_weights() -> list[ImagenetWeights]:
    """Every torchvision ImageNet weights file a zoo network loads, in the zoo's order."""
    from .models._registry import list_models

    out = []
    for model in list_models():
        enum = _enum_of(model)
        if enum is not None:
            out.extend(ImagenetWeights(model, m.name, m is enum.DEFAULT, m) for m in enum)
    return out


def by_file_name(name: str) -> ImagenetWeights | None:
    """The weights whose torchvision file name is ``name`` (``alexnet-owt-7be5be79.pth``)."""
    return next((w for w in all_imagenet_weights() if w.file_name == name), None)


def eval_sizes(model: str | None, weights: str | None = None) -> tuple[int, int]:
    """(resize, crop) in pixels of the eval transform ``model``'s weights carry, as torchvision's
    weights do: those the tag or torchvision file ``weights`` names (``IMAGENET1K_V2``: 232/224
    for the V2 ResNets), else the model's first ImageNet weights (the paper-era recipe: 256/224,
    342/299 for inception_v3), else :data:`convzoo.data.presets.DEFAULT_EVAL_SIZES` (256/224).
    The data layer takes the pair as numbers (:func:`convzoo.data.preset_for`)."""
    from .data.presets import DEFAULT_EVAL_SIZES

    if model is None:
        return DEFAULT_EVAL_SIZES
    try:
        tags = imagenet_tags(model)
    except ConvzooError:  # not a registered name
        return DEFAULT_EVAL_SIZES
    if not tags:
        return DEFAULT_EVAL_SIZES
    known = by_file_name(Path(weights).name) if weights else None  # torchvision's .pth by path
    if known is not None and known.model == model:
        return known.eval_sizes()
    tag = weights if weights and is_imagenet_tag(weights) and (
        weights in tags or weights == "imagenet") else tags[0]
    return imagenet_weights(model, tag).eval_sizes()


def weights_model_args(model: str, weights: str) -> dict[str, Any]:
    """Builder arguments that torchvision's weights ``weights`` (a tag or a path to one of its
    files) need in ``model``; {} for any other weights."""
    known = by_file_name(Path(weights).name) if weights.endswith(".pth") else None
    if known is None and is_imagenet_tag(weights) and model in TRANSFORM_INPUT:
        return {"transform_input": True}
    return known.model_args if known is not None and known.model == model else {}


def cached_imagenet_weights(model: str, tag: str = DEFAULT_TAG) -> Path | None:
    """The cached file of ``model:tag``, or None; never touches the network."""
    return imagenet_weights(model, tag).cached()


def fetch_imagenet_weights(model: str, tag: str = DEFAULT_TAG, *,
                           progress: Callable[[str, int, int | None], None] | None = None
                           ) -> Path:
    """The file of ``model:tag`` in torch.hub's cache, downloaded first when absent."""
    return imagenet_weights(model, tag).fetch(progress=progress)


def _download(url: str, dest: Path, sha_prefix: str | None, *,
              progress: Callable[[str, int, int | None], None] | None, timeout: float) -> Path:
    """``url`` into ``dest`` through a temporary file, checked against ``sha_prefix``."""
    from ._io import atomic_write
    from .data.downloads import fetch_url, file_digest

    def write(tmp: str) -> None:
        try:
            fetch_url(url, Path(tmp), timeout=timeout, progress=progress, name=dest.name)
        except DataError as e:  # offline, refused, cut midway: say where the file would go
            raise ConvzooError(f"{e}; to use these weights without network, download {url} "
                               f"elsewhere and put it at {dest}") from None
        if sha_prefix is not None:
            got = file_digest(Path(tmp), "sha256")
            if not got.startswith(sha_prefix):
                raise ConvzooError(f"{url}: downloaded file has SHA-256 {got[:16]}..., expected "
                                   f"a hash starting {sha_prefix}; nothing was kept (a corrupted "
                                   f"download or a wrong mirror)")

    log.info("downloading %s to %s", url, dest)
    atomic_write(dest, write)
    return dest

