"""``fit``: train a zoo model on a data set and write a run directory (:mod:`.rundir`).

A run, step by step:

1. :func:`check_inputs`: the model name, AMP on this device, the checkpoint to resume and that it
   continues this very run, the run directory (not locked by another process), the data, the
   input size. Nothing is written yet, so a bad argument leaves no trace. A resume of a finished
   run stops here: it changes no byte (:func:`finished_run`).
2. :func:`build_model` and :func:`build_state` (model, optimizer, schedule, scaler, EMA as a
   :class:`~convzoo.engine.state.TrainState`), with the checkpoint loaded into them.
3. :func:`start_run_dir`: create the folder, lock it, and describe the run (config.json, classes,
   preset, data sizes).
4. :meth:`Trainer.train <convzoo.engine.epoch.Trainer.train>` (:mod:`.epoch`: the loop, one
   step and the end of an epoch read top to bottom), then the final evaluation and
   :func:`~convzoo.engine.rundir.finish_run`.

One code path serves one process and DDP under torchrun: a single process is a world of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._limits import check_fits
from ..data import DataPreset, DataSource, load_splits
from ..data.splits import AnyDataset, Splits, balanced_subset
from ..errors import ConvzooError
from ..hub import eval_sizes
from ..models._common import head_names, is_head_key
from ..registry import create_model, model_info
from . import checkpoint as ckpt
from . import distributed as dist_
from . import rundir
from .config import TrainConfig
from .device import resolve_device
from .ema import EMA
from .epoch import PendingSteps, StopSignals, Trainer, TrainingInterrupted, evaluate_split
from .input_size import resolve_input_size
from .loader import TrainBatches
from .progress import Reporter
from .rundir import FitResult, RunDir, default_run_dir, finish_run
from .runlog import METRIC_FIELDS, TensorBoard, write_metrics  # noqa: F401  (re-exported)
from .schedules import LRSchedule, build_optimizer, lr_lambda
from .state import (
    NOT_THE_RUN,
    TrainState,
    config_differences,
    nothing_to_train,
    resolved_conflicts,
    resume_conflicts,
)

log = logging.getLogger(__name__)

# On a GPU the trainer reads the loss back (a wait for the device) every this many steps, not
# after each one: benchmarks/engine.py measures what the per-step wait cost (docs/gpu.md).
SYNC_EVERY_CUDA = 25
SYNC_EVERY_CPU = 1  # reading a number costs nothing on the CPU (tests raise it: the GPU path)

__all__ = [
    "FitResult",
    "fit",
    "finish_run",
    "lr_lambda",
    "write_metrics",
    "TrainingInterrupted",
    "METRIC_FIELDS",
]


@dataclass
class Inputs:
    """What a run starts from, every part checked before anything is written."""

    device: torch.device
    splits: Splits
    in_chans: int
    model_args: dict[str, Any]  # the builder's arguments (num_classes, in_chans, ...)
    input_size: int  # pixels: the side the model sees
    input_size_reason: str  # one sentence: why that size
    preset: DataPreset
    out: RunDir
    resume_path: Path | None = None
    resume_blob: dict[str, Any] | None = None  # the checkpoint's contents

    @property
    def resolved(self) -> dict[str, Any]:
        """The values derived from the data that a resume must find unchanged."""
        return {"model_args": self.model_args, "classes": list(self.splits.classes),
                "input_size": self.input_size}


def fit(
    cfg: TrainConfig | dict[str, Any], reporter: Reporter | None = None, *,
    source: DataSource | None = None,
) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data``; evaluate after every epoch; write the run directory.
    ``cfg`` may be a dict of TrainConfig's fields (checked as a config.json is).

    ``source`` is a data set made in code (an experiment's subset), named ``cfg.data``.

    Under ``torchrun`` every process calls this; they train as one DDP model and only process 0
    writes files or reports. Raises :class:`TrainingInterrupted` after SIGINT/SIGTERM (with a
    checkpoint written), :class:`~convzoo.errors.TrainingDiverged` on a non-finite loss and
    :class:`ConvzooError` on bad input (before anything is written).
    """
    if isinstance(cfg, dict):  # fit({"model": "lenet5", "epochs": 2}): the fields as a dict
        cfg = TrainConfig.from_dict(cfg)
    elif not isinstance(cfg, TrainConfig):
        raise ConvzooError(f"fit: expected a TrainConfig (or a dict of its fields), got "
                           f"{type(cfg).__name__}")
    cfg = cfg.validate()
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)  # --threads, for this run only
    ctx, device_name = dist_.setup(cfg.device)
    try:
        with _deterministic(cfg.deterministic):
            return _fit(cfg, reporter or Reporter(), ctx, device_name, source)
    finally:
        dist_.cleanup(ctx)
        torch.set_num_threads(threads)


