"""``--amp`` means the same in train, eval and bench (issue #21, item 5): one of TrainConfig's
AMP_MODES; eval and bench also take it alone, as they always did: bf16 autocast on the CPU,
fp16 on CUDA."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo import ConvzooError
from convzoo.cli import build_parser, main
from convzoo.engine.config import AMP_MODES
from convzoo.engine.scoring import amp_mode

COMMANDS = {"train": ["train", "lenet5"], "eval": ["eval", "lenet5:mnist"],
            "bench": ["bench", "lenet5"]}
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _parsed(argv: list[str]):
    return build_parser().parse_args(argv)


@pytest.mark.parametrize("mode", AMP_MODES)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_trains_modes(command, mode):
    assert _parsed([*COMMANDS[command], "--amp", mode]).amp == mode


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_another_mode(command, capsys):
    with pytest.raises(SystemExit) as e:
        _parsed([*COMMANDS[command], "--amp", "fp8"])
    assert e.value.code == 2
    assert "argument --amp: invalid choice: 'fp8'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_the_old_switch_still_means_bf16_on_the_cpu_and_fp16_on_cuda(command):
    alone = _parsed([*COMMANDS[command], "--amp"]).amp
    assert (amp_mode(alone, CPU), amp_mode(alone, CUDA)) == ("bf16", "fp16")
    assert amp_mode(_parsed(COMMANDS[command]).amp, CPU) == "none"
    assert amp_mode("bf16", CUDA) == "bf16"  # a mode is taken as it is, on any device


@pytest.mark.parametrize(("flags", "expected"), [([], "none"), (["--amp"], True),
                                                  (["--amp", "bf16"], "bf16")])
def test_eval_hands_the_mode_to_evaluate(monkeypatch, flags, expected):
    import convzoo.analysis.evaluation as evaluation

    seen = {}

    def evaluate(source, **kwargs):
        seen.update(kwargs)
        raise ConvzooError("stop here")

    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    assert main([*COMMANDS["eval"], *flags]) == 2
    assert seen["amp"] == expected


@pytest.mark.parametrize(("flags", "recorded"), [(["--amp", "bf16"], "bf16"), (["--amp"], "bf16"),
                                                 ([], "none")])
def test_bench_records_the_mode_it_ran_with(capsys, flags, recorded):
    assert main(["bench", "lenet5", "--batch-size", "2", "--repeats", "1", "--json",
                 *flags]) == 0
    assert json.loads(capsys.readouterr().out)[0]["amp"] == recorded


def test_bench_model_refuses_an_unknown_mode():
    from convzoo.analysis.bench import bench_model

    with pytest.raises(ConvzooError, match="amp 'fp8': expected one of none, bf16, fp16"):
        bench_model("lenet5", amp="fp8", batch_size=2, repeats=1)


@pytest.mark.parametrize("argv", [["eval", "--amp", "lenet5:mnist"],
                                  ["eval", "--amp", "lenet5:mnist", "--json"]])
def test_the_switch_before_the_source_still_reads_the_source(monkeypatch, argv):
    import convzoo.analysis.evaluation as evaluation

    seen = {}

    def evaluate(source, **kwargs):
        seen.update(kwargs, source=source)
        raise ConvzooError("stop here")

    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    assert main(argv) == 2
    assert seen["source"] == "lenet5:mnist" and seen["amp"] is True
