"""Shipping a network: ONNX (opset >= 17, dynamic batch) and ``torch.export`` (``.pt2``).

Each export is checked: the exported graph runs (onnxruntime for ONNX, the ExportedProgram's own
module for ``.pt2``) on random inputs of two batch sizes other than the one traced, and its
outputs must match eager PyTorch within ``atol`` (1e-4 by default). TorchScript is deprecated in
torch 2.14 and is not offered.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConvzooError

log = logging.getLogger(__name__)

FORMATS = ("onnx", "export")
EXTENSIONS = {".onnx": "onnx", ".pt2": "export"}  # the format each file extension means
DEFAULT_OPSET = 18
TRACE_BATCH = 2  # torch.export specialises sizes 0 and 1, so the traced batch is 2
CHECK_BATCHES = (1, 3)


@dataclass
class ExportResult:
    path: Path
    format: str
    input_shape: list[int]  # (C, H, W); the batch dimension is dynamic
    max_abs_diff: float  # largest |exported - eager| over the checked batches (nan: not checked)
    checked_batches: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "input_shape": self.input_shape,
                "max_abs_diff": self.max_abs_diff, "checked_batches": list(self.checked_batches)}


class _Logits(nn.Module):
    """Wraps a model so that the exported graph has exactly one output: the logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out if isinstance(out, torch.Tensor) else out[0]  # (B, num_classes)


def export_format(out: str | Path, format: str | None = None) -> str:
    """The format ``out``'s extension names (``.onnx``: onnx, ``.pt2``: export); ``format``, when
    given, must agree with it."""
    suffix = Path(out).suffix.lower()
    by_ext = EXTENSIONS.get(suffix)
    if format is not None and format not in FORMATS:
        raise ConvzooError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if by_ext is None:
        raise ConvzooError(f"--out {out}: the file name must end in .onnx (ONNX) or .pt2 "
                           f"(torch.export), got {suffix or 'no extension'!r}")
    if format is not None and format != by_ext:
        raise ConvzooError(f"--format {format} disagrees with --out {out} ({suffix} is "
                           f"{by_ext}); drop --format or change the extension")
    return by_ext


def export_metadata(loaded) -> dict[str, str]:
    """What a user of the exported file needs besides the graph, as strings: the model, its
    class names and input size (C, H, W), and the normalisation (per-channel mean and std)."""
    from .loading import display_classes, image_preset

    preset = image_preset(loaded)
    classes = display_classes(loaded.classes, loaded.num_classes)
    meta = {"model": loaded.name,
            "input_size": json.dumps([loaded.in_chans, loaded.side, loaded.side]),
            "mean": json.dumps(list(preset.mean)), "std": json.dumps(list(preset.std)),
            "preset": json.dumps(preset.to_dict())}
    if classes is not None:
        meta["classes"] = json.dumps(classes)
    if loaded.data:
        meta["data"] = loaded.data
    return meta


def _add_onnx_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    from .._io import atomic_write

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))


