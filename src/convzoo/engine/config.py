"""The training configuration: one frozen dataclass, every field declared once.

Each field carries, in its ``metadata``, the help text (with the unit), the CLI flag names where
they differ from ``--field-name``, the allowed choices, and whether it is a flag at all.
``convzoo train``'s flags are generated from these fields (:func:`options`); a recipe
(:mod:`convzoo.engine.recipes`) is a set of values for them, checked against their types; a run
writes the effective config to ``config.json``, and ``convzoo train --config RUN/config.json``
re-runs it. Values read from JSON are type-checked field by field (:func:`check_values`), so a
wrong type is one :class:`ConvzooError` line naming the key, never a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import read_json
from ..errors import ConvzooError

SCHEDULERS = ("cosine", "step", "multistep", "plateau", "onecycle", "exponential", "constant")
OPTIMIZERS = ("sgd", "rmsprop", "adamw")
AMP_MODES = ("none", "bf16", "fp16")
MILESTONE_UNITS = ("epoch", "step")
BAD_FILE_POLICIES = ("error", "skip")
ENGINES = ("torch", "numpy")
CONVS = ("native", "gemm")

# Keys a run adds to config.json for the record (derived, not settable); reading a saved
# config.json back drops them.
DERIVED_KEYS = ("world_size", "global_batch_size", "recipe_source", "convzoo_version", "argv",
                "input_size_reason")

# Every float reaches torch as a float32 scalar (an optimizer's alpha, a loss weight): a larger
# value overflows there, deep in an optimizer step.
FLOAT32_MAX = 3.4028234663852886e38
SEED_LIMIT = 2**32  # seeds are in [0, 2**32): NumPy's and Lightning's range; derived per-process
#                     and per-epoch seeds (engine/loader.py) then stay within 64 bits
INT_LIMIT = 2**63  # any other integer fits a signed 64-bit torch integer
MAX_NESTING = 8  # model_args values nest at most this deep (JSON lists and objects)


def max_threads() -> int:
    """The most CPU threads a run may ask for: 4 per CPU, at least 64 (libgomp allocates for
    every thread up front: 10**6 runs it out of memory)."""
    return max(64, 4 * (os.cpu_count() or 1))


def check_threads(n: int | None, label: str = "--threads") -> None:
    if n is not None and not 1 <= n <= max_threads():
        raise ConvzooError(f"{label} must be in [1, {max_threads()}] on this machine "
                           f"({os.cpu_count()} CPUs), got {n}")


def _opt(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flags: tuple[str, ...] = (),
    choices: tuple[str, ...] | None = None,
    cli: bool = True,
    factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A TrainConfig field: default, help (with unit), CLI flags (default ``--field-name``; none
    when ``cli`` is False), choices, and the range of its values (``ge``/``gt`` below,
    ``le``/``lt`` above; None is always allowed for an optional field, and every element of a
    tuple field is checked)."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    meta = {"help": help, "flags": flags, "choices": choices, "cli": cli, "bounds": bounds}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    model: str = _opt(help="registered model name, e.g. lenet5 (see `convzoo list`)", cli=False)
    data: str = _opt("mnist", "data set name: mnist, cifar10, imagenet, folder, ... (mnist "
                     "without --data-dir: the embedded subset, 10,000 train / 2,000 test images)")
    data_dir: str | None = _opt(None, "folder holding the data set's files (default: the "
                                "embedded MNIST subset)")
    recipe: str | None = _opt(None, "name of the recipe the values came from (a label only; "
                              "the --recipe flag loads one)", cli=False)
    epochs: int = _opt(12, "passes over the training split", ge=1)
    max_steps: int | None = _opt(None, "stop after this many optimizer steps (ResNet §4.2: 64k)",
                                 ge=1)
    target_train_err: float | None = _opt(
        None, "stop once the mini-batch training error, averaged over the last --target-window "
        "steps, is at or below this (Krizhevsky et al. 2012, Fig. 1: 0.25); the partial epoch is "
        "then evaluated as a last one", gt=0.0, le=1.0)
    target_window: int = _opt(40, "optimizer steps in --target-train-err's trailing mean", ge=1)
    batch_size: int = _opt(64, "images per step per process (global = batch size x processes)",
                           ge=1)
    accum_steps: int = _opt(1, "micro-batches whose gradients are summed into one optimizer step",
                            ge=1)
    optimizer: str = _opt("sgd", "SGD (with momentum), RMSProp or AdamW", flags=("--opt",),
                           choices=OPTIMIZERS)
    lr: float = _opt(0.05, "peak learning rate, per optimizer step (not scaled by batch size)",
                     gt=0)
    momentum: float = _opt(0.9, "SGD / RMSProp momentum (AlexNet §5)", ge=0, lt=1)
    nesterov: bool = _opt(False, "SGD with Nesterov momentum (DenseNet §4)")
    wd: float = _opt(5e-4, "L2 weight decay (AlexNet §5); decoupled for AdamW",
                     flags=("--wd", "--weight-decay"), ge=0)
    rmsprop_alpha: float = _opt(0.9, "RMSProp decay of the squared-gradient average "
                                "(Inception v3 §8)", gt=0, lt=1)
    opt_eps: float | None = _opt(None, "optimizer epsilon (default: 1.0 for RMSProp, "
                                 "Inception v3 §8; 1e-8 for AdamW)", gt=0)
    lr_scheduler: str = _opt("cosine", "learning-rate schedule", choices=SCHEDULERS)
    lr_step_epochs: int = _opt(10, "step: epochs between multiplications by --lr-gamma",
                               flags=("--lr-step-size",), ge=1)
    lr_gamma: float = _opt(0.1, "step / multistep / plateau / exponential (per epoch): the lr "
                           "factor", gt=0, le=1)
    lr_milestones: tuple[int, ...] = _opt((), "multistep: epochs (or optimizer steps, with "
                                          "--lr-milestone-unit step) where lr is multiplied by "
                                          "--lr-gamma", ge=0)
    lr_milestone_unit: str = _opt("epoch", "unit of --lr-milestones: epochs, or optimizer steps "
                                  "(ResNet §4.2's 32k/48k)", choices=MILESTONE_UNITS)
    lr_min: float = _opt(0.0, "cosine: the lr it decays to", ge=0)
    lr_warmup_epochs: float = _opt(0.0, "linear warmup length in epochs (may be fractional)", ge=0)
    lr_warmup_decay: float = _opt(0.01, "warmup starts at lr x this (torchvision's reference "
                                  "default)", gt=0, le=1)
    onecycle_pct: float = _opt(0.25, "one-cycle: fraction of the run spent rising to lr",
                               gt=0, lt=1)
    plateau_patience: int = _opt(3, "plateau: epochs without a better held-out error before a "
                                 "drop", ge=0)
    plateau_threshold: float = _opt(1e-3, "plateau: an improvement of the held-out error smaller "
                                    "than this (absolute) is none", ge=0)
    plateau_max_drops: int | None = _opt(None, "plateau: stop dropping after this many drops "
                                         "(AlexNet: 3; default: no limit)", ge=0)
    label_smoothing: float = _opt(0.0, "cross-entropy label smoothing (Inception v3 §7: 0.1)",
                                  ge=0, lt=1)
    clip_grad_norm: float | None = _opt(None, "clip the global gradient L2 norm to this "
                                        "(Inception v3 §8: 2.0; default: no clipping)", gt=0)
    aux_loss_weight: float = _opt(0.3, "weight of each auxiliary classifier's loss "
                                  "(GoogLeNet §5: 0.3)", ge=0)
    ema: bool = _opt(False, "keep an exponential moving average of the weights; "
                     "model.safetensors holds the average")
    ema_decay: float = _opt(0.9998, "EMA decay per update", gt=0, lt=1)
    ema_steps: int = _opt(1, "optimizer steps between EMA updates", ge=1)
    amp: str = _opt("none", "mixed precision: bf16 autocast (CPU or CUDA) or fp16 autocast + "
                    "GradScaler (CUDA)", choices=AMP_MODES)
    channels_last: bool = _opt(False, "NHWC memory format for model and inputs")
    compile: bool = _opt(False, "torch.compile the model")
    deterministic: bool = _opt(False, "deterministic kernels: runs repeat (and resume) bit for "
                               "bit")
    weights: str | None = _opt(None, "initial weights: a file or a shipped tag (fine-tuning)")
    reset_head: bool = _opt(False, "with --weights: a new classifier for the data's class count")
    freeze_backbone: bool = _opt(False, "train only the classifier")
    sync_bn: bool = _opt(False, "DDP: batch-norm statistics over all processes (SyncBatchNorm)")
    holdout: float = _opt(0.0, "fraction of the training split held out for validation (best "
                          "checkpoint, plateau schedules; 0: none)", ge=0, lt=1)
    on_bad_file: str = _opt("error", "what an unreadable image file does",
                            choices=BAD_FILE_POLICIES)
    train_split: str | None = _opt(None, "folder data: the training sub-folder (default train)")
    val_split: str | None = _opt(None, "folder data: the test sub-folder (default val; the "
                                 "CIFAR-10 JPEG copy uses test)")
    checkpoint_every_steps: int | None = _opt(None, "also checkpoint every N optimizer steps", ge=1)
    keep_checkpoints: int = _opt(2, "how many of the latest checkpoints to keep (the best is "
                                 "kept too)", ge=1)
    resume: str | None = _opt(None, "run directory or checkpoint file to continue exactly")
    test_only: bool = _opt(False, "only evaluate the --weights or --resume model on the test "
                           "split")
    tensorboard: bool = _opt(True, "write TensorBoard event files when tensorboard is installed")
    seed: int = _opt(0, "seeds model initialisation, data order and augmentation, in [0, 2**32)",
                     ge=0, lt=SEED_LIMIT)
    device: str = _opt("auto", "auto | cpu | cuda | cuda:N | mps")
    out: str | None = _opt(None, "run directory (default runs/<model>-<data>-<timestamp>)")
    overwrite: bool = _opt(False, "let --out name an existing run directory and replace its "
                           "files")
    input_size: int | None = _opt(None, "pixels, the side the model sees (default: the images' "
                                  "own size when the model accepts it, else the model's "
                                  "minimum; with --weights, the size they were trained at)", ge=1)
    num_classes: int | None = _opt(None, "classifier outputs (default: the data's class count)",
                                   ge=1)
    in_chans: int | None = _opt(None, "input channels (default: the data's channel count)", ge=1)
    model_args: dict[str, Any] = _opt(help="extra model builder arguments (the --model-arg "
                                      "KEY=VALUE flag)", cli=False, factory=dict)
    engine: str = _opt("torch", "torch, or the NumPy layers of convzoo.scratch", choices=ENGINES)
    eval_batch_size: int = _opt(500, "images per evaluation batch", ge=1)
    eval_train: int = _opt(0, "also score N training images (class-balanced, the same each "
                           "epoch) at each epoch's end as the test split is scored: eval mode, "
                           "no augmentation, dropout off (train_eval_acc in the metrics; the "
                           "running train_acc is taken in train mode)", ge=0)
    workers: int = _opt(4, "DataLoader processes decoding a streamed image folder, for training "
                        "and evaluation (0: in the main process; at most the CPUs available)", ge=0)
    threads: int | None = _opt(None, "CPU threads torch computes with (torch.set_num_threads; "
                               "default: torch's own, one per core)", ge=1)
    conv: str = _opt("native", "native nn.Conv2d, or convzoo.gemm's im2col + matmul "
                     "convolution", choices=CONVS)

    def validate(self) -> TrainConfig:
        """This config, or a :class:`ConvzooError` naming the first bad value: its type (from
        the field's annotation), choices (from its metadata), and range."""
        check_values({f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                     source="TrainConfig")
        for o in options():
            value = getattr(self, o.name)
            if o.choices is not None and value not in o.choices:
                raise ConvzooError(
                    f"{o.label} must be one of {', '.join(o.choices)}, got {value!r}"
                )
        self._check_ranges()
        return self

    def _check_ranges(self) -> None:
        for o in options():
            value = getattr(self, o.name)
            if o.bounds and value is not None:
                values = value if o.sequence else (value,)
                if not all(o.in_bounds(v) for v in values):
                    shown = list(value) if o.sequence else value
                    raise ConvzooError(f"{o.label} must be {o.bounds_text()}, got {shown}")
        # Rules that join two fields.
        checks = [
            (
                not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0),
                "--nesterov needs --opt sgd and --momentum > 0",
            ),
            (
                list(self.lr_milestones) == sorted(self.lr_milestones),
                f"--lr-milestones must be increasing, got {list(self.lr_milestones)}",
            ),
            (
                self.lr_scheduler != "multistep" or len(self.lr_milestones) > 0,
                "--lr-scheduler multistep needs --lr-milestones",
            ),
            (self.lr_min < self.lr, f"--lr-min must be in [0, lr), got {self.lr_min}"),
            (
                self.lr_scheduler != "plateau" or self.holdout > 0,
                "--lr-scheduler plateau watches the held-out validation error (never the test "
                "split): pass --holdout FRACTION, e.g. --holdout 0.05",
            ),
            (not self.reset_head or self.weights is not None, "--reset-head needs --weights"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConvzooError(message)
        check_threads(self.threads)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["lr_milestones"] = list(self.lr_milestones)
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from ``values`` (derived keys dropped), each checked against its field's
        type: an unknown key, a wrong type or a missing model is one :class:`ConvzooError`."""
        values = check_values(values, source="config")
        if "model" not in values:
            raise ConvzooError("the config names no model")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> dict[str, Any]:
        """The values saved in a run's ``config.json`` (a file or the run directory), each
        checked against its field's type (derived keys dropped)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            values = read_json(path, what="config")
        except RecursionError:
            raise ConvzooError(f"config {path} nests its JSON too deeply") from None
        except ValueError as e:  # an integer of more than 4300 digits
            raise ConvzooError(f"config {path} is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise ConvzooError(f"config {path} must hold a JSON object")
        return check_values(values, source=f"config {path}")


# Options that only act with some other setting: (field, whether cfg uses it, why it would not;
# formatted with the config as ``c``).
_SCHEDULE = "with --lr-scheduler {c.lr_scheduler} (only {uses} uses it)"
_ACTS_WITH = [
    ("lr_milestones", lambda c: c.lr_scheduler == "multistep", _SCHEDULE, "multistep"),
    ("lr_milestone_unit", lambda c: c.lr_scheduler == "multistep", _SCHEDULE, "multistep"),
    ("lr_step_epochs", lambda c: c.lr_scheduler == "step", _SCHEDULE, "step"),
    ("lr_gamma", lambda c: c.lr_scheduler in ("step", "multistep", "plateau", "exponential"),
     _SCHEDULE, "step, multistep, plateau or exponential"),
    ("lr_min", lambda c: c.lr_scheduler == "cosine", _SCHEDULE, "cosine"),
    ("onecycle_pct", lambda c: c.lr_scheduler == "onecycle", _SCHEDULE, "onecycle"),
    ("plateau_patience", lambda c: c.lr_scheduler == "plateau", _SCHEDULE, "plateau"),
    ("plateau_threshold", lambda c: c.lr_scheduler == "plateau", _SCHEDULE, "plateau"),
    ("plateau_max_drops", lambda c: c.lr_scheduler == "plateau", _SCHEDULE, "plateau"),
    ("ema_decay", lambda c: c.ema, "without --ema", ""),
    ("ema_steps", lambda c: c.ema, "without --ema", ""),
    ("rmsprop_alpha", lambda c: c.optimizer == "rmsprop", "with --opt {c.optimizer} (only "
     "{uses} uses it)", "rmsprop"),
    ("weights", lambda c: c.resume is None, "with --resume (the run continues with its "
     "checkpoint's weights)", ""),
]


def check_given_options(cfg: TrainConfig, given: set[str]) -> None:
    """Refuse an option set on purpose (``given``: field names from the command line) that
    does nothing with ``cfg``'s other settings: ``--ema-decay`` without ``--ema`` would be
    recorded in config.json as if it had shaped the run."""
    labels = {o.name: o.label for o in options()}
    for name, acts, why, uses in _ACTS_WITH:
        if name in given and not acts(cfg):
            raise ConvzooError(f"{labels[name]} does nothing {why.format(c=cfg, uses=uses)}; "
                               f"leave it out")


# --- the fields as options: types, flags, choices ----------------------------------------------


@dataclass(frozen=True)
class Option:
    """One TrainConfig field as the CLI and the type checks see it."""

    name: str
    kind: type  # int | float | str | bool | dict; for a tuple field, the element type
    optional: bool  # None is allowed
    sequence: bool  # a tuple of ``kind``
    default: Any  # dataclasses.MISSING for the model
    help: str
    flags: tuple[str, ...]  # CLI flags; () when the field is no flag
    choices: tuple[str, ...] | None
    bounds: dict[str, float] = field(default_factory=dict)  # ge / gt / le / lt

    def in_bounds(self, v: float) -> bool:
        b = self.bounds
        return (("ge" not in b or v >= b["ge"]) and ("gt" not in b or v > b["gt"])
                and ("le" not in b or v <= b["le"]) and ("lt" not in b or v < b["lt"]))

    def bounds_text(self) -> str:
        """The range in words: ">= 1", "> 0", "in [0, 1)"."""
        b = self.bounds

        def num(x: float) -> str:
            return "2**32" if x == SEED_LIMIT else (str(int(x)) if float(x).is_integer()
                                                     else repr(x))

        low = ("[", b["ge"]) if "ge" in b else ("(", b["gt"]) if "gt" in b else None
        high = ("]", b["le"]) if "le" in b else (")", b["lt"]) if "lt" in b else None
        if low and high:
            return f"in {low[0]}{num(low[1])}, {num(high[1])}{high[0]}"
        if low:
            return f"{'>=' if low[0] == '[' else '>'} {num(low[1])}"
        return f"{'<=' if high[0] == ']' else '<'} {num(high[1])}"

    @property
    def label(self) -> str:
        """How messages name the field: its first flag, else its name."""
        return self.flags[0] if self.flags else self.name

    def expected(self) -> str:
        names = {int: "an integer", float: "a finite number", str: "a string",
                 bool: "true or false", dict: "a JSON object"}
        plural = {int: "integers", float: "numbers", str: "strings"}
        text = f"a list of {plural[self.kind]}" if self.sequence else names[self.kind]
        return text + (" or null" if self.optional else "")


@functools.cache
def options() -> tuple[Option, ...]:
    """The fields of :class:`TrainConfig` in declaration order, with their types resolved."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        hint, optional = hints[f.name], False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional, hint = len(args) < len(typing.get_args(hint)), args[0]
        origin = typing.get_origin(hint)
        sequence = origin is tuple
        kind = typing.get_args(hint)[0] if sequence else (origin or hint)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        meta = f.metadata
        flags = ()
        if meta["cli"]:
            flags = meta["flags"] or ("--" + f.name.replace("_", "-"),)
        out.append(Option(f.name, kind, optional, sequence, default, meta["help"], flags,
                          meta["choices"], dict(meta["bounds"])))
    return tuple(out)


def check_values(values: dict[str, Any], *, source: str | None = "config") -> dict[str, Any]:
    """``values`` without the derived keys, each checked against its TrainConfig field's type
    (ints are not bools, floats are finite, lists of ints become tuples). A bad one is a
    :class:`ConvzooError` that starts with ``source`` (e.g. "config run/config.json") and names
    the key, its flag and the type expected; with ``source=None`` (values from flags) it names
    the flag alone."""
    by_name = {o.name: o for o in options()}
    out = {}
    for key, value in values.items():
        if key in DERIVED_KEYS:
            continue
        o = by_name.get(key)
        if o is None:
            near = difflib.get_close_matches(str(key), by_name, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConvzooError(f"{source}: unknown key {str(key)[:48]!r}{hint}; the keys are "
                               "TrainConfig's fields (see `convzoo train --help`)")
        flag = f" ({o.flags[0]})" if o.flags else ""
        where = o.label if source is None else f"{source}: key {key!r}{flag}"
        out[key] = _checked(o, value, where)
    return out


def _checked(o: Option, value: Any, where: str) -> Any:
    def wrong(detail: str = "") -> ConvzooError:
        return ConvzooError(f"{where} must be {o.expected()}{detail}, got {_show(value)}")

    if value is None:
        if o.optional:
            return None
        raise wrong()
    if o.sequence:
        if not isinstance(value, (list, tuple)) or not all(_is(o.kind, v) for v in value):
            raise wrong()
        return tuple(o.kind(v) for v in value)
    if o.kind is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise wrong()
        if _depth(value) > MAX_NESTING:
            raise wrong(f" nested at most {MAX_NESTING} deep")
        return dict(value)
    if not _is(o.kind, value):
        raise wrong()
    if o.kind is str and ("\0" in value or not value):
        raise wrong(" (non-empty, without NUL characters)")
    if o.kind is float:
        if abs(value) > FLOAT32_MAX:
            raise wrong(f" of magnitude at most {FLOAT32_MAX:.3g}")
        return float(value)
    if o.kind is int:
        if not -INT_LIMIT <= value < INT_LIMIT:
            raise wrong(" that fits in 64 bits")
        return int(value)
    return value


def _is(kind: type, value: Any) -> bool:
    """Whether ``value`` is of ``kind``: a bool is no number; ints include NumPy's, floats any
    finite real number."""
    if isinstance(value, bool):
        return kind is bool
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real) and math.isfinite(value)
    return isinstance(value, kind)


def _depth(value: Any, limit: int = MAX_NESTING + 1) -> int:
    """How deep lists and objects nest in ``value`` (a scalar: 0), counted up to ``limit``."""
    if limit == 0 or not isinstance(value, (list, tuple, dict)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def _show(value: Any) -> str:
    """A value as a message shows it: JSON-like and at most ~40 characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, (list, tuple)):
        return "a list" if len(repr(value)) > 40 else repr(list(value))
    text = repr(value)
    if isinstance(value, str):
        text = f"the string {text}"
    return text if len(text) <= 48 else text[:45] + "..."
