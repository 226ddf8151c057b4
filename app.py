"""ILO Studio: a Gradio page over the `ilo_core` engine (which never imports gradio).

    python app.py [--generator default|PATH] [--device auto|cpu|cuda] [--solve-slots N]
                  [--server-name 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import hashlib
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
from ilo_core.photo.alignment import ALIGNMENTS
from ilo_core.engine.config import LEARNING_RATE, MSE_WEIGHT
from ilo_core.engine.presets import (default_fill_detail, default_geodesic_weight, default_lpips_weight, default_radii,
                                     default_rounds, default_steps)
from ilo_core.generators import SplitGenerator
from ilo_core.checkpoints import load_generator
from ilo_core.photo.images import ImageError, image_size, save_image_atomic, tensor_to_uint8
from ilo_core.perceptual.distance import get_lpips
from ilo_core.frontends.uploads import BlobStore
from ilo_core.engine.spread import SPREAD_STARTS, restart_spread, spread_heatmap, spread_summary
from ilo_core.frontends.page import (DISPLAY_SIDE, LOG, METHOD_LABELS, TASK_LABELS, DisplayCopies, InputError, OutputFolders,
                             SessionRuns, build_config, crop_preview, first_changed_round, load_saved, method_labels,
                             parse_seed, pose_problem, read_editor, run_estimate, run_job, sentence, step_seconds,
                             whole_number)

ASSETS = Path(__file__).resolve().parent / "assets"
# the results table: headers and numbers never break inside a word, and a narrow screen scrolls it sideways
PAGE_CSS = (".prose table th, .prose table td { word-break: keep-all; overflow-wrap: normal; white-space: nowrap; }"
            " .prose table { display: block; max-width: 100%; overflow-x: auto; }")
MODES = ["Simulate: my photo is clean", "My image is already degraded"]


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
# queued or which wait); tests/test_page_reliability.py fails when a Gradio upgrade changes them
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


def method_label(choice: str) -> str:
    """A method's label in results and download names: 'CSGM-MSE (PULSE-style)' -> 'CSGM-MSE',
    'ILO, auto radii' as it is."""
    return choice.split(" (")[0]


def face_index(value: object) -> int:
    """The "Which face" control's value -> which face (0 = the largest); InputError beyond 0-99."""
    return whole_number(value, "Which face", 99)


def user_error(message: str) -> None:
    """A person's input error: a toast where they look, and one line in the server log."""
    LOG.warning("input error: %s", message)
    gr.Warning(message)


RETUNE_SECONDS = 1800  # a finished run can be re-tuned for this long after it ends


def forget_run(run: dict | None) -> None:
    """Gradio drops a session's last run (its solvers, their kept round starts): let go of them now."""
    if isinstance(run, dict):
        run.clear()


