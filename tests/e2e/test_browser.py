"""The dashboard in a real browser: `streamlit run app.py` driven by Debian's chromium through Playwright.

Skipped only when `chromium` is not on PATH (`.ci/run` installs it; `playwright install` is not used).
The first page load also times the model's engine and compiles SHAP's numba code in the background.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from playwright.sync_api import Browser, Download, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.browser import CAPTIONS, FILE_INPUT, IDLE, PLOTS, chromium, log_tail, serve

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
SCREENSHOT = Path("/tmp/whylabel-screenshot.png")

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
SERVER_START_S = 60
FIRST_RUN_MS = 180_000  # the default view computes four full-size maps
RUN_MS = 150_000
ALL_PLOTS = 11  # the prediction chart, each of the four panels with its curves, the agreement matrix, what-if by hand

HEATMAPS = "[data-testid='stMain'] .js-plotly-plot .heatmaplayer .hm"
EXCEPTION = "[data-testid='stException']"
ALERT = "[data-testid='stAlert']"
FAILED = "could not be computed"  # what a panel that raised says
TARGET_BOX = "[data-testid='stMain'] input[role='combobox'][aria-label^='Explain which class']"
CONTRAST_BOX = "[data-testid='stMain'] input[role='combobox'][aria-label^='Rather than which class']"


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's output: Streamlit's and whylabel's log lines ("started/finished/stopped lime for ...")."""
    return tmp_path_factory.mktemp("streamlit") / "server.log"


@pytest.fixture(scope="module")
def server(server_log: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port; the process is stopped afterwards, pass or fail."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); the browser test needs it")
    log = server_log
    try:
        with serve(log, start_seconds=SERVER_START_S) as url:
            yield url
    finally:
        print(f"--- streamlit log ({log}) ---\n{log_tail(log)}")


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@contextmanager
def session(browser: Browser, url: str) -> Iterator[Page]:
    """A fresh browser context (so a fresh Streamlit session) on the app, tall enough to show every panel."""
    context = browser.new_context(viewport={"width": 1600, "height": 1800})
    page = context.new_page()
    page.goto(url)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    with session(browser, server) as page:
        yield page


def wait_idle(page: Page, timeout_ms: int) -> None:
    page.locator(IDLE).wait_for(state="attached", timeout=timeout_ms)


def wait_first_view(page: Page) -> None:
    """The first run has finished: five plots (prediction and four panels) on screen, no failure, script idle."""
    expect(page.get_by_role("heading", name="whylabel")).to_be_visible(timeout=60_000)
    # Five plots, or the first sign of failure (so a broken page fails now rather than at the timeout).
    done = (
        page.locator(PLOTS)
        .nth(ALL_PLOTS - 1)
        .or_(page.locator(EXCEPTION))
        .or_(page.locator(ALERT).filter(has_text=FAILED))
    )
    done.first.wait_for(timeout=FIRST_RUN_MS)
    assert_no_error(page)
    expect(page.locator(PLOTS)).to_have_count(ALL_PLOTS)
    wait_idle(page, FIRST_RUN_MS)


def panel_captions(page: Page) -> list[str]:
    """The four panel captions ("target LABEL (INDEX) · score: … · seed 0 · 1.23 s")."""
    return (
        page.locator("[data-testid='stMain'] [data-testid='stCaptionContainer']")
        .filter(has_text=" · seed ")
        .all_inner_texts()
    )


def caption_target(caption: str) -> int:
    match = re.match(r"target .+? \((\d+)\) · ", caption)
    assert match, caption
    return int(match.group(1))


def assert_target_box_shows_top1(page: Page, top_index: int) -> None:
    """The "Explain which class?" box shows its top-1 option for this image: not empty, not a stale class."""
    shown = page.locator(TARGET_BOX).input_value()
    assert shown.startswith("top-1"), f"the target box shows {shown!r} (empty: the 'Choose an option' placeholder)"
    named = re.findall(r"\((\d+)\)", shown)
    assert all(int(n) == top_index for n in named), f"the target box shows {shown!r}; the top-1 class is {top_index}"


