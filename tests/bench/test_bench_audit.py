"""bench.audit runs end to end, on tiny settings, and reports what the README quotes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from bench import audit as bench_audit
from whylabel.audit.analysis import Audit, Cluster
from whylabel.audit.flags import Finding


def test_the_audit_bench_writes_its_numbers(tmp_path):
    args = ["--marks", "1", "--method-images", "100", "--memory-images", "30", "--out", str(tmp_path)]
    data = bench_audit.main(args)
    assert json.loads((tmp_path / "audit.json").read_text()) == json.loads(json.dumps(data))
    assert [row["method"] for row in data["methods"]] == list(bench_audit.METHODS)
    assert all(row["seconds_per_image"] > 0 for row in data["methods"])
    assert data["mnist_100"]["images"] == 100 and data["mnist_100"]["method"] == "saliency"
    assert data["gallery"]["images"] == 8 and data["gallery"]["median_s"] > 0
    assert data["memory"]["images"] == 30 and data["memory"]["peak_mib"] > 0
    table = (tmp_path / "audit.md").read_text()
    assert "Memory for 30 images" in table
    for row in data["methods"]:  # one mark: each method's line states its own share and false flags
        assert f"| {row['method']} | {row['caught']:.0%} | {row['false_flags']} |" in table


def cluster(cid: int, members: list[int], flagged: bool) -> Cluster:
    finding = Finding(np.zeros((2, 2), bool), 0.5, 0.1, "top left", flagged, "test")
    return Cluster(0, "zero", cid, members, np.zeros((2, 2)), finding)


@pytest.mark.parametrize(
    ("clusters", "caught", "false_flags"),
    [
        # flagged {a, b, d}: 2 of 3 marked, a true flag; flagged {d, e}: none marked, a false flag; {c} unflagged
        ([([0, 1, 3], True), ([3, 4], True), ([2], False)], 2 / 3, 1),
        # flagged {c, e}: half marked counts as a false flag, yet catches c; {a, b} flagged: all three caught
        ([([0, 1], True), ([2, 4], True), ([3], False)], 1.0, 1),
        # nothing flagged: nothing caught, no false flags
        ([([0, 1, 2], False), ([3, 4], False)], 0.0, 0),
    ],
)
def test_the_share_caught_and_the_false_flags_of_a_hand_made_audit(clusters, caught, false_flags):
    """Five images a-e, of which a, b and c carry the mark; the share is the marked images in flagged clusters
    over all marked images, a false flag a flagged cluster at most half marked."""
    items = [SimpleNamespace(file=name) for name in "abcde"]
    result = Audit("model", "saliency", items, clusters=[cluster(i, m, f) for i, (m, f) in enumerate(clusters)])

    assert bench_audit.found(result, {"a", "b", "c"}) == (pytest.approx(caught), false_flags)
