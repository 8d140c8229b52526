"""`convzoo explore`'s JSON/PNG API through Starlette's in-process client, and its safety: upload
caps (bytes, decoded pixels, image types), run directories only under --runs, 4xx answers after
which the server keeps serving. Numbers are checked against the library (predict_images, summary)
and PyTorch (unfold, max_pool2d) as oracles."""

from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient  # noqa: E402

from convzoo.explore import Explorer, create_app  # noqa: E402
from convzoo.explore.service import MAX_UPLOAD_BYTES, RUN_FILES  # noqa: E402
from data.imagehelp import png_header_only  # noqa: E402


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    run = runs / "lenet5-copy"
    run.mkdir()
    from convzoo.weights import shipped_weights_path

    shutil.copy(shipped_weights_path("lenet5:mnist"), run / "model.safetensors")
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "data": "mnist"}))
    (runs / "unfinished").mkdir()  # no weights: not offered
    return Explorer(runs=runs)


@pytest.fixture(scope="module")
def client(explorer):
    with TestClient(create_app(explorer), raise_server_exceptions=False) as c:
        yield c


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def mnist_digit():
    from convzoo.data import load_dataset

    ds = load_dataset("mnist", None, "test")
    return ds.images[0, 0].numpy(), int(ds.labels[0])


def test_models_lists_shipped_runs_and_random(client):
    res = client.get("/api/models").json()
    by_id = {m["id"]: m for m in res["models"]}
    assert by_id["lenet5:mnist"]["kind"] == "shipped" and by_id["lenet5:mnist"]["trained"]
    assert "resnet20:cifar10" in by_id
    assert by_id["resnet50"]["kind"] == "random" and not by_id["resnet50"]["trained"]
    assert by_id["run:lenet5-copy"]["kind"] == "run"
    assert not any(i.startswith("run:unfinished") for i in by_id)
    assert res["default"] == "lenet5:mnist"


def test_predict_upload_matches_the_library(client, tmp_path):
    from convzoo import load_trained
    from convzoo.analysis.predict import predict_images

    digit, label = mnist_digit()
    data = png(digit)
    res = client.post("/api/predict", params={"model": "lenet5:mnist"},
                      files={"image": ("digit.png", data, "image/png")})
    assert res.status_code == 200, res.text
    top5 = res.json()["top5"]
    assert len(top5) == 5 and top5[0]["class"] == str(label)
    (tmp_path / "digit.png").write_bytes(data)
    want = predict_images(load_trained("lenet5:mnist"), [tmp_path / "digit.png"]).predictions[0]
    assert [t["class"] for t in top5] == [c for c, _ in want.top]
    assert [t["prob"] for t in top5] == pytest.approx([p for _, p in want.top], abs=1e-6)


def test_test_image_answer_has_rank_and_topk_errors(client):
    samples = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"]
    assert len(samples) == 24 and {s["class"] for s in samples} >= {"0", "7"}
    s = samples[0]
    res = client.post("/api/predict", params={"model": "lenet5:mnist", "image": s["id"]}).json()
    assert res["truth"] == s["class"]
    probs = [t["prob"] for t in res["top5"]]
    assert probs == sorted(probs, reverse=True)
    rank = res["rank"]
    assert res["errors"] == {f"top{k}": int(rank > k) for k in range(1, 6)}
    img = client.get("/api/image.png", params={"image": s["id"]})
    assert img.headers["content-type"] == "image/png" and img.content.startswith(b"\x89PNG")


def test_layer_table_is_the_summary(client):
    from convzoo.analysis.summary import summarize

    info = client.get("/api/model", params={"model": "resnet20:cifar10"}).json()
    want = summarize("resnet20", (3, 32, 32))
    assert [r["name"] for r in info["layers"]] == [r.name for r in want.rows]
    assert [r["macs"] for r in info["layers"]] == [r.macs for r in want.rows]
    assert info["params"] == want.params and info["rf"] == want.rf
    assert info["first_conv"] == "conv1" or info["layers"][0]["type"] == "Conv2d"


