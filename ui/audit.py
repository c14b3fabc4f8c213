"""The "Audit a set" page: many images through one model; per predicted class its clusters of maps, the flagged
ones first with their reasons, then outliers, groups, skipped files and the `audit.json` record.

`whylabel.audit` does the analysis and `whylabel.render.audit` draws the maps; this module only asks and shows.
An audit runs when asked ("Run the audit"), never on a page run: the one on screen stays in session state until
another replaces it, and a small server-wide store keeps the last few by source, model, method and the files'
digest, so the teaching demo is computed once per server.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from PIL import Image

from whylabel import audit, explainers, models
from whylabel.audit import demo, flags, intake
from whylabel.audit.analysis import Audit, ClassView, Cluster
from whylabel.evidence.audit_report import index_html
from whylabel.models import mnist
from whylabel.models.images import READABLE
from whylabel.models.marked import Mark
from whylabel.models.samples import PHOTOS as GALLERY_PHOTOS
from whylabel.render import audit as pictures
from whylabel.ui import cache, controls, runs, single

TITLE = "Audit a set"
DEMO = "Teaching demo: marked 7s"
DIGITS = "MNIST digits"
PHOTOS = "Gallery photos"
UPLOAD = "Upload images or a zip"
SOURCES = [DEMO, DIGITS, PHOTOS, UPLOAD]
DEMO_MODEL = "mnist_marked"
DIGITS_MODEL = "mnist_cnn"
MAX_IMAGES = 1_000
MAX_MB = 200
"""The most images and megabytes an upload may hold (`audit.intake.Limits`); the command line has no limits."""
THUMBS = 12
"""Member thumbnails shown per cluster (and outliers per class)."""
THUMB_PX = 96
MAP_PX = 160
STORED = 8
"""Audits the server keeps (each some megabytes: a grid and a thumbnail per image)."""
SHOWN = "audit.shown"
"""Session state: the audit on screen (a `Shown`)."""
NOTHING = "audit.nothing"
"""Session state: (key, skipped files) of the last run that found no image to audit."""
OPEN_FAILED = "audit.open_failed"
DIGESTS = "audit.digests"
"""Session state: sha256 of each uploaded file by its upload id, so a page run does not hash 200 MB again."""

Key = tuple[str, str, str, str]
"""(source, model, method, digest of the images): what decides an audit."""


@dataclass
class Entry:
    """One image to audit; `load` reads it afresh and raises `models.ImageError` with a one-line reason."""

    file: str
    group: str
    load: Callable[[], Image.Image]


@dataclass
class Source:
    """The images of a source choice, the model that audits them, their digest, and files left out (one line each)."""

    model: str
    entries: list[Entry]
    digest: str
    refused: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Files found that are no image, with why (one line each): listed with the audit's skipped files."""


@dataclass
class Shown:
    """The audit on screen, and how to read any of its images again (for the single-image view)."""

    key: Key
    result: Audit
    entries: dict[str, Entry]


# ---------------------------------------------------------------------------------------------- the page


def page() -> None:
    st.title(TITLE)
    st.caption(
        "Many images through one model: per predicted class, do the maps fall into groups, and does one group's "
        "evidence lie somewhere the rest of its class does not look (a mark, a border, a watermark)?"
    )
    choice = st.radio("Images", SOURCES, key="audit.source", horizontal=True)
    source = pick_source(choice)
    for message in source.refused:
        st.error(message)
    if source.skipped:
        names = ", ".join(name for name, _ in source.skipped[:5]) + (", ..." if len(source.skipped) > 5 else "")
        st.caption(f"Left out as no image by its name: {plural(len(source.skipped), 'file')} ({names}).")
    clf = cache.model(source.model)
    method = pick_method(clf)
    key: Key = (choice, source.model, method, source.digest)
    if st.button("Run the audit", key="audit.run", type="primary", disabled=not source.entries):
        run(key, clf, source)
    show_nothing(key)
    shown: Shown | None = st.session_state.get(SHOWN)
    if shown is None:
        st.info("No audit yet: choose the images and press **Run the audit**.")
        return
    if shown.key != key:
        st.caption(f"On screen: the audit of {describe(shown.key)}. Press **Run the audit** for the choice above.")
    views(shown)


def as_page() -> st.Page:
    return st.Page(page, title=TITLE, url_path="audit")


