"""Looking inside a network: first-layer filters (as AlexNet's Fig. 3), the feature maps of any
named layer for an image, and Grad-CAM heat maps (Selvaraju et al. 2017, eq. 1-2) for a class.
Each writes a PNG and returns the array it drew.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._io import atomic_write
from ..errors import ConvzooError

log = logging.getLogger(__name__)


def _plt():
    from .._plotting import pyplot

    plt = pyplot()

    return plt


def _save(fig, path: str | Path) -> None:
    plt = _plt()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise ConvzooError(f"{type(model).__name__} has no Conv2d layer")


def filter_grid(model: nn.Module, path: str | Path | None = None, *, pad: int = 1) -> torch.Tensor:
    """The first convolution's filters as one image (H, W, 3) in [0, 1], each filter scaled to
    its own min..max; RGB when it reads 3 channels, grey otherwise (mean over input channels)."""
    name, conv = first_conv(model)
    w = conv.weight.detach().float().cpu()  # (out, in, kh, kw)
    w = w if w.shape[1] == 3 else w.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    lo = w.amin((1, 2, 3), keepdim=True)
    hi = w.amax((1, 2, 3), keepdim=True)
    w = (w - lo) / (hi - lo).clamp(min=1e-12)
    n, _, kh, kw = w.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.ones(rows * (kh + pad) + pad, cols * (kw + pad) + pad, 3)
    for i in range(n):
        r, c = divmod(i, cols)
        y0, x0 = pad + r * (kh + pad), pad + c * (kw + pad)
        grid[y0:y0 + kh, x0:x0 + kw] = w[i].permute(1, 2, 0)
    if path is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(max(3, cols * 0.5), max(3, rows * 0.5)))
        ax.imshow(grid.numpy(), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{name}: {n} filters {kh}x{kw}")
        _save(fig, path)
    return grid


def _module(model: nn.Module, layer: str) -> nn.Module:
    mods = dict(model.named_modules())
    if layer not in mods:
        convs = [n for n, m in mods.items() if isinstance(m, nn.Conv2d)][:8]
        raise ConvzooError(f"model has no layer {layer!r}; e.g. {', '.join(convs)} "
                           f"(see `convzoo summary`)")
    return mods[layer]


@torch.no_grad()
def feature_maps(model: nn.Module, layer: str, x: torch.Tensor, path: str | Path | None = None,
                 *, max_maps: int = 64) -> torch.Tensor:
    """Output (C, H, W) of ``layer`` for one image ``x`` (C, H, W); the first ``max_maps``
    channels drawn as a grid."""
    store: list[torch.Tensor] = []
    handle = _module(model, layer).register_forward_hook(lambda m, i, o: store.append(
        o if isinstance(o, torch.Tensor) else o[0]))
    model.eval()
    try:
        model(x.unsqueeze(0))
    finally:
        handle.remove()
    if not store or store[0].ndim != 4:
        raise ConvzooError(f"layer {layer!r} does not output feature maps (B, C, H, W)")
    maps = store[0][0].float().cpu()  # (C, H, W)
    if path is not None:
        plt = _plt()
        n = min(max_maps, maps.shape[0])
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.2 + 0.4), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if i < n:
                ax.imshow(maps[i].numpy(), cmap="viridis")
        fig.suptitle(f"{layer}: {n} of {maps.shape[0]} maps, {maps.shape[1]}x{maps.shape[2]}")
        _save(fig, path)
    return maps


@dataclass
class LayerCall:
    """One call of a leaf module, or one torch function called outside them (``F.pad``, a
    residual add, ``torch.cat``: ``module`` None), during :func:`trace_layers`, in forward
    order."""

    name: str  # qualified module name, as in `convzoo summary`'s rows
    module: nn.Module | None  # None: a torch function (summary.FunctionalOps)
    input: torch.Tensor | None  # its first tensor input, (1, C, H, W) or (1, N)
    output: torch.Tensor | None  # its first tensor output
    inputs: list[torch.Tensor] | None = None  # a torch function's tensor arguments, in order


@torch.no_grad()
def trace_layers(model: nn.Module, x: torch.Tensor, *, blocks: bool = False
                 ) -> tuple[torch.Tensor, list[LayerCall]]:
    """One forward pass of one image ``x`` (C, H, W) with a hook on every leaf module: the logits
    (1, classes) and every call's input and output, in the order of `convzoo summary`'s rows
    (the torch functions a forward calls outside the leaf modules included).
    ``blocks``: the calls of every module below the root too (``layer1``, ``layer1.0``; a block
    is listed after its layers, when its forward returns). In-place activations are switched off
    for the pass, and what an in-place function (``out += identity``) would overwrite is copied
    first, so that no kept tensor changes."""
    from .summary import FunctionalOps

    calls: list[LayerCall] = []

    def first(v):
        if isinstance(v, torch.Tensor):
            return v.detach()
        if isinstance(v, (tuple, list)):
            return next((t.detach() for t in v if isinstance(t, torch.Tensor)), None)
        return None

    def hook(name: str):
        return lambda m, i, o: calls.append(LayerCall(name, m, first(i), first(o)))

    def keep(op) -> None:  # before an in-place function: the kept views of its target copied
        target = op.inputs[0]
        copy = target.detach().clone()
        for c in calls:
            for attr in ("input", "output"):
                t = getattr(c, attr)
                if t is not None and t.data_ptr() == target.data_ptr() and t.shape == copy.shape:
                    setattr(c, attr, copy)
        op.inputs[0] = copy

    def op_call(op) -> None:
        ins = [t.detach() for t in op.inputs]
        calls.append(LayerCall(op.name, None, ins[0], op.output.detach(), ins))

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    hooked = ([(n, m) for n, m in model.named_modules() if n] or leaves) if blocks else leaves
    inplace = [m for _, m in leaves if getattr(m, "inplace", False) is True]
    handles = [m.register_forward_hook(hook(n)) for n, m in hooked]
    for m in inplace:
        m.inplace = False
    model.eval()
    try:
        with FunctionalOps(model, op_call, keep):  # after the hooks above: see FunctionalOps
            out = model(x.unsqueeze(0))
    finally:
        for h in handles:
            h.remove()
        for m in inplace:
            m.inplace = True
    logits = out if isinstance(out, torch.Tensor) else out[0]
    return logits.detach(), calls


def last_conv_name(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ConvzooError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    return names[-1]


def gradcam(model: nn.Module, x: torch.Tensor, *, target: int | None = None,
            layer: str | None = None, path: str | Path | None = None,
            image: torch.Tensor | None = None, class_name: str | None = None,
            upsample: bool = True) -> tuple[torch.Tensor, int]:
    """Grad-CAM of one image ``x`` (C, H, W): ``relu(sum_k alpha_k A^k)`` with ``alpha_k`` the
    spatial mean of d score / d A^k at ``layer`` (default: the last Conv2d), scaled to [0, 1] and
    laid over the input with each position at the centre of its receptive field
    (:func:`place_at_centres`; ``upsample=False``: at the layer's own resolution). ``target``
    defaults to the predicted class. Returns (map, class).
    With ``path``, :func:`gradcam_figure` is written there: ``image`` (H, W, 3 in [0, 1]) is
    what the heat map is drawn over, ``class_name`` the class's name for the title."""
    layer = layer or last_conv_name(model)
    acts: list[torch.Tensor] = []

    def hook(m, i, o):
        o = o if isinstance(o, torch.Tensor) else o[0]
        o.retain_grad()
        acts.append(o)

    handle = _module(model, layer).register_forward_hook(hook)
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x.unsqueeze(0).requires_grad_(True))
            logits = out if isinstance(out, torch.Tensor) else out[0]
            cls = int(logits.argmax(1)) if target is None else int(target)
            if not 0 <= cls < logits.shape[1]:
                raise ConvzooError(f"--class {cls} is out of range 0..{logits.shape[1] - 1}")
            model.zero_grad(set_to_none=True)
            logits[0, cls].backward()
    finally:
        handle.remove()
    a = acts[-1]
    if a.ndim != 4 or a.grad is None:
        raise ConvzooError(f"layer {layer!r} does not output feature maps with a gradient")
    alpha = a.grad.mean((2, 3), keepdim=True)  # (1, K, 1, 1), eq. 1
    cam = F.relu((alpha * a).sum(1, keepdim=True))  # (1, 1, h, w), eq. 2
    cam = (cam[0, 0] / cam.max().clamp(min=1e-12)).detach().cpu()  # (h, w)
    if not upsample:  # the layer's own grid: the caller places it
        return cam, cls
    from .summary import summarize

    row = summarize(model, tuple(x.shape)).modules[layer]  # where each position looks
    cam = place_at_centres(cam, row.centre, row.jump, tuple(x.shape[-2:])).float()
    if path is not None:
        label = f"{class_name} (class {cls})" if class_name else f"class {cls}"
        _save(gradcam_figure(cam, image, title=f"Grad-CAM: {label} at {layer}"), path)
    return cam, cls