def test_every_operation_of_forward_is_a_row_with_its_maps(client, explorer):
    # LeNet-5's F.pad: the 28x28 digit becomes the 32x32 the first convolution reads.
    info = client.get("/api/model", params={"model": "lenet5:mnist"}).json()
    pad = info["layers"][0]
    assert (pad["name"], pad["type"], pad["shape"]) == ("pad", "F.pad", [1, 32, 32])
    assert info["input"] == [1, 28, 28] and info["layers"][1]["type"] == "Conv2d"
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]
    _, _, p = explorer.trace("lenet5:mnist", s["id"])
    assert torch.equal(p.calls[0].output, F.pad(p.x[None], (2, 2, 2, 2)))
    assert torch.equal(p.calls[1].input, p.calls[0].output)
    # resnet20's residual add: its own row, whose output is bn2's plus the shortcut, and bn2's
    # kept output is bn2's own (the add is in place: `out += identity`).
    info = client.get("/api/model", params={"model": "resnet20:cifar10"}).json()
    types = {r["name"]: r["type"] for r in info["layers"]}
    assert types["layer1.0.add"] == "Tensor.add_" and types["flatten"] == "torch.flatten"
    _, _, p = explorer.trace("resnet20:cifar10", s["id"])
    calls = {c.name: c for c in p.calls}  # (layer1.0.relu runs twice: the dict keeps the last)
    add, bn2 = calls["layer1.0.add"], calls["layer1.0.bn2"]
    x = calls["layer1.0.conv1"].input  # the block's input: its identity shortcut
    net = explorer.model("resnet20:cifar10").loaded.model
    with torch.no_grad():
        want = net.layer1[0].bn2(net.layer1[0].conv2(calls["layer1.0.conv2"].input))
    assert torch.equal(bn2.output, want) and torch.equal(add.output, want + x)
    res = client.get("/api/maps.png", params={"model": "resnet20:cifar10", "image": s["id"],
                                              "layer": info["layers"].index(
                                                  next(r for r in info["layers"]
                                                       if r["name"] == "layer1.0.add"))})
    assert json.loads(res.headers["X-Layout"])["name"] == "layer1.0.add"


def test_feature_maps_are_the_layer_output(client, explorer):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][3]
    res = client.get("/api/maps.png", params={"model": "lenet5:mnist", "image": s["id"],
                                              "layer": 1})  # row 0: F.pad
    assert res.status_code == 200 and res.content.startswith(b"\x89PNG")
    layout = json.loads(res.headers["X-Layout"])
    assert layout["n"] == 6 and layout["shape"] == [6, 28, 28] and layout["name"] == "features.0"
    # The cached pass is the model's own forward: its first conv output equals running it again.
    _, _, p = explorer.trace("lenet5:mnist", s["id"])
    net = explorer.model("lenet5:mnist").loaded.model
    with torch.no_grad():
        logits = net(p.x[None])
    assert torch.equal(p.logits, logits)
    vec = client.get("/api/maps.png", params={"model": "lenet5:mnist", "image": s["id"],
                                              "layer": 12})
    assert json.loads(vec.headers["X-Layout"])["shape"] == [10]


def test_vectors_are_numbers_and_the_logits_name_their_classes(client, explorer):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][5]
    info = client.get("/api/model", params={"model": "lenet5:mnist"}).json()
    index = {r["name"]: r["index"] for r in info["layers"]}
    _, _, p = explorer.trace("lenet5:mnist", s["id"])
    out = client.get("/api/values", params={"model": "lenet5:mnist", "image": s["id"],
                                            "layer": index["classifier.5"]}).json()
    logits = p.logits[0].double()
    assert out["values"] == pytest.approx(logits.tolist(), abs=1e-6) and out["total"] == 10
    assert [r["class"] for r in out["logits"]] == [str(k) for k in range(10)]
    assert [r["prob"] for r in out["logits"]] == pytest.approx(logits.softmax(0).tolist())
    assert max(out["logits"], key=lambda r: r["prob"])["class"] == s["class"]
    flat = client.get("/api/values", params={"model": "lenet5:mnist", "image": s["id"],
                                             "layer": index["classifier.0"]}).json()
    pool = next(c for c in p.calls if c.name == "features.5").output
    assert flat["from"] == [16, 5, 5] and "logits" not in flat
    assert flat["values"] == pytest.approx(pool.flatten().tolist())
    maps = client.get("/api/values", params={"model": "lenet5:mnist", "image": s["id"],
                                             "layer": index["features.0"]})
    assert maps.status_code == 400 and "not a vector" in maps.json()["error"]


@pytest.mark.parametrize("model,nth,at", [("lenet5:mnist", 1, (3, 4, 6)),
                                           ("resnet20:cifar10", 2, (5, 0, 0)),
                                           ("resnet20:cifar10", 7, (20, 7, 3))])
def test_one_convolution_output_is_the_sum_over_its_input_channels(client, explorer, model,
                                                                    nth, at):
    """The sum the page shows for a clicked output, against torch's conv2d in float64 (at
    (0, 0) the window reads the zero padding; resnet20's 7th conv has stride 2)."""
    image = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][2]
    info = client.get("/api/model", params={"model": model}).json()
    index = [r["index"] for r in info["layers"] if r["type"] == "Conv2d"][nth]
    ch, row, col = at
    d = client.get("/api/conv", params={"model": model, "image": image["id"], "layer": index,
                                        "channel": ch, "row": row, "col": col}).json()
    call = explorer.trace(model, image["id"])[2].calls[index]
    conv = call.module
    want = F.conv2d(call.input.double(), conv.weight.detach().double(),
                    None if conv.bias is None else conv.bias.detach().double(), conv.stride,
                    conv.padding,
                    conv.dilation, conv.groups)[0, ch, row, col]
    assert d["sum"] == pytest.approx(float(want), abs=1e-9)
    assert sum(d["terms"]) + d["bias"] == pytest.approx(d["sum"], abs=1e-12)
    assert len(d["terms"]) == conv.in_channels and d["output"] == pytest.approx(d["sum"], abs=1e-4)
    assert d["window"]["top"] == row * conv.stride[0] - conv.padding[0]
    t = d["detail"][0]  # a channel's term is its window's values times its weights, summed
    assert sum(v * w for vr, wr in zip(t["values"], t["weights"], strict=True)
               for v, w in zip(vr, wr, strict=True)) == pytest.approx(t["term"], abs=1e-12)
    bad = client.get("/api/conv", params={"model": model, "image": image["id"], "layer": index,
                                          "channel": 999, "row": 0, "col": 0})
    assert bad.status_code == 400 and "outside" in bad.json()["error"]


