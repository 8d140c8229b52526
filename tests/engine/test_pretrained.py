"""The shipped resnet20 CIFAR-10 weights: loadable by tag, small, documented in their metadata."""

from __future__ import annotations

import tarfile

import pytest
import torch

from convzoo import create_model, read_weights
from convzoo.data import PRESETS
from convzoo.data.images import decode_bytes
from convzoo.data.presets import apply_preset
from convzoo.weights import PRETRAINED_DIR
from engine.enginehelp import CIFAR_JPG

FILE = PRETRAINED_DIR / "resnet20-cifar10.safetensors"


def test_file_is_small_and_has_metadata():
    assert FILE.stat().st_size <= 2 * 1024 * 1024
    wf = read_weights(FILE)
    assert wf.model == "resnet20" and len(wf.classes) == 10
    for key in ("recipe", "data", "top1_acc", "date", "steps"):
        assert key in wf.extra, key
    assert wf.extra["data"] == "cifar10"


@pytest.mark.skipif(not CIFAR_JPG.is_file(), reason=f"{CIFAR_JPG} not found")
def test_loads_by_tag_and_beats_chance_on_test_jpegs():
    model = create_model("resnet20", weights="cifar10").eval()
    classes = read_weights(FILE).classes
    images, labels = [], []
    with tarfile.open(CIFAR_JPG, "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 3 and parts[0] == "test" and parts[2] < "0020":
                images.append(decode_bytes(tar.extractfile(m).read()))  # the trainer's opener
                labels.append(classes.index(parts[1]))
    x = apply_preset(torch.stack(images), PRESETS["cifar10"], train=False)
    with torch.no_grad():
        acc = (model(x).argmax(1) == torch.tensor(labels)).float().mean().item()
    assert len(labels) == 200 and acc > 0.75  # chance is 0.1; the model card gives 0.88 on 10k