class RunFinished(Exception):
    """:func:`check_inputs` found the resumed run finished: ``result`` is what it holds, and
    ``message`` says so."""

    def __init__(self, result: FitResult, message: str) -> None:
        super().__init__(message)
        self.result, self.message = result, message


def _fit(
    cfg: TrainConfig, reporter: Reporter, ctx: dist_.DistContext, device_name: str,
    source: DataSource | None,
) -> FitResult:
    if not ctx.is_main:
        reporter = Reporter()
    try:
        inputs = check_inputs(cfg, ctx, device_name, source)
    except RunFinished as done:
        reporter.finish(done.message)
        return done.result
    torch.manual_seed(cfg.seed)
    try:
        result = _run(cfg, inputs, reporter, ctx)
    except BaseException:
        # Failed before the run saved anything of value: the folder this command made goes, and
        # an --overwrite run that never replaced the old one leaves it as it was.
        inputs.out.discard_if_empty()
        raise
    finally:
        inputs.out.release()
    return result


def _run(
    cfg: TrainConfig, inputs: Inputs, reporter: Reporter, ctx: dist_.DistContext
) -> FitResult:
    if cfg.engine == "numpy":
        from .numpy_engine import fit_numpy  # NumPy engine: same data, run dir and weights file

        start_run_dir(cfg, ctx, inputs, reporter)
        result = fit_numpy(cfg, inputs.splits.train, inputs.splits.test, inputs.preset,
                           inputs.out.path, inputs.model_args, _NamingTarget(reporter, inputs.out))
        inputs.out.finish()  # (an --overwrite run has no checkpoint before this)
        result.run_dir = inputs.out.path
        return result
    model = build_model(cfg, inputs, ctx)
    if cfg.test_only:
        return _test_only(cfg, model, inputs, reporter, ctx)
    state, loader, train_model = build_state(cfg, model, inputs, ctx)
    start_run_dir(cfg, ctx, inputs, reporter)
    return _train(cfg, state, loader, train_model, inputs, reporter, ctx)


class _NamingTarget:
    """``reporter``, with the run directory named where an --overwrite run's last line would
    name the folder it is written in until it replaces the old run (the NumPy engine: no
    checkpoints)."""

    def __init__(self, reporter: Reporter, out: RunDir) -> None:
        self.reporter, self.out = reporter, out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reporter, name)

    def finish(self, message: str) -> None:
        self.reporter.finish(message.replace(str(self.out.path), str(self.out.target)))


