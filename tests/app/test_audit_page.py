"""Page tests for the "Audit a set" page (ui/audit.py) with Streamlit's AppTest, through app.py's navigation.

The teaching demo (mnist_marked over the held-out digits, half of the 7s marked at the top left) is audited
once per test process: the page keeps its audits in a server-wide store, so every later session that runs it
takes the stored audit at once. Uploads are audited with mnist_cnn (28 x 28 input, saliency maps).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from whylabel.audit import analysis, demo
from whylabel.models.marked import Mark
from whylabel.models.samples import PHOTOS as GALLERY
from whylabel.ui import audit as page

APP = Path(__file__).resolve().parents[2] / "app.py"
RUN_TIMEOUT = 240  # seconds; the first demo run trains mnist_marked and maps 1,000 digits (about 30 s on 2 cores)
FAST = {"lime.samples.28": 60, "lime.n_segments.28": 20, "shap.evaluations.28": 40}
"""Small LIME and SHAP budgets for the 28-px models, for when a test goes on to the single-image view."""
SUMMARY = re.compile(r"([\d,]+) images?, (\d+) class(?:es)?, (\d+) clusters?, (\d+) flagged")
NOT_AN_IMAGE = "This file is not an image whylabel can read"


# ---------------------------------------------------------------------------------------------- helpers


def audit_app(state: dict[str, object] | None = None) -> AppTest:
    """app.py opened at /audit, run once.

    AppTest's `switch_page` reaches only pages defined by a file; the audit page is a function, so the first run
    asks for it by its page hash (Streamlit's hash of its url path), as a browser at /audit does. Later runs stay
    on whichever page the last run finished on, as in a browser.
    """
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at._page_hash = calc_hash("audit")
    at.run()
    at._page_hash = ""
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def summary(at: AppTest) -> str:
    (line,) = [s.value for s in at.subheader if SUMMARY.fullmatch(s.value)]
    return line


def run_the_demo(at: AppTest) -> AppTest:
    assert at.radio(key="audit.source").value == page.DEMO
    at.button(key="audit.run").click().run()
    assert_clean(at)
    return at


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def digit(column: int) -> bytes:
    """A white bar on black, something like a 1."""
    pixels = np.zeros((28, 28, 3), dtype=np.uint8)
    pixels[5:23, column : column + 3] = 255
    return png_bytes(pixels)


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    mime = {"png": "image/png", "zip": "application/zip"}
    chosen = [(name, data, mime[name.rsplit(".", 1)[-1]]) for name, data in files]
    at.file_uploader(key="audit.uploader").set_value(chosen).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str) -> list[dict]:
    """The rows of the one dataframe on the page that has `column`."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame.to_dict("records")


@pytest.fixture(scope="module")
def demo_view() -> AppTest:
    """The teaching demo audited, as a visitor who pressed "Run the audit" sees it."""
    return run_the_demo(audit_app())


# ---------------------------------------------------------------------------------------------- the page


def test_the_audit_page_opens_from_the_navigation_with_nothing_run() -> None:
    at = audit_app()

    assert_clean(at)
    assert [t.value for t in at.title] == ["Audit a set"]
    pages = {info["page_name"]: info["url_pathname"] for info in at._registered_pages.values()}
    assert pages == {"Explain an image": "", "Audit a set": "audit"}  # the single-image page at the root
    assert at.radio(key="audit.source").options == page.SOURCES
    assert at.radio(key="audit.source").value == page.DEMO
    assert at.selectbox(key="audit.method.mnist_marked").value == "saliency"  # it has gradients
    assert any(i.value.startswith("No audit yet") for i in at.info)
    assert not [s.value for s in at.subheader if SUMMARY.fullmatch(s.value)]  # nothing runs until asked


def test_the_teaching_demo_flags_the_marked_sevens_at_the_top_left(demo_view: AppTest) -> None:
    at = demo_view
    result = at.session_state[page.SHOWN].result
    images, classes, clusters, flagged = (int(n.replace(",", "")) for n in SUMMARY.fullmatch(summary(at)).groups())
    assert images == len(result.items) == len(demo.images(Mark())) == 1000
    assert (classes, clusters, flagged) == (len(result.classes), len(result.clusters), len(result.flagged()))
    assert flagged >= 1

    warnings = [w.value for w in at.warning if w.value.startswith("Flagged: ")]
    assert len(warnings) == flagged, warnings
    assert any("the top-left corner" in w and "'7'" in w for w in warnings), warnings
    assert any("shared scale" in c.value for c in at.caption)
    marked = next(row for row in table(at, "group") if row["group"] == "marked")
    assert marked["images in flagged clusters"] > 0
    assert [e.label for e in at.expander][-1] == "The rule that flags a cluster"
    assert any("LIFT (8.0) times" in m.value and "MIN_MEMBERS (2)" in m.value for m in at.markdown)
    assert any(e.label.startswith("7: ") and e.label.endswith("flagged") for e in at.expander)
    assert any(c.value.startswith("Clusters are hypotheses for a person to check") for c in at.caption)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download audit.json" in labels and "Download the report (index.html)" in labels
    assert not [i for i in at.info if "flag rule" in i.value]  # saliency: the rule was chosen on its maps


def test_changing_the_choice_keeps_the_audit_on_screen_until_run_again(demo_view: AppTest) -> None:
    at = audit_app()
    run_the_demo(at)  # the stored audit: nothing is mapped again
    shown = summary(at)
    at.radio(key="audit.source").set_value(page.DIGITS).run()
    assert_clean(at)
    assert summary(at) == shown
    assert any(c.value.startswith("On screen: the audit of teaching demo") for c in at.caption)
    at.slider(key="audit.count").set_value(20)
    at.button(key="audit.run").click().run()
    assert_clean(at)
    assert summary(at).startswith("20 images, ")
    assert not table_columns(at)  # digits are grouped by nothing: no group table, nothing skipped


def table_columns(at: AppTest) -> list[str]:
    return [column for d in at.dataframe for column in d.value.columns]


def test_the_gallery_photos_are_audited_with_the_model_chosen() -> None:
    at = audit_app()
    at.radio(key="audit.source").set_value(page.PHOTOS).run()
    at.selectbox(key="audit.model").set_value("mnist_cnn").run()
    assert at.selectbox(key="audit.method.mnist_cnn").value == "saliency"
    at.selectbox(key="audit.method.mnist_cnn").set_value("occlusion")
    at.button(key="audit.run").click().run()

    assert_clean(at)
    result = at.session_state[page.SHOWN].result
    assert (result.model, result.method) == ("mnist_cnn", "occlusion")
    assert [item.file for item in result.items] == list(GALLERY)
    assert summary(at).startswith(f"{len(GALLERY)} images, ")
    notes = [i.value for i in at.info if i.value.startswith("Not clustered: ")]
    assert len(notes) == sum(1 for view in result.classes if view.note), notes

    at.selectbox(key="audit.method.mnist_cnn").set_value("gradcam")
    at.button(key="audit.run").click().run()
    assert_clean(at)
    assert [i.value for i in at.info if "flag rule" in i.value] == [analysis.caution("gradcam")]


# ---------------------------------------------------------------------------------------------- uploads


def test_bad_uploads_say_why_in_one_line_and_the_audit_on_screen_stays(demo_view: AppTest) -> None:
    at = audit_app()
    run_the_demo(at)
    shown = summary(at)
    at.radio(key="audit.source").set_value(page.UPLOAD).run()
    at.selectbox(key="audit.model").set_value("mnist_cnn").run()
    assert_clean(at)
    assert at.button(key="audit.run").disabled  # nothing uploaded yet

    # A text file named like an image: skipped with its reason; nothing to audit, so the demo stays.
    upload(at, ("x.png", b"these are my notes, not a picture\n"))
    at.button(key="audit.run").click().run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert message.startswith("No image in these files could be read") and "\n" not in message, message
    (row,) = table(at, "why")
    assert row["file"] == "x.png" and row["why"].startswith(NOT_AN_IMAGE) and "\n" not in row["why"], row
    assert summary(at) == shown

    # A file named .zip that is not one: refused at once, in one line, before anything runs.
    upload(at, ("x.zip", b"PK\x03\x04 not really a zip"))
    (message,) = [e.value for e in at.error]
    assert message == "x.zip: this file is not a zip archive whylabel can read.", message
    assert at.button(key="audit.run").disabled
    assert summary(at) == shown

    # A zip whose one member is not an image: skipped, nothing to audit, the demo stays.
    upload(at, ("bad.zip", zipped({"a/notes.png": b"not a picture"})))
    at.button(key="audit.run").click().run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    assert message.startswith("No image in these files could be read"), message
    assert [row["file"] for row in table(at, "why")] == ["a/notes.png"]
    assert summary(at) == shown


def test_a_zip_with_folders_is_audited_by_group_and_its_bad_member_is_listed(demo_view: AppTest) -> None:
    at = audit_app()
    at.radio(key="audit.source").set_value(page.UPLOAD).run()
    at.selectbox(key="audit.model").set_value("mnist_cnn").run()
    members = {"left/1.png": digit(8), "right/1.png": digit(18), "left/notes.png": b"not a picture", "sub/": b""}
    upload(at, ("set.zip", zipped(members)), ("loose.png", digit(13)))
    at.button(key="audit.run").click().run()

    assert_clean(at)
    assert summary(at).startswith("3 images, ")
    (row,) = table(at, "why")
    assert row["file"] == "left/notes.png" and row["why"].startswith(NOT_AN_IMAGE), row
    groups = {row["group"]: row["images"] for row in table(at, "group")}
    assert groups == {"(top level)": 1, "left": 1, "right": 1}
    assert any(i.value.startswith("Not clustered: ") for i in at.info)  # three images: too few to cluster


def test_uploads_of_one_name_are_every_one_audited_under_names_of_their_own(demo_view: AppTest) -> None:
    """The names come from `audit.intake` (its tests have `a.png`, `a.png`, `a.png (2)`, which the page once made
    into two `a.png (2)`s; the uploader takes no name ending in " (2)", a zip member then had it)."""
    at = audit_app()
    at.radio(key="audit.source").set_value(page.UPLOAD).run()
    at.selectbox(key="audit.model").set_value("mnist_cnn").run()
    upload(at, ("a.png", digit(8)), ("a.png", digit(13)), ("a.png", digit(18)))
    at.button(key="audit.run").click().run()

    assert_clean(at)
    assert summary(at).startswith("3 images, ")
    shown = at.session_state[page.SHOWN]
    assert [item.file for item in shown.result.items] == ["a.png", "a.png (2)", "a.png (3)"]
    names = ["a.png", "a.png (2)", "a.png (3)"]
    columns = [int(np.argmax(np.asarray(shown.entries[name].load())[14, :, 0])) for name in names]
    assert columns == [8, 13, 18]  # each name reads its own image


def test_an_upload_past_the_limits_is_refused_before_any_member_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    many = zipped({f"{n}.png": digit(n) for n in range(4)})
    monkeypatch.setattr(page, "MAX_IMAGES", 3)
    read: list[object] = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda archive, member, *args, **kwargs: read.append(member))
    at = audit_app()
    at.radio(key="audit.source").set_value(page.UPLOAD).run()
    at.selectbox(key="audit.model").set_value("mnist_cnn").run()

    upload(at, ("many.zip", many))

    (message,) = [e.value for e in at.error]
    assert message.startswith("many.zip: left out: with it the upload holds 4 images"), message
    assert "at most 3 images" in message and "\n" not in message
    assert not read
    assert at.button(key="audit.run").disabled


