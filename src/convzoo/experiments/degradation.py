"""``degradation``: He et al. 2016 (CVPR, arXiv:1512.03385), §4.2 and Fig. 6.

"Plain" CIFAR networks (the ResNets with every shortcut removed, ``residual=False``) get *worse*
with depth, in training error too, so it is not overfitting: plain-56 trains worse than plain-20.
The residual networks of the same depth get better with depth (Fig. 6, Table 6: ResNet-20 8.75%,
ResNet-56 6.97% test error). Trained with the ``resnet-cifar`` recipe (§4.2) over a shorter
schedule: the milestones keep their place relative to the run's length.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import recipe_config
from ._common import cifar_data, epoch_curve, mean_of, pct, train_arms
from ._core import Context, Experiment, Outcome, PaperSetup, register_experiment
from ._plots import band, figure, paper_mark, save
from .verdict import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    PARTLY,
    Stat,
    Verdict,
    at_chance,
    compare,
)

ERR_FLOOR = 0.01  # training errors closer than 1 point are a tie


def judge(train_err: dict[str, Stat], *, lo: int = 20, hi: int = 56) -> Verdict:
    """Fig. 1/6 at matched steps: the deeper plain net has clearly higher training error than the
    shallower one, and with shortcuts the deeper net is not clearly worse. ``train_err`` keys:
    ``plain-{lo}``, ``plain-{hi}``, ``ResNet-{lo}``, ``ResNet-{hi}``."""
    names = [f"plain-{lo}", f"plain-{hi}", f"ResNet-{lo}", f"ResNet-{hi}"]
    stuck = [n for n in names if at_chance(train_err[n].mean)]
    if stuck:
        return Verdict(NOT_COMPARABLE, f"{', '.join(stuck)} did not train (training error at "
                                       "chance) within this budget")
    plain = compare(train_err[f"plain-{lo}"], train_err[f"plain-{hi}"], floor=ERR_FLOOR)
    res = compare(train_err[f"ResNet-{lo}"], train_err[f"ResNet-{hi}"], floor=ERR_FLOOR)
    if plain < 0:
        return Verdict(DISAGREES, f"plain-{hi} trained to a clearly lower error than plain-{lo}")
    if plain == 0:
        return Verdict(INCONCLUSIVE, f"plain-{hi} and plain-{lo} end within the seeds' spread "
                                     "(or 1 point) of each other")
    if res > 0:
        return Verdict(PARTLY, f"plain-{hi} trains worse than plain-{lo}, but ResNet-{hi} is "
                               f"also clearly worse than ResNet-{lo} at this budget")
    return Verdict(AGREES, f"plain-{hi} trains clearly worse than plain-{lo}, while ResNet-{hi} "
                           f"is not worse than ResNet-{lo}")


@dataclass(frozen=True)
class Params:
    depths: tuple[int, ...] = (20, 56)  # full: 20, 32, 44, 56 (Fig. 6)
    n_train: int | None = 2500
    n_test: int | None = 2000  # test images (None: all 10,000)
    epochs: int = 3
    batch_size: int = 128  # §4.2
    max_steps: int | None = None


def run(ctx: Context, p: Params) -> Outcome:
    data, data_dir = cifar_data(ctx, n_train=p.n_train, n_test=p.n_test)
    arms = {}
    for residual in (False, True):
        for d in p.depths:
            # §4.2's lr 0.1 /10 at 32k and 48k of 64k iterations: the same fractions (50%, 75%)
            # of this run's epochs.
            arms[f"{'ResNet' if residual else 'plain'}-{d}"] = recipe_config(
                "resnet-cifar", model=f"resnet{d}", data=data, data_dir=data_dir,
                epochs=p.epochs, max_steps=p.max_steps, batch_size=p.batch_size,
                lr_milestone_unit="epoch",
                lr_milestones=tuple(sorted({max(1, p.epochs // 2), max(1, 3 * p.epochs // 4)})),
                model_args={"residual": residual})
    recs = train_arms(ctx, arms)
    rows, raw = [], {}
    fig, axes = figure(2)
    for label, rs in recs.items():
        train_err = [1 - r.rows[-1]["train_acc"] for r in rs]
        test_err = [r.test_err for r in rs]
        raw[label] = {"train_err": train_err, "test_err": test_err}
        rows.append({"net": label, "train": pct(train_err), "test": pct(test_err)})
        ax = axes[0 if label.startswith("plain") else 1]
        xs, _ = epoch_curve(rs[0], "train_acc")
        (line,) = ax.plot([], [])
        color = line.get_color()
        band(ax, xs, [[100 * (1 - v) for v in epoch_curve(r, "train_acc")[1]] for r in rs],
             label=f"{label} train", color=color, style="--")
        band(ax, xs, [[100 * v for v in epoch_curve(r, "test_top1_err")[1]] for r in rs],
             label=f"{label} test", color=color)
    axes[0].set(xlabel="epoch", ylabel="error (%)", title="plain (no shortcuts)")
    for d, e in TABLE6.items():
        if d in p.depths:
            paper_mark(axes[1], e, f"ResNet-{d} test {e}% (Table 6, 64k it.)",
                       color="tab:green" if d == min(p.depths) else "tab:olive")
    axes[1].set(xlabel="epoch", ylabel="error (%)", title="residual")
    save(fig, ctx.plot_path, title="Degradation: plain vs residual CIFAR nets (Fig. 6)")
    lo, hi = min(p.depths), max(p.depths)
    plain_lo, plain_hi = mean_of(raw[f"plain-{lo}"]["train_err"]), mean_of(
        raw[f"plain-{hi}"]["train_err"])
    res_lo, res_hi = mean_of(raw[f"ResNet-{lo}"]["train_err"]), mean_of(
        raw[f"ResNet-{hi}"]["train_err"])
    verdict = judge({k: Stat.of(v["train_err"]) for k, v in raw.items()}, lo=lo, hi=hi)
    measured = (f"Final training error: plain-{lo} {100 * plain_lo:.1f}%, plain-{hi} "
                f"{100 * plain_hi:.1f}%; ResNet-{lo} {100 * res_lo:.1f}%, ResNet-{hi} "
                f"{100 * res_hi:.1f}% ({p.epochs} epochs on {p.n_train or 50000} images). The "
                "paper (Fig. 6, 64k iterations on 50k images): plain-56 above plain-20 in both "
                "training and test error; ResNet-56 below ResNet-20 (Table 6: 6.97% vs 8.75% test "
                "error).")
    return Outcome(columns=[("net", "network"), ("train", "final train error (%)"),
                            ("test", "test error (%)")],
                   rows=rows, measured=measured, verdict=verdict, raw=raw)


TABLE6 = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43}  # He et al. 2016: test error, %

PAPER = PaperSetup(
    source="He et al. 2016, §4.2, Fig. 6, Table 6; ../shared/REFERENCES.md",
    rows={"architecture": "CIFAR ResNets of 6n+2 layers (3x3 convs, 16-32-64 filters, option A "
                          "shortcuts) and the same nets without shortcuts (plain)",
          "init": "He et al. 2015 (MSRA)",
          "optimiser": "SGD momentum 0.9, weight decay 1e-4",
          "lr": "0.1 (ResNet-110: 0.01 until training error < 80%, ~400 iterations)",
          "batch": "128",
          "data": "CIFAR-10, 45k/5k train/val split, 10,000 test",
          "preprocessing": "per-pixel mean subtracted; 4-px pad + 32x32 crop + flip",
          "schedule": "÷10 at 32k and 48k iterations, stop at 64k",
          "seeds": "1 curve per net (Table 6 for 110: best of 5)"})


def run_setup(p: Params, seeds: int) -> dict[str, str]:
    return {
        "architecture": f"convzoo resnet{{{', '.join(map(str, p.depths))}}} with and without "
                        "shortcuts (residual=False)",
        "init": "He et al. 2015 (the zoo's resnet)",
        "optimiser": "SGD momentum 0.9, weight decay 1e-4 (recipe resnet-cifar)",
        "lr": "0.1",
        "batch": str(p.batch_size),
        "data": f"CIFAR-10, {p.n_train or 50000} training images, {p.n_test or 10000} test",
        "preprocessing": "per-channel normalisation; 4-px pad + crop + flip",
        "schedule": f"{p.epochs} epochs, ÷10 at 50% and 75% of them"
                    + (f", cut at {p.max_steps} steps" if p.max_steps else ""),
        "seeds": str(seeds)}


register_experiment(Experiment(
    name="degradation",
    title="Degradation: deeper plain nets train worse, deeper ResNets better",
    paper="He et al. 2016, §4.2, Fig. 6, Table 6",
    claim=("On CIFAR-10 the 56-layer plain network has higher training (and test) error than the "
           "20-layer one — degradation, not overfitting — while with identity shortcuts the "
           "deeper network is the better one."),
    run=run,
    profiles={"smoke": Params(n_train=100, n_test=50, epochs=1, batch_size=50, max_steps=1,
                             depths=(20, 32)),
              "quick": Params(),
              "full": Params(depths=(20, 32, 44, 56), n_train=None, n_test=None,
                             epochs=164)},
    data="cifar10",
    default_seeds={"smoke": 1, "quick": 1, "full": 3},
    quick_note=("one seed, 3 epochs on 2,500 images, test error on 2,000 test images "
                "(ResNet-56 is about 125M multiply-adds per image; on a 2-core CPU this is "
                "what fits in 15 minutes). The paper trains 64k iterations on 50k images."),
    paper_setup=PAPER,
    run_setup=run_setup,
))
