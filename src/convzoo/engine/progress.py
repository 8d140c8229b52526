"""What a person sees while training: a progress bar on a terminal, plain lines otherwise.

The library reports through a :class:`Reporter`; the CLI chooses which one. The default logs.
The bars are ``tqdm.auto``'s: a widget in Jupyter (with ipywidgets), the text bar elsewhere; in
a notebook the epoch lines go to stdout, as a cell's ordinary output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepInfo:
    """One optimizer step, as a :class:`Reporter` receives it.

    On a GPU the trainer hands these over in bunches (every ``SYNC_EVERY_CUDA`` steps, and before
    any checkpoint or evaluation) so that it does not wait for the device after every step; the
    values are those of the step itself all the same.
    """

    step: int  # optimizer steps done in the run, this one included (1-based)
    epoch: int  # 1-based
    batch: int  # micro-batches done in this epoch (of steps_per_epoch x accumulation)
    loss: float  # mean cross-entropy of the step's images (all its micro-batches)
    correct: int  # of them, how many the model's top-1 got right (before this step's update)
    images: int  # images in the step
    lr: float  # the learning rate the step used
    acc: float  # running training accuracy of the epoch so far
    images_per_s: float  # the epoch's training throughput so far

    @property
    def error(self) -> float:
        """Top-1 training error of this step's mini-batch."""
        return 1.0 - self.correct / max(self.images, 1)


class Reporter:
    """Receives training events; this base class logs one line per epoch."""

    def start(self, message: str) -> None:
        log.info(message)

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, info: StepInfo) -> None:
        pass

    def evaluating(self, what: str) -> Callable[[int, int], None] | None:
        """A callback for :func:`~convzoo.engine.scoring.evaluate_model`'s ``progress`` while
        the trainer scores ``what`` ("test", ...), or None for none."""
        return None

    def end_epoch(self, row: dict[str, Any]) -> None:
        log.info(format_epoch(row))

    def finish(self, message: str) -> None:
        log.info(message)


def format_epoch(row: dict[str, Any]) -> str:
    return (
        f"epoch {row['epoch']:>3}/{row['epochs']:<3} lr {row['lr']:.4g}  "
        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
        f"test top1 {row['test_top1_acc']:.4f} top5 {row['test_top5_acc']:.4f}  "
        f"{row['images_per_s']:.0f} img/s  {row['epoch_time_s']:.1f}s"
    )


class LineReporter(Reporter):
    """One fixed-width line per epoch to a stream (for logs and pipes)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: whatever sys.stdout is when a line is written

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def start(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def end_epoch(self, row: dict[str, Any]) -> None:
        print(format_epoch(row), file=self.stream, flush=True)

    finish = start


class TqdmReporter(LineReporter):
    """A tqdm bar per epoch with running loss, accuracy and images/s; a line when it ends."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream or (None if in_notebook() else sys.stderr))
        self.bar = None

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False,
                        file=self.stream, dynamic_ncols=True)

    def step(self, info: StepInfo) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{info.loss:.4f}", acc=f"{info.acc:.4f}",
                                 img_s=f"{info.images_per_s:.0f}", refresh=False)
            self.bar.update(1)
            if self.bar.n >= self.bar.total:
                # tqdm may hold back its last update until close(), i.e. until after the
                # end-of-epoch checkpoint and evaluation: show the finished epoch now.
                self.bar.refresh()

    def evaluating(self, what: str) -> Callable[[int, int], None]:
        return eval_progress(f"scoring {what}", self.stream, always=True)

    def end_epoch(self, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        super().end_epoch(row)


def eval_progress(what: str, stream: TextIO | None = None, *, always: bool = False
                  ) -> Callable[[int, int], None]:
    """A tqdm bar for one evaluation, as a ``progress(done, total)`` callback: made at the first
    batch, closed at the last. Shown only on a terminal unless ``always``."""
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm.auto import tqdm

            out = stream or sys.stderr
            shown = always or in_notebook() or (hasattr(out, "isatty") and out.isatty())
            bar = tqdm(total=total, desc=what, unit="img", leave=False, file=out,
                       dynamic_ncols=True, disable=not shown)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def in_notebook() -> bool:
    """Whether ``tqdm.auto`` draws its bars as Jupyter widgets here (an IPython kernel with
    ipywidgets installed)."""
    import tqdm.auto  # noqa: F401  (imports tqdm.autonotebook without its warning)
    from tqdm.autonotebook import tqdm as chosen
    from tqdm.std import tqdm as text

    return chosen is not text