def check_inputs(
    cfg: TrainConfig, ctx: dist_.DistContext, device_name: str, source: DataSource | None = None
) -> Inputs:
    """Everything the run depends on, checked; raises ConvzooError before writing anything."""
    model_info(cfg.model)  # fails early on an unknown name
    device = resolve_device(device_name)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConvzooError(
            f"--amp fp16 needs a CUDA device (GradScaler); on {device} use --amp bf16"
        )
    if cfg.sync_bn and device.type != "cuda":
        raise ConvzooError(f"--sync-bn needs CUDA devices: torch's SyncBatchNorm only works with "
                           f"GPU modules (this run is on {device})")
    if cfg.engine == "numpy":
        from .numpy_engine import check_numpy_config

        check_numpy_config(cfg)  # what it does not implement is refused before anything is written
    resume_path = blob = None
    if cfg.resume:
        resume_path = ckpt.resolve_resume(cfg.resume)
        blob = ckpt.load_checkpoint(resume_path)
        if not cfg.test_only:
            _refuse_resume(resume_path, resume_conflicts(blob, cfg, world=ctx.world))
    if source is not None and source.name != cfg.data:
        raise ConvzooError(f"fit: data {cfg.data!r} is not the source given ({source.name!r})")
    out = _choose_run_dir(cfg, ctx, resume_path)
    problem = dist_.broadcast_object(
        out.problem(overwrite=cfg.overwrite) if ctx.is_main else None, ctx
    )
    if problem:
        raise ConvzooError(problem)
    if blob is not None and out.resuming:
        finished_run(cfg, out.path, resume_path, blob)
    splits = load_splits(
        source if source is not None else cfg.data, cfg.data_dir, holdout=cfg.holdout,
        seed=cfg.seed, on_bad_file=cfg.on_bad_file, train_split=cfg.train_split,
        val_split=cfg.val_split,
    )
    in_chans = cfg.in_chans or splits.channels
    num_classes = cfg.model_args.get("num_classes", cfg.num_classes or len(splits.classes))
    if isinstance(num_classes, int) and num_classes < len(splits.classes):  # labels index logits
        raise ConvzooError(f"--num-classes {num_classes} is fewer than the {len(splits.classes)} "
                           f"classes of data {cfg.data!r}; leave it out to use the data's count")
    size, reason = resolve_input_size(cfg.model, image_size=splits.common_size,
                                      requested=cfg.input_size, weights_size=_weights_size(cfg))
    side = size or model_info(cfg.model).input_size[1]  # a batch that cannot fit: refused now
    check_fits(4 * cfg.batch_size * in_chans * side * side,
               f"a batch of {cfg.batch_size} images of {in_chans}x{side}x{side} as float32")
    preset = splits.preset(in_chans=in_chans, input_size=size,
                           eval_sizes=eval_sizes(cfg.model, cfg.weights))
    inputs = Inputs(
        device=device, splits=splits, in_chans=in_chans,
        model_args={"num_classes": num_classes, "in_chans": in_chans, **cfg.model_args},
        input_size=size, input_size_reason=reason, preset=preset,
        out=out, resume_path=resume_path, resume_blob=blob,
    )
    if blob is not None and not cfg.test_only:
        _refuse_resume(resume_path, resolved_conflicts(blob, inputs.resolved))
    return inputs


def finished_run(cfg: TrainConfig, run: Path, resume_path: Path, blob: dict[str, Any]) -> None:
    """A resume of run directory ``run`` when it is finished (final.json and model.safetensors
    written, nothing left to train under ``cfg``) changes no byte: raises :class:`RunFinished`
    (the run's results, and how to train further) with the run's own settings, else
    ConvzooError naming those that differ. A resume from a checkpoint older than the finished
    run's latest would train over its results: refused. Returns when the resume may go on."""
    final_path = run / rundir.FINAL
    if not (final_path.is_file() and (run / rundir.WEIGHTS).is_file()):
        return  # not finished, or killed before its results were written: the resume writes them
    latest = ckpt.list_checkpoints(run / "checkpoints")
    if latest and latest[-1].resolve() != resume_path.resolve():
        raise ConvzooError(
            f"--resume {resume_path}: {run} is a finished run and this is not its latest "
            f"checkpoint ({latest[-1].name}): resuming it there would train over the run's "
            f"results; give --out NEW_DIR to start a new run from this checkpoint")
    if not nothing_to_train(blob, cfg):
        return
    trained = blob.get("config", {}).get("epochs", blob["epoch"] - 1)
    epochs = f"{trained} epoch{'' if trained == 1 else 's'}"
    further = (f"to train it further, resume it with more --epochs (it trained {trained})"
               + (" or a larger --max-steps" if cfg.max_steps else "")
               + ("; it stopped where its training error reached --target-train-err"
                  if blob.get("target_reached") else ""))
    differ = config_differences(blob.get("config"), cfg, ignore=NOT_THE_RUN)
    if differ:
        raise ConvzooError(
            f"--resume {resume_path}: {run} is a finished run ({epochs}, step "
            f"{blob['step']}) not trained with {'; '.join(differ)}; nothing was written; "
            f"{further}, or start a new run")
    from .._io import read_json
    from .loaded import load_trained

    final = read_json(final_path, what="run results")
    result = FitResult(run_dir=run, final=final, model=load_trained(run).model)
    top1 = final.get("top1_acc") if isinstance(final, dict) else None
    raise RunFinished(result, (
        f"{run} is a finished run ({epochs}, step {blob['step']}"
        + (f", test top-1 acc {top1:.4f}" if isinstance(top1, float) else "")
        + f"): nothing to train, nothing written; {further}"))


