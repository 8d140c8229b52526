"""Every experiment's verdict as a pure function of its measurements, on constructed numbers.

Table-driven: each case is the measurements and the verdict word they must give. Shared rules:
a difference within the seeds' spread is "inconclusive", never "disagrees"; an arm at chance
(did not train) makes the claim "not comparable".
"""

from __future__ import annotations

import pytest

from convzoo.experiments import architectures, batchnorm, degradation, dropout, im2col, relu_tanh
from convzoo.experiments import lenet_modern as lenet
from convzoo.experiments.verdict import VERDICTS, Stat, Verdict, at_chance, combine, compare


def S(*values):  # noqa: N802 -- a Stat over seeds, short for the tables
    return Stat.of(list(values))


# ---- the shared arithmetic -------------------------------------------------------------------

def test_verdict_words_are_a_fixed_set():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict("sort of", "why")
    assert "not testable on this machine" in VERDICTS


@pytest.mark.parametrize("a, b, floor, expected", [
    (S(0.295, 0.296), S(0.294, 0.295), 0.01, 0),  # 0.1 point apart: under the 1-point floor
    (S(0.30, 0.31), S(0.25, 0.26), 0.01, -1),  # 5 points apart, tight seeds: b clearly lower
    (S(0.25, 0.26), S(0.30, 0.31), 0.01, 1),
    (S(0.20, 0.40), S(0.23, 0.43), 0.01, 0),  # 3 points apart, seeds spread by 10: noise
    (S(0.5), S(0.52), 0.01, 1),  # one seed each: the floor alone decides
    (S(None), S(0.52), 0.01, 0),  # a missing arm: no difference to call
])
def test_compare_needs_more_than_the_seeds_spread(a, b, floor, expected):
    assert compare(a, b, floor=floor) == expected


def test_stat_counts_censored_runs_and_chance():
    s = S(3.0, None, 5.0)
    assert (s.mean, s.n, s.total, s.complete) == (4.0, 2, 3, False)
    assert at_chance(0.9) and at_chance(None) and not at_chance(0.5)
    assert at_chance(0.5, classes=2) and not at_chance(0.3, classes=2)


def test_combine_names_each_part():
    v = combine([("cuda-convnet set-up", Verdict("agrees", "ReLU 6x sooner")),
                 ("modern set-up", Verdict("inconclusive", "as fast."))])
    assert v.word == "partly"
    assert v.reason == ("cuda-convnet set-up: agrees – ReLU 6x sooner; modern set-up: "
                        "inconclusive – as fast.")
    assert combine([("a", Verdict("agrees", "x")), ("b", Verdict("agrees", "y"))]).word == "agrees"
    assert combine([("a", Verdict("not comparable", "x")),
                    ("b", Verdict("disagrees", "y"))]).word == "disagrees"


# ---- relu-vs-tanh ----------------------------------------------------------------------------

def _rt(relu, tanh, relu_err=0.2, tanh_err=0.2, budget=60.0):
    return relu_tanh.Arms(relu=relu, tanh=tanh, relu_final_err=relu_err, tanh_final_err=tanh_err,
                          budget=budget)


@pytest.mark.parametrize("arms, word", [
    (_rt(S(5.0, 5.5, 6.0), S(33.0, 35.0, 37.0)), "agrees"),  # ~6.4x, clear
    (_rt(S(5.0, 5.5, 6.0), S(10.0, 11.0, 12.0)), "partly"),  # 2x: faster, less than 6x
    (_rt(S(5.0, 8.0, 11.0), S(6.0, 9.0, 12.0)), "inconclusive"),  # a tie within the spread
    (_rt(S(10.0, 11.0, 12.0), S(5.0, 5.5, 6.0)), "disagrees"),  # tanh clearly faster
    (_rt(S(5.0, 5.0), S(None, None), budget=32.5), "agrees"),  # tanh censored at 6.5x ReLU
    (_rt(S(5.0, 5.0), S(None, 20.0), budget=10.0),
     "not testable on this machine"),  # censored at only 2x: the budget was too short
    (_rt(S(None, None), S(None, None), relu_err=0.89), "not comparable"),  # ReLU at chance
    (_rt(S(5.0), S(None), tanh_err=0.9), "not comparable"),  # tanh did not train
    (_rt(S(5.0, None), S(30.0, 31.0)), "not testable on this machine"),  # ReLU out of budget
])
def test_relu_tanh_judge(arms, word):
    v = relu_tanh.judge_setup(arms)
    assert v.word == word, v.reason


