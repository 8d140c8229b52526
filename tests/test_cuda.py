"""The CUDA paths: models, training (fp32, bf16, fp16 + GradScaler, channels_last), resume,
evaluation, the analysis commands and the streamed loader, each checked against the CPU.

CI has no GPU: the whole module skips there. A session with a GPU runs it with
``pytest tests/test_cuda.py`` (docs/gpu.md records the last such run).
"""

from __future__ import annotations

import os

import pytest
import torch

from convzoo import TrainConfig, create_model, evaluate, fit, read_weights

# CONVZOO_TEST_DEVICE=cpu runs the same checks on the CPU (to debug them without a GPU).
DEV = os.environ.get("CONVZOO_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEV == "cuda" and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU")

# (name, input size) for one model per family, small forms first; float64 on both devices, so
# cuDNN's TF32 does not blur the comparison.
FORWARD = [
    ("lenet5", (1, 28, 28)),
    ("alexnet_cifar", (3, 32, 32)),
    ("vgg11_cifar", (3, 32, 32)),
    ("googlenet_cifar", (3, 32, 32)),
    ("inception_v3_cifar", (3, 32, 32)),
    ("resnet20", (3, 32, 32)),
    ("densenet_bc100", (3, 32, 32)),
    ("alexnet", (3, 224, 224)),
    ("resnet50", (3, 224, 224)),
    ("inception_v3", (3, 299, 299)),
]


@pytest.fixture
def small_mnist(monkeypatch):
    from convzoo.data import datasets

    original = datasets.SOURCES["mnist"]

    def small(data_dir, split, **kw):
        return original(data_dir, split, **kw).subset(torch.arange(2048 if split == "train"
                                                                   else 512))

    monkeypatch.setitem(datasets.SOURCES, "mnist", small)


@pytest.mark.parametrize("name,size", FORWARD, ids=[n for n, _ in FORWARD])
def test_forward_and_backward_on_cuda_equal_the_cpu_in_float64(name, size):
    torch.manual_seed(0)
    cpu = create_model(name).double().train()
    gpu = create_model(name).double().train()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.to(DEV)
    for m in [*cpu.modules(), *gpu.modules()]:  # batch norm in training mode, dropout off
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
    x = torch.randn(2, *size, dtype=torch.float64)
    out_c, out_g = cpu(x), gpu(x.to(DEV))
    out_c = out_c[0] if isinstance(out_c, tuple) else out_c
    out_g = out_g[0] if isinstance(out_g, tuple) else out_g
    assert out_g.device.type == DEV
    assert torch.allclose(out_g.cpu(), out_c, rtol=1e-9, atol=1e-9)
    out_c.square().sum().backward()
    out_g.square().sum().backward()
    # Relative to the largest gradient of the model: a conv bias followed by batch norm has a
    # gradient that is exactly zero in theory (rounding noise in practice).
    scale = max(float(p.grad.abs().max()) for p in cpu.parameters())
    for (k, pc), pg in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        assert float((pg.grad.cpu() - pc.grad).abs().max()) / scale < 1e-9, k


@pytest.mark.parametrize("amp,channels_last", [("none", False), ("bf16", True), ("fp16", False)])
def test_training_on_cuda_learns_and_scores_the_same_on_the_cpu(tmp_path, small_mnist, amp,
                                                                 channels_last):
    if amp == "fp16" and DEV != "cuda":
        pytest.skip("fp16 autocast + GradScaler is CUDA-only")
    r = fit(TrainConfig(model="lenet5", epochs=3, batch_size=64, lr=0.05, device=DEV, amp=amp,
                        channels_last=channels_last, tensorboard=False,
                        out=str(tmp_path / amp)))
    assert r.final["top1_acc"] > 0.6, r.final  # 3 epochs of 2,048 images; chance is 0.10
    on_cpu = evaluate(r.run_dir, device="cpu")
    # The same weights scored on the CPU: fp32 vs CUDA's kernels may flip a borderline image.
    assert abs(on_cpu["top1_acc"] - r.final["top1_acc"]) <= 2 / 512
    assert read_weights(r.run_dir / "model.safetensors").model == "lenet5"


def test_deterministic_cuda_resume_is_bit_identical(tmp_path, small_mnist):
    base = dict(model="resnet20", data="mnist", model_args={"in_chans": 1}, epochs=2,
                batch_size=64, device=DEV, deterministic=True, checkpoint_every_steps=8,
                keep_checkpoints=20, tensorboard=False, lr=0.05)
    from convzoo.engine.checkpoint import list_checkpoints, load_checkpoint

    a = fit(TrainConfig(**base, out=str(tmp_path / "a")))
    again = fit(TrainConfig(**base, out=str(tmp_path / "again")))
    mid = next(p for p in list_checkpoints(a.run_dir / "checkpoints")
               if load_checkpoint(p)["batch"] == 16)
    b = fit(TrainConfig(**base, out=str(tmp_path / "b"), resume=str(mid)))
    wa = read_weights(a.run_dir / "model.safetensors").state_dict
    for other in (again, b):
        wb = read_weights(other.run_dir / "model.safetensors").state_dict
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_gemm_convolution_trains_on_cuda(tmp_path, small_mnist):
    r = fit(TrainConfig(model="lenet5", epochs=3, device=DEV, conv="gemm", tensorboard=False,
                        out=str(tmp_path / "gemm")))
    assert r.final["top1_acc"] > 0.6, r.final


def test_analysis_commands_on_cuda(tmp_path, capsys):
    from convzoo.analysis.bench import bench_model
    from convzoo.analysis.predict import predict
    from convzoo.cli import main
    from convzoo.data import load_dataset

    b = bench_model("resnet20", batch_size=8, device=DEV, amp=True, channels_last=True,
                    warmup=1, repeats=2)
    assert b.device.startswith(DEV) and b.infer_images_per_s > 0 and b.train_images_per_s > 0
    # The shipped LeNet-5 on the embedded test images: same top-5 on both devices.
    test = load_dataset("mnist", None, "test").subset(torch.arange(4))
    from torchvision.io import write_png

    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.png"
        write_png(test.images[i], str(p))
        paths.append(p)
    on_gpu = predict("lenet5:mnist", paths, device=DEV)
    on_cpu = predict("lenet5:mnist", paths, device="cpu")
    for g, c, label in zip(on_gpu.predictions, on_cpu.predictions, test.labels.tolist(),
                           strict=True):
        assert [k for k, _ in g.top] == [k for k, _ in c.top]
        assert abs(g.top[0][1] - c.top[0][1]) < 1e-4
        assert g.top[0][0] == str(label)
    assert main(["eval", "lenet5:mnist", "--device", DEV]) == 0
    assert "top-1" in capsys.readouterr().out


def test_streamed_folder_training_pins_memory_on_cuda(tmp_path):
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in range(3):
            d = tmp_path / "data" / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(8):
                img = (torch.rand(3, 40, 40, generator=g) * 80).to(torch.uint8) + 60 * c
                write_png(img, str(d / f"{i}.png"))
    r = fit(TrainConfig(model="resnet18", data="folder", data_dir=str(tmp_path / "data"),
                        epochs=1, batch_size=8, device=DEV, amp="bf16", channels_last=True,
                        model_args={"num_classes": 3}, tensorboard=False,
                        out=str(tmp_path / "run")))
    assert r.final["n"] == 24 and 0.0 <= r.final["top1_acc"] <= 1.0
