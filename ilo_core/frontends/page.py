"""What the Studio page does, without any UI toolkit: read the painted photo, pose the
problem, build the config from the controls, run one or two solves with throttled
updates, and write the downloads. `app.py` only wires this to Gradio widgets."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ilo_core.engine.auto import work_steps as auto_work_steps
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.methods import Solve
from ilo_core.engine.presets import default_config, default_estimate
from ilo_core.engine.solver import ILOSolver
from ilo_core.frontends.export import FrameRecorder
from ilo_core.generators.base import FaceFrame, SplitGenerator
from ilo_core.photo.alignment import ALIGNMENTS, align, aligned_crop, outline
from ilo_core.photo.images import ImageError, open_image, save_image_atomic, tensor_to_uint8
from ilo_core.photo.intake import InputError, PhotoTask, TakenPhoto, sentence, take_photo
from ilo_core.physics.operators import TASKS
from ilo_core.physics.problems import Problem, evaluate, simulate

METHOD_LABELS = {"ILO": "ilo", "ILO, auto radii": "ilo-auto", "CSGM-MSE (PULSE-style)": "csgm-mse", "CSGM-LPIPS": "csgm-lpips",
                 "CSGM-MSE+LPIPS": "csgm-mse-lpips", "Compare ILO vs CSGM-MSE": "compare"}
TASK_LABELS = {"Inpainting (paint the region)": "inpaint", "Random inpainting": "random-inpaint",
               "Super-resolution": "super-resolution", "Denoising": "denoise",
               "Compressed sensing": "compressed-sensing"}
LOG = logging.getLogger("ilo_studio")
MAX_SEED = 2**31 - 1
NEEDS_IMAGE_VIEW = {"csgm-lpips", "csgm-mse-lpips"}  # LPIPS compares images: not for compressed sensing


def method_labels(task: str) -> list[str]:
    """The methods offered for a task (LPIPS baselines need measurements with an image view)."""
    return [label for label, m in METHOD_LABELS.items()
            if not (task == "compressed-sensing" and m in NEEDS_IMAGE_VIEW)]


def whole_number(value: object, name: str, top: int) -> int:
    """A control's value -> an int in [0, top]; InputError naming the control ("The seed") for
    text, NaN, inf, fractions and numbers out of range."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and 0 <= number <= top):
        raise InputError(f"{name} must be a whole number from 0 to {top}, got {value!r}.")
    return int(number)


def percent(label: str, value: object) -> float:
    """A percentage control's value (0, 100] -> a fraction; InputError naming it otherwise."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 100):
        raise InputError(f"The percentage of {label} must be in (0, 100], got {value}.")
    return value / 100


def parse_seed(value: object) -> int:
    """The seed control's value -> an int in [0, MAX_SEED] (`whole_number`)."""
    return whole_number(value, "The seed", MAX_SEED)


def read_editor(value: dict | None, size: int, align_how: str = "box", mask_file: str | Path | None = None,
                frame: FaceFrame = FaceFrame(), face: int = 0) -> TakenPhoto:
    """An ImageMask value (background / layers as file paths, bytes, arrays or PIL images) ->
    the photo intake (`take_photo`): its painted layers' alpha is the mask, joined by `mask_file`."""
    if not value or value.get("background") is None:
        raise InputError("Upload a photo first (or pick one of the examples).")
    return take_photo(value["background"], size, align_how, frame, layers=value.get("layers") or [],
                      mask_file=mask_file, face=face)


MODES = ["Simulate: my photo is clean", "My image is already degraded"]
# the controls of a Run, in the order of the page's inputs and of the typed API's parameters; the
# per-layer steps and radii sit between the two groups (`control_names`)
CONTROLS_BEFORE = ("editor", "task", "mode", "observed_pct", "sr_factor", "noise_sigma", "measurements_pct", "method",
                   "alignment", "face")
CONTROLS_AFTER = ("mse_weight", "lpips_weight", "geodesic_weight", "learning_rate", "seed", "l1_projection",
                  "fill_detail", "show_spread", "mask_file", "last_run")


