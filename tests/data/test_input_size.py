"""The input size follows the model: the rule (resolve_input_size), the registry's size limits,
the resize that replaced padding, DataPreset.from_dict, and mixed-size folders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import convzoo
from convzoo.data import PRESETS, FolderDataset, load_splits, make_loader, preset_for
from convzoo.data.presets import DataPreset, apply_preset, resize_batch
from convzoo.data.stream import stream_transform
from convzoo.engine.input_size import resolve_input_size
from convzoo.errors import ConvzooError
from convzoo.hub import eval_sizes
from convzoo.registry import model_info

# (model, image size, --input-size, weights' size) -> (size, a fragment of the reason)
RULE = [
    ("resnet18", 32, None, None, 32, "the images' own size (resnet18 accepts >= 1 px)"),
    ("resnet18", 28, None, None, 28, "the images' own size"),
    ("lenet", 28, None, None, 32, "images are 28 px, below lenet's minimum of 32 px; resized up"),
    ("lenet", 32, None, None, 32, "own size (lenet accepts only 32 px)"),
    ("lenet", 64, None, None, 32, "images are 64 px, above lenet's maximum of 32 px; resized down"),
    ("lenet5", 32, None, None, 28, "above lenet5's maximum of 28 px"),
    ("cnn4_cifar", 28, None, None, 28, "own size (cnn4_cifar accepts 25-32 px)"),
    ("inception_v3", 28, None, None, 75, "below inception_v3's minimum of 75 px; resized up"),
    ("alexnet", 32, None, None, 63, "below alexnet's minimum of 63 px"),
    ("vgg11", 32, None, None, 32, "own size"),
    ("googlenet", 8, None, None, 15, "below googlenet's minimum of 15 px"),
    ("densenet121", 28, None, None, 29, "below densenet121's minimum of 29 px"),
    # Images of mixed sizes (image_size None): the model's default input.
    ("resnet18", None, None, None, 224, "resnet18's default input (images of mixed sizes"),
    ("inception_v3", None, None, None, 299, "inception_v3's default input"),
    ("lenet", None, None, None, 32, "lenet's default input"),
    ("resnet20", None, None, None, 32, "resnet20's default input"),
    # Larger square photos of one size (streamed): their own size up to the model's default
    # input, which larger ones are cropped and resized to (as ImageNet training does).
    ("resnet18", 96, None, None, 96, "the images' own size (resnet18 accepts >= 1 px)"),
    ("inception_v3", 96, None, None, 96, "the images' own size"),
    ("alexnet", 224, None, None, 224, "the images' own size"),
    ("resnet18", 500, None, None, 224, "images are 500 px, larger than it; cropped and resized"),
    ("inception_v3", 320, None, None, 299, "inception_v3's default input (images are 320 px"),
    ("resnet20", 96, None, None, 32, "resnet20's default input (images are 96 px, larger"),
    # The weights' own training size beats the images; --input-size beats both.
    ("resnet18", 32, None, 224, 224, "the size its weights were trained at"),
    ("lenet5", 28, None, 28, 28, "weights"),
    ("resnet18", 32, 64, 224, 64, "--input-size"),
    ("inception_v3", None, 75, None, 75, "--input-size"),
]


@pytest.mark.parametrize(("model", "image", "requested", "weights", "size", "why"), RULE)
def test_rule(model, image, requested, weights, size, why):
    got, reason = resolve_input_size(model, image_size=image, requested=requested,
                                     weights_size=weights)
    assert got == size
    assert reason.startswith(f"input {size} px: ") and why in reason, reason
    assert "\n" not in reason and len(reason) < 120


@pytest.mark.parametrize(("model", "requested", "message"), [
    ("inception_v3", 64, "--input-size 64: model 'inception_v3' accepts >= 75 px"),
    ("alexnet", 62, "model 'alexnet' accepts >= 63 px"),
    ("lenet", 28, "model 'lenet' accepts only 32 px"),
    ("cnn4_cifar", 33, "model 'cnn4_cifar' accepts 25-32 px"),
    ("resnet18", 0, "positive number of pixels"),
])
def test_requested_size_outside_the_model_is_refused(model, requested, message):
    with pytest.raises(ConvzooError, match=message):
        resolve_input_size(model, image_size=32, requested=requested, weights_size=None)


def test_unknown_model_is_one_error():
    with pytest.raises(ConvzooError, match="unknown model 'resnet19'"):
        resolve_input_size("resnet19", image_size=32, requested=None, weights_size=None)


def _forward_ok(model: torch.nn.Module, chans: int, side: int) -> bool:
    try:
        with torch.device("meta"):
            model(torch.empty(1, chans, side, side))
    except Exception:  # the model's own ConvzooError, or a layer's error for a fixed-size net
        return False
    return True


@pytest.mark.parametrize("name", convzoo.list_models())
def test_registered_size_limits_are_the_models(name):
    """min_size (and max_size) in the registry are what the built model accepts: a forward on the
    meta device (shapes only) passes at the limits and fails one pixel outside them."""
    info = model_info(name)
    with torch.device("meta"):
        model = convzoo.create_model(name).eval()
    c, lo, hi = info.input_size[0], info.min_size, info.max_size
    assert _forward_ok(model, c, lo)
    assert lo == 1 or not _forward_ok(model, c, lo - 1)
    assert lo <= info.input_size[1] and (hi is None or info.input_size[1] <= hi)
    if hi is not None:
        assert _forward_ok(model, c, hi) and not _forward_ok(model, c, hi + 1)
    else:  # no maximum: twice the default input still runs
        assert _forward_ok(model, c, 2 * info.input_size[1] + 1)


# --- the preset: resized, never padded -------------------------------------------------------

def test_in_memory_preset_resizes_only_when_the_size_differs():
    assert preset_for("cifar10", in_chans=3, image_size=32, input_size=32).resize_to is None
    p = preset_for("mnist", in_chans=1, image_size=28, input_size=32,
                   eval_sizes=eval_sizes("lenet"))
    assert p.resize_to == 32 and p.input_side == 32 and not p.streamed
    assert p.crop_padding == PRESETS["mnist"].crop_padding  # the shifts stay in image pixels
    assert "pad_to" not in p.to_dict()


def test_upsizing_is_bilinear_interpolation_of_the_normalised_batch():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    plain = preset_for("cifar10", in_chans=3, image_size=32, input_size=32)
    big = preset_for("cifar10", in_chans=3, image_size=32, input_size=64)
    out = apply_preset(x, big, train=False)
    assert out.shape == (3, 3, 64, 64)
    ref = F.interpolate(apply_preset(x, plain, train=False), size=(64, 64), mode="bilinear",
                        align_corners=False)
    torch.testing.assert_close(out, ref)
    # No padding: the border is image, not the mean pixel (which normalises to 0).
    assert out[:, :, 0, :].abs().mean() > 0.1
    # Normalising after resizing is the same (the float64 oracle): resize and the per-channel
    # affine map commute.
    mean = torch.tensor(big.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(big.std, dtype=torch.float64).view(1, 3, 1, 1)
    oracle = (F.interpolate(x.double() / 255, size=(64, 64), mode="bilinear",
                            align_corners=False) - mean) / std
    torch.testing.assert_close(out.double(), oracle, rtol=1e-5, atol=1e-5)


def test_downsizing_is_antialiased_and_train_augmentation_comes_first():
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    small = preset_for("mnist", in_chans=1, image_size=28, input_size=14)
    plain = preset_for("mnist", in_chans=1, image_size=28, input_size=28)
    ref = F.interpolate(apply_preset(x, plain, train=False), size=(14, 14), mode="bilinear",
                        align_corners=False, antialias=True)
    torch.testing.assert_close(apply_preset(x, small, train=False), ref)
    # Training: the same crop (drawn per image) then the resize.
    aug = (torch.tensor([0, 1, 2, 3]), torch.tensor([4, 3, 2, 1]), torch.zeros(4, dtype=bool))
    got = apply_preset(x, small, train=True, aug=aug)
    want = resize_batch(apply_preset(x, plain, train=True, aug=aug), 14)
    torch.testing.assert_close(got, want)
    # Grey -> RGB after the resize.
    assert apply_preset(x, small, train=False, in_chans=3).shape == (4, 3, 14, 14)


def test_streamed_presets_crop_to_the_input_size():
    big = preset_for("imagenet", in_chans=3, image_size=None, input_size=160,
                     eval_sizes=eval_sizes("resnet18"))
    assert (big.crop_size, big.resize_size, big.crop_padding) == (160, 183, 0)  # 256/224 scaled
    assert big.input_side == 160
    default = preset_for("imagenet", in_chans=3, image_size=None, input_size=None,
                         eval_sizes=eval_sizes("inception_v3"))
    assert (default.crop_size, default.resize_size) == (299, 342)
    small = preset_for("folder", in_chans=3, image_size=None, input_size=32,
                       eval_sizes=eval_sizes("lenet"))
    assert (small.crop_size, small.resize_size, small.crop_padding) == (32, 32, 4)


def test_small_streamed_input_keeps_the_whole_image():
    p = preset_for("folder", in_chans=3, image_size=None, input_size=32,
                   eval_sizes=eval_sizes("lenet"))
    img = torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8)
    ev = stream_transform(p, train=False)(img)
    # Eval: the shorter side resized to 32, then the central 32x32 (the whole height).
    from torchvision.transforms.v2 import functional as TF
    torch.testing.assert_close(ev, TF.center_crop(TF.resize(img, [32], antialias=True), [32]))
    names = [type(t).__name__ for t in stream_transform(p, train=True).transforms]
    assert names == ["Resize", "CenterCrop", "RandomCrop", "RandomHorizontalFlip"]
    assert stream_transform(p, train=True)(img).shape == (3, 32, 32)
    big = preset_for("folder", in_chans=3, image_size=None, input_size=224,
                     eval_sizes=eval_sizes("resnet18"))
    names = [type(t).__name__ for t in stream_transform(big, train=True).transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip"]


# --- DataPreset.from_dict --------------------------------------------------------------------

def test_from_dict_round_trip_through_json():
    import json

    for p in (preset_for("mnist", in_chans=1, image_size=28, input_size=32),
              preset_for("imagenet", in_chans=3, image_size=None, input_size=224,
                         eval_sizes=eval_sizes("vgg16"),
                         scale_jitter=(256, 512), lighting=0.1),
              PRESETS["cifar10"]):
        assert DataPreset.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_from_dict_reads_an_old_preset_with_pad_to():
    old = {"mean": [0.1307], "std": [0.3081], "crop_padding": 2, "hflip": False, "pad_to": 32,
           "crop_size": None, "resize_size": None, "interpolation": "bilinear",
           "rrc_scale": [0.08, 1.0], "scale_jitter": None, "lighting": 0.0}
    p = DataPreset.from_dict(old)
    assert p.resize_to == 32 and p.mean == (0.1307,) and p.rrc_scale == (0.08, 1.0)
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    assert apply_preset(x, p, train=False).shape == (2, 1, 32, 32)
    assert DataPreset.from_dict({**old, "pad_to": None}).resize_to is None


def test_from_dict_unknown_field_is_one_error():
    with pytest.raises(ConvzooError, match="unknown field.*pad_too"):
        DataPreset.from_dict({"mean": [0.5], "std": [0.5], "pad_too": 3})


# --- a folder of mixed-size images -------------------------------------------------------------

def _jpeg(h: int, w: int, rng: np.random.Generator) -> bytes:
    b = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(b, "JPEG")
    return b.getvalue()


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """train/ and val/ with classes a, b: JPEGs of 40x48 and 50x60 px (W x H)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for c in ("a", "b"):
            for i in range(n):
                h, w = (48, 40) if i % 2 else (60, 50)
                path = tmp_path / split / c / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_jpeg(h, w, rng))
    return tmp_path