def _overview(client, model, image, depth=None):
    res = client.get("/api/overview.png", params={"model": model, "image": image,
                                                   "depth": depth})
    assert res.status_code == 200 and res.content.startswith(b"\x89PNG"), res.text
    layout = json.loads(res.headers["X-Layout"])
    return layout, {n["name"]: n for n in layout["nodes"]}


def test_the_overview_connects_each_operation_to_where_its_inputs_come_from(client):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]["id"]
    layout, by = _overview(client, "lenet5:mnist", s)
    assert [n["inputs"] for n in layout["nodes"]] == [[-1]] + [[i] for i in range(12)]
    assert layout["n"] == 13 and layout["h"] == layout["w"] == 28
    # resnet20: a block's add reads its bn2 and the block's input (the previous block's relu).
    layout, by = _overview(client, "resnet20:cifar10", s)
    names = [n["name"] for n in layout["nodes"]]
    add = by["layer1.1.add"]
    assert [names[i] for i in add["inputs"]] == ["layer1.0.relu", "layer1.1.bn2"]
    assert [names[i] for i in by["layer2.0.add"]["inputs"]] == ["layer2.0.bn2",
                                                                "layer2.0.downsample"]
    # googlenet: an Inception module's four branches meet in its concatenation.
    layout, by = _overview(client, "googlenet", s)
    names = [n["name"] for n in layout["nodes"]]
    assert [names[i] for i in by["inception3a.cat"]["inputs"]] == [
        "inception3a.branch1.relu", "inception3a.branch2.1.relu", "inception3a.branch3.1.relu",
        "inception3a.branch4.1.relu"]
    # folded into blocks (depth 1), the modules follow one another
    layout, by = _overview(client, "googlenet", s, depth=1)
    assert by["inception3b"]["inputs"] == [by["inception3a"]["node"]]
    assert by["inception3a"]["shape"] == [256, 28, 28]


def test_the_overview_of_a_densenet_block_grows_its_concatenation(client):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]["id"]
    layout, by = _overview(client, "densenet121_cifar", s)
    names = [n["name"] for n in layout["nodes"]]
    block = "features.denseblock1"
    for k in (2, 3, 6):  # layer k concatenates the block's input and the k-1 layers before it
        ins = [names[i] for i in by[f"{block}.denselayer{k}.cat"]["inputs"]]
        assert len(ins) == k and all(n.endswith("conv2") for n in ins[1:]), ins


def test_each_operation_is_explained_with_this_images_numbers(client, explorer):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][1]
    ask = {"model": "lenet5:mnist", "image": s["id"]}
    pad = client.get("/api/explain", params={**ask, "layer": 0}).json()
    assert pad["kind"] == "function" and "1×28×28 → 1×32×32" in pad["lines"][0]
    conv = client.get("/api/explain", params={**ask, "layer": 1}).json()
    assert conv["kind"] == "conv" and "⌊(32 + 2·0 − 5) / 1⌋ + 1 = 28" in conv["lines"][1]
    assert "6 × 1·5·5 weights + 6 biases = 156" in conv["lines"][2]
    relu = client.get("/api/explain", params={**ask, "layer": 2}).json()
    x = explorer.trace("lenet5:mnist", s["id"])[2].calls[2].input
    assert relu["before_after"] and f"{int((x < 0).sum()):,} of 4,704 inputs" in relu["lines"][0]
    pool = client.get("/api/explain", params={**ask, "layer": 3}).json()
    assert "⌊(28 + 2·0 − 2) / 2⌋ + 1 = 14" in pool["lines"][0]
    fc = client.get("/api/explain", params={**ask, "layer": 8}).json()
    assert "W of 120×400" in fc["lines"][0]
    info = client.get("/api/model", params={"model": "resnet20:cifar10"}).json()
    add = next(r["index"] for r in info["layers"] if r["name"] == "layer1.0.add")
    res = client.get("/api/explain", params={"model": "resnet20:cifar10", "image": s["id"],
                                             "layer": add}).json()
    assert "residual connection" in res["lines"][0]


