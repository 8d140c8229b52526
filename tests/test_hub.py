"""torchvision's ImageNet weights through ``MODEL:imagenet`` (convzoo.hub), against a local server.

No test needs the internet: a server on 127.0.0.1 serves a generated resnet18 state dict under
a file name that carries its own SHA-256 prefix, and torchvision's enum URL of resnet18 is
replaced with the server's for the test (in-process with monkeypatch, in a subprocess by the
two lines of ``_SUBPROCESS``).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import ResNet18_Weights

from convzoo import create_model, hub
from convzoo.cli import main
from convzoo.data import imagenet_classes
from convzoo.errors import ConvzooError

SYNSETS = ["n02123045", "n02124075", "n01440764"]  # tabby, Egyptian cat, tench: 3 of 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/good/F`` the file, ``/corrupt/F`` one byte changed, ``/cut/F`` half of it, then the
    connection closed although Content-Length promised the whole."""

    body: bytes = b""
    name: str = ""
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        mode, _, name = self.path.strip("/").partition("/")
        self.hits.append(self.path)
        if name != self.name or mode not in ("good", "corrupt", "cut", "slow"):
            self.send_error(404)
            return
        body = self.body
        if mode == "corrupt":
            body = body[:-100] + bytes([body[-100] ^ 1]) + body[-99:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if mode == "slow":  # two fetches overlap for sure
            half = len(body) // 2
            self.wfile.write(body[:half])
            time.sleep(1.0)
            body = body[half:]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, file name, bytes) of a generated resnet18 state dict served on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("srv")
    torch.manual_seed(0)
    tmp = folder / "r18.pth"
    torch.save(create_model("resnet18").state_dict(), tmp)
    body = tmp.read_bytes()
    name = f"resnet18-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    handler = type("H", (_Handler,), {"body": body, "name": name, "hits": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", name, body, handler
    srv.shutdown()


@pytest.fixture
def tv(server, tmp_path, monkeypatch):
    """torchvision's resnet18 URL pointed at the server; a fresh torch.hub folder."""
    base, name, body, handler = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(hub.MIRROR_ENV, raising=False)
    value = ResNet18_Weights.IMAGENET1K_V1.value

    def point(mode: str) -> str:
        url = f"{base}/{mode}/{name}"
        monkeypatch.setattr(value, "url", url)
        return url

    point("good")
    handler.hits.clear()
    return point, tmp_path / "torch" / "hub" / "checkpoints" / name, body, handler


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _no_partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.parent.rglob("*") if p.is_file() and p.suffix != ".pth"]


def test_fetch_once_then_reuse_without_network(tv, capsys):
    point, path, body, handler = tv
    code, out, _ = cli(capsys, "weights", "fetch", "resnet18:imagenet")
    assert code == 0 and "downloaded, SHA-256 checked" in out and path.read_bytes() == body
    point("nowhere")  # a 404 if anything were fetched again
    code, out, _ = cli(capsys, "weights", "fetch", "resnet18:IMAGENET1K_V1")
    assert code == 0 and "already cached" in out and len(handler.hits) == 1
    code, out, _ = cli(capsys, "weights", "list", "resnet18", "--json")
    row = json.loads(out)[0]
    assert row["cached"] == str(path) and row["acc@1"] == pytest.approx(69.758)
    model = create_model("resnet18", pretrained=True)  # from the cache, no request
    ref = torch.load(path, weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.items())
    assert len(handler.hits) == 1


def test_corrupted_body_is_refused_and_nothing_kept(tv, capsys):
    point, path, _, _ = tv
    url = point("corrupt")
    code, _, err = cli(capsys, "weights", "fetch", "resnet18:imagenet")
    assert code == 2 and url in err and "SHA-256" in err and err.count("\n") == 1
    assert not path.exists() and not _no_partial_files(path)


def test_connection_cut_midway_leaves_no_file(tv, capsys):
    point, path, _, _ = tv
    point("cut")
    code, _, err = cli(capsys, "predict", "resnet18:imagenet", __file__)
    assert code == 2 and "stopped after" in err and str(path) in err
    assert not path.exists() and not _no_partial_files(path)