def place_at_centres(cam: torch.Tensor, centre: list[float], jump: list[int],
                     size: tuple[int, int]) -> torch.Tensor:
    """A layer's (h, w) map over its network's (H, W) input: value (i, j) at input pixel
    ``centre + (i, j) * jump`` (the centre of that position's receptive field, from
    ``analysis.summary``; pixel centres at whole numbers), bilinear in between, the edge values
    beyond the outermost centres. Stretching the map over the image instead would put LeNet-5's
    10x10 conv2 up to 3.6 px off."""
    h, w = cam.shape

    def axis(n: int, points: int, c: float, j: int) -> torch.Tensor:
        idx = (torch.arange(n, dtype=torch.float64) - c) / j  # fractional position index
        return 2 * idx / (points - 1) - 1 if points > 1 else torch.zeros(n, dtype=torch.float64)

    gy, gx = torch.meshgrid(axis(size[0], h, centre[0], jump[0]),
                            axis(size[1], w, centre[1], jump[1]), indexing="ij")
    grid = torch.stack([gx, gy], -1)[None]  # (1, H, W, 2): grid_sample wants (x, y)
    return F.grid_sample(cam.double()[None, None], grid, mode="bilinear", padding_mode="border",
                         align_corners=True)[0, 0]


GRADCAM_CMAP = "YlOrRd"  # light where the map is low, so the image shows through