def control_names(rounds: int, groups: list[str]) -> list[str]:
    """The parameter names of /run and /retune for a generator with `rounds` layer sliders and
    radius `groups` (round 0 has no radius)."""
    return [*CONTROLS_BEFORE, *[f"steps_layer_{r}" for r in range(rounds)],
            *[f"{g}_radius_layer_{r}" for g in groups for r in range(1, rounds)], *CONTROLS_AFTER]


@dataclass
class RunRequest:
    """One Run (or re-tune) as the page sends it: every control's value as it arrived (checked
    by `prepare_run`). `steps`: each layer's slider; `radii`: group -> [None, layer 1, ...];
    percentages in (0, 100]; `last_run`: the session's last finished run (gr.State) or None."""

    editor: dict | None
    task: str
    mode: str
    observed_pct: float
    sr_factor: object
    noise_sigma: object
    measurements_pct: float
    method: str
    alignment: str
    face: object
    steps: list
    radii: dict[str, list]
    mse_weight: object
    lpips_weight: object
    geodesic_weight: object
    learning_rate: object
    seed: object
    l1_projection: bool
    fill_detail: object
    show_spread: bool
    mask_file: str | None = None
    last_run: dict | None = None

    @classmethod
    def from_controls(cls, values: list, rounds: int, groups: list[str]) -> "RunRequest":
        """The page's input values, in `control_names` order -> the request."""
        v = dict(zip(control_names(rounds, groups), values))
        return cls(**{n: v[n] for n in (*CONTROLS_BEFORE, *CONTROLS_AFTER)},
                   steps=[v[f"steps_layer_{r}"] for r in range(rounds)],
                   radii={g: [None] + [v[f"{g}_radius_layer_{r}"] for r in range(1, rounds)] for g in groups})

    @property
    def degraded(self) -> bool:
        return self.mode == MODES[1]

    def settings_key(self, photo: TakenPhoto) -> tuple:
        """What a re-tune must share with the run it goes on from: the photo, the paint, and every
        setting but the per-layer steps and radii."""
        fixed = tuple((n, str(getattr(self, n))) for n in (*CONTROLS_BEFORE, *CONTROLS_AFTER)
                      if n not in ("editor", "last_run"))
        return hashlib.sha256(photo.original.tobytes() + photo.painted.tobytes()).hexdigest(), fixed


@dataclass
class PreparedRun:
    """A checked request: the photo taken in, the problem, and one config per method shown."""

    photo: TakenPhoto
    problem: Problem
    configs: dict[str, SolverConfig]
    task: str
    method: str  # a method name, or "compare"
    settings: PhotoTask | None = None  # the task's settings, as a clip's frames are posed with them


def method_label(choice: str) -> str:
    """A method's label in results and download names: 'CSGM-MSE (PULSE-style)' -> 'CSGM-MSE',
    'ILO, auto radii' as it is."""
    return choice.split(" (")[0]


def face_index(value: object) -> int:
    """The "Which face" control's value -> which face (0 = the largest); InputError beyond 0-99."""
    return whole_number(value, "Which face", 99)


def prepare_run(generator: SplitGenerator, request: RunRequest, original=lambda background: background) -> PreparedRun:
    """Check every control and take the photo in (`take_photo`); InputError with one sentence for
    anything wrong, before any work. `original(background)`: the full photo a display copy stands
    for (`DisplayCopies.original`)."""
    editor_value = request.editor
    if isinstance(editor_value, dict) and editor_value.get("error"):
        raise InputError(editor_value["error"])
    task, method = TASK_LABELS.get(request.task), METHOD_LABELS.get(request.method)
    if task is None or method is None:
        raise InputError(f"Unknown task or method: {request.task!r}, {request.method!r}.")
    seed = parse_seed(request.seed)
    if request.alignment not in ALIGNMENTS:
        raise InputError(f"Unknown alignment {request.alignment!r}: use {', '.join(ALIGNMENTS)}.")
    if isinstance(editor_value, dict):  # painted on a display copy: the photo itself is repaired
        editor_value = {**editor_value, "background": original(editor_value.get("background"))}
    photo = read_editor(editor_value, generator.resolution, request.alignment, request.mask_file,
                        generator.face_frame, face_index(request.face))
    settings = photo_task(task, request.degraded, observed_pct=request.observed_pct, factor=request.sr_factor or 0,
                          sigma=request.noise_sigma, measurements_pct=request.measurements_pct, seed=seed)
    problem = photo.pose(settings, generator.device)
    common = dict(steps=request.steps, radii=request.radii, observed_pct=request.observed_pct,
                  mse_weight=request.mse_weight, lpips_weight=request.lpips_weight,
                  geodesic_weight=request.geodesic_weight, lr=request.learning_rate, seed=seed,
                  l1_projection=request.l1_projection, fill_detail=request.fill_detail)
    if method == "compare":
        configs = {"ILO": build_config(generator, task, "ilo", **common),
                   "CSGM-MSE": build_config(generator, task, "csgm-mse", **common)}
    else:
        configs = {method_label(request.method): build_config(generator, task, method, **common)}
    return PreparedRun(photo, problem, configs, task, method, settings)