def model_view_caption(page: Page) -> str:
    return page.locator("[data-testid='stMain'] [data-testid='stImageCaption']").inner_text()


def assert_four_heatmaps(page: Page) -> None:
    plots = page.locator(PLOTS)
    expect(plots).to_have_count(ALL_PLOTS)
    for i in range(ALL_PLOTS):
        expect(plots.nth(i)).to_be_visible()
    expect(page.locator(HEATMAPS)).to_have_count(5)  # the four panels and the agreement matrix
    for i in range(5):
        expect(page.locator(HEATMAPS).nth(i)).to_be_visible()


def assert_no_error(page: Page) -> None:
    failed = page.locator(ALERT).filter(has_text=FAILED)
    if failed.count():
        raise AssertionError(f"a panel failed: {failed.first.inner_text()}")
    expect(page.locator(EXCEPTION)).to_have_count(0)


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    shutil.copyfile(path, SCREENSHOT)


def test_default_view_in_browser(page: Page, tmp_path: Path) -> None:
    wait_first_view(page)
    assert_four_heatmaps(page)
    assert model_view_caption(page) == "chelsea (cat): what efficientnet_lite0 sees"
    captions = panel_captions(page)
    assert len(captions) == 4, captions
    assert len({caption_target(c) for c in captions}) == 1, captions
    assert caption_target(captions[0]) in CAT_CLASSES, captions
    assert_target_box_shows_top1(page, caption_target(captions[0]))
    screenshot(page, tmp_path / "default-view.png")
    # no CSS transitions (ui/look.py): a stale element dims at once instead of fading, frame by frame; Streamlit
    # gives these (charts, expanders, the sidebar) transitions of 0.15-0.3 s of their own
    durations = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=stPlotlyChart] *, [data-testid=stExpander] *, "
        "[data-testid=stSidebar]')].map(e => getComputedStyle(e).transitionDuration)"
    )
    assert len(durations) > 50 and set(durations) == {"0s"}, set(durations)


def test_upload_in_browser(page: Page, tmp_path: Path) -> None:
    photo = tmp_path / "coffee.png"
    Image.fromarray(np.asarray(skimage.data.coffee(), dtype=np.uint8)).save(photo)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are my notes, not a picture\n")

    try:
        wait_first_view(page)
        assert_no_error(page)
        default_captions = panel_captions(page)
        assert len(default_captions) == 4, default_captions

        # Switch the Image radio to Upload: the uploader appears and the gallery image stays meanwhile.
        page.locator("[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
        page.locator(FILE_INPUT).wait_for(state="attached", timeout=RUN_MS)
        expect(page.get_by_text("No image uploaded yet")).to_be_visible(timeout=RUN_MS)
        wait_idle(page, RUN_MS)
        assert_no_error(page)
        assert_four_heatmaps(page)

        # A real photo: the model view and all four panels follow it.
        page.locator(FILE_INPUT).set_input_files(photo)
        expect(page.locator("[data-testid='stMain'] [data-testid='stImageCaption']")).to_have_text(
            "coffee.png: what efficientnet_lite0 sees", timeout=RUN_MS
        )
        wait_idle(page, RUN_MS)
        assert_no_error(page)
        assert_four_heatmaps(page)
        captions = panel_captions(page)
        assert len(captions) == 4, captions
        assert captions != default_captions
        top_index = caption_target(captions[0])
        assert {caption_target(c) for c in captions} == {top_index}, captions
        assert top_index not in CAT_CLASSES, captions
        assert_target_box_shows_top1(page, top_index)

        # Text renamed .png: a clear message, and the last good image and its panels stay on screen.
        page.locator(FILE_INPUT).set_input_files(not_an_image)
        alert = page.locator(ALERT).filter(has_text="notes.png")
        expect(alert).to_be_visible(timeout=RUN_MS)
        expect(alert).to_contain_text("This file is not an image whylabel can read")
        wait_idle(page, RUN_MS)
        assert_no_error(page)
        assert model_view_caption(page) == "coffee.png: what efficientnet_lite0 sees"
        assert_four_heatmaps(page)
        assert panel_captions(page) == captions
        assert_target_box_shows_top1(page, top_index)
    finally:
        screenshot(page, tmp_path / "upload.png")


def test_sanity_check_and_contrast_in_browser(page: Page, tmp_path: Path) -> None:
    try:
        wait_first_view(page)
        top_index = caption_target(panel_captions(page)[0])

        # The sanity check on the first map: the trained and randomised maps and the cascade, with a verdict.
        page.get_by_role("button", name="Randomise the weights and re-run").click()
        verdict = page.locator(CAPTIONS).filter(has_text="Spearman with the trained model's map")
        expect(verdict).to_be_visible(timeout=RUN_MS)
        wait_idle(page, RUN_MS)
        assert_no_error(page)
        expect(page.locator(PLOTS)).to_have_count(ALL_PLOTS + 3)
        assert re.search(r"map: -?\d\.\d\d, (passes|fails)", verdict.inner_text()), verdict.inner_text()

        # Why the top class rather than another cat: every panel explains the difference of the two scores.
        other, name = (285, "Egyptian cat") if top_index != 285 else (282, "tiger cat")
        box = page.locator(CONTRAST_BOX)
        box.click()
        box.fill(name)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=f"rather than {name}")).to_be_visible(timeout=RUN_MS)
        wait_idle(page, RUN_MS)
        assert_no_error(page)
        assert_four_heatmaps(page)
        captions = panel_captions(page)
        assert len(captions) == 4 and all(f"rather than {name} ({other})" in c for c in captions), captions

        # The evidence zip: the maps on screen, their hashes and scores, the contrast, and the checks run.
        page.get_by_role("button", name="Randomise the weights and re-run").click()
        expect(verdict).to_be_visible(timeout=RUN_MS)
        wait_idle(page, RUN_MS)
        clip_at(page, steps_down=2)  # 99 -> 98: the download must be drawn as the screen is
        wait_idle(page, RUN_MS)
        download = click_download(page, "Download evidence")
        assert download.suggested_filename == "whylabel-chelsea_cat.zip"
        check_evidence_zip(Path(download.path()), top_index, other)
    finally:
        screenshot(page, tmp_path / "checks.png")


