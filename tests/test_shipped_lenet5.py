"""The LeNet-5 MNIST weights shipped in the package (docs/model_cards.md)."""

import torch

import convzoo
from convzoo.data import load_dataset
from convzoo.weights import PRETRAINED_DIR


def test_lenet5_mnist_weights_load_by_tag_and_classify_the_embedded_test_split():
    wf = convzoo.read_weights(PRETRAINED_DIR / "lenet5-mnist.safetensors")
    assert wf.model == "lenet5" and wf.classes == [str(i) for i in range(10)]
    assert wf.extra["top1_acc"] >= 0.99 and "date" in wf.extra and "command" in wf.extra
    assert (PRETRAINED_DIR / "lenet5-mnist.safetensors").stat().st_size < 2_000_000
    # The embedded test images are MNIST test images, never seen in training.
    result = convzoo.evaluate(PRETRAINED_DIR / "lenet5-mnist.safetensors", data="mnist")
    assert result["n"] == 2000 and result["top1_acc"] >= 0.985
    model = convzoo.create_model("lenet5", weights="mnist").eval()
    test = load_dataset("mnist", None, "test")
    x = (test.images[:64].float() / 255 - 0.1307) / 0.3081
    with torch.no_grad():
        acc = (model(x).argmax(1) == test.labels[:64]).float().mean().item()
    assert acc >= 0.95