def test_relu_tanh_verdict_is_scoped_to_each_setup():
    v = relu_tanh.judge({"cuda-convnet set-up": _rt(S(5.0, 5.5, 6.0), S(33.0, 35.0, 37.0)),
                         "modern set-up": _rt(S(5.0, 8.0, 11.0), S(6.0, 9.0, 12.0))})
    assert v.word == "partly"
    assert v.reason.startswith("cuda-convnet set-up: agrees – ")
    assert "modern set-up: inconclusive – tanh is as fast" in v.reason


# ---- dropout ---------------------------------------------------------------------------------

def _do(train_off=None, train_on=None, test_off=None, test_on=None, gap_off=None, gap_on=None,
        **kw):
    train_off, train_on = train_off or S(0.99, 0.98), train_on or S(0.90, 0.91)
    test_off, test_on = test_off or S(0.45, 0.46), test_on or S(0.50, 0.51)
    gap_off = gap_off or Stat.of([train_off.mean - test_off.mean] * 2)
    gap_on = gap_on or Stat.of([train_on.mean - test_on.mean] * 2)
    return dropout.Measurements(train_acc_off=train_off, train_acc_on=train_on,
                                test_acc_off=test_off, test_acc_on=test_on, gap_off=gap_off,
                                gap_on=gap_on, **kw)


@pytest.mark.parametrize("m, word", [
    (_do(), "agrees"),  # gap 53 -> 40 points, test accuracy up
    (_do(test_on=S(0.40, 0.41)), "partly"),  # gap smaller but test accuracy lower
    (_do(gap_off=S(0.50, 0.30), gap_on=S(0.48, 0.28)), "inconclusive"),  # within the spread
    (_do(gap_off=S(0.30, 0.31), gap_on=S(0.50, 0.51)), "disagrees"),
    (_do(train_off=S(0.60, 0.62)), "not comparable"),  # did not overfit
    (_do(train_on=S(0.10, 0.11)), "not comparable"),  # the dropout arm at chance
])
def test_dropout_overfitting_judge(m, word):
    assert dropout.judge_overfitting(m).word == word


@pytest.mark.parametrize("off, on, budget, word", [
    (S(100.0, 110.0), S(200.0, 210.0), 1000.0, "agrees"),  # about 2x
    (S(100.0, 110.0), S(120.0, 125.0), 1000.0, "partly"),  # slower, but not 2x
    (S(100.0, 200.0), S(110.0, 210.0), 1000.0, "inconclusive"),  # tie within the spread
    (S(200.0, 210.0), S(100.0, 105.0), 1000.0, "disagrees"),
    (S(100.0, 100.0), S(None, None), 350.0, "partly"),  # censored beyond 3x: not about 2x
    (S(100.0, 100.0), S(None, None), 250.0, "inconclusive"),  # at least 2.5x: may be more
    (S(None, None), S(None, None), 300.0, "not comparable"),
])
def test_dropout_convergence_judge(off, on, budget, word):
    v = dropout.judge_convergence(_do(steps_off=off, steps_on=on, budget_steps=budget))
    assert v.word == word, v.reason


def test_dropout_judge_combines_both_claims():
    v = dropout.judge(_do(steps_off=S(100.0, 110.0), steps_on=S(200.0, 210.0), budget_steps=1e3))
    assert v.word == "agrees" and "iterations to converge: agrees – " in v.reason
    assert dropout.judge_convergence(_do()) is None and dropout.judge(_do()).word == "agrees"


# ---- batchnorm -------------------------------------------------------------------------------

def _mn(acc, to):
    return batchnorm.MnistArm(final_acc=acc, steps_to=to)


@pytest.mark.parametrize("no_bn, bn, word", [
    (_mn(S(0.96, 0.965), S(3000.0, 3100.0)), _mn(S(0.98, 0.981), S(800.0, 900.0)), "agrees"),
    (_mn(S(0.96, 0.965), S(None, None)), _mn(S(0.98, 0.981), S(800.0, 900.0)), "agrees"),
    (_mn(S(0.97, 0.975), S(900.0, 1000.0)), _mn(S(0.971, 0.974), S(880.0, 1010.0)),
     "inconclusive"),  # a tie is not "disagrees"
    (_mn(S(0.97, 0.971), S(800.0, 820.0)), _mn(S(0.971, 0.972), S(1500.0, 1600.0)), "partly"),
    (_mn(S(0.98, 0.981), S(800.0, 820.0)), _mn(S(0.96, 0.962), S(1500.0, 1600.0)), "disagrees"),
    (_mn(S(0.11, 0.10), S(None, None)), _mn(S(0.98, 0.981), S(800.0, 900.0)),
     "not comparable"),  # the plain net at chance did not train
])
def test_batchnorm_mnist_judge(no_bn, bn, word):
    assert batchnorm.judge_mnist(no_bn, bn).word == word