DISPLAY_SIDE = 1600  # a photo larger than this (either side) is painted on a copy of this size


class DisplayCopies:
    """Display-size copies of large photos for the editor's canvas, per browser session.

    A 12-megapixel phone photo drawn on the canvas at full size stalls the browser; the canvas
    gets an upright copy at most DISPLAY_SIDE px wide and high instead, and a run finds the
    full photo again by the copy's content (`original`): the strokes, painted on the copy, are
    scaled to the full photo (`read_layer`). Thread-safe; `forget` drops a session's copies."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._originals: dict[str, dict[str, str | Path]] = {}   # session -> {copy's sha256: the photo}

    def make(self, session: str, photo: str | Path) -> Path | None:
        """A display copy of `photo` (a file path) when it is larger than DISPLAY_SIDE, else None."""
        image = open_image(photo, "the photo")
        if max(image.size) <= DISPLAY_SIDE:
            return None
        image.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.BILINEAR, reducing_gap=2.0)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkstemp(prefix="display_", suffix=".png", dir=self.folder)[1])
        save_image_atomic(image, path)
        with self._lock:
            self._originals.setdefault(session, {})[hashlib.sha256(path.read_bytes()).hexdigest()] = photo
        return path

    def original(self, session: str, background: str | Path | bytes | None) -> str | Path | bytes | None:
        """The full photo a display copy stands for (by content), else `background` itself."""
        if background is None:
            return None
        with self._lock:
            known = dict(self._originals.get(session, {}))
        if not known:
            return background
        try:
            data = bytes(background) if isinstance(background, (bytes, bytearray, memoryview)) else Path(background).read_bytes()
        except OSError:
            return background
        return known.get(hashlib.sha256(data).hexdigest(), background)

    def forget(self, session: str) -> None:
        with self._lock:
            self._originals.pop(session, None)


def crop_preview(path: str | Path | bytes | None, size: int, align_how: str = "box",
                 frame: FaceFrame = FaceFrame(), face: int = 0) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(the aligned crop, the photo with the square outlined, a one-line note) for an upload
    (a file path or the file's bytes); `face`: which face of several (0 = the largest)."""
    if path is None or (isinstance(path, str) and not path):
        return None, None, ""
    try:
        photo = np.asarray(open_image(path, "the photo"))
    except ImageError as err:
        raise InputError(sentence(str(err))) from None
    try:
        alignment = align(photo, align_how, frame, face=face)
    except ValueError as err:
        raise InputError(sentence(str(err))) from None
    note = alignment.describe() + f", resized to {size} px"
    if alignment.method != align_how:
        note += f" (no face found for '{align_how}', so '{alignment.method}' was used)"
    return np.asarray(aligned_crop(photo, alignment, size)), outline(photo, alignment), note


def pose_problem(inputs: TakenPhoto, task: str, degraded: bool, *, observed_pct: float, factor: int,
                 sigma: float, measurements_pct: float, seed: int, device: torch.device) -> Problem:
    """The inverse problem from the page's choices (percentages in (0, 100]): `TakenPhoto.pose`."""
    return inputs.pose(photo_task(task, degraded, observed_pct=observed_pct, factor=factor, sigma=sigma,
                                  measurements_pct=measurements_pct, seed=seed), device)


