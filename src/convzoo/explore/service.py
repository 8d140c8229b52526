"""What `convzoo explore` answers, without HTTP: the models it offers, the images it holds, and one
cached forward pass per (model, image) from which every layer's view is cut.

Every number comes from the library: :func:`convzoo.load_trained` loads, ``analysis.summary`` gives
the per-layer table, ``analysis.loading.image_transform`` the model's preprocessing,
``analysis.visualize`` the traced pass, filters and Grad-CAM, ``analysis.predict.top_classes`` the
top-5, ``convzoo.scratch.im2col`` the convolution's matrix. This module picks, caches and shapes
them for the page (:mod:`convzoo.explore.app` serves it).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engine.loaded import Loaded, load_trained
from ..engine.rundir import READ_BY_LOAD, WEIGHTS, RunDir
from ..errors import ConvzooError, shown

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 8 * 2**20  # an upload's size cap
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                 "BMP": "image/bmp", "WEBP": "image/webp"}
MAX_SIDE = 1024  # pixels: a larger upload is kept scaled down to this longer side
SAMPLES = 24  # test images offered per data set
MAX_MAPS = 64  # feature maps drawn per layer
# Real photos shipped inside scikit-image (skimage.data, no download), offered to every RGB net.
PHOTOS = {"chelsea": "Chelsea the cat", "coffee": "a cup of coffee",
          "astronaut": "astronaut Eileen Collins", "rocket": "a rocket on its launch pad"}
MAX_VALUES = 4096  # values of a vector (fully connected) output sent to the page
MAX_CLASS_ROWS = 20  # logits shown class by class up to this many classes; beyond: the top ones
LATENCY_REPEATS = 15  # timed runs of Compare's batch-1 latency (each lasts >= bench.MIN_RUN_S)
# The lecture slide's 4x4 max-pool example (CS231n): 2x2 windows, stride 2 keep 6, 8, 3, 4.
SLIDE_POOL_INPUT = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]


class BadRequest(ConvzooError):
    """Input the page or a client sent that cannot be served: answered with 4xx and the message."""

    status = 400


class NotFound(BadRequest):
    status = 404


@dataclass
class Entry:
    """A network the page offers."""

    id: str  # what the API takes: "lenet5:mnist", "resnet50", "run:lenet5-mnist", "arg:0"
    model: str  # registered model name
    label: str
    kind: str  # "shipped", "imagenet" (torchvision's, cached), "run", "file" (given on the
    # command line), "random"
    source: str  # what load_trained gets
    data: str | None = None  # the data set it was trained on
    trained: bool = True  # False: random weights (a registered name without weights)
    fetch: str | None = None  # the command that would bring its ImageNet weights here

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "label": self.label, "kind": self.kind,
                "trained": self.trained, "data": self.data, "fetch": self.fetch}


@dataclass
class Picture:
    """An image the page can run models on: an upload, a drawing or a test image."""

    id: str
    image: Any  # PIL image, RGB or L
    name: str
    label: int | None = None  # class index, for a test image
    classes: list[str] | None = None  # its data set's classes
    data: str | None = None


@dataclass
class Pass:
    """One forward pass of one image through one model, every leaf module's input and output."""

    x: torch.Tensor  # (C, H, W), the model's input after its preprocessing
    logits: torch.Tensor  # (1, classes)
    calls: list  # analysis.visualize.LayerCall of every leaf and torch function, forward order =
    # the summary's rows
    modules: dict  # module name -> its first LayerCall, for every module (blocks too)


@dataclass
class Model:
    entry: Entry
    loaded: Loaded
    classes: list[str] | None  # display names, one per output
    summary: Any  # analysis.summary.ModelSummary at the model's input size
    transform: Any  # PIL image -> (C, H, W) tensor
    lock: threading.Lock = field(default_factory=threading.Lock)


class _LRU(OrderedDict):
    """The ``size`` most recently used entries; safe to use from the server's worker threads."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.guard = threading.Lock()

    def put(self, key, value) -> None:
        with self.guard:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)

    def take(self, key):
        with self.guard:
            if key in self:
                self.move_to_end(key)
                return self[key]
            return None


@functools.cache
def _has_imagenet(name: str) -> bool:
    """Whether torchvision has ImageNet weights for zoo model ``name``."""
    from ..hub import imagenet_tags

    return bool(imagenet_tags(name))


def _fetch_command(name: str) -> str | None:
    """``convzoo weights fetch NAME:imagenet`` when torchvision has ImageNet weights for
    ``name`` and they are not cached here; None otherwise (no network is touched)."""
    from ..hub import cached_imagenet_weights

    if not _has_imagenet(name) or cached_imagenet_weights(name) is not None:
        return None
    return f"convzoo weights fetch {name}:imagenet"


# Every file of a run directory that load_trained reads (engine/loaded.py): each must lie under
# --runs once its links are resolved, or a run folder could serve any file it links to.
RUN_FILES = READ_BY_LOAD


def safe_run_dir(root: Path, rel: str) -> Path:
    """``root / rel`` when it is a run directory inside ``root`` (no ``..``, no absolute path, no
    link out of it, and none of its :data:`RUN_FILES` a link out of it); otherwise
    :class:`NotFound`."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts or "\\" in rel or "\0" in rel:
        raise NotFound(f"run {shown(rel)!r}: expected a run directory name under {root}")
    try:
        base = root.resolve()
        path = (base / rel).resolve()
        if not path.is_relative_to(base) or not (path / WEIGHTS).is_file():
            raise NotFound(f"run {shown(rel)!r} is not a run directory under {root}")
        outside = [name for name in RUN_FILES if (path / name).is_symlink()
                   and not (path / name).resolve().is_relative_to(base)]
    except OSError as e:  # a name too long for the file system, a loop of links
        raise NotFound(f"run {shown(rel)!r} is not a run directory under {root} "
                       f"({e.strerror or type(e).__name__})") from None
    if outside:
        raise NotFound(f"run {shown(rel)!r}: its {', '.join(outside)} is a link out of {root}; "
                       f"not served")
    return path


