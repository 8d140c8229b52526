"""Loading weights with ``create_model(name, weights=...)``: convzoo .safetensors, torchvision .pth.

Small models (resnet18 is the smallest torchvision-compatible ResNet, resnet20 and densenet_bc100
the CIFAR ones) keep this fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision

import convzoo
from convzoo import ConvzooError, create_model, list_models, save_weights


def _same_state(a: torch.nn.Module, b: dict[str, torch.Tensor]) -> bool:
    sa = a.state_dict()
    return sa.keys() == b.keys() and all(torch.equal(sa[k], b[k]) for k in sa)


@pytest.fixture(scope="module")
def tv_resnet18_pth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path_factory.mktemp("tv") / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    return path, tv.state_dict()


def test_safetensors_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=7)
    model.layer1[0].bn1.running_mean.uniform_()  # buffers travel too
    path = tmp_path / "r20.safetensors"
    save_weights(path, model, model_name="resnet20", model_args={"num_classes": 7})
    loaded = create_model("resnet20", num_classes=7, weights=str(path))
    assert _same_state(loaded, model.state_dict())
    assert convzoo.read_weights(path).model_args == {"num_classes": 7}


def test_torchvision_pth_loads_and_matches(tv_resnet18_pth: tuple[Path, dict]) -> None:
    path, state = tv_resnet18_pth
    model = create_model("resnet18", weights=str(path)).eval()
    assert _same_state(model, state)
    tv = torchvision.models.resnet18(weights=None)
    tv.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), tv.eval()(x))


def test_pth_is_read_with_weights_only(tmp_path: Path) -> None:
    # A pickle that would run code (here: construct an arbitrary object) is refused.
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "obj": Path("x")}, path)
    with pytest.raises(ConvzooError, match="cannot read .*evil.pth"):
        create_model("resnet18", weights=str(path))


def test_wrong_architecture_names_first_keys(tv_resnet18_pth: tuple[Path, dict]) -> None:
    path, _ = tv_resnet18_pth
    with pytest.raises(ConvzooError) as e:
        create_model("resnet34", weights=str(path))
    msg = str(e.value)
    assert str(path) in msg and "missing keys" in msg and "layer1.2.bn1.bias" in msg


def test_wrong_classes_names_key_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "r20-10.safetensors"
    save_weights(path, create_model("resnet20"))  # no model name: only shapes are checked
    with pytest.raises(ConvzooError) as e:
        create_model("resnet20", num_classes=5, weights=str(path))
    msg = str(e.value)
    assert "fc.weight: file (10, 64) vs model (5, 64)" in msg
    assert "fc.bias: file (10,) vs model (5,)" in msg
    assert "reset_head" in msg


def test_weights_for_another_model_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r20.safetensors"
    save_weights(path, create_model("resnet20"), model_name="resnet20")
    with pytest.raises(ConvzooError, match="for model 'resnet20', not 'resnet32'"):
        create_model("resnet32", weights=str(path))


def test_reset_head_keeps_fresh_classifier(tv_resnet18_pth: tuple[Path, dict]) -> None:
    path, state = tv_resnet18_pth
    torch.manual_seed(1)
    fresh = create_model("resnet18", num_classes=5)
    torch.manual_seed(1)
    model = create_model("resnet18", num_classes=5, weights=str(path), reset_head=True)
    own = model.state_dict()
    for k, v in own.items():
        if k.startswith("fc."):
            assert torch.equal(v, fresh.state_dict()[k])  # the fresh init, untouched
        else:
            assert torch.equal(v, state[k]), k
    assert own["fc.weight"].shape == (5, 512)


def test_reset_head_densenet_classifier(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = create_model("densenet_bc100")  # 10 classes
    path = tmp_path / "dn.safetensors"
    save_weights(path, src)
    model = create_model("densenet_bc100", num_classes=100, weights=str(path), reset_head=True)
    assert model.classifier.weight.shape == (100, 342)
    assert torch.equal(model.features.norm4.weight, src.features.norm4.weight)
    assert torch.equal(model.features.conv0.weight, src.features.conv0.weight)


@pytest.mark.skipif("googlenet" not in list_models(), reason="googlenet not registered yet")
def test_aux_keys_dropped_for_model_without_aux(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    assert any(k.startswith("aux") for k in tv.state_dict())
    path = tmp_path / "googlenet.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("googlenet", weights=str(path))
    assert not any(k.startswith("aux") for k in model.state_dict())
    assert torch.equal(model.state_dict()["fc.weight"], tv.state_dict()["fc.weight"])
    with_aux = create_model("googlenet", aux_logits=True, weights=str(path))
    assert torch.equal(with_aux.state_dict()["aux1.fc2.weight"], tv.state_dict()["aux1.fc2.weight"])


def test_atomic_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_model("resnet20")
    path = tmp_path / "ok.safetensors"
    save_weights(path, model)
    assert os.listdir(tmp_path) == ["ok.safetensors"]

    def broken_save(state: dict, filename: str, metadata: dict) -> None:
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(convzoo.weights, "save_file", broken_save)
    with pytest.raises(ConvzooError, match="bad.safetensors: disk full"):
        save_weights(tmp_path / "bad.safetensors", model)
    with pytest.raises(ConvzooError, match="disk full"):
        save_weights(path, model)  # a failed overwrite keeps the old file whole
    assert os.listdir(tmp_path) == ["ok.safetensors"]
    assert _same_state(create_model("resnet20", weights=str(path)), model.state_dict())


@pytest.mark.parametrize("kwargs", [{"pretrained": True}, {"weights": "IMAGENET1K_V1"},
                                    {"weights": "imagenet"}])
def test_torchvision_weights_offline_say_where_to_put_the_file(kwargs, tmp_path, monkeypatch):
    """pretrained=True and torchvision's tags fetch torchvision's file into torch.hub's cache;
    offline, one line names the URL and the exact path to put the file, within seconds."""
    import time

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CONVZOO_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # discard port: refused
    start = time.monotonic()
    with pytest.raises(ConvzooError) as e:
        create_model("resnet18", **kwargs)
    msg = str(e.value)
    assert "\n" not in msg and time.monotonic() - start < 10
    assert "http://127.0.0.1:9/resnet18-f37072fd.pth" in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert not list((tmp_path / "torch").rglob("*.pth"))


def test_pretrained_small_form_is_its_shipped_tag_and_lenet_has_none() -> None:
    assert _same_state(create_model("resnet20", pretrained=True),
                       create_model("resnet20:cifar10").state_dict())
    with pytest.raises(ConvzooError, match="no pretrained weights.*lenet5:mnist"):
        create_model("alexnet_cifar", pretrained=True)


def test_model_colon_tag_loads_the_shipped_weights() -> None:
    a = create_model("resnet20:cifar10")
    b = create_model("resnet20", weights="cifar10")
    assert _same_state(a, b.state_dict())
    with pytest.raises(ConvzooError, match="imagenet"):
        create_model("resnet20:imagenet")


def test_list_models_pretrained() -> None:
    assert list_models(pretrained=True) == ["lenet5", "resnet20"]
    assert list_models("res*", pretrained=True) == ["resnet20"]