def export_model(
    model: nn.Module,
    out: str | Path,
    *,
    input_size: tuple[int, int, int],
    format: str | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-4,
    seed: int = 0,
    metadata: dict[str, str] | None = None,
) -> ExportResult:
    """Export ``model`` (put in eval mode, on the CPU) to ``out`` with a dynamic batch dimension.

    The format comes from ``out``'s extension (see :func:`export_format`). ``metadata`` is stored
    in the file: ONNX ``metadata_props``, and ``extra/metadata.json`` of a ``.pt2``. ``atol`` is
    relative to the eager logits' size when they exceed 1 (float32 rounding scales with them).
    """
    format = export_format(out, format)
    check_atol(atol)
    if format == "onnx" and opset < 17:
        raise ConvzooError(f"--opset must be >= 17, got {opset}")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvzooError(f"cannot write {out}: {e.strerror or e}") from None
    net = _Logits(model.cpu().eval())
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(TRACE_BATCH, *input_size, generator=gen)
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {"x": {0: batch}}
    if format == "onnx":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(net, (example,), str(out), opset_version=opset, dynamo=True,
                                  verbose=False, input_names=["input"], output_names=["logits"],
                                  dynamic_shapes=dynamic, external_data=False)
            except Exception as e:  # the exporter raises many types
                raise ConvzooError(f"ONNX export of {type(model).__name__} failed: {e}") from None
        if metadata:
            _add_onnx_metadata(out, metadata)
    else:
        with torch.no_grad():
            try:
                program = torch.export.export(net, (example,), dynamic_shapes=dynamic)
            except Exception as e:
                raise ConvzooError(f"torch.export of {type(model).__name__} failed: {e}") from None
        extra = {"metadata.json": json.dumps(metadata)} if metadata else None
        torch.export.save(program, str(out), extra_files=extra)
    log.info("exported %s to %s", type(model).__name__, out)
    diff = float("nan")
    if check:
        diff, scale = check_export(net, out, format=format, input_size=input_size,
                                   seed=seed + 1)
        if not diff <= atol * max(1.0, scale):
            raise ConvzooError(
                f"exported {out} differs from eager PyTorch by {diff:.3g} (> {atol:g}) on random "
                f"inputs"
            )
    return ExportResult(out, format, list(input_size), diff, CHECK_BATCHES if check else ())


@torch.no_grad()
def check_export(model: nn.Module, path: str | Path, *, format: str,
                 input_size: tuple[int, int, int], seed: int = 1) -> tuple[float, float]:
    """Largest absolute difference between ``path`` and eager ``model`` on random batches of
    sizes :data:`CHECK_BATCHES` (proving the batch dimension is dynamic), and the largest
    absolute eager output (the scale that float32 rounding grows with)."""
    gen = torch.Generator().manual_seed(seed)
    model = model.cpu().eval()
    if format == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    else:
        program = torch.export.load(str(path)).module()

        def run(x: torch.Tensor) -> torch.Tensor:
            return program(x)

    worst = scale = 0.0
    for b in CHECK_BATCHES:
        x = torch.randn(b, *input_size, generator=gen)
        ref = model(x)
        ref = ref if isinstance(ref, torch.Tensor) else ref[0]
        got = run(x)
        if got.shape != ref.shape:
            raise ConvzooError(f"exported {path} gives shape {tuple(got.shape)} for batch {b}, "
                               f"eager gives {tuple(ref.shape)}")
        worst = max(worst, float((got.float() - ref.float()).abs().max()))
        scale = max(scale, float(ref.float().abs().max()))
    return worst, scale


def check_atol(atol: float) -> None:
    """The check's tolerance: a finite number >= 0 (NaN would fail every comparison)."""
    if not isinstance(atol, (int, float)) or isinstance(atol, bool) or not 0 <= atol < math.inf:
        raise ConvzooError(f"--atol must be a finite number >= 0, got {atol!r:.40}")


def export_source(source: str, out: str | Path, *, format: str | None = None,
                  model: str | None = None,
                  input_size: tuple[int, int, int] | str | None = None, opset: int = DEFAULT_OPSET,
                  check: bool = True, atol: float = 1e-4) -> ExportResult:
    """Export a run directory, weights file, ``model:tag`` or registered model name (see
    :func:`convzoo.engine.loaded.load_trained`). ``input_size`` defaults to the side the model
    was trained at (``Loaded.side``). The file carries :func:`export_metadata`."""
    from ..engine.loaded import load_trained
    from ..engine.rundir import refuse_output_in_run
    from .summary import check_min_size, parse_input_size

    format = export_format(out, format)  # before any work
    check_atol(atol)
    refuse_output_in_run(out, "--out")
    loaded = load_trained(source, model=model)
    if isinstance(input_size, str):
        input_size = parse_input_size(input_size, loaded.in_chans)
    size = input_size or (loaded.in_chans, loaded.side, loaded.side)
    check_min_size(loaded.name, size, loaded.info.min_size)
    meta = {**export_metadata(loaded), "input_size": json.dumps(list(size))}
    return export_model(loaded.model, out, input_size=size, format=format, opset=opset,
                        check=check, atol=atol, metadata=meta)