def open_upload(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES):
    """A decoded PIL image (RGB or L) from uploaded bytes, or :class:`BadRequest` saying why not:
    too many bytes, not an image type we read, or more pixels than the one cap of every image
    reader (``convzoo.data.images.MAX_IMAGE_PIXELS``, known from the header, before anything is
    decoded). Decoded by :func:`convzoo.data.images.decode_bytes`, as data folders and predict."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2.functional import to_pil_image

    from ..data.images import MAX_IMAGE_PIXELS, ImageTooLarge, decode_bytes
    from ..errors import DataError

    if len(data) > max_bytes:
        raise BadRequest(f"image is {len(data):,} bytes; the limit is {max_bytes:,}")
    if not data:
        raise BadRequest("image is empty")
    try:
        img = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))  # reads the header only
    except Image.DecompressionBombError:  # PIL's own header check, far above ours
        raise BadRequest(f"image has more pixels than the limit of {MAX_IMAGE_PIXELS:,}"
                         ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadRequest("not an image: expected PNG, JPEG, GIF, BMP or WebP") from None
    grey = img.mode in ("L", "1", "I;16", "I")
    try:
        return to_pil_image(decode_bytes(data, 1 if grey else 3))
    except ImageTooLarge as e:
        raise BadRequest(str(e)) from None
    except DataError as e:
        raise BadRequest(f"cannot decode the {img.format} image: {e}") from None


def png_bytes(array: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3) uint8 as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)  # fast: a click waits
    return buf.getvalue()


@functools.cache
def _palette(cmap: str) -> np.ndarray:
    """matplotlib's colour map ``cmap`` as a (256, 3) uint8 table."""
    import matplotlib

    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(
        np.uint8)


def _ranges(maps: torch.Tensor, shared: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 1) lows and highs of maps (N, H, W): each map's own, or (``shared``) all the
    maps' together, so that one colour means one value across them."""
    if shared:
        lo, hi = maps.amin().expand(maps.shape[0]), maps.amax().expand(maps.shape[0])
    else:
        lo, hi = maps.amin((1, 2)), maps.amax((1, 2))
    return lo[:, None, None].clone(), hi[:, None, None].clone()


def _levels(maps: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> np.ndarray:
    """(N, H, W) floats -> (N, H, W) uint8 0..255, ``lo`` -> 0 and ``hi`` -> 255."""
    return ((maps - lo) / (hi - lo).clamp(min=1e-12) * 255).round().to(torch.uint8).numpy()


def mosaic(maps: torch.Tensor, *, pad: int = 1,
           ranges: tuple[torch.Tensor, torch.Tensor] | None = None
           ) -> tuple[np.ndarray, dict[str, Any]]:
    """Maps (N, H, W) as one grey image of ``cols`` tiles a row (each map scaled to 0..255 on
    its own range, or on ``ranges``: (N, 1, 1) lows and highs), and its layout for the page,
    which colours the tiles with ``palette`` (viridis as hex RGB) and reads a value back as
    ``lo + level / 255 * (hi - lo)``: a third of the bytes of a colour PNG, so a click on a big
    layer answers sooner."""
    n, h, w = maps.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    lo, hi = ranges if ranges is not None else _ranges(maps, False)
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), np.uint8)
    for i, tile in enumerate(_levels(maps, lo, hi)):
        y, x = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        out[y:y + h, x:x + w] = tile
    return out, {"n": n, "h": h, "w": w, "cols": cols, "rows": rows, "pad": pad,
                 "palette": _palette("viridis").tobytes().hex(),
                 "lo": lo.flatten().tolist(), "hi": hi.flatten().tolist()}


THUMB = 28  # pixels of an overview thumbnail


def _thumb(t: torch.Tensor) -> torch.Tensor:
    """One output (C, H, W) or (N,) as a THUMB x THUMB picture: maps averaged over channels, a
    vector laid out as a square, row by row."""
    import torch.nn.functional as F

    t = t.float()
    if t.ndim == 3:
        t = t.mean(0)
    elif t.ndim == 1:
        side = int(np.ceil(np.sqrt(t.numel())))
        t = F.pad(t, (0, side * side - t.numel()), value=float(t.min())).reshape(side, side)
    else:
        t = t.reshape(1, -1)
    return F.interpolate(t[None, None], size=(THUMB, THUMB), mode="nearest")[0, 0]