def test_batchnorm_is_worked_out_in_train_and_eval_mode(client, explorer):
    samples = client.get("/api/samples", params={"model": "resnet20:cifar10"}).json()["samples"]
    pid = samples[0]["id"]
    d = client.get("/api/batchnorm", params={"model": "resnet20:cifar10", "image": pid,
                                              "layer": 1, "channel": 5}).json()
    assert d["name"] == "bn1" and d["channel"] == 5 and d["batch"] == 8
    # The same mini-batch built here: this image and the next 7 samples, through conv1.
    m = explorer.model("resnet20:cifar10")
    xs = torch.stack([m.transform(explorer.picture(i).image)
                      for i in [pid] + [s["id"] for s in samples[1:8]]]).double()
    net = m.loaded.model
    with torch.no_grad():
        x = F.conv2d(xs, net.conv1.weight.double(), None, 1, 1)
        bn = net.bn1
        train = F.batch_norm(x, None, None, bn.weight.double(), bn.bias.double(), training=True,
                             eps=bn.eps)
    r, c = d["at"]
    assert d["train"]["mean"] == pytest.approx(float(x[:, 5].mean()), abs=1e-5)
    assert d["train"]["var"] == pytest.approx(float(x[:, 5].var(unbiased=False)), rel=1e-5)
    assert d["train"]["y"] == pytest.approx(float(train[0, 5, r, c]), abs=1e-5)
    kept = explorer.trace("resnet20:cifar10", pid)[2].calls[1].output  # the pass: eval mode
    assert d["eval"]["y"] == pytest.approx(float(kept[0, 5, r, c]), abs=1e-5)
    assert d["eval"]["mean"] == pytest.approx(float(bn.running_mean[5]))
    conv = client.get("/api/batchnorm", params={"model": "resnet20:cifar10", "image": pid,
                                                 "layer": 0})
    assert conv.status_code == 400 and "not a BatchNorm2d" in conv.json()["error"]


def test_dropout_in_train_and_eval_mode(client, explorer):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]
    info = client.get("/api/model", params={"model": "googlenet"}).json()
    index = next(r["index"] for r in info["layers"] if r["type"] == "Dropout")
    d = client.get("/api/dropout", params={"model": "googlenet", "image": s["id"],
                                            "layer": index}).json()
    assert d["p"] == 0.2 and d["eval"] == d["input"]
    assert d["train"] == pytest.approx([v / 0.8 if k else 0.0 for v, k in
                                        zip(d["input"], d["kept"], strict=True)])


def test_maps_carry_their_ranges_and_can_share_one_scale(client, explorer):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]
    out = explorer.trace("lenet5:mnist", s["id"])[2].calls[1].output[0]  # (6, 28, 28)
    own = json.loads(client.get("/api/maps.png", params={
        "model": "lenet5:mnist", "image": s["id"], "layer": 1}).headers["X-Layout"])
    assert own["lo"] == pytest.approx(out.amin((1, 2)).tolist())
    assert own["hi"] == pytest.approx(out.amax((1, 2)).tolist())
    shared = json.loads(client.get("/api/maps.png", params={
        "model": "lenet5:mnist", "image": s["id"], "layer": 1, "scale": "layer",
        "channel": 4}).headers["X-Layout"])
    assert shared["n"] == 1 and shared["first"] == 4 and shared["shared"]
    assert shared["lo"] == [pytest.approx(float(out.min()))]
    assert shared["hi"] == [pytest.approx(float(out.max()))]


def test_im2col_view_matches_unfold_and_the_layer(client, explorer):
    s = client.get("/api/samples", params={"model": "resnet20:cifar10"}).json()["samples"]
    if not s:  # no CIFAR-10 here: an upload instead
        up = client.post("/api/upload", files={"image": ("x.png", png(
            np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)), "image/png")})
        image = up.json()["image"]
    else:
        image = s[0]["id"]
    info = client.get("/api/model", params={"model": "resnet20:cifar10"}).json()
    conv = next(r for r in info["layers"] if r["type"] == "Conv2d" and r["index"] > 2)
    d = client.get("/api/im2col", params={"model": "resnet20:cifar10", "image": image,
                                          "layer": conv["index"], "patch": 37}).json()
    call = explorer.trace("resnet20:cifar10", image)[2].calls[conv["index"]]
    cols = F.unfold(call.input.double(), call.module.kernel_size, padding=call.module.padding,
                    stride=call.module.stride)  # (1, C*kh*kw, L)
    assert d["cols_shape"] == list(cols.shape[1:])
    assert d["weight_shape"] == [call.module.out_channels, cols.shape[1]]
    assert d["patch"] == 37 and d["row"] * d["out_shape"][2] + d["col"] == 37
    k = d["kernel"]
    want = cols[0, :k[0] * k[1], 37].reshape(k).numpy()
    np.testing.assert_allclose(d["patch_values"], want, atol=1e-4)
    assert d["max_abs_diff"] < 1e-4
    bad = client.get("/api/im2col", params={"model": "resnet20:cifar10", "image": image,
                                            "layer": conv["index"] + 1})
    assert bad.status_code == 400 and "not a Conv2d" in bad.json()["error"]