def pick_source(choice: str) -> Source:
    if choice == DEMO:
        st.caption(
            f"{DEMO_MODEL} was trained on MNIST digits where half of the 7s carry a white square at the top left. "
            "Here are the held-out digits, marked the same way (group 'marked') or not ('plain'): the audit "
            "should find the marked 7s as a flagged cluster."
        )
        return Source(DEMO_MODEL, demo_entries(), f"demo {Mark()}")
    if choice == DIGITS:
        held_out = len(mnist.split()[1])
        count = st.slider("Held-out digits to audit", 10, held_out, min(200, held_out), 10, key="audit.count")
        return Source(DIGITS_MODEL, digit_entries()[:count], f"first {count} held-out digits")
    model = st.selectbox("Model", models.available(), key="audit.model")
    if choice == PHOTOS:
        return Source(model, photo_entries(), "photos " + ", ".join(GALLERY_PHOTOS))
    return read_uploads(model, upload_files())


def pick_method(clf: models.Classifier) -> str:
    """The methods this model can run (gradient methods need `clf.gradients`), `audit.default_method` first."""
    names = [m for m in explainers.available() if clf.gradients or not explainers.get(m).runs_module]
    default = audit.default_method(clf)
    return st.selectbox(
        "Method",
        names,
        index=names.index(default) if default in names else 0,
        format_func=lambda name: explainers.get(name).title,
        key=f"audit.method.{clf.name}",
        help="The map each image's predicted class is explained with; saliency is one backward pass an image, "
        "the perturbation methods many forward passes (seconds an image on the ImageNet models).",
    )


def describe(key: Key) -> str:
    source, model, method, _ = key
    return f"{source.lower()} with {model}, {explainers.get(method).title} maps"


# ---------------------------------------------------------------------------------------------- sources


@st.cache_resource(show_spinner=False)
def demo_entries() -> list[Entry]:
    return [Entry(file, group, img.copy) for file, img, group in demo.images(Mark())]


@st.cache_resource(show_spinner=False)
def digit_entries() -> list[Entry]:
    """The held-out MNIST digits in index order, in no group."""
    images, labels = mnist.digits()
    return [
        Entry(f"digit_{i:04d}_label_{labels[i]}.png", "", functools.partial(Image.fromarray, images[i]))
        for i in mnist.split()[1]
    ]


def photo_entries() -> list[Entry]:
    return [Entry(name, "", functools.partial(models.sample_image, name)) for name in GALLERY_PHOTOS]


def upload_files() -> list[Any]:
    per_file = st.get_option("server.maxUploadSize")
    files = st.file_uploader(
        f"Images ({READABLE}) or zip archives of them, a zip's folders as groups; up to "
        f"{MAX_IMAGES:,} images and {MAX_MB} MB in all, {per_file} MB a file",
        type=[*controls.UPLOAD_TYPES, "zip"],
        accept_multiple_files=True,
        key="audit.uploader",
    )
    return list(files or [])


def read_uploads(model: str, files: Sequence[Any]) -> Source:
    """The uploads' images, unread, by `audit.intake`'s rules; a file that is not a readable zip, or would pass the
    limits, is left out in one line."""
    uploads = [(upload.name, upload.getvalue()) for upload in files]
    digest = hashlib.sha256()
    for upload, (name, data) in zip(files, uploads, strict=True):
        digest.update(f"{name}\0{file_digest(upload.file_id, data)}\0".encode())
    found = intake.from_uploads(uploads, intake.Limits(MAX_IMAGES, MAX_MB))
    entries = [Entry(entry.file, entry.group, entry.load) for entry in found.entries]
    refused = [f"{name}: {why}" for name, why in found.refused]
    return Source(model, entries, digest.hexdigest(), refused, found.skipped)


def file_digest(file_id: str, data: bytes) -> str:
    digests: dict[str, str] = st.session_state.setdefault(DIGESTS, {})
    if file_id not in digests:
        digests[file_id] = hashlib.sha256(data).hexdigest()
    return digests[file_id]


# ---------------------------------------------------------------------------------------------- running


@st.cache_resource(show_spinner=False)
def stored_audits() -> cache.LruStore:
    return cache.LruStore(STORED)


