"""ILO Studio: a Gradio page over the `ilo_core` engine (which never imports gradio).

    python app.py [--generator default|PATH] [--device auto|cpu|cuda] [--solve-slots N]
                  [--server-name 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
from gradio.components.base import server
import numpy as np
import pandas as pd
import torch
from PIL import Image

from ilo_core.accelerate import set_up_process, use_reference
from ilo_core.checkpoints import load_generator
from ilo_core.engine.config import LEARNING_RATE, MSE_WEIGHT
from ilo_core.engine.presets import (default_fill_detail, default_geodesic_weight, default_lpips_weight, default_radii,
                                     default_rounds, default_steps)
from ilo_core.engine.spread import SPREAD_STARTS, restart_spread, spread_heatmap, spread_summary
from ilo_core.frontends.page import (DISPLAY_SIDE, LOG, METHOD_LABELS, MODES, TASK_LABELS, DisplayCopies, InputError,
                                     OutputFolders, PreparedRun, RunRequest, SessionRuns, control_names, crop_preview,
                                     face_index, first_changed_round, load_saved, method_labels, prepare_run,
                                     run_estimate, run_job, sentence, step_seconds)
from ilo_core.frontends.page_clip import frame_index, key_frame, run_clip
from ilo_core.frontends.uploads import BlobStore
from ilo_core.generators import SplitGenerator
from ilo_core.perceptual.distance import get_lpips
from ilo_core.photo.alignment import ALIGNMENTS
from ilo_core.photo.images import ImageError, image_size, save_image_atomic, tensor_to_uint8
from ilo_core.sequences.clip_repair import CLIP_ALIGNMENTS, ClipRequest
from ilo_core.sequences.clips import ANIMATION_SUFFIXES, VIDEO_SUFFIXES

ASSETS = Path(__file__).resolve().parent / "assets"
CLIP_SUFFIXES = (*VIDEO_SUFFIXES, *ANIMATION_SUFFIXES)
CLIP_NOTE = ("The key frame is solved in full; every other frame starts from its neighbour's answer, so the "
             "repair does not flicker, at a fraction of the time. Stop keeps the frames done so far.")
# the results table: headers and numbers never break inside a word, and a narrow screen scrolls it sideways
PAGE_CSS = (".prose table th, .prose table td { word-break: keep-all; overflow-wrap: normal; white-space: nowrap; }"
            " .prose table { display: block; max-width: 100%; overflow-x: auto; }")


class CheckedImageMask(gr.ImageMask):
    """An ImageMask whose uploads reach the handler undecoded, each checked by its header.

    Gradio's own preprocessing decodes every part and re-saves it under the upload's name
    (an RGBA photo cannot be written as JPEG), drops EXIF orientation and clips 16-bit images;
    this one passes the files (paths, or bytes for the blobs the editor pushes) to the engine,
    which reads them as the CLI does (`open_image`). The blobs are kept in a bounded store
    (`ilo_core.frontends.uploads.BlobStore`: per session, in all, by age), each checked by its header
    when it arrives. A bad upload reaches the handler as `{"error": sentence}`.
    """

    blobs: BlobStore  # set by build_demo (not an argument: Gradio sends a component's arguments to the browser)

    def get_block_name(self) -> str:
        return "imageeditor"  # the frontend component it is drawn with

    @server
    def accept_blobs(self, data) -> None:
        fields = data.data if isinstance(data.data, dict) else {}
        index = fields.get("index")
        index = int(index) if isinstance(index, (int, str)) and str(index).isdigit() else None
        self.blobs.put(str(fields.get("session_hash")), str(fields.get("id")), str(fields.get("type")), index,
                       data.files[0][1] if data.files else b"")

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.id is not None:
            item = self.blobs.take(payload.id)
            if item is None:
                return editor_error("The photo did not reach the server or waited too long: upload it again.")
            if item.error is not None:
                return editor_error(item.error)
            background, layers = item.background, item.layers
        else:
            background = None if payload.background is None else payload.background.path
            layers = [layer.path for layer in payload.layers or [] if layer is not None]
        layers = [layer for layer in layers if layer is not None]
        try:
            if background is not None:
                image_size(background, "the photo")
            for layer in layers:
                image_size(layer, "the painted layer")
        except ImageError as err:
            return editor_error(str(err))
        return {"background": background, "layers": layers, "composite": None}


def editor_error(message: str) -> dict:
    """The editor value that carries a bad upload's sentence to the handler."""
    return {"background": None, "layers": [], "composite": None, "error": sentence(message)}


