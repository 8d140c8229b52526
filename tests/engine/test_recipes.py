"""Every recipe: a valid config; every ImageNet recipe end to end for a few steps on a small
ImageNet-layout folder of CIFAR-10 JPEGs upscaled to 64 px (the data package's folder loader)."""

from __future__ import annotations

import io
import json
import tarfile
import types
import typing

import pytest

from convzoo.cli import main
from convzoo.engine.config import TrainConfig
from convzoo.engine.recipes import RECIPES, Recipe, recipe_config
from convzoo.errors import ConvzooError
from engine.enginehelp import CIFAR_JPG

IMAGENET_RECIPES = [n for n, r in RECIPES.items() if r.data == "imagenet"]
# Small stand-ins for the recipes' models, keeping what the recipe exercises: GoogLeNet with its
# two auxiliary heads for the recipes with auxiliary losses, resnet20 (any input size) otherwise.
STAND_IN = {
    "googlenet-imagenet": ["googlenet", "--model-arg", "aux_logits=true"],
    "inception_v3-imagenet": ["googlenet", "--model-arg", "aux_logits=true"],
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_is_a_valid_config(name):
    cfg = recipe_config(name).validate()
    assert cfg.recipe == name and cfg.model == RECIPES[name].model
    assert RECIPES[name].source


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_keys_and_types_are_train_config_fields(name):
    """Every value of every recipe names a TrainConfig field and has that field's type (an int
    is no bool, a float field takes a number, milestones are a tuple of ints)."""
    hints = typing.get_type_hints(TrainConfig)
    values = RECIPES[name].values()
    assert set(values) <= set(hints)
    for key, value in values.items():
        hint = hints[key]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if value is None:
            assert type(None) in allowed, key
            continue
        (kind,) = [a for a in allowed if a is not type(None)]
        if typing.get_origin(kind) is tuple:
            (element, _) = typing.get_args(kind)
            assert isinstance(value, tuple) and all(type(v) is element for v in value), key
        elif kind is float:
            assert type(value) in (int, float), key
        else:
            assert type(value) is kind, key
    cfg = TrainConfig.from_dict(values).validate()
    assert {k: getattr(cfg, k) for k in values} == values


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epoch": 3}, "unknown key 'epoch' (did you mean 'epochs'?)"),
        ({"epochs": "3"}, "key 'epochs' (--epochs) must be an integer"),
        ({"nesterov": 1}, "key 'nesterov' (--nesterov) must be true or false"),
        ({"lr_milestones": [3.5]}, "must be a list of integers"),
        ({"optimizer": None}, "key 'optimizer' (--opt) must be a string"),
        ({"model": "vgg11"}, "set ['model'] as Recipe arguments"),
    ],
)
def test_a_recipe_with_an_unknown_key_or_a_wrong_type_is_refused(settings, message):
    with pytest.raises(ConvzooError, match="recipe 'bad'") as e:
        Recipe(name="bad", source="-", summary="-", model="lenet5", data="mnist",
               settings=settings)
    assert message in str(e.value)


def test_paper_values():
    assert recipe_config("resnet-cifar").lr_milestones == (32_000, 48_000)
    assert recipe_config("resnet-cifar").max_steps == 64_000
    inc = recipe_config("inception_v3-imagenet")
    assert (inc.optimizer, inc.opt_eps, inc.rmsprop_alpha, inc.lr, inc.lr_gamma) == (
        "rmsprop",
        1.0,
        0.9,
        0.045,
        0.94,
    )
    assert (inc.label_smoothing, inc.clip_grad_norm, inc.aux_loss_weight) == (0.1, 2.0, 0.4)
    assert recipe_config("googlenet-imagenet").aux_loss_weight == 0.3
    assert recipe_config("densenet-cifar").lr_milestones == (150, 225)
    assert recipe_config("alexnet-imagenet").holdout > 0  # plateau watches held-out data


@pytest.fixture(scope="module")
def imagenet_folder(tmp_path_factory):
    if not CIFAR_JPG.is_file():
        pytest.skip(f"{CIFAR_JPG} not found (../shared is absent)")
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny-imagenet")
    want = {"train": 4, "test": 2}
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(CIFAR_JPG, "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if not m.isfile() or len(parts) != 3:
                continue
            split, cls, fname = parts
            if counts.get((split, cls), 0) >= want[split]:
                continue
            counts[(split, cls)] = counts.get((split, cls), 0) + 1
            img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")
            dest = root / ("train" if split == "train" else "val") / cls / fname
            dest.parent.mkdir(parents=True, exist_ok=True)
            img.resize((64, 64), Image.BILINEAR).save(dest, quality=90)
            if len(counts) == 20 and all(counts[k] >= want[k[0]] for k in counts):
                break
    return root


# The GoogLeNet stand-in for inception_v3 takes about a minute on a loaded 2-core CPU: slow.
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n == "inception_v3-imagenet" else n
    for n in IMAGENET_RECIPES
])
def test_imagenet_recipe_runs_a_few_steps(name, imagenet_folder, tmp_path):
    out = tmp_path / "run"
    model = STAND_IN.get(name, ["resnet20"])
    code = main(
        [
            "train",
            *model,
            "--recipe",
            name,
            "--data",
            "folder",
            "--data-dir",
            str(imagenet_folder),
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--no-tensorboard",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["recipe"] == name and cfg["max_steps"] == 2
    recipe = RECIPES[name].values()
    assert cfg["lr"] == recipe["lr"] and cfg["optimizer"] == recipe["optimizer"]
    final = json.loads((out / "final.json").read_text())
    assert final["steps"] == 2 and final["n"] == 20  # the 20 images of the val folder
    data = json.loads((out / "data.json").read_text())
    assert data["classes"] == 10 and data["train"] + (data["val"] or 0) == 40
