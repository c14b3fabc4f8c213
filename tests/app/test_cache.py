"""The page cache (`ui.cache`): one server-wide cache bounded in bytes, holding nothing the size of an upload.

Called outside a page run, as the page calls it: a 16-px model (`tiny_clf`), so a full-size upload is thousands
of times larger than anything the cache may keep. What is kept is read with a walker of its own (not the cache's
`size_of`), which opens every container, dataclass and object it meets.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from types import FunctionType, MethodType, ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import models, trust, whatif
from whylabel.explainers import kept
from whylabel.ui import cache, runs

MB = 2**20
TIMEOUT = 60  # seconds: only reached when the cache is broken


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh page cache for this test (`set_budget(megabytes)` first to bound it); the next test gets its own."""
    monkeypatch.delenv(cache.MEMORY_VARIABLE, raising=False)
    cache.attribution_store.clear()

    def set_budget(megabytes: str) -> None:
        monkeypatch.setenv(cache.MEMORY_VARIABLE, megabytes)
        cache.attribution_store.clear()

    yield set_budget
    cache.attribution_store.clear()


def upload_key(image: Image.Image) -> str:
    return "upload:" + hashlib.sha256(image.tobytes()).hexdigest()


def saliency_key(clf: models.Classifier, image_key: str) -> cache.Key:
    return cache.Key(clf.name, image_key, 0, None, "saliency", 0, ())


def held(value: Any) -> list[Any]:
    """Every image, array (the array a view keeps alive) and byte string reachable from `value`.

    The classifier is shared by every entry and every session (one per server), so the walk does not enter it.
    """
    found, seen, stack = [], set(), [value]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            while isinstance(item.base, np.ndarray):
                item = item.base
        if id(item) in seen or isinstance(
            item, type | ModuleType | FunctionType | MethodType | models.Classifier | torch.nn.Module
        ):
            continue
        seen.add(id(item))
        if isinstance(item, Image.Image | np.ndarray | bytes | bytearray):
            found.append(item)
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif not isinstance(item, str | int | float | complex | bool | type(None)):
            stack.extend(getattr(item, "__dict__", {}).values())
            stack.extend(getattr(item, name) for name in getattr(type(item), "__slots__", ()) if hasattr(item, name))
    return found


# ---------------------------------------------------------------------------------------------- the budget


def test_the_budget_is_512_mb_unless_the_environment_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHYLABEL_MEMORY_MB", raising=False)
    assert cache.PAGE_CACHE_MB == 512 and cache.page_budget() == 512 * MB
    for chosen, expected in (("64", 64 * MB), (" 0.5 ", MB // 2), ("0", 0)):
        monkeypatch.setenv("WHYLABEL_MEMORY_MB", chosen)
        assert cache.page_budget() == expected
    for bad in ("lots", "-1", "nan", "inf"):
        monkeypatch.setenv("WHYLABEL_MEMORY_MB", bad)
        with pytest.raises(ValueError, match="WHYLABEL_MEMORY_MB"):
            cache.page_budget()


def test_the_page_cache_is_built_with_the_budget(page) -> None:
    assert cache.attribution_store().max_bytes == 512 * MB
    page("3")
    assert cache.attribution_store().max_bytes == 3 * MB
    assert cache.attribution_store() is cache.attribution_store()  # one per server


# ---------------------------------------------------------------------------------------------- what is kept


def test_entries_hold_no_full_size_image(page, tiny_clf: models.Classifier, noise_image) -> None:
    clf, upload = tiny_clf, noise_image(2000, 1500)
    image_key = upload_key(upload)
    view = clf.input_image(upload)
    assert view.shape == (16, 16, 3)
    saliency = saliency_key(clf, image_key)
    occlusion = saliency._replace(method="occlusion")

    # What the page computes for one upload: the prediction, the maps and their scores, the superpixels, a
    # check and a what-if search (the last two stored as ui/checks.py and ui/whatif.py store them).
    cache.prediction(clf.name, image_key, clf, upload)
    att = cache.attribution(saliency, clf, upload, lambda _: None)
    cache.faithfulness(occlusion, cache.attribution(occlusion, clf, upload, lambda _: None))
    cache.superpixels(clf.name, image_key, view)
    store = cache.attribution_store()
    store.get_or_compute(("sanity", *saliency), lambda: trust.sanity_cascade(att.request, [1]))
    store.get_or_compute(("whatif", "counterfactual", clf.name, image_key), lambda: whatif.counterfactual(clf, upload))

    assert att.request.image is upload  # the map handed back can be checked and exported: it has its request
    kept_maps = [value for key, value in store.items() if key in (saliency, occlusion)]
    assert len(kept_maps) == 2 and all(value.request is None for value in kept_maps)  # the kept one has none
    assert len(store) == 8
    found = held(store.items())
    assert found, "the walk found no array: it is not reading the cache"
    assert not [item for item in found if isinstance(item, Image.Image)]
    too_big = [item.shape for item in found if isinstance(item, np.ndarray) and item.size > view.size]
    assert not too_big, f"arrays larger than the {view.shape} model view: {too_big}"
    assert all(len(item) <= view.nbytes for item in found if isinstance(item, bytes | bytearray))


def test_the_byte_total_stays_within_the_budget_over_many_uploads(
    page, tiny_clf: models.Classifier, noise_image
) -> None:
    page("0.02")  # 20,971 bytes: about ten uploads' prediction and map
    budget = cache.page_budget()
    assert budget == int(0.02 * MB)
    store = cache.attribution_store()
    keys = []
    for seed in range(40):
        upload = noise_image(400, 300, seed)
        image_key = upload_key(upload)
        keys.append(saliency_key(tiny_clf, image_key))
        cache.prediction(tiny_clf.name, image_key, tiny_clf, upload)
        cache.attribution(keys[-1], tiny_clf, upload, lambda _: None)

        assert store.nbytes <= budget
        assert store.get(keys[-1]) is not None  # the newest map is kept

    assert store.get(keys[0]) is None  # the oldest went
    assert 2 < len(store) < 80
    arrays = sum(item.nbytes for item in held(store.items()) if isinstance(item, np.ndarray))
    heatmaps = sum(1 for key, _ in store.items() if isinstance(key, cache.Key)) * 16 * 16 * 4
    assert heatmaps <= arrays <= store.nbytes <= budget  # the count covers at least the arrays it holds


# ---------------------------------------------------------------------------------------------- sessions


def test_two_sessions_asking_the_same_map_compute_it_once(
    page, monkeypatch: pytest.MonkeyPatch, tiny_clf: models.Classifier, noise_image
) -> None:
    """The second session waits for the first's computation (calling the page's checkpoint while it waits)."""
    waiting = threading.Event()
    monkeypatch.setattr(runs, "checkpoint", waiting.set)  # what the waiting session calls between looks
    real, calls = kept.attribution, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.get_ident())
        assert waiting.wait(TIMEOUT), "the other session did not wait"
        return real(*args, **kwargs)

    monkeypatch.setattr(kept, "attribution", counted)
    upload = noise_image(300, 200, 7)
    key = saliency_key(tiny_clf, upload_key(upload))
    got: list[Any] = [None, None]

    def session(i: int) -> None:
        got[i] = cache.attribution(key, tiny_clf, upload, lambda _: None)

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()

    assert len(calls) == 1
    assert got[0] is not None and got[1] is not None
    assert got[0].heatmap is got[1].heatmap  # one map, shared
    assert not got[0].heatmap.flags.writeable
