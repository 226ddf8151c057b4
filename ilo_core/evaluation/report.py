"""`report.md` of an evaluation folder: tables, Figure-2-style plots and a contact sheet.

Reads only `results.json` and `images/*.png`, so `python -m ilo_core.evaluation.report DIR` can
rebuild the report of a finished (or interrupted) run.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ilo_core.atomic import atomic_write, write_text
from ilo_core.engine.config import SOLVER_METHODS
from ilo_core.engine.presets import MEAN_ROUNDS_OBSERVED_BELOW
from ilo_core.photo.images import save_image_atomic

CSGM = tuple(m for m in SOLVER_METHODS if m.startswith("csgm"))
TASK_TITLES = {"random-inpaint": "Inpainting, random pixels (x: % observed)", "inpaint": "Inpainting, masks",
               "denoise": "Denoising (x: sigma, 0-255)", "super-resolution": "Super-resolution (x: factor)",
               "compressed-sensing": "Compressed sensing (x: % measurements)"}
# the paper's true-MSE ratios best CSGM / ILO (ILO_REFERENCE.md, "Claims to reproduce")
PAPER_RATIO = {("random-inpaint", "5%"): "~2", ("random-inpaint", "10%"): "~2", ("random-inpaint", "25%"): "~2",
               ("random-inpaint", "50%"): "~2", ("denoise", "sigma 25"): "1.8", ("compressed-sensing", "5%"): "2",
               ("super-resolution", "x16"): "1.65 (vs PULSE)", ("super-resolution", "x32"): "1.4 (vs PULSE)"}
PAPER_SNA = {"csgm-mse": 19.89, "csgm-mse+sna": 21.38, "ilo": 28.34, "ilo+sna": 32.92}
STYLE = {"csgm-mse": ("o", "tab:blue"), "csgm-lpips": ("s", "tab:orange"), "csgm-mse-lpips": ("^", "tab:green"),
         "ilo": ("*", "tab:red"), "ilo-noproj": ("x", "tab:purple"),
         "ilo-signed": ("P", "tab:pink"), "bm3d": ("d", "tab:brown")}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _sem(values: list[float]) -> float:
    """Standard error of the mean."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.std(finite, ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else 0.0


def group(records: list[dict], kinds: set[str] | None = None) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(task, level) -> method -> records (of the given image kinds), in the order run."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if kinds is None or r["image_kind"] in kinds:
            out[(r["task"], r["level"])][r["method"]].append(r)
    return out


def ratio_best_csgm(methods: dict[str, list[dict]]) -> tuple[float, str]:
    """true MSE of the best CSGM variant / true MSE of ILO (means over images and seeds)."""
    csgm = {m: _mean([r["mse"] for r in methods[m]]) for m in CSGM if m in methods}
    csgm = {m: v for m, v in csgm.items() if math.isfinite(v)}
    if not csgm or "ilo" not in methods:
        return math.nan, ""
    best = min(csgm, key=csgm.get)
    return csgm[best] / _mean([r["mse"] for r in methods["ilo"]]), best


def _fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def results_table(grid: dict, methods: list[str]) -> list[str]:
    lines = ["| task | level | " + " | ".join(methods) + " | best CSGM / ILO | paper |",
             "| --- | --- | " + " | ".join("---:" for _ in methods) + " | ---: | --- |"]
    for (task, level), by_method in grid.items():
        cells = []
        for m in methods:
            rs = by_method.get(m)
            cells.append("" if not rs else f"{1e3 * _mean([r['mse'] for r in rs]):.2f} "
                                           f"/ {_mean([r['psnr'] for r in rs]):.1f} / {_mean([r['lpips'] for r in rs]):.3f}")
        ratio, best = ratio_best_csgm(by_method)
        lines.append(f"| {task} | {level} | " + " | ".join(cells) +
                     f" | {_fmt(ratio)}{f' ({best})' if best else ''} | {PAPER_RATIO.get((task, level), '')} |")
    return lines


def ratio_table(records: list[dict]) -> list[str]:
    """best CSGM / ILO per setting, separately for real photos and generator samples."""
    kinds = [("real photos", {"face", "user"}), ("generator samples", {"sample"})]
    groups = [(name, group(records, k)) for name, k in kinds]
    groups = [(n, g) for n, g in groups if g]
    lines = ["| task | level | " + " | ".join(n for n, _ in groups) + " | paper |",
             "| --- | --- | " + " | ".join("---:" for _ in groups) + " | --- |"]
    for key in group(records):
        cells = [_fmt(ratio_best_csgm(g[key])[0]) if key in g else "" for _, g in groups]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + f" | {PAPER_RATIO.get(key, '')} |")
    return lines