def click_download(page: Page, name: str, tries: int = 3) -> Download:
    """The download a click on the button gives. A click that lands while a rerun redraws the button is lost (the
    slider's two steps are two reruns, and the script may look idle between them), so a person clicks again."""
    for attempt in range(1, tries + 1):
        wait_idle(page, RUN_MS)
        try:
            with page.expect_download(timeout=RUN_MS // tries) as download:
                page.get_by_role("button", name=name).click()
            return download.value
        except PlaywrightTimeout:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def check_evidence_zip(path: Path, target: int, contrast: int) -> None:
    with zipfile.ZipFile(path) as archive:
        names = {name.split("/", 1)[1] for name in archive.namelist()}
        assert names == {"figure.png", "record.json", "heatmaps.npz", "report.html", "model_card.md"}
        folder = archive.namelist()[0].split("/", 1)[0]
        record = json.loads(archive.read(f"{folder}/record.json"))
        maps = np.load(io.BytesIO(archive.read(f"{folder}/heatmaps.npz")))
    assert (record["target"]["index"], record["contrast"]["index"]) == (target, contrast)
    assert [m["name"] for m in record["methods"]] == ["saliency", "occlusion", "lime", "shap"]
    for method in record["methods"]:
        heatmap = maps[method["name"]]
        assert method["heatmap_sha256"] == hashlib.sha256(heatmap.tobytes()).hexdigest()
        assert "deletion_auc" in method["trust"]
    sanity = record["methods"][0]["trust"]["sanity"]  # the check run on the page for the first map
    assert isinstance(sanity["passed"], bool) and "below 0.5" in sanity["rule"]
    assert record["display"] == {"shared": True, "percentile": 98.0, "opacity": 0.8}


def clip_at(page: Page, steps_down: int) -> None:
    """Lower the clipping percentile by `steps_down` slider steps (0.5 each) in the Display expander."""
    page.locator("[data-testid='stSidebar'] summary").filter(has_text="Display").click()
    slider = page.get_by_role("slider", name="Clip at percentile of |value|")
    slider.focus()
    for _ in range(steps_down):
        slider.press("ArrowLeft")
    expect(slider).to_have_value(f"{99 - 0.5 * steps_down:g}", timeout=RUN_MS)


# --- shared use and superseded runs ----------------------------------------------------------------------------

ENGINE_TOLERANCE = 1e-4  # the two processes time their own engine batch sizes; sums may round differently


def save_photo(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(path)
    return path


def upload(page: Page, path: Path) -> None:
    """Switch the Image radio to Upload (once) and send `path`; returns when its model view is on screen."""
    if not page.locator(FILE_INPUT).count():
        page.locator("[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
        page.locator(FILE_INPUT).wait_for(state="attached", timeout=RUN_MS)
        wait_idle(page, RUN_MS)
    page.locator(FILE_INPUT).set_input_files(path)


def expect_view_of(page: Page, path: Path) -> None:
    expect(page.locator("[data-testid='stMain'] [data-testid='stImageCaption']")).to_have_text(
        f"{path.name}: what efficientnet_lite0 sees", timeout=RUN_MS
    )


def evidence_maps(page: Page) -> dict[str, np.ndarray]:
    with page.expect_download(timeout=RUN_MS) as download:
        page.get_by_role("button", name="Download evidence").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        folder = archive.namelist()[0].split("/", 1)[0]
        maps = np.load(io.BytesIO(archive.read(f"{folder}/heatmaps.npz")))
        return {name: maps[name] for name in maps.files if name != "model_input"}


def computations(log: Path, image: Path) -> list[tuple[str, str]]:
    """(event, method) for each of whylabel's log lines about this uploaded image, in order."""
    digest = hashlib.sha256(image.read_bytes()).hexdigest()[:12]
    pattern = re.compile(rf"\b(started|finished|stopped|failed) (\w+) for efficientnet_lite0 on upload:{digest}")
    return [match.groups() for match in map(pattern.search, log.read_text().splitlines()) if match]


def test_two_sessions_at_once_each_get_their_own_correct_maps(
    browser: Browser, server: str, server_log: Path, tmp_path
):
    from whylabel import explainers, models

    photos = {
        "astronaut.png": save_photo(skimage.data.astronaut(), tmp_path / "astronaut.png"),
        "rocket.png": save_photo(skimage.data.rocket(), tmp_path / "rocket.png"),
    }
    with session(browser, server) as first, session(browser, server) as second:
        pages = dict(zip(photos, (first, second), strict=True))
        for page in pages.values():
            wait_first_view(page)
        for name, page in pages.items():  # both uploads before either run ends: the two runs overlap
            upload(page, photos[name])
        for name, page in pages.items():
            expect_view_of(page, photos[name])
            wait_idle(page, RUN_MS)
            assert_no_error(page)
            assert_four_heatmaps(page)
        on_screen = {name: evidence_maps(page) for name, page in pages.items()}

    astronaut, rocket = (computations(server_log, path) for path in photos.values())
    assert astronaut[0][0] == "started" and rocket[0][0] == "started", (astronaut, rocket)
    log_text = server_log.read_text()
    starts = [log_text.index(f"on upload:{hashlib.sha256(p.read_bytes()).hexdigest()[:12]}") for p in photos.values()]
    ends = [log_text.rindex(f"on upload:{hashlib.sha256(p.read_bytes()).hexdigest()[:12]}") for p in photos.values()]
    assert starts[1] < ends[0] and starts[0] < ends[1], "the two sessions' runs did not overlap"

    clf = models.load("efficientnet_lite0")
    for name, maps in on_screen.items():
        assert sorted(maps) == ["lime", "occlusion", "saliency", "shap"]
        image = models.open_image(photos[name])
        for method, heatmap in maps.items():
            alone = explainers.explain(clf, image, method).heatmap
            scale = float(np.abs(alone).max())
            np.testing.assert_allclose(
                heatmap, alone, rtol=0, atol=ENGINE_TOLERANCE * scale, err_msg=f"{name} {method}"
            )


def test_a_run_the_user_replaces_stops_instead_of_finishing(page: Page, server_log: Path, tmp_path: Path) -> None:
    first = save_photo(skimage.data.coffee()[:, ::-1], tmp_path / "first.png")
    second = save_photo(skimage.data.chelsea()[:, ::-1], tmp_path / "second.png")
    wait_first_view(page)
    upload(page, first)
    expect_view_of(page, first)
    wait_idle(page, RUN_MS)
    assert computations(server_log, first)[-2:] == [("started", "shap"), ("finished", "shap")]

    # A long LIME run on the first image, replaced by the second image while it computes.
    page.locator("[data-testid='stSidebar'] [data-testid='stExpander']").filter(has_text="LIME settings").click()
    # New superpixels (the slider's largest count), so nothing the first run computed can be reused.
    page.get_by_label("n_segments", exact=True).get_by_role("slider").press("End")
    samples = page.get_by_label("samples", exact=True)
    samples.fill("4000")
    samples.press("Enter")
    expect(page.get_by_text(re.compile(r"Computing LIME… \d+%"))).to_be_visible(timeout=RUN_MS)
    upload(page, second)
    expect_view_of(page, second)
    wait_idle(page, RUN_MS)
    assert_no_error(page)
    assert_four_heatmaps(page)

    events = computations(server_log, first)
    replaced = events[events.index(("finished", "shap")) + 1 :]
    # Streamlit (fastReruns) may start the same LIME run twice when the browser sends the committed value twice;
    # every run begun on the first image must stop, none may finish, and no SHAP run may begin after it.
    started, stopped = replaced.count(("started", "lime")), replaced.count(("stopped", "lime"))
    assert started >= 1 and started == stopped == len(replaced) / 2, events
    assert ("finished", "lime") in computations(server_log, second)


def wait_drawn(page: Page, images: Locator, count: int, timeout_ms: int) -> None:
    """Wait until the first `count` images have loaded with pixels; a broken one fails with its state listed."""
    state = "(imgs, n) => imgs.slice(0, n).map(img => [img.complete, img.naturalWidth, img.src.slice(-40)])"
    drawn = "(imgs, n) => imgs.slice(0, n).every(img => img.complete && img.naturalWidth > 0)"
    deadline = time.monotonic() + timeout_ms / 1000
    while not images.evaluate_all(drawn, count):
        assert time.monotonic() < deadline, images.evaluate_all(state, count)
        page.wait_for_timeout(250)


AUDIT_MS = 240_000  # trains the demo model and maps 1,000 digits on 2 cores


def test_the_audit_page_in_browser_flags_the_marked_sevens(page: Page, server: str, tmp_path: Path) -> None:
    """What a person sees: the demo audited, its flagged clusters first with their reasons, no exception."""
    page.goto(server.rstrip("/") + "/audit")
    expect(page.get_by_role("heading", name="Audit a set")).to_be_visible(timeout=60_000)
    wait_idle(page, 60_000)
    page.get_by_role("button", name="Run the audit").click()
    flagged = page.locator(ALERT).filter(has_text="Flagged: ")
    flagged.or_(page.locator(EXCEPTION)).first.wait_for(timeout=AUDIT_MS)
    wait_idle(page, AUDIT_MS)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    assert flagged.count() >= 1
    assert all("top-left corner" in text and "'7'" in text for text in flagged.all_inner_texts())
    summary = page.get_by_role("heading", name=re.compile(r"^1,000 images, 10 classes, \d+ clusters, \d+ flagged$"))
    expect(summary).to_be_visible()
    # The flagged clusters' maps and their members' thumbnails, drawn. Streamlit loads its image component lazily
    # (a separate script chunk), so the images may arrive after the run has finished: wait for the twelfth.
    shown = page.locator("[data-testid='stMain'] [data-testid='stImage'] img")
    shown.nth(11).wait_for(state="attached", timeout=30_000)
    wait_drawn(page, shown, 12, 30_000)
    page.screenshot(path=str(tmp_path / "audit.png"), full_page=False)
    shutil.copyfile(tmp_path / "audit.png", Path("/tmp/whylabel-audit-screenshot.png"))
