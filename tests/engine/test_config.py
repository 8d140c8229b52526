"""TrainConfig: the fields declared once (help, flags, choices in their metadata), values from
JSON checked against the field types (one ConvzooError line naming the key, never a traceback),
ranges refused, and a hypothesis fuzz over config files."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convzoo.engine.config import (
    AMP_MODES,
    DERIVED_KEYS,
    OPTIMIZERS,
    SCHEDULERS,
    TrainConfig,
    check_values,
    options,
)
from convzoo.errors import ConvzooError

OPTIONS = {o.name: o for o in options()}


def test_every_field_declares_its_help_and_distinct_flags():
    assert set(OPTIONS) == set(TrainConfig.__dataclass_fields__)
    flags = [f for o in options() for f in o.flags]
    assert len(flags) == len(set(flags)) and all(f.startswith("--") for f in flags)
    for o in options():
        assert len(o.help) >= 10, o.name
    # The flags that differ from --field-name (torchvision's reference names) and the fields
    # that are no flag (the positional model, --recipe and --model-arg handle them).
    assert OPTIONS["optimizer"].flags == ("--opt",)
    assert OPTIONS["wd"].flags == ("--wd", "--weight-decay")
    assert OPTIONS["lr_step_epochs"].flags == ("--lr-step-size",)
    assert {o.name for o in options() if not o.flags} == {"model", "recipe", "model_args"}


def test_the_choices_are_the_module_tuples():
    assert OPTIONS["optimizer"].choices is OPTIMIZERS
    assert OPTIONS["lr_scheduler"].choices is SCHEDULERS
    assert OPTIONS["amp"].choices is AMP_MODES


@pytest.mark.parametrize("name", [o.name for o in options() if o.choices])
def test_validate_refuses_a_value_outside_the_declared_choices(name):
    o = OPTIONS[name]
    with pytest.raises(ConvzooError) as e:
        TrainConfig(model="lenet5", **{name: "nope"}).validate()
    assert str(e.value) == f"{o.label} must be one of {', '.join(o.choices)}, got 'nope'"


def test_the_defaults_are_a_valid_config_of_the_declared_types():
    cfg = TrainConfig(model="lenet5").validate()
    assert check_values(cfg.to_dict()) == {**cfg.to_dict(), "lr_milestones": ()}


# The wrong types of issue 13, each: the values, then the fragment of the one-line message.
WRONG_TYPES = [
    ({"epochs": "3"}, "key 'epochs' (--epochs) must be an integer, got the string '3'"),
    ({"epochs": None}, "key 'epochs' (--epochs) must be an integer, got null"),
    ({"batch_size": True}, "key 'batch_size' (--batch-size) must be an integer, got true"),
    ({"epochs": 3.0}, "key 'epochs' (--epochs) must be an integer, got 3.0"),
    ({"nesterov": 1}, "key 'nesterov' (--nesterov) must be true or false, got 1"),
    ({"model": ["lenet5"]}, "key 'model' must be a string, got ['lenet5']"),
    ({"model": None}, "key 'model' must be a string, got null"),
    ({"model_args": "tanh"}, "key 'model_args' must be a JSON object, got the string 'tanh'"),
    ({"lr_milestones": 30}, "key 'lr_milestones' (--lr-milestones) must be a list of integers"),
    ({"lr_milestones": [1, "2"]}, "must be a list of integers"),
    ({"lr": math.inf}, "key 'lr' (--lr) must be a finite number, got inf"),
    ({"lr": math.nan}, "key 'lr' (--lr) must be a finite number, got nan"),
    ({"lr": 1e308}, "key 'lr' (--lr) must be a finite number of magnitude at most 3.4e+38"),
    ({"seed": 10**23}, "key 'seed' (--seed) must be an integer that fits in 64 bits"),
    ({"data_dir": 5}, "key 'data_dir' (--data-dir) must be a string or null, got 5"),
    ({"out": ""}, "key 'out' (--out) must be a string or null (non-empty"),
    ({"model_args": {"a": [[[[[[[[[1]]]]]]]]]}}, "must be a JSON object nested at most 8 deep"),
    ({"epoch": 3}, "unknown key 'epoch' (did you mean 'epochs'?)"),
]


@pytest.mark.parametrize(("values", "fragment"), WRONG_TYPES)
def test_from_dict_names_the_key_and_the_expected_type(values, fragment):
    with pytest.raises(ConvzooError) as e:
        TrainConfig.from_dict({"model": "lenet5", **values})
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("config: ")


def test_from_dict_converts_json_forms_and_drops_derived_keys():
    cfg = TrainConfig.from_dict({"model": "lenet5", "lr": 1, "lr_milestones": [2, 4],
                                 "world_size": 2, "input_size_reason": "why"})
    assert cfg.lr == 1.0 and type(cfg.lr) is float and cfg.lr_milestones == (2, 4)
    assert set(DERIVED_KEYS) >= {"world_size", "input_size_reason"}


@pytest.mark.parametrize(("text", "fragment"), [
    (b'{"model": "lenet5", "epochs": "3"}', "key 'epochs' (--epochs) must be an integer"),
    (b'{"model": "lenet5", "lr": Infinity}', "key 'lr' (--lr) must be a finite number, got inf"),
    (b'{"model": "lenet5", "data": "\xff\xfe"}', "is not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nests its JSON too deeply"),
    (b'{"seed": ' + b"9" * 5000 + b"}", "is not valid JSON"),
    (b'["model", "lenet5"]', "must hold a JSON object"),
    (b"{", "is not valid JSON"),
])
def test_from_file_refuses_bad_json_in_one_line_naming_the_file(tmp_path, text, fragment):
    path = tmp_path / "config.json"
    path.write_bytes(text)
    with pytest.raises(ConvzooError) as e:
        TrainConfig.from_file(path)
    assert fragment in str(e.value) and str(path) in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_classes": 0}, "--num-classes must be >= 1, got 0"),
    ({"in_chans": 0}, "--in-chans must be >= 1, got 0"),
    ({"seed": -1}, "--seed must be in [0, 2**32), got -1"),
    ({"seed": 2**32}, f"--seed must be in [0, 2**32), got {2**32}"),
    ({"lr_warmup_epochs": math.inf}, "(--lr-warmup-epochs) must be a finite number, got inf"),
    ({"epochs": "3"}, "TrainConfig: key 'epochs' (--epochs) must be an integer"),
    ({"lr_milestones": (-1, 3), "lr_scheduler": "multistep"}, "--lr-milestones must be >= 0"),
    ({"plateau_max_drops": -1}, "--plateau-max-drops must be >= 0, got -1"),
])
def test_validate_refuses_out_of_range_values(changes, message):
    with pytest.raises(ConvzooError) as e:
        TrainConfig(model="lenet5", **changes).validate()
    assert message in str(e.value)


def test_the_largest_seed_is_accepted():
    assert TrainConfig(model="lenet5", seed=2**32 - 1).validate().seed == 2**32 - 1


# --- fuzz: any JSON in a config file is a valid TrainConfig or one ConvzooError line ----------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
# Mostly plausible values for each field (its default's neighbourhood), sometimes anything.
FIELD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from([o.default for o in options() if o.name != "model"]),
    st.sampled_from([c for o in options() if o.choices for c in o.choices]),
    st.floats(0, 1), st.integers(0, 20), st.lists(st.integers(0, 100), max_size=3),
)
KEYS = st.one_of(st.sampled_from(sorted(OPTIONS)), st.sampled_from(DERIVED_KEYS),
                 st.text(max_size=8))
CONFIGS = st.one_of(
    st.dictionaries(KEYS, FIELD_VALUES, max_size=8).map(lambda d: {"model": "lenet5", **d}),
    st.dictionaries(KEYS, FIELD_VALUES, max_size=8),
    JSON_VALUES,
)


def _load(text: bytes) -> TrainConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_bytes(text)
        return TrainConfig.from_dict(TrainConfig.from_file(path)).validate()


def _assert_typed(cfg: TrainConfig) -> None:
    """Every field of ``cfg`` holds its declared type (ints are no bools, floats finite)."""
    for o in options():
        value = getattr(cfg, o.name)
        if value is None:
            assert o.optional, o.name
        elif o.sequence:
            assert isinstance(value, tuple) and all(type(v) is o.kind for v in value), o.name
        elif o.kind is float:
            assert type(value) is float and math.isfinite(value), o.name
        else:
            assert type(value) is o.kind, o.name


def _config_or_one_error_line(text: bytes) -> None:
    try:
        cfg = _load(text)
    except ConvzooError as e:
        assert "\n" not in str(e) and str(e)
    else:
        _assert_typed(cfg)


@settings(max_examples=300, deadline=None)
@given(CONFIGS)
def test_fuzz_config_json_gives_a_config_or_one_error_line(values):
    # json.dumps writes NaN and Infinity for non-finite floats, as json.loads reads them
    _config_or_one_error_line(json.dumps(values).encode())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_fuzz_config_bytes_gives_a_config_or_one_error_line(text):
    _config_or_one_error_line(text)


def test_numpy_numbers_count_as_ints_and_floats():
    np = pytest.importorskip("numpy")
    cfg = TrainConfig.from_dict({"model": "lenet5", "epochs": np.int64(3), "lr": np.float32(0.5),
                                 "lr_milestones": [np.int32(2)]})
    assert (type(cfg.epochs), type(cfg.lr), type(cfg.lr_milestones[0])) == (int, float, int)
    assert TrainConfig(model="lenet5", epochs=np.int64(3)).validate().epochs == 3


def _just_outside(o) -> list:
    """Values just past each declared bound of option ``o`` (ints step by 1, floats by a hair)."""
    step = 1 if o.kind is int else 1e-9
    b = o.bounds
    out = []
    if "ge" in b:
        out.append(b["ge"] - step)
    if "gt" in b:
        out.append(b["gt"])
    if "le" in b:
        out.append(b["le"] + step)
    if "lt" in b:
        out.append(b["lt"])
    return [o.kind(v) for v in out]


RANGED = [o for o in options() if o.bounds]


@pytest.mark.parametrize("o", RANGED, ids=[o.name for o in RANGED])
def test_every_declared_range_is_enforced_at_its_edges(o):
    base = TrainConfig(model="lenet5")
    inside = o.default if o.default not in (None, ()) else None
    if inside is not None:
        base.replace(**{o.name: inside}).validate()  # the default lies in its own range
    for bad in _just_outside(o):
        value = (bad,) if o.sequence else bad
        with pytest.raises(ConvzooError, match=rf"^{o.label} must be .*got"):
            base.replace(**{o.name: value}).validate()


def test_ranges_are_declared_in_the_fields_not_a_second_list():
    assert len(RANGED) >= 30
    assert OPTIONS["momentum"].bounds_text() == "in [0, 1)"
    assert OPTIONS["lr"].bounds_text() == "> 0"
    assert OPTIONS["seed"].bounds_text() == "in [0, 2**32)"
    assert OPTIONS["lr_gamma"].bounds_text() == "in (0, 1]"
