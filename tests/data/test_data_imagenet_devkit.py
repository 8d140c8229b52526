"""The flat ILSVRC-2012 val folder labelled by the devkit's ground truth + meta.mat (read with
scipy.io.loadmat), and map_clsloc.txt still preferred when present."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

import convzoo.data
from convzoo.data import load_dataset
from convzoo.data.imagenet import read_meta_mat
from convzoo.errors import DataError

# The oracle for labels: the position of a wnid in the shipped class index, read directly.
INDEX = json.loads((Path(convzoo.data.__file__).parent / "imagenet_class_index.json").read_text())
WNIDS = [INDEX[str(i)][0] for i in range(len(INDEX))]
LABEL = {w: i for i, w in enumerate(WNIDS)}

# Leaf synsets (ILSVRC2012_ID 1..4, num_children 0) whose IDs are deliberately not in class-index
# order, and WordNet ancestors (IDs > 1000, num_children > 0) as in the real meta.mat, which lists
# all 1860 synsets: 1000 leaves then 860 inner nodes.
LEAVES = {1: WNIDS[999], 2: WNIDS[7], 3: WNIDS[3], 4: WNIDS[500]}
INNER = [(1001, "n00001740", 2), (1002, "n00002684", 3)]  # entity, physical object
GROUND_TRUTH = [2, 3, 1, 4]  # for ILSVRC2012_val_00000001..4 in sorted order
EXPECTED = [LABEL[LEAVES[i]] for i in GROUND_TRUTH]

FIELDS = ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
          "wordnet_height", "num_train_images")


def _meta_mat(path: Path, leaves: dict[int, str] = LEAVES, inner=INNER, fields=FIELDS) -> Path:
    """A meta.mat shaped like the devkit's: ``synsets`` a (N, 1) struct array whose numeric
    fields are 1x1 matrices and strings char arrays."""
    rows = [(i, w, 0) for i, w in leaves.items()] + list(inner)
    synsets = np.zeros((len(rows), 1), dtype=[(f, object) for f in fields])
    for k, (sid, wnid, n_children) in enumerate(rows):
        values = {
            "ILSVRC2012_ID": np.array([[sid]], dtype=np.uint16),
            "WNID": np.array([wnid]),
            "words": np.array([f"synset {sid}"]),
            "gloss": np.array(["a gloss"]),
            "num_children": np.array([[n_children]], dtype=np.uint16),
            "children": np.arange(1, n_children + 1, dtype=np.uint16).reshape(1, -1)
            if n_children else np.zeros((0, 0)),
            "wordnet_height": np.array([[1 if n_children else 0]], dtype=np.uint8),
            "num_train_images": np.array([[0 if n_children else 1300]], dtype=np.uint16),
        }
        for f in fields:
            synsets[k, 0][f] = values[f]
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"synsets": synsets})
    return path


def _val_folder(root: Path, n: int = 4) -> None:
    rng = np.random.default_rng(0)
    (root / "val").mkdir(parents=True)
    for i in range(1, n + 1):
        b = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(b, "JPEG")
        (root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG").write_bytes(b.getvalue())


def _ground_truth(folder: Path, ids=GROUND_TRUTH) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ILSVRC2012_validation_ground_truth.txt"
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


# (folder of the ground truth, folder of meta.mat), relative to the data root. Not inside val/:
# the flat val folder's scan takes every file there for an image.
LAYOUTS = {
    "devkit": ("ILSVRC2012_devkit_t12/data", "ILSVRC2012_devkit_t12/data"),
    "root": (".", "."),
    "data-sibling": (".", "data"),
    "gt-in-root-devkit-beside": (".", "ILSVRC2012_devkit_t12/data"),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_meta_mat_gives_the_labels(tmp_path, layout):
    gt_dir, meta_dir = LAYOUTS[layout]
    _val_folder(tmp_path)
    _ground_truth(tmp_path / gt_dir)
    _meta_mat(tmp_path / meta_dir / "meta.mat")
    ds = load_dataset("imagenet", tmp_path, "test")
    assert ds.labels.tolist() == EXPECTED
    assert [Path(p).name for p in ds.paths] == [f"ILSVRC2012_val_{i:08d}.JPEG"
                                                for i in range(1, 5)]
    assert EXPECTED == [7, 3, 999, 500]


def test_read_meta_mat_keeps_only_leaves(tmp_path):
    mapping = read_meta_mat(_meta_mat(tmp_path / "meta.mat"))
    assert mapping == {str(i): w for i, w in LEAVES.items()}
    # A single synset: loadmat(squeeze_me=True) gives a 0-d struct array.
    one = read_meta_mat(_meta_mat(tmp_path / "one.mat", leaves={1: WNIDS[42]}, inner=[]))
    assert one == {"1": WNIDS[42]}


def test_map_clsloc_is_preferred_over_meta_mat(tmp_path):
    devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    _val_folder(tmp_path)
    _ground_truth(devkit)
    _meta_mat(devkit / "meta.mat")  # valid, but maps the IDs differently
    other = {1: WNIDS[10], 2: WNIDS[20], 3: WNIDS[30], 4: WNIDS[40]}
    (devkit / "map_clsloc.txt").write_text("".join(f"{w} {i} name_{i}\n" for i, w in other.items()))
    ds = load_dataset("imagenet", tmp_path, "test")
    assert ds.labels.tolist() == [20, 30, 10, 40]
    # map_clsloc.txt in the root is taken before meta.mat beside the ground truth.
    (devkit / "map_clsloc.txt").rename(tmp_path / "map_clsloc.txt")
    (devkit / "meta.mat").write_bytes(b"not a mat file")  # would fail if it were read
    assert load_dataset("imagenet", tmp_path, "test").labels.tolist() == [20, 30, 10, 40]


@pytest.mark.parametrize("content", [b"", b"garbage" * 20, b"MATLAB 5.0 MAT-file" + b"\0" * 200])
def test_corrupt_meta_mat_names_the_file(tmp_path, content):
    devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    _val_folder(tmp_path)
    _ground_truth(devkit)
    (devkit / "meta.mat").write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read .*meta\.mat as a MATLAB v5 \.mat file"):
        load_dataset("imagenet", tmp_path, "test")


def test_meta_mat_without_the_fields(tmp_path):
    devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    _val_folder(tmp_path)
    _ground_truth(devkit)
    _meta_mat(devkit / "meta.mat", fields=("ILSVRC2012_ID", "WNID", "words"))
    with pytest.raises(DataError, match=r"meta\.mat: expected a 'synsets' struct array .* "
                                        "missing num_children"):
        load_dataset("imagenet", tmp_path, "test")
    scipy.io.savemat(devkit / "meta.mat", {"classes": np.arange(3)})
    with pytest.raises(DataError, match=r"meta\.mat: .*no 'synsets' variable"):
        load_dataset("imagenet", tmp_path, "test")


@pytest.mark.parametrize("bad_id", [1001, 7])  # an inner synset, an ID absent from the file
def test_ground_truth_id_not_a_leaf_of_meta_mat(tmp_path, bad_id):
    devkit = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    _val_folder(tmp_path)
    _ground_truth(devkit, [2, 3, bad_id, 4])
    _meta_mat(devkit / "meta.mat")
    with pytest.raises(DataError, match=rf"ground_truth\.txt:3: ILSVRC2012_ID '{bad_id}' is not a "
                                        r"leaf class .* of .*meta\.mat"):
        load_dataset("imagenet", tmp_path, "test")


def test_neither_map_clsloc_nor_meta_mat(tmp_path):
    _val_folder(tmp_path)
    _ground_truth(tmp_path / "ILSVRC2012_devkit_t12" / "data")
    with pytest.raises(DataError, match="map_clsloc.txt .* or the devkit's meta.mat is needed"):
        load_dataset("imagenet", tmp_path, "test")
