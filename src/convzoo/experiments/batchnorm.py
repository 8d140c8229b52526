"""``batchnorm``: Ioffe & Szegedy 2015 (ICML, arXiv:1502.03167), Fig. 1(a) and §4.2.1.

Part 1, MNIST (§4.1, Fig. 1a): three fully connected hidden layers of 100 sigmoid units
(``mlp3_mnist``), batch 60, with and without BN; test accuracy against training steps. "The
network with Batch Normalization ... has higher test accuracy" and gets there faster. The test
accuracy at step k is measured on the engine's own checkpoints (``checkpoint_every_steps``), so the
training loop is the ordinary one.

Part 2, CIFAR-10 (§4.2.1 "Increase learning rate", BN-x5 and BN-x30 on Inception): a VGG-style
net (``vgg_small_cifar``) with and without BN at 1x, 5x and 30x a base learning rate. BN should
tolerate the higher rates (train, and fast) where the plain net slows down or diverges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine import TrainConfig
from ._common import cifar_data, epoch_curve, mean_of, mnist_data, pct, train_arms, train_tuned
from ._plots import band, figure, save
from ._registry import Experiment, Outcome, PaperSetup, register_experiment
from ._training import Context, TrainRecord
from .analysis import steps_to_threshold
from .verdict import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    PARTLY,
    Stat,
    Verdict,
    at_chance,
    combine,
    compare,
)

ACC_FLOOR = 0.002  # MNIST test accuracies closer than 0.2 points are a tie
ERR_FLOOR = 0.01  # CIFAR-10 test errors closer than 1 point are a tie


@dataclass(frozen=True)
class MnistArm:
    """Final test accuracy (fraction) and steps to the accuracy threshold (censored: never)."""

    final_acc: Stat
    steps_to: Stat


@dataclass(frozen=True)
class LrArm:
    """Final CIFAR-10 test error (fraction; diverged runs left out) and the diverged runs."""

    test_err: Stat
    diverged: int = 0

    @property
    def trained(self) -> bool:
        return self.diverged == 0 and not at_chance(self.test_err.mean)


def status(arm: LrArm) -> str:
    """The table's "runs" cell: diverged / did not train (at chance) / trained."""
    if arm.diverged:
        return f"diverged in {arm.diverged}/{arm.test_err.total}"
    return "did not train (at chance)" if at_chance(arm.test_err.mean) else "trained"


def judge_mnist(no_bn: MnistArm, bn: MnistArm, *, threshold: float = 0.95) -> Verdict:
    """Fig. 1a: with BN, higher test accuracy, reached sooner."""
    for arm, m in (("without BN", no_bn), ("with BN", bn)):
        if at_chance(None if m.final_acc.mean is None else 1 - m.final_acc.mean):
            return Verdict(NOT_COMPARABLE, f"the net {arm} did not train (test accuracy at "
                                           "chance)")
    higher = compare(no_bn.final_acc, bn.final_acc, floor=ACC_FLOOR)
    if bn.steps_to.complete and not no_bn.steps_to.complete:
        sooner = 1
    elif no_bn.steps_to.complete and not bn.steps_to.complete:
        sooner = -1
    else:  # both reached (or neither: then a tie)
        sooner = -compare(no_bn.steps_to, bn.steps_to)
    acc = (f"{100 * bn.final_acc.mean:.2f}% with BN vs {100 * no_bn.final_acc.mean:.2f}% "
           "without")
    if higher > 0 and sooner > 0:
        return Verdict(AGREES, f"BN ends higher ({acc}) and reaches {100 * threshold:.0f}% sooner")
    if higher < 0 and sooner < 0:
        return Verdict(DISAGREES, f"BN ends lower ({acc}) and reaches "
                                  f"{100 * threshold:.0f}% later")
    if higher == 0 and sooner == 0:
        return Verdict(INCONCLUSIVE, f"the two end within the seeds' spread ({acc}) and reach "
                                     f"{100 * threshold:.0f}% about together")
    what = {1: "higher", 0: "level", -1: "lower"}[higher]
    when = {1: "sooner", 0: "about as soon", -1: "later"}[sooner]
    return Verdict(PARTLY, f"BN ends {what} ({acc}) and reaches {100 * threshold:.0f}% {when}")


