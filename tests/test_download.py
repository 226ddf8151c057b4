"""`python -m ilo_core download`: resumable, atomic, checked. Served from 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ilo_core.download import KNOWN, Checkpoint, DownloadError, download

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)


class Server:
    """A local file server with Range support that can cut its first transfer short."""

    def __init__(self, data: bytes, cut_first_after: int | None = None) -> None:
        self.data, self.cut, self.requests = data, cut_first_after, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                owner.requests.append(self.headers.get("Range"))
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(owner.data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.data) - 1}/{len(owner.data)}")
                else:
                    self.send_response(200)
                body = owner.data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if owner.cut is not None:
                    cut, owner.cut = owner.cut, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tiny.pkl"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def make(**kwargs) -> Server:
        made.append(Server(PAYLOAD, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


def registry(url: str, sha256: str | None = None) -> dict[str, Checkpoint]:
    return {"tiny": Checkpoint("tiny", url, 64, "a test file", sha256=sha256)}


def test_a_download_arrives_whole_with_progress(server, tmp_path):
    s = server()
    seen = []
    path = download("tiny", tmp_path, registry(s.url, hashlib.sha256(PAYLOAD).hexdigest()),
                    progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD and path.name == "tiny.pkl"
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pkl"]


def test_an_interrupted_transfer_is_resumed_where_it_stopped(server, tmp_path):
    s = server(cut_first_after=1_000_000)
    known = registry(s.url, hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download("tiny", tmp_path, known)
    assert not (tmp_path / "tiny.pkl").exists()
    assert (tmp_path / "tiny.pkl.partial").stat().st_size == 1_000_000
    path = download("tiny", tmp_path, known)
    assert path.read_bytes() == PAYLOAD
    assert s.requests == [None, "bytes=1000000-"]
    assert not (tmp_path / "tiny.pkl.partial").exists()


def test_a_wrong_checksum_is_refused_and_nothing_is_left(server, tmp_path):
    s = server()
    with pytest.raises(DownloadError, match="sha256"):
        download("tiny", tmp_path, registry(s.url, "0" * 64))
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_name_and_an_unreachable_server_are_one_line_errors(tmp_path):
    with pytest.raises(DownloadError, match="unknown checkpoint 'nope'"):
        download("nope", tmp_path)
    with pytest.raises(DownloadError) as err:
        download("tiny", tmp_path, registry("http://127.0.0.1:9/tiny.pkl"))  # the discard port: refused
    assert "\n" not in str(err.value)


def test_the_known_names_include_ffhq_1024_from_nvlabs():
    spec = KNOWN["ffhq-1024"]
    assert spec.resolution == 1024 and spec.url.startswith("https://") and spec.url.endswith(".pkl")
