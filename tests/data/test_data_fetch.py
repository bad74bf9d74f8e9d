"""nnctl data fetch against a local HTTP server on 127.0.0.1 (never the real network)."""

from __future__ import annotations

import functools
import http.server
import os
import stat
import threading
from typing import ClassVar

import numpy as np
import pytest
from data_helpers import declare_checksums

from nnctl.data import fetch as fetch_mod
from nnctl.data import load
from nnctl.data.builtin import IDX_FILES, FashionMnist
from nnctl.errors import DataError


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: ClassVar[set[str]] = set()

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in self.truncate:
            body = (self.directory_path / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then close: a truncated download
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(fake_mnist):
    handler = functools.partial(_Handler, directory=str(fake_mnist))
    _Handler.directory_path = fake_mnist
    _Handler.truncate = set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sums(fake_mnist, monkeypatch):
    """Declare the fake files' checksums in place of the official ones."""
    return declare_checksums(monkeypatch, fake_mnist)


def test_fetch_downloads_verifies_and_loads(server, sums, tmp_path, monkeypatch):
    monkeypatch.setenv("NNCTL_FETCH_BASE_URL", server)
    folder = fetch_mod.fetch("fashion_mnist", tmp_path / "cache")
    assert folder == tmp_path / "cache" / "fashion_mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(sums)
    s = load({"dataset": "fashion_mnist", "data_dir": str(tmp_path / "cache"), "validation": 0}, 0)
    assert len(s.train) == 30 and s.train.X.shape[1:] == (28, 28, 1)
    assert np.bincount(s.test.y).tolist() == [1] * 10


def test_fetch_downloads_from_the_url_the_data_set_declares(server, sums, tmp_path, monkeypatch):
    monkeypatch.delenv("NNCTL_FETCH_BASE_URL", raising=False)
    monkeypatch.setattr(FashionMnist, "base_url", server)
    seen = []
    folder = fetch_mod.fetch("fashion_mnist", tmp_path / "cache", echo=seen.append)
    assert seen == [f"downloading {server}{name}" for name in IDX_FILES]
    assert sorted(p.name for p in folder.iterdir()) == sorted(sums)


def test_downloads_get_the_umask_mode(server, sums, tmp_path, monkeypatch):
    monkeypatch.setenv("NNCTL_FETCH_BASE_URL", server)
    saved = os.umask(0o022)
    try:
        folder = fetch_mod.fetch("fashion_mnist", tmp_path / "cache")
    finally:
        os.umask(saved)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == dict.fromkeys(sums, 0o644)  # readable by the machine's other users


def test_corrupted_download_leaves_nothing(server, sums, tmp_path, monkeypatch, fake_mnist):
    monkeypatch.setenv("NNCTL_FETCH_BASE_URL", server)
    bad = bytearray((fake_mnist / "t10k-images-idx3-ubyte.gz").read_bytes())
    bad[40] ^= 0xFF
    (fake_mnist / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(bad))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: checksum mismatch"):
        fetch_mod.fetch("fashion_mnist", tmp_path / "cache")
    assert list((tmp_path / "cache" / "fashion_mnist").iterdir()) == []


def test_truncated_download_leaves_nothing(server, sums, tmp_path, monkeypatch):
    monkeypatch.setenv("NNCTL_FETCH_BASE_URL", server)
    _Handler.truncate = {"train-labels-idx1-ubyte.gz"}
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: .*nothing was written"):
        fetch_mod.fetch("fashion_mnist", tmp_path / "cache")
    assert list((tmp_path / "cache" / "fashion_mnist").iterdir()) == []


def test_missing_file_on_server(server, sums, tmp_path, monkeypatch, fake_mnist):
    monkeypatch.setenv("NNCTL_FETCH_BASE_URL", server)
    (fake_mnist / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="download failed"):
        fetch_mod.fetch("fashion_mnist", tmp_path / "cache")
    assert list((tmp_path / "cache" / "fashion_mnist").iterdir()) == []


def test_shipped_data_sets_are_not_fetched(tmp_path):
    with pytest.raises(DataError, match="mnist is shipped with nnctl"):
        fetch_mod.fetch("mnist", tmp_path)


def test_official_checksums_declared_by_the_data_set():
    downloads = FashionMnist.downloads
    assert list(downloads) == list(IDX_FILES)
    assert downloads["train-images-idx3-ubyte.gz"].md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert all(len(s) == 64 and len(m) == 32 for s, m in downloads.values())
    assert FashionMnist.base_url.startswith("https://")