def photo_task(task: str, degraded: bool, *, observed_pct: float, factor: int, sigma: float,
               measurements_pct: float, seed: int) -> PhotoTask:
    """The task's settings from the page's choices (percentages in (0, 100]), checked."""
    observed, measurements = percent("observed pixels", observed_pct), percent("measurements", measurements_pct)
    return PhotoTask(task, degraded, observed=observed, factor=int(number("The SR factor", factor)),
                     sigma=number("The noise sigma", sigma), measurements=measurements, seed=seed)


def number(label: str, value: object) -> float:
    """A control's value as a finite float; InputError naming the control otherwise."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        raise InputError(f"{label} must be a number, got {value!r}.")
    return out


def build_config(generator: SplitGenerator, task: str, method: str, *, steps: list[int],
                 radii: dict[str, list[float]], observed_pct: float, mse_weight: float, lpips_weight: float,
                 geodesic_weight: float, lr: float, seed: int, l1_projection: bool = True,
                 fill_detail: float | None = None) -> SolverConfig:
    """A validated config from per-layer controls. Layers with 0 steps end the schedule.
    `fill_detail` (px; None = the generator's) applies where the answer is the mean of several
    starts on a painted hole.

    `radii[group][r]` is round r's radius (entry 0, round 0's, is ignored: CSGM is unconstrained).
    """
    rounds = []
    for s in steps:
        value = number("Steps per layer", s)
        if value < 0 or value != int(value):
            raise InputError(f"Steps per layer must be whole numbers >= 0, got {list(steps)}.")
        if int(value) == 0:
            break
        rounds.append(int(value))
    if not rounds:
        raise InputError("Give layer 0 at least one step.")
    try:
        cfg = default_config(generator, task, "ilo" if method == "compare" else method,
                             observed=number("Observed pixels", observed_pct) / 100, steps=rounds, seed=int(seed),
                             lr=number("The learning rate", lr),
                             geodesic_weight=number("The geodesic weight", geodesic_weight))
    except ValueError as err:
        if isinstance(err, InputError):
            raise
        raise InputError(str(err)[:1].upper() + str(err)[1:] + ".") from None
    if cfg.method == "ilo":
        cfg.radii = {g: [None] + [number(f"The {g} radius", v) for v in values[1:len(rounds)]]
                     for g, values in radii.items()}
        cfg.l1_projection = bool(l1_projection)
    if cfg.mse_weight > 0:
        cfg.mse_weight = number("The MSE weight", mse_weight)
    if cfg.lpips_weight > 0 or (cfg.method == "ilo" and task != "compressed-sensing"):
        cfg.lpips_weight = number("The LPIPS weight", lpips_weight)  # ILO: the slider rules
    if cfg.estimate.fill_detail > 0 and fill_detail is not None:  # the default has detail where it applies
        cfg.estimate = replace(cfg.estimate, fill_detail=number("Fill detail", fill_detail))  # the slider rules
    try:
        return cfg.validate(generator.num_layers)
    except ValueError as err:
        raise InputError(str(err)) from None


@dataclass
class Update:
    """One refresh of the page."""

    preview: np.ndarray | None = None
    status: str = ""
    curve: list[tuple[int, str, float]] = field(default_factory=list)   # (step, series, log10 value)
    final: dict | None = None   # present once: images, metrics, files


class StopFlag:
    """Set by the Stop button; checked between steps."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class SessionRuns:
    """The solves of each browser session, so that Stop reaches every one of them.

    A run asks `start(session, queued_at)` when it begins: it gets a StopFlag, or None when
    Stop was pressed after it was queued (a stopped queued run never starts). `stop(session)`
    sets the flag of every run of the session and remembers when, for the runs still queued.
    Times are `time.monotonic()` seconds. One instance per page, shared by its threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, set[StopFlag]] = {}
        self._stopped_at: dict[str, float] = {}

    def start(self, session: str, queued_at: float) -> StopFlag | None:
        with self._lock:
            if queued_at <= self._stopped_at.get(session, -math.inf):
                return None
            flag = StopFlag()
            self._running.setdefault(session, set()).add(flag)
            return flag

    def finish(self, session: str, flag: StopFlag) -> None:
        with self._lock:
            flags = self._running.get(session, set())
            flags.discard(flag)
            if not flags:
                self._running.pop(session, None)

    def stop(self, session: str) -> int:
        """Stop every run of the session (running now or queued before now); returns how many were running."""
        with self._lock:
            self._stopped_at[session] = time.monotonic()
            flags = self._running.get(session, set())
            for flag in flags:
                flag.set()
            return len(flags)

    def running(self, session: str) -> int:
        with self._lock:
            return len(self._running.get(session, ()))

    def forget(self, session: str) -> None:
        """The session has ended: stop its runs and drop what is kept about it."""
        self.stop(session)
        with self._lock:
            self._stopped_at.pop(session, None)


class OutputFolders:
    """Each run's downloads in a folder of its own under `root`, grouped by session.

    A session's folders are deleted when it ends (`forget`), and any run folder older than
    `max_age` seconds whenever a new one is made (`sweep`), like Gradio's own cache. Session
    ids come from the client, so they name folders only through a hash.
    """

    def __init__(self, root: Path | None = None, max_age: float = 3600.0) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.gettempdir()) / "ilo_studio"
        self.max_age = max_age

    def _session_dir(self, session: str) -> Path:
        return self.root / hashlib.sha256(session.encode()).hexdigest()[:16]

    def new(self, session: str) -> Path:
        self.sweep()
        folder = self._session_dir(session)
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="run_", dir=folder))

    def forget(self, session: str) -> None:
        shutil.rmtree(self._session_dir(session), ignore_errors=True)

    def sweep(self) -> int:
        """Delete run folders older than max_age (and session folders left empty); returns how many."""
        if not self.root.is_dir():
            return 0
        cutoff, removed = time.time() - self.max_age, 0
        for session in self.root.iterdir():
            for run in (session.iterdir() if session.is_dir() else ()):
                try:
                    if run.stat().st_mtime < cutoff:
                        shutil.rmtree(run, ignore_errors=True)
                        removed += 1
                except FileNotFoundError:  # another process swept it first
                    continue
            try:
                session.rmdir()  # only when empty
            except OSError:
                pass
        return removed


def file_stem(label: str) -> str:
    """A method's label as the start of a download's name: 'ILO, auto radii' -> 'ilo-auto-radii'."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "result"


