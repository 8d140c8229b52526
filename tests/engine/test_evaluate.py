"""evaluate_model, THE evaluation loop: streamed folders of full-size JPEGs and in-memory data give
the same result on the same images; DDP sharding (gloo, 2 processes) equals one process;
keep_outputs, bad files, amp, channels_last, any callable model."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.data import DataPreset, FolderDataset, ImageDataset, decode_file, load_dataset
from convzoo.data.stream import stream_transform
from convzoo.engine.metrics import per_class_accuracy
from convzoo.engine.scoring import KS, evaluate_model
from convzoo.errors import DataError
from engine.enginehelp import REPO, cli_env
from fullsize.fullhelp import make_folder

PRESET = DataPreset(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop_size=64,
                    resize_size=72)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/ class folders of JPEGs of 120-220 px (3 classes, 2 val images each)."""
    return make_folder(tmp_path_factory.mktemp("jpegs")).root


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def in_memory(ds: FolderDataset) -> ImageDataset:
    """The streamed split decoded and resized/cropped as the streamed evaluation does, in memory."""
    t = stream_transform(PRESET, train=False)
    images = torch.stack([t(decode_file(p)) for p in ds.paths])
    return ImageDataset(images, ds.labels.clone(), ds.classes, ds.name, ds.source)


def _reference(model: nn.Module, ds: ImageDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(float64 logits, labels) of the whole split in one batch, normalised by hand."""
    x = ds.images.double() / 255
    mean = torch.tensor(PRESET.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(PRESET.std, dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        return copy.deepcopy(model).double()((x - mean) / std), ds.labels


def test_streamed_folder_equals_in_memory_and_a_float64_reference(folder):
    val = load_dataset("folder", folder, "test")
    assert isinstance(val, FolderDataset) and len(val) == 6
    mem = in_memory(val)
    model = _net().eval()
    streamed = evaluate_model(model, val, PRESET, batch_size=4, workers=2, keep_outputs=True)
    memory = evaluate_model(model, mem, DataPreset(mean=PRESET.mean, std=PRESET.std),
                            batch_size=5, keep_outputs=True)
    for ev in (streamed, memory):
        assert ev.n == 6 and ev.classes == ["blue", "green", "red"] and ev.skipped == []
    torch.testing.assert_close(streamed.probs, memory.probs, rtol=1e-5, atol=1e-6)
    assert torch.equal(streamed.labels, val.labels) and torch.equal(memory.labels, val.labels)
    assert streamed.topk_acc == memory.topk_acc
    assert streamed.per_class_acc == memory.per_class_acc
    # The oracle: float64 logits of the same images in one batch.
    logits, y = _reference(model, mem)
    assert streamed.loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    top = logits.topk(3, 1).indices
    for k in KS:
        expected = float((top[:, :k] == y[:, None]).any(1).double().mean())
        assert streamed.topk_acc[k] == pytest.approx(expected)
    assert streamed.per_class_acc == per_class_accuracy(logits.argmax(1), y, 3)
    torch.testing.assert_close(streamed.probs.double(), logits.softmax(1), rtol=1e-4, atol=1e-5)


def test_keep_outputs_shapes_and_without_it(folder):
    val = load_dataset("folder", folder, "test")
    ev = evaluate_model(_net(), val, PRESET, workers=0, keep_outputs=True)
    assert ev.probs.shape == (6, 3) and ev.probs.dtype == torch.float32
    assert ev.labels.shape == (6,) and ev.labels.dtype == torch.int64
    torch.testing.assert_close(ev.probs.sum(1), torch.ones(6))
    hits = (ev.probs.argmax(1) == ev.labels).double().mean()
    assert ev.topk_acc[1] == pytest.approx(float(hits))
    plain = evaluate_model(_net(), val, PRESET, workers=0)
    assert plain.probs is None and plain.labels is None and plain.loss == pytest.approx(ev.loss)
    d = plain.to_dict()
    assert d["n"] == 6 and d["top1_err"] == pytest.approx(1 - d["top1_acc"])


def test_eval_mode_restored_and_any_callable(folder):
    val = load_dataset("folder", folder, "test")
    model = _net().train()
    first = evaluate_model(model, val, PRESET, workers=0, keep_outputs=True)
    assert model.training  # restored after: dropout/batch norm were in eval mode for the call
    again = evaluate_model(model, val, PRESET, workers=0, keep_outputs=True)
    assert torch.equal(first.probs, again.probs)  # eval mode: no dropout noise
    model.eval()

    def function(x: torch.Tensor) -> torch.Tensor:
        return model(x)

    def with_aux(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return model(x), torch.zeros(len(x), 3)  # (logits, aux): scored on the logits

    for other in (function, with_aux):
        ev = evaluate_model(other, val, PRESET, workers=0, keep_outputs=True)
        assert torch.equal(ev.probs, first.probs)


def test_bad_files_are_skipped_on_streamed_data(folder, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    good = root / "val" / "green" / "green_000.jpg"
    (root / "val" / "green" / "broken.jpg").write_bytes(good.read_bytes()[:300])
    val = load_dataset("folder", root, "test", on_bad_file="skip")
    assert len(val) == 7  # the truncated file decodes badly only when read
    ev = evaluate_model(_net(), val, PRESET, batch_size=3, workers=2, keep_outputs=True)
    assert ev.n == 6 and ev.probs.shape == (6, 3)
    assert [p.rsplit("/", 1)[-1] for p, _ in ev.skipped] == ["broken.jpg"]
    assert ev.per_class_acc[1] is not None
    only_bad = val.subset(torch.tensor([i for i, p in enumerate(val.paths) if "broken" in p]))
    with pytest.raises(DataError, match="no image to evaluate"):
        evaluate_model(_net(), only_bad, PRESET, workers=0)
    strict = load_dataset("folder", root, "test")
    with pytest.raises(DataError, match="broken.jpg"):
        evaluate_model(_net(), strict, PRESET, workers=0)


def test_amp_and_channels_last(folder):
    val = in_memory(load_dataset("folder", folder, "test"))
    preset = DataPreset(mean=PRESET.mean, std=PRESET.std)
    model = _net().eval()
    base = evaluate_model(model, val, preset, keep_outputs=True)
    cl = evaluate_model(model.to(memory_format=torch.channels_last), val, preset,
                        channels_last=True, keep_outputs=True)
    torch.testing.assert_close(cl.probs, base.probs, rtol=1e-5, atol=1e-6)
    bf16 = evaluate_model(model, val, preset, amp="bf16", keep_outputs=True)
    assert bf16.probs.dtype == torch.float32
    torch.testing.assert_close(bf16.probs, base.probs, rtol=0, atol=0.05)
    assert bf16.loss == pytest.approx(base.loss, abs=0.05)


_WORKER = """
import sys
import torch
from convzoo.data import load_dataset
from convzoo.engine.distributed import setup, cleanup
from convzoo.engine.scoring import evaluate_model

torch.set_num_threads(1)
model_path, preset_path, mem_path, folder, out = sys.argv[1:]
ctx, _ = setup("cpu")
model, preset = torch.load(model_path, weights_only=False), torch.load(preset_path,
                                                                        weights_only=False)
mem = torch.load(mem_path, weights_only=False)
streamed = evaluate_model(model, load_dataset("folder", folder, "test"), preset[0], batch_size=2,
                          workers=1, ctx=ctx, keep_outputs=True)
memory = evaluate_model(model, mem, preset[1], batch_size=2, ctx=ctx, keep_outputs=True)
torch.save({"streamed": streamed, "memory": memory}, f"{out}/rank{ctx.rank}.pt")
cleanup(ctx)
"""


def test_sharded_over_two_processes_equals_one(folder, tmp_path):
    """What trainer.evaluate_sharded did: each rank scores every 2nd image, the sums are
    all-reduced (nothing padded, nothing counted twice) and every rank gets the whole result."""
    full = load_dataset("folder", folder, "test")
    mem = in_memory(full).subset(torch.arange(5))  # an odd count: ranks score 3 and 2 images
    mem_preset = DataPreset(mean=PRESET.mean, std=PRESET.std)
    model = _net().eval()
    torch.save(model, tmp_path / "model.pt")
    torch.save((PRESET, mem_preset), tmp_path / "preset.pt")
    torch.save(mem, tmp_path / "mem.pt")
    (tmp_path / "worker.py").write_text(textwrap.dedent(_WORKER))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(tmp_path / "worker.py"), *(str(tmp_path / f) for f in
                                          ("model.pt", "preset.pt", "mem.pt")), str(folder),
           str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=cli_env(),
                         cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    one = {"streamed": evaluate_model(model, full, PRESET, workers=0, keep_outputs=True),
           "memory": evaluate_model(model, mem, mem_preset, keep_outputs=True)}
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for kind, ev in got.items():
            ref = one[kind]
            assert ev.n == ref.n == len(ref.labels), kind
            assert ev.topk_acc == pytest.approx(ref.topk_acc), kind
            assert ev.loss == pytest.approx(ref.loss, rel=1e-6), kind
            assert ev.per_class_acc == pytest.approx(ref.per_class_acc), kind
            assert torch.equal(ev.labels, ref.labels), kind  # rows back in the data set's order
            torch.testing.assert_close(ev.probs, ref.probs, rtol=1e-5, atol=1e-6)


def test_fit_scores_the_test_split_once_per_epoch(tmp_path, monkeypatch):
    # The final result reuses the last epoch's scoring of the same weights: a large test split
    # (ImageNet's 50,000 images) is not scored a second time at the end.
    import json

    from convzoo import TrainConfig, fit
    from convzoo.engine import epoch
    from engine.enginehelp import shrink_mnist

    shrink_mnist(monkeypatch, 128, 50)
    sizes = []
    real = epoch.evaluate_split

    def counting(model, dataset, *a, **kw):
        sizes.append(len(dataset))
        return real(model, dataset, *a, **kw)

    monkeypatch.setattr(epoch, "evaluate_split", counting)
    result = fit(TrainConfig(model="lenet5", data="mnist", epochs=2, batch_size=64,
                             tensorboard=False, out=str(tmp_path / "run")))
    assert sizes == [50, 50]  # one per epoch, none more
    last = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert result.final["top1_acc"] == last["test_top1_acc"]


def test_an_experiment_subset_run_evaluates_on_a_folder_with_its_own_preset(tmp_path):
    """A run trained on an experiment's subset (a data source named ``xp-...``, no DataSet of
    that name) is scored on an image folder normalised as it was trained: its preset.json."""
    from torchvision.io import write_png

    from convzoo import TrainConfig, fit
    from convzoo.analysis.evaluation import evaluate
    from convzoo.data import load_dataset
    from convzoo.experiments.data import subset_source

    source = subset_source("mnist", None, n_train=64, n_test=32)
    run = fit(TrainConfig(model="lenet5", data=source.name, epochs=1, batch_size=32, in_chans=3,
                          tensorboard=False, out=str(tmp_path / "run")), source=source).run_dir
    test = load_dataset("mnist", None, "test")
    for i in range(20):
        folder = tmp_path / "imgs" / "test" / test.classes[int(test.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        write_png(test.images[i], str(folder / f"{i}.png"))
    result = evaluate(run, data="folder", data_dir=str(tmp_path / "imgs"), val_split="test")
    assert result["n"] == 20
    preset = json.loads((run / "preset.json").read_text())
    assert preset["mean"] != [0.5] * 3 and 0.0 <= result["top1_acc"] <= 1.0
