"""The records of a job's finished cells: one JSON file each, `FOLDER/KEY.json`, written whole
(after the files it names), so a record that exists is complete and a cell counts as done from
the moment its record is there."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from ilo_core.atomic import write_bytes, write_json


class RecordStore:
    """Records under `folder`; files a cell returns go under `files_root` (by their relative
    names), or, with no `files_root`, are left to the caller (`CellEvent.files`)."""

    def __init__(self, folder: str | Path, files_root: str | Path | None = None) -> None:
        self.folder = Path(folder)
        self.files_root = Path(files_root) if files_root is not None else None

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of a cell, or None (none yet, or a file that is no record)."""
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def save(self, record: dict[str, Any], files: dict[str, bytes] | None = None) -> None:
        """Write the cell's files in their order, then its record (each whole or not at all)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, data in (files or {}).items() if self.files_root is not None else ():
            target = self.files_root / safe_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(data, target)
        write_json({**record, "files": list(files or {})}, self.path(record["key"]))


def safe_relative(name: str) -> Path:
    """A cell's file name as a path inside the output folder; ValueError for one that leaves it."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", "") for p in parts) or "\\" in name:
        raise ValueError(f"a cell's file name must stay inside the output folder: {name!r}")
    return Path(*parts)