def gradcam_figure(cam: torch.Tensor, image: torch.Tensor | None, *, title: str):
    """The image as it is (left) beside it with the Grad-CAM map (H, W in [0, 1]) laid over it
    (right): a light colour map whose opacity follows the map, so the regions that do not count
    stay visible. Without ``image`` only the map is drawn."""
    plt = _plt()
    cmap = plt.get_cmap(GRADCAM_CMAP)
    if image is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        ax.imshow(cam.numpy(), cmap=cmap, vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
        return fig
    fig, (ax_img, ax_cam) = plt.subplots(1, 2, figsize=(8, 4.3))
    ax_img.imshow(image.numpy())
    ax_img.set_title(f"input ({image.shape[1]}x{image.shape[0]}, as the model sees it)",
                     fontsize=9)
    heat = cmap(cam.numpy())  # (H, W, 4) RGBA
    heat[..., 3] = 0.15 + 0.6 * cam.numpy()
    ax_cam.imshow(image.numpy())
    ax_cam.imshow(heat)
    ax_cam.set_title(title, fontsize=9)
    for ax in (ax_img, ax_cam):
        ax.set_axis_off()
    return fig


def visualize(source: str, kind: str, out: str | Path, *, image: str | None = None,
              layer: str | None = None, target: int | str | None = None,
              model: str | None = None) -> dict:
    """The CLI's entry: ``kind`` is ``filters``, ``features`` or ``gradcam``."""
    from ..engine.loaded import load_trained
    from ..engine.rundir import refuse_output_in_run
    from .loading import display_classes, image_preset, image_transform, open_image

    refuse_output_in_run(out, "--out")
    loaded = load_trained(source, model=model)
    names = display_classes(loaded.classes, loaded.num_classes)
    if kind == "filters":
        grid = filter_grid(loaded.model, out)
        return {"kind": kind, "out": str(out), "shape": list(grid.shape)}
    if kind not in ("features", "gradcam"):
        raise ConvzooError(f"--kind must be filters, features or gradcam, got {kind!r}")
    if image is None:
        raise ConvzooError(f"visualize {kind} needs --image FILE")
    img = open_image(image)
    if img is None:
        raise ConvzooError(f"{image} is not a readable image")
    x = image_transform(loaded)(img)
    if kind == "features":
        if layer is None:
            layer = first_conv(loaded.model)[0]
        maps = feature_maps(loaded.model, layer, x, out)
        return {"kind": kind, "out": str(out), "layer": layer, "shape": list(maps.shape)}
    cls = target
    if isinstance(target, str) and not target.lstrip("-").isdigit():
        if target not in (names or []):
            raise ConvzooError(f"--class {target!r} is not a class name of {loaded.name}")
        cls = names.index(target)
    # The image as the model sees it (resized/cropped), in its own colours: normalisation undone.
    preset = image_preset(loaded)
    mean = torch.tensor(preset.mean, dtype=x.dtype).view(-1, 1, 1)
    std = torch.tensor(preset.std, dtype=x.dtype).view(-1, 1, 1)
    shown = (x * std + mean).clamp(0, 1).permute(1, 2, 0)
    shown = shown.expand(-1, -1, 3) if shown.shape[-1] == 1 else shown[..., :3]
    cam, c = gradcam(loaded.model, x, target=None if cls is None else int(cls), layer=layer)
    name = names[c] if names else str(c)
    layer = layer or last_conv_name(loaded.model)
    _save(gradcam_figure(cam, shown, title=f"Grad-CAM: {name} (class {c}) at {layer}"), out)
    return {"kind": kind, "out": str(out), "layer": layer or last_conv_name(loaded.model),
            "class": c, "class_name": name}
