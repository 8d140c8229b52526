import pytest

import convzoo
from convzoo.errors import ConvzooError
from convzoo.registry import register_model


def test_list_models_glob_and_sorted():
    names = convzoo.list_models()
    assert names == sorted(names, key=convzoo.registry.natural_key)
    assert names.index("resnet18") < names.index("resnet34") < names.index("resnet101")
    assert {"lenet", "lenet5"} <= set(names)
    assert convzoo.list_models("lenet*") == ["lenet", "lenet5"]
    assert convzoo.list_models("nomatch*") == []


def test_unknown_model_suggests_close_names():
    with pytest.raises(ConvzooError, match=r"unknown model 'lenet6'.*lenet5"):
        convzoo.create_model("lenet6")


def test_unknown_model_without_close_name_points_to_list():
    with pytest.raises(ConvzooError, match="convzoo list"):
        convzoo.create_model("zzzzzzzz")


def test_duplicate_registration_fails_loudly():
    with pytest.raises(RuntimeError, match="registered twice"):
        register_model(family="lenet", paper="x", input_size=(1, 28, 28), name="lenet5")(
            lambda **kw: None
        )


def test_unknown_builder_argument_names_the_model():
    with pytest.raises(ConvzooError, match=r"'lenet5' has no argument 'depth'"):
        convzoo.create_model("lenet5", depth=3)


def test_bad_builder_value_is_a_user_error():
    with pytest.raises(ConvzooError, match="activation"):
        convzoo.create_model("lenet5", activation="swish")


@pytest.mark.parametrize("bad", [{"num_classes": 0}, {"in_chans": 0}])
def test_impossible_sizes(bad):
    with pytest.raises(ConvzooError):
        convzoo.create_model("lenet5", **bad)


def test_model_info_metadata():
    info = convzoo.model_info("lenet5")
    assert info.family == "lenet"
    assert info.input_size == (1, 28, 28)
    assert info.num_params() == 61_706
    assert "LeCun" in info.paper


def test_model_table_is_the_registry():
    # `convzoo list` prints model_table.json (no torch import); it must be what the registry
    # says now. After adding or changing a model: python -m convzoo.registry
    from convzoo._model_table import read_model_table
    from convzoo.registry import list_models, model_rows

    assert read_model_table() == model_rows(), "stale model_table.json: python -m convzoo.registry"
    assert [r["name"] for r in read_model_table("resnet*")] == list_models("resnet*")
    assert [r["name"] for r in read_model_table(pretrained=True)] == list_models(pretrained=True)


def test_convzoo_list_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, convzoo.cli; convzoo.cli.main(['list', 'lenet*']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "lenet5" in r.stdout and "61,706" in r.stdout