def sna_table(records: list[dict]) -> list[str]:
    by_method: dict[str, list[float]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r["psnr"])
    lines = ["| method | PSNR without SNA (dB) | with SNA (dB) | paper without | paper with |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for m in ("csgm-mse", "ilo"):
        lines.append(f"| {m} | {_fmt(_mean(by_method[m]))} | {_fmt(_mean(by_method[m + '+sna']))} "
                     f"| {PAPER_SNA[m]} | {PAPER_SNA[m + '+sna']} |")
    return lines


def plot_figure(grid: dict, path: Path) -> bool:
    """True MSE vs level, one panel per task, one line per method; error bars: standard error
    of the mean across images and seeds (clipped above zero on the log axis)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tasks = list(dict.fromkeys(task for task, _ in grid))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.9), squeeze=False)
    handles: dict[str, object] = {}
    for ax, task in zip(axes[0], tasks):
        levels = [lv for t, lv in grid if t == task]
        methods = list(dict.fromkeys(m for lv in levels for m in grid[(task, lv)]))
        for m in methods:
            xs, ys, es = [], [], []
            for i, lv in enumerate(levels):
                rs = grid[(task, lv)].get(m)
                if rs:
                    xs.append(i)
                    ys.append(_mean([r["mse"] for r in rs]))
                    es.append(_sem([r["mse"] for r in rs]))
            lower = [min(e, 0.9 * y) for e, y in zip(es, ys)]
            marker, color = STYLE.get(m, (".", None))
            handles[m] = ax.errorbar(xs, ys, yerr=[lower, es], marker=marker, color=color, capsize=3, label=m,
                                     linewidth=2.2 if m == "ilo" else 1.2)
        ax.set_xticks(range(len(levels)), levels)
        ax.set_yscale("log")
        ax.set_title(TASK_TITLES.get(task, task), fontsize=9)
        ax.set_ylabel("true MSE ([0, 1] pixels)")
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_write(path) as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)
    return True


def contact_sheet(out: Path, keys: list[str], methods: list[str], path: Path, cell: int = 96) -> bool:
    """Rows: settings; columns: clean, observation, then each method's reconstruction."""
    columns = ["clean", "observation", *methods]
    rows = [k for k in keys if (out / "images" / f"{k}__clean.png").exists()]
    if not rows:
        return False
    label_w, head = 150, 18
    sheet = Image.new("RGB", (label_w + cell * len(columns), head + cell * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(columns):
        draw.text((label_w + j * cell + 3, 3), c, fill="black")
    for i, key in enumerate(rows):
        draw.text((4, head + i * cell + cell // 2 - 6), key.replace("__", " "), fill="black")
        for j, c in enumerate(columns):
            p = out / "images" / f"{key}__{c}.png"
            if p.exists():
                sheet.paste(Image.open(p).convert("RGB").resize((cell, cell), Image.LANCZOS),
                            (label_w + j * cell, head + i * cell))
    save_image_atomic(sheet, path)
    return True


def hole_table(records: list[dict], methods: list[str]) -> list[str]:
    """Markdown rows of the hole figures of every inpainting setting (empty without any)."""
    rows = [r for r in records if r.get("hole_psnr") is not None]
    if not rows:
        return []
    cols = [m for m in methods if any(r["method"] == m for r in rows)]
    lines = ["| task | level | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for task, level in dict.fromkeys((r["task"], r["level"]) for r in rows):
        cells = []
        for m in cols:
            rs = [r for r in rows if r["task"] == task and r["level"] == level and r["method"] == m]
            cells.append("—" if not rs else f"{_mean([r['hole_psnr'] for r in rs]):.2f} / "
                         f"{_mean([r['hole_lpips'] for r in rs]):.3f} / {_mean([r['pasted_psnr'] for r in rs]):.2f}")
        lines.append(f"| {task} | {level} | " + " | ".join(cells) + " |")
    return lines


def auto_table(records: list[dict]) -> list[str]:
    """Markdown rows: ilo-auto against ILO per setting (true MSE ratio, seconds ratio), and the
    share of settings where ilo-auto's true MSE is at most ILO's (empty without ilo-auto)."""
    cells = dict.fromkeys((r["task"], r["level"]) for r in records if r["method"] == "ilo-auto")
    if not cells:
        return []
    lines = ["| task | level | ilo-auto / ILO true MSE | ilo-auto / ILO seconds |", "|---|---|---|---|"]
    wins = 0
    for task, level in cells:
        by = {m: [r for r in records if r["task"] == task and r["level"] == level and r["method"] == m]
              for m in ("ilo", "ilo-auto")}
        if not by["ilo"]:
            continue
        mse = _mean([r["mse"] for r in by["ilo-auto"]]) / _mean([r["mse"] for r in by["ilo"]])
        secs = _mean([r["seconds"] for r in by["ilo-auto"]]) / max(_mean([r["seconds"] for r in by["ilo"]]), 1e-9)
        wins += mse <= 1
        lines.append(f"| {task} | {level} | {mse:.3f} | {secs:.2f} |")
    lines.append(f"| all | | at most ILO's in {wins} of {len(lines) - 2} settings | |")
    return lines


def _starts_note(starts: int, rounds: int = 1) -> str:
    """How holes and random pixels are solved, in words ("" with one start)."""
    if starts <= 1:
        return ""
    each = (f" (each start's best iterates of its last {rounds} rounds; random pixels from "
            f"{MEAN_ROUNDS_OBSERVED_BELOW * 100:g} % observed: its last round's)") if rounds > 1 else ""
    return (f"; inpainting (holes and random pixels) by ILO and ilo-auto: the mean of {starts} starts{each} solved as "
            f"one batch, each with that budget (the CSGM baselines: one start)")


def write_report(out: Path, data: dict) -> Path:
    """Write out/report.md (and figure2.png, contact_sheet.png); returns the report's path."""
    out = Path(out)
    meta, records = data["meta"], data["records"]
    main = [r for r in records if r["experiment"] == "grid"]
    sna = [r for r in records if r["experiment"] == "sna-ablation"]
    grid = group(main)
    methods = [m for m in meta["methods"] if any(r["method"] == m for r in main)]
    lines = [f"# ILO evaluation: {meta['generator_kind']} {meta['resolution']} px", "",
             f"Command: `{meta['command']}` (started {meta['started']}, {meta.get('seconds_total', 0):.0f} s in all, "
             f"device `{meta['device']}`, torch {meta['torch']}, {meta['threads']} threads).", "",
             f"- Step budget: every iterative method takes **{meta['total_steps']} steps** per image "
             f"(ILO: {meta['steps_per_layer']} on each of {meta['rounds']} layers; ilo-auto: at most twice it; CSGM: "
             f"{meta['total_steps']} in latent space)" + _starts_note(meta.get("fill_starts", 1), meta.get("fill_rounds", 1))
             + ". BM3D is not iterative" + ("." if meta["bm3d"] else "; the `bm3d` package is not installed, "
                                            "so it is left out."),
             f"- Images: {', '.join(im['name'] + ' (' + im['kind'] + ')' for im in meta['images'])}. "
             + {"box": "Photos are cut by the face detector's box, enlarged 1.5x. ",
                "landmarks": "Photos are cut by dlib's landmarks in the generator's face frame (as the page "
                             "and CLI cut them). "}.get(meta.get("align", "box"), "")
             + f"Samples are generator renders of held-out seeds {meta['held_out_seed']}+i.",
             f"- Seeds: {meta['seeds']} (operator randomness and the solver's start = seed, noise = seed + 1).",
             "- Denoising uses Stochastic Noise Addition in every iterative method (the project's default).",
             "- Metrics against the clean image: true MSE and PSNR in [0, 1] pixel units, LPIPS (alex). "
             "All images of a setting are solved as one batch; `seconds` in results.json is the batch's wall "
             "time divided by its size.", ""]
    cells = meta.get("cells")
    if cells:
        lines += [f"Cells: {cells['done']} of {cells['total']} done, {cells['failed']} failed, {cells['missing']} not run yet"
                  f" ({meta.get('back_end', 'in-process')}; the records are in `records/`).", ""]
    if data.get("failed"):
        lines += ["## Cells that failed", "", "Each ran again up to the run's --retries; a re-run of the command runs "
                  "them again.", "", "| cell | reason |", "| --- | --- |",
                  *(f"| {f['label']} | {f['reason'].replace('|', '/')} |" for f in data["failed"]), ""]
    if plot_figure(grid, out / "figure2.png"):
        lines += ["## True MSE vs measurement level (Figure 2 style)", "",
                  "Means over images and seeds; error bars: standard error of the mean.", "",
                  "![figure 2](figure2.png)", ""]
    lines += ["## Results", "", "Each cell: true MSE x 1e-3 / PSNR dB / LPIPS, means over images and seeds.", "",
              *results_table(grid, methods), "",
              "## Best CSGM variant / ILO, true MSE ratio (> 1: ILO is better)", "", *ratio_table(main), ""]
    holes = hole_table(main, methods)
    if holes:
        lines += ["## Inside the hole (inpainting)", "",
                  "Each cell: hole PSNR dB / hole LPIPS (the result with the observed pixels pasted back, "
                  "against the clean image) / whole-image PSNR with the observed pixels pasted back; means over "
                  "images and seeds. Telea and Navier-Stokes are OpenCV's classical inpainting.", "", *holes, ""]
    autos = auto_table(main)
    if autos:
        lines += ["## Self-tuned ILO (ilo-auto) against ILO", "",
                  "Means over images and seeds; < 1: ilo-auto is better (mse) or cheaper (seconds).", "", *autos, ""]
    if sna:
        lines += ["## Stochastic Noise Addition ablation (Table 1), denoising at sigma 30", "", *sna_table(sna), ""]
    keys = [f"{task}_{level.replace(' ', '')}" for task, level in grid]
    if contact_sheet(out, keys, methods, out / "contact_sheet.png"):
        lines += ["## Contact sheet (first image)", "", "![contact sheet](contact_sheet.png)", ""]
    path = out / "report.md"
    write_text("\n".join(lines), path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ilo_core.evaluation.report DIR   (a folder written by python -m ilo_core.evaluation.evaluate)")
        return 2
    out = Path(args[0])
    print(write_report(out, json.loads((out / "results.json").read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