def _lr(err, diverged=0):
    return batchnorm.LrArm(test_err=err, diverged=diverged)


@pytest.mark.parametrize("no_bn_hi, bn_hi, word", [
    (_lr(S(None, None), diverged=2), _lr(S(0.35, 0.36)), "agrees"),
    (_lr(S(0.90, 0.90)), _lr(S(0.35, 0.36)), "agrees"),  # at chance: did not train
    (_lr(S(0.50, 0.52)), _lr(S(0.35, 0.36)), "agrees"),  # clearly worse
    (_lr(S(0.36, 0.37)), _lr(S(0.35, 0.36)), "inconclusive"),
    (_lr(S(0.30, 0.31)), _lr(S(0.45, 0.46)), "disagrees"),
    (_lr(S(0.30, 0.31)), _lr(S(0.9, 0.9)), "disagrees"),  # BN at chance at the high rate
])
def test_batchnorm_lr_judge(no_bn_hi, bn_hi, word):
    lo = _lr(S(0.40, 0.41))
    assert batchnorm.judge_lr({1.0: lo, 30.0: no_bn_hi}, {1.0: lo, 30.0: bn_hi}).word == word


def test_batchnorm_lr_judge_bn_not_training_at_all_is_not_comparable():
    stuck = _lr(S(0.9, 0.9))
    v = batchnorm.judge_lr({1.0: stuck, 30.0: stuck}, {1.0: stuck, 30.0: stuck})
    assert v.word == "not comparable"
    assert batchnorm.status(stuck) == "did not train (at chance)"
    assert batchnorm.status(_lr(S(0.3, None), diverged=1)) == "diverged in 1/2"


# ---- degradation -----------------------------------------------------------------------------

def _dg(p20, p56, r20, r56):
    return {"plain-20": p20, "plain-56": p56, "ResNet-20": r20, "ResNet-56": r56}


@pytest.mark.parametrize("errs, word", [
    (_dg(S(0.30, 0.31), S(0.45, 0.46), S(0.25, 0.26), S(0.24, 0.26)), "agrees"),
    (_dg(S(0.30, 0.31), S(0.45, 0.46), S(0.25, 0.26), S(0.35, 0.36)), "partly"),
    (_dg(S(0.30, 0.40), S(0.33, 0.43), S(0.25, 0.26), S(0.24, 0.26)), "inconclusive"),
    (_dg(S(0.45, 0.46), S(0.30, 0.31), S(0.25, 0.26), S(0.24, 0.26)), "disagrees"),
    (_dg(S(0.30, 0.31), S(0.90, 0.90), S(0.25, 0.26), S(0.24, 0.26)), "not comparable"),
])
def test_degradation_judge(errs, word):
    assert degradation.judge(errs, lo=20, hi=56).word == word


# ---- lenet-1998-vs-modern --------------------------------------------------------------------

def _ln(err, steps):
    return lenet.Arm(test_err=err, steps_to=steps)


@pytest.mark.parametrize("old, new, word", [
    (_ln(S(0.012, 0.0125), S(900.0, 950.0)), _ln(S(0.009, 0.0092), S(400.0, 420.0)), "agrees"),
    (_ln(S(0.010, 0.0102), S(900.0, 950.0)), _ln(S(0.010, 0.0101), S(400.0, 420.0)), "agrees"),
    (_ln(S(0.010, 0.011), S(400.0, 900.0)), _ln(S(0.0105, 0.0108), S(450.0, 850.0)),
     "inconclusive"),
    (_ln(S(0.009, 0.0092), S(400.0, 420.0)), _ln(S(0.012, 0.0125), S(900.0, 950.0)),
     "disagrees"),
    (_ln(S(0.012, 0.0125), S(900.0, 950.0)), _ln(S(0.015, 0.0152), S(400.0, 420.0)), "partly"),
    (_ln(S(0.90, 0.90), S(None, None)), _ln(S(0.009, 0.0092), S(400.0, 420.0)),
     "not comparable"),
])
def test_lenet_judge(old, new, word):
    assert lenet.judge(old=old, new=new).word == word


# ---- im2col, architectures -------------------------------------------------------------------

@pytest.mark.parametrize("diff, speedup, word", [
    (1e-6, 200.0, "agrees"), (1e-6, 3.0, "partly"), (0.5, 200.0, "disagrees"),
    (float("nan"), 200.0, "disagrees"),
])
def test_im2col_judge(diff, speedup, word):
    assert im2col.judge(diff, speedup).word == word


def test_architectures_is_a_table_not_a_claim():
    assert architectures.judge().word == "not comparable"
