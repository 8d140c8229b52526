"""ILSVRC-2012 (ImageNet-1k): its one class list and the label formats of its validation split.

:func:`imagenet_classes` is the package's one list of the 1000 classes, ids and names together.
:func:`read_val_labels` labels a flat validation folder from whichever labels file it has
(``val_labels.txt``, Kaggle's ``LOC_val_solution.csv``, or the devkit's ground truth with
``map_clsloc.txt`` or ``meta.mat``). Reading the images themselves is :mod:`.folder`'s job.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from ..errors import DataError

IMAGENET_INDEX = Path(__file__).parent / "imagenet_class_index.json"
# The labels files read_val_labels looks for in a flat val folder (never images: a folder scan
# passes over them).
LABEL_FILES = frozenset({"val_labels.txt", "val.txt", "LOC_val_solution.csv", "map_clsloc.txt",
                         "ILSVRC2012_validation_ground_truth.txt", "meta.mat"})


def imagenet_classes() -> tuple[list[str], list[str]]:
    """(WordNet ids, names) of the 1000 ILSVRC-2012 classes in output order: the one ImageNet
    class list of the package. The ids come from ``imagenet_class_index.json``; the names are
    torchvision's (``great white shark``, ``tabby``; ``crane bird`` and ``crane`` where WordNet's
    short names repeat), the names its weights carry and every command prints. The two lists
    name the same classes in the same order (tests/test_hub.py)."""
    wnids, names = _imagenet_classes()
    return list(wnids), list(names)  # copies: the cached tuples stay as read


@functools.cache
def _imagenet_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from torchvision.models import AlexNet_Weights

    index = json.loads(IMAGENET_INDEX.read_text())
    wnids = tuple(index[str(i)][0] for i in range(len(index)))
    return wnids, tuple(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def read_val_labels(val_dir: Path, files: list[str], wnid_to_label: dict[str, int],
                    data_dir: Path) -> dict[str, int]:
    """Labels of a flat ILSVRC-2012 val folder, from the first labels file found.

    Accepted, looked for in ``val_dir`` then ``data_dir``:

    * ``val_labels.txt`` / ``val.txt``: ``FILENAME LABEL`` per line, LABEL a wnid or a 0-based
      class index (the order of imagenet_class_index.json);
    * ``LOC_val_solution.csv`` (the Kaggle copy): ``ImageId,PredictionString``, first wnid used;
    * the devkit's ``ILSVRC2012_validation_ground_truth.txt``: one 1-based ILSVRC2012_ID per
      line, for the files in sorted order, with ``map_clsloc.txt`` (``WNID ID NAME`` lines) to
      turn IDs into wnids, or else the devkit's ``meta.mat`` (looked for beside the ground-truth
      file, in a ``data/`` folder there, then in the places above; see :func:`read_meta_mat`).
    """
    places = [val_dir, data_dir, data_dir / "ILSVRC2012_devkit_t12" / "data"]
    for fname in ("val_labels.txt", "val.txt"):
        path = _find_file(places, fname)
        if path is not None:
            return _read_filename_labels(path, val_dir, files, wnid_to_label)
    path = _find_file(places, "LOC_val_solution.csv")
    if path is not None:
        return _read_kaggle_solution(path, val_dir, files, wnid_to_label)
    path = _find_file(places, "ILSVRC2012_validation_ground_truth.txt")
    if path is not None:
        return _read_devkit_ground_truth(path, val_dir, files, wnid_to_label, places, data_dir)
    raise DataError(f"{val_dir} is a flat folder of images without a labels file; expected "
                    "val_labels.txt (FILENAME LABEL), LOC_val_solution.csv, or the devkit's "
                    "ILSVRC2012_validation_ground_truth.txt with map_clsloc.txt or meta.mat")


def _find_file(places: list[Path], name: str) -> Path | None:
    """``name`` in the first of ``places`` that has it as a file, else None."""
    return next((p / name for p in places if (p / name).is_file()), None)


def _val_label(token: str, where: str, wnid_to_label: dict[str, int]) -> int:
    """The class index of a label ``token``: a wnid, or a 0-based class index."""
    if token in wnid_to_label:
        return wnid_to_label[token]
    if token.isascii() and token.isdigit() and int(token) < len(wnid_to_label):  # not "²"
        return int(token)
    raise DataError(f"{where}: label {token!r} is neither a known wnid nor a class index")


def _read_filename_labels(path: Path, val_dir: Path, files: list[str],
                          wnid_to_label: dict[str, int]) -> dict[str, int]:
    """``val_labels.txt`` / ``val.txt``: ``FILENAME LABEL`` per line."""
    names = {Path(f).name: f for f in files}
    out: dict[str, int] = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected 'FILENAME LABEL', got {line!r}")
        key = names.get(Path(parts[0]).name)
        if key is None:
            raise DataError(f"{path}:{n}: {parts[0]} is not a file of {val_dir}")
        _refuse_twice(out, key, f"{path}:{n}")
        out[key] = _val_label(parts[1], f"{path}:{n}", wnid_to_label)
    return out


def _refuse_twice(labels: dict[str, int], key: str, where: str) -> None:
    """A labels file that names one image twice (with one label or two) is a damaged file."""
    if key in labels:
        raise DataError(f"{where}: {Path(key).name} is listed a second time; a labels file "
                        f"names each image once")


def _read_kaggle_solution(path: Path, val_dir: Path, files: list[str],
                          wnid_to_label: dict[str, int]) -> dict[str, int]:
    """``LOC_val_solution.csv``: ``ImageId,PredictionString`` per line, its first wnid used."""
    stems = {Path(f).stem: f for f in files}
    out: dict[str, int] = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if n == 1 and line.lower().startswith("imageid"):
            continue
        if not line.strip():
            continue
        image_id, _, pred = line.partition(",")
        key = stems.get(image_id.strip())
        if key is None:
            raise DataError(f"{path}:{n}: {image_id} is not a file of {val_dir}")
        tokens = pred.split()
        if not tokens:
            raise DataError(f"{path}:{n}: no label in {line!r}")
        _refuse_twice(out, key, f"{path}:{n}")
        out[key] = _val_label(tokens[0], f"{path}:{n}", wnid_to_label)
    return out


def _read_devkit_ground_truth(path: Path, val_dir: Path, files: list[str],
                              wnid_to_label: dict[str, int], places: list[Path],
                              data_dir: Path) -> dict[str, int]:
    """The devkit's ``ILSVRC2012_validation_ground_truth.txt``: one ILSVRC2012_ID per line for
    the files in sorted order, turned into wnids by map_clsloc.txt or meta.mat."""
    id_to_wnid, mapping = _devkit_id_to_wnid(path, places, data_dir)
    ids = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    ordered = sorted(files, key=lambda f: Path(f).name)
    if len(ids) != len(ordered):
        raise DataError(f"{path} has {len(ids)} labels but {val_dir} has {len(ordered)} images")
    out: dict[str, int] = {}
    for n, (f, i) in enumerate(zip(ordered, ids, strict=True), 1):
        if i not in id_to_wnid:
            leaf = mapping.suffix == ".mat"
            what = "a leaf class (num_children 0) of" if leaf else "in"
            raise DataError(f"{path}:{n}: ILSVRC2012_ID {i!r} is not {what} {mapping}")
        out[f] = _val_label(id_to_wnid[i], f"{mapping}", wnid_to_label)
    return out


def _devkit_id_to_wnid(truth: Path, places: list[Path], data_dir: Path
                       ) -> tuple[dict[str, str], Path]:
    """ILSVRC2012_ID -> wnid for the ground-truth file ``truth``, and the file that maps them:
    ``map_clsloc.txt`` when found in ``places``, else the devkit's ``meta.mat``."""
    # map_clsloc.txt is preferred when present: it is plain text and needs no scipy.
    mapping = _find_file(places, "map_clsloc.txt")
    if mapping is not None:
        id_to_wnid: dict[str, str] = {}
        for n, line in enumerate(_read_text(mapping).splitlines(), 1):
            parts = line.split()
            if len(parts) < 2 or not (parts[1].isascii() and parts[1].isdigit()):
                raise DataError(f"{mapping}:{n}: expected 'WNID ID NAME', got {line!r}")
            id_to_wnid[parts[1]] = parts[0]
        return id_to_wnid, mapping
    # The devkit keeps meta.mat beside the ground truth (ILSVRC2012_devkit_t12/data/);
    # a copied ground-truth file may sit elsewhere with the devkit's data/ folder.
    meta_places = dict.fromkeys([truth.parent, truth.parent / "data", *places,
                                 *(p / "data" for p in places)])
    meta = next((p / "meta.mat" for p in meta_places if (p / "meta.mat").is_file()), None)
    if meta is None:
        raise DataError(f"{truth} gives ILSVRC2012_IDs; map_clsloc.txt (WNID ID NAME per "
                        "line) or the devkit's meta.mat is needed beside it (or in "
                        f"{data_dir / 'ILSVRC2012_devkit_t12' / 'data'}) to turn them "
                        "into classes")
    return read_meta_mat(meta), meta