class Explorer:
    """The state behind the page: offered models, held images, cached loads and passes."""

    def __init__(self, *, runs: str | Path = "runs", sources: list[str] | None = None,
                 data_dir: str | None = None, models: int = 3, passes: int = 4) -> None:
        self.runs = Path(runs)
        self.sources = list(sources or [])
        self.data_dir = data_dir
        self._models: _LRU = _LRU(models)
        self._passes: _LRU = _LRU(passes)
        self._pictures: _LRU = _LRU(64)  # at most 64 x 3 MB: uploads are kept <= MAX_SIDE
        self._test_sets: dict[str, Any] = {}
        self._lock = threading.Lock()  # one computation at a time: 2 CPU cores, shared hooks
        self._given = []  # (model, has weights, data) of each source, read at start-up
        for src in self.sources:  # fail at start-up, not on the page
            loaded = load_trained(src)
            self._given.append((loaded.name, loaded.path is not None, loaded.data))

    # --- models ---------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        from ..registry import list_models, model_info

        out = []
        for i, (src, (name, weights, data)) in enumerate(zip(self.sources, self._given,
                                                             strict=True)):
            out.append(Entry(f"arg:{i}", name, src, "file", src, data, weights))
        for rel, cfg in self._runs():
            out.append(Entry(f"run:{rel}", str(cfg.get("model", "?")), f"{rel}", "run",
                             str(self.runs / rel), cfg.get("data")))
        for name in list_models():
            info = model_info(name)
            for tag in sorted(info.weights):
                out.append(Entry(f"{name}:{tag}", name, f"{name}:{tag}", "shipped",
                                 f"{name}:{tag}", tag))
        fetch = {name: _fetch_command(name) for name in list_models()}
        for name in list_models():
            if _has_imagenet(name) and fetch[name] is None:  # cached: offered as trained
                out.append(Entry(f"{name}:imagenet", name, f"{name}:imagenet", "imagenet",
                                 f"{name}:imagenet", "imagenet"))
        for name in list_models():
            out.append(Entry(name, name, name, "random", name, trained=False,
                             fetch=fetch[name]))
        return out

    def _runs(self) -> list[tuple[str, dict]]:
        """(path relative to --runs, config.json) of every run directory one or two levels in
        that :func:`safe_run_dir` accepts (a link out of --runs is not offered)."""
        if not self.runs.is_dir():
            return []
        found = []
        for weights in sorted(self.runs.glob(f"*/{WEIGHTS}")) + sorted(
                self.runs.glob(f"*/*/{WEIGHTS}")):
            run = weights.parent
            try:
                safe_run_dir(self.runs, run.relative_to(self.runs).as_posix())
            except NotFound:
                continue
            try:
                cfg = RunDir(run).config()
            except (ConvzooError, OSError):
                cfg = {}
            found.append((run.relative_to(self.runs).as_posix(), cfg))
        return found

    def entry(self, model_id: str) -> Entry:
        from ..registry import model_info

        if model_id.startswith("arg:"):
            i = model_id[4:]
            if not i.isdigit() or int(i) >= len(self.sources):
                raise NotFound(f"model {shown(model_id)!r}: no such command-line source")
            return Entry(model_id, "", self.sources[int(i)], "file", self.sources[int(i)])
        if model_id.startswith("run:"):
            path = safe_run_dir(self.runs, model_id[4:])
            return Entry(model_id, "", model_id[4:], "run", str(path))
        name, _, tag = model_id.partition(":")
        try:
            info = model_info(name)
        except ConvzooError as e:
            raise NotFound(str(e)) from None
        if tag and tag not in info.weights:
            from ..hub import cached_imagenet_weights, is_imagenet_tag

            if is_imagenet_tag(tag) and _has_imagenet(name):
                try:
                    cached = cached_imagenet_weights(name, tag)
                except ConvzooError as e:  # a tag torchvision does not have
                    raise NotFound(str(e)) from None
                if cached is None:
                    raise NotFound(f"{shown(model_id)}: the weights are not here; fetch them once "
                                   f"with `convzoo weights fetch {shown(model_id)}` (needs the "
                                   f"internet)")
                return Entry(model_id, name, model_id, "imagenet", model_id, "imagenet")
            raise NotFound(f"model {name!r} has no shipped weights {shown(tag)!r} "
                           f"(it has: {', '.join(sorted(info.weights)) or 'none'})")
        return Entry(model_id, name, model_id, "shipped" if tag else "random", model_id,
                     tag or None, trained=bool(tag), fetch=None if tag else _fetch_command(name))

    def model(self, model_id: str) -> Model:
        from ..analysis.loading import display_classes, image_transform
        from ..analysis.summary import summarize

        with self._lock:
            hit = self._models.take(model_id)
            if hit is not None:
                return hit
            entry = self.entry(model_id)
            loaded = load_trained(entry.source)
            entry.model = loaded.name
            entry.data = loaded.data
            entry.trained = loaded.path is not None
            if entry.kind in ("run", "file"):
                entry.label = f"{loaded.name} ({Path(entry.label).name or entry.label})"
            side = loaded.side
            summary = summarize(loaded.name, (loaded.in_chans, side, side), **loaded.model_args)
            m = Model(entry, loaded, display_classes(loaded.classes, loaded.num_classes), summary,
                      image_transform(loaded))
            self._models.put(model_id, m)
            return m

    def describe(self, model_id: str, *, depth: int | None = None) -> dict[str, Any]:
        """The model's card and its layer table: the rows of `convzoo summary` (every leaf call,
        ``index`` its position), or with ``depth`` of `convzoo summary --depth` (one row per
        module that many names deep, ``block`` its name)."""
        m = self.model(model_id)
        s = m.summary
        first = next((n for n, mod in m.loaded.model.named_modules()
                      if isinstance(mod, nn.Conv2d)), None)
        if depth is None:
            pairs = [({"index": i}, r) for i, r in enumerate(s.rows)]
        else:
            pairs = [({"block": r.name}, r) for r in s.rows_at_depth(depth)]
        rows = [{**key, "name": r.name, "type": r.type, "shape": r.output_shape[1:],
                 "params": r.params, "macs": r.macs, "rf": r.rf, "jump": r.jump,
                 "centre": r.centre, "functional": r.functional}
                for key, r in pairs if r.name != "(outside leaf modules)"]
        return {**m.entry.to_dict(), "info": {"family": m.loaded.info.family,
                                              "paper": m.loaded.info.paper},
                "input": s.input_shape[1:], "classes": m.classes, "params": s.params,
                "macs": s.macs, "rf": s.rf, "first_conv": first, "layers": rows}

    # --- images ---------------------------------------------------------------------------

    def add_upload(self, data: bytes, name: str = "upload") -> Picture:
        """Hold an uploaded image (decoded by :func:`open_upload`); one larger than
        ``MAX_SIDE`` is kept scaled down to it (the models see at most 299 px)."""
        img = open_upload(data)
        if max(img.size) > MAX_SIDE:
            img.thumbnail((MAX_SIDE, MAX_SIDE))
        pid = "u" + hashlib.sha256(data).hexdigest()[:16]
        pic = Picture(pid, img, Path(name).name or "upload")
        self._pictures.put(pid, pic)
        return pic

    def picture(self, pid: str) -> Picture:
        pic = self._pictures.take(pid)
        if pic is None and pid.startswith("p:") and pid[2:] in PHOTOS:
            pic = self._photo(pid[2:])
        if pic is None and pid.startswith("s:") and pid.count(":") >= 2:
            _, index, key = pid.split(":", 2)
            if index.isdigit():
                pic = self._sample(key, int(index))
        if pic is None:
            raise NotFound(f"image {shown(pid)!r} is not held (upload it again)")
        return pic

    def picture_png(self, pid: str) -> bytes:
        return png_bytes(np.asarray(self.picture(pid).image))

    def _test_key(self, m: Model) -> str | None:
        """Which test set a model's samples come from: a data set's name, or the model's id for a
        run trained on its own data folder (None: ImageNet's, whose validation set is not here)."""
        data = m.loaded.data
        if data in ("mnist", "cifar10") and not m.loaded.config.get("data_dir"):
            return data
        return m.entry.id if data and m.entry.kind != "imagenet" else None

    def _test_set(self, key: str):
        """A test split, loaded once: the embedded MNIST subset; CIFAR-10 from --data-dir, else
        ../shared/data's JPEG copy; a run's own test split (engine.loaded.eval_split)."""
        from ..data import load_dataset
        from ..data.locate import find_data
        from ..engine.loaded import eval_split

        if key not in self._test_sets:
            if key == "mnist":
                ds = load_dataset("mnist", None, "test")
            elif key == "cifar10":
                found = find_data("cifar10", self.data_dir)
                ds = load_dataset(found.data, found.data_dir, "test", val_split=found.val_split,
                                  in_memory=False)
            else:
                ds = eval_split(self.model(key).loaded).dataset
            self._test_sets[key] = ds
        return self._test_sets[key]

    def samples(self, model_id: str) -> dict[str, Any]:
        """``samples``: a spread of ``SAMPLES`` test images of the model's data set, with their
        labels, then (for a network of RGB images) scikit-image's photos, unlabelled; ``note``:
        why there are no test images (and which option would bring them), else None."""
        m = self.model(model_id)
        photos = ([{"id": f"p:{n}", "label": None, "class": what} for n, what in PHOTOS.items()]
                  if m.loaded.in_chans == 3 else [])
        key = self._test_key(m)
        if key is None:
            trained = "random weights" if not m.entry.trained else f"trained on {m.loaded.data}"
            return {"samples": photos, "note": f"{trained}: no test images here; "
                    + ("real photos below" if photos else "upload or draw an image")}
        try:
            ds = self._test_set(key)
        except ConvzooError as e:  # no such data here: the page offers uploads and drawing
            log.info("no test images for %s: %s", model_id, e)
            data = m.loaded.data or key
            return {"samples": photos, "note": f"no {data} test images here: start convzoo "
                                               f"explore with --data-dir DIR to see them ({e})"}
        index = np.linspace(0, len(ds) - 1, min(SAMPLES, len(ds))).round().astype(int)
        out = []
        for i in index.tolist():
            pic = self._sample(key, i)
            out.append({"id": pic.id, "label": pic.label, "class": pic.classes[pic.label]})
        return {"samples": out + photos, "note": None}

    def _photo(self, name: str) -> Picture:
        """scikit-image's photo ``name`` (skimage.data: shipped in the package, not fetched)."""
        from PIL import Image

        try:
            import skimage.data
        except ImportError:
            raise NotFound("the sample photos need scikit-image: pip install "
                           "'convzoo[explore]'") from None
        pic = Picture(f"p:{name}", Image.fromarray(getattr(skimage.data, name)()).convert("RGB"),
                      f"{name} (scikit-image)")
        self._pictures.put(pic.id, pic)
        return pic

    def _sample(self, key: str, i: int) -> Picture:
        from torchvision.transforms.v2.functional import to_pil_image

        pid = f"s:{i}:{key}"
        hit = self._pictures.take(pid)
        if hit is not None:
            return hit
        try:
            ds = self._test_set(key)
        except ConvzooError as e:
            raise NotFound(f"image {shown(pid)!r}: {e}") from None
        if not 0 <= i < len(ds):
            raise NotFound(f"test set {key} has no image {i}")
        if hasattr(ds, "images"):
            img, label = ds.images[i], int(ds.labels[i])
        else:
            img, label = ds[i][0], int(ds.labels[i])
        pic = Picture(pid, to_pil_image(img), f"{ds.name} test {i}", label, list(ds.classes),
                      ds.name)
        self._pictures.put(pid, pic)
        return pic

    # --- the pass and its views -----------------------------------------------------------

    def trace(self, model_id: str, pid: str) -> tuple[Model, Picture, Pass]:
        """The cached pass of image ``pid`` through model ``model_id`` (computed on first use)."""
        from ..analysis.visualize import trace_layers

        m, pic = self.model(model_id), self.picture(pid)
        with self._lock:
            hit = self._passes.take((model_id, pid))
            if hit is None:
                x = m.transform(pic.image)
                logits, calls = trace_layers(m.loaded.model, x, blocks=True)
                leaves = {n for n, mod in m.loaded.model.named_modules()
                          if not list(mod.children())}
                firsts: dict[str, Any] = {}
                for c in calls:
                    firsts.setdefault(c.name, c)
                hit = Pass(x, logits, [c for c in calls if c.module is None or c.name in leaves],
                           firsts)
                self._passes.put((model_id, pid), hit)
        return m, pic, hit

    def predict(self, model_id: str, pid: str, *, topk: int = 5) -> dict[str, Any]:
        """Top-5 with probabilities; for a labelled test image of the model's classes, the true
        class's rank and the image's top-1..top-5 error."""
        from ..analysis.predict import top_classes

        m, pic, p = self.trace(model_id, pid)
        top = top_classes(p.logits, m.classes, topk)[0]
        out: dict[str, Any] = {"model": model_id, "image": pic.id, "trained": m.entry.trained,
                               "top5": [{"class": c, "prob": v} for c, v in top]}
        if pic.label is not None and pic.classes is not None and m.classes is not None:
            truth = pic.classes[pic.label]
            if truth in m.classes:
                probs = p.logits[0].float().softmax(0)
                t = m.classes.index(truth)
                rank = int((probs > probs[t]).sum()) + 1
                out.update(truth=truth, rank=rank, prob=float(probs[t]),
                           errors={f"top{k}": int(rank > k) for k in range(1, 6)})
        return out

    def call(self, model_id: str, pid: str, layer: int | str):
        """The pass's call of ``layer``: a row index of the layer table (every leaf call), or a
        module's name (a block of the table at a depth: its first call)."""
        m, pic, p = self.trace(model_id, pid)
        if isinstance(layer, str):
            if layer not in p.modules:
                raise NotFound(f"{model_id} has no module {shown(layer)!r}")
            return m, pic, p, p.modules[layer]
        if not 0 <= layer < len(p.calls):
            raise NotFound(f"{model_id} has layers 0..{len(p.calls) - 1}, not {shown(str(layer))}")
        return m, pic, p, p.calls[layer]

    def maps(self, model_id: str, pid: str, layer: int | str, *, which: str = "output",
             limit: int = MAX_MAPS, channel: int | None = None, shared: bool = False
             ) -> tuple[bytes, dict[str, Any]]:
        """The layer's output (or input) maps as one PNG mosaic and its layout: the first
        ``limit``, or the one ``channel``; ``shared``: one colour scale for all of the layer's
        maps (else each map on its own range)."""
        if which not in ("output", "input"):
            raise BadRequest(f"which must be 'output' or 'input', got {which!r}")
        _, _, _, c = self.call(model_id, pid, layer)
        t = c.output if which == "output" else c.input
        if t is None:
            raise BadRequest(f"layer {c.name} has no tensor {which}")
        t = t[0].float()
        shape = list(t.shape)
        if t.ndim == 1:  # a vector (fully connected layer): one strip
            t = t[None, None]
        elif t.ndim != 3:
            raise BadRequest(f"layer {c.name} {which} has shape {shape}, not maps or a vector")
        first = 0 if channel is None else channel
        if not 0 <= first < t.shape[0]:
            raise BadRequest(f"channel {first} is out of range 0..{t.shape[0] - 1}")
        count = 1 if channel is not None else max(1, min(limit, MAX_MAPS))
        lo, hi = _ranges(t, shared)  # shared: the range of all the layer's maps, not just those
        part = slice(first, first + count)
        image, layout = mosaic(t[part], ranges=(lo[part], hi[part]))
        return png_bytes(image), {**layout, "shape": shape, "name": c.name, "first": first,
                                  "total": int(t.shape[0]), "shared": shared}

    def conv_at(self, model_id: str, pid: str, layer: int | str, *, channel: int, row: int,
                col: int, detail: int = 6) -> dict[str, Any]:
        """One output of a convolution, as the slide writes it: the sum over its input channels
        of weight x input over the window, plus the bias, beside the layer's own output there
        (float64, from the kept input and the layer's weights). ``detail``: the channels whose
        terms are largest also come with their window's values and weights."""
        from ..scratch.im2col import pair, resolve_padding

        _, _, _, c = self.call(model_id, pid, layer)
        conv = c.module
        if not isinstance(conv, nn.Conv2d) or c.input is None:
            raise BadRequest(f"layer {c.name} is a {c.module.__class__.__name__}, not a Conv2d")
        out = c.output[0]
        if not (0 <= channel < out.shape[0] and 0 <= row < out.shape[1]
                and 0 <= col < out.shape[2]):
            raise BadRequest(f"output ({channel}, {row}, {col}) is outside {list(out.shape)}")
        k, s, d = pair(conv.kernel_size), pair(conv.stride), pair(conv.dilation)
        top_p, bottom_p, left_p, right_p = resolve_padding(conv.padding, k, s, d)
        import torch.nn.functional as F

        x = F.pad(c.input[0].double(), (left_p, right_p, top_p, bottom_p))  # zeros, as the conv
        per_group = conv.in_channels // conv.groups
        first = channel // (conv.out_channels // conv.groups) * per_group  # its group's inputs
        y0, x0 = row * s[0], col * s[1]
        patch = x[first:first + per_group, y0:y0 + d[0] * (k[0] - 1) + 1:d[0],
                  x0:x0 + d[1] * (k[1] - 1) + 1:d[1]]  # (C/g, kh, kw)
        w = conv.weight[channel].detach().double()  # (C/g, kh, kw)
        terms = (patch * w).sum((1, 2))  # one per input channel
        bias = float(conv.bias[channel].detach()) if conv.bias is not None else 0.0
        total = float(terms.sum()) + bias
        actual = float(out[channel, row, col])
        top = terms.abs().argsort(descending=True)[:detail].sort().values.tolist()
        return {
            "name": c.name, "channel": channel, "row": row, "col": col, "kernel": list(k),
            "width_out": int(out.shape[2]),
            "stride": list(s), "padding": [top_p, bottom_p, left_p, right_p],
            "dilation": list(d), "groups": conv.groups, "first_input": first,
            "window": {"top": y0 - top_p, "left": x0 - left_p,
                       "height": d[0] * (k[0] - 1) + 1, "width": d[1] * (k[1] - 1) + 1},
            "terms": terms.tolist(), "bias": bias, "sum": total, "output": actual,
            "abs_diff": abs(total - actual),
            "detail": [{"input": first + i, "values": patch[i].tolist(),
                        "weights": w[i].tolist(), "term": float(terms[i])} for i in top]}

    def values(self, model_id: str, pid: str, layer: int | str, *, limit: int = MAX_VALUES
               ) -> dict[str, Any]:
        """A vector output (Flatten, Linear, the logits) as numbers: the first ``limit`` values,
        their range, and the (C, H, W) they were flattened from; for the network's output, the
        class names, softmax probabilities, and which rows to list (every class up to
        ``MAX_CLASS_ROWS``, else the highest logits)."""
        _, _, p, c = self.call(model_id, pid, layer)
        m = self.model(model_id)
        if c.output is None or c.output.ndim != 2:
            shape = list(c.output.shape[1:]) if c.output is not None else None
            raise BadRequest(f"layer {c.name} outputs {shape}, not a vector")
        v = c.output[0].double()
        out: dict[str, Any] = {
            "name": c.name, "total": int(v.numel()), "values": v[:limit].tolist(),
            "min": float(v.min()), "max": float(v.max()),
            "palette": _palette("viridis").tobytes().hex(),
            "from": list(c.input.shape[1:]) if c.input is not None and c.input.ndim == 4
            else None}
        if c.output.shape == p.logits.shape and torch.equal(c.output, p.logits):
            probs = v.softmax(0)
            n = v.numel()
            order = (list(range(n)) if n <= MAX_CLASS_ROWS
                     else v.argsort(descending=True)[:MAX_CLASS_ROWS].tolist())
            names = m.classes or [str(i) for i in range(n)]
            out["logits"] = [{"index": i, "class": names[i], "logit": float(v[i]),
                              "prob": float(probs[i])} for i in order]
        return out

    def filters_png(self, model_id: str) -> bytes:
        from ..analysis.visualize import filter_grid

        m = self.model(model_id)
        grid = filter_grid(m.loaded.model)
        return png_bytes((grid.numpy() * 255).round().astype(np.uint8))

    def gradcam_map(self, model_id: str, pid: str, *, target: int | None = None,
                    layer: int | str | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Grad-CAM for class ``target`` (default: the top class) at ``layer`` (a row index or
        a module name whose output is feature maps; default the last conv) as an (H, W) map
        over the model's input: each of the layer's positions placed at the centre of its
        receptive field (``analysis.summary``'s ``centre`` and ``jump``), not stretched over
        the image, which would shift it by up to half a field."""
        from ..analysis.visualize import gradcam, last_conv_name, place_at_centres

        m, pic, p = self.trace(model_id, pid)
        if layer is not None:
            c = self.call(model_id, pid, layer)[3]
            if c.output is None or c.output.ndim != 4 or c.module is None:
                raise BadRequest(f"layer {c.name} has no feature maps of a module for Grad-CAM")
            name = c.name
        else:
            name = last_conv_name(m.loaded.model)
        if target is not None and not 0 <= target < p.logits.shape[1]:
            raise BadRequest(f"class {target} is out of range 0..{p.logits.shape[1] - 1}")
        row = m.summary.modules[name]
        with self._lock:
            cam, cls = gradcam(m.loaded.model, p.x, target=target, layer=name, upsample=False)
        heat = place_at_centres(cam, row.centre, row.jump, tuple(p.x.shape[-2:]))
        names = m.classes
        return heat, {"class": cls, "class_name": names[cls] if names else str(cls),
                      "layer": name, "grid": list(cam.shape), "centre": row.centre,
                      "jump": row.jump}

    def gradcam_png(self, model_id: str, pid: str, *, target: int | None = None,
                    layer: int | str | None = None) -> tuple[bytes, dict[str, Any]]:
        """:meth:`gradcam_map` laid over the model's input (its ``X-Info``: class, layer, the
        layer's grid and where its positions sit)."""
        heat, info = self.gradcam_map(model_id, pid, target=target, layer=layer)
        x = self.trace(model_id, pid)[2].x
        shown = x - x.amin()
        shown = (shown / shown.amax().clamp(min=1e-12)).permute(1, 2, 0)[..., :3]
        shown = shown.expand(-1, -1, 3).numpy() if shown.shape[-1] == 1 else shown.numpy()
        colour = _palette("jet")[(heat.clamp(0, 1) * 255).round().to(torch.uint8).numpy()]
        blend = 0.5 * shown * 255 + 0.5 * colour.astype(np.float32)
        return png_bytes(blend.round().astype(np.uint8)), info

    def im2col(self, model_id: str, pid: str, layer: int | str, *, patch: int | None = None
               ) -> dict[str, Any]:
        """A conv layer as one matrix product on this image: convzoo.scratch's im2col of the
        layer's real input, the GEMM's shapes, and one patch (column) checked against the
        layer's output."""
        from ..scratch.im2col import im2col, pair, resolve_padding

        _, _, _, c = self.call(model_id, pid, layer)
        conv = c.module
        if not isinstance(conv, nn.Conv2d) or c.input is None:
            raise BadRequest(f"layer {c.name} is a {type(conv).__name__}, not a Conv2d")
        if conv.padding_mode != "zeros":
            raise BadRequest(f"layer {c.name} pads with {conv.padding_mode!r}, not zeros")
        k, s, d = pair(conv.kernel_size), pair(conv.stride), pair(conv.dilation)
        pad = resolve_padding(conv.padding, k, s, d)
        x = c.input.float().numpy()  # (1, C, H, W); float32 keeps a VGG-sized matrix in memory
        g = conv.groups
        cg = x.shape[1] // g  # input channels per group; group 0 is shown
        cols, (oh, ow) = im2col(np.ascontiguousarray(x[:, :cg]), k, s, pad, d)
        w = conv.weight.detach().double()  # (C_out, C/g, kh, kw)
        og = w.shape[0] // g
        wmat = w[:og].reshape(og, -1).numpy()  # (C_out/g, C/g*kh*kw)
        n = cols.shape[1]
        p = n // 2 + ow // 2 if patch is None else patch
        if not 0 <= p < n:
            raise BadRequest(f"patch {p} is out of range 0..{n - 1}")
        i, j = divmod(p, ow)
        column = cols[:, p].astype(np.float64)
        y = wmat @ column  # (C_out/g,): one column of the GEMM's result
        if conv.bias is not None:
            y = y + conv.bias.detach().double()[:og].numpy()
        actual = c.output[0, :og, i, j].double().numpy()
        top, left = i * s[0] - pad[0], j * s[1] - pad[2]
        return {
            "name": c.name, "in_shape": list(x.shape[1:]), "out_shape": list(c.output.shape[1:]),
            "kernel": list(k), "stride": list(s), "padding": list(pad), "dilation": list(d),
            "groups": g, "cols_shape": list(cols.shape), "weight_shape": list(wmat.shape),
            "result_shape": [og, n], "patch": p, "row": i, "col": j,
            # the window of input pixels (rows top.., cols left..) patch p reads, channel 0
            "window": {"top": top, "left": left, "height": d[0] * (k[0] - 1) + 1,
                       "width": d[1] * (k[1] - 1) + 1},
            "patch_values": column[:k[0] * k[1]].reshape(k).round(4).tolist(),
            "filter0": wmat[0, :k[0] * k[1]].reshape(k).round(4).tolist(),
            "gemm_column": y[:8].round(5).tolist(), "layer_output": actual[:8].round(5).tolist(),
            "max_abs_diff": float(np.abs(y - actual).max()),
        }

    def overview(self, model_id: str, pid: str, *, depth: int | None = None
                 ) -> tuple[bytes, dict[str, Any]]:
        """The whole network on this image: one node per row of the layer table (``depth``: per
        block), in forward order, each with the nodes its inputs come from (a residual add's
        two, a concatenation's branches; -1: the network's input), and a thumbnail of its output
        (the mean over channels of maps, a vector as a square), as one PNG mosaic."""
        m, _, p = self.trace(model_id, pid)
        rows = m.summary.rows[:len(p.calls)]
        keys: list[str] = []
        node_of: list[int] = []  # call index -> node index
        for r in rows:
            key = r.name if depth is None else m.summary.block_of(r, depth)
            if depth is None or not keys or keys[-1] != key:
                keys.append(key)
            node_of.append(len(keys) - 1)
        made: dict[tuple, int] = {}  # (storage, shape) of an output -> the call that made it
        inputs: list[set[int]] = [set() for _ in keys]
        for i, c in enumerate(p.calls):
            for t in c.inputs or ([c.input] if c.input is not None else []):
                j = made.get((t.data_ptr(), tuple(t.shape)))
                src = -1 if j is None else node_of[j]
                if src != node_of[i]:
                    inputs[node_of[i]].add(src)
            if c.output is not None:
                made[(c.output.data_ptr(), tuple(c.output.shape))] = i
        last = {n: i for i, n in enumerate(node_of)}
        outs = [p.modules[k].output if depth is not None and k in p.modules
                and p.modules[k].output is not None else p.calls[last[n]].output
                for n, k in enumerate(keys)]
        thumbs = torch.stack([_thumb(o[0]) for o in outs])
        image, layout = mosaic(thumbs)
        table = m.summary.rows if depth is None else m.summary.rows_at_depth(depth)
        nodes = [{"node": n, "name": k, "type": r.type, "shape": list(o.shape[1:]),
                  "inputs": sorted(inputs[n]), **({"index": n} if depth is None else {"block": k})}
                 for n, (k, r, o) in enumerate(zip(keys, table, outs, strict=False))]
        return png_bytes(image), {**layout, "nodes": nodes}

    def explain(self, model_id: str, pid: str, layer: int | str) -> dict[str, Any]:
        """What the operation does, in the lecture's words with this image's numbers
        (:func:`convzoo.explore.explain.explain`)."""
        from .explain import explain

        m, _, p, c = self.call(model_id, pid, layer)
        row = m.summary.modules.get(c.name) if isinstance(layer, str) else m.summary.rows[layer]
        return {"name": c.name, **explain(c, row.type if row is not None else "")}

    def batchnorm(self, model_id: str, pid: str, layer: int | str, *,
                  channel: int | None = None, batch: int = 8) -> dict[str, Any]:
        """A BatchNorm2d worked out on a mini-batch: this image and up to ``batch - 1`` of the
        sample images, through the network up to the layer (in eval mode, as the pass), then
        the layer's normalization in train mode (the batch's statistics) and in eval mode (the
        running ones), at the centre of ``channel`` (default: the channel whose running
        variance is largest)."""
        from .explain import batchnorm

        m, _, p, c = self.call(model_id, pid, layer)
        if not isinstance(c.module, nn.BatchNorm2d) or c.input is None:
            raise BadRequest(f"layer {c.name} is not a BatchNorm2d")
        others = [s["id"] for s in self.samples(model_id)["samples"] if s["id"] != pid]
        xs = torch.stack([p.x] + [m.transform(self.picture(i).image)
                                  for i in others[:batch - 1]])
        seen: list[torch.Tensor] = []
        handle = c.module.register_forward_hook(lambda mod, i, o: seen.append(i[0].detach()))
        try:
            with self._lock, torch.no_grad():
                m.loaded.model(xs)
        finally:
            handle.remove()
        ch = int(c.module.running_var.argmax()) if channel is None else channel
        h, w = c.input.shape[2:]
        return {"name": c.name, **batchnorm(c.module, seen[0], ch, (h // 2, w // 2))}

    def dropout(self, model_id: str, pid: str, layer: int | str) -> dict[str, Any]:
        """A Dropout's train and eval modes on this image's input to it."""
        from .explain import dropout

        _, _, _, c = self.call(model_id, pid, layer)
        if not isinstance(c.module, nn.Dropout) or c.input is None:
            raise BadRequest(f"layer {c.name} is not a Dropout")
        return {"name": c.name, **dropout(c.module.p, c.input[0])}

    def pool(self, model_id: str, pid: str, layer: int | str, *, channel: int | None = None
             ) -> dict[str, Any]:
        """A max-pool on this image: a 2x2 block of its windows (at the strongest output of
        ``channel``, default the most active channel), their values and what each keeps."""
        _, _, _, c = self.call(model_id, pid, layer)
        mod = c.module
        if not isinstance(mod, nn.MaxPool2d) or c.input is None or c.input.ndim != 4:
            raise BadRequest(f"layer {c.name} is a {type(mod).__name__}, not a MaxPool2d")
        x = c.input[0].float()  # (C, H, W)
        out = c.output[0].float()
        ch = int(out.amax((1, 2)).argmax()) if channel is None else channel
        if not 0 <= ch < x.shape[0]:
            raise BadRequest(f"channel {ch} is out of range 0..{x.shape[0] - 1}")
        oi, oj = divmod(int(out[ch].argmax()), out.shape[2])
        oi, oj = min(oi, max(out.shape[1] - 2, 0)), min(oj, max(out.shape[2] - 2, 0))
        return {"name": c.name, "channel": ch, **pool_windows(
            x[ch], out[ch], mod, rows=range(oi, min(oi + 2, out.shape[1])),
            cols=range(oj, min(oj + 2, out.shape[2])))}

    def compare(self, a: str, b: str, pid: str) -> dict[str, Any]:
        """Two models on one image: parameters, MACs, batch-1 latency, top-5; and the machine's
        load while they were timed (other jobs on the machine slow every figure)."""
        out = []
        for model_id in (a, b):
            m, _, p = self.trace(model_id, pid)
            pred = self.predict(model_id, pid)
            pred.pop("model")
            lat = self.latency(m, p.x)
            out.append({**m.entry.to_dict(), "params": m.summary.params, "macs": m.summary.macs,
                        "input": m.summary.input_shape[1:], "latency_ms": lat["median_ms"],
                        "latency": lat, **pred})
        return {"models": out, "machine": machine_load()}

    def latency(self, m: Model, x: torch.Tensor) -> dict[str, Any]:
        """Batch-1 forward time of ``m`` on ``x``: the median of ``LATENCY_REPEATS`` timed runs
        after a warm-up (the first calls pay for allocation), with the fastest and slowest run."""
        from ..analysis.bench import seconds_per_call

        net = m.loaded.model
        with self._lock, torch.no_grad():
            secs = seconds_per_call(lambda: net(x[None]), warmup=3, repeats=LATENCY_REPEATS)
        ms = sorted(1000 * s for s in secs)
        median = float(np.median(ms))
        return {"median_ms": median, "min_ms": ms[0], "max_ms": ms[-1],
                "spread": (ms[-1] - ms[0]) / median, "repeats": len(ms)}


def machine_load() -> dict[str, Any]:
    """The 1-minute load average (runnable processes; ``None`` where the system does not say),
    the CPUs and torch's threads: what a latency figure was measured beside."""
    import os

    try:
        load = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = None
    return {"load_1min": load, "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


def pool_windows(x: torch.Tensor, out: torch.Tensor, mod: nn.MaxPool2d, *, rows: range,
                 cols: range) -> dict[str, Any]:
    """Max-pool windows of map ``x`` (H, W) for output positions ``rows`` x ``cols``: each
    window's values (None where it reads padding), the cell kept (torch's own argmax, so a tie
    goes where torch sends it: the first in reading order), and the layer's output."""
    import torch.nn.functional as F

    from ..scratch.im2col import pair

    k, s, d, pd = (pair(mod.kernel_size), pair(mod.stride or mod.kernel_size), pair(mod.dilation),
                   pair(mod.padding))
    _, where = F.max_pool2d(x[None, None].float(), k, s, pd, d, ceil_mode=mod.ceil_mode,
                            return_indices=True)  # flat index into (H, W) of each kept value
    windows = []
    for i in rows:
        for j in cols:
            top, left = i * s[0] - pd[0], j * s[1] - pd[1]
            vals = [[float(x[r, q]) if 0 <= r < x.shape[0] and 0 <= q < x.shape[1] else None
                     for q in range(left, left + d[1] * (k[1] - 1) + 1, d[1])]
                    for r in range(top, top + d[0] * (k[0] - 1) + 1, d[0])]
            r, q = divmod(int(where[0, 0, i, j]), x.shape[1])
            kept = [(r - top) // d[0], (q - left) // d[1]]
            windows.append({"out": [i, j], "top": top, "left": left, "values": vals,
                            "kept": kept, "max": vals[kept[0]][kept[1]],
                            "output": float(out[i, j])})
    r0 = min(w["top"] for w in windows)
    c0 = min(w["left"] for w in windows)
    r1 = max(w["top"] + len(w["values"]) for w in windows)
    c1 = max(w["left"] + len(w["values"][0]) for w in windows)
    region = [[float(x[r, q]) if 0 <= r < x.shape[0] and 0 <= q < x.shape[1] else None
               for q in range(c0, c1)] for r in range(r0, r1)]
    return {"kernel": list(k), "stride": list(s), "padding": list(pd), "region_top": r0,
            "region_left": c0, "region": region, "windows": windows}


def slide_pool_example() -> dict[str, Any]:
    """The slide's 4x4 input through a 2x2, stride-2 max-pool (torch computes the output)."""
    x = torch.tensor(SLIDE_POOL_INPUT, dtype=torch.float32)
    mod = nn.MaxPool2d(2, 2)
    out = mod(x[None, None])[0, 0]
    return {"name": "slide example: 4x4 input, 2x2 max-pool, stride 2", "channel": 0,
            **pool_windows(x, out, mod, rows=range(2), cols=range(2))}
