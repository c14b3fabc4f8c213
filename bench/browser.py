"""What a person waits for: the dashboard in Debian's Chromium, timed from picking an image to its panels.

Starts `streamlit run app.py`, opens it in headless Chromium (Playwright), waits for the default view (the
model is then warm), switches to Upload and uploads gallery photos one at a time. For each it times, from
handing the file to the page, until the saliency panel shows the new image's map (the prediction is drawn
before it), until all four maps are drawn, and until the run ends (the faithfulness curves under every map
and the agreement matrix come after the maps). Writes bench/results/browser.json and prints medians.
`--screenshot PATH` also saves the default view, full page (the README's screenshot).

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
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser, Page, sync_playwright

from whylabel import models

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
def serve(log: Path, start_seconds: float = 60) -> Iterator[str]:
    """`streamlit run app.py` on a free port; stopped afterwards, pass or fail. Yields its URL."""
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
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
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


NEW_CAPTIONS = """([selector, before, n]) => {
    const captions = [...document.querySelectorAll(selector)].map(e => e.innerText).filter(t => t.includes(" · seed "));
    return captions.filter(c => !before.includes(c)).length >= n;
}"""
"""True once `n` panels show a caption not on the page before (stale panels keep theirs until redrawn)."""


def panel_captions(page: Page) -> list[str]:
    """The panels' captions ("target … · seed 0 · 1.23 s …"), in page order; the browser's own text."""
    return page.locator(CAPTIONS).filter(has_text=" · seed ").all_inner_texts()


def time_upload(page: Page, photo: Path, timeout_s: float = 120) -> dict[str, float]:
    """Seconds from handing `photo` to the page until the first panel's new map is drawn, until every
    panel's is, and until the run ends (the scores under the maps included).

    The browser checks the captions itself, once per animation frame, so the polling costs it little.
    """
    before = panel_captions(page)
    start = time.perf_counter()
    page.locator(FILE_INPUT).set_input_files(photo)
    marks = []
    for n in (1, len(before)):
        page.wait_for_function(NEW_CAPTIONS, arg=[CAPTIONS, before, n], polling="raf", timeout=timeout_s * 1000)
        marks.append(time.perf_counter() - start)
    page.locator(IDLE).wait_for(state="attached", timeout=timeout_s * 1000)
    return {
        "first_panel_seconds": marks[0],
        "all_maps_seconds": marks[1],
        "all_panels_seconds": time.perf_counter() - start,
    }


def measure(names: list[str], folder: Path, screenshot: Path | None = None) -> list[dict[str, float | str]]:
    with serve(folder / "server.log") as url, chromium() as browser:
        page = browser.new_context(viewport={"width": 1600, "height": 1800}).new_page()
        page.goto(url)
        page.locator(PLOTS).nth(4).wait_for(timeout=300_000)  # the default view: the model is warm now
        page.locator(IDLE).wait_for(state="attached", timeout=300_000)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        page.locator("[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
        page.locator(FILE_INPUT).wait_for(state="attached", timeout=60_000)
        page.locator(IDLE).wait_for(state="attached", timeout=60_000)
        rows: list[dict[str, float | str]] = []
        for name in names:
            photo = folder / f"{name.split()[0]}.png"
            models.sample_image(name).save(photo)
            rows.append({"photo": name, **time_upload(page, photo)})
        return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=5, help=f"photos to upload (at most {len(PHOTOS)})")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--screenshot", type=Path, help="also save the default view here (PNG, full page)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        rows = measure(list(PHOTOS[: args.photos]), Path(folder), args.screenshot)
    result = {
        "runs": rows,
        "median_first_panel_seconds": statistics.median(float(r["first_panel_seconds"]) for r in rows),
        "median_all_maps_seconds": statistics.median(float(r["all_maps_seconds"]) for r in rows),
        "median_all_panels_seconds": statistics.median(float(r["all_panels_seconds"]) for r in rows),
        "max_first_panel_seconds": float(np.max([r["first_panel_seconds"] for r in rows])),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "browser.json").write_text(json.dumps(result, indent=1))
    print(
        f"In Chromium, from upload to the first panel: median {result['median_first_panel_seconds']:.2f} s "
        f"(max {result['max_first_panel_seconds']:.2f} s); to all four maps: median "
        f"{result['median_all_maps_seconds']:.2f} s; to the end of the run, scores included: median "
        f"{result['median_all_panels_seconds']:.2f} s, over {len(rows)} photos."
    )
    return result


if __name__ == "__main__":
    main()