def judge_lr(no_bn: dict[float, LrArm], bn: dict[float, LrArm]) -> Verdict:
    """§4.2.1: BN trains at much higher learning rates (keys: multiples of the base rate) where
    the net without BN trains badly or diverges."""
    lo, hi = min(bn), max(bn)
    if not bn[lo].trained:
        return Verdict(NOT_COMPARABLE, f"the BN net did not train even at x{lo:g} the base rate")
    if not bn[hi].trained:
        return Verdict(DISAGREES, f"the BN net did not train at x{hi:g} the base rate "
                                  f"({status(bn[hi])})")
    if not no_bn[hi].trained:
        return Verdict(AGREES, f"at x{hi:g} the base rate BN trains and the net without BN "
                               f"{status(no_bn[hi])}")
    c = compare(bn[hi].test_err, no_bn[hi].test_err, floor=ERR_FLOOR)
    if c > 0:
        return Verdict(AGREES, f"at x{hi:g} the base rate the net without BN ends clearly worse")
    if c < 0:
        return Verdict(DISAGREES, f"at x{hi:g} the base rate the net without BN ends clearly "
                                  "better")
    return Verdict(INCONCLUSIVE, f"at x{hi:g} the base rate both train, within the seeds' spread "
                                 "of each other")


@dataclass(frozen=True)
class Params:
    # Part 1: MNIST MLP (§4.1).
    mnist_steps: int = 4000  # optimizer steps (the paper: 50,000)
    mnist_batch: int = 60  # §4.1: 60 examples per mini-batch
    # Plain SGD learning rates tried per arm (the paper gives none); each arm keeps the one
    # ending at the lowest training loss on the first seed (_common.train_tuned).
    mnist_lrs: tuple[float, ...] = (0.1, 0.5, 2.0)
    # Stds of the MLP's Gaussian weights ("small random Gaussian values", §4.1: not given): one
    # sensitivity table over them.
    init_stds: tuple[float, ...] = (0.01, 0.036, 0.1)
    mnist_augment: bool = False  # §4.1 names none (the mnist preset would shift by 2 px)
    eval_every: int = 200  # steps between test evaluations (checkpoints)
    acc_threshold: float = 0.95  # "steps to 95% test accuracy"
    n_train: int | None = None  # MNIST training images (None: all)
    n_test: int | None = None  # tests only
    # Part 2: learning rates on CIFAR-10 (§4.2.1); cifar=False skips it.
    cifar: bool = True
    width: int = 16  # vgg_small_cifar filters of the first stage
    cifar_n_train: int | None = 5000
    cifar_n_test: int | None = 2000  # test images (None: all 10,000)
    cifar_epochs: int = 4
    cifar_batch: int = 128
    base_lr: float = 0.01  # SGD momentum 0.9; BN-x5 and BN-x30 multiply it
    multipliers: tuple[float, ...] = (1.0, 5.0, 30.0)
    cifar_seeds: int | None = 2  # seeds of part 2 (None: as part 1)
    max_steps: int | None = None  # part 2 cut short (tests)


def _test_acc_curve(ctx: Context, rec: TrainRecord) -> tuple[list[int], list[float]]:
    """(steps, test top-1 accuracy) over every checkpoint of a run, oldest first."""
    from ..engine import evaluate_model
    from ..engine.checkpoint import list_checkpoints, load_checkpoint
    from ..engine.rundir import RunDir
    from ..registry import create_model

    run = RunDir(rec.run_dir)
    cfg = run.config()
    test = ctx.test_split(cfg["data"], cfg["data_dir"])
    preset = run.preset()
    model = create_model(cfg["model"], num_classes=10, in_chans=1, **cfg["model_args"])
    steps, accs = [0], []
    accs.append(evaluate_model(model, test, preset, in_chans=1).topk_acc[1])  # at initialisation
    for path in list_checkpoints(run.checkpoints):
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        steps.append(state["step"])
        accs.append(evaluate_model(model, test, preset, in_chans=1).topk_acc[1])
    return steps, accs


