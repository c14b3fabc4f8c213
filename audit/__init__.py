"""Audit a set of images: is the model right for the wrong reasons?

The images of a set with their groups and unique names, from files on disk or uploads, zips included, by one set
of rules (`intake`); maps for many images (`maps`), per predicted class their clusters by spectral relevance
analysis (`spectral`), outliers, a flag with a reason where a cluster's evidence lies apart from its class's
(`flags`, its rule stated once as `flags.RULE`), groups from subfolders and, with boxes, localisation scores
(`localise`). No Streamlit: the page, the command line (`whylabel audit`) and Ray all call `intake`, and `run`
or `analyse`.

May import: whylabel.trust, whylabel.explainers, whylabel.models, whylabel.store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PIL import Image

from whylabel import models
from whylabel.audit.analysis import Audit, Cluster, analyse, json_text, to_json
from whylabel.audit.localise import Box, box_for, read_boxes
from whylabel.audit.maps import DEFAULT_METHOD, Item, map_image


def default_method(clf: models.Classifier) -> str:
    """Saliency where the model gives gradients, occlusion where it does not (see `maps.DEFAULT_METHOD`)."""
    return DEFAULT_METHOD if clf.gradients else "occlusion"


def run(
    clf: models.Classifier,
    images: Iterable[tuple[str, Image.Image, str]],
    method: str | None = None,
    seed: int = 0,
    boxes: dict[str, Box] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Audit:
    """Audit (file, image, group) triples with `method` (default: `default_method`); `progress` hears each count."""
    method = method or default_method(clf)
    items = []
    for n, (file, img, group) in enumerate(images, start=1):
        box = None if boxes is None else box_for(boxes, file)
        items.append(map_image(clf, img, file, group, method, seed, box))
        if progress is not None:
            progress(n)
    return analyse(items, clf.name, method)


__all__ = [
    "Audit",
    "Cluster",
    "Item",
    "analyse",
    "default_method",
    "json_text",
    "map_image",
    "read_boxes",
    "run",
    "to_json",
]
