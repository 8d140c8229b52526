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