class RawNumber(gr.Number):
    """A number field whose value reaches the handler as typed (text, NaN, 1e30 too): the
    handler checks it and says what is wrong in words."""

    def get_block_name(self) -> str:
        return "number"

    def preprocess(self, payload):
        return payload


def shown(image, size: int = 256):
    """An H x W x 3 uint8 image resized smoothly (bicubic) to `size` for display; None stays None."""
    if image is None:
        return None
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


def radius_groups(generator: SplitGenerator) -> dict[str, list]:
    """The generator's own radii per group, one per layer; a group it never constrains has no sliders."""
    return {g: v for g, v in default_radii(generator).items() if any(x is not None for x in v)}


def example_paths(generator: SplitGenerator, folder: Path) -> list[str]:
    """The example faces, plus two samples of the loaded generator."""
    paths = sorted(str(p) for p in (ASSETS / "faces").glob("*.png"))
    with torch.no_grad():
        samples = generator.render(generator.sample_variables(2, torch.Generator(device=generator.device).manual_seed(7)))
    for i, s in enumerate(samples):
        path = folder / f"{generator.kind}_sample_{i}.png"
        save_image_atomic(torch.nn.functional.interpolate(s[None].cpu(), size=256, mode="bilinear"), path)
        paths.append(str(path))
    return paths


# --- the only place the page reads Gradio's private queue (no public API says when an event was
# queued or which wait); tests/frontends/test_page_reliability.py fails when a Gradio upgrade changes them
QUEUE_INTERNALS = {"queue": "_queue", "running": "active_jobs", "waiting": "event_queue_per_concurrency_id",
                   "event": ("request", "enqueue_time", "session_hash", "fn")}


def queued_at(demo: gr.Blocks, request: gr.Request) -> float:
    """When Gradio queued the event this handler runs for (time.monotonic()); now if unknown."""
    for job in getattr(getattr(demo, "_queue", None), "active_jobs", None) or []:
        for event in job or []:
            if getattr(event, "request", None) is request.request:
                return event.enqueue_time
    return time.monotonic()


def waiting_runs(demo: gr.Blocks, session: str) -> int:
    """How many of this session's solve events (run, retune) wait in Gradio's queue."""
    queues = getattr(getattr(demo, "_queue", None), "event_queue_per_concurrency_id", {}) or {}
    return sum(1 for q in queues.values() for e in q.queue
               if e.session_hash == session and getattr(e.fn, "api_name", None) in ("run", "retune"))


def user_error(message: str) -> None:
    """A person's input error: a toast where they look, and one line in the server log."""
    LOG.warning("input error: %s", message)
    gr.Warning(message)


RETUNE_SECONDS = 1800  # a finished run can be re-tuned for this long after it ends


def forget_run(run: dict | None) -> None:
    """Gradio drops a session's last run (its solvers, their kept round starts): let go of them now."""
    if isinstance(run, dict):
        run.clear()


