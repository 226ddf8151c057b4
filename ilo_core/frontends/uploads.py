"""Image blobs a page's editor pushes before a run, kept in bounded memory.

The image editor sends its background, painted layers and composite as separate blobs,
each under the id of the submission they belong to; the run that uses them takes them out.
A blob is checked by its image header before it is kept (nothing is decoded), and what is
kept is bounded three ways: per browser session (`per_session` bytes: a newer submission
evicts that session's older ones first), in all (`total` bytes: the oldest go first), and
by age (`max_age` seconds). A submission that lost a blob says so when it is taken.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ilo_core.photo.images import ImageError, image_size

MAX_LAYERS = 8


@dataclass
class Submission:
    """The blobs of one editor submission that the engine reads: the background and the painted
    layers (the composite is never read, so never kept)."""

    session: str
    background: bytes | None = None
    layers: list[bytes | None] = field(default_factory=list)
    error: str | None = None
    updated: float = 0.0

    @property
    def size(self) -> int:
        return sum(len(b) for b in (self.background, *self.layers) if b)


class BlobStore:
    """Bounded, thread-safe storage of editor submissions by id (see the module notes)."""

    def __init__(self, per_session: int = 48 << 20, total: int = 96 << 20, max_age: float = 600.0) -> None:
        self.per_session, self.total, self.max_age = per_session, total, max_age
        self._lock = threading.Lock()
        self._items: dict[str, Submission] = {}

    def put(self, session: str, blob_id: str, kind: str, index: int | None, data: bytes) -> None:
        """Keep one blob (`kind` "background", "layer" with its `index`, or "composite"). A blob
        that is not an acceptable image is not kept: its submission remembers the one-line reason."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            item = self._items.get(blob_id)
            if item is None or item.session != session:
                item = self._items[blob_id] = Submission(session=session)
            item.updated = now
            if item.error is not None:
                return
            if kind == "composite":
                return  # the engine never reads the composite: it is not kept
            try:
                if kind not in ("background", "layer") or (kind == "layer" and not (index is not None and 0 <= index < MAX_LAYERS)):
                    raise ImageError(f"an editor blob of an unknown kind ({kind!r}, {index!r})")
                else:
                    image_size(data, "the photo" if kind == "background" else "the painted layer")
                    if len(data) > self.per_session:
                        raise ImageError(f"the upload is {len(data) / 1e6:.0f} MB; "
                                         f"the limit is {self.per_session / 1e6:.0f} MB")
            except ImageError as err:
                item.background, item.layers, item.error = None, [], str(err)
                return
            if kind == "background":
                item.background = data
            elif kind == "layer":
                item.layers.extend([None] * (index + 1 - len(item.layers)))
                item.layers[index] = data
            self._bound(session, keep=blob_id)

    def take(self, blob_id: str) -> Submission | None:
        """The submission of `blob_id`, removed from the store (None when there is none)."""
        with self._lock:
            return self._items.pop(blob_id, None)

    def bytes_kept(self, session: str | None = None) -> int:
        with self._lock:
            return sum(i.size for i in self._items.values() if session is None or i.session == session)

    def forget(self, session: str) -> None:
        """The session has ended: drop its submissions."""
        with self._lock:
            for key in [k for k, i in self._items.items() if i.session == session]:
                del self._items[key]

    def _expire(self, now: float) -> None:
        for key in [k for k, i in self._items.items() if now - i.updated > self.max_age]:
            del self._items[key]

    def _bound(self, session: str, keep: str) -> None:
        """Evict the oldest submissions (other than `keep`) of the session, then of anyone,
        while over the limits; `keep` itself loses its blobs only if it alone is over."""
        def evict(candidates: list[str], limit: int, used) -> None:
            for key in sorted(candidates, key=lambda k: self._items[k].updated):
                if used() <= limit:
                    return
                del self._items[key]

        mine = [k for k, i in self._items.items() if i.session == session and k != keep]
        evict(mine, self.per_session, lambda: sum(i.size for i in self._items.values() if i.session == session))
        others = [k for k in self._items if k != keep]
        evict(others, self.total, lambda: sum(i.size for i in self._items.values()))
        item = self._items[keep]
        if item.size > self.per_session:
            item.background, item.layers = None, []
            item.error = f"the upload is over {self.per_session / 1e6:.0f} MB in all: use a smaller photo"