def first_changed_round(old: SolverConfig, new: SolverConfig) -> int | None:
    """The first round that `new` runs differently from `old` when only per-round settings
    changed (None when nothing changed); -1 when a setting of every round changed."""
    if new.to_dict() == old.to_dict():
        return None
    for k in range(min(old.rounds, new.rounds), -1, -1):
        if new.same_before(old, k) and k < new.rounds:
            return k
    return -1


def run_job(generator: SplitGenerator, problem: Problem, configs: dict[str, SolverConfig], stop: StopFlag,
            out_dir: Path, min_interval: float = 0.3, photo: TakenPhoto | None = None,
            rerun: dict[str, tuple[Solve, int]] | None = None) -> Iterator[Update]:
    """Run one solve per config (e.g. ILO and CSGM-MSE), yielding throttled updates, then
    the final update with images, metrics, downloads and the solvers. Stop keeps the best
    results (a solve stopped before its first step has none and is left out). With `photo`,
    each result is also pasted back into the whole photo (the first download). `rerun`
    maps a label to (its finished solver, the round to re-run from, its run's FrameRecorder or
    None) for live re-tuning: the GIF keeps the earlier rounds' frames, and the table counts the
    steps and seconds of the rounds re-run."""
    curve: list[tuple[int, str, float]] = []
    results: dict[str, dict] = {}
    last = 0.0
    for label, cfg in configs.items():
        if stop.is_set():
            break
        recorder, rerun_note = FrameRecorder(), ""
        if (rerun and label in rerun and rerun[label][0].round_start(rerun[label][1]) is not None
                and rerun[label][0].auto is None and rerun[label][0].config.estimate == cfg.estimate):
            solver, first_round, earlier = rerun[label]
            run = solver.rerun_from(first_round, cfg)
            if earlier is not None:
                recorder = earlier.before(first_round)
            rerun_note = f"re-ran from layer {first_round}, the earlier layers kept"
        else:  # ilo-auto chooses its radii and rounds on held-out observations
            solver = Solve(generator, problem.operator, problem.observation, cfg)
            run = solver.run()
        started = time.perf_counter()
        note, done, first = "", 0, None
        for event in run:
            done = event.done
            first = event.done - 1 if first is None else first  # a re-run's steps count from its first round
            recorder.add_progress(event)
            curve.append((event.done, f"{label} measurement", math.log10(max(event.losses["measurement_mse"], 1e-12))))
            if event.message:
                note = event.message
            if stop.is_set():
                run.close()
                note = "stopped: the best result so far is kept"
                break
            now = time.perf_counter()
            if now - last >= min_interval or event.done == event.total:
                last = now
                left = event.elapsed / event.done * (event.total - event.done)
                yield Update(
                    preview=None if event.image is None else tensor_to_uint8(event.image),
                    status=(f"**{label}** · {event.phase + ' · ' if event.phase else ''}"
                            f"layer {event.split} (round {event.round_index + 1}/{cfg.rounds}) · "
                            f"step {event.step + 1}/{event.round_steps} · total {event.done}/{event.total} · "
                            f"measurement MSE {event.losses['measurement_mse']:.5f} · {event.elapsed:.1f} s, "
                            f"about {left:.0f} s left"),
                    curve=list(curve))
        seconds = time.perf_counter() - started
        if solver.choices and not note:
            note = solver.describe_choice(0)
        best = solver.best[0]
        if best is None:
            if stop.is_set():
                break
            raise InputError("The run produced no finite result; try a smaller learning rate.")
        stem = file_stem(label)
        png, gif, state = out_dir / f"{stem}_result.png", out_dir / f"{stem}_progress.gif", out_dir / f"{stem}_state.safetensors"
        save_image_atomic(best.image, png)
        recorder.save_gif(gif, final=best.image)
        best.save(state)
        image = tensor_to_uint8(best.image)
        files = [str(png), str(gif), str(state)]
        repaired = None
        if photo is not None:
            repaired = photo.paste(image, problem.task)
            repaired_png = out_dir / f"{stem}_repaired_photo.png"
            save_image_atomic(Image.fromarray(repaired), repaired_png)
            files.insert(0, str(repaired_png))
        spread = solver.spread()
        results[label] = {"image": image, "repaired": repaired, "solver": solver,
                          "spread": None if spread is None else spread[0].cpu(),
                          "metrics": evaluate(best.image.to(generator.device), problem),
                          "seconds": seconds, "steps": done - (first or 0), "files": files, "recorder": recorder,
                          "note": "; ".join(n for n in (rerun_note, note) if n), "best_layer": best.split}
    if not results:
        yield Update(status="Stopped before the first step: there is no result to show.", curve=list(curve))
        return
    yield Update(status=_summary(results), curve=list(curve),
                 final={"results": results, "observation": tensor_to_uint8(problem.observation_image()),
                        "clean": None if problem.clean is None else tensor_to_uint8(problem.clean)})