@pytest.mark.parametrize(("model", "requested", "side"), [("lenet", None, 32),
                                                          ("resnet18", 48, 48)])
def test_mixed_size_folder_is_streamed_at_the_resolved_size(mixed_folder, model, requested,
                                                            side):
    s = load_splits("folder", mixed_folder)
    assert s.streamed and isinstance(s.train, FolderDataset) and s.image_size is None
    size, reason = resolve_input_size(model, image_size=s.image_size, requested=requested,
                                      weights_size=None)
    assert size == side and reason.startswith(f"input {side} px")
    preset = preset_for("folder", in_chans=3, image_size=None, input_size=size,
                        eval_sizes=eval_sizes(model))
    train = list(make_loader(s.train, preset, batch_size=3, train=True, workers=0, seed=0))
    assert [tuple(x.shape) for x, _ in train] == [(3, 3, side, side)] * 2 + [(2, 3, side, side)]
    ev = list(make_loader(s.test, preset, batch_size=4, train=False, workers=0))
    assert [tuple(x.shape) for x, _ in ev] == [(4, 3, side, side)]
    net = convzoo.create_model(model, num_classes=2)
    assert net(train[0][0]).shape == (3, 2)


def test_one_size_non_square_folder_is_streamed(tmp_path):
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for c in ("a", "b"):
            path = tmp_path / split / c / "0.jpg"
            path.parent.mkdir(parents=True)
            path.write_bytes(_jpeg(48, 40, rng))
    s = load_splits("folder", tmp_path)
    assert s.streamed and s.image_size is None


def test_lenet_trains_on_a_mixed_size_folder(mixed_folder, tmp_path):
    """Refused before the rule (lenet takes only 32 px); now streamed and resized to 32 px, the
    choice recorded with its reason."""
    import json

    cfg = convzoo.TrainConfig(model="lenet", data="folder", data_dir=str(mixed_folder),
                              epochs=1, max_steps=2, batch_size=4, lr=0.01,
                              out=str(tmp_path / "run"))
    result = convzoo.fit(cfg)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["input_size"] == 32
    assert config["input_size_reason"].startswith("input 32 px: lenet's default input")
    preset = DataPreset.from_dict(json.loads((result.run_dir / "preset.json").read_text()))
    assert preset.streamed and preset.input_side == 32
    assert convzoo.evaluate(result.run_dir)["n"] == 4
