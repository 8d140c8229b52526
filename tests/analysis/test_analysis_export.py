"""export: ONNX (onnxruntime) and torch.export (.pt2) checked against eager on random inputs."""

from __future__ import annotations

import onnx
import pytest

from convzoo import ConvzooError, list_models, model_info
from convzoo.analysis.export import export_model, export_source
from convzoo.cli import main


def test_lenet5_onnx_dynamic_batch_matches_onnxruntime(tmp_path):
    r = export_source("lenet5", tmp_path / "lenet5.onnx", format="onnx")
    assert r.max_abs_diff <= 1e-4 and r.checked_batches == (1, 3)
    graph = onnx.load(str(tmp_path / "lenet5.onnx"))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # symbolic, not a fixed size


def test_pt2_export_from_cli(tmp_path, capsys):
    out = tmp_path / "lenet.pt2"
    assert main(["export", "lenet", "--format", "export", "--out", str(out),
                 "--random-weights"]) == 0
    assert out.is_file() and "max |export - eager|" in capsys.readouterr().out


def test_small_form_onnx(tmp_path):
    name = "resnet20" if "resnet20" in list_models() else "lenet"
    r = export_source(name, tmp_path / f"{name}.onnx", format="onnx")
    assert r.max_abs_diff <= 1e-4


def test_export_errors(tmp_path):
    from convzoo import create_model

    with pytest.raises(ConvzooError, match="opset"):
        export_model(create_model("lenet5"), tmp_path / "x.onnx", input_size=(1, 28, 28),
                     opset=13)
    with pytest.raises(ConvzooError, match="minimum input size is 28x28"):
        export_source("lenet5", tmp_path / "x.pt2", format="export", input_size="1x16x16")


EXT = {"onnx": "onnx", "export": "pt2"}
IMAGENET = [n for n in list_models() if model_info(n).form == "imagenet"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "export"])
@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_forms_export(tmp_path, name, fmt):
    r = export_source(name, tmp_path / f"{name}.{EXT[fmt]}", format=fmt)
    assert r.max_abs_diff <= 1e-4


SMALL = [n for n in list_models() if model_info(n).form == "small"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_small_forms_export(tmp_path, name):
    for fmt in ("onnx", "export"):
        assert export_source(name, tmp_path / f"{name}.{EXT[fmt]}").max_abs_diff <= 1e-4