class Studio:
    """The page for one loaded (shared, read-only) generator; controls adapt to it.

    What is the page's and not a session's lives here (the generator, the queue of solves, the
    Stop flags, the download folders, the display copies, the widgets); what is a session's
    lives in Gradio's per-session state (`last_run`) or is keyed by its session hash and
    dropped when it ends (`on_session_end`). Each handler is a method whose inputs are the
    widgets' values; a Run or a re-tune is one `RunRequest`.
    """

    def __init__(self, generator: SplitGenerator, solve_slots: int = 1, outputs_root: Path | None = None) -> None:
        self.generator, self.solve_slots = generator, solve_slots
        self.size = generator.resolution
        self.rounds = default_rounds(generator)
        self.groups = radius_groups(generator)
        self.runs, self.folders = SessionRuns(), OutputFolders(outputs_root)
        self.examples_dir = tempfile.TemporaryDirectory(prefix="ilo_studio_examples_")
        self.copies = DisplayCopies(Path(self.examples_dir.name) / "display")
        get_lpips("alex", generator.device)  # the result's LPIPS metric: loaded now, not in the first run
        self.step_cost = step_seconds(generator)  # seconds per step by batch size, for the estimate
        self.demo: gr.Blocks | None = None

    # --- the layout -------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        generator, size, rounds, groups = self.generator, self.size, self.rounds, self.groups
        factors = [f for f in (2, 4, 8, 16, 32) if size % f == 0 and size // f >= 2]
        with gr.Blocks(title="ILO Studio", delete_cache=(1800, 3600), analytics_enabled=False) as demo:
            self.demo = demo
            demo.examples_dir = self.examples_dir  # lives as long as the page
            # the session's last finished run, for re-tuning: Gradio's per-session state, dropped
            # RETUNE_SECONDS after the run or when the session's state goes
            self.last_run = gr.State(None, time_to_live=RETUNE_SECONDS, delete_callback=forget_run)
            gr.Markdown(f"# ILO Studio\nRepair a face with **Intermediate Layer Optimization** (Daras et al., ICML "
                        f"2021). Generator: `{generator.kind}` {size}x{size} on `{generator.device}`.")
            with gr.Row():
                with gr.Column(scale=1):
                    self.task = gr.Radio(list(TASK_LABELS), value=list(TASK_LABELS)[0], label="Task")
                    self.mode = gr.Radio(MODES, value=MODES[0], label="Mode",
                                         info="simulate: your clean photo is degraded here and restored (a demo); "
                                              "already degraded: your photo is the observation, and is repaired")
                    self.editor = CheckedImageMask(label="Photo: paint the region to reconstruct", type="filepath",
                                                   image_mode="RGBA", format="png", sources=["upload", "clipboard"],
                                                   layers=False, transforms=(), height=420,
                                                   brush=gr.Brush(colors=["#ff00ff"], default_size=24,
                                                                  color_mode="fixed"))
                    self.editor.blobs = BlobStore()
                    with gr.Row():
                        self.run_btn = gr.Button("Run", variant="primary")
                        self.stop_btn = gr.Button("Stop", variant="stop")
                    self.estimate = gr.Markdown(self.estimate_text(list(TASK_LABELS)[0], "ILO",
                                                                   *default_steps(generator)))
                    self.show_spread = gr.Checkbox(
                        value=False, label="Also show where it is guessing: the spread of its starts (free where the "
                                           "result is already their mean, as for painted holes; else "
                                           f"{SPREAD_STARTS} more starts, 2-3x the time)")
                    self.mask_file = gr.File(
                        label="Or upload a mask (white = repair; the photo's size or aspect ratio)",
                        file_types=["image"], type="filepath", height=90)
                    with gr.Accordion("Video: repair a clip", open=False):
                        self.clip_file = gr.File(
                            label="Clip (MP4, WebM, MOV, MKV, GIF, animated WebP): its key frame appears in the "
                                  "canvas above; paint on it", file_types=list(CLIP_SUFFIXES), type="filepath",
                            height=90, elem_id="clip-file")
                        self.key_frame = gr.Slider(0, 1, value=0, step=1, label="Key frame (paint on it; solved in "
                                                   "full, the others start from their neighbour)", visible=False)
                        self.clip_note = gr.Markdown(CLIP_NOTE)
                        self.clip_btn = gr.Button("Repair the whole clip", variant="primary", elem_id="clip-run")
                    self.alignment = gr.Radio(ALIGNMENTS, value="landmarks",
                                              label="Face alignment (landmarks: your face framed as the generator's "
                                                    "faces are; falls back to box, then centre)")
                    self.face = gr.Number(value=0, precision=0, minimum=0, maximum=99,
                                          label="Which face (several in the photo)",
                                          info="0 is the largest, 1 the next, ...; a painted hole picks the face "
                                               "under it")
                    with gr.Row():
                        self.crop = gr.Image(label=f"What the generator sees ({size} px)", interactive=False,
                                             height=150, width=150, elem_id="crop-image")
                        self.outlined = gr.Image(label="The aligned square on your photo", interactive=False,
                                                 height=150)
                    self.crop_note = gr.Markdown(label="Crop note")
                    self.example_pick = gr.Image(label="Example", type="filepath", height=120, interactive=False,
                                                 visible=False)
                    gr.Examples(examples=[[p] for p in example_paths(generator, Path(self.examples_dir.name))],
                                inputs=[self.example_pick], label="Examples")
                    with gr.Row():
                        self.observed = gr.Slider(1, 100, value=10, step=1, label="Observed pixels (%)", visible=False)
                        self.factor = gr.Dropdown(factors, value=4 if 4 in factors else factors[0], label="SR factor",
                                                  visible=False)
                        self.sigma = gr.Slider(1, 100, value=25, step=1, label="Noise sigma", visible=False,
                                               info="the noise's standard deviation in pixel units (0-255): 25 is "
                                                    "heavy grain")
                        self.measurements = gr.Slider(1, 100, value=10, step=1, label="Measurements (%)",
                                                      visible=False)
                    self.method = gr.Dropdown(method_labels(TASK_LABELS[self.task.value]), value="ILO", label="Method")
                    with gr.Accordion("Per-layer steps and l1 radii", open=False):
                        self.step_sliders, self.radius_sliders = [], {g: [] for g in groups}
                        for r in range(rounds):
                            with gr.Row():
                                self.step_sliders.append(gr.Slider(
                                    0, 300, value=self.task_steps()[r], step=1, label=f"layer {r}: steps",
                                    info=None if r == 0 else "0 ends the schedule here: this layer and every later "
                                                             "one are skipped"))
                                for g, values in groups.items():
                                    if r > 0:  # round 0 is CSGM: no ball
                                        top = 4 * max(x or 0 for x in values)
                                        self.radius_sliders[g].append(gr.Slider(
                                            0, top, value=values[r] or 0, step=10, label=f"layer {r}: {g} radius",
                                            info="how far this layer may move from where it starts: the l1 norm "
                                                 "(sum of absolute changes) of its deviation; 0 freezes it. Release "
                                                 "the slider after a run to re-run from this layer."))
                    with gr.Accordion("Advanced", open=False):
                        self.mse_w = gr.Slider(0, 10, value=MSE_WEIGHT, step=0.1, label="MSE weight")
                        self.lpips_w = gr.Slider(0, 10, value=default_lpips_weight(generator,
                                                                                   TASK_LABELS[self.task.value]),
                                                 step=0.1, label="LPIPS weight (ILO; follows the task's default)")
                        self.geo_w = gr.Slider(0, 1, value=default_geodesic_weight(generator), step=0.01,
                                               label="Geodesic weight")
                        self.lr = gr.Slider(0.001, 1.0, value=LEARNING_RATE, step=0.001, label="Learning rate")
                        self.seed = RawNumber(value=0, label="Seed (a whole number)")
                        self.l1 = gr.Checkbox(value=True, label="Project onto the l1 balls")
                        self.detail = gr.Slider(
                            0, 2, value=default_fill_detail(generator), step=0.1,
                            label="Fill detail (px, painted holes)",
                            info="the answer is the mean of several starts, blurred where they disagree: put back "
                                 "one start's detail finer than this into the hole (sharper, a little further from "
                                 "the truth); 0 = the plain mean")
                with gr.Column(scale=1):
                    self.status = gr.Markdown("Press **Run** to start.", label="Status")
                    self.before_after = gr.ImageSlider(label="Your photo: before / after (drag the handle)",
                                                       type="numpy", interactive=False, elem_id="before-after")
                    self.preview = gr.Image(label=f"Current iterate ({size} px, shown at 256 px)", interactive=False,
                                            height=256)
                    self.curve = gr.LinePlot(x="step", y="log10 MSE", color="series", label="Loss curve", height=220)
                    with gr.Row():
                        self.observation_img = gr.Image(label="Observation", interactive=False)
                        self.result_img = gr.Image(label=f"Result ({size} px)", interactive=False,
                                                   elem_id="result-image")
                        self.compare_img = gr.Image(label="CSGM-MSE", interactive=False, visible=False)
                        self.clean_img = gr.Image(label="Clean", interactive=False)
                    self.clip_out = gr.Video(label="Repaired clip", interactive=False, elem_id="clip-out")
                    self.files = gr.File(label="Downloads: photo, result, GIF, state", file_count="multiple",
                                         interactive=False, elem_id="downloads")
                    self.progression = gr.Image(label="Progression, layer by layer (GIF)", type="filepath",
                                                interactive=False, elem_id="progression")
                    self.spread_img = gr.Image(label="Where it is guessing: the spread of its starts "
                                                     "(bright = unsure)", interactive=False, elem_id="spread",
                                               visible=True)
                    self.saved_file = gr.File(label="Load a saved result (a *_state.safetensors download)",
                                              file_types=[".safetensors"], type="filepath", height=90)
            self.wire()
        demo.queue(max_size=16)
        return demo

    def wire(self) -> None:
        """The events: each widget's handler, inputs and outputs."""
        radius_sliders = [s for g in self.groups for s in self.radius_sliders[g]]
        self.task.change(self.show_params, [self.task, self.observed, self.method],
                         [self.observed, self.factor, self.sigma, self.measurements, self.lpips_w, self.method,
                          *self.step_sliders])
        self.observed.change(self.follow_observed, [self.task, self.observed], self.lpips_w)
        preview_outputs = [self.crop, self.outlined, self.crop_note]
        self.editor.upload(self.on_upload, [self.editor, self.alignment, self.face], preview_outputs,
                           api_name="upload").then(
            self.on_display_copy, [self.editor, self.crop_note], [self.editor, self.crop_note],
            api_name="display_copy", show_progress="hidden")
        for control in (self.alignment, self.face):
            control.change(self.on_upload, [self.editor, self.alignment, self.face], preview_outputs, api_name=False)
        self.example_pick.change(self.on_example, [self.example_pick, self.alignment], [self.editor, *preview_outputs])
        run_inputs = [self.editor, self.task, self.mode, self.observed, self.factor, self.sigma, self.measurements,
                      self.method, self.alignment, self.face, *self.step_sliders, *radius_sliders, self.mse_w,
                      self.lpips_w, self.geo_w, self.lr, self.seed, self.l1, self.detail, self.show_spread,
                      self.mask_file, self.last_run]
        run_outputs = [self.preview, self.status, self.curve, self.observation_img, self.result_img,
                            self.compare_img, self.clean_img, self.files, self.before_after, self.progression,
                            self.spread_img, self.last_run]
        run, retune = self.api(self.on_run), self.api(self.on_retune)
        self.run_btn.click(run, run_inputs, run_outputs, concurrency_limit=self.solve_slots,
                           concurrency_id="solve", api_name="run")
        # live re-tuning: releasing a layer's steps or radius slider re-runs from that layer
        gr.on([s.release for s in [*self.step_sliders, *radius_sliders]], retune, run_inputs, run_outputs,
              concurrency_limit=self.solve_slots, concurrency_id="solve", api_name="retune")
        self.stop_btn.click(self.on_stop, None, self.status, concurrency_limit=None, api_name="stop")
        self.demo.unload(self.on_session_end)
        self.clip_file.upload(self.on_clip, [self.clip_file], [self.editor, self.key_frame, self.clip_note],
                              api_name="clip")
        self.key_frame.release(self.on_key_frame, [self.clip_file, self.key_frame], [self.editor, self.clip_note],
                               api_name="key_frame")
        self.clip_btn.click(self.api(self.on_run_clip, extra=("clip", "key_frame")),
                            [*run_inputs, self.clip_file, self.key_frame],
                            [self.status, self.preview, self.clip_out, self.files, self.progression],
                            concurrency_limit=self.solve_slots, concurrency_id="solve", api_name="run_clip")
        self.saved_file.upload(self.on_saved, self.saved_file, [self.result_img, self.status], api_name="load_result")
        for control in (self.task, self.method, *self.step_sliders):
            control.change(self.estimate_text, [self.task, self.method, *self.step_sliders], self.estimate,
                           api_name=False, queue=False)

    def api(self, handler, extra: tuple[str, ...] = ()):
        """`handler(request, run_request, *extra_values)` as the page's event function: one parameter
        per control, named as `control_names` (the typed API of /run and /retune) and then `extra`,
        the controls packed into a `RunRequest`."""
        rounds, groups = self.rounds, list(self.groups)
        count = len(control_names(rounds, groups))

        def event(request: gr.Request, *values):
            yield from handler(request, RunRequest.from_controls(list(values[:count]), rounds, groups),
                               *values[count:])

        event.__signature__ = inspect.Signature(
            [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)]
            + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                 **({"default": None} if n in ("mask_file", "last_run") else {}))
               for n in control_names(rounds, groups)]
            + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in extra])
        event.__name__ = handler.__name__
        return event

    # --- small handlers -------------------------------------------------------------
    def task_steps(self) -> list[int]:
        """The default steps of each layer's slider (0: the schedule ends before it)."""
        steps = default_steps(self.generator)
        return steps + [0] * (self.rounds - len(steps))

    def estimate_text(self, task_label: str, method_label: str, *steps) -> str:
        return run_estimate(self.generator, TASK_LABELS.get(task_label, "inpaint"),
                            METHOD_LABELS.get(method_label, "ilo"), list(steps), self.step_cost)

    def show_params(self, task_label: str, observed_pct: float, method_label: str):
        t = TASK_LABELS[task_label]
        choices = method_labels(t)
        return (gr.update(visible=t == "random-inpaint"), gr.update(visible=t == "super-resolution"),
                gr.update(visible=t == "denoise"), gr.update(visible=t == "compressed-sensing"),
                self.follow_observed(task_label, observed_pct),
                gr.update(choices=choices, value=method_label if method_label in choices else "ILO"),
                *self.task_steps())

    def follow_observed(self, task_label: str, observed_pct: float):
        return default_lpips_weight(self.generator, TASK_LABELS[task_label], (observed_pct or 0) / 100)

    def on_upload(self, value, how: str, which: float = 0):
        error = value.get("error") if isinstance(value, dict) else None
        path = value.get("background") if isinstance(value, dict) else None
        try:
            if error:
                raise InputError(error)
            image, square, note = crop_preview(path, self.size, how, self.generator.face_frame, face_index(which))
        except InputError as err:
            user_error(str(err))
            return None, None, f"**Not used:** {err}"
        return image, square, note

    def on_display_copy(self, value, note: str, request: gr.Request):
        """A large photo is painted on a display-size copy (`DisplayCopies`); a run repairs the photo.
        Where no copy is made the editor is skipped; the event shows no progress on the editor
        (with a visible one, the canvas was cleared of what the person had begun to paint)."""
        path = value.get("background") if isinstance(value, dict) and not value.get("error") else None
        if not isinstance(path, str):
            return gr.skip(), gr.skip()
        try:
            copy = self.copies.make(request.session_hash, path)
        except ImageError:
            return gr.skip(), gr.skip()  # the preview has said what is wrong with it
        if copy is None:
            return gr.skip(), gr.skip()
        return ({"background": str(copy), "layers": [], "composite": str(copy)},
                (note or "") + f" · shown at {DISPLAY_SIDE} px for painting; the photo is repaired at its own size")

    def on_example(self, path, how: str):
        if not path:
            return gr.update(), None, None, ""
        try:
            image, square, note = crop_preview(path, self.size, how, self.generator.face_frame)
        except InputError as err:
            return gr.update(), None, None, f"**Not used:** {err}"
        return {"background": path, "layers": [], "composite": path}, image, square, note

    def on_stop(self, request: gr.Request):
        """A toast, not the status line: the stopped run writes its own last status (its
        table, or that it never started), which a late "Stopping…" must not overwrite."""
        session = request.session_hash
        running, queued = self.runs.stop(session), waiting_runs(self.demo, session)
        if running + queued == 0:
            gr.Info("Nothing is running: there is nothing to stop.")
        elif running:
            gr.Info("Stopping… the best result so far will be kept.")
        else:
            gr.Info("Stopped: the queued run will not start.")
        return gr.update()

    def on_saved(self, path):
        if not path:
            return gr.update(), gr.update()
        try:
            image, note = load_saved(path, self.generator)
        except InputError as err:
            user_error(str(err))
            return gr.update(), f"**Not loaded:** {err}"
        return shown(image), note

    def on_session_end(self, request: gr.Request):
        self.runs.forget(request.session_hash)
        self.folders.forget(request.session_hash)
        self.editor.blobs.forget(request.session_hash)
        self.copies.forget(request.session_hash)

    # --- a clip -----------------------------------------------------------------------
    def on_clip(self, path, request: gr.Request):
        """A clip uploaded: its limits checked by its metadata, its first frame into the canvas."""
        return self.show_key_frame(path, 0, request, new_clip=True)

    def on_key_frame(self, path, index, request: gr.Request):
        editor, _, note = self.show_key_frame(path, index, request, new_clip=False)
        return editor, note

    def show_key_frame(self, path, index, request: gr.Request, new_clip: bool):
        if not path:
            return gr.skip(), gr.update(visible=False), CLIP_NOTE
        try:
            info, png = key_frame(path, frame_index(index), self.folders.new(request.session_hash))
        except InputError as err:
            user_error(str(err))
            return gr.skip(), gr.update(visible=False) if new_clip else gr.skip(), f"**Not used:** {err}"
        slider = gr.update(maximum=max(info.frames - 1, 1), value=0, visible=True) if new_clip else gr.skip()
        return ({"background": str(png), "layers": [], "composite": str(png)}, slider,
                f"Clip: {info.describe()}. Paint the region to repair on frame {frame_index(index)}, then "
                f"**Repair the whole clip**. {CLIP_NOTE}")

    def on_run_clip(self, request: gr.Request, run: RunRequest, clip, key_index):
        """The whole clip: the key frame solved with the page's settings, the others warm-started."""
        session = request.session_hash
        flag = self.runs.start(session, queued_at(self.demo, request))
        if flag is None:
            yield {self.status: "Stopped before it started."}
            return
        yield {self.status: "Reading the clip and finding the face…"}
        try:
            if not clip:
                raise InputError("Upload a clip first (Video: repair a clip).")
            folder = self.folders.new(session)
            info, _ = key_frame(clip, frame_index(key_index), folder)
            prepared = prepare_run(self.generator, run)
            if prepared.method == "compare":
                raise InputError("A clip is repaired with one method: pick ILO or a CSGM baseline, not compare.")
            config = next(iter(prepared.configs.values()))
            task = prepared.photo
            if (task.original.shape[1], task.original.shape[0]) != (info.width, info.height):
                raise InputError("The canvas holds a photo, not the clip's key frame: pick the key frame again.")
            align = run.alignment if run.alignment in CLIP_ALIGNMENTS else "landmarks"
            request_clip = ClipRequest(prepared.settings, config.method, frame_index(key_index), align,
                                       face_index(run.face), config=config, seed=config.seed)
            for update in run_clip(self.generator, info, request_clip, task.painted if prepared.task == "inpaint"
                                   else None, flag, folder):
                out = {self.status: update.status}
                if update.preview is not None:
                    out[self.preview] = shown(update.preview)
                if update.clip is not None:
                    out[self.clip_out] = str(update.clip)
                    out[self.files] = [str(update.clip)] + ([str(update.gif)] if update.gif else [])
                    out[self.progression] = str(update.gif) if update.gif else None
                yield out
        except InputError as err:
            user_error(str(err))
            yield {self.status: f"**Could not run:** {err}"}
        finally:
            self.runs.finish(session, flag)

    # --- a run ------------------------------------------------------------------------
    def on_run(self, request: gr.Request, run: RunRequest):
        yield from self.solve(request, run, retune=False)

    def on_retune(self, request: gr.Request, run: RunRequest):
        yield from self.solve(request, run, retune=True)

    def solve(self, request: gr.Request, run: RunRequest, retune: bool):
        """A full run, or (retune) a re-run from the first changed layer of the session's last run."""
        session = request.session_hash
        flag = self.runs.start(session, queued_at(self.demo, request))
        if flag is None:
            yield {self.status: "Stopped before it started."}
            return
        if not retune:  # the first seconds are not silent
            yield {self.status: "Reading the photo and finding the face…"}
        try:
            if retune and run.last_run is None:
                # a slider released before any finished run (setting up the first Run, or the release that
                # follows a typed value) re-runs nothing and leaves the status line as it is: it once said
                # "Reading the photo…" here and, queued behind a Run, replaced that run's results table
                yield {self.status: gr.update()}
                return
            try:
                prepared = prepare_run(self.generator, run, lambda path: self.copies.original(session, path))
            except InputError as err:
                user_error(str(err))
                yield {self.status: f"**Could not run:** {err}"}  # the earlier results stay on screen
                return
            problem, configs, t, m = prepared.problem, prepared.configs, prepared.task, prepared.method
            key = run.settings_key(prepared.photo)
            rerun, note = None, ""
            if retune:
                last = run.last_run
                # a slider released before a finished run of these settings (or in compare mode) re-runs
                # nothing and leaves the page as it is: the person is still setting up the next Run
                if last is None or last["key"] != key or m == "compare":
                    yield {self.status: gr.update()}
                    return
                label = next(iter(configs))
                first_round = first_changed_round(last["solvers"][label].config, configs[label])
                if first_round is None:  # nothing changed: the result on screen is for these settings
                    yield {self.status: gr.update()}
                    return
                if first_round >= 0:
                    problem = last["problem"]
                    rerun = {label: (last["solvers"][label], first_round, last["recorders"][label])}
                    note = f"Re-running from layer {first_round} (the earlier layers are kept)… "
            if t == "super-resolution" and run.degraded:
                low = self.size // int(run.sr_factor)
                note += f"Your image is the low-resolution observation: it is used at {low} x {low} px. "
            yield {self.observation_img: shown(tensor_to_uint8(problem.observation_image())),
                   self.status: note or "Starting…", self.files: None, self.preview: None, self.result_img: None,
                   self.clean_img: None, self.before_after: None, self.progression: None, self.spread_img: None,
                   self.compare_img: gr.update(value=None, visible=m == "compare")}
            # a clean photo degraded to simulate a task is no photo to repair: no photo-size result then
            pasted = prepared.photo if t == "inpaint" or run.degraded else None
            for update in run_job(self.generator, problem, configs, flag, self.folders.new(session), photo=pasted,
                                  rerun=rerun):
                out = {self.status: (note if update.final is None else "") + update.status,
                       self.curve: pd.DataFrame(update.curve, columns=["step", "series", "log10 MSE"])}
                if update.preview is not None:
                    out[self.preview] = shown(update.preview)
                if update.final is not None:
                    out.update(self.final_outputs(update.final, prepared))
                    results = update.final["results"]
                    if len(results) == len(configs) and not flag.is_set():  # a finished run can be re-tuned
                        out[self.last_run] = {"key": key, "problem": problem,
                                              "solvers": {k: r["solver"] for k, r in results.items()},
                                              "recorders": {k: r["recorder"] for k, r in results.items()}}
                yield out
                if update.final is not None and run.show_spread and not flag.is_set():
                    first = next(iter(update.final["results"].values()))
                    yield from self.guessing(problem, configs, update.status, first["spread"])
        except InputError as err:
            user_error(str(err))
            yield {self.status: f"**Could not finish:** {err}"}
        finally:
            self.runs.finish(session, flag)

    def final_outputs(self, final: dict, prepared: PreparedRun) -> dict:
        """A finished (or stopped) run's images and downloads."""
        results = final["results"]
        first = next(iter(results.values()))
        out = {self.observation_img: shown(final["observation"]), self.result_img: shown(first["image"]),
               self.clean_img: shown(final["clean"]),
               self.before_after: None if first["repaired"] is None else (prepared.photo.original, first["repaired"]),
               self.progression: next(f for f in first["files"] if f.endswith(".gif")),
               self.files: [f for r in results.values() for f in r["files"]]}
        if "CSGM-MSE" in results and len(results) > 1:
            out[self.compare_img] = shown(results["CSGM-MSE"]["image"])
        return out

    def guessing(self, problem, configs, table: str, spread=None):
        """The spread of the first method's starts as a heat map (after the result): the
        result's own (a mean of several starts), else 4 restarts solved now."""
        starts = next(iter(configs.values())).estimate.starts if spread is not None else SPREAD_STARTS
        if spread is None:
            yield {self.status: table + f"\n\nSolving from {starts} random starts to show where it is guessing…"}
            _, spread = restart_spread(self.generator, problem, next(iter(configs.values())))
        figures = spread_summary(spread, problem.operator)
        summary = f"Spread of {starts} starts: {figures['spread_mean']:.4f} on average"
        if "spread_in_hole" in figures:
            summary += (f", {figures['spread_in_hole']:.4f} inside the hole against "
                        f"{figures['spread_outside']:.4f} outside")
        yield {self.status: table + f"\n\n{summary} ([0, 1] pixel units).", self.spread_img: spread_heatmap(spread)}