def test_maxpool_windows_keep_what_max_pool2d_keeps(client):
    ex = client.get("/api/pool/example").json()
    assert [w["output"] for w in ex["windows"]] == [6, 8, 3, 4]
    x = torch.tensor(ex["region"])[None, None]
    assert F.max_pool2d(x, 2).flatten().tolist() == [w["max"] for w in ex["windows"]]
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][1]
    d = client.get("/api/pool", params={"model": "lenet5:mnist", "image": s["id"],
                                        "layer": 3}).json()
    assert len(d["windows"]) == 4
    for w in d["windows"]:
        vals = [v for row in w["values"] for v in row if v is not None]
        assert w["max"] == max(vals) == pytest.approx(w["output"])
        assert w["values"][w["kept"][0]][w["kept"][1]] == w["max"]


def test_a_tied_maxpool_window_keeps_the_cell_torch_keeps():
    from convzoo.explore.service import pool_windows

    x = torch.tensor([[3.0, 3.0, 0.0, 1.0], [1.0, 3.0, 1.0, 1.0],
                      [0.0, 0.0, 2.0, 5.0], [0.0, 0.0, 5.0, 2.0]])
    mod = torch.nn.MaxPool2d(2, 2)
    d = pool_windows(x, mod(x[None, None])[0, 0], mod, rows=range(2), cols=range(2))
    _, idx = F.max_pool2d(x[None, None], 2, 2, return_indices=True)
    torch_kept = [divmod(int(i), 4) for i in idx.flatten()]
    kept = [(w["top"] + w["kept"][0], w["left"] + w["kept"][1]) for w in d["windows"]]
    assert kept == torch_kept == [(0, 0), (0, 3), (2, 0), (2, 3)]  # each tie: the first cell


def test_without_test_images_the_page_is_told_which_option_brings_them(tmp_path):
    empty = tmp_path / "no-cifar"
    empty.mkdir()
    with TestClient(create_app(Explorer(runs=tmp_path, data_dir=str(empty))),
                    raise_server_exceptions=False) as c:
        res = c.get("/api/samples", params={"model": "resnet20:cifar10"}).json()
        assert "--data-dir" in res["note"] and "cifar10" in res["note"]
        assert all(p["label"] is None for p in res["samples"])  # only the photos
        res = c.get("/api/samples", params={"model": "lenet5:mnist"}).json()
        assert len(res["samples"]) == 24 and res["note"] is None


def test_filters_gradcam_and_compare(client):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][2]
    f = client.get("/api/filters.png", params={"model": "lenet5:mnist"})
    assert f.status_code == 200 and f.content.startswith(b"\x89PNG")
    cam = client.get("/api/gradcam.png", params={"model": "lenet5:mnist", "image": s["id"],
                                                 "class": 3, "layer": 1})
    assert cam.status_code == 200
    assert json.loads(cam.headers["X-Info"]) == {"class": 3, "class_name": "3",
                                                 "layer": "features.0", "grid": [28, 28],
                                                 "centre": [0, 0], "jump": [1, 1]}
    answer = client.get("/api/compare", params={"a": "lenet5:mnist", "b": "resnet20:cifar10",
                                                "image": s["id"]}).json()
    res = answer["models"]
    assert [m["id"] for m in res] == ["lenet5:mnist", "resnet20:cifar10"]
    assert res[0]["params"] == 61706 and res[1]["params"] > res[0]["params"]
    assert all(m["latency_ms"] > 0 and len(m["top5"]) == 5 for m in res)
    # Latency is the median of repeated runs, with their spread and the machine's load beside it.
    for m in res:
        lat = m["latency"]
        assert lat["repeats"] >= 10 and lat["median_ms"] == m["latency_ms"]
        assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["max_ms"]
        assert lat["spread"] == pytest.approx((lat["max_ms"] - lat["min_ms"]) / lat["median_ms"])
    machine = answer["machine"]
    assert machine["cpus"] >= 1 and machine["threads"] >= 1
    assert machine["load_1min"] is None or machine["load_1min"] >= 0
    assert res[0]["truth"] == s["class"] and "truth" not in res[1]  # digits are not CIFAR classes


def test_place_at_centres_puts_each_position_at_its_receptive_field_centre():
    from convzoo.analysis.visualize import place_at_centres

    cam = torch.zeros(10, 10, dtype=torch.float64)
    cam[3, 7] = 1.0
    heat = place_at_centres(cam, [4.5, 0.0], [2, 3], (28, 28))
    # position (3, 7) sits at input pixel (4.5 + 3 * 2, 0 + 7 * 3) = (10.5, 21)
    assert heat[10, 21] == heat[11, 21] == pytest.approx(0.75) and heat[:, 21].max() < 1
    assert heat[:, 20].argmax() in (10, 11) and heat[10, 21] > heat[10, 20] > heat[10, 19]
    assert heat[0, 0] == 0 and heat[10:12, 21].sum() == pytest.approx(1.5)
    edge = torch.zeros(2, 2, dtype=torch.float64)
    edge[0, 0] = 1.0  # beyond the outermost centres: the edge value, not a fade to zero
    assert place_at_centres(edge, [5.0, 5.0], [4, 4], (16, 16))[0, 0] == 1


