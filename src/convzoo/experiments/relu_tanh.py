"""``relu-vs-tanh``: Krizhevsky, Sutskever & Hinton 2012, §3.1 and Fig. 1.

"A four-layer convolutional neural network with ReLUs (solid line) reaches a 25% training error
rate on CIFAR-10 six times faster than an equivalent network with tanh neurons (dashed line). The
learning rates for each network were chosen independently to make training as fast as possible.
No regularization of any kind was employed."

A 2x2 grid: {cuda-convnet set-up, modern set-up} x {ReLU, tanh}.

- cuda-convnet set-up: ``cuda_convnet_18pct`` (the public ``layers-18pct`` net the paper's Fig. 1
  net is closest to, with its N(0, 1e-4) / N(0, 0.01) initialisation), raw 0-255 pixels minus
  the mean, SGD momentum 0.9, batch 128, no weight decay, no augmentation.
- modern set-up: ``cnn4_cifar`` (the same three 5x5 convolutions, max pools, no response norm,
  PyTorch's default initialisation), per-channel standardised input, the same optimiser.

Each arm's learning rate is chosen from a grid (x0.5, x1, x2 around a centre per arm) as the
fastest to 25% training error; ReLU runs first, and tanh stops at ``tanh_cap`` (6.5) times the
chosen ReLU's steps ("more than 6x" is an answer). The training error is the per-step mini-batch
error (the engine's running accuracy), judged on a trailing mean, reported in epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..engine import TrainConfig
from ._common import cifar_data, mean_of, num, pct, smoothed_err, train_arms
from ._plots import band, figure, paper_mark, save
from ._registry import Experiment, Outcome, PaperSetup, register_experiment
from ._training import Context, TrainRecord
from .analysis import mean_spread, steps_to_threshold
from .verdict import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_TESTABLE,
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
    budget: float  # epochs tanh was given (the cap for a censored tanh run)
    relu_budget: float | None = None  # epochs ReLU was given (default: ``budget``)

    def __post_init__(self) -> None:
        if self.relu_budget is None:
            object.__setattr__(self, "relu_budget", self.budget)


def judge_setup(m: Arms, *, threshold: float = 0.25) -> Verdict:
    """The claim (ReLU reaches ``threshold`` training error about 6x sooner) on one set-up."""
    thr = f"{100 * threshold:.0f}%"
    for act, err in (("ReLU", m.relu_final_err), ("tanh", m.tanh_final_err)):
        if at_chance(err):
            return Verdict(NOT_COMPARABLE, f"the {act} net did not train (training error at "
                                           "chance), so there is no speed to compare")
    if not m.relu.complete:
        return Verdict(NOT_TESTABLE, f"the ReLU net did not reach {thr} training error in every "
                                     f"seed within the {m.relu_budget:.3g} epochs run here")
    if not m.tanh.complete:
        lower = m.budget / m.relu.mean
        if lower >= AGREE_RATIO:
            return Verdict(AGREES, f"tanh did not reach {thr} within {m.budget:.3g} epochs, more "
                                   f"than {lower:.1f}x ReLU's {m.relu.mean:.3g}")
        return Verdict(NOT_TESTABLE, f"tanh did not reach {thr} within {m.budget:.3g} epochs, "
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


SETUPS = {  # set-up -> (model, model_args besides the activation, raw pixels)
    "cuda-convnet": ("cuda_convnet_18pct", {}, True),
    "modern": ("cnn4_cifar", None, False),  # None: {"width": p.width}
}


@dataclass(frozen=True)
class Params:
    setups: tuple[str, ...] = ("cuda-convnet", "modern")
    epochs: int = 45  # the most passes any run gets (tanh is cut sooner by tanh_cap)
    n_train: int | None = None  # training images (None: all 50,000)
    n_test: int | None = 2000  # test images evaluated after each epoch (None: all 10,000)
    width: int = 32  # the modern set-up's cnn4_cifar filters (32 = layers-18pct's)
    batch_size: int = 128  # layer-params-18pct.cfg; Krizhevsky et al. 2012 §5
    # Centre of each arm's learning-rate grid ("set-up activation" -> lr); cuda-convnet's
    # layer-params-18pct.cfg uses 0.001 for the weights on the batch-mean gradient.
    lr_centre: tuple[tuple[str, float], ...] = (
        ("cuda-convnet relu", 0.001), ("cuda-convnet tanh", 0.001),
        ("modern relu", 0.01), ("modern tanh", 0.01))
    lr_grid: tuple[float, ...] = (0.5, 1.0, 2.0)  # multiples of the centre, per arm
    momentum: float = 0.9  # §5
    threshold: float = 0.25  # Fig. 1: 25% training error
    window: int = 40  # steps in the trailing mean of the mini-batch error
    tanh_cap: float = 6.5  # tanh stops at this multiple of the chosen ReLU's steps
    max_steps: int | None = None  # tests
    # Each run ends where its trailing training error reaches the threshold (the engine's
    # --target-train-err): what comes after is not measured, only paid for.
    stop_at_threshold: bool = False
    relu_epochs: int | None = None  # ReLU's most passes (None: ``epochs``)
    seeds_per_setup: tuple[tuple[str, int], ...] = ()  # set-up -> at most this many seeds


def _configs(p: Params, setup: str, act: str, data: str, max_steps: int | None
             ) -> dict[str, TrainConfig]:
    model, args, _ = SETUPS[setup]
    centre = dict(p.lr_centre)[f"{setup} {act}"]
    epochs = p.relu_epochs if act == "relu" and p.relu_epochs else p.epochs
    stop = {"target_train_err": p.threshold, "target_window": p.window} if (
        p.stop_at_threshold) else {}
    return {f"{setup} {act} lr {centre * m:g}": TrainConfig(
        model=model, data=data, data_dir=None, epochs=epochs, max_steps=max_steps, **stop,
        batch_size=p.batch_size, optimizer="sgd", lr=centre * m, momentum=p.momentum, wd=0.0,
        lr_scheduler="constant",
        model_args={**({"width": p.width} if args is None else args), "activation": act})
        for m in p.lr_grid}


def _fastest(steps_to: dict[str, list[float | None]], recs: dict[str, list[TrainRecord]],
             window: int) -> str:
    """The arm reaching the threshold in most seeds, then in fewest mean steps, then ending at
    the lowest training error."""
    def key(a: str) -> tuple:
        m, _, n = mean_spread(steps_to[a])
        last = mean_of([_final_err(r, window) for r in recs[a]])
        return (-n, m if m is not None else float("inf"), 1.0 if last is None else last)

    return min(steps_to, key=key)


def _final_err(rec: TrainRecord, window: int) -> float | None:
    """The trailing mean of the mini-batch training error at the end (None: diverged)."""
    if rec.diverged or not rec.step_err:
        return None
    return smoothed_err(rec, window)[-1]


def _train_setup(ctx: Context, p: Params, setup: str, data: str, spe: int
                 ) -> tuple[dict[str, list[TrainRecord]], dict[str, list[float | None]],
                            dict[str, str], dict[str, float]]:
    """Train one set-up's lr grid, ReLU first, then tanh cut at ``tanh_cap`` x the chosen ReLU's
    steps: (records, steps to the threshold, chosen arm and epochs given, per activation)."""
    recs: dict[str, list[TrainRecord]] = {}
    steps_to: dict[str, list[float | None]] = {}
    chosen: dict[str, str] = {}
    budgets: dict[str, float] = {}
    for act in ("relu", "tanh"):
        cap = p.max_steps
        if act == "tanh":  # stop at tanh_cap x the chosen ReLU's steps (when it got there)
            relu_steps = mean_spread(steps_to[chosen["relu"]])[0]
            if relu_steps is not None:
                cap = math.ceil(p.tanh_cap * relu_steps) if cap is None else min(
                    cap, math.ceil(p.tanh_cap * relu_steps))
                if cap >= p.epochs * spe:  # the epochs end it sooner: the same run as no cap
                    cap = None
        most = dict(p.seeds_per_setup).get(setup)
        arm_recs = train_arms(ctx, _configs(p, setup, act, data, cap),
                              seeds=None if most is None else ctx.seeds[:most])
        recs.update(arm_recs)
        for a, rs in arm_recs.items():
            steps_to[a] = [steps_to_threshold(r.steps, r.step_err, p.threshold,
                                              window=p.window) for r in rs]
        chosen[act] = _fastest({a: steps_to[a] for a in arm_recs}, arm_recs, p.window)
        budgets[act] = min(len(r.steps) for r in recs[chosen[act]]) / spe
        if p.stop_at_threshold:  # a run that got there stopped: what it was given is its cap
            budgets[act] = (cap if cap is not None else spe * (
                p.relu_epochs if act == "relu" and p.relu_epochs else p.epochs)) / spe
    return recs, steps_to, chosen, budgets


def _record_arms(p: Params, recs: dict[str, list[TrainRecord]],
                 steps_to: dict[str, list[float | None]], chosen: dict[str, str], spe: int,
                 rows: list[dict], raw: dict) -> None:
    """Every arm of one set-up into the table ``rows`` and the ``raw`` record."""
    for a, rs in recs.items():
        epochs_to = [None if s is None else s / spe for s in steps_to[a]]
        final = [_final_err(r, p.window) for r in rs]
        is_chosen = a in chosen.values()
        raw[a] = {"steps_to_threshold": steps_to[a], "epochs_to_threshold": epochs_to,
                  "final_train_err": final, "test_err": [r.test_err for r in rs],
                  "steps_run": [len(r.steps) for r in rs], "chosen": is_chosen}
        rows.append({"arm": a + (" (chosen)" if len(p.lr_grid) > 1 and is_chosen else ""),
                     "epochs": num(epochs_to, censored="budget", fmt=".2f"),
                     "steps": num(steps_to[a], censored="budget", fmt=".0f"),
                     "final": pct(final), "test": pct(raw[a]["test_err"])})


def _plot_setup(ax: Any, p: Params, setup: str, recs: dict[str, list[TrainRecord]],
                chosen: dict[str, str], spe: int, reach: float) -> None:
    """The chosen ReLU and tanh arms' training error against epochs, with the paper's epochs
    marked where the axis (``reach`` epochs) gets to them."""
    for act, style, color in (("relu", "-", "black"), ("tanh", "--", "tab:red")):
        a = chosen[act]
        band(ax, [s / spe for s in recs[a][0].steps],
             [smoothed_err(r, p.window) for r in recs[a]], label=a, style=style, color=color)
    for epochs, what in PAPER_EPOCHS.items():
        if epochs <= reach:  # drawn where the run's axis reaches it
            paper_mark(ax, epochs, f"{what} at 25% after ~{epochs:g} epochs (Fig. 1)",
                       axis="x", color="black" if what == "ReLU" else "tab:red")
    ax.axhline(p.threshold, color="grey", ls=":", lw=1)
    ax.set(xlabel="epochs", ylabel="training error (trailing mean)", ylim=(0, 0.95),
           title=f"{setup} set-up ({SETUPS[setup][0]})")


def _run_one_setup(ctx: Context, p: Params, setup: str, ax: Any, rows: list[dict], raw: dict
                   ) -> tuple[Arms, str]:
    """One set-up end to end: train, record into ``rows`` and ``raw``, plot on ``ax``; returns
    its measurement and the page's paragraph on it."""
    data, _ = cifar_data(ctx, n_train=p.n_train, n_test=p.n_test, augment=False,
                         raw_pixels=SETUPS[setup][2])
    spe = math.ceil(len(ctx.test_split(data, None, "train")) / p.batch_size)
    recs, steps_to, chosen, budgets = _train_setup(ctx, p, setup, data, spe)
    _record_arms(p, recs, steps_to, chosen, spe, rows, raw)
    _plot_setup(ax, p, setup, recs, chosen, spe, max(budgets.values()))
    m = Arms(relu=Stat.of(raw[chosen["relu"]]["epochs_to_threshold"]),
             tanh=Stat.of(raw[chosen["tanh"]]["epochs_to_threshold"]),
             relu_final_err=mean_of(raw[chosen["relu"]]["final_train_err"]),
             tanh_final_err=mean_of(raw[chosen["tanh"]]["final_train_err"]),
             budget=budgets["tanh"], relu_budget=budgets["relu"])
    ratio = m.tanh.mean / m.relu.mean if m.relu.complete and m.tanh.complete else None
    raw[f"{setup} ratio_tanh_over_relu"] = ratio
    text = (f"**{setup} set-up** ({chosen['relu']} and {chosen['tanh']} chosen): epochs to "
            f"{100 * p.threshold:.0f}% training error ReLU "
            f"{num(raw[chosen['relu']]['epochs_to_threshold'], 'budget', '.2f')}, tanh "
            f"{num(raw[chosen['tanh']]['epochs_to_threshold'], 'budget', '.2f')} (tanh given "
            f"{budgets['tanh']:.3g} epochs)" + (f"; ratio tanh / ReLU {ratio:.1f}x" if ratio
                                               else "") + ".")
    return m, text


