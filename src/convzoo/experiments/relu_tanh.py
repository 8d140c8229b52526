"""``relu-vs-tanh``: Krizhevsky, Sutskever & Hinton 2012, §3.1 and Fig. 1.

"A four-layer convolutional neural network with ReLUs (solid line) reaches a 25% training error
rate on CIFAR-10 six times faster than an equivalent network with tanh neurons (dashed line). The
learning rates for each network were chosen independently to make training as fast as possible.
No regularization of any kind was employed."

Here: ``cnn4_cifar`` (convzoo.models.experimental) with ``activation="relu"`` or ``"tanh"``, SGD
with momentum, constant learning rate, no weight decay, no augmentation. The training error is
measured per step (the mini-batch error, from the engine's running accuracy) and judged on a
trailing mean; the claim's number is the ratio of steps to 25% training error, tanh / ReLU. The
full profile picks each activation's learning rate from a small grid, as the paper did; the quick
profile uses one rate for both (stated on the page).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import TrainConfig
from ._common import cifar_data, mean_of, num, pct, slug, smoothed_err, train_arms
from ._core import Context, Experiment, Outcome, PaperSetup, register_experiment
from ._plots import band, figure, paper_mark, save
from .analysis import mean_spread, steps_to_threshold
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

PAPER_EPOCHS = {5.5: "ReLU", 35.0: "tanh"}  # Fig. 1, read off the plot (REFERENCES.md)
PAPER_RATIO = 6.0  # Fig. 1: tanh needs about six times ReLU's epochs to 25% training error
AGREE_RATIO = 3.0  # at least half the paper's factor counts as agreeing (the factor depends on
# the net, the learning rates and the data; the claim is that it is large)


@dataclass(frozen=True)
class Arms:
    """One set-up's measurement: epochs to the threshold per activation (censored where a run
    did not get there), the mean final training error, and the epochs tanh was given."""

    relu: Stat
    tanh: Stat
    relu_final_err: float | None
    tanh_final_err: float | None
    budget: float


def judge_setup(m: Arms, *, threshold: float = 0.25) -> Verdict:
    """The claim (ReLU reaches ``threshold`` training error about 6x sooner) on one set-up."""
    thr = f"{100 * threshold:.0f}%"
    for act, err in (("ReLU", m.relu_final_err), ("tanh", m.tanh_final_err)):
        if at_chance(err):
            return Verdict(NOT_COMPARABLE, f"the {act} net did not train (training error at "
                                           "chance), so there is no speed to compare")
    if not m.relu.complete:
        return Verdict(NOT_COMPARABLE, f"the ReLU net did not reach {thr} training error in "
                                       f"every seed within {m.budget:.3g} epochs")
    if not m.tanh.complete:
        lower = m.budget / m.relu.mean
        if lower >= AGREE_RATIO:
            return Verdict(AGREES, f"tanh did not reach {thr} within {m.budget:.3g} epochs, more "
                                   f"than {lower:.1f}x ReLU's {m.relu.mean:.3g}")
        return Verdict(INCONCLUSIVE, f"tanh did not reach {thr} within {m.budget:.3g} epochs, "
                                     f"only {lower:.1f}x ReLU's: too short a run to tell")
    ratio = m.tanh.mean / m.relu.mean
    c = compare(m.relu, m.tanh)
    if c == 0:
        return Verdict(INCONCLUSIVE, f"tanh is as fast as ReLU within the seeds' spread "
                                     f"(ratio {ratio:.2f}x)")
    if c < 0:
        return Verdict(DISAGREES, f"tanh reached {thr} sooner than ReLU (ratio {ratio:.2f}x)")
    if ratio >= AGREE_RATIO:
        return Verdict(AGREES, f"ReLU reached {thr} {ratio:.1f}x sooner (paper: about 6x)")
    return Verdict(PARTLY, f"ReLU is faster, by {ratio:.1f}x, less than the paper's about 6x")


def judge(setups: dict[str, Arms], *, threshold: float = 0.25) -> Verdict:
    """Each set-up judged on its own, the verdict naming each (see :func:`verdict.combine`)."""
    return combine([(name, judge_setup(m, threshold=threshold)) for name, m in setups.items()])


@dataclass(frozen=True)
class Params:
    epochs: int = 30  # passes over the (reduced) training split
    n_train: int | None = 5000  # training images (None: all 50,000)
    n_test: int | None = 2000  # test images evaluated after each epoch (None: all 10,000)
    width: int = 16  # cnn4_cifar filters (32 = cuda-convnet's layers-18pct)
    batch_size: int = 128  # images per step (Krizhevsky et al. 2012 §5)
    lrs: tuple[float, ...] = (0.02,)  # candidate learning rates; the fastest per activation wins
    momentum: float = 0.9  # §5
    threshold: float = 0.25  # Fig. 1: 25% training error
    window: int = 40  # steps in the trailing mean of the mini-batch error
    max_steps: int | None = None  # tests


def run(ctx: Context, p: Params) -> Outcome:
    data, data_dir = cifar_data(ctx, n_train=p.n_train, n_test=p.n_test, augment=False)
    arms = {}
    for act in ("relu", "tanh"):
        for lr in p.lrs:
            arms[f"{act} lr {lr:g}"] = TrainConfig(
                model="cnn4_cifar", data=data, data_dir=data_dir, epochs=p.epochs,
                max_steps=p.max_steps, batch_size=p.batch_size, optimizer="sgd", lr=lr,
                momentum=p.momentum, wd=0.0, lr_scheduler="constant",
                model_args={"activation": act, "width": p.width})
    recs = train_arms(ctx, arms)
    steps_to = {a: [steps_to_threshold(r.steps, r.step_err, p.threshold, window=p.window)
                    for r in rs] for a, rs in recs.items()}

    def best(act: str) -> str:
        # Fastest: most seeds reaching the threshold, then fewest mean steps, then lowest error.
        def key(a: str) -> tuple:
            m, _, n = mean_spread(steps_to[a])
            last = mean_of([r.step_err[-1] if r.step_err else None for r in recs[a]])
            return (-n, m if m is not None else float("inf"), last or 1.0)

        return min((a for a in arms if a.startswith(act)), key=key)

    chosen = {act: best(act) for act in ("relu", "tanh")}
    rows, raw = [], {}
    fig, (ax,) = figure(1, width=6.0, height=4.0)
    spe = None
    for act, style in (("relu", "-"), ("tanh", "--")):
        for a in [x for x in arms if x.startswith(act)]:
            rs = recs[a]
            spe = spe or max(1, len(rs[0].steps) // max(len(rs[0].rows), 1))
            epochs_to = [None if s is None else s / spe for s in steps_to[a]]
            raw[a] = {"steps_to_threshold": steps_to[a], "epochs_to_threshold": epochs_to,
                      "final_train_err": [r.step_err[-1] if r.step_err else None for r in rs],
                      "test_err": [r.test_err for r in rs], "chosen": a == chosen[act]}
            rows.append({"arm": a + (" (chosen)" if len(p.lrs) > 1 and a == chosen[act] else ""),
                         "steps": num(steps_to[a], censored="budget", fmt=".0f"),
                         "epochs": num(epochs_to, censored="budget", fmt=".2f"),
                         "final": pct([mean_of(smoothed_err(r, p.window)[-1:]) for r in rs]),
                         "test": pct(raw[a]["test_err"])})
            if a == chosen[act]:
                xs = [s / spe for s in rs[0].steps]
                band(ax, xs, [smoothed_err(r, p.window) for r in rs], label=f"{act} ({a})",
                     style=style, color="black" if act == "relu" else "tab:red")
    ax.axhline(p.threshold, color="grey", ls=":", lw=1)
    for epochs, what in PAPER_EPOCHS.items():
        if epochs <= p.epochs:  # drawn where the run's axis reaches it
            paper_mark(ax, epochs, f"{what} at 25% after ~{epochs:g} epochs (Fig. 1)", axis="x",
                       color="black" if what == "ReLU" else "tab:red")
    ax.set(xlabel="epochs", ylabel="training error (trailing mean)", ylim=(0, 0.8),
           title="cnn4_cifar on CIFAR-10: ReLU vs tanh")
    save(fig, ctx.plot_path)

    spe_ = spe or 1
    budget = len(recs[chosen["tanh"]][0].steps) / spe_
    epochs_to = {a: raw[a]["epochs_to_threshold"] for a in chosen.values()}
    arms_m = Arms(relu=Stat.of(epochs_to[chosen["relu"]]), tanh=Stat.of(epochs_to[chosen["tanh"]]),
                  relu_final_err=mean_of(raw[chosen["relu"]]["final_train_err"]),
                  tanh_final_err=mean_of(raw[chosen["tanh"]]["final_train_err"]), budget=budget)
    verdict = judge({"this set-up": arms_m}, threshold=p.threshold)
    r, t = arms_m.relu, arms_m.tanh
    ratio = t.mean / r.mean if r.complete and t.complete and r.mean else None
    raw["ratio_tanh_over_relu"] = ratio
    measured = (
        f"Epochs to {100 * p.threshold:.0f}% training error (trailing mean over {p.window} "
        f"mini-batches): ReLU {num(epochs_to[chosen['relu']], 'budget', '.2f')}, tanh "
        f"{num(epochs_to[chosen['tanh']], 'budget', '.2f')}"
        + (f"; ratio tanh / ReLU {ratio:.1f}x" if ratio else "")
        + ". The paper reports about 6x (Fig. 1, read off the plot: ReLU ~5-6 epochs, tanh ~35).")
    return Outcome(
        columns=[("arm", "activation, lr"),
                 ("steps", f"steps to {100 * p.threshold:.0f}% train err"),
                 ("epochs", "epochs to it"), ("final", "final train error (%)"),
                 ("test", "test error (%)")],
        rows=rows, measured=measured, verdict=verdict, raw=raw,
        notes=[f"Learning-rate grid per activation: {list(p.lrs)}"
               + ("; one rate for both (not tuned per activation as in the paper)."
                  if len(p.lrs) == 1 else "; the fastest per activation is plotted."),
               f"Run directories: {', '.join(slug(a) for a in arms)}."])


PAPER = PaperSetup(
    source="Krizhevsky et al. 2012, §3.1, Fig. 1; cuda-convnet's layers-18pct.cfg / "
           "layer-params-18pct.cfg / convdata.py, the nearest public net (../shared/REFERENCES.md)",
    rows={"architecture": "\"a four-layer convolutional neural network\"; layers-18pct: conv 5x5 "
                          "32, max-pool 3/2, ReLU, rnorm, conv 5x5 32, ReLU, avg-pool 3/2, "
                          "rnorm, conv 5x5 64, ReLU, avg-pool 3/2, fc 10",
          "init": "N(0, 1e-4) conv1, N(0, 0.01) other layers, biases 0",
          "optimiser": "SGD momentum 0.9, no weight decay (\"no regularization of any kind\")",
          "lr": "chosen separately per activation for speed; layers-18pct: 0.001 weights, 0.002 "
                "biases (batch-mean gradient)",
          "batch": "128",
          "data": "CIFAR-10, 50,000 training images",
          "preprocessing": "raw 0-255 pixels minus the mean image, no division by a std",
          "schedule": "constant lr; ReLU crosses 25% at ~5-6 epochs, tanh at ~35",
          "seeds": "1 curve per activation"})


def run_setup(p: Params, seeds: int) -> dict[str, str]:
    return {"architecture": f"cnn4_cifar width {p.width} (max pools, no response norm)",
            "init": "PyTorch defaults", "optimiser": f"SGD momentum {p.momentum:g}, wd 0",
            "lr": f"grid {list(p.lrs)} per activation", "batch": str(p.batch_size),
            "data": f"CIFAR-10, {p.n_train or 50000} training images",
            "preprocessing": "per-channel normalisation, no augmentation",
            "schedule": f"constant lr, {p.epochs} epochs", "seeds": str(seeds)}


register_experiment(Experiment(
    name="relu-vs-tanh",
    title="ReLU vs tanh: time to 25% training error on CIFAR-10",
    paper="Krizhevsky et al. 2012, §3.1, Fig. 1",
    claim=("A four-layer CNN with ReLUs reaches 25% training error on CIFAR-10 six times faster "
           "than the same network with tanh units (learning rates chosen independently, no "
           "regularisation)."),
    run=run,
    profiles={"smoke": Params(epochs=1, n_train=200, n_test=100, width=4, batch_size=50,
                             max_steps=4, window=2, threshold=0.95),
              "quick": Params(),
              "full": Params(epochs=30, n_train=None, n_test=None, width=32,
                             lrs=(0.005, 0.01, 0.02, 0.05))},
    data="cifar10",
    quick_note=("5,000 training images, width 16 (half the filters), 30 epochs, one learning "
                "rate (0.02) for both activations, test error on 2,000 test images; full: all "
                "50,000 images, width 32, 30 epochs, a 4-point learning-rate grid per activation."),
    paper_setup=PAPER,
    run_setup=run_setup,
))