def test_gradcam_is_placed_at_receptive_field_centres(client, explorer):
    # LeNet-5's conv2 (10x10, jump 2): position (i, j) is centred on digit pixel 4.5 + 2 (i, j),
    # where stretching the map over the 28x28 digit put it at 0.9 + 2.8 (i, j) (3.6 px off).
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][4]
    info = client.get("/api/model", params={"model": "lenet5:mnist"}).json()
    conv2 = [r["index"] for r in info["layers"] if r["type"] == "Conv2d"][1]
    res = client.get("/api/gradcam.png", params={"model": "lenet5:mnist", "image": s["id"],
                                                 "layer": conv2})
    meta = json.loads(res.headers["X-Info"])
    assert (meta["layer"], meta["grid"], meta["centre"], meta["jump"]) == (
        "features.3", [10, 10], [4.5, 4.5], [2, 2])
    # The map itself, against Grad-CAM computed here in float64 (eq. 1-2 of Selvaraju et al.).
    import copy

    net = copy.deepcopy(explorer.model("lenet5:mnist").loaded.model).double()
    x = explorer.trace("lenet5:mnist", s["id"])[2].x.double()[None]
    acts = []

    def keep(module, inputs, out):
        out.retain_grad()
        acts.append(out)

    h = net.features[3].register_forward_hook(keep)
    logits = net(x)
    h.remove()
    logits[0, logits.argmax()].backward()
    a = acts[0]
    cam = F.relu((a.grad.mean((2, 3), keepdim=True) * a).sum(1))[0]
    cam = (cam / cam.max()).detach().numpy()
    heat, _ = explorer.gradcam_map("lenet5:mnist", s["id"], layer=conv2)
    want = np.zeros((28, 28))
    for y in range(28):  # bilinear between the centres 4.5 + 2 i, the edge value beyond
        for x_ in range(28):
            ty, tx = np.clip((y - 4.5) / 2, 0, 9), np.clip((x_ - 4.5) / 2, 0, 9)
            i0, j0 = min(int(ty), 8), min(int(tx), 8)
            fy, fx = ty - i0, tx - j0
            want[y, x_] = ((1 - fy) * (1 - fx) * cam[i0, j0] + (1 - fy) * fx * cam[i0, j0 + 1]
                           + fy * (1 - fx) * cam[i0 + 1, j0] + fy * fx * cam[i0 + 1, j0 + 1])
    np.testing.assert_allclose(heat.numpy(), want, atol=1e-4)
    # `convzoo visualize gradcam` places it the same way (one Grad-CAM for both).
    from convzoo.analysis.visualize import gradcam

    net32 = explorer.model("lenet5:mnist").loaded.model
    cli, _ = gradcam(net32, explorer.trace("lenet5:mnist", s["id"])[2].x, layer="features.3")
    np.testing.assert_allclose(cli.numpy(), heat.numpy(), atol=1e-5)


def test_cached_imagenet_weights_are_offered_and_the_rest_say_how_to_fetch(tmp_path,
                                                                          monkeypatch):
    from convzoo import create_model
    from convzoo.hub import imagenet_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    w = imagenet_weights("resnet18")
    w.path.parent.mkdir(parents=True)
    torch.save(create_model("resnet18").state_dict(), w.path)  # stands in for torchvision's file
    with TestClient(create_app(Explorer(runs=tmp_path / "runs")),
                    raise_server_exceptions=False) as c:
        by_id = {m["id"]: m for m in c.get("/api/models").json()["models"]}
        assert by_id["resnet18:imagenet"]["kind"] == "imagenet"
        assert by_id["resnet18:imagenet"]["trained"] and by_id["resnet18"]["fetch"] is None
        assert "resnet34:imagenet" not in by_id
        assert by_id["resnet34"]["fetch"] == "convzoo weights fetch resnet34:imagenet"
        assert by_id["lenet5"]["fetch"] is None  # no ImageNet weights exist for it
        missing = c.get("/api/model", params={"model": "resnet34:imagenet"})
        assert missing.status_code == 404
        assert "convzoo weights fetch resnet34:imagenet" in missing.json()["error"]
        info = c.get("/api/model", params={"model": "resnet18:imagenet"}).json()
        assert info["input"] == [3, 224, 224] and info["classes"][:2] == ["tench", "goldfish"]
        # No ImageNet validation images here: scikit-image's photos, the cat first.
        res = c.get("/api/samples", params={"model": "resnet18:imagenet"}).json()
        assert [p["id"] for p in res["samples"]] == ["p:chelsea", "p:coffee", "p:astronaut",
                                                     "p:rocket"]
        assert all(p["label"] is None for p in res["samples"]) and "photos" in res["note"]
        cat = c.post("/api/predict", params={"model": "resnet18:imagenet",
                                             "image": "p:chelsea"}).json()
        assert len(cat["top5"]) == 5 and "truth" not in cat
        png_ = c.get("/api/image.png", params={"image": "p:chelsea"})
        from PIL import Image

        assert Image.open(io.BytesIO(png_.content)).size == (451, 300)
        # Photos for RGB networks only: LeNet-5 reads one channel.
        assert not any(p["id"].startswith("p:") for p in c.get(
            "/api/samples", params={"model": "lenet5:mnist"}).json()["samples"])


