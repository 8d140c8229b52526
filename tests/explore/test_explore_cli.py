"""`convzoo explore`'s command line: safe defaults, and bad arguments as one line and exit 2
before anything listens (the real server is started by the browser test)."""

from __future__ import annotations

import socket

import pytest

from convzoo.cli import build_parser, main


def test_defaults_listen_on_this_machine_only():
    args = build_parser().parse_args(["explore"])
    assert (args.host, args.port, args.runs, args.source) == ("127.0.0.1", 8000, "runs", [])


def test_unknown_source_is_exit_2(capsys):
    assert main(["explore", "no/such/run"]) == 2
    err = capsys.readouterr().err
    assert "convzoo explore: error:" in err and "no/such/run does not exist" in err


def test_busy_port_is_exit_2(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["explore", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_port_out_of_range_is_exit_2(port, capsys):
    assert main(["explore", "--port", port]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
