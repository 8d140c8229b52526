"""Reading and writing weights files.

A convzoo weights file is a ``.safetensors`` file whose metadata names the model, its builder
arguments and the class names, so that eval, predict and export need nothing else. Files are
written to a temporary name, flushed to disk and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ._io import atomic_write
from .errors import ConvzooError, first_line, shown
from .models._common import is_head_key
from .models._registry import ModelInfo, no_weights_hint

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


@dataclass
class WeightsFile:
    """A state dict with the metadata convzoo stores beside it."""

    state_dict: dict[str, torch.Tensor]
    model: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    classes: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def save_weights(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str | None = None,
    model_args: dict[str, Any] | None = None,
    classes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model``'s state dict and its metadata atomically to ``path`` (safetensors)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": "pt", "convzoo": "1"}
    if model_name is not None:
        meta["model"] = model_name
    meta["model_args"] = json.dumps(model_args or {})
    if classes is not None:
        meta["classes"] = json.dumps(list(classes))
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


MAX_INPUT_SIDE = 4096  # pixels: a larger recorded input size is a damaged file, not a model
_RESERVED = ("format", "convzoo", "model", "model_args", "classes")


def read_weights(path: str | os.PathLike) -> WeightsFile:
    """Read a ``.safetensors`` file (with or without convzoo metadata) or a torchvision ``.pth``.

    Everything later steps trust is checked here, once: every value of the state dict is a
    tensor of finite numbers, and the metadata's model arguments, class names, input size, data
    set and preset have the types and ranges convzoo writes. Anything else is a
    :class:`ConvzooError` naming the file and the key.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ConvzooError(f"read_weights: path must be a file path (str or os.PathLike), got "
                           f"{type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise ConvzooError(f"weights file {shown(str(path))} does not exist")
    if path.suffix in (".pth", ".pt"):
        state = _read_pth(path)
        check_state_dict(str(path), state)
        return WeightsFile(state_dict=state)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConvzooError(f"cannot read {path} as a safetensors weights file: "
                           f"{first_line(e)}") from None
    check_state_dict(str(path), state)
    extra = {k: _meta_value(v) for k, v in meta.items() if k not in _RESERVED}
    model_args = _meta_json(path, meta, "model_args", dict, "a JSON object") or {}
    classes = _meta_json(path, meta, "classes", list, "a JSON list of class names")
    _check_meta(path, model_args, classes, extra)
    return WeightsFile(
        state_dict=state,
        model=meta.get("model"),
        model_args=model_args,
        classes=classes,
        extra=extra,
    )


def _read_pth(path: Path) -> dict[str, Any]:
    """The state dict of a ``.pth``, loaded with ``weights_only`` (no pickled code runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad pickle
        # One line, and never torch's advice to retry with weights_only=False: that would
        # run whatever code the pickle names.
        raise ConvzooError(f"cannot read {path} as a PyTorch state dict: "
                           f"{torch_load_problem(path, e)}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a torchvision reference training checkpoint
    if not isinstance(state, dict):
        raise ConvzooError(f"{path} holds a {type(state).__name__}, expected a state dict")
    return state


def torch_load_problem(path: Path, e: Exception) -> str:
    """Why torch.load failed, in a few words."""
    found = re.search(r"GLOBAL ([\w.]+)", str(e))
    if found:
        return (f"it needs {found.group(1)}, which is not a tensor or plain container (only "
                "weights are loaded; code in a pickle never runs)")
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "it is a safetensors file; name it .safetensors"
    text = str(e)
    if "weights_only" in text or "Weights only" in text or isinstance(e, EOFError):
        return "it is not a PyTorch file, or it is truncated or damaged"
    return first_line(re.sub(r"\. This .*", ".", text), 120)


def check_state_dict(where: str, state: dict[Any, Any]) -> None:
    """Every key a string and every value a tensor; floating tensors hold only finite values.
    ``where`` starts the message (the file)."""
    if not state:
        raise ConvzooError(f"{where} holds no tensors, expected a state dict")
    for key, value in state.items():
        name = shown(str(key), 60)
        if not isinstance(key, str):
            raise ConvzooError(f"{where}: state dict key {name!r} is of type "
                               f"{type(key).__name__}, expected a string")
        if not isinstance(value, torch.Tensor):
            raise ConvzooError(f"{where}: {name!r} is of type {type(value).__name__}, expected "
                               f"a tensor (not a state dict of weights?)")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ConvzooError(f"{where}: {name!r} holds NaN or infinite values; these weights "
                               f"are damaged (a training that diverged?)")


def _meta_value(text: str) -> Any:
    """A metadata value: its JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an int of > 4300 digits, nested too deep
        return text


def _positive_int(value: Any, maximum: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 1
            and (maximum is None or value <= maximum))


def _check_meta(path: Path, model_args: dict[str, Any], classes: list[Any] | None,
                extra: dict[str, Any]) -> None:
    """The metadata values later steps use, in the types and ranges convzoo writes them."""
    where = f"{path}: metadata"
    for key in ("num_classes", "in_chans"):
        if key in model_args and not _positive_int(model_args[key]):
            raise ConvzooError(f"{where} 'model_args' {key!r} must be an integer >= 1, got "
                               f"{shown(json.dumps(model_args[key]), 60)}")
    if classes is not None:
        if not all(isinstance(c, str) for c in classes):
            raise ConvzooError(f"{where} 'classes' must be a JSON list of class names")
        n = model_args.get("num_classes")
        if n is not None and len(classes) != n:
            raise ConvzooError(f"{where} 'classes' names {len(classes)} classes but 'model_args' "
                               f"builds {n} outputs; one class name per output is expected")
    size = extra.get("input_size")
    if size is not None and not _positive_int(size, MAX_INPUT_SIDE):
        raise ConvzooError(f"{where} 'input_size' must be an integer in [1, {MAX_INPUT_SIDE}] "
                           f"(pixels), got {shown(json.dumps(size), 60)}")
    for key in ("data", "engine", "recipe", "date"):
        if key in extra and extra[key] is not None and not isinstance(extra[key], str):
            raise ConvzooError(f"{where} {key!r} must be a string, got "
                               f"{shown(json.dumps(extra[key]), 60)}")
    if "preset" in extra:
        from .data.presets import DataPreset

        try:
            DataPreset.from_dict(extra["preset"])
        except ConvzooError as e:
            raise ConvzooError(f"{where} 'preset': {e}") from None


def _meta_json(path: Path, meta: dict[str, str], key: str, kind: type, expected: str) -> Any:
    """Metadata ``key`` parsed as JSON of type ``kind`` (None when absent)."""
    if key not in meta:
        return None
    value = _meta_value(meta[key])
    if not isinstance(value, kind):
        raise ConvzooError(f"{path}: metadata {key!r} must be {expected}, got {meta[key][:60]!r}")
    return value


def resolve_weights(info: ModelInfo, weights: str) -> Path:
    """A tag of shipped weights (``"mnist"``), of torchvision's ImageNet weights (``"imagenet"``,
    ``"IMAGENET1K_V2"``: fetched once into torch.hub's cache, see :mod:`convzoo.hub`) or a path,
    as a path that exists."""
    if weights in info.weights:
        return PRETRAINED_DIR / info.weights[weights]
    path = Path(weights)
    if path.is_file():
        return path
    from .hub import imagenet_weights, is_imagenet_tag

    model, _, tag = weights.rpartition(":")  # "resnet18:imagenet" as well as "imagenet"
    if is_imagenet_tag(tag) and model in ("", info.name):
        return imagenet_weights(info.name, tag).fetch()
    tags = ", ".join(sorted(info.weights)) or "none"
    raise ConvzooError(
        f"weights {weights!r} for model {info.name!r} is neither a file nor a shipped tag "
        f"(shipped tags: {tags}); {no_weights_hint()}"
    )


def shipped_weights_path(source: str | os.PathLike) -> Path | None:
    """The file of a shipped ``model:tag`` (``lenet5:mnist``); None when ``source`` is an existing
    path or not of that form. An unknown model or tag fails with the choices."""
    text = str(source)
    name, _, tag = text.partition(":")
    if Path(text).exists() or not tag or "/" in text:
        return None
    from .models._registry import model_info

    return resolve_weights(model_info(name), tag)


def is_bare_model_name(source: str | os.PathLike) -> bool:
    """True when ``source`` is a registered model name alone: no file, no ``model:tag``."""
    from .models._registry import list_models

    text = str(source)
    return not Path(text).exists() and text in list_models()


def check_has_weights(source: str | os.PathLike, *, random_weights: bool, command: str) -> None:
    """Refuse a bare model name (its weights would be random) unless ``random_weights``."""
    if random_weights or not is_bare_model_name(source):
        return
    raise ConvzooError(
        f"{source!r} is a model name without weights (its outputs would be random); "
        f"give a run directory, a weights file or MODEL:TAG -- {no_weights_hint()}; or pass "
        f"--random-weights to {command} the untrained model on purpose")


def load_state_dict_checked(
    model: nn.Module, state: dict[str, torch.Tensor], *, source: str, reset_head: bool = False
) -> None:
    """Strict load that names the first mismatched keys and shapes in the error message.

    Keys of auxiliary classifiers (``aux*``) are dropped when the model has none, so torchvision
    checkpoints (which carry them) load into the plain form. With ``reset_head`` the classifier's
    keys are skipped and keep the model's fresh initialisation.
    """
    own = model.state_dict()
    state = dict(state)
    if not any(k.lower().startswith("aux") for k in own):
        state = {k: v for k, v in state.items() if not k.lower().startswith("aux")}
    if reset_head:
        state = {k: v for k, v in state.items() if not is_head_key(k, model)}
        own_keys = {k for k in own if not is_head_key(k, model)}
    else:
        own_keys = set(own)
    missing = sorted(own_keys - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own_keys & set(state)
        if state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:3]}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:3]}")
    if wrong:
        problems.append("shape mismatch " + "; ".join(sorted(wrong)[:3]))
    if problems:
        hint = " (use reset_head / --reset-head to fine-tune with another class count)" if (
            wrong and not missing and not unexpected) else ""
        raise ConvzooError(f"weights {source} do not fit the model: " + ", ".join(problems) + hint)
    model.load_state_dict(state, strict=not reset_head)


def load_weights_into(
    model: nn.Module, info: ModelInfo, weights: str, *, reset_head: bool = False
) -> WeightsFile:
    """Load ``weights`` (path or shipped tag) into ``model`` built from ``info``."""
    path = resolve_weights(info, weights)
    wf = read_weights(path)
    if wf.model is not None and wf.model != info.name:
        raise ConvzooError(f"weights {path} are for model {wf.model!r}, not {info.name!r}")
    load_state_dict_checked(model, wf.state_dict, source=str(path), reset_head=reset_head)
    return wf
