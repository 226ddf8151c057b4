"""`python -m ilo_core download`: resumable, atomic, checked. Served from 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ilo_core.checkpoints.download import KNOWN, Checkpoint, DownloadError, download

PAYLOAD = pickle.dumps(os.urandom(3 * 1024 * 1024 + 123), protocol=4)  # a whole pickle, as a checkpoint is
ROOT = Path(__file__).resolve().parents[2]


class Server:
    """A local file server with Range support that can misbehave: cut its first transfer short
    (`cut_first_after`), and `mode`: "short-length" (announces fewer bytes than the file and
    sends that many), "no-length" (no Content-Length, drops the connection after `cut_first_after`),
    "html" (an error page with status 200), "whole-206" (answers a Range with the whole file as
    206), "416" (answers every Range with 416 and no total), "slow" (sends in slow pieces)."""

    def __init__(self, data: bytes, cut_first_after: int | None = None, mode: str = "") -> None:
        self.data, self.cut, self.requests, self.mode = data, cut_first_after, [], mode
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                owner.requests.append(self.headers.get("Range"))
                start, mode = 0, owner.mode
                if mode == "html":
                    page = b"<!DOCTYPE html><html><body>Quota exceeded</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if self.headers.get("Range") and mode == "416":
                    self.send_response(416)
                    self.end_headers()
                    return
                if self.headers.get("Range") and mode != "whole-206":
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(owner.data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(owner.data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.data) - 1}/{len(owner.data)}")
                elif self.headers.get("Range"):
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes 0-{len(owner.data) - 1}/{len(owner.data)}")
                else:
                    self.send_response(200)
                body = owner.data[start:]
                if mode == "short-length":
                    body = body[:len(body) - 1000]
                if mode != "no-length":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "slow":
                    for i in range(0, len(body), 256 * 1024):
                        self.wfile.write(body[i:i + 256 * 1024])
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                if owner.cut is not None:
                    cut, owner.cut = owner.cut, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that hangs up early is expected here
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
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


def registry(url: str, sha256: str | None = None, size: int | None = None) -> dict[str, Checkpoint]:
    return {"tiny": Checkpoint("tiny", url, 64, "a test file", sha256=sha256, size=size)}


def test_a_download_arrives_whole_with_progress(server, tmp_path):
    s = server()
    seen = []
    path = download("tiny", tmp_path, registry(s.url, hashlib.sha256(PAYLOAD).hexdigest()),
                    progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD and path.name == "tiny.pkl"
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pkl", "tiny.pkl.lock"]


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
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pkl.lock"]


def test_an_unknown_name_and_an_unreachable_server_are_one_line_errors(tmp_path):
    with pytest.raises(DownloadError, match="unknown checkpoint 'nope'"):
        download("nope", tmp_path)
    with pytest.raises(DownloadError) as err:
        download("tiny", tmp_path, registry("http://127.0.0.1:9/tiny.pkl"))  # the discard port: refused
    assert "\n" not in str(err.value)


def test_the_known_names_include_ffhq_1024_from_nvlabs():
    spec = KNOWN["ffhq-1024"]
    assert spec.resolution == 1024 and spec.url.startswith("https://") and spec.url.endswith(".pkl")


@pytest.mark.parametrize("mode, cut", [("short-length", None), ("no-length", 1_000_000), ("html", None)])
def test_a_short_cut_or_foreign_transfer_never_gets_the_final_name(server, tmp_path, mode, cut):
    """No size published: a Content-Length shorter than the file, a dropped connection with
    no Content-Length, and an error page served with 200 are each refused by content."""
    s = server(mode=mode, cut_first_after=cut)
    with pytest.raises(DownloadError) as err:
        download("tiny", tmp_path, registry(s.url))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "tiny.pkl").exists()
    assert not (tmp_path / "tiny.pkl.partial").exists()  # nothing broken is kept to resume from


def test_an_error_page_on_resume_is_refused_and_the_partial_file_dropped(server, tmp_path):
    (tmp_path / "tiny.pkl.partial").write_bytes(PAYLOAD[:1_000_000])
    s = server(mode="html")
    with pytest.raises(DownloadError, match="web page"):
        download("tiny", tmp_path, registry(s.url))
    assert list(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_a_206_that_resends_the_whole_file_starts_over_instead_of_appending(server, tmp_path):
    (tmp_path / "tiny.pkl.partial").write_bytes(PAYLOAD[:1_000_000])
    s = server(mode="whole-206")
    path = download("tiny", tmp_path, registry(s.url))
    assert path.read_bytes() == PAYLOAD
    assert s.requests == ["bytes=1000000-", None]


def test_a_416_on_resume_accepts_the_partial_file_only_when_it_is_the_whole_file(server, tmp_path):
    s = server(mode="416")  # no total in its answer: the partial file cannot be taken as whole
    (tmp_path / "tiny.pkl.partial").write_bytes(PAYLOAD[:1_000_000])
    assert download("tiny", tmp_path, registry(s.url)).read_bytes() == PAYLOAD
    s2 = server()  # an honest 416 with the total: a whole partial file is finished without a transfer
    (tmp_path / "tiny.pkl").unlink()
    (tmp_path / "tiny.pkl.partial").write_bytes(PAYLOAD)
    assert download("tiny", tmp_path, registry(s2.url)).read_bytes() == PAYLOAD
    assert s2.requests == [f"bytes={len(PAYLOAD)}-"]


def test_an_oversized_partial_file_is_dropped_and_the_file_fetched_again(server, tmp_path):
    s = server()
    (tmp_path / "tiny.pkl.partial").write_bytes(PAYLOAD + b"garbage" * 1000)
    assert download("tiny", tmp_path, registry(s.url)).read_bytes() == PAYLOAD
    (tmp_path / "tiny.pkl").unlink()
    (tmp_path / "tiny.pkl.partial").write_bytes(PAYLOAD + b"garbage")
    assert download("tiny", tmp_path, registry(s.url, size=len(PAYLOAD))).read_bytes() == PAYLOAD


def test_a_published_size_the_server_contradicts_is_refused_before_writing(server, tmp_path):
    s = server()
    with pytest.raises(DownloadError, match="published as"):
        download("tiny", tmp_path, registry(s.url, size=len(PAYLOAD) + 1))
    assert not (tmp_path / "tiny.pkl.partial").exists()


def test_too_little_free_disk_space_is_said_before_writing(server, tmp_path, monkeypatch):
    import shutil

    from ilo_core.checkpoints import download as module

    s = server()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(module.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(DownloadError, match="MB free"):
        download("tiny", tmp_path, registry(s.url))
    assert not (tmp_path / "tiny.pkl.partial").exists()


def test_a_broken_file_already_under_the_final_name_is_fetched_again(server, tmp_path):
    s = server()
    (tmp_path / "tiny.pkl").write_bytes(PAYLOAD[:1000])  # left by an older version
    assert download("tiny", tmp_path, registry(s.url)).read_bytes() == PAYLOAD


def test_two_processes_downloading_one_name_leave_one_whole_file(server, tmp_path):
    """The second process waits for the first (one lock per name) and uses its file."""
    s = server(mode="slow")
    code = ("import sys; from ilo_core.checkpoints.download import Checkpoint, download; from pathlib import Path; "
            f"known = {{'tiny': Checkpoint('tiny', {s.url!r}, 64, 'x')}}; "
            "p = download('tiny', Path(sys.argv[1]), known, on_wait=lambda m: print(m, file=sys.stderr)); "
            "print(p.stat().st_size)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [int(o[0]) for o in outs] == [len(PAYLOAD)] * 2
    assert sum("another process is downloading tiny" in o[1] for o in outs) == 1
    assert (tmp_path / "tiny.pkl").read_bytes() == PAYLOAD
    assert s.requests == [None]  # one transfer