def build_demo(generator: SplitGenerator, solve_slots: int = 1, outputs_root: Path | None = None) -> gr.Blocks:
    """The page for one loaded (shared, read-only) generator (`Studio`). `solve_slots` solves run
    at once (more only help on a GPU); further runs wait in the queue, which shows their position."""
    return Studio(generator, solve_slots, outputs_root).build()


def build_parser() -> argparse.ArgumentParser:
    """The page's command line (docs/cli.md)."""
    parser = argparse.ArgumentParser(description="ILO Studio")
    parser.add_argument("--generator", default="default",
                        help="'default', a downloaded name (python -m ilo_core download --list) or a StyleGAN-2 "
                             "checkpoint: rosinality .pt, NVlabs .pkl or a converted .safetensors")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--reference", action="store_true", help="the plain models, without the speed paths (ILO_REFERENCE=1)")
    parser.add_argument("--solve-slots", type=int, default=1,
                        help="solves at once (default 1: on a CPU more add no throughput)")
    parser.add_argument("--server-name", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    use_reference(args.reference)
    set_up_process()  # before the server's threads start
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.solve_slots < 1:
        raise SystemExit("error: --solve-slots must be at least 1")
    try:
        generator = load_generator(args.generator, args.device)
    except (ValueError, OSError, RuntimeError) as err:
        raise SystemExit(f"error: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}")
    # a SIGTERM ends the process as Ctrl-C does, so that the examples' temp folder is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    build_demo(generator, args.solve_slots).launch(server_name=args.server_name, server_port=args.port,
                                                   share=args.share, max_file_size="200mb", css=PAGE_CSS)


if __name__ == "__main__":
    main()
