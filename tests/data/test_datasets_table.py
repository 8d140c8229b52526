"""One table of data sets (convzoo.data.DATASETS): a data set is added in one place, and a name
without a DataSet is refused by what it lacks, never given a mean/std of 0.5 in silence."""

from __future__ import annotations

import json

import pytest
import torch

import convzoo
from convzoo.data import (
    DATASETS,
    PRESETS,
    RESOURCES,
    SOURCES,
    DataPreset,
    DataSet,
    ImageDataset,
    load_dataset,
    preset_for,
)
from convzoo.data import downloads as download_mod
from convzoo.errors import DataError


def test_every_record_is_whole_and_the_old_names_are_its_views():
    assert list(DATASETS) == [d.name for d in DATASETS.values()]
    for name, entry in DATASETS.items():
        assert len(entry.preset.mean) == len(entry.preset.std) == entry.channels
        assert SOURCES[name] is entry.load and PRESETS[name] is entry.preset
    assert set(SOURCES) == set(PRESETS) == set(DATASETS)
    # Only the data sets with official files can be downloaded; the views are the table's.
    assert set(RESOURCES) == {n for n, d in DATASETS.items() if d.downloads}
    assert {"mnist", "cifar10", "cifar100"} <= set(RESOURCES) and "folder" not in RESOURCES
    assert download_mod.RESOURCES is RESOURCES


def test_the_embedded_mnist_matches_its_record():
    entry = DATASETS["mnist"]
    ds = load_dataset("mnist", None, "test")
    assert ds.shape == (entry.channels, entry.image_size, entry.image_size)
    assert len(ds.classes) == entry.num_classes


def test_a_name_without_a_data_set_is_refused_saying_what_is_missing():
    with pytest.raises(DataError, match=r"data set 'svhn' has no preset \(mean, std, "
                                        r"augmentation\): add a DataSet\(name='svhn', \.\.\.\) "
                                        r"to convzoo\.data\.DATASETS"):
        preset_for("svhn", in_chans=3, image_size=32)
    with pytest.raises(DataError, match="not in convzoo.data.DATASETS"):
        SOURCES["svhn"] = lambda data_dir, split, **options: None
    assert "svhn" not in DATASETS


def test_a_preset_must_fit_the_channels():
    with pytest.raises(ValueError, match="3 means for 1-channel images"):
        DataSet("grey", lambda d, s, **o: None, DataPreset(mean=(0.5,) * 3, std=(0.5,) * 3),
                channels=1, image_size=8, num_classes=2)


def test_a_data_set_added_in_one_place_trains(monkeypatch, tmp_path):
    g = torch.Generator().manual_seed(0)
    splits = {s: ImageDataset(torch.randint(0, 256, (12, 1, 28, 28), generator=g,
                                            dtype=torch.uint8), torch.arange(12) % 3,
                              ["a", "b", "c"], "tiny", "made in the test")
              for s in ("train", "test")}
    monkeypatch.setitem(DATASETS, "tiny", DataSet(
        "tiny", lambda data_dir, split, **options: splits[split],
        DataPreset(mean=(0.25,), std=(0.5,), crop_padding=1), channels=1, image_size=28,
        num_classes=3))
    assert "tiny" in SOURCES and "tiny" in PRESETS and "tiny" not in RESOURCES
    p = preset_for("tiny", in_chans=1, image_size=28, input_size=28)
    assert (p.mean, p.std, p.crop_padding) == ((0.25,), (0.5,), 1)
    result = convzoo.fit(convzoo.TrainConfig(model="lenet5", data="tiny", epochs=1, batch_size=6,
                                             out=str(tmp_path / "run"), tensorboard=False))
    saved = json.loads((result.run_dir / "preset.json").read_text())
    assert DataPreset.from_dict(saved).mean == (0.25,)