def build_demo(generator: SplitGenerator, solve_slots: int = 1, outputs_root: Path | None = None) -> gr.Blocks:
    """The page for one loaded (shared, read-only) generator; controls adapt to it.

    `solve_slots` solves run at once (more only help on a GPU); further runs wait in the
    queue, which shows their position.
    """
    size = generator.resolution
    rounds = default_rounds(generator)
    groups = radius_groups(generator)
    runs, folders = SessionRuns(), OutputFolders(outputs_root)
    examples_dir = tempfile.TemporaryDirectory(prefix="ilo_studio_examples_")
    factors = [f for f in (2, 4, 8, 16, 32) if size % f == 0 and size // f >= 2]
    get_lpips("alex", generator.device)  # the result's LPIPS metric: loaded now, not in the first run
    step_cost = step_seconds(generator)  # seconds per step by batch size, for the estimate

    def task_steps(task_name: str) -> list[int]:
        """The default steps of each layer's slider for a task (0: the schedule ends before it)."""
        steps = default_steps(generator)
        return steps + [0] * (rounds - len(steps))

    def estimate_text(task_label: str, method_label: str, *steps) -> str:
        return run_estimate(generator, TASK_LABELS.get(task_label, "inpaint"), METHOD_LABELS.get(method_label, "ilo"),
                            list(steps), step_cost)

    with gr.Blocks(title="ILO Studio", delete_cache=(1800, 3600), analytics_enabled=False) as demo:
        demo.examples_dir = examples_dir  # lives as long as the page
        copies = DisplayCopies(Path(examples_dir.name) / "display")
        # the session's last finished run, for re-tuning: Gradio's per-session state, dropped
        # RETUNE_SECONDS after the run or when the session's state goes
        last_run = gr.State(None, time_to_live=RETUNE_SECONDS, delete_callback=forget_run)
        gr.Markdown(f"# ILO Studio\nRepair a face with **Intermediate Layer Optimization** (Daras et al., ICML 2021). "
                    f"Generator: `{generator.kind}` {size}x{size} on `{generator.device}`.")
        with gr.Row():
            with gr.Column(scale=1):
                task = gr.Radio(list(TASK_LABELS), value=list(TASK_LABELS)[0], label="Task")
                mode = gr.Radio(MODES, value=MODES[0], label="Mode",
                                info="simulate: your clean photo is degraded here and restored (a demo); "
                                     "already degraded: your photo is the observation, and is repaired")
                editor = CheckedImageMask(label="Photo: paint the region to reconstruct", type="filepath",
                                          image_mode="RGBA", format="png", sources=["upload", "clipboard"],
                                          layers=False, transforms=(), height=420,
                                          brush=gr.Brush(colors=["#ff00ff"], default_size=24, color_mode="fixed"))
                editor.blobs = BlobStore()
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary")
                    stop_btn = gr.Button("Stop", variant="stop")
                estimate = gr.Markdown(estimate_text(list(TASK_LABELS)[0], "ILO", *default_steps(generator)))
                show_spread = gr.Checkbox(value=False, label="Also show where it is guessing: the spread of its starts "
                                                             "(free where the result is already their mean, as for "
                                                             f"painted holes; else {SPREAD_STARTS} more starts, 2-3x "
                                                             "the time)")
                mask_file = gr.File(label="Or upload a mask (white = repair; the photo's size or aspect ratio)",
                                    file_types=["image"], type="filepath", height=90)
                alignment = gr.Radio(ALIGNMENTS, value="landmarks",
                                     label="Face alignment (landmarks: your face framed as the generator's faces "
                                           "are; falls back to box, then centre)")
                face = gr.Number(value=0, precision=0, minimum=0, maximum=99, label="Which face (several in the photo)",
                                 info="0 is the largest, 1 the next, ...; a painted hole picks the face under it")
                with gr.Row():
                    crop = gr.Image(label=f"What the generator sees ({size} px)", interactive=False, height=150,
                                    width=150, elem_id="crop-image")
                    outlined = gr.Image(label="The aligned square on your photo", interactive=False, height=150)
                crop_note = gr.Markdown(label="Crop note")
                example_pick = gr.Image(label="Example", type="filepath", height=120, interactive=False, visible=False)
                gr.Examples(examples=[[p] for p in example_paths(generator, Path(examples_dir.name))],
                            inputs=[example_pick], label="Examples")
                with gr.Row():
                    observed = gr.Slider(1, 100, value=10, step=1, label="Observed pixels (%)", visible=False)
                    factor = gr.Dropdown(factors, value=4 if 4 in factors else factors[0], label="SR factor", visible=False)
                    sigma = gr.Slider(1, 100, value=25, step=1, label="Noise sigma", visible=False,
                                      info="the noise's standard deviation in pixel units (0-255): 25 is heavy grain")
                    measurements = gr.Slider(1, 100, value=10, step=1, label="Measurements (%)", visible=False)
                method = gr.Dropdown(method_labels(TASK_LABELS[task.value]), value="ILO", label="Method")
                with gr.Accordion("Per-layer steps and l1 radii", open=False):
                    step_sliders, radius_sliders = [], {g: [] for g in groups}
                    for r in range(rounds):
                        with gr.Row():
                            step_sliders.append(gr.Slider(0, 300, value=task_steps(TASK_LABELS[task.value])[r], step=1,
                                                          label=f"layer {r}: steps",
                                                          info=None if r == 0 else "0 ends the schedule here: "
                                                          "this layer and every later one are skipped"))
                            for g, values in groups.items():
                                if r > 0:  # round 0 is CSGM: no ball
                                    top = 4 * max(x or 0 for x in values)
                                    radius_sliders[g].append(gr.Slider(
                                        0, top, value=values[r] or 0, step=10, label=f"layer {r}: {g} radius",
                                        info="how far this layer may move from where it starts: the l1 norm "
                                             "(sum of absolute changes) of its deviation; 0 freezes it. Release "
                                             "the slider after a run to re-run from this layer."))
                with gr.Accordion("Advanced", open=False):
                    mse_w = gr.Slider(0, 10, value=MSE_WEIGHT, step=0.1, label="MSE weight")
                    lpips_w = gr.Slider(0, 10, value=default_lpips_weight(generator, TASK_LABELS[task.value]), step=0.1,
                                        label="LPIPS weight (ILO; follows the task's default)")
                    geo_w = gr.Slider(0, 1, value=default_geodesic_weight(generator), step=0.01,
                                      label="Geodesic weight")
                    lr = gr.Slider(0.001, 1.0, value=LEARNING_RATE, step=0.001, label="Learning rate")
                    seed = RawNumber(value=0, label="Seed (a whole number)")
                    l1 = gr.Checkbox(value=True, label="Project onto the l1 balls")
                    detail = gr.Slider(0, 2, value=default_fill_detail(generator), step=0.1, label="Fill detail (px, painted holes)",
                                       info="the answer is the mean of several starts, blurred where they "
                                            "disagree: put back one start's detail finer than this into the hole "
                                            "(sharper, a little further from the truth); 0 = the plain mean")
            with gr.Column(scale=1):
                status = gr.Markdown("Press **Run** to start.", label="Status")
                before_after = gr.ImageSlider(label="Your photo: before / after (drag the handle)", type="numpy",
                                              interactive=False, elem_id="before-after")
                preview = gr.Image(label=f"Current iterate ({size} px, shown at 256 px)", interactive=False,
                                   height=256)
                curve = gr.LinePlot(x="step", y="log10 MSE", color="series", label="Loss curve", height=220)
                with gr.Row():
                    observation_img = gr.Image(label="Observation", interactive=False)
                    result_img = gr.Image(label=f"Result ({size} px)", interactive=False,
                                          elem_id="result-image")
                    compare_img = gr.Image(label="CSGM-MSE", interactive=False, visible=False)
                    clean_img = gr.Image(label="Clean", interactive=False)
                files = gr.File(label="Downloads: photo, result, GIF, state", file_count="multiple",
                                interactive=False, elem_id="downloads")
                progression = gr.Image(label="Progression, layer by layer (GIF)", type="filepath",
                                       interactive=False, elem_id="progression")
                spread_img = gr.Image(label="Where it is guessing: the spread of its starts (bright = unsure)",
                                      interactive=False, elem_id="spread", visible=True)
                saved_file = gr.File(label="Load a saved result (a *_state.safetensors download)",
                                     file_types=[".safetensors"], type="filepath", height=90)

        def show_params(task_label: str, observed_pct: float, method_label: str):
            t = TASK_LABELS[task_label]
            choices = method_labels(t)
            return (gr.update(visible=t == "random-inpaint"), gr.update(visible=t == "super-resolution"),
                    gr.update(visible=t == "denoise"), gr.update(visible=t == "compressed-sensing"),
                    follow_observed(task_label, observed_pct),
                    gr.update(choices=choices, value=method_label if method_label in choices else "ILO"),
                    *task_steps(t))

        def follow_observed(task_label: str, observed_pct: float):
            return default_lpips_weight(generator, TASK_LABELS[task_label], (observed_pct or 0) / 100)

        def on_upload(value, how: str, which: float = 0):
            error = value.get("error") if isinstance(value, dict) else None
            path = value.get("background") if isinstance(value, dict) else None
            try:
                if error:
                    raise InputError(error)
                image, square, note = crop_preview(path, size, how, generator.face_frame, face_index(which))
            except InputError as err:
                user_error(str(err))
                return None, None, f"**Not used:** {err}"
            return image, square, note

        def on_display_copy(value, note: str, request: gr.Request):
            """A large photo is painted on a display-size copy (`DisplayCopies`); a run repairs the photo.
            Where no copy is made the editor is skipped; the event shows no progress on the editor
            (with a visible one, the canvas was cleared of what the person had begun to paint)."""
            path = value.get("background") if isinstance(value, dict) and not value.get("error") else None
            if not isinstance(path, str):
                return gr.skip(), gr.skip()
            try:
                copy = copies.make(request.session_hash, path)
            except ImageError:
                return gr.skip(), gr.skip()  # the preview has said what is wrong with it
            if copy is None:
                return gr.skip(), gr.skip()
            return ({"background": str(copy), "layers": [], "composite": str(copy)},
                    (note or "") + f" · shown at {DISPLAY_SIDE} px for painting; the photo is repaired at its own size")

        def on_example(path, how: str):
            if not path:
                return gr.update(), None, None, ""
            try:
                image, square, note = crop_preview(path, size, how, generator.face_frame)
            except InputError as err:
                return gr.update(), None, None, f"**Not used:** {err}"
            return {"background": path, "layers": [], "composite": path}, image, square, note

        def on_stop(request: gr.Request):
            """A toast, not the status line: the stopped run writes its own last status (its
            table, or that it never started), which a late "Stopping…" must not overwrite."""
            session = request.session_hash
            running, queued = runs.stop(session), waiting_runs(demo, session)
            if running + queued == 0:
                gr.Info("Nothing is running: there is nothing to stop.")
            elif running:
                gr.Info("Stopping… the best result so far will be kept.")
            else:
                gr.Info("Stopped: the queued run will not start.")
            return gr.update()

        names = ["editor", "task", "mode", "observed_pct", "sr_factor", "noise_sigma", "measurements_pct", "method",
                 "alignment", "face",
                 *[f"steps_layer_{r}" for r in range(rounds)],
                 *[f"{g}_radius_layer_{r}" for g in groups for r in range(1, rounds)],
                 "mse_weight", "lpips_weight", "geodesic_weight", "learning_rate", "seed", "l1_projection",
                 "fill_detail", "show_spread", "mask_file", "last_run"]  # the last two: None by default

        per_round = {n for n in names if n.startswith("steps_layer_") or "_radius_layer_" in n}

        def on_run(request: gr.Request, *values):
            yield from solve(request, dict(zip(names, values)), retune=False)

        def on_retune(request: gr.Request, *values):
            yield from solve(request, dict(zip(names, values)), retune=True)

        def solve(request: gr.Request, v: dict, retune: bool):
            """A full run, or (retune) a re-run from the first changed layer of the session's last run."""
            session = request.session_hash
            flag = runs.start(session, queued_at(demo, request))
            if flag is None:
                yield {status: "Stopped before it started."}
                return
            yield {status: "Reading the photo and finding the face…"}  # the first seconds are not silent
            try:
                try:
                    editor_value = v["editor"]
                    if isinstance(editor_value, dict) and editor_value.get("error"):
                        raise InputError(editor_value["error"])
                    t, m = TASK_LABELS.get(v["task"]), METHOD_LABELS.get(v["method"])
                    if t is None or m is None:
                        raise InputError(f"Unknown task or method: {v['task']!r}, {v['method']!r}.")
                    seed_value = parse_seed(v["seed"])
                    if v["alignment"] not in ALIGNMENTS:
                        raise InputError(f"Unknown alignment {v['alignment']!r}: use {', '.join(ALIGNMENTS)}.")
                    if isinstance(editor_value, dict):  # painted on a display copy: the photo itself is repaired
                        editor_value = {**editor_value,
                                        "background": copies.original(session, editor_value.get("background"))}
                    inputs = read_editor(editor_value, size, v["alignment"], v["mask_file"], generator.face_frame,
                                         face_index(v["face"]))
                    problem = pose_problem(inputs, t, v["mode"] == MODES[1], observed_pct=v["observed_pct"],
                                           factor=v["sr_factor"] or 0, sigma=v["noise_sigma"],
                                           measurements_pct=v["measurements_pct"], seed=seed_value,
                                           device=generator.device)
                    common = dict(steps=[v[f"steps_layer_{r}"] for r in range(rounds)],
                                  radii={g: [None] + [v[f"{g}_radius_layer_{r}"] for r in range(1, rounds)]
                                         for g in groups},
                                  observed_pct=v["observed_pct"], mse_weight=v["mse_weight"],
                                  lpips_weight=v["lpips_weight"], geodesic_weight=v["geodesic_weight"],
                                  lr=v["learning_rate"], seed=seed_value, l1_projection=v["l1_projection"],
                                  fill_detail=v["fill_detail"])
                    if m == "compare":
                        configs = {"ILO": build_config(generator, t, "ilo", **common),
                                   "CSGM-MSE": build_config(generator, t, "csgm-mse", **common)}
                    else:
                        configs = {method_label(v["method"]): build_config(generator, t, m, **common)}
                except InputError as err:
                    user_error(str(err))
                    yield {status: f"**Could not run:** {err}"}  # the earlier results stay on screen
                    return
                key = (hashlib.sha256(inputs.original.tobytes() + inputs.painted.tobytes()).hexdigest(),
                       tuple((n, str(x)) for n, x in v.items()
                             if n not in per_round and n not in ("editor", "last_run")))
                rerun, note = None, ""
                if retune:
                    last = v["last_run"]
                    # a slider released before a finished run of these settings (or in compare mode) re-runs
                    # nothing and leaves the page as it is: the person is still setting up the next Run
                    if last is None or last["key"] != key or m == "compare":
                        yield {status: gr.update()}
                        return
                    label = next(iter(configs))
                    first_round = first_changed_round(last["solvers"][label].config, configs[label])
                    if first_round is None:  # nothing changed: the result on screen is for these settings
                        yield {status: gr.update()}
                        return
                    if first_round >= 0:
                        problem = last["problem"]
                        rerun = {label: (last["solvers"][label], first_round, last["recorders"][label])}
                        note = f"Re-running from layer {first_round} (the earlier layers are kept)… "
                if t == "super-resolution" and v["mode"] == MODES[1]:
                    low = size // int(v["sr_factor"])
                    note += f"Your image is the low-resolution observation: it is used at {low} x {low} px. "
                yield {observation_img: shown(tensor_to_uint8(problem.observation_image())), status: note or "Starting…",
                       files: None, preview: None, result_img: None, clean_img: None, before_after: None,
                       progression: None, spread_img: None,
                       compare_img: gr.update(value=None, visible=m == "compare")}
                # a clean photo degraded to simulate a task is no photo to repair: no photo-size result then
                pasted = inputs if t == "inpaint" or v["mode"] == MODES[1] else None
                for update in run_job(generator, problem, configs, flag, folders.new(session), photo=pasted,
                                      rerun=rerun):
                    out = {status: (note if update.final is None else "") + update.status,
                           curve: pd.DataFrame(update.curve, columns=["step", "series", "log10 MSE"])}
                    if update.preview is not None:
                        out[preview] = shown(update.preview)
                    if update.final is not None:
                        results = update.final["results"]
                        first = next(iter(results.values()))
                        out.update({observation_img: shown(update.final["observation"]),
                                    result_img: shown(first["image"]), clean_img: shown(update.final["clean"]),
                                    before_after: None if first["repaired"] is None else (inputs.original,
                                                                                           first["repaired"]),
                                    progression: next(f for f in first["files"] if f.endswith(".gif")),
                                    files: [f for r in results.values() for f in r["files"]]})
                        if "CSGM-MSE" in results and len(results) > 1:
                            out[compare_img] = shown(results["CSGM-MSE"]["image"])
                        if len(results) == len(configs) and not flag.is_set():  # a finished run can be re-tuned
                            out[last_run] = {"key": key, "problem": problem,
                                             "solvers": {k: r["solver"] for k, r in results.items()},
                                             "recorders": {k: r["recorder"] for k, r in results.items()}}
                    yield out
                    if update.final is not None and v["show_spread"] and not flag.is_set():
                        first = next(iter(update.final["results"].values()))
                        yield from guessing(problem, configs, update.status, first["spread"])
            except InputError as err:
                user_error(str(err))
                yield {status: f"**Could not finish:** {err}"}
            finally:
                runs.finish(session, flag)

        def guessing(problem, configs, table: str, spread=None):
            """The spread of the first method's starts as a heat map (after the result): the
            result's own (a mean of several starts), else 4 restarts solved now."""
            starts = next(iter(configs.values())).estimate.starts if spread is not None else SPREAD_STARTS
            if spread is None:
                yield {status: table + f"\n\nSolving from {starts} random starts to show where it is guessing…"}
                _, spread = restart_spread(generator, problem, next(iter(configs.values())))
            figures = spread_summary(spread, problem.operator)
            summary = f"Spread of {starts} starts: {figures['spread_mean']:.4f} on average"
            if "spread_in_hole" in figures:
                summary += (f", {figures['spread_in_hole']:.4f} inside the hole against "
                            f"{figures['spread_outside']:.4f} outside")
            yield {status: table + f"\n\n{summary} ([0, 1] pixel units).", spread_img: spread_heatmap(spread)}

        for handler in (on_run, on_retune):
            handler.__signature__ = inspect.Signature(
                [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)]
                + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     **({"default": None} if n in ("mask_file", "last_run") else {})) for n in names])

        def on_session_end(request: gr.Request):
            runs.forget(request.session_hash)
            folders.forget(request.session_hash)
            editor.blobs.forget(request.session_hash)
            copies.forget(request.session_hash)

        task.change(show_params, [task, observed, method],
                    [observed, factor, sigma, measurements, lpips_w, method, *step_sliders])
        observed.change(follow_observed, [task, observed], lpips_w)
        editor.upload(on_upload, [editor, alignment, face], [crop, outlined, crop_note], api_name="upload").then(
            on_display_copy, [editor, crop_note], [editor, crop_note], api_name="display_copy", show_progress="hidden")
        for control in (alignment, face):
            control.change(on_upload, [editor, alignment, face], [crop, outlined, crop_note], api_name=False)
        example_pick.change(on_example, [example_pick, alignment], [editor, crop, outlined, crop_note])
        controls = [*step_sliders, *[s for g in groups for s in radius_sliders[g]], mse_w, lpips_w, geo_w, lr, seed, l1,
                    detail]
        run_inputs = [editor, task, mode, observed, factor, sigma, measurements, method, alignment, face, *controls,
                      show_spread, mask_file, last_run]
        run_outputs = [preview, status, curve, observation_img, result_img, compare_img, clean_img, files, before_after,
                       progression, spread_img, last_run]
        run_btn.click(on_run, run_inputs, run_outputs, concurrency_limit=solve_slots, concurrency_id="solve",
                      api_name="run")
        # live re-tuning: releasing a layer's steps or radius slider re-runs from that layer
        gr.on([s.release for s in [*step_sliders, *[s for g in groups for s in radius_sliders[g]]]], on_retune,
              run_inputs, run_outputs, concurrency_limit=solve_slots, concurrency_id="solve", api_name="retune")
        stop_btn.click(on_stop, None, status, concurrency_limit=None, api_name="stop")
        demo.unload(on_session_end)

        def on_saved(path):
            if not path:
                return gr.update(), gr.update()
            try:
                image, note = load_saved(path, generator)
            except InputError as err:
                user_error(str(err))
                return gr.update(), f"**Not loaded:** {err}"
            return shown(image), note

        saved_file.upload(on_saved, saved_file, [result_img, status], api_name="load_result")
        for control in (task, method, *step_sliders):
            control.change(estimate_text, [task, method, *step_sliders], estimate, api_name=False, queue=False)
    demo.queue(max_size=16)
    return demo


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
                                                   share=args.share, max_file_size="25mb", css=PAGE_CSS)


if __name__ == "__main__":
    main()