# ---------------------------------------------------------------------------------------------- to the single view


def test_a_member_opens_in_the_single_image_view_with_the_same_model(demo_view: AppTest) -> None:
    at = audit_app(FAST)
    run_the_demo(at)
    result = at.session_state[page.SHOWN].result
    flagged = result.flagged()[0].members[0]
    at.selectbox(key="audit.member").set_value(flagged).run()
    file = result.items[flagged].file

    at.button(key="audit.open").click().run()

    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["whylabel"]
    (image,) = at.main.image
    assert image.captions == [f"{file}: what mnist_marked sees"]
    assert at.selectbox(key="model").value == "mnist_marked"
    assert at.radio(key="source").value == "Upload"
    picked = at.session_state["upload"]
    expected = dict((f, img) for f, img, _ in demo.images(Mark()))[file]
    assert picked.name == file and picked.key.startswith("audit:")
    np.testing.assert_array_equal(np.asarray(picked.image), np.asarray(expected.convert("RGB")))
    assert "samples=60" in " ".join(c.value for c in at.main.caption)  # the settings set before still hold

    at.run()  # and it stays there
    assert [t.value for t in at.title] == ["whylabel"]


def test_the_single_image_sidebar_survives_a_visit_to_the_audit_page() -> None:
    """Widgets of a page not shown are dropped by Streamlit unless they persist: the sidebar's do."""
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    for key, value in FAST.items():
        at.session_state[key] = value
    at.run()
    at.selectbox(key="model").set_value("mnist_cnn").run()
    at.multiselect(key="methods").set_value(["saliency", "occlusion"]).run()
    assert_clean(at)

    at._page_hash = calc_hash("audit")
    at.run()
    at._page_hash = calc_hash("explain")
    at.run()

    assert_clean(at)
    assert [t.value for t in at.title] == ["whylabel"]
    assert at.selectbox(key="model").value == "mnist_cnn"
    assert at.multiselect(key="methods").value == ["saliency", "occlusion"]