def seconds_per_step(generator: SplitGenerator, steps: int = 3, batch: int = 1) -> float:
    """Measured seconds of one default ILO step (super-resolution) of a batch of `batch` images
    on this machine, for estimates."""
    x = torch.zeros(batch, 3, generator.resolution, generator.resolution, device=generator.device)
    problem = simulate("super-resolution", x, factor=4 if generator.resolution % 4 == 0 else 2)
    config = default_config(generator, "super-resolution", steps=[steps + 1])
    solver = ILOSolver(generator, problem.operator, problem.observation, config)
    events = solver.run()
    next(events)  # the first step pays one-time costs
    started = time.perf_counter()
    for _ in events:
        pass
    return (time.perf_counter() - started) / steps


def step_seconds(generator: SplitGenerator) -> dict[int, float]:
    """Measured seconds of one step per batch size a page's solve runs: 1, and the number of
    starts a hole averages (`default_estimate`)."""
    sizes = sorted({1, *(default_estimate(generator, t).starts for t in TASKS)})
    return {n: seconds_per_step(generator, batch=n) for n in sizes}


def estimate_seconds(generator: SplitGenerator, task: str, method: str, steps: list[int],
                     seconds: dict[int, float]) -> tuple[float, list[str], float, bool]:
    """(seconds, what they cover in words, seconds per step, an upper bound?) of one method's
    solve for the steps sliders (a 0 ends the schedule), from `step_seconds`: a hole's starts
    and ilo-auto's candidates count."""
    active = []
    for value in steps:
        if not value:
            break
        active.append(int(value))
    starts = default_estimate(generator, task, method).starts
    work = auto_work_steps(active) if method == "ilo-auto" and len(active) >= 2 else sum(active)
    per_step = seconds.get(starts, seconds[1] * starts)
    parts = [f"{sum(active)} steps"]
    if starts > 1:
        parts.append(f"the mean of {starts} starts as one batch")
    if work != sum(active):
        parts.append(f"the radii candidates: up to {work / max(1, sum(active)):.1f}x the work")
    return work * per_step, parts, per_step, work != sum(active)