def _mlp_config(p: Params, data: str, data_dir: str | None, *, bn: bool, std: float,
                lr: float) -> TrainConfig:
    """One MNIST arm's training config (§4.1: plain SGD, constant lr, checkpoints to score)."""
    return TrainConfig(
        model="mlp3_mnist", data=data, data_dir=data_dir, epochs=10_000,
        max_steps=p.mnist_steps, batch_size=p.mnist_batch, optimizer="sgd", lr=lr,
        momentum=0.0, wd=0.0, lr_scheduler="constant", checkpoint_every_steps=p.eval_every,
        keep_checkpoints=100_000,
        # init_std only when not the builder's default, so configs (and reused runs) stay
        model_args={"batch_norm": bn, **({"init_std": std} if std != 0.1 else {})})


def _mnist_arm(
    ctx: Context, p: Params, data: str, data_dir: str | None, *, label: str, bn: bool, std: float
) -> tuple[dict, dict, list[tuple[list[int], list[float]]], MnistArm]:
    """Train one MNIST arm (its lr chosen on the first seed) and score its checkpoints: its raw
    record, its table row, its (steps, test accuracy) curve per seed and its measurement."""
    lr, rs, trials = train_tuned(ctx, label, {
        lr: _mlp_config(p, data, data_dir, bn=bn, std=std, lr=lr) for lr in p.mnist_lrs})
    curves = [_test_acc_curve(ctx, r) for r in rs]
    to = [steps_to_threshold(s, a, p.acc_threshold, below=False) for s, a in curves]
    final = [a[-1] for _, a in curves]
    raw = {"steps": curves[0][0], "test_acc": [a for _, a in curves],
           "steps_to_acc": to, "final_test_acc": final, "lr": lr,
           "lr_trials": {f"{k:g}": t.diverged or "trained" for k, t in trials.items()}}
    acc = Stat.of(final)
    row = {"part": "MNIST 3x100 sigmoid MLP", "arm": label,
           "lr": f"{lr:g}" + (" (chosen)" if len(p.mnist_lrs) > 1 else ""),
           "final": pct(final), "to": _fmt_steps(to),
           "status": "did not train (at chance)" if at_chance(
               None if acc.mean is None else 1 - acc.mean) else "trained"}
    return raw, row, curves, MnistArm(acc, Stat.of(to))


def _mnist_part(ctx: Context, p: Params, data: str, data_dir: str | None, ax: Any,
                rows: list[dict], raw: dict) -> dict[str, tuple[MnistArm, MnistArm]]:
    """Part 1 (Fig. 1a): both arms at each init std, into ``rows``, ``raw`` and the plot ``ax``;
    returns (without BN, with BN) per init std."""
    mnist: dict[str, tuple[MnistArm, MnistArm]] = {}
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")
    for std, color in zip(p.init_stds, colors * len(p.init_stds), strict=False):
        pair = []
        for arm, bn in (("without BN", False), ("with BN", True)):
            label = f"{arm}, init std {std:g}"
            raw[label], row, curves, m = _mnist_arm(ctx, p, data, data_dir, label=label, bn=bn,
                                                     std=std)
            rows.append(row)
            band(ax, curves[0][0], [a for _, a in curves], label=label, color=color,
                 style="-" if bn else "--")
            pair.append(m)
        mnist[f"init std {std:g}"] = (pair[0], pair[1])
    lowest = min((a for lab in raw for accs in raw[lab]["test_acc"] for a in accs[1:]),
                 default=0.8)
    ax.set(xlabel="training step", ylabel="test accuracy",
           ylim=(min(0.8, max(0.0, lowest - 0.02)), 1.0),
           title=f"MNIST, batch {p.mnist_batch} (Fig. 1a)")
    return mnist


