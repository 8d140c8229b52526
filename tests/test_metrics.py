import pytest
import torch

from convzoo import topk_accuracy
from convzoo.engine.metrics import per_class_accuracy


def test_course_worked_example_true_class_ranked_fourth():
    # Scores for 6 classes; the true class (index 2) has the 4th highest score.
    logits = torch.tensor([[0.30, 0.25, 0.15, 0.05, 0.20, 0.12]])
    target = torch.tensor([2])
    acc = topk_accuracy(logits, target, ks=(1, 2, 3, 4, 5))
    err = {k: 1 - a for k, a in acc.items()}
    assert err == {1: 1.0, 2: 1.0, 3: 1.0, 4: 0.0, 5: 0.0}


def test_topk_against_brute_force():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 10, generator=g)
    target = torch.randint(0, 10, (200,), generator=g)
    acc = topk_accuracy(logits, target, ks=(1, 3, 5))
    for k in (1, 3, 5):
        rank = (logits > logits.gather(1, target.view(-1, 1))).sum(1)  # 0 = best
        assert acc[k] == pytest.approx((rank < k).float().mean().item())


def test_k_larger_than_classes_counts_everything():
    acc = topk_accuracy(torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1]), ks=(1, 5))
    assert acc[5] == 1.0


def test_empty_input_rejected():
    with pytest.raises(ValueError):
        topk_accuracy(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long))


def test_per_class_accuracy():
    preds = torch.tensor([0, 1, 1, 2, 0])
    targets = torch.tensor([0, 1, 2, 2, 1])
    assert per_class_accuracy(preds, targets, 4) == [1.0, 0.5, 0.5, None]