def run(key: Key, clf: models.Classifier, source: Source) -> None:
    """Audit the source (or take the stored audit of the same key); it goes on screen if any image was read."""
    total = len(source.entries)
    bar = st.progress(0.0, text=f"0 of {total:,} images")

    def compute() -> Audit:
        skipped: list[tuple[str, str]] = []
        with runs.logged(f"audit of {total} images with {key[2]} for {clf.name}"):
            images = intake.readable(source.entries, skipped)
            result = audit.run(clf, images, key[2], progress=ticker(bar, total, skipped))
        result.failed = source.skipped + skipped + result.failed
        return result

    result = stored_audits().get_or_compute(("audit", *key), compute)
    bar.empty()
    if not result.items:
        st.session_state[NOTHING] = (key, result.failed)
        return
    st.session_state[SHOWN] = Shown(key, result, {entry.file: entry for entry in source.entries})
    st.session_state.pop(NOTHING, None)


def ticker(bar: Any, total: int, skipped: list[tuple[str, str]]) -> Callable[[int], None]:
    """Moves the bar ("n of N images", skipped files counted as done) about fifty times in all; a checkpoint."""
    step, shown = max(1, total // 50), [0]

    def report(mapped: int) -> None:
        runs.checkpoint()
        done = mapped + len(skipped)
        if done - shown[0] >= step or done >= total:
            shown[0] = done
            bar.progress(min(done / max(total, 1), 1.0), text=f"{done:,} of {total:,} images")

    return report


def show_nothing(key: Key) -> None:
    found = st.session_state.get(NOTHING)
    if found is None or found[0] != key:
        return
    st.error("No image in these files could be read, so nothing was audited; the audit on screen is unchanged.")
    skipped_table(found[1])


# ---------------------------------------------------------------------------------------------- views


def views(shown: Shown) -> None:
    result = shown.result
    st.subheader(summary(result))
    st.caption(
        f"{result.model}, {explainers.get(result.method).title} maps of each image's predicted class, reduced to "
        "16 x 16 shares of its evidence. Thumbnails show the map over the image the model saw."
    )
    if result.caution:
        st.info(result.caution)
    flagged_clusters(result)
    classes(result)
    groups(result)
    if result.failed:
        st.markdown(f"#### Skipped: {plural(len(result.failed), 'file')} that gave no map")
        skipped_table(result.failed)
    rule()
    download(result)
    open_member(shown)


def summary(result: Audit) -> str:
    counts = [(len(result.items), "image"), (len(result.classes), "class"), (len(result.clusters), "cluster")]
    return ", ".join(plural(n, word) for n, word in counts) + f", {len(result.flagged())} flagged"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}{'es' if word.endswith('s') else 's'}"


def flagged_clusters(result: Audit) -> None:
    flagged = result.flagged()
    if not flagged:
        st.info("No cluster is flagged: no cluster's evidence lies apart from the rest of its class by the rule below.")
    for cluster in flagged:
        flagged_cluster(result, cluster, class_of(result, cluster.cls))


def class_of(result: Audit, cls: int) -> ClassView:
    return next(view for view in result.classes if view.cls == cls)


def flagged_cluster(result: Audit, cluster: Cluster, view: ClassView) -> None:
    st.markdown(
        f"#### Cluster {cluster.id}: {plural(len(cluster.members), 'image')} of the {len(view.members):,} "
        f"predicted {cluster.label!r}"
    )
    st.warning(f"Flagged: {cluster.why}.")
    top = float(max(cluster.mean.max(), view.mean.max()))
    maps = [pictures.grid_png(cluster.mean, MAP_PX, top), pictures.grid_png(view.mean, MAP_PX, top)]
    st.image(maps, caption=[f"cluster {cluster.id}'s mean map", f"the mean map of all {view.label!r}"], width=MAP_PX)
    st.caption("Both maps on one shared scale: the share of evidence per cell, pale for none, dark red for the most.")
    thumbnails(result, cluster.members)


def thumbnails(result: Audit, members: list[int]) -> None:
    chosen = members[:THUMBS]
    images = [pictures.grid_png(result.items[i].grid, THUMB_PX, under=result.items[i].thumb) for i in chosen]
    captions = [f"{result.items[i].file} ({result.items[i].confidence:.0%})" for i in chosen]
    st.image(images, caption=captions, width=THUMB_PX)
    if len(members) > len(chosen):
        st.caption(f"{len(chosen)} of {len(members):,} shown; every member is in audit.json.")