META_FIELDS = ("ILSVRC2012_ID", "WNID", "num_children")


def read_meta_mat(path: Path) -> dict[str, str]:
    """ILSVRC2012_ID (as a decimal string) -> wnid, for the leaf classes of the devkit's meta.mat.

    ``meta.mat`` (MATLAB v5) holds ``synsets``, a struct array of 1860 synsets with fields
    ILSVRC2012_ID, WNID, words, gloss, num_children, children, ...; the 1000 classes of the
    challenge are the leaves (num_children == 0, IDs 1..1000), the rest are their WordNet
    ancestors and never appear in the ground truth.
    """
    import numpy as np
    from scipy.io import loadmat  # lazy: scipy is only needed for this file

    try:
        mat = loadmat(str(path), squeeze_me=True, variable_names=["synsets"])
    except Exception as e:  # loadmat raises MatReadError, ValueError, OSError, IndexError, ...
        raise DataError(f"cannot read {path} as a MATLAB v5 .mat file (the ILSVRC-2012 devkit's "
                        f"meta.mat with a 'synsets' struct array was expected): {e}") from None
    synsets = mat.get("synsets")
    names = getattr(getattr(synsets, "dtype", None), "names", None) or ()
    missing = [f for f in META_FIELDS if f not in names]
    if synsets is None or missing:
        raise DataError(f"{path}: expected a 'synsets' struct array with fields "
                        f"{', '.join(META_FIELDS)}; "
                        + ("no 'synsets' variable" if synsets is None
                           else f"missing {', '.join(missing)}"))

    def scalar(rec: np.void, field: str, n: int) -> int | str:
        v = np.asarray(rec[field])
        if v.size != 1:
            raise DataError(f"{path}: synsets({n}).{field} should hold one value, has {v.size}")
        return v.reshape(()).item()

    out: dict[str, str] = {}
    # squeeze_me turns a 1x1 struct array into a 0-d one: atleast_1d makes both iterable.
    for n, rec in enumerate(np.atleast_1d(synsets).ravel(), 1):
        try:
            leaf = int(scalar(rec, "num_children", n)) == 0
            sid = int(scalar(rec, "ILSVRC2012_ID", n))
        except (TypeError, ValueError):
            raise DataError(f"{path}: synsets({n}) has a non-numeric ILSVRC2012_ID or "
                            "num_children") from None
        wnid = scalar(rec, "WNID", n)
        if not isinstance(wnid, str):
            raise DataError(f"{path}: synsets({n}).WNID should be a string like 'n01440764', "
                            f"got {wnid!r}")
        if leaf:
            out[str(sid)] = wnid
    if not out:
        raise DataError(f"{path}: no leaf synsets (num_children == 0) in 'synsets'")
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