def _refuse_resume(path: Path, conflicts: list[str]) -> None:
    if conflicts:
        raise ConvzooError(
            f"--resume {path}: not the run this checkpoint continues: {'; '.join(conflicts)}; "
            f"resume without changing these, or start a new run"
        )


def _weights_size(cfg: TrainConfig) -> int | None:
    """The input size the ``--weights`` were trained at: their metadata's, else the model's
    default (torchvision's ImageNet .pth files, shipped weights from before the size was
    recorded: each was trained at it)."""
    if cfg.weights is None:
        return None
    from ..weights import read_weights, resolve_weights

    info = model_info(cfg.model)
    path = resolve_weights(info, cfg.weights)
    size = read_weights(path).extra.get("input_size") if path.suffix == ".safetensors" else None
    return int(size) if isinstance(size, (int, float)) else info.input_size[1]


def _choose_run_dir(cfg: TrainConfig, ctx: dist_.DistContext, resume: Path | None) -> RunDir:
    """``--out``; else, resuming, the checkpoint's own run (wherever it is now, whatever ``out``
    it was saved with); else a new ``runs/MODEL-DATA-TIME``. ``--test-only`` never writes into
    the run it evaluates unless ``--out`` says so."""
    resumed_run = resume.parent.parent if resume and resume.parent.name == "checkpoints" else None
    if cfg.out:
        path = Path(cfg.out)
    elif resumed_run is not None and not cfg.test_only:
        path = resumed_run
    else:
        path = dist_.broadcast_object(default_run_dir(cfg.model, cfg.data), ctx)
    resuming = resumed_run is not None and path.resolve() == resumed_run.resolve()
    return RunDir(path, writer=ctx.is_main, resuming=resuming and not cfg.test_only)


