"""A folder of photos repaired as one job: every photo through the photo intake, the photos
whose inverse problems share one operator solved together as one batch ([B, 3, R, R]), every
photo's repaired image (at its own size) and its record written as it is done.

    job = FolderRepair(generator, photos, out, FolderSettings(PhotoTask("super-resolution")))
    for done in job.run():          # one event per photo, repaired, skipped or failed
        ...
    job.summary()

A photo that cannot be used (unreadable, no face where the task needs one, a mask of the wrong
size) is one failed record with its one-sentence reason; the rest go on. A photo whose outputs
exist for the same settings (its record's `settings` key: the settings, the generator's weights
and this photo's bytes) is skipped; `force` repairs it again. A file in the way that is no
result of this job (no record beside it) is never overwritten. Painted holes differ from photo to
photo, so each is its own batch; the other tasks' operators are the same for every photo of a
size and seed, so those photos share batches.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ilo_core.atomic import write_json
from ilo_core.engine.methods import Solve
from ilo_core.engine.presets import default_config
from ilo_core.generators.base import SplitGenerator
from ilo_core.photo.images import ImageError, image_size, save_image_atomic, tensor_to_uint8
from ilo_core.photo.intake import InputError, PhotoTask, TakenPhoto, take_photo
from ilo_core.physics.problems import Problem, evaluate_batch

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
BATCH = 8  # photos solved together at most


@dataclass(frozen=True)
class FolderSettings:
    """What every photo of the folder gets (`align` None: landmarks, or center for a photo
    already the generator's size, as for one photo)."""

    task: PhotoTask
    method: str = "ilo"
    align: str | None = None
    steps: tuple[int, ...] | None = None
    seed: int = 0
    batch: int = BATCH

    def key(self, generator: SplitGenerator) -> str:
        """What a photo's outputs were made with (with its own bytes' hash: `FolderRepair`)."""
        text = json.dumps({**asdict(self), "batch": None, "generator": generator.identity}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def list_photos(folder: Path) -> list[Path]:
    """The folder's photos (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def match_masks(photos: list[Path], mask: Path | None) -> dict[Path, Path | None]:
    """Each photo's mask: from a folder, the file of the same name stem (a photo without one gets
    None, failed when the task needs a mask); one file, for every photo."""
    if mask is None:
        return {p: None for p in photos}
    if mask.is_dir():
        stems = {m.stem: m for m in mask.iterdir() if m.is_file() and m.suffix.lower() in PHOTO_SUFFIXES}
        return {p: stems.get(p.stem) for p in photos}
    return {p: mask for p in photos}


class FolderRepair:
    """The repair of a folder's photos into `out` (see the module notes). `masks`: photo ->
    mask file (white = missing) or None."""

    def __init__(self, generator: SplitGenerator, photos: list[Path], out: Path, settings: FolderSettings,
                 masks: dict[Path, Path | None] | None = None, force: bool = False) -> None:
        names = {}
        for photo in photos:
            name = f"{photo.stem}.png"
            if name in names:
                raise InputError(f"{names[name].name} and {photo.name} would both be written as {name}: "
                                 f"rename one of them.")
            names[name] = photo
        self.generator, self.photos, self.out, self.settings = generator, photos, Path(out), settings
        self.masks = masks or {}
        self.force = force
        self.config_key = settings.key(generator)
        self.records: list[dict] = []
        self.batches = 0  # solves run so far (a record's "batch" is the one it was solved in)
        self.config = default_config(generator, settings.task.task, settings.method,
                                     observed=settings.task.observed,
                                     steps=list(settings.steps) if settings.steps else None, seed=settings.seed)

    def output(self, photo: Path) -> Path:
        return self.out / f"{photo.stem}.png"

    def record_path(self, photo: Path) -> Path:
        return self.out / f"{photo.stem}.json"

    def _photo_key(self, photo: Path) -> str:
        digest = hashlib.sha256(photo.read_bytes()).hexdigest()[:16]
        mask = self.masks.get(photo)
        if mask is not None:
            digest += hashlib.sha256(mask.read_bytes()).hexdigest()[:16]
        return f"{self.config_key}-{digest}"

    def _done_before(self, photo: Path, key: str) -> bool:
        try:
            record = json.loads(self.record_path(photo).read_text())
        except (OSError, ValueError):
            return False
        return record.get("settings") == key and record.get("status") == "repaired" and self.output(photo).is_file()

    def plan(self) -> Iterator[tuple[Path, str] | dict]:
        """The photos to repair, each as (photo, its key), and a record for each photo that is
        not (skipped: done before; failed: unreadable, or a file in the way), in folder order."""
        for photo in self.photos:
            try:
                key = self._photo_key(photo)
            except OSError as err:
                yield self._record(photo, "failed", f"{photo.name} could not be read: {err.strerror or err}.")
                continue
            if not self.force and self._done_before(photo, key):
                yield self._record(photo, "skipped", "repaired before with the same settings")
                continue
            if self.output(photo).exists() and not self.record_path(photo).exists():
                yield self._record(photo, "failed", f"{self.output(photo)} exists and is no earlier result of "
                                                    f"this job: it was not overwritten.")
                continue
            yield photo, key

    def run(self) -> Iterator[dict]:
        """One record per photo, in the folder's order as batches finish: {"photo", "status"
        ("repaired", "skipped" or "failed"), "reason", "seconds", metrics}."""
        pending: list[tuple[Path, str, TakenPhoto, Problem]] = []
        for planned in self.plan():
            if isinstance(planned, dict):
                yield planned
                continue
            photo, key = planned
            try:
                taken, problem = self._pose(photo)
            except (InputError, ImageError) as err:
                text = str(err).strip()  # a file name first keeps its own case
                yield self._record(photo, "failed", text if text.endswith(".") else text + ".")
                continue
            if pending and (len(pending) >= self.settings.batch or not same_operator(pending[0][3], problem)):
                yield from self._solve(pending)
                pending = []
            pending.append((photo, key, taken, problem))
        if pending:
            yield from self._solve(pending)

    def _pose(self, photo: Path) -> tuple[TakenPhoto, Problem]:
        size = self.generator.resolution
        how = self.settings.align or ("center" if image_size(photo) == (size, size) else "landmarks")
        mask = self.masks.get(photo)
        if self.settings.task.task == "inpaint" and mask is None:
            raise InputError(f"{photo.name} has no mask of the same name: inpainting needs one.")
        taken = take_photo(photo, size, how, self.generator.face_frame, mask_file=mask)
        return taken, taken.pose(self.settings.task, self.generator.device)

    def _solve(self, batch: list[tuple[Path, str, TakenPhoto, Problem]]) -> Iterator[dict]:
        started = time.perf_counter()
        operator = batch[0][3].operator
        job = Solve(self.generator, operator, torch.cat([p.observation for *_, p in batch]), self.config)
        for _ in job.run():
            pass
        images = job.images()
        seconds = (time.perf_counter() - started) / len(batch)
        self.batches += 1
        for b, (photo, key, taken, problem) in enumerate(batch):
            image = images[b:b + 1]
            if not bool(torch.isfinite(image).all()):
                yield self._record(photo, "failed", "the solve reached no finite result.", seconds)
                continue
            repaired = taken.paste(tensor_to_uint8(image), self.settings.task.task)
            save_image_atomic(Image.fromarray(repaired), self.output(photo))
            metrics = evaluate_batch(image, Problem(problem.task, operator, problem.observation, problem.clean))[0]
            record = self._record(photo, "repaired", "", seconds, alignment=taken.how, settings=key,
                                  output=self.output(photo).name, batch=self.batches - 1, **metrics)
            write_json(record, self.record_path(photo))  # written last: the photo counts as done from here
            yield record

    def failed(self, photo: Path, reason: str) -> dict:
        """Record a photo as failed (for a batch repaired elsewhere that did not come back)."""
        return self._record(photo, "failed", reason)

    def _record(self, photo: Path, status: str, reason: str, seconds: float = 0.0, **extra) -> dict:
        record = {"photo": photo.name, "status": status, "reason": reason, "seconds": round(seconds, 3), **extra}
        self.records.append(record)
        return record

    def summary(self) -> dict:
        """Counts, seconds, and the mean of each metric over the repaired photos."""
        repaired = [r for r in self.records if r["status"] == "repaired"]
        out = {status: sum(r["status"] == status for r in self.records) for status in ("repaired", "skipped", "failed")}
        out["photos"] = len(self.records)
        out["seconds"] = round(sum(r["seconds"] for r in self.records), 3)
        for name in ("psnr", "lpips", "measurement_mse"):
            values = [r[name] for r in repaired if r.get(name) is not None]
            if values:
                out[f"mean_{name}"] = float(np.mean(values))
        return out


def same_operator(a: Problem, b: Problem) -> bool:
    """Whether two posed problems have one operator (its type and every buffer equal) and
    observations of one shape, so that they can be solved as one batch."""
    if type(a.operator) is not type(b.operator) or a.observation.shape != b.observation.shape:
        return False
    ours, theirs = dict(a.operator.named_buffers()), dict(b.operator.named_buffers())
    if ours.keys() != theirs.keys():
        return False
    return all(torch.equal(ours[k], theirs[k]) for k in ours) and _settings(a.operator) == _settings(b.operator)


def _settings(module: torch.nn.Module) -> dict:
    """A module's plain settings (numbers and strings), its submodules' too."""
    return {f"{name}.{key}": value for name, sub in module.named_modules() for key, value in vars(sub).items()
            if not key.startswith("_") and isinstance(value, (int, float, str, bool))}
