"""Finding a data set's files (convzoo.data.locate.find_data): the folder given, else the shared
copy in ../shared/data; experiments and explore find data through it alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from convzoo.data import locate
from convzoo.data.locate import CIFAR10_JPG, Found, find_data
from convzoo.errors import DataError

SRC = Path(locate.__file__).resolve().parents[1]


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """An empty ../shared/data of the test's own."""
    root = tmp_path / "shared" / "data"
    root.mkdir(parents=True)
    monkeypatch.setattr(locate, "shared_data_dirs", lambda: [root])
    return root


def test_mnist_given_shared_or_embedded(shared, tmp_path):
    assert find_data("mnist", tmp_path / "mine") == Found("mnist", tmp_path / "mine")
    assert find_data("mnist") == Found("mnist", None)  # nothing shared: the embedded subset
    (shared / "mnist").mkdir()
    (shared / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert find_data("mnist") == Found("mnist", shared / "mnist")


def test_cifar10_batches_or_jpeg_folder(shared, tmp_path):
    with pytest.raises(DataError, match=f"CIFAR-10 is needed: pass --data-dir DIR.*{CIFAR10_JPG}"):
        find_data("cifar10")
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    assert find_data("cifar10", batches) == Found("cifar10", batches)
    copy = tmp_path / "jpg" / "cifar10"
    for split in ("train", "test"):
        (copy / split / "cat").mkdir(parents=True)
    assert find_data("cifar10", tmp_path / "jpg") == Found("folder", copy, "test")
    with pytest.raises(DataError, match="not a folder or a .tar.gz of CIFAR-10"):
        find_data("cifar10", tmp_path / "missing")


def test_an_archive_is_named_by_itself_not_by_its_cache_folder(shared, tmp_path, monkeypatch):
    """Pages and messages name ../shared/data/cifar10-jpg.tar.gz, not $CONVZOO_CACHE/archives/."""
    import tarfile

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "tree" / "cifar10"
    for split in ("train", "test"):
        (tree / split / "cat").mkdir(parents=True)
        (tree / split / "cat" / "0.txt").write_text("x")
    with tarfile.open(shared / CIFAR10_JPG, "w:gz") as tar:
        tar.add(tree, arcname="cifar10")
    found = find_data("cifar10")
    assert found.data == "folder" and found.val_split == "test"
    assert found.origin == shared / CIFAR10_JPG and found.shown == shared / CIFAR10_JPG
    assert (tmp_path / "cache") in found.data_dir.parents  # the data is read from the cache
    plain = find_data("cifar10", tmp_path / "tree")
    assert plain.origin is None and plain.shown == tree


def test_other_names_take_the_folder_given(tmp_path):
    assert find_data("folder", tmp_path) == Found("folder", tmp_path)
    assert find_data("fashion-mnist") == Found("fashion-mnist", None)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_explore_and_experiments_find_data_through_data():
    service = _imports(SRC / "explore" / "service.py")
    assert not [n for n in service if "experiments" in n]
    assert "..data.locate" in service and "..data.locate" in _imports(
        SRC / "experiments" / "_common.py")
    for path in (SRC / "experiments").glob("*.py"):  # nobody else searches ../shared/data
        assert "shared_data_dirs" not in path.read_text(), path