def build_model(cfg: TrainConfig, inputs: Inputs, ctx: dist_.DistContext) -> torch.nn.Module:
    """The zoo model with its initial weights, on the device, in the run's form (gemm
    convolutions, frozen backbone, SyncBatchNorm, channels-last)."""
    model = create_model(cfg.model, weights=cfg.weights, reset_head=cfg.reset_head,
                         **inputs.model_args)
    if cfg.conv == "gemm":
        from .. import gemm  # every nn.Conv2d becomes unfold (im2col) + matmul

        model = gemm.convert(model)
    if cfg.freeze_backbone:
        _freeze_backbone(model)
    if cfg.sync_bn and ctx.enabled:  # CUDA only: refused by check_inputs
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(inputs.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_state(
    cfg: TrainConfig, model: torch.nn.Module, inputs: Inputs, ctx: dist_.DistContext
) -> tuple[TrainState, TrainBatches, torch.nn.Module]:
    """The training state (with the checkpoint loaded when resuming), the batch iterator and the
    model as trained (DDP-wrapped, compiled)."""
    train_model: torch.nn.Module = model
    if ctx.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[inputs.device.index] if inputs.device.type == "cuda" else None
        )
    if cfg.compile:
        train_model = torch.compile(train_model)
    optimizer = build_optimizer(cfg, (p for p in model.parameters() if p.requires_grad))
    loader = TrainBatches(
        inputs.splits.train, inputs.preset, batch_size=cfg.batch_size, device=inputs.device,
        in_chans=inputs.in_chans, seed=cfg.seed, ctx=ctx, channels_last=cfg.channels_last,
        workers=cfg.workers,
    )
    steps_per_epoch = -(-len(loader) // cfg.accum_steps)
    parts = dict(
        model=model, optimizer=optimizer, schedule=LRSchedule(cfg, optimizer, steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None,
        ema=EMA(model, cfg.ema_decay) if cfg.ema else None,
    )
    blob = inputs.resume_blob
    if blob is None:
        state = TrainState(**parts)
    else:
        state = TrainState.from_checkpoint(blob, inputs.resume_path, rank=ctx.rank, **parts)
        rngs = blob["rng"]
        ckpt.set_rng_state(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0], loader.generator)
        loader.set_order_state(rngs[0]["order"])
    return state, loader, train_model


def start_run_dir(
    cfg: TrainConfig, ctx: dist_.DistContext, inputs: Inputs, reporter: Reporter
) -> None:
    """Create the run directory and describe the run in it; say what is trained, where, and
    at which input size."""
    from .._version import __version__

    out, splits = inputs.out, inputs.splits
    out.create(overwrite=cfg.overwrite)
    out.write_json(rundir.CONFIG, {
        **cfg.to_dict(),
        "out": str(out.path),
        "input_size": inputs.input_size,
        "input_size_reason": inputs.input_size_reason,
        "world_size": ctx.world,
        "global_batch_size": cfg.batch_size * ctx.world * cfg.accum_steps,
        "convzoo_version": __version__,
        "argv": sys.argv,  # the command line, for the record (convzoo report shows it)
    })
    out.write_json(rundir.CLASSES, splits.classes)
    out.write_json(rundir.PRESET, inputs.preset.to_dict())
    out.write_json(rundir.DATA, splits.summary())
    out.write_json(rundir.SKIPPED, [list(s) for s in splits.skipped])
    train_set, val_set, test_set = splits.train, splits.val, splits.test
    reporter.start(
        f"training {cfg.model} on {cfg.data} ({train_set.source}: {len(train_set)} train"
        f"{'' if val_set is None else f' / {len(val_set)} held-out'} / {len(test_set)} test "
        f"images) on {inputs.device}"
        f"{f' x {ctx.world} processes' if ctx.enabled else ''}, run directory {out.target}"
    )
    reporter.start(inputs.input_size_reason)


def train_eval_set(train: AnyDataset, n: int) -> AnyDataset | None:
    """The ``--eval-train N`` images: a class-balanced ``n`` of the training split (all of it
    when ``n`` is larger), the same every epoch; None when ``n`` is 0."""
    if not n:
        return None
    return train if n >= len(train) else train.subset(balanced_subset(train.labels, n, 0))


def _train(
    cfg: TrainConfig, state: TrainState, loader: TrainBatches, train_model: torch.nn.Module,
    inputs: Inputs, reporter: Reporter, ctx: dist_.DistContext,
) -> FitResult:
    """Epochs until the run's last, then the final evaluation and the run's results."""
    sync_every = SYNC_EVERY_CUDA if inputs.device.type == "cuda" else SYNC_EVERY_CPU
    pending = PendingSteps(sync_every, state.step, window=cfg.target_window
                           if cfg.target_train_err is not None else 0)
    with StopSignals() as stop:
        trainer = Trainer(
            cfg=cfg, ctx=ctx, device=inputs.device, reporter=reporter, out=inputs.out,
            loader=loader, train_model=train_model, preset=inputs.preset,
            in_chans=inputs.in_chans, val_set=inputs.splits.val, test_set=inputs.splits.test,
            resolved=inputs.resolved, stop=stop, pending=pending,
            tb=TensorBoard(lambda: inputs.out.path, cfg.tensorboard and ctx.is_main),
            train_eval_set=train_eval_set(inputs.splits.train, cfg.eval_train),
        )
        if inputs.resume_path is not None:
            reporter.start(
                f"resumed from {inputs.resume_path}: epoch {state.epoch}, batch "
                f"{state.batch}/{trainer.batches_per_epoch}, step {state.step}"
            )
        trainer.train(state)
    trainer.tb.close()
    if loader.skipped:
        inputs.out.write_json(rundir.SKIPPED,
                              [list(s) for s in inputs.splits.skipped + loader.skipped])
    ev = trainer.final_test(state)
    if not ctx.is_main:
        return FitResult(run_dir=inputs.out.path, final={}, model=state.eval_model)
    inputs.out.finish()  # (an --overwrite run replaced the old one at its first checkpoint)
    extra = {"best_val_top1_acc": state.best["acc"], "world_size": ctx.world,
             "input_size": inputs.input_size}
    return finish_run(inputs.out.path, cfg, state.eval_model, inputs.model_args,
                      inputs.splits.classes, ev, state.rows, reporter, extra=extra,
                      input_size=inputs.input_size, preset=inputs.preset)


def _test_only(
    cfg: TrainConfig, model: torch.nn.Module, inputs: Inputs, reporter: Reporter,
    ctx: dist_.DistContext,
) -> FitResult:
    """Score the given ``--weights`` (or the resumed checkpoint's) on the test split."""
    blob = inputs.resume_blob
    if blob is not None:
        try:
            model.load_state_dict(blob["ema"] if blob.get("ema") else blob["model"])
        except RuntimeError as e:
            raise ConvzooError(f"--resume {inputs.resume_path}: the checkpoint does not fit "
                               f"model {cfg.model}: {str(e).splitlines()[0]}") from None
    elif cfg.weights is None:
        raise ConvzooError("--test-only needs --weights FILE|TAG or --resume RUN_DIR|CHECKPOINT")
    start_run_dir(cfg, ctx, inputs, reporter)
    ev = evaluate_split(model, inputs.splits.test, inputs.preset, cfg=cfg,
                        device=inputs.device, in_chans=inputs.in_chans, ctx=ctx)
    final = {"model": cfg.model, "data": cfg.data, "test_only": True,
             "weights": cfg.weights or cfg.resume, "input_size": inputs.input_size,
             **ev.to_dict()}
    inputs.out.write_json(rundir.FINAL, final)
    inputs.out.finish()
    reporter.finish(
        f"test top-1 acc {ev.topk_acc[1]:.4f} (err {1 - ev.topk_acc[1]:.4f}), "
        f"top-5 acc {ev.topk_acc[5]:.4f} on {ev.n} images\nrun directory: {inputs.out.path}"
    )
    return FitResult(run_dir=inputs.out.path, final=final, model=model)


def _freeze_backbone(model: torch.nn.Module) -> int:
    trainable = 0
    for name, p in model.named_parameters():
        keep = is_head_key(name, model)
        p.requires_grad_(keep)
        trainable += p.numel() if keep else 0
    if trainable == 0:
        raise ConvzooError(
            f"--freeze-backbone: model {type(model).__name__} has no classifier "
            f"parameters under {head_names(model)}"
        )
    return trainable


@contextlib.contextmanager
def _deterministic(on: bool):
    """Deterministic kernels for the run when ``on``; otherwise cuDNN's autotuner (each conv
    shape times its algorithms once, as torchvision's reference trainer does: the input size is
    fixed for a run). Both settings are restored afterwards."""
    before = torch.are_deterministic_algorithms_enabled()
    bench = torch.backends.cudnn.benchmark
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = not on
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = bench
