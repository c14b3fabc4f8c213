"""What a person waits for: the dashboard in Debian's Chromium, against the same work through the Python API.

Starts `streamlit run app.py` with an empty result store (`store.results`), opens it in headless Chromium
(Playwright) and times, from the server's launch, until the default view is complete (every map, score and the
agreement matrix). Then it switches to Upload and uploads gallery photos one at a time. For each it times, from
handing the file to the page, until the saliency panel shows the new image's map (the prediction is drawn
before it), until all four maps are drawn, and until the run ends (the faithfulness curves under every map
and the agreement matrix come after the maps). A second launch with the same store times a returning user's
default view (its maps and scores read back). The same work through the API, in this process with its memory
cleared for each photo, and from launch in a fresh Python process, is timed beside each. Writes
bench/results/browser.json and prints medians and each photo's ratio (their median and range). `--screenshot
PATH` also saves the default view, full page (the README's screenshot, assets/screenshot.png).

Usage: python -m bench.browser [--photos N] [--out DIR] [--screenshot PATH]   (needs `chromium` on PATH)
The helpers `serve` and `chromium` are shared with the browser test (tests/e2e).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from whylabel import explainers, models, trust, whatif

ROOT = Path(__file__).resolve().parents[1]
STREAMLIT = ROOT / ".venv" / "bin" / "streamlit"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PLOTS = "[data-testid='stMain'] .js-plotly-plot"
CAPTIONS = "[data-testid='stMain'] [data-testid='stCaptionContainer']"
FILE_INPUT = "[data-testid='stSidebar'] input[type='file']"
DEFAULT_METHODS = tuple(name for name in explainers.available() if explainers.get(name).default_on)
PHOTOS = ("coffee", "astronaut", "rocket", "motorcycle", "china (temple)", "flower", "grace hopper")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def serve(log: Path, start_seconds: float = 60, env: dict[str, str] | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free port (`env` added to this environment); stopped afterwards, pass or fail.
    Yields its URL."""
    port = free_port()
    command = [
        str(STREAMLIT),
        "run",
        "app.py",
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_seconds
        while not healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer within {start_seconds} s:\n{log_tail(log)}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright (`playwright install` cannot download browsers here)."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


WATCH = """([selector, panels]) => {
    const captions = () => [...document.querySelectorAll(selector)]
        .map(e => e.textContent).filter(t => t.includes(" · seed "));
    const before = new Set(captions());
    const start = performance.now();
    const marks = (window.whylabelMarks = {});
    const observer = new MutationObserver(() => {
        const fresh = captions().filter(t => !before.has(t));
        const now = (performance.now() - start) / 1000;
        if (fresh.length && marks.first === undefined) marks.first = now;
        if (fresh.filter(t => !t.includes("refining")).length >= panels) {
            marks.all = now;
            observer.disconnect();
        }
    });
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
"""Marks, in the page's own clock, when the first panel shows a new caption (a first estimate or a map) and
when every panel shows its converged one. A MutationObserver reads only text (no layout) when the page
changes, so the measuring does not load the browser it measures (polling each animation frame did: it took
a share of the two cores from the computation). Stale panels keep their old captions until redrawn."""


def panel_captions(page: Page) -> list[str]:
    """The panels' captions ("target … · seed 0 · 1.23 s …"), in page order; the browser's own text."""
    return page.locator(CAPTIONS).filter(has_text=" · seed ").all_inner_texts()


def time_upload(page: Page, photo: Path, timeout_s: float = 120) -> dict[str, float]:
    """Seconds from handing `photo` to the page until the first panel's new map is drawn, until every
    panel's is, and until the run ends (the scores under the maps included); the first two by `WATCH`.
    """
    panels = len(panel_captions(page))
    start = time.perf_counter()
    page.evaluate(WATCH, [CAPTIONS, panels])
    page.locator(FILE_INPUT).set_input_files(photo)
    page.wait_for_function("() => window.whylabelMarks.all !== undefined", polling=250, timeout=timeout_s * 1000)
    marks = page.evaluate("() => [window.whylabelMarks.first, window.whylabelMarks.all]")
    page.locator(IDLE).wait_for(state="attached", timeout=timeout_s * 1000)
    return {
        "first_panel_seconds": marks[0],
        "all_maps_seconds": marks[1],
        "all_panels_seconds": time.perf_counter() - start,
    }


def default_view(page: Page, url: str) -> None:
    """Open the page and wait until its default view is complete: every panel drawn and the run ended."""
    page.goto(url)
    page.locator(PLOTS).nth(4).wait_for(timeout=300_000)
    page.locator(IDLE).wait_for(state="attached", timeout=300_000)


@contextmanager
def launch(browser: Browser, log: Path, store: Path, screenshot: Path | None = None) -> Iterator[tuple[float, Page]]:
    """Seconds from starting the server to the complete default view, and the page."""
    start = time.perf_counter()
    with serve(log, env={"WHYLABEL_RESULTS": str(store)}) as url:
        page = browser.new_context(viewport={"width": 1600, "height": 1800}).new_page()
        default_view(page, url)
        seconds = time.perf_counter() - start
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        yield seconds, page


def measure(names: list[str], folder: Path, screenshot: Path | None = None) -> dict[str, Any]:
    store = folder / "results"
    with chromium() as browser:
        with launch(browser, folder / "server.log", store, screenshot) as (cold, page):
            page.locator("[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
            page.locator(FILE_INPUT).wait_for(state="attached", timeout=60_000)
            page.locator(IDLE).wait_for(state="attached", timeout=60_000)
            rows: list[dict[str, float | str]] = []
            for name in names:
                photo = folder / f"{name.split()[0]}.png"
                models.sample_image(name).save(photo)
                rows.append({"photo": name, **time_upload(page, photo)})
        with launch(browser, folder / "server-again.log", store) as (again, _):
            pass
    return {"runs": rows, "launch_seconds": cold, "launch_again_seconds": again}


def api_view(clf: models.Classifier, img: Image.Image) -> dict[str, float]:
    """The page's work for one image through the API: the prediction, the default maps (saliency first), the
    random baseline, every map's scores, the agreement matrix and the what-if view's superpixels and top 5;
    seconds to the first map, the maps, the end."""
    clf.memory.clear()
    start = time.perf_counter()
    target = clf.predict(img, k=5).top[0][0]
    atts, marks = [], []
    for method in DEFAULT_METHODS:
        atts.append(explainers.explain(clf, img, method, target=target))
        marks.append(time.perf_counter() - start)
    baseline = trust.baseline_for(atts[0])
    for att in atts:
        trust.evaluate(att, baseline=baseline)
    trust.agreement([att.heatmap for att in atts])
    pixels = clf.input_image(img)
    clf.predict_view(whatif.edited_view(pixels, whatif.superpixels(pixels), ()))
    return {
        "first_panel_seconds": marks[0],
        "all_maps_seconds": marks[-1],
        "all_panels_seconds": time.perf_counter() - start,
    }


API_LAUNCH = """
import time; start = time.perf_counter()
from bench.browser import api_view
from whylabel import models
clf = models.load("efficientnet_lite0"); clf.engine()
api_view(clf, models.sample_image(models.default_image_for("efficientnet_lite0")))
print(time.perf_counter() - start)
"""


def api_launch_seconds() -> float:
    """The default view's work through the API from a fresh Python process: imports, model, engine, work."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", API_LAUNCH], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def api_runs(names: list[str]) -> list[dict[str, float]]:
    clf = models.load("efficientnet_lite0")
    clf.engine()
    api_view(clf, models.sample_image(names[0]))  # warm, as the page's model is after its default view
    return [api_view(clf, models.sample_image(name)) for name in names]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=5, help=f"photos to upload (at most {len(PHOTOS)})")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--screenshot", type=Path, help="also save the default view here (PNG, full page)")
    args = parser.parse_args(argv)
    names = list(PHOTOS[: args.photos])
    api = {"runs": api_runs(names), "launch_seconds": api_launch_seconds()}
    with tempfile.TemporaryDirectory() as folder:
        page = measure(names, Path(folder), args.screenshot)
    result = summary(page, api)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "browser.json").write_text(json.dumps(result, indent=1))
    print(text(result))
    return result