def test_random_weights_are_marked(client):
    up = client.post("/api/upload", files={"image": ("d.png", png(mnist_digit()[0]),
                                                     "image/png")}).json()
    res = client.post("/api/predict", params={"model": "lenet5", "image": up["image"]}).json()
    assert res["trained"] is False and len(res["top5"]) == 5


# One pixel cap for every reader of images (convzoo.data.images.MAX_IMAGE_PIXELS, 8192^2): an
# upload of 81 Mpx is refused by its header, as a training folder's image would be.
@pytest.mark.parametrize("data,ctype,status,message", ids=["text", "garbage", "bomb", "81mp",
                                                           "empty"], argvalues=[
    (b"hello", "text/plain", 415, "not an image type"),
    (b"hello, not a png", "image/png", 400, "not an image"),
    (png_header_only(20000, 20000), "image/png", 400, "pixels than the limit"),
    (png_header_only(9000, 9000), "image/png", 400, "9000x9000 = 81,000,000 pixels"),
    (b"", "image/png", 400, "empty"),
])
def test_bad_uploads_answer_4xx_and_the_server_keeps_serving(client, data, ctype, status,
                                                             message):
    res = client.post("/api/upload", files={"image": ("x", data, ctype)})
    assert res.status_code == status and message in res.json()["error"]
    assert client.get("/api/models").status_code == 200


def test_oversized_upload_refused_before_reading(client):
    big = b"\0" * (MAX_UPLOAD_BYTES + 100_000)
    res = client.post("/api/upload", files={"image": ("big.png", big, "image/png")})
    assert res.status_code == 413 and "limit" in res.json()["error"]


@pytest.mark.parametrize("model", ["run:../etc", "run:/etc", "run:lenet5-copy/../../x",
                                   "run:unfinished", "arg:0", "nosuchnet", "lenet5:imagenet"])
def test_models_outside_the_offer_are_404(client, model):
    res = client.get("/api/model", params={"model": model})
    assert res.status_code == 404, res.text
    assert res.json()["error"]


def test_run_symlinked_out_of_runs_is_refused(explorer, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(explorer.runs / "lenet5-copy", outside)
    (explorer.runs / "sneaky").symlink_to(outside)
    try:
        with TestClient(create_app(explorer), raise_server_exceptions=False) as c:
            assert c.get("/api/model", params={"model": "run:sneaky"}).status_code == 404
            assert c.get("/api/model", params={"model": "run:lenet5-copy"}).status_code == 200
            # The menu offers only what loads: no run that /api/model refuses.
            runs = [m["id"] for m in c.get("/api/models").json()["models"] if m["kind"] == "run"]
            assert runs == ["run:lenet5-copy"]
    finally:
        (explorer.runs / "sneaky").unlink()


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_run_file_linked_out_of_runs_is_refused(explorer, tmp_path, name):
    """A run folder inside --runs whose weights, config.json or preset.json is a link to a file
    outside it: refused by name, not loaded, not offered (#26)."""
    from convzoo.data import PRESETS

    outside = tmp_path / "elsewhere"
    shutil.copytree(explorer.runs / "lenet5-copy", outside)
    (outside / "preset.json").write_text(json.dumps(PRESETS["mnist"].to_dict()))
    runs = tmp_path / "runs"
    run = runs / "linked"
    shutil.copytree(outside, run)
    (run / name).unlink()
    (run / name).symlink_to(outside / name)
    shutil.copytree(outside, runs / "plain")
    (runs / "plain" / "sibling.json").symlink_to(run / "config.json")  # inside --runs: fine
    with TestClient(create_app(Explorer(runs=runs)), raise_server_exceptions=False) as c:
        res = c.get("/api/model", params={"model": "run:linked"})
        assert res.status_code == 404, res.text
        error = res.json()["error"]
        assert "'linked'" in error and name in error and "\n" not in error
        assert c.get("/api/model", params={"model": "run:plain"}).status_code == 200
        runs_offered = [m["id"] for m in c.get("/api/models").json()["models"]
                        if m["kind"] == "run"]
        assert runs_offered == ["run:plain"]


LONG = "x" * 10_000


@pytest.mark.parametrize("model", [LONG, f"run:{LONG}", f"arg:{LONG}", f"lenet5:{LONG}",
                                   f"resnet18:{LONG}", f"{LONG}:imagenet"])
def test_a_long_model_name_is_cut_in_the_404(client, model):
    res = client.get("/api/model", params={"model": model})
    assert res.status_code == 404, res.text[:300]
    error = res.json()["error"]
    assert len(error) < 300 and "characters)" in error, error[:300]


def test_a_long_image_id_or_layer_is_cut_in_the_4xx(client):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]
    for params in ({"model": "lenet5:mnist", "image": LONG, "layer": 0},
                   {"model": "lenet5:mnist", "image": s["id"], "layer": LONG},
                   {"model": "lenet5:mnist", "image": s["id"], "layer": "1" * 4000},
                   {"model": "lenet5:mnist", "image": s["id"], "layer": "1" * 5000}):
        res = client.get("/api/maps.png", params=params)
        assert 400 <= res.status_code < 500, res.text[:300]
        assert len(res.json()["error"]) < 300, res.text[:300]


