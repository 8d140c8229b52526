"""A tiny trained run directory shared by the analysis tests: lenet5 on the embedded MNIST subset,
a few SGD steps (the figures do not matter, the files do)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    import convzoo

    out = tmp_path_factory.mktemp("runs") / "lenet5-tiny"
    cfg = convzoo.TrainConfig(model="lenet5", epochs=1, max_steps=8, batch_size=64, lr=0.05,
                              out=str(out), device="cpu", tensorboard=False)
    convzoo.fit(cfg)
    return out