MARKS = {"first_panel_seconds": "first map", "all_maps_seconds": "all four maps", "all_panels_seconds": "whole view"}


def summary(page: dict[str, Any], api: dict[str, Any]) -> dict[str, Any]:
    """Medians per mark, in the browser and through the API, and the median of each photo's browser / API ratio
    (paired: photos differ in cost, so a ratio of the two medians could compare two different photos); the
    launches beside the API's."""
    result: dict[str, Any] = {"browser": page, "api": api, "medians": {}}
    for mark in MARKS:
        shown = [float(r[mark]) for r in page["runs"]]
        computed = [float(r[mark]) for r in api["runs"]]
        ratios = [b / a for b, a in zip(shown, computed, strict=True)]
        result["medians"][mark] = {
            "browser": statistics.median(shown),
            "api": statistics.median(computed),
            "ratio": statistics.median(ratios),
            "ratios": ratios,
        }
    result["max_first_panel_seconds"] = float(np.max([r["first_panel_seconds"] for r in page["runs"]]))
    for which in ("launch_seconds", "launch_again_seconds"):
        result[which] = {
            "browser": page[which],
            "api": api["launch_seconds"],
            "ratio": page[which] / api["launch_seconds"],
        }
    return result


def text(result: dict[str, Any]) -> str:
    lines = [
        f"In Chromium against the same work through the API, medians over {len(result['browser']['runs'])} uploads:",
        "",
        "| from the upload to | browser s | API s | ratio (each photo's, median) | ratios (least-most) |",
        "|---|---|---|---|---|",
    ]
    for mark, name in MARKS.items():
        m = result["medians"][mark]
        spread = f"{min(m['ratios']):.2f}-{max(m['ratios']):.2f}x"
        lines.append(f"| {name} | {m['browser']:.2f} | {m['api']:.2f} | {m['ratio']:.2f}x | {spread} |")
    for which, name in (("launch_seconds", "launch, empty result store"), ("launch_again_seconds", "launch again")):
        m = result[which]
        lines.append(
            f"| the default view, from {name} | {m['browser']:.2f} | {m['api']:.2f} | {m['ratio']:.2f}x | one |"
        )
    lines += ["", f"Slowest first map: {result['max_first_panel_seconds']:.2f} s. The API's launch is a fresh Python"
              " process: imports, model, engine (from the disk cache), the default image's whole view."]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