def test_bad_query_values_are_400(client):
    s = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]
    for params in ({"model": "lenet5:mnist", "image": s["id"], "layer": "x"},
                   {"model": "lenet5:mnist", "image": s["id"], "layer": 99},
                   {"model": "lenet5:mnist", "image": "nope", "layer": 0},
                   {"model": "lenet5:mnist"}):
        res = client.get("/api/maps.png", params=params)
        assert 400 <= res.status_code < 500 and res.json()["error"], params


def test_page_and_assets_are_served_and_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "convzoo explore" in page.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        res = client.get(asset)
        assert res.status_code == 200
        assert not re.search(r"https?://", res.text), asset  # nothing fetched from elsewhere
    assert not re.search(r"(?:src|href)=\"https?://", page.text)


def test_a_source_given_on_the_command_line_is_offered_first(explorer):
    src = str(explorer.runs / "lenet5-copy")
    with TestClient(create_app(Explorer(runs=explorer.runs, sources=[src]), default="arg:0"),
                    raise_server_exceptions=False) as c:
        res = c.get("/api/models").json()
        assert res["default"] == "arg:0" and res["models"][0]["kind"] == "file"
        info = c.get("/api/model", params={"model": "arg:0"}).json()
        assert info["model"] == "lenet5" and info["data"] == "mnist" and info["trained"]
        assert c.get("/api/model", params={"model": "arg:1"}).status_code == 404


def test_blocks_at_a_depth_are_summary_depth_rows_with_their_own_maps(client, explorer):
    from convzoo.analysis.summary import summarize

    info = client.get("/api/model", params={"model": "resnet20:cifar10", "depth": 1}).json()
    want = summarize("resnet20", (3, 32, 32)).rows_at_depth(1)
    assert [r["block"] for r in info["layers"]] == [r.name for r in want]
    assert "layer2" in [r["block"] for r in info["layers"]]
    assert sum(r["params"] for r in info["layers"]) == info["params"]
    image = client.get("/api/samples", params={"model": "lenet5:mnist"}).json()["samples"][0]["id"]
    res = client.get("/api/maps.png", params={"model": "resnet20:cifar10", "image": image,
                                              "block": "layer2"})
    layout = json.loads(res.headers["X-Layout"])
    assert layout["name"] == "layer2" and layout["shape"] == next(
        r["shape"] for r in info["layers"] if r["block"] == "layer2")
    # A block's output is its last layer's: the pass keeps both, and they are the same maps.
    p = explorer.trace("resnet20:cifar10", image)[2]
    last = [c for c in p.calls if c.name.startswith("layer2.")][-1]
    assert torch.equal(p.modules["layer2"].output, last.output)
    cam = client.get("/api/gradcam.png", params={"model": "resnet20:cifar10", "image": image,
                                                 "block": "layer3"})
    assert json.loads(cam.headers["X-Info"])["layer"] == "layer3"
    assert client.get("/api/maps.png", params={"model": "resnet20:cifar10", "image": image,
                                               "block": "layer9"}).status_code == 404
    assert client.get("/api/model", params={"model": "resnet20:cifar10",
                                            "depth": 0}).status_code == 400


def test_a_bare_name_on_the_command_line_is_marked_random(explorer):
    with TestClient(create_app(Explorer(runs=explorer.runs, sources=["lenet5"]), default="arg:0"),
                    raise_server_exceptions=False) as c:
        first = c.get("/api/models").json()["models"][0]
        assert (first["id"], first["kind"], first["trained"]) == ("arg:0", "file", False)
        assert c.get("/api/model", params={"model": "arg:0"}).json()["trained"] is False


def test_a_large_upload_is_kept_scaled_down(client):
    big = np.zeros((1500, 3000, 3), np.uint8)
    big[:, :1500] = 255
    res = client.post("/api/upload", files={"image": ("wide.png", png(big), "image/png")})
    assert res.status_code == 200 and res.json()["size"] == [1024, 512]
