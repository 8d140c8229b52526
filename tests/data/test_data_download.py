"""`download` against a file server on 127.0.0.1 started by the test (HTTP Range supported)."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from convzoo.cli import main
from convzoo.data import downloads as download_mod
from convzoo.data import load_dataset
from convzoo.data.downloads import Resource, download
from convzoo.errors import DataError


class _Server:
    """Serves ``files`` (name -> bytes); honours ``Range: bytes=N-`` unless ``ranges`` is off."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.ranges = True
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                outer.requests.append((name, rng))
                if name not in outer.files:
                    self.send_error(404)
                    return
                body, status = outer.files[name], 200
                if rng and outer.ranges:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    body, status = body[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = bytes(range(256)) * 4000  # ~1 MB, a few read chunks


@pytest.fixture
def fake_resources(monkeypatch):
    res = {"toy": [Resource("https://example.invalid/d/toy.bin", hashlib.md5(PAYLOAD).hexdigest())]}
    monkeypatch.setattr(download_mod, "RESOURCES", res)
    return res


def test_download_verifies(tmp_path, fake_resources):
    with _Server({"toy.bin": PAYLOAD}) as srv:
        paths = download("toy", tmp_path, mirror=srv.url)
    assert paths == [tmp_path / "toy.bin"] and paths[0].read_bytes() == PAYLOAD
    assert srv.requests == [("toy.bin", None)]
    with _Server({"toy.bin": PAYLOAD}) as srv:  # present and verified: not fetched again
        download("toy", tmp_path, mirror=srv.url)
    assert srv.requests == []


def test_download_resumes_with_range(tmp_path, fake_resources):
    (tmp_path / "toy.bin.part").write_bytes(PAYLOAD[:12345])
    with _Server({"toy.bin": PAYLOAD}) as srv:
        download("toy", tmp_path, mirror=srv.url)
    assert srv.requests == [("toy.bin", "bytes=12345-")]
    assert (tmp_path / "toy.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "toy.bin.part").exists()


def test_server_ignoring_range_restarts(tmp_path, fake_resources):
    (tmp_path / "toy.bin.part").write_bytes(b"x" * 100)
    with _Server({"toy.bin": PAYLOAD}) as srv:
        srv.ranges = False
        download("toy", tmp_path, mirror=srv.url)
    assert (tmp_path / "toy.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes(tmp_path, fake_resources):
    with _Server({"toy.bin": PAYLOAD[:-1] + b"!"}) as srv:
        with pytest.raises(DataError, match="toy.bin .* md5 .* expected .* deleted"):
            download("toy", tmp_path, mirror=srv.url)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_and_unknown_name(tmp_path, fake_resources):
    with _Server({}) as srv:
        with pytest.raises(DataError, match="HTTP 404"):
            download("toy", tmp_path, mirror=srv.url)
    with pytest.raises(DataError, match="no download for data set 'svhn'"):
        download("svhn", tmp_path)


def test_official_table():
    res = download_mod.RESOURCES
    assert res["cifar10"][0].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert res["cifar10"][0].md5 == "c58f30108f718f92721af3b95e74349a"
    assert res["mnist"][0].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert all(len(r.md5) == 32 for rs in res.values() for r in rs)


def _cifar10_tar() -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for name in names:
            data = pickle.dumps({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                                 b"labels": [1, 2]}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cli_download_extracts_cifar(tmp_path, monkeypatch, capsys):
    blob = _cifar10_tar()
    monkeypatch.setattr(download_mod, "RESOURCES", {"cifar10": [Resource(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", hashlib.md5(blob).hexdigest(),
        extract=True)]})
    with _Server({"cifar-10-python.tar.gz": blob}) as srv:
        monkeypatch.setenv("CONVZOO_DOWNLOAD_MIRROR", srv.url)
        assert main(["data", "download", "cifar10", "--data-dir", str(tmp_path)]) == 0
    assert "md5 verified" in capsys.readouterr().out
    assert len(load_dataset("cifar10", tmp_path, "train")) == 10
    with _Server({"cifar-10-python.tar.gz": b"wrong"}) as srv:
        monkeypatch.setenv("CONVZOO_DOWNLOAD_MIRROR", srv.url)
        (tmp_path / "cifar-10-python.tar.gz").unlink()
        assert main(["data", "download", "cifar10", "--data-dir", str(tmp_path)]) == 2
    assert "deleted" in capsys.readouterr().err
    assert not Path(tmp_path / "cifar-10-python.tar.gz").exists()
