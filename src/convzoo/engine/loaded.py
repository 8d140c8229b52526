"""A trained model and what is known about its training: the one way every command gets one.

:func:`load_trained` reads a run directory, a weights file (``.safetensors`` with convzoo
metadata, or a torchvision ``.pth`` with ``model=``), a shipped ``model:tag`` (``lenet5:mnist``),
or a registered model name (untrained weights, for export and visualize). eval, report, predict,
export, visualize and the NumPy engine all start from the :class:`Loaded` it returns;
:func:`eval_split` then picks the test split and the preset to score it with
(:func:`convzoo.evaluate` scores it there).
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataPreset
from ..errors import ConvzooError, shown
from ..registry import ModelInfo
from .rundir import RunDir

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """A model in eval mode on the CPU, with what is known about how it was trained."""

    model: nn.Module
    name: str  # registered model name
    info: ModelInfo
    model_args: dict[str, Any]  # builder arguments (num_classes, in_chans, ...)
    classes: list[str] | None  # class names from the weights' metadata, one per output
    path: Path | None  # the weights file; None for a registered name without weights
    run_dir: Path | None = None  # the run directory the weights belong to, when known
    extra: dict[str, Any] = field(default_factory=dict)  # the weights file's other metadata
    data: str | None = None  # the data set it was trained on, when known
    preset: DataPreset | None = None  # the run's preset.json, else the weights' metadata
    input_size: int | None = None  # pixels, the side it was trained at (None: not recorded)
    config: dict[str, Any] = field(default_factory=dict)  # the run's config.json ({}: none)

    @property
    def in_chans(self) -> int:
        return int(self.model_args.get("in_chans", self.info.input_size[0]))

    @property
    def num_classes(self) -> int:
        return int(self.model_args.get("num_classes", self.info.default_num_classes))

    @property
    def side(self) -> int:
        """Pixels: the side the model was trained at (recorded, else its preset's), else the
        model's own default input."""
        from_preset = self.preset.input_side if self.preset is not None else None
        return self.input_size or from_preset or self.info.input_size[1]


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


def _locate(source: str | Path) -> tuple[Path | None, Path | None, str]:
    """(weights file or None, run directory or None, text) of what the user named."""
    from ..weights import shipped_weights_path

    text = str(source)
    path = Path(text)
    try:
        path.stat()
    except OSError as e:  # a name too long for the file system is not a file, and no model
        if e.errno == errno.ENAMETOOLONG:
            raise ConvzooError(f"{shown(text)} is not a run directory, weights file or "
                               f"model:tag (the name is too long for a file)") from None
    if path.is_dir():
        return RunDir(path).weights(), path, text
    if path.is_file():
        # A run's own weights file brings its run's record (preset, data, input size) with it.
        run = RunDir.of_weights(path)
        return path, None if run is None else run.path, text
    shipped = shipped_weights_path(text)  # an unknown model or tag fails with the choices
    if shipped is not None:
        return shipped, None, text
    if "/" in text or "\\" in text or path.suffix:
        raise ConvzooError(f"{text} does not exist (expected a run directory, a weights file or "
                           f"a model:tag such as lenet5:mnist)")
    return None, None, text  # a registered model name


def _run_config(run_dir: Path | None, weights: Path) -> dict[str, Any]:
    """The run's config; {} when there is none, or (with a warning) when it is damaged: the
    weights' metadata names the model, its arguments, classes, data and input size."""
    if run_dir is None:
        return {}
    try:
        return RunDir(run_dir).config(required=False)
    except ConvzooError as e:
        log.warning("%s; using the metadata of %s instead", e, weights)
        return {}


def load_trained(source: str | Path, *, model: str | None = None,
                 model_args: dict[str, Any] | None = None) -> Loaded:
    """A model in eval mode (CPU) from a run directory, a weights file, ``model:tag`` or a name.

    ``model`` names the model of a weights file without metadata (a torchvision ``.pth``) and
    must agree with the metadata otherwise; ``model_args`` override the saved builder arguments.
    ``preset`` comes from the run's preset.json (else the metadata's ``preset``), ``input_size``
    from the metadata or config.json (None for runs that did not record it).
    """
    from ..registry import create_model, model_info
    from ..weights import load_state_dict_checked, read_weights

    path, run_dir, text = _locate(source)
    if path is None:
        info = model_info(model or text)  # an unknown name raises with close suggestions
        args = dict(model_args or {})
        net = create_model(info.name, **args).eval()
        return Loaded(net, info.name, info, args, None, None)
    wf = read_weights(path)
    tv = _torchvision_file(path, wf, model)
    if tv is not None:  # torchvision's own file: its model, categories, transform and metrics
        wf.model, wf.classes = tv.model, tv.categories
        wf.model_args = {**tv.model_args, **wf.model_args}
        wf.extra = {**tv.metadata(), "preset": tv.preset().to_dict(),
                    "input_size": tv.eval_sizes()[1], **wf.extra}
    if model and wf.model and model != wf.model:
        raise ConvzooError(f"weights {path} are for model {wf.model!r}, not {model!r}")
    name = model or wf.model
    if name is None:
        raise ConvzooError(f"weights file {path} does not name its model; pass --model NAME")
    info = model_info(name)
    args = {**wf.model_args, **(model_args or {})}
    net = create_model(name, **args)
    mismatch = _head_mismatch(net, wf.state_dict)
    if mismatch:
        raise ConvzooError(
            f"weights {path} have {mismatch[0]} classes but model {name!r} is built for "
            f"{mismatch[1]} classes; pass num_classes={mismatch[0]}")
    load_state_dict_checked(net, wf.state_dict, source=str(path))
    outputs = args.get("num_classes", info.default_num_classes)
    if wf.classes is not None and len(wf.classes) != outputs:  # names must index the logits
        raise ConvzooError(f"weights {path} name {len(wf.classes)} classes in their metadata but "
                           f"model {name!r} has {outputs} outputs; one class name per output is "
                           f"expected")
    config = _run_config(run_dir, path)
    preset = None if run_dir is None else RunDir(run_dir).preset()
    if preset is None and isinstance(wf.extra.get("preset"), dict):
        try:
            preset = DataPreset.from_dict(wf.extra["preset"])
        except ConvzooError as e:
            raise ConvzooError(f"{path} metadata: {e}") from None
    size = wf.extra.get("input_size") or config.get("input_size")
    return Loaded(net.eval(), name, info, args, wf.classes, path, run_dir, dict(wf.extra),
                  data=wf.extra.get("data") or config.get("data"), preset=preset,
                  input_size=int(size) if size else None, config=config)


def _torchvision_file(path: Path, wf, model: str | None):
    """The torchvision ImageNet weights a ``.pth`` without metadata is, known by its file name
    (``alexnet-owt-7be5be79.pth``); None for any other file."""
    from ..hub import by_file_name

    if wf.model is not None or path.suffix != ".pth":
        return None
    tv = by_file_name(path.name)
    return tv if tv is not None and model in (None, tv.model) else None


@dataclass
class EvalSplit:
    """What to score a trained model on: the data set's name, its test split and the preset."""

    data: str
    dataset: Any  # ImageDataset (in memory) or FolderDataset (streamed)
    preset: DataPreset


def eval_split(loaded: Loaded, *, data: str | None = None, data_dir: str | None = None,
               train_split: str | None = None, val_split: str | None = None) -> EvalSplit:
    """The test split to score ``loaded`` on, and the preset that turns it into model input.

    ``data`` defaults to the set it was trained on; on that set the run's data dir and split
    folder names are reused unless others are given, and the run's own preset is used (when its
    kind, in memory or streamed, fits the split). Other data get the data set's preset at the
    size the model was trained at (``loaded.side``), resized to it where needed. A ``folder``
    (say the JPEG copy of CIFAR-10, ``val_split="test"``) is labelled by the class names in the
    weights (its folders must be among them; no training split is needed) and normalised as
    the data the weights were trained on, which is what the model expects.
    """
    from dataclasses import replace

    from ..data import load_dataset, preset_for
    from ..data.folder import FolderDataset
    from ..hub import eval_sizes

    saved = loaded.config
    trained = loaded.data or saved.get("data")
    data = data or trained
    if data is None:
        where = loaded.run_dir or loaded.path or loaded.name
        raise ConvzooError(f"{where}: cannot tell which data set to evaluate on; pass --data NAME")
    splits: dict[str, Any] = {}
    same = data == trained
    if same and data == saved.get("data"):
        data_dir = data_dir if data_dir is not None else saved.get("data_dir")
        splits = {k: saved.get(k) for k in ("train_split", "val_split")}
    splits.update({k: v for k, v in (("train_split", train_split), ("val_split", val_split))
                   if v is not None})
    if data == "folder" and not same and loaded.classes is not None:
        splits["classes"] = list(loaded.classes)
    test_set = load_dataset(data, data_dir, "test", **splits)
    streamed = isinstance(test_set, FolderDataset)
    chans = test_set.channels if streamed else test_set.shape[0]
    if chans not in (1, loaded.in_chans) or len(test_set.classes) > loaded.num_classes:
        raise ConvzooError(
            f"{loaded.run_dir or loaded.path or loaded.name} was trained for {loaded.in_chans}-"
            f"channel images and {loaded.num_classes} classes; data {data!r} has {chans} channels "
            f"and {len(test_set.classes)} classes")
    if same and loaded.preset is not None and loaded.preset.streamed == streamed:
        return EvalSplit(data, test_set, loaded.preset)
    preset = preset_for(data, in_chans=loaded.in_chans,
                        image_size=None if streamed else test_set.shape[1],
                        input_size=loaded.side, eval_sizes=eval_sizes(loaded.name))
    if data == "folder" and not same and trained is not None:
        # The run's own preset (an experiment's subset has no DataSet of its name), else the
        # preset of the data set the weights name.
        own = loaded.preset or preset_for(trained, in_chans=loaded.in_chans,
                                          image_size=loaded.side)
        preset = replace(preset, mean=own.mean, std=own.std)
    return EvalSplit(data, test_set, preset)