def run(ctx: Context, p: Params) -> Outcome:
    rows, raw, measured_parts = [], {}, []
    setups: dict[str, Arms] = {}
    fig, axes = figure(len(p.setups), width=5.5, height=4.0)
    for setup, ax in zip(p.setups, axes, strict=True):
        setups[f"{setup} set-up"], text = _run_one_setup(ctx, p, setup, ax, rows, raw)
        measured_parts.append(text)
    save(fig, ctx.plot_path, title="ReLU vs tanh on CIFAR-10 (Krizhevsky et al. 2012, Fig. 1)")
    measured = ("\n\n".join(measured_parts)
                + f"\n\nTraining error: the trailing mean over {p.window} mini-batches of the "
                "per-step error. The paper: ReLU ~5-6 epochs, tanh ~35 (Fig. 1, read off the "
                "plot), about 6x.")
    return Outcome(
        columns=[("arm", "set-up, activation, lr"),
                 ("epochs", f"epochs to {100 * p.threshold:.0f}% train error"),
                 ("steps", "steps to it"), ("final", "final train error (%)"),
                 ("test", "test error (%)")],
        rows=rows, measured=measured, verdict=judge(setups, threshold=p.threshold), raw=raw,
        notes=[f"Learning-rate grid per arm: x{', x'.join(f'{m:g}' for m in p.lr_grid)} of "
               f"{dict(p.lr_centre)}; the fastest to the threshold is chosen and plotted. tanh "
               f"stops at {p.tanh_cap:g}x the chosen ReLU's steps.",
               "cuda-convnet set-up departures: the per-channel mean is subtracted (cuda-convnet "
               "subtracts the mean image), and the biases share the weights' learning rate "
               "(layer-params-18pct: twice it)."])


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
    grid = f"x{'/x'.join(f'{m:g}' for m in p.lr_grid)} of " + ", ".join(
        f"{k} {v:g}" for k, v in p.lr_centre if k.split()[0] in p.setups)
    return {
        "architecture": "cuda-convnet: cuda_convnet_18pct (layers-18pct); modern: cnn4_cifar "
                        f"width {p.width} (max pools, no response norm)",
        "init": "cuda-convnet: N(0, 1e-4) conv1, N(0, 0.01) else, biases 0; modern: PyTorch "
                "defaults",
        "optimiser": f"SGD momentum {p.momentum:g}, weight decay 0, no augmentation",
        "lr": f"per arm, fastest of {grid}; biases at the weights' rate",
        "batch": str(p.batch_size),
        "data": f"CIFAR-10, {p.n_train or 50000} training images, {p.n_test or 10000} test",
        "preprocessing": "cuda-convnet: raw 0-255 pixels minus the per-channel mean; modern: "
                         "per-channel standardised",
        "schedule": f"constant lr, up to {p.epochs} epochs; tanh stops at {p.tanh_cap:g}x "
                    "ReLU's steps to 25%" + (f"; cut at {p.max_steps} steps" if p.max_steps
                                             else ""),
        "seeds": str(seeds)}