def _mnist_measured(p: Params, raw: dict) -> str:
    """The page's MNIST paragraph: final accuracy, chosen lr and steps to the threshold."""
    lines = [f"init std {std:g}: final test accuracy "
             f"{pct(raw[f'with BN, init std {std:g}']['final_test_acc'])} % with BN (lr "
             f"{raw[f'with BN, init std {std:g}']['lr']:g}) vs "
             f"{pct(raw[f'without BN, init std {std:g}']['final_test_acc'])} % without (lr "
             f"{raw[f'without BN, init std {std:g}']['lr']:g}); steps to "
             f"{100 * p.acc_threshold:.0f}% "
             f"{_fmt_steps(raw[f'with BN, init std {std:g}']['steps_to_acc'])} vs "
             f"{_fmt_steps(raw[f'without BN, init std {std:g}']['steps_to_acc'])}"
             for std in p.init_stds]
    return (f"**MNIST** ({p.mnist_steps} steps of batch {p.mnist_batch}, plain SGD, each "
            f"arm's lr chosen from {list(p.mnist_lrs)} on the first seed by its final "
            f"training loss, {'with' if p.mnist_augment else 'no'} augmentation): "
            + "; ".join(lines) + ". The paper's Fig. 1a (50,000 steps) shows BN higher "
            "throughout, ending near 0.98-0.99 against about 0.96-0.97.")


def _cifar_configs(p: Params, data: str, data_dir: str | None) -> dict[str, TrainConfig]:
    """Part 2's arms: the VGG-style net with and without BN at each multiple of the base lr."""
    arms = {}
    for bn in (False, True):
        for m in p.multipliers:
            arms[f"{'BN' if bn else 'no BN'} lr x{m:g}"] = TrainConfig(
                model="vgg_small_cifar", data=data, data_dir=data_dir, epochs=p.cifar_epochs,
                max_steps=p.max_steps, batch_size=p.cifar_batch, optimizer="sgd",
                lr=p.base_lr * m, momentum=0.9, wd=5e-4, lr_scheduler="constant",
                model_args={"batch_norm": bn, "width": p.width})
    return arms


def _cifar_part(ctx: Context, p: Params, ax: Any, rows: list[dict], raw: dict
                ) -> tuple[Verdict, str]:
    """Part 2 (§4.2.1): every arm into ``rows``, ``raw`` and the plot ``ax``; returns the
    part's verdict and the page's CIFAR-10 paragraph."""
    cdata, cdir = cifar_data(ctx, n_train=p.cifar_n_train, n_test=p.cifar_n_test)
    seeds = ctx.seeds[: p.cifar_seeds] if p.cifar_seeds else ctx.seeds
    crecs = train_arms(ctx, _cifar_configs(p, cdata, cdir), seeds)
    final_err = {}
    for label, rs in crecs.items():
        div = sum(r.diverged is not None for r in rs)
        errs = [r.test_err for r in rs]
        final_err[label] = (mean_of(errs), div)
        raw[label] = {"test_err": errs, "diverged": [r.diverged for r in rs],
                      "epoch_test_err": [epoch_curve(r, "test_top1_err")[1] for r in rs]}
        rows.append({"part": "CIFAR-10 VGG-style", "arm": label,
                     "lr": f"{p.base_lr * float(label.split('x')[-1]):g}",
                     "final": pct([None if e is None else 1 - e for e in errs]),
                     "to": "", "status": status(LrArm(Stat.of(errs), div))})
        good = [r for r in rs if r.diverged is None]
        if good:
            xs, _ = epoch_curve(good[0], "test_top1_err")
            band(ax, xs, [[1 - v for v in epoch_curve(r, "test_top1_err")[1]] for r in good],
                 label=label, style="-" if label.startswith("BN") else "--")
    ax.set(xlabel="epoch", ylabel="test accuracy", title=f"CIFAR-10, lr x1/x5/x30 of {p.base_lr:g}")
    lr_arms = {lab: LrArm(Stat.of(raw[lab]["test_err"]), final_err[lab][1]) for lab in crecs}
    verdict = judge_lr({m: lr_arms[f"no BN lr x{m:g}"] for m in p.multipliers},
                       {m: lr_arms[f"BN lr x{m:g}"] for m in p.multipliers})
    return verdict, _cifar_measured(p, final_err, len(seeds))


