"""Bad input (issue 13): one line naming the thing and what was expected, exit status 2, no
traceback, and nothing in the run directory or the data changed.

One table: each case is the argv (placeholders filled from the ``world`` of files below), a
fragment its message must contain, and what it must not say. Every case runs in-process through
``convzoo.cli.main``; those marked ``real=True`` also through the ``convzoo`` console script.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.cli import main


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    says: str  # fragment of the one-line message
    never: tuple[str, ...] = ()  # fragments it must not contain
    real: bool = False  # also through the console script in a subprocess


CASES = [
    Case("num-classes below the data's", ("train", "lenet5", "--num-classes", "5",
                                          "--max-steps", "2", "--out", "{out}"),
         "--num-classes 5 is fewer than the 10 classes", real=True),
    Case("lr-warmup-epochs inf", ("train", "lenet5", "--lr-warmup-epochs", "inf", "--out", "{out}"),
         "--lr-warmup-epochs must be a finite number"),
    Case("lr 1e308", ("train", "lenet5", "--lr", "1e308", "--out", "{out}"),
         "--lr must be a finite"),
    Case("seed too big", ("train", "lenet5", "--seed", "100000000000000000000000",
                          "--out", "{out}"), "--seed must be an integer"),
    Case("eval a 1-channel run on cifar10", ("eval", "{run}", "--data", "cifar10", "--data-dir",
                                             "{cifar}"),
         "trained for 1-channel images"),
    Case("config epochs a string", ("train", "--config", "{cfg_epochs_str}", "--out", "{out}"),
         "key 'epochs' (--epochs) must be an integer, got the string '3'"),
    Case("config null", ("train", "--config", "{cfg_null}", "--out", "{out}"), "got null"),
    Case("config bool", ("train", "--config", "{cfg_bool}", "--out", "{out}"), "got true"),
    Case("config model a list", ("train", "--config", "{cfg_list_model}", "--out", "{out}"),
         "key 'model' must be a string"),
    Case("config model_args a string", ("train", "--config", "{cfg_str_args}", "--out", "{out}"),
         "key 'model_args' must be a JSON object"),
    Case("config milestones an int", ("train", "--config", "{cfg_int_milestones}", "--out",
                                      "{out}"), "lr_milestones"),
    Case("config Infinity", ("train", "--config", "{cfg_infinity}", "--out", "{out}"),
         "key 'lr' (--lr) must be a finite number"),
    Case("config not UTF-8", ("train", "--config", "{cfg_not_utf8}", "--out", "{out}"),
         "is not valid JSON", real=True),
    Case("config nested deep", ("train", "--config", "{cfg_deep}", "--out", "{out}"),
         "nests its JSON too deeply"),
    Case("safetensors model_args not JSON", ("eval", "{bad_model_args}"),
         "metadata 'model_args' must be a JSON object"),
    Case("safetensors classes not JSON", ("eval", "{bad_classes}"),
         "metadata 'classes' must be a JSON list"),
    Case("predict reads a bad preset.json", ("predict", "{bad_preset_run}", "{digit}"),
         "preset.json: data preset field 'mean' must be 1 or 3 numbers"),
    Case("checkpoint lacks keys", ("train", "--resume", "{bad_ckpt_run}"), "lacks optimizer"),
    Case("IDX float images", ("train", "lenet5", "--data-dir", "{idx_float}", "--out", "{out}"),
         "IDX values are float32 (type code 0x0d), expected unsigned bytes", real=True),
    Case("IDX signed labels", ("train", "lenet5", "--data-dir", "{idx_signed}", "--out", "{out}"),
         "IDX values are int8 (type code 0x09), expected unsigned bytes"),
    Case("malicious .pth", ("eval", "{evil_pth}", "--model", "resnet18"),
         "it needs posix.system", never=("weights_only", "trusted"), real=True),
    Case("unreadable class folder", ("train", "lenet5", "--data", "folder", "--data-dir",
                                     "{unreadable}", "--out", "{out}"),
         "Permission denied", never=("empty class folder", "No such file")),
    Case("data dir inside an unreadable folder", ("train", "lenet5", "--data", "folder",
                                                  "--data-dir", "{locked}/data", "--out", "{out}"),
         "cannot open data dir", never=("does not exist", "No such file")),
    Case("missing .safetensors", ("eval", "{missing_safetensors}"), "does not exist",
         never=("unknown model",)),
    Case("compare a run that is not there", ("compare", "{missing_safetensors}", "--out",
                                             "{out}"), "does not exist"),
    Case("compare --out a file", ("compare", "{run}", "--out", "{digit}"),
         "is a file; expected a folder"),
    Case("experiment --out a file", ("experiment", "im2col", "--profile", "smoke", "--out",
                                     "{digit}", "--runs", "{out}"), "is a file"),
    Case("experiment --set a bad value", ("experiment", "lenet-1998-vs-modern", "--profile",
                                          "smoke", "--set", "epochs=\"abc\"", "--out", "{out}",
                                          "--runs", "{out}/runs"),
         "key 'epochs' (--epochs) must be an integer"),
    Case("report --images -3", ("report", "{run}", "--images", "-3", "--out", "{out}"),
         "--images must be >= 0"),
    Case("a 20000x20000 PNG in a training folder", ("train", "lenet5", "--data", "folder",
                                                    "--data-dir", "{bomb}", "--out", "{out}"),
         "huge.png: image is 20000x20000 = 400,000,000 pixels, more than the limit"),
    Case("symlink loop in a class folder", ("train", "lenet5", "--data", "folder", "--data-dir",
                                            "{loop}", "--out", "{out}"), "a loop"),
    Case("--sync-bn in one CPU process", ("train", "lenet5", "--sync-bn", "--out", "{out}"),
         "--sync-bn needs CUDA devices"),
    Case("predict a 20000x20000 PNG", ("predict", "{run}", "{huge_png}"),
         "more than the limit of 67,108,864", real=True),
    # issue 27: the archive's stem was the cache entry's name, so `...tar.gz` extracted into
    # $CONVZOO_CACHE/.. and emptied it (the sentinels of test_bad_input_in_process).
    Case("archive named ...tar.gz", ("train", "lenet5", "--data", "folder", "--data-dir",
                                     "{arch_dots}", "--out", "{out}"),
         "...tar.gz has no 'val' sub-folder", never=("archives",), real=True),
    Case("archive named .tar.gz", ("train", "lenet5", "--data", "folder", "--data-dir",
                                   "{arch_hidden}", "--out", "{out}"),
         "/.tar.gz has no 'val' sub-folder", never=("archives",)),
    Case("archive named folders.tar.gz", ("data", "info", "{arch_folders}"),
         "folders.tar.gz has a 'train' sub-folder but none of val", never=("archives",)),
    Case("truncated .tar.gz", ("train", "lenet5", "--data", "folder", "--data-dir",
                               "{arch_truncated}", "--out", "{out}"),
         "cannot extract data archive", never=("archives",)),
    # issue 27: weights metadata and state dicts are checked once, in read_weights
    Case("weights input_size 'abc'", ("eval", "{w_isize_abc}"),
         "metadata 'input_size' must be an integer in [1, 4096] (pixels), got \"abc\""),
    Case("weights input_size -5", ("predict", "{w_isize_neg}", "{digit}"),
         "metadata 'input_size' must be an integer in [1, 4096] (pixels), got -5"),
    Case("weights input_size 10**6", ("train", "lenet5", "--weights", "{w_isize_huge}",
                                      "--out", "{out}"), "got 1000000"),
    Case("weights num_classes a string", ("export", "{w_args_str}", "--out", "{out}/m.onnx"),
         "metadata 'model_args' 'num_classes' must be an integer >= 1, got \"x\""),
    Case("weights model_args of 800 TB", ("eval", "{w_args_huge}"),
         "model 'mlp3_mnist' with hidden=10000000", never=("Traceback",)),
    Case(".pth of ints", ("train", "lenet5", "--weights", "{w_ints_pth}", "--out", "{out}"),
         "'classifier.1.bias' is of type int, expected a tensor"),
    Case("weights with NaN", ("predict", "{w_nan}", "{digit}"), "holds NaN or infinite values"),
    Case("weights naming 3 classes for 10 outputs", ("eval", "{w_classes3}"),
         "'classes' names 3 classes but 'model_args' builds 10 outputs"),
    Case("random .pth", ("eval", "{w_random_pth}", "--model", "lenet5"),
         "it is not a PyTorch file, or it is truncated or damaged", never=("weights_only",)),
    Case("truncated .pth", ("eval", "{w_trunc_pth}", "--model", "lenet5"),
         "failed reading zip archive", never=("weights_only", "If you are seeing")),
    Case("safetensors named .pth", ("eval", "{w_st_pth}", "--model", "lenet5"),
         "it is a safetensors file; name it .safetensors", never=("weights_only",)),
    # checkpoints
    Case("checkpoint without config", ("train", "--resume", "{ck_noconfig}"), "lacks config"),
    Case("checkpoint with empty RNG states", ("train", "--resume", "{ck_emptyrng}"),
         "rng must be a list of one RNG state per process"),
    Case("checkpoint epoch a string", ("train", "--resume", "{ck_epochstr}"),
         "epoch must be an integer >= 1, got str '3'"),
    Case("checkpoint RNG state of 3 bytes", ("train", "--resume", "{ck_rngbad}"),
         "the RNG state of process 0 is damaged"),
    Case("hostile checkpoint to --resume", ("train", "--resume", "{ck_evil}"),
         "it needs posix.system", never=("weights_only",), real=True),
    # sizes that cannot be allocated, refused before anything is built
    Case("--num-classes 10**9", ("train", "lenet5", "--num-classes", "1000000000", "--out",
                                 "{out}"), "has 85,000,060,856 parameters as float32",
         real=True),
    Case("--in-chans 10**8", ("train", "lenet5", "--in-chans", "100000000", "--out", "{out}"),
         "a batch of 64 images of 100000000x28x28 as float32"),
    Case("--model-arg huge width", ("train", "mlp3_mnist", "--model-arg", "hidden=10000000",
                                    "--out", "{out}"), "GiB, more than this machine's"),
    Case("--threads 10**6", ("train", "lenet5", "--threads", "1000000", "--out", "{out}"),
         "--threads must be in [1, "),
    Case("weights naming 3 classes, no num_classes", ("eval", "{w_classes3_noargs}"),
         "name 3 classes in their metadata but model 'lenet5' has 10 outputs"),
    # run directories with text where numbers belong
    Case("metrics.csv with text, report", ("report", "{run_metrics_text}", "--out", "{out}"),
         "metrics.csv: line 2, column 'test_top1_acc' holds 'abc', expected a number"),
    Case("metrics.csv with text, compare", ("compare", "{run_metrics_text}", "{run}", "--out",
                                            "{out}"), "holds 'abc', expected a number"),
    Case("final.json with text, compare", ("compare", "{run_final_text}", "{run}", "--out",
                                           "{out}"), "'top1_acc' must be a number, got \"abc\""),
    # data files
    Case("val_labels.txt holding '²', train", ("train", "lenet5", "--data", "imagenet",
                                               "--data-dir", "{inet_sup}", "--out", "{out}"),
         "label '²' is neither a known wnid nor a class index"),
    Case("val_labels.txt holding '²', data info", ("data", "info", "imagenet", "--data-dir",
                                                   "{inet_sup}"), "label '²' is neither"),
    Case("val_labels.txt naming a file twice", ("train", "lenet5", "--data", "imagenet",
                                                "--data-dir", "{inet_dup}", "--out", "{out}"),
         "val_labels.txt:3: ILSVRC2012_val_00000001.JPEG is listed a second time"),
    Case("IDX training file of 0 images", ("train", "lenet5", "--data-dir", "{idx_empty}",
                                           "--out", "{out}"),
         "train-images-idx3-ubyte holds 0 images"),
    Case("IDX of 0x0 images", ("train", "lenet5", "--data-dir", "{idx_side0}", "--out", "{out}"),
         "train-images-idx3-ubyte: its images are 0x0 pixels; expected at least 2"),
    Case("IDX of 1x1 images", ("train", "lenet5", "--data-dir", "{idx_side1}", "--out", "{out}"),
         "train-images-idx3-ubyte: its images are 1x1 pixels"),
    Case("1 kB JPEG declaring 30000x30000", ("train", "lenet5", "--data", "folder", "--data-dir",
                                             "{jpeg_bomb}", "--out", "{out}"),
         "bomb.jpg: image is 30000x30000 = 900,000,000 pixels, more than the limit"),
    # options that would do nothing
    Case("--lr-milestones with cosine", ("train", "lenet5", "--lr-milestones", "3", "--out",
                                         "{out}"),
         "--lr-milestones does nothing with --lr-scheduler cosine (only multistep uses it)"),
    Case("--ema-decay without --ema", ("train", "lenet5", "--ema-decay", "0.99", "--out", "{out}"),
         "--ema-decay does nothing without --ema"),
    Case("--rmsprop-alpha with SGD", ("train", "lenet5", "--rmsprop-alpha", "0.5", "--out",
                                      "{out}"), "--rmsprop-alpha does nothing with --opt sgd"),
    Case("--weights with --resume", ("train", "--resume", "{run}", "--weights", "lenet5:mnist"),
         "--weights does nothing with --resume"),
    # values and names
    Case("export --atol nan", ("export", "{run}", "--out", "{out}/m.onnx", "--atol", "nan"),
         "--atol must be a finite number >= 0, got nan"),
    Case("export --atol -1", ("export", "{run}", "--out", "{out}/m.onnx", "--atol", "-1"),
         "--atol must be a finite number >= 0, got -1.0"),
    Case("a 200,000-character model name", ("summary", "m" * 200_000),
         "is 200,000 characters long", never=("m" * 100,)),
    Case("a 200,000-character data dir", ("train", "lenet5", "--data-dir", "d" * 200_000,
                                          "--out", "{out}"),
         "is 200,000 characters long", never=("d" * 100,)),
]


@dataclass(frozen=True)
class ApiCase:
    id: str
    call: Callable[[dict[str, Path]], Any]  # given the world of files
    says: str


def _api():
    import convzoo

    return convzoo


API_CASES = [  # issue 27: the Python API raises ConvzooError naming the argument
    ApiCase("evaluate of a 200,000-character path", lambda w: _api().evaluate("x" * 200_000),
            "x... (200,000 characters) is not a run directory, weights file or model:tag"),
    ApiCase("create_model(None)", lambda w: _api().create_model(None),
            "create_model: the model name must be a string such as 'lenet5', got NoneType"),
    ApiCase("create_model num_classes '3'", lambda w: _api().create_model(
        "lenet5", num_classes="3"), "num_classes must be an integer >= 1, got '3'"),
    ApiCase("create_model num_classes 10**9", lambda w: _api().create_model(
        "lenet5", num_classes=10**9), "has 85,000,060,856 parameters as float32"),
    ApiCase("create_model 200,000-character name", lambda w: _api().create_model("m" * 200_000),
            "... (200,000 characters)"),
    ApiCase("fit(None)", lambda w: _api().fit(None),
            "fit: expected a TrainConfig (or a dict of its fields), got NoneType"),
    ApiCase("fit(dict) checked as a config", lambda w: _api().fit({"model": "lenet5",
                                                                  "epochs": "2"}),
            "key 'epochs' (--epochs) must be an integer, got the string '2'"),
    ApiCase("evaluate(batch_size=0)", lambda w: _api().evaluate(w["run"], batch_size=0),
            "evaluate: batch_size must be an integer >= 1, got 0"),
    ApiCase("read_weights(None)", lambda w: _api().read_weights(None),
            "read_weights: path must be a file path"),
    ApiCase("model_info(None)", lambda w: _api().model_info(None),
            "a model name must be a string, got NoneType"),
    ApiCase("list_models(5)", lambda w: _api().list_models(5),
            "list_models: pattern must be a glob string"),
    ApiCase("load_trained of a .pth of nested strings", lambda w: _api().load_trained(
        w["w_nested_pth"], model="lenet5"), "'classifier.1.bias' is of type dict, expected a"),
]


def _idx(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _mnist_dir(root: Path, images: tuple[np.ndarray, int], labels: tuple[np.ndarray, int]) -> Path:
    root.mkdir()
    for split in ("train", "t10k"):
        (root / f"{split}-images-idx3-ubyte").write_bytes(_idx(*images))
        (root / f"{split}-labels-idx1-ubyte").write_bytes(_idx(*labels))
    return root


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / cls / f"{i}.png")
    return root


def _weights_and_checkpoints(root: Path, run: Path) -> dict[str, Path]:
    """Weights files and run copies with damaged checkpoints (issue 27)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    root.mkdir()
    w = {}
    with safe_open(str(run / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    state = load_file(run / "model.safetensors")
    first = next(iter(state))
    nan = {**state, first: torch.full_like(state[first], float("nan"))}
    for key, changes, tensors in [
            ("w_isize_abc", {"input_size": '"abc"'}, state),
            ("w_isize_neg", {"input_size": "-5"}, state),
            ("w_isize_huge", {"input_size": "1000000"}, state),
            ("w_args_str", {"model_args": '{"num_classes": "x"}'}, state),
            ("w_args_huge", {"model": "mlp3_mnist", "model_args": '{"hidden": 10000000}'}, state),
            ("w_classes3", {"classes": '["a", "b", "c"]'}, state),
            ("w_nan", {}, nan)]:
        w[key] = root / f"{key}.safetensors"
        save_file(tensors, w[key], metadata={**meta, **changes})
    w["w_ints_pth"] = root / "ints.pth"
    torch.save({k: 3 for k in state}, w["w_ints_pth"])
    w["w_nested_pth"] = root / "nested.pth"
    torch.save({k: {"a": ["x"]} for k in state}, w["w_nested_pth"])
    w["w_random_pth"] = root / "random.pth"
    w["w_random_pth"].write_bytes(np.random.default_rng(1).bytes(1000))
    torch.save(state, root / "whole.pth")
    w["w_trunc_pth"] = root / "truncated.pth"
    w["w_trunc_pth"].write_bytes((root / "whole.pth").read_bytes()[:500])
    w["w_st_pth"] = root / "safetensors.pth"
    shutil.copy(run / "model.safetensors", w["w_st_pth"])

    def damaged(key, change):
        w[key] = root / key
        shutil.copytree(run, w[key])
        for path in (w[key] / "checkpoints").glob("*.pt"):
            blob = torch.load(path, weights_only=True)
            torch.save(change(blob), path)

    damaged("ck_noconfig", lambda b: {k: v for k, v in b.items() if k != "config"})
    damaged("ck_emptyrng", lambda b: {**b, "rng": []})
    damaged("ck_epochstr", lambda b: {**b, "epoch": "3"})
    damaged("ck_rngbad", lambda b: {**b, "rng": [{**b["rng"][0], "torch": torch.zeros(
        3, dtype=torch.uint8)}]})
    damaged("ck_evil", lambda b: {"x": _Evil()})
    return w


def _runs_and_data(root: Path, run: Path, rng) -> dict[str, Path]:
    """Run copies with text where numbers belong, and bad data sets (issue 27)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    root.mkdir()
    w = {}
    with safe_open(str(run / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    w["w_classes3_noargs"] = root / "classes3.safetensors"
    save_file(load_file(run / "model.safetensors"), w["w_classes3_noargs"], metadata={
        **meta, "classes": '["a", "b", "c"]', "model_args": '{"in_chans": 1}'})
    w["run_metrics_text"] = root / "metrics-text"
    shutil.copytree(run, w["run_metrics_text"])
    csv = w["run_metrics_text"] / "metrics.csv"
    head, first, *rest = csv.read_text().splitlines(keepends=True)
    fields = head.strip().split(",")
    values = first.rstrip("\n").split(",")
    values[fields.index("test_top1_acc")] = "abc"
    csv.write_text(head + ",".join(values) + "\n" + "".join(rest))
    w["run_final_text"] = root / "final-text"
    shutil.copytree(run, w["run_final_text"])
    final = w["run_final_text"] / "final.json"
    final.write_text(json.dumps({**json.loads(final.read_text()), "top1_acc": "abc"}))

    for key, labels in (("inet_sup", "ILSVRC2012_val_00000001.JPEG n01440764\n"
                                     "ILSVRC2012_val_00000002.JPEG \u00b2\n"),
                        ("inet_dup", "ILSVRC2012_val_00000001.JPEG n01440764\n"
                                     "ILSVRC2012_val_00000002.JPEG 1\n"
                                     "ILSVRC2012_val_00000001.JPEG 1\n")):
        w[key] = root / key
        for wnid in ("n01440764", "n01443537"):
            (w[key] / "train" / wnid).mkdir(parents=True)
            Image.new("RGB", (40, 30)).save(w[key] / "train" / wnid / "a.JPEG", format="JPEG")
        (w[key] / "val").mkdir()
        for name in ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"):
            Image.new("RGB", (40, 30)).save(w[key] / "val" / name, format="JPEG")
        (w[key] / "val" / "val_labels.txt").write_text(labels, encoding="utf-8")

    ok = (np.zeros((4, 28, 28), np.uint8), 0x08), (np.arange(4, dtype=np.uint8), 0x08)
    w["idx_empty"] = _mnist_dir(root / "idx-empty", *ok)  # a test split, and no training images
    (w["idx_empty"] / "train-images-idx3-ubyte").write_bytes(_idx(np.zeros((0, 28, 28),
                                                                            np.uint8), 0x08))
    (w["idx_empty"] / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(0, np.uint8), 0x08))
    for side in (0, 1):
        w[f"idx_side{side}"] = _mnist_dir(root / f"idx-side{side}", (np.zeros(
            (4, side, side), np.uint8), 0x08), ok[1])

    import io
    import struct as st

    buf = io.BytesIO()
    Image.new("L", (16, 16)).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    st.pack_into(">HH", jpeg, sof + 5, 30000, 30000)  # the frame header's height and width
    w["jpeg_bomb"] = _folder(root / "jpeg-bomb")
    (w["jpeg_bomb"] / "train" / "a" / "bomb.jpg").write_bytes(bytes(jpeg))
    assert len(jpeg) < 1024
    return w


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo never run",))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every file the cases read: a tiny lenet5 run, broken copies of it, bad data sets."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    import convzoo
    from convzoo.data.cifar import CIFAR10_CLASSES, write_cifar_python

    root = tmp_path_factory.mktemp("bad-inputs")
    w: dict[str, Path] = {}
    run = w["run"] = root / "run"
    convzoo.fit(convzoo.TrainConfig(model="lenet5", epochs=1, max_steps=2, batch_size=16,
                                    out=str(run), device="cpu", tensorboard=False))
    rng = np.random.default_rng(0)
    w["digit"] = root / "digit.png"
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(w["digit"])

    cifar = root / "cifar" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_python(cifar / name, rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8),
                           {"labels": rng.integers(0, 10, 4)})
    (cifar / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, protocol=2))
    w["cifar"] = cifar.parent

    configs = {"cfg_epochs_str": '{"model": "lenet5", "epochs": "3"}',
               "cfg_null": '{"model": "lenet5", "epochs": null}',
               "cfg_bool": '{"model": "lenet5", "epochs": true}',
               "cfg_list_model": '{"model": ["lenet5"]}',
               "cfg_str_args": '{"model": "lenet5", "model_args": "x"}',
               "cfg_int_milestones": '{"model": "lenet5", "lr_milestones": 3}',
               "cfg_infinity": '{"model": "lenet5", "lr": Infinity}',
               "cfg_not_utf8": b'{"model": "lenet5\xff"}',
               "cfg_deep": "[" * 100_000 + "]" * 100_000}
    for key, text in configs.items():
        w[key] = root / f"{key}.json"
        w[key].write_bytes(text if isinstance(text, bytes) else text.encode())

    with safe_open(str(run / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    state = load_file(run / "model.safetensors")
    for key in ("model_args", "classes"):
        w[f"bad_{key}"] = root / f"bad_{key}.safetensors"
        save_file(state, w[f"bad_{key}"], metadata={**meta, key: "{not json"})

    w["bad_preset_run"] = root / "bad-preset-run"
    shutil.copytree(run, w["bad_preset_run"])
    (w["bad_preset_run"] / "preset.json").write_text('{"mean": "grey", "std": [0.3]}')

    w["bad_ckpt_run"] = root / "bad-ckpt-run"
    shutil.copytree(run, w["bad_ckpt_run"])
    for path in (w["bad_ckpt_run"] / "checkpoints").glob("*.pt"):
        blob = torch.load(path, weights_only=True)
        del blob["optimizer"]
        torch.save(blob, path)

    w["idx_float"] = _mnist_dir(root / "idx-float", (rng.random((4, 28, 28), np.float32), 0x0D),
                                (np.arange(4, dtype=np.uint8), 0x08))
    w["idx_signed"] = _mnist_dir(root / "idx-signed", (np.zeros((4, 28, 28), np.uint8), 0x08),
                                 (np.array([-1, 2, 3, 4], np.int8), 0x09))
    w["evil_pth"] = root / "evil.pth"
    torch.save({"x": _Evil()}, w["evil_pth"])
    w["unreadable"] = _folder(root / "unreadable")
    w["missing_safetensors"] = root / "nope.safetensors"
    w["loop"] = _folder(root / "loop")
    os.symlink("..", w["loop"] / "train" / "a" / "up")  # train/a/up -> train: a loop
    w["huge_png"] = root / "huge.png"
    Image.new("L", (20000, 20000)).save(w["huge_png"])  # 400 Mpx, a 400 kB file
    w["bomb"] = _folder(root / "bomb")
    shutil.copy(w["huge_png"], w["bomb"] / "train" / "a" / "huge.png")
    tar = root / "archive-src"
    (tar / "train" / "a").mkdir(parents=True)  # a train split and no val
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tar / "train/a/0.png")
    (tar / "notes.txt").write_text("beside train/, so the archive's top is the data set")
    for key, name in (("arch_dots", "...tar.gz"), ("arch_hidden", ".tar.gz"),
                      ("arch_folders", "folders.tar.gz")):
        w[key] = root / key / name
        w[key].parent.mkdir()
        with tarfile.open(w[key], "w:gz") as t:
            t.add(tar / "train", "train")
            t.add(tar / "notes.txt", "notes.txt")
    w["arch_truncated"] = root / "truncated.tar.gz"
    w["arch_truncated"].write_bytes(w["arch_folders"].read_bytes()[:200])
    w.update(_weights_and_checkpoints(root / "issue27", run))
    w.update(_runs_and_data(root / "issue27-data", run, rng))
    w["locked"] = root / "locked"
    _folder(w["locked"] / "data")
    blocked = [w["unreadable"] / "train" / "b", w["locked"]]
    for path in blocked:
        os.chmod(path, 0)
    yield w
    for path in blocked:
        os.chmod(path, 0o755)


@pytest.fixture
def unreadable_for_root(world, monkeypatch):
    """chmod 000 does not stop root: then listing the class folder, or reaching into the locked
    one, fails as it would for anyone else."""
    if os.geteuid() != 0:
        return
    blocked = str(world["unreadable"] / "train" / "b")
    locked = str(world["locked"]) + os.sep
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == blocked:  # rmtree: fds
            raise PermissionError(13, "Permission denied", blocked)
        return real_scandir(path)

    def stat(path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)


def _fill(argv: tuple[str, ...], world: dict[str, Path], out: Path) -> list[str]:
    names = {k: str(v) for k, v in world.items()} | {"out": str(out)}
    return [a.format(**names) for a in argv]


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (links not followed, unreadable folders left out)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                out[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def _check(case: Case, code, err: str, before: dict, world, out: Path) -> None:
    root = world["run"].parent
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert case.says in err, err
    for bad in case.never:
        assert bad not in err, err
    assert _snapshot(root) == before, "a file of the run or the data changed"
    assert not out.exists(), f"{out} was created"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_in_process(case, world, tmp_path, capsys, monkeypatch, unreadable_for_root):
    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    # Others' files beside the cache and convzoo's own entries in it: none may be removed.
    sentinels = [tmp_path / "beside.txt", tmp_path / "cache" / "folders" / "entry.txt",
                 tmp_path / "cache" / "kept.txt"]
    for path in sentinels:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("keep")
    out = tmp_path / "out"
    before = _snapshot(world["run"].parent)
    try:
        code = main(_fill(case.argv, world, out))
    except SystemExit as e:
        code = e.code
    _check(case, code, capsys.readouterr().err, before, world, out)
    assert [p.read_text() for p in sentinels if p.is_file()] == ["keep"] * len(sentinels)


@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_bad_input_api(case, world, tmp_path, monkeypatch):
    import convzoo

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # a run made by mistake would land here, not in the repo
    before = _snapshot(world["run"].parent)
    with pytest.raises(convzoo.ConvzooError) as caught:
        case.call(world)
    message = str(caught.value)
    assert case.says in message and "\n" not in message and len(message) < 400, message
    assert _snapshot(world["run"].parent) == before
    assert list(tmp_path.iterdir()) == [], "a file was written"


def test_fit_accepts_a_dict_as_its_config(tmp_path, monkeypatch):
    import convzoo

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    result = convzoo.fit({"model": "lenet5", "epochs": 1, "max_steps": 1, "batch_size": 8,
                          "out": str(tmp_path / "run"), "device": "cpu", "tensorboard": False})
    assert result.run_dir == tmp_path / "run" and (tmp_path / "run" / "model.safetensors").is_file()


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "convzoo"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "convzoo"]


REAL = [c for c in CASES if c.real]


@pytest.mark.parametrize("case", REAL, ids=[c.id for c in REAL])
def test_bad_input_console_script(case, world, tmp_path):
    out = tmp_path / "out"
    before = _snapshot(world["run"].parent)
    env = {**os.environ, "CONVZOO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(_console_script() + _fill(case.argv, world, out), capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.stdout == ""
    _check(case, proc.returncode, proc.stderr, before, world, out)


@pytest.mark.parametrize("argv", [("list", "--json"), ("summary", "googlenet")])
def test_closed_pipe_stops_quietly(argv):
    """`convzoo list --json | head`: the reader goes away; no BrokenPipeError traceback."""
    proc = subprocess.Popen(_console_script() + list(argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.stdout.close()  # before the command has written anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


# --- the other defects: wrong answers rather than tracebacks ----------------------------------

def test_a_symlink_loop_is_followed_no_further(tmp_path, monkeypatch):
    """train/a/up -> train: os.walk followed it 40 levels deep and counted b's images as a's."""
    from convzoo.data import load_dataset

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    root = _folder(tmp_path / "loop")
    os.symlink("..", root / "train" / "a" / "up")
    os.symlink(root / "train" / "b", root / "train" / "a" / "b-again")  # b's files, labelled a
    ds = load_dataset("folder", root, "train", on_bad_file="skip")
    assert sorted(np.bincount(np.asarray(ds.labels)).tolist()) == [2, 2]
    assert sorted(Path(p).name for p, _ in ds.skipped) == ["b-again", "up"]


def test_labels_file_inside_a_flat_val_folder_is_read_not_refused(tmp_path, monkeypatch):
    from convzoo.data import load_dataset

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    val = tmp_path / "imagenet" / "val"
    val.mkdir(parents=True)
    for name in ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"):
        Image.new("RGB", (40, 30), (90, 20, 200)).save(val / name, format="JPEG")
    (val / "val_labels.txt").write_text("ILSVRC2012_val_00000001.JPEG n01440764\n"
                                        "ILSVRC2012_val_00000002.JPEG 2\n")
    ds = load_dataset("imagenet", tmp_path / "imagenet", "test")
    assert ds.labels.tolist() == [0, 2]


def test_duplicate_class_names_keep_their_own_accuracy_and_no_float_noise():
    from convzoo.engine.scoring import EvalResult

    ev = EvalResult(n=1000, loss=0.1, topk_acc={1: 0.971, 5: 0.9999}, per_class_acc=[
        0.5, 1.0, 0.25], classes=["crane", "dog", "crane"])  # ImageNet's classes 134 and 517
    d = ev.to_dict()
    assert d["per_class_acc"] == {"crane (0)": 0.5, "dog": 1.0, "crane (2)": 0.25}
    assert d["top1_err"] == 0.029 and d["top5_err"] == 0.0001  # not 0.029000000000000026
    assert repr(d["top1_err"]) == "0.029"


def test_a_1x10000_strip_is_cut_before_the_resize(monkeypatch):
    """Resizing the shorter side (1 px) of a 1x10000 strip to 256 makes 256x2,560,000 pixels
    (3.4 GB in predict); the long side is cut to twice the short one first."""
    from convzoo.analysis.loading import preset_transform
    from convzoo.data import preset_for, stream
    from convzoo.hub import eval_sizes

    seen = []
    real = stream.stream_transform

    def spy(preset, *, train):
        t = real(preset, train=train)
        return lambda x: (seen.append(tuple(x.shape)), t(x))[1]

    monkeypatch.setattr(stream, "stream_transform", spy)
    preset = preset_for("imagenet", in_chans=3, image_size=None, input_size=224,
                        eval_sizes=eval_sizes("resnet18"))
    x = preset_transform(preset, 224, 3)(Image.new("RGB", (10000, 1)))
    assert x.shape == (3, 224, 224) and seen == [(3, 1, 2)]
    x = preset_transform(preset, 224, 3)(Image.new("RGB", (300, 200)))  # ordinary: untouched
    assert seen[-1] == (3, 200, 300)


def test_run_files_hold_what_was_measured_not_float_noise(world):
    """final.json and metrics.jsonl: accuracies are counts / n; 1 - 0.5135 is stored as 0.4865,
    not 0.48650000000000004."""
    import json

    final = json.loads((world["run"] / "final.json").read_text())
    rows = [json.loads(line) for line in (world["run"] / "metrics.jsonl").read_text().splitlines()]
    values = [v for k, v in final.items() if k.endswith(("_acc", "_err")) and v is not None
              and not isinstance(v, dict)]
    values += list(final["per_class_acc"].values())
    values += [v for r in rows for k, v in r.items() if k.startswith("test_top")]
    assert len(values) > 20
    for v in values:
        assert len(repr(v)) <= 12, v  # counts / 2000 need at most 4 decimals
    assert final["top1_err"] == round(1 - final["top1_acc"], 10)


def test_a_config_json_that_is_a_list_is_a_warning_in_compare(world, tmp_path, capsys, caplog):
    """compare raised AttributeError ('list' object has no attribute 'get'); like load_trained,
    it now uses the weights' metadata, says so in one line, and still compares."""
    run = tmp_path / "config-list"
    shutil.copytree(world["run"], run)
    (run / "config.json").write_text("[1, 2]")
    assert main(["compare", str(run), str(world["run"]), "--out", str(tmp_path / "out")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "config.json is not a JSON object" in warned[0], warned
    assert (tmp_path / "out" / "compare.json").is_file()
