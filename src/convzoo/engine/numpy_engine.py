"""The NumPy engine: train and evaluate convzoo.scratch models with the torch engine's plumbing.

``convzoo train lenet5 --engine numpy`` lands in :func:`fit_numpy`. Everything around the
network is shared with the torch engine, so the two runs differ only in who does the arithmetic:

- the same data path: :class:`~convzoo.data.BatchLoader` batches (same seed, so the same order
  and augmentation), handed over as NumPy arrays with ``.numpy()``;
- the same start: the seeded torch model is built first and its initial weights are copied into
  the NumPy one (the state-dict keys are the same);
- the same SGD (lr, momentum, weight decay on every parameter) and the same per-step schedule
  (:func:`convzoo.engine.trainer.lr_lambda`);
- the same run directory and ``model.safetensors`` (:func:`convzoo.engine.trainer.finish_run`),
  so ``convzoo eval`` reads a NumPy-trained run like any other.

:func:`evaluate_numpy` scores a run directory or weights file written by either engine with the
NumPy network.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import BatchLoader, DataPreset, ImageDataset
from ..errors import ConvzooError
from ..registry import create_model
from ..scratch import SGD, CrossEntropyLoss, Module, create_scratch_model, log_softmax
from ..scratch.models import MODELS as SCRATCH_MODELS
from .config import TrainConfig
from .evaluate import KS, EvalResult
from .metrics import per_class_accuracy, topk_correct
from .progress import Reporter, StepInfo

log = logging.getLogger(__name__)


def scratch_model(name: str, model_args: dict[str, Any]) -> Module:
    """The NumPy build of zoo model ``name`` with the torch builder's arguments."""
    if name not in SCRATCH_MODELS:
        raise ConvzooError(
            f"the numpy engine has no build of model {name!r}; it trains "
            f"{', '.join(sorted(SCRATCH_MODELS))} (use --engine torch for the others)"
        )
    try:
        return create_scratch_model(name, **model_args)
    except (TypeError, ValueError) as e:
        raise ConvzooError(f"model {name!r} (numpy engine): {e}") from None


def state_to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def state_to_torch(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def evaluate_numpy_model(net: Module, dataset: ImageDataset, preset: DataPreset, *,
                         batch_size: int = 500, in_chans: int | None = None) -> EvalResult:
    """Score the NumPy network ``net`` (in eval mode) on every image of ``dataset``."""
    was_training = net.training
    net.eval()
    loader = BatchLoader(dataset, preset, batch_size=batch_size, train=False, in_chans=in_chans)
    correct = dict.fromkeys(KS, 0)
    loss_sum, preds = 0.0, []
    for x, y in loader:
        logits = net.forward(x.numpy())
        yn = y.numpy()
        loss_sum += float(-log_softmax(logits.astype(np.float64))[np.arange(len(yn)), yn].sum())
        t_logits = torch.from_numpy(np.ascontiguousarray(logits))
        for k, c in topk_correct(t_logits, y, KS).items():
            correct[k] += c
        preds.append(t_logits.argmax(1))
    net.train(was_training)
    n = len(dataset)
    return EvalResult(
        n=n,
        loss=loss_sum / n,
        topk_acc={k: c / n for k, c in correct.items()},
        per_class_acc=per_class_accuracy(torch.cat(preds), dataset.labels, len(dataset.classes)),
        classes=list(dataset.classes),
    )


def fit_numpy(cfg: TrainConfig, train_set: ImageDataset, test_set: ImageDataset,
              preset: DataPreset, run_dir: Path, model_args: dict[str, Any],
              reporter: Reporter):
    """Train the NumPy build of ``cfg.model`` with SGD; evaluate after every epoch; write the run.

    Called by :func:`convzoo.engine.trainer.fit` (which has seeded torch, loaded the data and
    written config.json) and returns its :class:`~convzoo.engine.trainer.FitResult`, whose
    ``model`` is the torch model holding the trained weights.
    """
    from .distributed import DistContext
    from .loader import TrainBatches
    from .trainer import finish_run, lr_lambda, write_metrics

    net = scratch_model(cfg.model, model_args)
    torch_model = create_model(cfg.model, **model_args)  # seeded by fit(): the torch engine's init
    net.load_state_dict(state_to_numpy(torch_model.state_dict()))
    log.info("numpy engine: %s on the CPU, %d parameters", cfg.model,
             sum(p.value.size for p in net.parameters()))
    in_chans = model_args.get("in_chans")
    # The torch engine's own batch iterator: the same order and the same augmentation draws.
    batches = TrainBatches(train_set, preset, batch_size=cfg.batch_size,
                           device=torch.device("cpu"), in_chans=in_chans, seed=cfg.seed,
                           ctx=DistContext())
    optimizer = SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)
    schedule = lr_lambda(cfg, len(batches))
    criterion = CrossEntropyLoss()

    rows: list[dict[str, Any]] = []
    step = 0
    ev: EvalResult | None = None
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        reporter.start_epoch(epoch, cfg.epochs, len(batches))
        lr = cfg.lr * schedule(step)
        t0 = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in batches.batches(epoch):
            optimizer.lr = cfg.lr * schedule(step)  # LambdaLR: lambda(step) before step `step`
            xb, yb = x.numpy(), y.numpy()  # (B, C, H, W) float32, (B,) int64
            logits = net.forward(xb)
            loss = float(criterion.forward(logits, yb))
            net.backward(criterion.backward())
            lr_used = optimizer.lr
            optimizer.step()
            step += 1
            hits = int((logits.argmax(1) == yb).sum())
            loss_sum += loss * len(yb)
            correct += hits
            seen += len(yb)
            reporter.step(StepInfo(step=step, epoch=epoch, batch=step - (epoch - 1) * len(batches),
                                   loss=loss, correct=hits, images=len(yb), lr=lr_used,
                                   acc=correct / seen,
                                   images_per_s=seen / (time.perf_counter() - t0)))
        train_time = time.perf_counter() - t0
        train_loss = loss_sum / seen
        if not math.isfinite(train_loss):
            raise ConvzooError(
                f"training diverged in epoch {epoch}: loss is {train_loss} at lr {lr:g}; "
                f"try a smaller --lr"
            )
        ev = evaluate_numpy_model(net, test_set, preset, batch_size=cfg.eval_batch_size,
                                  in_chans=in_chans)
        rows.append({
            "epoch": epoch, "epochs": cfg.epochs, "lr": lr, "train_loss": train_loss,
            "train_acc": correct / seen, "test_loss": ev.loss,
            "test_top1_acc": ev.topk_acc[1], "test_top5_acc": ev.topk_acc[5],
            "test_top1_err": 1 - ev.topk_acc[1], "test_top5_err": 1 - ev.topk_acc[5],
            "images_per_s": seen / train_time, "epoch_time_s": train_time,
        })
        write_metrics(run_dir, rows)
        reporter.end_epoch(rows[-1])

    torch_model.load_state_dict(state_to_torch(net.state_dict()))
    return finish_run(run_dir, cfg, torch_model, model_args, train_set.classes, ev, rows,
                      reporter)