def _cifar_measured(p: Params, final_err: dict[str, tuple[float | None, int]], n_seeds: int
                    ) -> str:
    """The page's CIFAR-10 paragraph: each net's final error at the lowest and highest lr."""
    def err(e: tuple[float | None, int]) -> str:
        text = "diverged" if e[0] is None else f"{100 * e[0]:.1f}% test error"
        return text + (f" ({e[1]} run(s) diverged)" if e[1] and e[0] is not None else "")

    top, low = max(p.multipliers), min(p.multipliers)
    bn_hi, no_hi = final_err[f"BN lr x{top:g}"], final_err[f"no BN lr x{top:g}"]
    bn_lo = final_err[f"BN lr x{low:g}"]
    return (
        f"\n\n**CIFAR-10 learning rates** (vgg_small_cifar width {p.width}, "
        f"{p.cifar_epochs} epochs on {p.cifar_n_train or 50000} images, {n_seeds} seed(s)):"
        f" at {top:g}x the base rate {p.base_lr:g} the BN net ends at {err(bn_hi)} (at "
        f"{low:g}x: {err(bn_lo)}), the net without BN at {err(no_hi)} (at "
        f"{low:g}x: {err(final_err[f'no BN lr x{low:g}'])}).")


def run(ctx: Context, p: Params) -> Outcome:
    data, data_dir = mnist_data(ctx, p.n_train, p.n_test, augment=p.mnist_augment)
    rows, raw = [], {}
    fig, axes = figure(2 if p.cifar else 1, width=5.5)
    mnist = _mnist_part(ctx, p, data, data_dir, axes[0], rows, raw)
    measured = _mnist_measured(p, raw)
    parts = [(f"MNIST, {k}", judge_mnist(no, bn, threshold=p.acc_threshold))
             for k, (no, bn) in mnist.items()]
    if p.cifar:
        lr_verdict, cifar_measured = _cifar_part(ctx, p, axes[1], rows, raw)
        parts.append(("CIFAR-10 learning rates", lr_verdict))
        measured += cifar_measured
    verdict = combine(parts) if len(parts) > 1 else parts[0][1]
    save(fig, ctx.plot_path, title="Batch normalization")
    return Outcome(
        columns=[("part", "part"), ("arm", "network"), ("lr", "lr"),
                 ("final", "final test accuracy (%)"),
                 ("to", f"steps to {100 * p.acc_threshold:.0f}% test acc"), ("status", "runs")],
        rows=rows, measured=measured, verdict=verdict, raw=raw,
        notes=["Fig. 1(b, c) (the distribution of a sigmoid's input over training) is not "
               "reproduced.", "The MLP's Gaussian initialisation stds and the learning-rate "
               "grid are our choices; the paper gives neither for MNIST."])


def _fmt_steps(values: list[float | None]) -> str:
    from ._common import num

    return num(values, censored="budget", fmt=".0f")


