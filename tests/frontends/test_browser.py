"""A real browser (Playwright driving Debian's Chromium) uses the page like a person."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from conftest import FACES, ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"


def upload_into_editor(page, path: Path, tries: int = 4) -> None:
    """Upload a photo into the mask editor and wait until the server answers with the crop preview.

    The editor's file input exists before its WebGL canvas is ready; a file given to it then is
    dropped silently (as a person's would be), so the upload is repeated until the server has it.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # let the page's scripts finish loading first
        page.wait_for_load_state("networkidle", timeout=30_000)
    except PlaywrightTimeout:
        pass
    for _ in range(tries):
        page.locator("input[type=file]").first.set_input_files(str(path))
        try:
            page.wait_for_selector("#crop-image img", timeout=30_000)
            return
        except PlaywrightTimeout:  # the upload was dropped: give it again
            continue
    raise AssertionError(f"the page never showed the crop preview after {tries} uploads")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_upload_paint_run_and_see_the_result_and_gif_download(dcgan, tmp_path):
    """The photo is a JPEG, as most people's are (the page once refused every JPEG)."""
    from PIL import Image
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    import app
    from conftest import free_port

    demo = app.build_demo(dcgan)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=app.PAGE_CSS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic"])
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.wait_for_selector("text=ILO Studio", timeout=60_000)
            photo = tmp_path / "astronaut_face.jpg"
            Image.open(FACES / "astronaut_face.png").convert("RGB").save(photo, "JPEG", quality=92)
            upload_into_editor(page, photo)
            canvas = page.locator("canvas").first
            canvas.wait_for(timeout=30_000)
            page.wait_for_timeout(1000)
            box = canvas.bounding_box()
            assert box is not None
            # paint a stroke across the lower face
            y = box["y"] + box["height"] * 0.72
            page.mouse.move(box["x"] + box["width"] * 0.3, y)
            page.mouse.down()
            for i in range(12):
                page.mouse.move(box["x"] + box["width"] * (0.3 + 0.035 * i), y, steps=3)
            page.mouse.up()
            page.wait_for_timeout(500)
            # a short schedule: open the per-layer accordion and set every layer's steps to 20
            page.get_by_text("Per-layer steps and l1 radii").click()
            for i in range(4):
                field = page.get_by_label(f"layer {i}: steps").first
                field.fill("20")
                field.press("Enter")
            page.wait_for_timeout(500)
            started = time.monotonic()
            page.get_by_role("button", name="Run").click()
            # the result's downloads, or an error toast (fail at once with its text)
            page.wait_for_selector("#downloads a, .toast-body", timeout=240_000)
            toasts = page.locator(".toast-body")
            assert toasts.count() == 0, toasts.first.inner_text()
            page.wait_for_selector("#result-image img", timeout=60_000)
            # the download list can render in steps (or the first match was a passing toast): wait for the GIF
            try:
                page.wait_for_function("""() => [...document.querySelectorAll('#downloads a')].some(
                    a => (a.getAttribute('href') || '').includes('.gif'))
                    || document.querySelector('#downloads').innerText.includes('.gif')""", timeout=60_000)
            except PlaywrightTimeout:
                pass  # the assertion below says what the list holds
            listing = page.locator("#downloads").inner_text()
            hrefs = [a.get_attribute("href") or "" for a in page.locator("#downloads a").all()]
            assert any(".gif" in t for t in hrefs + [listing]), (listing, hrefs)
            try:  # the table, rendered with the downloads: visible text anywhere on the page
                page.wait_for_function("() => document.body.innerText.includes('PSNR')", timeout=60_000)
            except PlaywrightTimeout:
                matches = page.get_by_text("PSNR")
                raise AssertionError(f"no results table in sight: {matches.count()} element(s) hold 'PSNR', "
                                     f"visible: {[m.is_visible() for m in matches.all()]}; the page says "
                                     f"{page.inner_text('body')[-1500:]!r}") from None
            full_seconds = time.monotonic() - started
            page.wait_for_selector("#before-after img", timeout=30_000)  # the repaired photo, before / after
            page.screenshot(path=str(ARTIFACTS / "browser_run.png"), full_page=True)
            # re-tune the last layer's radius: only that layer runs again
            page.evaluate("""() => { window.sawRetune = false;
                new MutationObserver(() => { if (document.body.innerText.includes('Re-running from layer 3'))
                    window.sawRetune = true; }).observe(document.body, {subtree: true, childList: true,
                                                                        characterData: true}); }""")
            radius = page.get_by_label("layer 3: state radius").first
            started = time.monotonic()
            radius.fill("300")
            radius.press("Enter")
            radius.blur()
            try:
                page.wait_for_function("window.sawRetune", timeout=15_000)
            except PlaywrightTimeout:  # the page was still settling: give the value once more
                started = time.monotonic()
                radius.fill("400")
                radius.press("Enter")
                radius.blur()
                page.wait_for_function("window.sawRetune", timeout=60_000)
            page.wait_for_function("!document.body.innerText.includes('Re-running from layer 3')", timeout=120_000)
            retune_seconds = time.monotonic() - started
            print(f"browser: full run {full_seconds:.1f} s, last-layer re-tune {retune_seconds:.1f} s")
            assert retune_seconds < full_seconds
            page.screenshot(path=str(ARTIFACTS / "browser_retune.png"), full_page=True)
            # a bad seed: one sentence in a toast, and the result stays on screen
            page.get_by_text("Advanced").first.click()
            seed = page.get_by_label("Seed (a whole number)").first
            for _ in range(5):  # the page may still be settling after the re-tune's last update
                seed.fill("1e30")
                seed.press("Enter")
                page.wait_for_timeout(300)
                if seed.input_value() == "1e30":
                    break
            page.get_by_role("button", name="Run").click()
            try:
                page.get_by_text("Could not run").first.wait_for(timeout=60_000)
                page.locator("[class*=toast]", has_text="seed must be a whole number").first.wait_for(timeout=10_000)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "browser_seed_failure.png"), full_page=True)
                raise
            assert page.locator("#result-image img").count() == 1
            # Stop with nothing running says so and changes nothing
            page.get_by_role("button", name="Stop").click()
            page.locator("[class*=toast]", has_text="Nothing is running").first.wait_for(timeout=30_000)
            assert page.locator("#result-image img").count() == 1
            browser.close()
    finally:
        demo.close()
    assert (ARTIFACTS / "browser_run.png").stat().st_size > 10_000