def test_offline_names_url_and_path_within_seconds(tv, capsys, monkeypatch):
    _, path, _, _ = tv
    monkeypatch.setenv(hub.MIRROR_ENV, "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    code, _, err = cli(capsys, "eval", "resnet18:imagenet")
    assert code == 2 and time.monotonic() - start < 10 and err.count("\n") == 1
    assert f"http://127.0.0.1:9/{path.name}" in err and f"put it at {path}" in err


_SUBPROCESS = """
import sys
from torchvision.models import ResNet18_Weights
ResNet18_Weights.IMAGENET1K_V1.value.url = sys.argv[1]
from convzoo.cli import main
from convzoo.data import imagenet_classes
sys.exit(main(sys.argv[2:]))
"""


def test_two_processes_fetching_at_once_end_with_one_good_file(tv, tmp_path):
    point, path, body, _ = tv
    url = point("slow")
    env = {**__import__("os").environ, "TORCH_HOME": str(tmp_path / "torch")}
    procs = [subprocess.Popen([sys.executable, "-c", _SUBPROCESS, url, "weights", "fetch",
                               "resnet18:imagenet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert path.read_bytes() == body and not _no_partial_files(path)


def test_classes_agree_with_the_shared_index_in_order():
    """The ILSVRC class index (wnid, WordNet short name) and torchvision's categories name the
    same 1000 classes in the same order; torchvision only tells apart the two repeated names."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_class_index.json"
    index = json.loads((shared if shared.is_file() else
                        Path(hub.__file__).parent / "data" / "imagenet_class_index.json"
                        ).read_text())
    wnids, cats = imagenet_classes()
    assert wnids == [index[str(i)][0] for i in range(1000)]
    assert len(index) == len(cats) == 1000
    for i in range(1000):
        short = index[str(i)][1].replace("_", " ")
        assert cats[i] == short or cats[i].startswith(short + " "), (i, short, cats[i])
    assert sum(cats[i] != index[str(i)][1].replace("_", " ") for i in range(1000)) == 2


def test_every_tag_reads_torchvisions_enum():
    """Every zoo network torchvision has weights for gets its tags; nothing else does."""
    sources = {w.source for w in hub.all_imagenet_weights()}
    for model in ("alexnet", "vgg11", "vgg19_bn", "googlenet", "inception_v3", "resnet152",
                  "densenet201"):
        assert f"{model}:IMAGENET1K_V1" in sources
    assert "resnet50:IMAGENET1K_V2" in sources and not any("cifar" in s for s in sources)
    w = hub.imagenet_weights("resnet50")
    assert w.tag == "IMAGENET1K_V2" and w.eval_sizes() == (232, 224)
    assert hub.imagenet_weights("inception_v3").eval_sizes() == (342, 299)
    assert hub.by_file_name("alexnet-owt-7be5be79.pth").model == "alexnet"
    assert hub.weights_model_args("googlenet", "imagenet") == {"transform_input": True}
    with pytest.raises(ConvzooError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        hub.imagenet_weights("resnet50", "IMAGENET1K_V9")
    with pytest.raises(ConvzooError, match="no torchvision ImageNet weights.*cifar10"):
        hub.imagenet_weights("resnet20")


@pytest.fixture
def photos(tmp_path):
    """Full-size JPEGs in the ILSVRC layout (wnid folders), 3 of the 1000 synsets."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "ilsvrc"
    for k, wnid in enumerate(SYNSETS):
        (root / "val" / wnid).mkdir(parents=True)
        for j in range(1 + (k == 0)):
            arr = (rng.random((375 + 10 * j, 500, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(root / "val" / wnid / f"img{j}.JPEG", quality=90)
    return root


def test_predict_true_class_ranks_and_errors(tv, photos, capsys):
    photo = next((photos / "val" / SYNSETS[0]).iterdir())
    code, out, _ = cli(capsys, "predict", "resnet18:imagenet", photo, "--json")
    top = json.loads(out)["predictions"][0]["top"]
    second = top[1]["class"]
    code, out, _ = cli(capsys, "predict", "resnet18:imagenet", photo, "--true-class", second)
    assert code == 0 and f"true class {second}: rank 2 of 1000" in out
    assert "top-1 … top-5 error (1, 0, 0, 0, 0)" in out
    code, out, _ = cli(capsys, "predict", "resnet18:imagenet", photo, "--true-class",
                       "n02124075", "--json")
    true = json.loads(out)["predictions"][0]["true_class"]
    assert code == 0 and true["class"] == "Egyptian cat" and true["index"] == 285
    assert true["topk_err"] == [int(true["rank"] > k) for k in range(1, 6)]
    code, _, err = cli(capsys, "predict", "resnet18:imagenet", photo, "--true-class",
                       "Abyssinian cat")
    assert code == 2 and "not one of the model's 1000 classes" in err and "Persian cat" in err


def test_torchvision_file_name_needs_no_model_flag(tv, photos, capsys):
    _, path, _, _ = tv
    assert cli(capsys, "weights", "fetch", "resnet18:imagenet")[0] == 0
    photo = next((photos / "val" / SYNSETS[1]).iterdir())
    code, by_path, _ = cli(capsys, "predict", path, photo)
    code2, by_tag, _ = cli(capsys, "predict", "resnet18:imagenet", photo)
    assert code == code2 == 0 and by_path == by_tag


def test_eval_scores_a_synset_subset_with_the_weights_transform(tv, photos):
    """Labels are the wnids' indices among the 1000 outputs, and the inputs are torchvision's
    own eval transform of the weights (the oracle): the same probabilities."""
    from PIL import Image

    from convzoo.analysis.evaluation import prepare_eval

    job = prepare_eval("resnet18:imagenet", data="imagenet", data_dir=str(photos))
    assert (job.split.preset.resize_size, job.split.preset.crop_size) == (256, 224)
    ev = job.score(batch_size=8, workers=0, keep_outputs=True)
    files = sorted((photos / "val").rglob("*.JPEG"))
    wnids = imagenet_classes()[0]
    assert sorted(ev.labels.tolist()) == sorted(wnids.index(f.parent.name) for f in files)
    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        ref = job.loaded.model(x).softmax(1)
    order = sorted(range(len(files)), key=lambda i: wnids.index(files[i].parent.name))
    got = ev.probs[torch.argsort(ev.labels, stable=True)]
    ref = ref[order]
    assert torch.allclose(got.float(), ref, atol=2e-3), (got - ref).abs().max()


@pytest.mark.parametrize("flag,n", [("--ten-crop", 10),
                                    pytest.param("--crops-144", 144, marks=pytest.mark.slow)])
def test_eval_multi_crop_from_the_weights_resize(tv, photos, capsys, flag, n):
    code, out, err = cli(capsys, "eval", "resnet18:imagenet", "--data", "imagenet",
                         "--data-dir", photos, flag, "--json", "--batch-size", "2")
    assert code == 0, err
    result = json.loads(out)
    assert result["multi_crop"]["crops"] == n and result["test_set"].endswith("(4 test images)")


def test_multi_crop_batches_are_the_weights_resize():
    from convzoo.analysis.evaluation import multi_crop

    preset = hub.imagenet_weights("inception_v3").preset()
    for crops in ("ten", "144"):
        fn, whole, _ = multi_crop(crops, preset, mirror=True)
        assert whole.crop_size == 342
        out = fn(torch.zeros(1, 3, 342, 342))
        assert {tuple(c.shape[-2:]) for c in out} == {(299, 299)}


def test_export_and_fine_tune_from_imagenet_weights(tv, tmp_path, capsys):
    _, path, _, _ = tv
    out = tmp_path / "r18.onnx"
    code, text, err = cli(capsys, "export", "resnet18:imagenet", "--out", out)
    assert code == 0 and out.is_file(), err
    folder = tmp_path / "two"
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (folder / split / c).mkdir(parents=True)
            for j in range(4):
                Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(
                    folder / split / c / f"{j}.png")
    run = tmp_path / "run"
    code, _, err = cli(capsys, "train", "resnet18", "--weights", "resnet18:imagenet",
                       "--reset-head", "--freeze-backbone", "--data", "folder", "--data-dir",
                       folder, "--epochs", "1", "--batch-size", "4", "--out", run)
    assert code == 0, err
    from convzoo.weights import read_weights

    trained = read_weights(run / "model.safetensors").state_dict
    ref = torch.load(path, weights_only=True)
    assert torch.equal(trained["conv1.weight"], ref["conv1.weight"])  # frozen, from the file
    assert trained["fc.weight"].shape == (2, 512)


def test_architectures_measures_the_accuracy_column_with_imagenet(tv, photos, tmp_path, capsys):
    """``experiment architectures --imagenet DIR``: the accuracy columns measured (here a
    resnet18 of random weights on 4 photos: whatever it scores, the column is that score), the
    quoted ones read from torchvision's enum."""
    from convzoo import evaluate

    out = tmp_path / "exp"
    code, text, err = cli(capsys, "experiment", "architectures", "--profile", "smoke",
                          "--imagenet", photos, "--out", out, "--runs", tmp_path / "runs",
                          "--mnist-dir", tmp_path / "absent-so-embedded", "--set",
                          "cifar_models=[]")
    assert code == 0, err
    record = json.loads((out / "architectures.json").read_text())
    raw = record["raw"]["resnet18"] if "raw" in record else record["measurements"]["resnet18"]
    ev = evaluate("resnet18:imagenet", data="imagenet", data_dir=str(photos), device="cpu")
    assert raw["top1_measured"] == pytest.approx(100 * ev["top1_acc"])
    assert raw["top5_measured"] == pytest.approx(100 * ev["top5_acc"]) and raw["n_val"] == 4
    assert raw["top1"] == pytest.approx(69.758)
    assert "top-1 % (measured)" in (out / "architectures.md").read_text()


def test_summary_and_visualize_take_model_imagenet(tv, tmp_path, capsys):
    code, out, _ = cli(capsys, "summary", "googlenet:imagenet")  # structure only: no download
    assert code == 0 and "torchvision's googlenet:IMAGENET1K_V1" in out and "acc@1 69.778%" in out
    code, out, err = cli(capsys, "visualize", "resnet18:imagenet", "filters", "--out",
                         tmp_path / "f.png")
    assert code == 0 and (tmp_path / "f.png").stat().st_size > 1000, err