def run_estimate(generator: SplitGenerator, task: str, method: str, steps: list[int],
                 seconds: dict[int, float]) -> str:
    """The page's time estimate in words (`estimate_seconds`); compare mode runs ILO, with its
    starts, and then CSGM-MSE."""
    where = f" on this {generator.device.type}"
    if method == "compare":
        ilo, parts, per_step, _ = estimate_seconds(generator, task, "ilo", steps, seconds)
        csgm, _, csgm_step, _ = estimate_seconds(generator, task, "csgm-mse", steps, seconds)
        return (f"About **{ilo + csgm:.0f} s** for both: ILO, " + ", ".join(parts) + f" ({ilo:.0f} s), then "
                f"CSGM-MSE, one start ({csgm:.0f} s){where} ({per_step * 1000:.0f} and {csgm_step * 1000:.0f} ms "
                f"per step, measured at start-up).")
    total, parts, per_step, bound = estimate_seconds(generator, task, method, steps, seconds)
    return (f"{'Up to' if bound else 'About'} **{total:.0f} s** for " + ", ".join(parts) + where
            + f" ({per_step * 1000:.0f} ms per step, measured at start-up).")


def load_saved(path: str | Path, generator: SplitGenerator) -> tuple[np.ndarray, str]:
    """A saved result file -> its image re-rendered by `generator` (uint8) and a one-line note."""
    from ilo_core.engine.reconstruction import Reconstruction

    try:
        saved = Reconstruction.load(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = tensor_to_uint8(saved.render(generator))  # checked against the generator first
    except (ValueError, OSError, KeyError) as err:
        raise InputError(f"That file cannot be loaded: {str(err).splitlines()[0]}") from None
    except Exception as err:  # safetensors' own errors for a damaged file
        raise InputError(f"That file is not a readable result file ({type(err).__name__}).") from None
    note = (f"Loaded a saved result: layer {saved.split} (round {saved.round_index + 1}), "
            f"measurement MSE {saved.measurement_mse:.5f}, re-rendered by this generator.")
    if caught:
        note += f" Note: {sentence(str(caught[0].message))}"
    return image, note


def _summary(results: dict[str, dict]) -> str:
    rows = ["| method | PSNR dB | LPIPS | meas. MSE | steps run | time (s) |", "|---|---|---|---|---|---|"]
    for label, r in results.items():
        m = r["metrics"]
        psnr = "—" if m["psnr"] is None else f"{m['psnr']:.2f}"
        lp = "—" if m["lpips"] is None else f"{m['lpips']:.3f}"
        rows.append(f"| {label} | {psnr} | {lp} | {m['measurement_mse']:.5f} | {r['steps']} | {r['seconds']:.1f} |")
    notes = [f"{label}: {r['note']}" for label, r in results.items() if r["note"]]
    legend = ("meas. MSE: the error on what was observed (the kept pixels or the measurements; images in [-1, 1]); "
              "PSNR and LPIPS compare with the clean photo where there is one.")
    return "\n".join(rows + ["", legend] + ([""] + notes if notes else []))


def new_output_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ilo_studio_"))