def load_numpy_trained(source: str | Path, *, model: str | None = None
                       ) -> tuple[Module, Any, Path | None]:
    """(NumPy network, weights file, run dir or None) from a run directory or weights file."""
    from ..weights import read_weights

    source = Path(source)
    run_dir = source if source.is_dir() else None
    path = source / "model.safetensors" if run_dir else source
    if run_dir is not None and not path.is_file():
        raise ConvzooError(f"run directory {run_dir} has no model.safetensors (unfinished run?)")
    wf = read_weights(path)
    name = model or wf.model
    if name is None:
        raise ConvzooError(f"weights file {path} does not name its model; pass --model NAME")
    if model and wf.model and model != wf.model:
        raise ConvzooError(f"weights {path} are for model {wf.model!r}, not {model!r}")
    net = scratch_model(name, dict(wf.model_args))
    try:
        net.load_state_dict(state_to_numpy(wf.state_dict))
    except (KeyError, ValueError) as e:
        raise ConvzooError(f"weights {path} do not fit the NumPy {name}: {e}") from None
    return net, wf, run_dir


def evaluate_numpy(source: str | Path, *, model: str | None = None, data: str | None = None,
                   data_dir: str | None = None, batch_size: int = 500) -> dict[str, Any]:
    """:func:`convzoo.engine.evaluate`, computed by the NumPy network (either engine's weights)."""
    from ..data import preset_for
    from ..registry import model_info
    from .evaluate import trained_test_split

    net, wf, run_dir = load_numpy_trained(source, model=model)
    data, test_set = trained_test_split(source, data=data, data_dir=data_dir,
                                        trained_data=wf.extra.get("data"), run_dir=run_dir)
    in_chans = wf.model_args.get("in_chans", test_set.shape[0])
    info = model_info(model or wf.model)
    preset = preset_for(data, in_chans=in_chans, image_size=test_set.shape[1],
                        model_size=info.input_size[1])
    ev = evaluate_numpy_model(net, test_set, preset, batch_size=batch_size, in_chans=in_chans)
    return {"model": info.name, "data": data, "source": str(source), "engine": "numpy",
            **ev.to_dict()}
