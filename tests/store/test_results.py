"""The result store: a kept map is the computed one, every part of its key decides it, damage and races are harmless."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from whylabel import cli, explainers, models, trust
from whylabel.explainers import kept
from whylabel.models import identity
from whylabel.store import results
from whylabel.trust import kept as trust_kept

SMALL = {"occlusion": {"window": 4, "stride": 4, "refine": 1.0}, "lime": {"samples": 40, "n_segments": 8}}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A result store of this test's own (the suite runs with the store off)."""
    monkeypatch.setenv("WHYLABEL_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


def no_computing(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, computing a map or a score fails the test: what follows must come from the store."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("computed, though the result was kept")

    for owner, name in ((kept, "run"), (trust_kept, "evaluate"), (trust_kept, "baseline_for")):
        monkeypatch.setattr(owner, name, refuse)


def request(clf: models.Classifier, img, method: str = "lime", **changes) -> explainers.Request:
    params = {**SMALL.get(method, {}), **changes.pop("params", {})}
    return explainers.Request.make(clf, img, method, **{"target": 1, **changes}, **params)


@pytest.mark.parametrize("method", ["saliency", "occlusion", "lime"])
def test_a_kept_map_is_the_computed_one_and_computes_nothing(store, tiny_clf, noise_image, monkeypatch, method):
    asked = request(tiny_clf, noise_image(16, 16), method)
    first = kept.attribution(asked)
    no_computing(monkeypatch)
    heard: list[float] = []

    again = kept.attribution(asked, progress=heard.append)

    assert not first.extras["kept"] and again.extras["kept"] and heard == [1.0]
    assert again.heatmap.dtype == first.heatmap.dtype and np.array_equal(again.heatmap, first.heatmap)
    for field in ("method", "target", "label", "params", "seconds", "signed", "score", "stage", "warnings"):
        assert getattr(again, field) == getattr(first, field), field
    assert again.request is asked
    same = {k: v for k, v in first.extras.items() if k != "kept"}
    assert same.keys() == {k for k in again.extras if k != "kept"}
    for name, value in same.items():
        np.testing.assert_array_equal(again.extras[name], value)


def test_scores_and_the_random_baseline_are_kept(store, tiny_clf, noise_image, monkeypatch):
    att = kept.attribution(request(tiny_clf, noise_image(16, 16), "occlusion"))
    first = trust_kept.scores(att)
    no_computing(monkeypatch)

    again = trust_kept.scores(att)

    assert again["verdicts"] == first["verdicts"] and again["random_deletion_range"] == first["random_deletion_range"]
    assert isinstance(again["random_deletion_range"], tuple)
    for mode in ("deletion", "insertion", "random_deletion"):
        np.testing.assert_array_equal(again["curves"][mode].probabilities, first["curves"][mode].probabilities)
    stored = trust_kept.baseline(att)  # read back: computing it would fail here
    assert isinstance(stored, trust.RandomBaseline) and len(stored.curves["deletion"]) == trust.RANDOM_MAPS
    assert stored.range("deletion") == first["random_deletion_range"]


def built(tiny, seed: int = 0, name: str = "tiny", crop: float = 1.0, labels=None) -> models.Classifier:
    return models.from_module(tiny.TinyConv(seed=seed), labels or tiny.labels, 16, crop=crop, name=name)


def key_variants(tiny, noise_image, monkeypatch) -> dict[str, str | None]:
    """The key of one LIME request, and of the same request with each part that decides it changed."""
    clf = built(tiny)
    img = noise_image(16, 16)
    base = request(clf, img)
    other_pixels = np.asarray(img).copy()
    other_pixels[0, 0, 0] ^= 1
    keys = {
        "base": kept.request_key(base, "map"),
        "same request again": kept.request_key(request(clf, img), "map"),
        "same model rebuilt": kept.request_key(request(built(tiny), img), "map"),
        "one pixel": kept.request_key(request(clf, Image.fromarray(other_pixels)), "map"),
        "target": kept.request_key(request(clf, img, target=2), "map"),
        "contrast": kept.request_key(request(clf, img, contrast=0), "map"),
        "seed": kept.request_key(request(clf, img, seed=1), "map"),
        "parameter": kept.request_key(request(clf, img, params={"samples": 41}), "map"),
        "method": kept.request_key(request(clf, img, "occlusion", params={"window": 4, "stride": 4}), "map"),
        "kind": kept.request_key(base, "scores"),
        "model name": kept.request_key(request(built(tiny, name="tiny2"), img), "map"),
        "weights": kept.request_key(request(built(tiny, seed=1), img), "map"),
        "preprocessing": kept.request_key(request(built(tiny, crop=0.9), img), "map"),
        "labels": kept.request_key(request(built(tiny, labels=["a", "b", "c"]), img), "map"),
    }
    original = results.environment
    for part, changed in (
        ("code", {"code_sha256": "another version of whylabel"}),
        ("library", {"libraries": {**results.environment()["libraries"], "shap": "0.0.1"}}),
        ("cpu", {"cpu": "another CPU x2"}),
    ):
        with monkeypatch.context() as m:
            m.setattr(results, "environment", lambda changed=changed: {**original(), **changed})
            keys[part] = kept.request_key(base, "map")
    with monkeypatch.context() as m:
        m.setattr(results.torch, "get_num_threads", lambda: 97)
        keys["threads"] = kept.request_key(base, "map")
    with monkeypatch.context() as m:
        m.setattr(kept, "engine_of", lambda _: ["torch", 3])
        keys["engine"] = kept.request_key(base, "map")
        keys["engine, gradient map"] = kept.request_key(request(clf, img, "saliency"), "map")
    keys["gradient map"] = kept.request_key(request(clf, img, "saliency"), "map")
    return keys


def test_every_part_of_the_key_changed_is_another_key(store, tiny, noise_image, monkeypatch):
    keys = key_variants(tiny, noise_image, monkeypatch)

    assert keys["same request again"] == keys["same model rebuilt"] == keys["base"]  # stable: a later run finds it
    assert keys["engine, gradient map"] == keys["gradient map"]  # a gradient map does not use the engine
    changed = [
        k for part, k in keys.items() if part not in ("same request again", "same model rebuilt", "gradient map")
    ]
    assert len(set(changed)) == len(changed) and None not in changed


def test_a_changed_part_misses_the_kept_entry(store, tiny_clf, noise_image):
    img = noise_image(16, 16)
    kept.attribution(request(tiny_clf, img))
    assert results.load(kept.request_key(request(tiny_clf, img), "map")) is not None

    assert results.load(kept.request_key(request(tiny_clf, img, seed=1), "map")) is None
    assert not kept.attribution(request(tiny_clf, img, seed=1)).extras["kept"]


def damaged_entries(path: Path, whole: bytes) -> dict[str, bytes]:
    other = Path(str(path) + ".other")
    other.write_bytes(whole.replace(path.stem.encode(), b"0" * len(path.stem)))  # another key inside
    planted = json.dumps({"key": path.stem, "value": {"__type__": "Popen", "fields": {"args": ["true"]}}}).encode()
    np.savez(other.with_suffix(".npz"), meta=np.frombuffer(planted, dtype=np.uint8))
    return {
        "empty": b"",
        "truncated": whole[: len(whole) // 2],
        "garbage": b"\x00not an npz at all" * 50,
        "another key inside": other.read_bytes(),
        "a class not allowed": other.with_suffix(".npz").read_bytes(),
    }


def test_a_damaged_or_planted_entry_is_ignored_and_rebuilt(store, tiny_clf, noise_image):
    asked = request(tiny_clf, noise_image(16, 16))
    first = kept.attribution(asked)
    path = store / f"{kept.request_key(asked, 'map')}.npz"
    whole = path.read_bytes()

    for what, data in damaged_entries(path, whole).items():
        path.write_bytes(data)
        assert results.load(path.stem) is None, what
        rebuilt = kept.attribution(asked)  # computed again and kept again
        assert not rebuilt.extras["kept"] and np.array_equal(rebuilt.heatmap, first.heatmap), what
        assert kept.attribution(asked).extras["kept"], what


def write_many(folder: str, name: str, value: dict, times: int) -> None:
    os.environ["WHYLABEL_RESULTS"] = folder
    for _ in range(times):
        results.save(name, value)


def test_two_processes_writing_one_entry_leave_a_whole_one(store):
    value = {"map": np.random.default_rng(0).random((512, 512)).astype(np.float32), "label": "cat", "n": 3}
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=write_many, args=(str(store), "entry", value, 30)) for _ in range(2)]
    for writer in writers:
        writer.start()
    while any(w.is_alive() for w in writers):
        found = results.load("entry")
        if found is not None:  # never half an entry: either none yet or the whole value
            assert found["label"] == "cat" and found["n"] == 3 and np.array_equal(found["map"], value["map"])
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    found = results.load("entry")
    assert found is not None and np.array_equal(found["map"], value["map"])
    assert [p.name for p in store.iterdir()] == ["entry.npz"]  # no temporary file left behind


def test_the_store_keeps_at_most_its_bound_least_recently_used_out_first(store):
    value = {"map": np.zeros((64, 64), dtype=np.float32)}
    for name in ("a", "b", "c", "d"):
        results.save(name, value)
    for age, name in enumerate(("a", "b", "c", "d")):  # written in order, a oldest
        os.utime(store / f"{name}.npz", (1000 + age, 1000 + age))
    assert results.load("a") is not None  # read: now the most recently used

    results.prune(store, max_bytes=sum((store / f"{name}.npz").stat().st_size for name in ("a", "d")))

    assert sorted(p.stem for p in store.iterdir()) == ["a", "d"]


def test_off_reads_and_keeps_nothing(tiny_clf, noise_image, monkeypatch, tmp_path):
    asked = request(tiny_clf, noise_image(16, 16))
    for setting in ("off", "OFF"):
        monkeypatch.setenv("WHYLABEL_RESULTS", setting)
        assert results.folder() is None
        assert not kept.attribution(asked).extras["kept"] and not kept.attribution(asked).extras["kept"]
    monkeypatch.delenv("WHYLABEL_RESULTS")
    monkeypatch.setenv("WHYLABEL_CACHE", "off")
    assert results.folder() is None
    monkeypatch.setenv("WHYLABEL_CACHE", str(tmp_path))
    assert results.folder() == tmp_path / "results"  # beside the engines


def test_keep_false_computes_anew(store, tiny_clf, noise_image):
    asked = request(tiny_clf, noise_image(16, 16))
    kept.attribution(asked)

    assert not kept.attribution(asked, keep=False).extras["kept"]


def test_a_value_that_cannot_be_kept_is_only_not_kept(store):
    results.save("odd", {"a function": print})

    assert results.load("odd") is None and not (store / "odd.npz").exists()


def test_a_users_uploaded_model_is_not_kept(store, tiny_clf, noise_image, monkeypatch):
    monkeypatch.setattr(identity, "is_remote", lambda clf: True)
    asked = request(tiny_clf, noise_image(16, 16))

    assert kept.request_key(asked, "map") is None
    assert not kept.attribution(asked).extras["kept"] and not kept.attribution(asked).extras["kept"]


def records(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/record.json")}


def test_the_command_reads_back_what_it_kept_and_no_cache_computes(store, tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    models.sample_image("mnist digit 3").save(photos / "three.png")
    args = ["explain", str(photos), "--model", "mnist_cnn", "--methods", "saliency,occlusion"]
    assert cli.main([*args, "--out", str(tmp_path / "first")]) == 0
    calls: list[str] = []
    run = kept.run
    monkeypatch.setattr(kept, "run", lambda request, *a, **k: calls.append(request.method) or run(request, *a, **k))

    assert cli.main([*args, "--out", str(tmp_path / "second")]) == 0
    assert calls == []  # every map and score read back
    first, second = records(tmp_path / "first"), records(tmp_path / "second")
    assert first == second  # the same record, the maps' hashes and scores included
    assert cli.main([*args, "--no-cache", "--out", str(tmp_path / "third")]) == 0
    assert calls == ["saliency", "occlusion"]
    third = records(tmp_path / "third")
    for a, b in zip(first["three"]["methods"], third["three"]["methods"], strict=True):
        assert a["heatmap_sha256"] == b["heatmap_sha256"] and a["trust"] == b["trust"]
    capsys.readouterr()


def test_a_kept_attribution_round_trips_every_field(store, tiny_clf, noise_image):
    att = kept.attribution(request(tiny_clf, noise_image(16, 16), contrast=0))
    name = kept.request_key(att.request, "map")

    loaded = results.load(name)

    assert isinstance(loaded, explainers.Attribution) and loaded.contrast == 0 and loaded.contrast_label == "cat"
    assert dataclasses.fields(loaded) == dataclasses.fields(att)
