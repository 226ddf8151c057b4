"""The editor's pushed blobs: checked by their header, bounded per session, in all and by age."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ilo_core.frontends.uploads import BlobStore


def png(side: int = 64, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_sessions_newer_submissions_evict_its_older_ones_and_not_another_sessions():
    blob = png(200)  # about 120 KB
    store = BlobStore(per_session=3 * len(blob), total=100 * len(blob))
    store.put("other", "o", "background", None, blob)
    for i in range(10):
        store.put("busy", f"b{i}", "background", None, blob)
    assert store.bytes_kept("busy") <= 3 * len(blob)
    assert store.take("b9") is not None and store.take("b0") is None
    assert store.take("o").background == blob


def test_the_total_bound_evicts_the_oldest_of_anyone():
    blob = png(200)
    store = BlobStore(per_session=10 * len(blob), total=4 * len(blob))
    for i in range(8):
        store.put(f"s{i}", f"b{i}", "background", None, blob)
    assert store.bytes_kept() <= 4 * len(blob)
    assert store.take("b0") is None and store.take("b7") is not None


def test_old_submissions_expire_and_a_session_end_drops_its_own():
    store = BlobStore(max_age=0.0)
    store.put("a", "old", "background", None, png())
    store.put("a", "new", "layer", 0, png())  # the old one is past its age now
    assert store.take("old") is None
    store.max_age = 600
    store.put("b", "kept", "background", None, png())
    store.forget("b")
    assert store.take("kept") is None


def test_a_bad_blob_is_not_kept_and_its_submission_says_why():
    store = BlobStore()
    store.put("a", "x", "background", None, b"\x89PNG\r\n\x1a\n not an image")
    store.put("a", "x", "layer", 0, png())  # the rest of a refused submission is not kept either
    item = store.take("x")
    assert item.error is not None and "not a readable image" in item.error and item.size == 0
    store.put("a", "y", "layer", 99, png())
    assert "unknown kind" in store.take("y").error
    store.put("a", "z", "composite", None, b"anything")  # never read, never kept
    assert store.bytes_kept("a") == 0
