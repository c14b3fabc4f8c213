"""The teaching demo: a model trained with a mark on part of one class leans on it, and the audit finds the
marked images as a flagged cluster. The marks vary in place, size, class and share; none of these five was
among the demos the flag rule's numbers were chosen on (see `audit.flags`)."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import audit, models
from whylabel.audit import demo
from whylabel.models.marked import Mark

MARKS = [
    (Mark(digit=4, share=0.4, row=0, col=0, size=3), 5, "the top-left corner"),
    (Mark(digit=8, share=0.3, row=23, col=23, size=5), 6, "the bottom-right corner"),
    (Mark(digit=2, share=0.5, row=1, col=24, size=3), 7, "the top-right corner"),
    (Mark(digit=6, share=0.4, row=24, col=2, size=4), 8, "the bottom-left corner"),
    (Mark(digit=5, share=0.3, row=3, col=0, size=3), 9, "the top-left corner"),
]


@pytest.mark.parametrize(("mark", "seed", "place"), MARKS, ids=lambda v: str(v) if isinstance(v, Mark) else None)
def test_the_audit_finds_the_marked_images_as_a_flagged_cluster(mark, seed, place):
    clf, report = demo.train(mark, seed=seed)
    assert report["accuracy"] > 0.9  # a good model on plain digits ...
    assert report["accuracy_all_marked"] < report["accuracy"] - 0.1  # ... that the mark misleads
    images = demo.images(mark, seed=seed + 1)
    marked = {file for file, _, group in images if group == "marked"}
    result = audit.run(clf, images)
    assert result.method == "saliency"
    flagged = result.flagged()
    assert flagged
    caught = {result.items[m].file for c in flagged for m in c.members}
    assert len(caught & marked) >= 0.8 * len(marked)
    for cluster in flagged:  # every flagged cluster is mostly marked images of the marked class, and says where
        members = [result.items[m].file for m in cluster.members]
        assert cluster.cls == mark.digit
        assert np.mean([f in marked for f in members]) > 0.9
        assert place in cluster.why
    groups = {g.name: g for g in result.groups}
    assert groups["marked"].flagged >= 0.8 * len(groups["marked"].members) and groups["plain"].flagged == 0


def test_the_clean_model_flags_nothing():
    images = [item for item in demo.images(Mark(share=0.01)) if item[2] == "plain"]
    result = audit.run(models.load("mnist_cnn"), images)
    assert len(result.items) > 900 and result.clusters
    assert result.flagged() == []


def test_the_packaged_demo_model_is_the_default_mark():
    clf = models.load("mnist_marked")
    assert clf.name == "mnist_marked" and clf.weights_path is None
    again, _ = demo.train(Mark())
    pixels = Mark().stamp(models.mnist.digits()[0][:8])
    assert np.array_equal(clf.logits(pixels).numpy(), again.logits(pixels).numpy())  # deterministic training


@pytest.mark.parametrize("bad", [dict(digit=10), dict(share=0.0), dict(size=0), dict(row=26, size=4), dict(col=-1)])
def test_a_mark_that_cannot_be_drawn_is_refused(bad):
    with pytest.raises(ValueError, match="mark"):
        Mark(**bad)


def test_the_demo_images_carry_the_mark_exactly_where_said():
    mark = Mark(digit=3, share=0.5, row=2, col=20, size=4)
    images = demo.images(mark)
    marked = [np.asarray(img) for file, img, group in images if group == "marked"]
    plain_threes = [np.asarray(img) for file, img, group in images if group == "plain" and "/3_" in file]
    assert all(file.split("/")[1].startswith("3_") for file, _, group in images if group == "marked")
    assert abs(len(marked) - len(plain_threes)) <= 1  # half the held-out 3s
    assert all((m[2:6, 20:24] == 255).all() for m in marked)
