"""ILO Studio: a Gradio page over the `ilo_core` engine (which never imports gradio).

    python app.py [--generator default|PATH] [--device auto|cpu|cuda]
                  [--server-name 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ilo_core.memory import keep_freed_memory  # noqa: E402

keep_freed_memory()  # before gradio starts its worker threads (see ilo_core/memory.py)

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ilo_core.defaults import DCGAN_RADII, STYLEGAN_RADII, default_lpips_weight  # noqa: E402
from ilo_core.generators import SplitGenerator, load_generator  # noqa: E402
from ilo_core.images import save_image_atomic, tensor_to_uint8  # noqa: E402
from ilo_core.perceptual import get_lpips  # noqa: E402
from ilo_core.studio import (METHOD_LABELS, TASK_LABELS, InputError, StopFlag, build_config, crop_preview,  # noqa: E402
                             new_output_dir, pose_problem, read_editor, run_job)

ASSETS = Path(__file__).resolve().parent / "assets"
MODES = ["Simulate: my photo is clean", "My image is already degraded"]


def shown(image, size: int = 256):
    """An H x W x 3 uint8 image enlarged (nearest) for display; None stays None."""
    if image is None:
        return None
    return np.asarray(Image.fromarray(image).resize((size, size), Image.NEAREST))


def radius_groups(generator: SplitGenerator) -> dict[str, list]:
    return STYLEGAN_RADII if generator.kind == "stylegan2" else {"state": DCGAN_RADII["state"]}


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


def build_demo(generator: SplitGenerator) -> gr.Blocks:
    """The page for one loaded (shared, read-only) generator; controls adapt to it."""
    size = generator.resolution
    rounds = min(4, generator.num_layers)
    groups = radius_groups(generator)
    stop_flags: dict[str, StopFlag] = {}   # per browser session
    flags_lock = threading.Lock()
    factors = [f for f in (2, 4, 8, 16, 32) if size % f == 0 and size // f >= 2]
    get_lpips("alex", generator.device)  # the result's LPIPS metric: loaded now, not in the first run

    with gr.Blocks(title="ILO Studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# ILO Studio\nRepair a face with **Intermediate Layer Optimization** (Daras et al., ICML 2021). "
                    f"Generator: `{generator.kind}` {size}x{size} on `{generator.device}`.")
        with gr.Row():
            with gr.Column(scale=1):
                editor = gr.ImageMask(label="Photo: paint the region to reconstruct", type="filepath",
                                      image_mode="RGBA", format="png", sources=["upload", "clipboard"],
                                      layers=False, transforms=(), height=420,
                                      brush=gr.Brush(colors=["#ff00ff"], default_size=24, color_mode="fixed"))
                with gr.Row():
                    crop = gr.Image(label="Crop that will be used", interactive=False, height=150, width=150,
                                    elem_id="crop-image")
                    crop_note = gr.Markdown()
                example_pick = gr.Image(label="Example", type="filepath", height=120, interactive=False)
                gr.Examples(examples=[[p] for p in example_paths(generator, new_output_dir())], inputs=[example_pick],
                            label="Examples")
                task = gr.Radio(list(TASK_LABELS), value=list(TASK_LABELS)[0], label="Task")
                mode = gr.Radio(MODES, value=MODES[0], label="Mode")
                with gr.Row():
                    observed = gr.Slider(1, 100, value=10, step=1, label="Observed pixels (%)", visible=False)
                    factor = gr.Dropdown(factors, value=4 if 4 in factors else factors[0], label="SR factor", visible=False)
                    sigma = gr.Slider(1, 100, value=25, step=1, label="Noise sigma (0-255)", visible=False)
                    measurements = gr.Slider(1, 100, value=10, step=1, label="Measurements (%)", visible=False)
                method = gr.Dropdown(list(METHOD_LABELS), value="ILO", label="Method")
                with gr.Accordion("Per-layer steps and l1 radii", open=False):
                    step_sliders, radius_sliders = [], {g: [] for g in groups}
                    for r in range(rounds):
                        with gr.Row():
                            step_sliders.append(gr.Slider(0, 300, value=50, step=5, label=f"layer {r}: steps"))
                            for g, values in groups.items():
                                radius_sliders[g].append(gr.Slider(
                                    0, 10000, value=values[r] or 0, step=10, label=f"layer {r}: {g} radius",
                                    visible=r > 0))
                with gr.Accordion("Advanced", open=False):
                    mse_w = gr.Slider(0, 10, value=1.0, step=0.1, label="MSE weight")
                    lpips_w = gr.Slider(0, 10, value=default_lpips_weight(generator, TASK_LABELS[task.value]), step=0.1,
                                        label="LPIPS weight (ILO; follows the task's default)")
                    geo_w = gr.Slider(0, 1, value=0.01 if generator.kind == "stylegan2" else 0.0, step=0.01,
                                      label="Geodesic weight")
                    lr = gr.Slider(0.001, 1.0, value=0.1, step=0.001, label="Learning rate")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                    l1 = gr.Checkbox(value=True, label="Project onto the l1 balls")
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary")
                    stop_btn = gr.Button("Stop", variant="stop")
            with gr.Column(scale=1):
                preview = gr.Image(label="Current reconstruction", interactive=False, height=256)
                status = gr.Markdown("Press **Run** to start.")
                curve = gr.LinePlot(x="step", y="log10 MSE", color="series", label="Loss curve", height=220)
                with gr.Row():
                    observation_img = gr.Image(label="Observation", interactive=False)
                    result_img = gr.Image(label="Result", interactive=False, elem_id="result-image")
                    compare_img = gr.Image(label="CSGM-MSE", interactive=False, visible=False)
                    clean_img = gr.Image(label="Clean", interactive=False)
                files = gr.File(label="Downloads: result PNG, progression GIF, solver state", file_count="multiple",
                                interactive=False, elem_id="downloads")

        def show_params(task_label: str, observed_pct: float):
            t = TASK_LABELS[task_label]
            return (gr.update(visible=t == "random-inpaint"), gr.update(visible=t == "super-resolution"),
                    gr.update(visible=t == "denoise"), gr.update(visible=t == "compressed-sensing"),
                    follow_observed(task_label, observed_pct))

        def follow_observed(task_label: str, observed_pct: float):
            return default_lpips_weight(generator, TASK_LABELS[task_label], (observed_pct or 0) / 100)

        def on_upload(value):
            path = value.get("background") if isinstance(value, dict) else None
            try:
                image, note = crop_preview(path, size)
            except InputError as err:
                raise gr.Error(str(err)) from None
            return image, note

        def on_example(path):
            if not path:
                return gr.update(), None, ""
            image, note = crop_preview(path, size)
            return {"background": path, "layers": [], "composite": path}, image, note

        def on_stop(request: gr.Request):
            with flags_lock:
                flag = stop_flags.get(request.session_hash)
            if flag is not None:
                flag.set()
            return "Stopping… the best result so far will be kept."

        def on_run(request: gr.Request, editor_value, task_label, mode_label, observed_pct, factor_value, sigma_value,
                   meas_pct, method_label, *controls):
            n = len(step_sliders)
            steps = list(controls[:n])
            radii = {g: list(controls[n + i * n: n + (i + 1) * n]) for i, g in enumerate(groups)}
            mse_v, lpips_v, geo_v, lr_v, seed_v, l1_v = controls[n + len(groups) * n:]
            t, m = TASK_LABELS[task_label], METHOD_LABELS[method_label]
            try:
                inputs = read_editor(editor_value, size)
                problem = pose_problem(inputs, t, mode_label == MODES[1], observed_pct=observed_pct,
                                       factor=int(factor_value or 0), sigma=sigma_value, measurements_pct=meas_pct,
                                       seed=int(seed_v or 0), device=generator.device)
                common = dict(steps=steps, radii=radii, observed_pct=observed_pct, mse_weight=mse_v,
                              lpips_weight=lpips_v, geodesic_weight=geo_v, lr=lr_v, seed=int(seed_v or 0),
                              l1_projection=l1_v)
                if m == "compare":
                    configs = {"ILO": build_config(generator, t, "ilo", **common),
                               "CSGM-MSE": build_config(generator, t, "csgm-mse", **common)}
                else:
                    configs = {method_label.split(" ")[0]: build_config(generator, t, m, **common)}
            except InputError as err:
                raise gr.Error(str(err)) from None
            flag = StopFlag()
            with flags_lock:
                stop_flags[request.session_hash] = flag
            yield {observation_img: shown(tensor_to_uint8(problem.observation_image())), status: "Starting…", files: None,
                   result_img: None, compare_img: gr.update(value=None, visible=m == "compare")}
            try:
                for update in run_job(generator, problem, configs, flag, new_output_dir()):
                    out = {status: update.status,
                           curve: pd.DataFrame(update.curve, columns=["step", "series", "log10 MSE"])}
                    if update.preview is not None:
                        out[preview] = shown(update.preview)
                    if update.final is not None:
                        results = update.final["results"]
                        first = next(iter(results.values()))
                        out.update({observation_img: shown(update.final["observation"]),
                                    result_img: shown(first["image"]), clean_img: shown(update.final["clean"]),
                                    files: [f for r in results.values() for f in r["files"]]})
                        if "CSGM-MSE" in results and len(results) > 1:
                            out[compare_img] = shown(results["CSGM-MSE"]["image"])
                    yield out
            except InputError as err:
                raise gr.Error(str(err)) from None
            finally:
                with flags_lock:
                    if stop_flags.get(request.session_hash) is flag:
                        del stop_flags[request.session_hash]

        task.change(show_params, [task, observed], [observed, factor, sigma, measurements, lpips_w])
        observed.change(follow_observed, [task, observed], lpips_w)
        editor.upload(on_upload, editor, [crop, crop_note])
        example_pick.change(on_example, example_pick, [editor, crop, crop_note])
        controls = [*step_sliders, *[s for g in groups for s in radius_sliders[g]], mse_w, lpips_w, geo_w, lr, seed, l1]
        run_btn.click(on_run, [editor, task, mode, observed, factor, sigma, measurements, method, *controls],
                      [preview, status, curve, observation_img, result_img, compare_img, clean_img, files],
                      concurrency_limit=2, api_name="run")
        stop_btn.click(on_stop, None, status, concurrency_limit=None, api_name="stop")
    demo.queue(max_size=16, default_concurrency_limit=2)
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ILO Studio")
    parser.add_argument("--generator", default="default", help="'default' or a rosinality StyleGAN-2 .pt")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--server-name", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args(argv)
    try:
        generator = load_generator(args.generator, args.device)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    build_demo(generator).launch(server_name=args.server_name, server_port=args.port, share=args.share,
                                 max_file_size="25mb")


if __name__ == "__main__":
    main()
