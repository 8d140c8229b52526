"""The model base class, ``ZooModel``: every registered model derives from it in its class
statement (building a model changes no class), takes its name and smallest input from its
``ModelInfo``, and that one ``min_size`` is its forward's real minimum -- one pixel less fails
inside the network itself once convzoo's check is out of the way.

Shapes are checked on the meta device (no memory, no arithmetic), so every form is cheap; it
finds the same smallest sides as the CPU (measured for every form; tests/models/test_zoo.py runs
each model on the CPU at its min_size).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch
from torch import nn

import convzoo.models
from convzoo import ConvzooError, create_model, list_models, model_info
from convzoo.models import _registry as catalogue

ALL = list_models()
AUX = [n for n in ALL if "aux_logits" in inspect.signature(model_info(n).builder).parameters]
# Every form: each model as registered, and the ones with auxiliary heads with them on.
FORMS = [(n, {}) for n in ALL] + [(n, {"aux_logits": True}) for n in AUX]
IDS = [f"{n}-aux" if kw else n for n, kw in FORMS]


# Run in a fresh interpreter, so that no model was built before the first snapshot.
_BASES_SCRIPT = """
import sys, torch
from torch import nn
from convzoo import create_model, list_models
from convzoo.models._common import ZooModel

def bases():
    return {(m, k): c.__bases__ for m, mod in list(sys.modules.items())
            if m.startswith("convzoo.models") for k, c in vars(mod).items()
            if isinstance(c, type) and issubclass(c, nn.Module)}

before = bases()
assert ("convzoo.models._common", "ZooModel") in before and len(before) > 20, before
with torch.device("meta"):
    built = {n: create_model(n) for n in list_models()}
assert bases() == before, "building a model changed a class's bases"
for name, model in built.items():
    assert ZooModel in type(model).__mro__, name
    assert model.convzoo_name == name, name
print(len(built))
"""


def _logits(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


def test_building_a_model_changes_no_class() -> None:
    r = subprocess.run([sys.executable, "-c", _BASES_SCRIPT], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(ALL)
    with torch.device("meta"):
        assert create_model("resnet20").info is model_info("resnet20")


def test_a_builder_must_return_a_zoo_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "_REGISTRY", dict(catalogue._REGISTRY))
    catalogue.register_model(family="x", paper="x", input_size=(1, 4, 4), name="plain_linear")(
        lambda **kw: nn.Linear(1, 1)
    )
    with pytest.raises(ConvzooError, match="'plain_linear'.*ZooModel"):
        create_model("plain_linear")


def test_head_finder_is_the_one_weights_and_freezing_use() -> None:
    from convzoo.engine.trainer import _freeze_backbone
    from convzoo.models._common import head_names

    with torch.device("meta"):
        model = create_model("googlenet_cifar", aux_logits=True)
    assert head_names(model) == ["fc", "aux1.fc2", "aux2.fc2"]
    _freeze_backbone(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{h}.{w}" for h in head_names(model) for w in ("weight", "bias")}


# Small forms whose min_size is set above the side their network itself still runs at, on
# purpose (see their builders): alexnet_cifar keeps the 4x4 map its classifier is sized for
# without the adaptive pool upsampling it (25 -> 13 -> 7 -> 4); the VGG CIFAR forms' five
# ceil-mode pools each halve a map of at least 2 (17 -> 9 -> 5 -> 3 -> 2 -> 1); googlenet_cifar's
# three max-pools each see at least 2x2 (8 -> 4 -> 2 -> 1). The value: the smallest side the
# network runs at without convzoo's check, measured (the same on the meta device and the CPU).
RUNS_BELOW_MIN_SIZE = {"alexnet_cifar": 1, "googlenet_cifar": 4,
                       **{f"vgg{depth}_cifar": 1 for depth in (11, 13, 16, 19)}}


@pytest.mark.parametrize(("name", "kwargs"), FORMS, ids=IDS)
def test_min_size_is_the_forwards_real_minimum(name: str, kwargs: dict) -> None:
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name, **kwargs).eval()
    side, chans = model.min_size, info.input_size[0]
    assert side == info.min_size or kwargs  # only an auxiliary head may raise it
    real = RUNS_BELOW_MIN_SIZE.get(name, side)

    def forward(s: int) -> torch.Tensor:
        return _logits(model(torch.zeros(1, chans, s, s)))

    with torch.device("meta"):
        assert forward(side).shape == (1, info.default_num_classes)
        if side == 1:
            return  # nothing is smaller than one pixel
        with pytest.raises(ConvzooError, match=rf"'{name}'.*{side}x{side}"):
            forward(side - 1)
        model.check_input = lambda *a, **k: None
        assert forward(real).shape == (1, info.default_num_classes)
        if real > 1:
            with pytest.raises(RuntimeError):  # the network itself fails one pixel below
                forward(real - 1)


def test_a_model_built_from_its_class_checks_no_size() -> None:
    from convzoo.models.densenet import DenseNet

    with torch.device("meta"):
        model = DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, num_classes=3,
                         in_chans=3, stem="cifar")
    assert model.info is None and model.convzoo_name is None and model.min_size == 1
    assert model.num_classes == 3 and convzoo.models.ZooModel in type(model).__mro__