PAPER = PaperSetup(
    source="Ioffe & Szegedy 2015, §4.1 (MNIST) and §4.2.1 (Inception, ImageNet); "
           "../shared/REFERENCES.md",
    rows={"architecture": "MNIST: 3 fully connected hidden layers of 100 sigmoid units, BN "
                          "before each nonlinearity; §4.2.1: Inception with BN",
          "init": "MNIST: \"small random Gaussian values\" (std not given)",
          "optimiser": "MNIST: not given; §4.2.1: SGD momentum",
          "lr": "MNIST: not given; §4.2.1: BN-x5 and BN-x30 times Inception's rate",
          "batch": "MNIST: 60",
          "data": "MNIST 28x28 (60,000 training images); §4.2.1: ImageNet",
          "preprocessing": "MNIST: none stated, no augmentation",
          "schedule": "MNIST: 50,000 steps",
          "seeds": "1 curve per net"})


def run_setup(p: Params, seeds: int) -> dict[str, str]:
    stds, lrs = p.init_stds, list(p.mnist_lrs)
    return {"architecture": "MNIST: mlp3_mnist (3x100 sigmoid), with and without BN; CIFAR: "
                            f"vgg_small_cifar width {p.width}, with and without BN",
            "init": f"MNIST: N(0, std), std in {{{', '.join(f'{s:g}' for s in stds)}}}; "
                    "CIFAR: He et al. 2015",
            "optimiser": "MNIST: plain SGD; CIFAR: SGD momentum 0.9, weight decay 5e-4",
            "lr": f"MNIST: per arm, from {lrs} (lowest final training loss, first seed)"
                  + f"; CIFAR: x{'/'.join(f'{m:g}' for m in p.multipliers)} of {p.base_lr:g}",
            "batch": f"MNIST: {p.mnist_batch}; CIFAR: {p.cifar_batch}",
            "data": f"MNIST, {p.n_train or 60000} training images"
                    + (f"; CIFAR-10, {p.cifar_n_train or 50000} training images" if p.cifar
                       else ""),
            "preprocessing": "MNIST: normalised, " + (
                "random 2-px shifts (the mnist preset)" if p.mnist_augment else
                "no augmentation") + "; CIFAR: normalised, pad + crop + flip",
            "schedule": f"MNIST: {p.mnist_steps} steps, constant lr; CIFAR: {p.cifar_epochs} "
                        "epochs, constant lr",
            "seeds": f"MNIST: {seeds}; CIFAR: {p.cifar_seeds or seeds}"}


register_experiment(Experiment(
    name="batchnorm",
    title="Batch normalization: faster, higher accuracy, higher learning rates",
    paper="Ioffe & Szegedy 2015, Fig. 1(a) and §4.2.1",
    claim=("On MNIST, a 3x100 sigmoid MLP with BN reaches higher test accuracy, sooner, than "
           "without (Fig. 1a); BN lets a network train at much higher learning rates (BN-x5, "
           "BN-x30 in §4.2.1) where it would otherwise train badly or diverge."),
    run=run,
    profiles={"smoke": Params(mnist_steps=4, mnist_batch=20, eval_every=2, n_train=100,
                             n_test=100, acc_threshold=0.2, width=4, cifar_n_train=100,
                             cifar_n_test=50, cifar_epochs=1, cifar_batch=50, max_steps=2,
                             multipliers=(1.0, 30.0), init_stds=(0.01, 0.1), mnist_lrs=(0.5, 2.0)),
              # 3 stds x 2 arms x (3 lrs + 2 more seeds) MLP runs of 4,000 steps, and 6 CIFAR arms
              # x 2 seeds: 5.2 min of training on the idle 2-core CPU.
              "quick": Params(),
              "full": Params(mnist_steps=50_000, eval_every=1000, width=32, cifar_n_train=None,
                             cifar_n_test=None, cifar_epochs=30, cifar_seeds=None)},
    data="mnist+cifar10",
    quick_note=("MNIST: 4,000 steps (the paper: 50,000), no augmentation, init std 0.01 / 0.036 "
                "/ 0.1, each arm's lr chosen from 0.1 / 0.5 / 2; CIFAR-10: width 16, 5,000 "
                "training images, 4 epochs, 2 seeds. `--profile quick` needs CIFAR-10 for "
                "part 2."),
    paper_setup=PAPER,
    run_setup=run_setup,
))