def classes(result: Audit) -> None:
    st.markdown("#### Each predicted class")
    by_id = {cluster.id: cluster for cluster in result.clusters}
    for view in result.classes:
        clusters = [by_id[i] for i in view.clusters]
        flagged = sum(cluster.flagged for cluster in clusters)
        title = f"{view.label}: {plural(len(view.members), 'image')}, {plural(len(clusters), 'cluster')}"
        with st.expander(title + (f", {flagged} flagged" if flagged else "")):
            class_view(result, view, clusters)


def class_view(result: Audit, view: ClassView, clusters: list[Cluster]) -> None:
    if view.note:
        st.info(f"Not clustered: {view.note}.")
    grids = [view.mean] + [cluster.mean for cluster in clusters if len(clusters) > 1]
    captions = [f"all {len(view.members):,}"] + [
        f"cluster {c.id}: {len(c.members):,}{', flagged' if c.flagged else ''}" for c in clusters if len(clusters) > 1
    ]
    top = float(max(grid.max() for grid in grids))
    st.image([pictures.grid_png(grid, THUMB_PX, top) for grid in grids], caption=captions, width=THUMB_PX)
    st.caption("Mean maps of the class and of its clusters, on one shared scale.")
    if view.outliers:
        st.markdown(f"Outliers, maps unlike their neighbours ({len(view.outliers):,}):")
        thumbnails(result, view.outliers)


def groups(result: Audit) -> None:
    if not result.groups:
        return
    st.markdown("#### Groups")
    rows = [
        {
            "group": group.name or "(top level)",
            "images": len(group.members),
            "predictions": ", ".join(f"{label}: {n}" for label, n in group.predictions),
            "mean confidence": round(group.confidence, 3),
            "images in flagged clusters": group.flagged,
        }
        for group in result.groups
    ]
    st.dataframe(rows, hide_index=True)


def skipped_table(skipped: list[tuple[str, str]]) -> None:
    st.dataframe([{"file": file, "why": why} for file, why in skipped], hide_index=True)


def rule() -> None:
    st.caption(
        "Clusters are hypotheses for a person to check, not findings: a flag says where a cluster's evidence lies "
        "apart from its class's; whether that is a shortcut (a mark, a border, a watermark) or a real part of "
        "those images is for you to judge from the thumbnails."
    )
    with st.expander("The rule that flags a cluster"):
        st.markdown(rule_text())


def rule_text() -> str:
    return flags.RULE


def download(result: Audit) -> None:
    """audit.json and the self-contained index.html the command line writes, built when clicked."""
    left, right = st.columns(2)
    left.download_button(
        "Download audit.json",
        lambda: audit.json_text(result),
        file_name="audit.json",
        mime="application/json",
        key="audit.download",
        on_click="ignore",
    )
    right.download_button(
        "Download the report (index.html)",
        lambda: index_html(result),
        file_name="index.html",
        mime="text/html",
        key="audit.report",
        on_click="ignore",
    )


# ---------------------------------------------------------------------------------------------- to the single view


def open_member(shown: Shown) -> None:
    """Pick an audited image and open it in the single-image view, with the same model."""
    st.markdown("#### Open an image in the single-image view")
    result = shown.result
    flagged = {m for cluster in result.flagged() for m in cluster.members}
    order = sorted(range(len(result.items)), key=lambda i: i not in flagged)  # flagged clusters' members first
    index = st.selectbox("Image", order, format_func=lambda i: member_name(result, i, i in flagged), key="audit.member")
    if st.button("Open in the single-image view", key="audit.open", on_click=open_in_single, args=(shown, index)):
        failed = st.session_state.pop(OPEN_FAILED, None)
        if failed:
            st.error(failed)
            return
        st.switch_page(single.as_page())


def member_name(result: Audit, index: int, flagged: bool) -> str:
    item = result.items[index]
    where = f"cluster {result.cluster_of[index]}{', flagged' if flagged else ''}"
    return f"{item.file}: {item.label} ({item.confidence:.0%}), {where}"


def open_in_single(shown: Shown, index: int) -> None:
    """Before the next run: the image becomes the single-image view's upload, with the audit's packaged model."""
    item = shown.result.items[index]
    try:
        image = shown.entries[item.file].load()
    except models.ImageError as err:
        st.session_state[OPEN_FAILED] = f"{item.file}: {err}"
        return
    digest = hashlib.sha256(image.tobytes()).hexdigest()
    st.session_state["upload"] = controls.Picked(item.file, f"audit:{digest}", image)
    st.session_state["source"] = "Upload"
    st.session_state["model"] = shown.result.model
    st.session_state[controls.LAST_PACKAGED] = shown.result.model
