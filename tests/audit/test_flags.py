"""The flag rule from its statement (`audit.flags`), on maps whose odd habit is planted, and the record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_spectral import blob, items_from, strategy_maps

from whylabel import audit
from whylabel.audit import flags
from whylabel.audit.maps import GRID, Item, evidence_grid
from whylabel.evidence.audit_report import index_html


def marked_maps(rng: np.random.Generator, count: int, mark: tuple[float, float], share: float) -> np.ndarray:
    """Centre-blob maps with `share` of their evidence moved to a small mark at `mark`."""
    plain = strategy_maps(rng, [(8, 8)], count)
    spot = evidence_grid(blob(*mark, width=0.6))[0]
    return (1 - share) * plain + share * spot


@pytest.mark.parametrize(
    ("mark", "place"),
    [
        ((1, 1), "the top-left corner"),
        ((14, 14), "the bottom-right corner"),
        ((1, 14), "the top-right corner"),
        ((8, 0.5), "the left edge"),
        ((14.5, 8), "the bottom edge"),
    ],
)
def test_a_cluster_whose_evidence_sits_apart_is_flagged_with_where(mark, place):
    rng = np.random.default_rng(0)
    plain = items_from(strategy_maps(rng, [(8, 8)], 30))
    marked = items_from(marked_maps(rng, 12, mark, share=0.3))
    for item in marked:
        item.file = "marked/" + item.file
    result = audit.analyse(plain + marked, "m", "saliency")
    flagged = result.flagged()
    assert len(flagged) == 1
    members = {result.items[m].file for m in flagged[0].members}
    assert members == {item.file for item in marked}
    assert place in flagged[0].why and "'3'" in flagged[0].why


def test_a_habit_below_the_stated_mass_is_not_flagged():
    rng = np.random.default_rng(1)
    plain = items_from(strategy_maps(rng, [(8, 8)], 30))
    faint = items_from(marked_maps(rng, 12, (1, 1), share=flags.MASS / 3))
    result = audit.analyse(plain + faint, "m", "saliency")
    assert result.flagged() == []


def test_two_clusters_with_the_same_habit_are_both_flagged():
    """The typical other image is a median: a second marked cluster does not hide the first."""
    rng = np.random.default_rng(2)
    plain = strategy_maps(rng, [(8, 8)], 40)
    marked = np.concatenate([marked_maps(rng, 10, (1, 1), 0.3), marked_maps(rng, 10, (1.5, 1.5), 0.35)])
    cluster, others = marked[:10], np.concatenate([plain, marked[10:]])
    found = flags.finding(cluster, others, "3")
    assert found.flagged and found.place == "the top-left corner"
    assert found.mass >= flags.MASS


def test_the_finding_follows_the_rule_as_stated():
    """Cells where the median member has LIFT x the blurred median of the others, above uniform; their share."""
    rng = np.random.default_rng(3)
    cluster = marked_maps(rng, 8, (1, 14), 0.25)
    others = strategy_maps(rng, [(8, 8)], 20)
    member = np.median(cluster, axis=0)
    typical = np.median([flags.gaussian_filter(g, flags.BLUR, mode="constant") for g in others], axis=0)
    cells = (member >= flags.LIFT * typical) & (member > 1 / GRID**2)
    found = flags.finding(cluster, others, "3")
    assert np.array_equal(found.cells, cells)
    assert found.mass == pytest.approx(member[cells].sum() / member.sum())
    assert found.flagged == (found.mass >= flags.MASS)


def test_a_single_image_cluster_is_not_a_habit():
    rng = np.random.default_rng(4)
    found = flags.finding(marked_maps(rng, 1, (1, 1), 0.5), strategy_maps(rng, [(8, 8)], 20), "3")
    assert found.mass >= flags.MASS and not found.flagged


@pytest.mark.parametrize(
    ("row", "col", "words"),
    [
        (0, 0, "the top-left corner"),
        (0, 15, "the top-right corner"),
        (15, 0, "the bottom-left corner"),
        (15, 15, "the bottom-right corner"),
        (0, 8, "the top edge"),
        (8, 15, "the right edge"),
        (8, 8, "the centre"),
        (4, 8, "the top part"),
    ],
)
def test_places_are_named_from_the_cells_centre(row, col, words):
    cells = np.zeros((GRID, GRID), dtype=bool)
    cells[row, col] = True
    assert flags.place(cells, np.ones((GRID, GRID))) == words


def test_the_record_holds_what_audit_json_promises():
    rng = np.random.default_rng(5)
    plain = items_from(strategy_maps(rng, [(8, 8)], 20), group="plain")
    marked = items_from(marked_maps(rng, 8, (1, 1), 0.3), group="marked")
    for item in marked:
        item.file = item.file.replace("/3_", "/m3_")
    other = items_from(strategy_maps(rng, [(8, 8)], 1), cls=5, group="plain")
    record = json.loads(json.dumps(audit.to_json(audit.analyse(plain + marked + other, "the model", "saliency"))))
    assert record["model"] == "the model" and record["method"] == "saliency"
    files = [i["file"] for i in record["images"]]
    assert len(files) == len(set(files)) == 29
    assert {"file", "predicted", "label", "cluster"} <= record["images"][0].keys()
    ids = {c["id"] for c in record["clusters"]}
    assert {i["cluster"] for i in record["images"]} <= ids
    assert sorted(m for c in record["clusters"] for m in c["members"]) == sorted(files)
    (flagged,) = [c for c in record["clusters"] if c["flagged"]]
    assert flagged["class"] == 3 and sorted(flagged["members"]) == sorted(i.file for i in marked)
    assert "top-left corner" in flagged["why"]
    assert all(c["why"] == "" for c in record["clusters"] if not c["flagged"])
    groups = {g["group"]: g for g in record["groups"]}
    assert groups["marked"]["in_flagged_clusters"] == 8 and groups["plain"]["in_flagged_clusters"] == 0
    assert groups["plain"]["images"] == 21 and groups["plain"]["predictions"] == {"3": 20, "5": 1}


def test_no_groups_without_subfolders():
    rng = np.random.default_rng(6)
    result = audit.analyse(items_from(strategy_maps(rng, [(8, 8)], 5)), "m", "saliency")
    assert result.groups == [] and audit.to_json(result)["groups"] == []


def test_an_item_keeps_what_it_was_given():
    item = Item("a.png", "", 1, "one", 0.5, np.full((GRID, GRID), 1 / GRID**2))
    assert item.evidence and item.localisation == {}


def test_an_audit_by_a_method_the_rule_was_not_checked_on_says_so():
    rng = np.random.default_rng(7)
    items = items_from(strategy_maps(rng, [(8, 8)], 5))
    assert audit.analyse(items, "m", "saliency").caution == ""
    for method in ("occlusion", "gradcam"):
        said = audit.to_json(audit.analyse(items, "m", method))["caution"]
        assert "chosen on saliency maps" in said and f"on {method} maps they were not" in said


def test_audit_json_states_the_rule_with_its_numbers():
    """The numbers written out here by hand: a change to the rule must change this test too."""
    rng = np.random.default_rng(8)
    result = audit.analyse(items_from(strategy_maps(rng, [(8, 8)], 5)), "m", "saliency")
    rule = json.loads(audit.json_text(result))["rule"]
    assert rule == {"text": rule["text"], "lift": 8.0, "mass": 0.05, "min_members": 2, "blur": 1.0}
    for stated in ("MIN_MEMBERS (2) images", "MASS (0.05) of its evidence", "LIFT (8.0) times", "BLUR (1.0) cells"):
        assert stated in rule["text"], stated
    assert "\n" not in rule["text"]
    assert "LIFT (8.0) times" in index_html(result)  # the report states the same rule


def test_no_code_slices_a_docstring_for_the_rule():
    root = Path(__file__).resolve().parents[2]
    sliced = [
        f"{path.relative_to(root)}:{n}"
        for room in ("audit", "evidence", "ui", "cli")
        for path in sorted((root / room).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if ".__doc__" in line
    ]
    assert sliced == []