register_experiment(Experiment(
    name="relu-vs-tanh",
    title="ReLU vs tanh: time to 25% training error on CIFAR-10",
    paper="Krizhevsky et al. 2012, §3.1, Fig. 1",
    claim=("A four-layer CNN with ReLUs reaches 25% training error on CIFAR-10 six times faster "
           "than the same network with tanh units (learning rates chosen independently, no "
           "regularisation)."),
    run=run,
    profiles={"smoke": Params(epochs=1, n_train=200, n_test=100, width=4, batch_size=50,
                             max_steps=4, window=2, threshold=0.95, lr_grid=(1.0,)),
              # 2 epochs x 4 arms x 1 seed: 4.9 min of training on the idle 2-core CPU. ReLU needs
              # ~5-6 epochs in the paper and tanh ~6x that, so within 20 minutes no arm reaches
              # 25% training error: the page says "not testable on this machine".
              "quick": Params(epochs=2, lr_grid=(1.0,)),
              # The quick profile's two set-ups run until 25%, each run stopping there; ReLU
              # at most 12 epochs, tanh at 6.5x ReLU's steps or 40 epochs, whichever is less;
              # a second seed for the modern set-up only. Sized for an hour on the idle 2-core
              # CPU (docs/experiments/long/relu-vs-tanh.md: its steps and their rate).
              "long": Params(epochs=40, relu_epochs=12, lr_grid=(1.0,), stop_at_threshold=True,
                             seeds_per_setup=(("cuda-convnet", 1),)),
              "full": Params(n_test=None)},
    data="cifar10",
    default_seeds={"smoke": 1, "quick": 1, "long": 2, "full": 3},
    quick_note=("all 50,000 images, each arm's centre learning rate only (no grid), 2 epochs, "
                "one seed: on a 2-core CPU this is a check of the set-ups, not of the claim; "
                "full: the x0.5/x1/x2 grid per arm, up to 45 epochs (tanh cut at 6.5x ReLU's "
                "steps), 3 seeds, all 10,000 test images."),
    paper_setup=PAPER,
    run_setup=run_setup,
))
