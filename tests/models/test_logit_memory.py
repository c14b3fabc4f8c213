"""The classifier's memory of logits: keyed by every value of an image, bounded, and never shared between models."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import torch

from whylabel import models
from whylabel.models.memory import Memory, digest


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3)).astype(np.float32)


def rows_of(x: np.ndarray) -> np.ndarray:
    """A stand-in engine: each image's logits are its channel sums."""
    return x.sum(axis=(1, 2))


def test_only_images_not_kept_are_run_and_the_answer_is_the_engines():
    memory, runs = Memory(), []
    x = images(6)

    def run(batch: np.ndarray) -> np.ndarray:
        runs.append(len(batch))
        return rows_of(batch)

    first, ran_first = memory.logits(x[:4], run)
    again, ran_again = memory.logits(x[2:], run)  # two kept, two new

    np.testing.assert_array_equal(first, rows_of(x[:4]))
    np.testing.assert_array_equal(again, rows_of(x[2:]))
    assert (ran_first, ran_again) == (4, 2) and runs == [4, 2]


def test_a_batch_with_repeats_runs_each_image_once():
    memory, runs = Memory(), []
    x = images(2)
    batch = np.stack([x[0], x[1], x[0], x[0]])

    out, ran = memory.logits(batch, lambda b: runs.append(len(b)) or rows_of(b))

    np.testing.assert_array_equal(out, rows_of(batch))
    assert ran == 2 and runs == [2]


def test_one_changed_value_is_another_image_and_dtype_is_not():
    x = images(1)[0]
    changed = x.copy()
    changed[7, 7, 2] += 1

    assert digest(x) != digest(changed)
    assert digest(x) == digest(x.astype(np.uint8))  # the same values, as the engine sees them


def test_the_least_recently_used_rows_go_first_beyond_the_bound():
    row_bytes = 3 * 4
    memory = Memory(max_bytes=3 * row_bytes)
    x = images(4)
    memory.logits(x[:3], rows_of)
    memory.logits(x[:1], rows_of)  # image 0 used again: image 1 is now the oldest

    memory.logits(x[3:], rows_of)

    kept = memory.get([digest(image) for image in x])
    assert len(memory) == 3 and memory.bytes == 3 * row_bytes
    assert set(kept) == {digest(x[0]), digest(x[2]), digest(x[3])}


def test_kept_rows_cannot_be_changed_by_a_caller():
    memory = Memory()
    x = images(1)
    memory.logits(x, rows_of)
    (row,) = memory.get([digest(x[0])]).values()

    assert not row.flags.writeable


def test_threads_sharing_one_memory_get_the_right_rows():
    memory, x, errors = Memory(max_bytes=20 * 12), images(40), []

    def work(seed: int) -> None:
        order = np.random.default_rng(seed).permutation(40)
        for start in range(0, 40, 5):
            batch = x[order[start : start + 5]]
            if not np.array_equal(memory.logits(batch, rows_of)[0], rows_of(batch)):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and memory.bytes <= memory.max_bytes


def test_a_copy_of_a_classifier_with_other_weights_starts_with_an_empty_memory(tiny):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0, backend="torch")
    x = images(3).repeat(2, axis=1).repeat(2, axis=2)  # 16 x 16
    before = clf.remembered_logits(x)
    other = tiny.TinyConv()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    copy = dataclasses.replace(clf, module=other)

    assert len(copy.memory) == 0 and len(clf.memory) == 3
    assert not np.allclose(copy.remembered_logits(x), before)
    np.testing.assert_array_equal(clf.remembered_logits(x), before)
