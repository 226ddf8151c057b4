"""Folders and clips as cells, for `python -m ilo_core solve --image DIR|CLIP --cluster ...`.

A folder: one cell per batch of up to `--batch` photos still to repair (in folder order), each a
pure function of its spec (the folder settings, the generator's weights identity, the code
version, each photo's key: the settings and its photo's and mask's bytes). The photos' bytes
travel with the cell, so a worker needs no copy of the folder; it repairs them with
`FolderRepair` and sends back each photo's PNG and record, which the driver writes as a
one-process job does (NAME.png, then NAME.json), so a re-run skips what is done by the same rule.

A clip: one cell (its frames stay in order on one worker: each frame starts from its
neighbour's answer), sent with the clip's bytes and its painted mask; the repaired video (and
the key frame's GIF) come back as bytes and are written whole by the driver.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ilo_core.cluster import Cell, WorkerContext, code_version
from ilo_core.cluster.resources import cell_resources
from ilo_core.cluster.shipping import generator_spec
from ilo_core.engine.warm import WarmStart
from ilo_core.frontends.export import FrameRecorder
from ilo_core.generators.base import SplitGenerator
from ilo_core.photo.intake import PhotoTask
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import probe_clip
from ilo_core.sequences.folder_repair import FolderRepair, FolderSettings


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def folder_cells(job: FolderRepair, planned: list[tuple[Path, str]], gpus: bool, cpus: int = 1) -> list[Cell]:
    """The cells of a folder job's photos to repair (`FolderRepair.plan`), `job.settings.batch` a cell."""
    settings = asdict(job.settings)
    batch = job.settings.batch
    cells = []
    for start in range(0, len(planned), batch):
        group = planned[start:start + batch]
        spec = {"job": "folder", "code": code_version(), "generator": generator_spec(job.generator),
                "settings": settings, "threads": cpus, "device": "cuda" if gpus else "cpu",
                "photos": [{"name": photo.name, "key": key} for photo, key in group]}
        masks = {photo.name: job.masks.get(photo) for photo, _ in group}

        def read(group=group, masks=masks) -> dict[str, tuple[bytes, bytes | None]]:
            return {photo.name: (photo.read_bytes(), masks[photo.name].read_bytes() if masks[photo.name] else None)
                    for photo, _ in group}

        label = f"photos {start + 1}-{start + len(group)} of {len(planned)}"
        cells.append(Cell(spec, label, cell_resources(job.generator.resolution, len(group), gpus, cpus=cpus), read))
    return cells


def settings_of(data: dict[str, Any]) -> FolderSettings:
    return FolderSettings(PhotoTask(**data["task"]), data["method"], data["align"],
                          tuple(data["steps"]) if data["steps"] else None, data["seed"], data["batch"])


def repair_photos(spec: dict[str, Any], payload: dict[str, tuple[bytes, bytes | None]], shared: Any,
                  context: WorkerContext) -> dict:
    """A folder cell: its photos repaired -> their records, and NAME.png then NAME.json of each
    repaired photo."""
    with tempfile.TemporaryDirectory(prefix="ilo-photos-") as folder:
        inbox, masks_dir, out = Path(folder) / "in", Path(folder) / "masks", Path(folder) / "out"
        for d in (inbox, masks_dir, out):
            d.mkdir()
        photos, masks = [], {}
        for item in spec["photos"]:
            photo_bytes, mask_bytes = payload[item["name"]]
            photo = inbox / item["name"]
            photo.write_bytes(photo_bytes)
            photos.append(photo)
            masks[photo] = None
            if mask_bytes is not None:
                masks[photo] = masks_dir / f"{len(masks)}.png"
                masks[photo].write_bytes(mask_bytes)
        job = FolderRepair(context.generator(), photos, out, settings_of(spec["settings"]), masks, force=True)
        records = []
        for record in job.run():
            records.append(record)
            context.say(f"photo {len(records)} of {len(photos)} done")
        files = {}
        for record in records:
            if record["status"] == "repaired":
                stem = Path(record["photo"]).stem
                files[f"{stem}.png"] = (out / f"{stem}.png").read_bytes()
                files[f"{stem}.json"] = (out / f"{stem}.json").read_bytes()
    return {"data": {"records": records}, "files": files}


def request_spec(request: ClipRequest) -> dict[str, Any]:
    return {**asdict(request), "warm": None if request.warm is None else asdict(request.warm)}


def request_of(data: dict[str, Any]) -> ClipRequest:
    steps = tuple(data["steps"]) if data["steps"] else None
    warm = None if data["warm"] is None else WarmStart(**data["warm"])
    return ClipRequest(PhotoTask(**data["task"]), data["method"], data["key_frame"], data["align"], data["face"],
                       steps, warm, data["seed"])


def clip_cell(clip: Path, fps: float | None, request: ClipRequest, painted: np.ndarray | None, out_suffix: str,
              gif: bool, generator: SplitGenerator, gpus: bool, cpus: int = 1) -> Cell:
    """The one cell of a clip job (the clip and its mask by their hashes)."""
    clip_bytes = clip.read_bytes()
    mask = None if painted is None else np.packbits(painted.astype(bool)).tobytes()
    spec = {"job": "clip", "code": code_version(), "generator": generator_spec(generator), "threads": cpus,
            "device": "cuda" if gpus else "cpu", "clip": _digest(clip_bytes), "suffix": clip.suffix.lower(),
            "fps": fps, "request": request_spec(request), "out": out_suffix.lower(), "gif": gif,
            "mask": None if painted is None else {"shape": list(painted.shape), "bits": _digest(mask)}}
    payload = {"clip": clip_bytes, "mask": mask}
    return Cell(spec, clip.name, cell_resources(generator.resolution, 1, gpus, cpus=cpus), payload)


def repair_clip(spec: dict[str, Any], payload: dict[str, Any], shared: Any, context: WorkerContext) -> dict:
    """A clip cell: the clip repaired -> its report, and the repaired video ("clip") and the key
    frame's GIF ("gif") as bytes."""
    painted = None
    if spec["mask"] is not None:
        shape = spec["mask"]["shape"]
        bits = np.frombuffer(payload["mask"], dtype=np.uint8)
        painted = np.unpackbits(bits)[:shape[0] * shape[1]].reshape(shape).astype(bool)
    with tempfile.TemporaryDirectory(prefix="ilo-clip-cell-") as folder:
        source, target = Path(folder) / f"clip{spec['suffix']}", Path(folder) / f"repaired{spec['out']}"
        source.write_bytes(payload["clip"])
        work = Path(folder) / "work"
        work.mkdir()
        info = probe_clip(source, spec["fps"])
        job = ClipRepair(context.generator(), info, request_of(spec["request"]), painted, work)
        recorder = FrameRecorder() if spec["gif"] else None
        if recorder is not None:
            job.key_progress = recorder.add_progress
        said = 0.0
        for progress in job.run():
            if time.monotonic() - said > 1.0:  # the driver's bar: "frame 12 of 48, about 30 s left"
                said = time.monotonic()
                context.say(progress.describe())
        first, last, audio = job.write(target)
        files = {"clip": target.read_bytes()}
        if recorder is not None:
            files["gif"] = recorder.save_gif(Path(folder) / "key.gif").read_bytes()
    report = {"clip": info.describe(), "frames": job.frames, "written": [first, last], "audio": audio,
              "frame_seconds": {str(t): round(s, 3) for t, s in sorted(job.solved.items())},
              "left_as_they_are": {str(t): why for t, why in job.failed.items()}, "log": job.log}
    return {"data": report, "files": files}
