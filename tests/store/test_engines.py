"""The engine's disk cache: a hit skips export and calibration, every part of the key decides it, and a corrupt,
stale or concurrently written entry is never used."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from whylabel import models
from whylabel.models import engine
from whylabel.store import engines as engine_store

SIZE = 16


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WHYLABEL_CACHE", str(tmp_path))
    return tmp_path / "engines"


def build(module: torch.nn.Module, labels, **kwargs) -> models.Classifier:
    return models.from_module(module, labels, SIZE, crop=1.0, backend="onnxruntime", **kwargs)


def entries(cache) -> list[str]:
    return sorted(path.stem for path in cache.glob("*.json"))


def no_calibration(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("calibrated although the engine was cached")

    monkeypatch.setattr(engine, "calibrate", refuse)


def test_a_second_start_takes_the_export_and_calibration_from_disk(tiny, cache, monkeypatch):
    module = tiny.TinyConv()
    first = build(module, tiny.labels).engine()
    assert len(entries(cache)) == 1 and "cached" not in first.note
    no_calibration(monkeypatch)
    monkeypatch.setattr(engine, "onnx_export", lambda *a: pytest.fail("exported although the engine was cached"))

    again = build(module, tiny.labels).engine()

    x = np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE, 3)).astype(np.float32)
    assert "export and calibration cached" in again.note
    assert (again.batch_size, again.rates) == (first.batch_size, first.rates)
    np.testing.assert_allclose(again.logits(x), first.logits(x), rtol=0, atol=0)


def key_of(module, size=SIZE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), sizes=engine.BATCH_SIZES) -> str:
    return engine_store.key(module, size, mean, std, sizes)


def other_weights(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        next(module.parameters())[0].view(-1)[0] += 1e-3
    return module


CHANGES = {
    "weights": lambda tiny, mp: key_of(other_weights(tiny.TinyConv())),
    "structure": lambda tiny, mp: key_of(torch.nn.Sequential(tiny.TinyConv())),
    "input size": lambda tiny, mp: key_of(tiny.TinyConv(), size=SIZE + 1),
    "mean": lambda tiny, mp: key_of(tiny.TinyConv(), mean=(0.5, 0.5, 0.4)),
    "std": lambda tiny, mp: key_of(tiny.TinyConv(), std=(0.25, 0.25, 0.2)),
    "batch sizes": lambda tiny, mp: key_of(tiny.TinyConv(), sizes=(4,)),
    "torch": lambda tiny, mp: mp.setattr(torch, "__version__", "0.0") or key_of(tiny.TinyConv()),
    "onnxruntime": lambda tiny, mp: mp.setattr("onnxruntime.__version__", "0.0") or key_of(tiny.TinyConv()),
    "threads": lambda tiny, mp: mp.setattr(torch, "get_num_threads", lambda: 64) or key_of(tiny.TinyConv()),
    "cpu": lambda tiny, mp: mp.setattr(engine_store.disk, "cpu", lambda: "another x64") or key_of(tiny.TinyConv()),
    "format": lambda tiny, mp: mp.setattr(engine_store, "FORMAT", 99) or key_of(tiny.TinyConv()),
}


@pytest.mark.parametrize("part", CHANGES)
def test_every_part_of_the_key_changed_misses(tiny, monkeypatch, part):
    same = key_of(tiny.TinyConv())
    assert key_of(tiny.TinyConv()) == same  # the same model again: a hit

    assert CHANGES[part](tiny, monkeypatch) != same


def corrupt_model(cache, name):
    (cache / f"{name}.onnx").write_bytes(b"not an onnx model")


def corrupt_record(cache, name):
    (cache / f"{name}.json").write_text("{ half a record")


def stale_model(cache, name, other=None):
    """Another model's export, with a record that matches it: only the check against torch can tell."""
    path = cache / f"{name}.json"
    info = json.loads(path.read_text())
    (cache / f"{name}.onnx").write_bytes(other)
    info["onnx_sha256"] = engine_store.hashlib.sha256(other).hexdigest()
    path.write_text(json.dumps(info))


@pytest.mark.parametrize("damage", [corrupt_model, corrupt_record, stale_model])
def test_a_corrupt_or_stale_entry_is_ignored_and_rebuilt(tiny, cache, damage):
    module = tiny.TinyConv()
    good = build(module, tiny.labels).engine()
    (name,) = entries(cache)
    example = engine._example(SIZE)
    other = engine.onnx_export(engine.PixelInput(tiny.TinyConv(seed=1), (0.5,) * 3, (0.25,) * 3).eval(), example)
    damage(cache, name, other) if damage is stale_model else damage(cache, name)

    rebuilt = build(module, tiny.labels).engine()

    x = example
    assert rebuilt.backend == "onnxruntime" and "cached" not in rebuilt.note
    np.testing.assert_allclose(rebuilt.logits(x), good.logits(x), rtol=1e-6, atol=1e-6)
    assert "cached" in build(module, tiny.labels).engine().note  # the entry was replaced by a whole one


def test_concurrent_writes_of_one_entry_leave_a_whole_one_or_none(cache):
    payloads = [bytes([i]) * (50_000 + i) for i in range(4)]

    def writer(payload: bytes) -> None:
        for _ in range(25):
            engine_store.save("same", payload, {"batch_size": 1, "rates": {"1": float(len(payload))}})

    threads = [threading.Thread(target=writer, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    loaded = engine_store.load("same")
    assert loaded is None or (loaded[0] in payloads and loaded[1]["rates"]["1"] == len(loaded[0]))
    assert not [path for path in cache.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_off_writes_nothing_and_an_unwritable_folder_only_means_no_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WHYLABEL_CACHE", "off")
    assert build(tiny.TinyConv(), tiny.labels).engine().backend == "onnxruntime"
    assert engine_store.folder() is None and list(tmp_path.iterdir()) == []

    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("WHYLABEL_CACHE", str(blocker))  # its "engines" folder cannot be made
    assert build(tiny.TinyConv(), tiny.labels).engine().backend == "onnxruntime"


def test_the_least_recently_used_entries_go_beyond_the_bound(cache):
    for i in range(4):
        engine_store.save(f"entry{i}", bytes(1000), {"batch_size": 1, "rates": {"1": 1.0}})
        engine_store.os.utime(cache / f"entry{i}.json", (i, i))
    engine_store.load("entry0")  # used again: the newest

    engine_store.prune(cache, max_bytes=2 * 1300)  # two entries of about 1,150 bytes

    assert entries(cache) == ["entry0", "entry3"]
