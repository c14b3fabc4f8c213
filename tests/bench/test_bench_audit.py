"""bench.audit runs end to end, on tiny settings, and reports what the README quotes."""

from __future__ import annotations

import json

from bench import audit as bench_audit


def test_the_audit_bench_writes_its_numbers(tmp_path):
    args = ["--marks", "1", "--method-images", "100", "--memory-images", "30", "--out", str(tmp_path)]
    data = bench_audit.main(args)
    assert json.loads((tmp_path / "audit.json").read_text()) == json.loads(json.dumps(data))
    assert [row["method"] for row in data["methods"]] == list(bench_audit.METHODS)
    assert all(0 <= row["caught"] <= 1 and row["seconds_per_image"] > 0 for row in data["methods"])
    assert data["mnist_100"]["images"] == 100 and data["mnist_100"]["method"] == "saliency"
    assert data["gallery"]["images"] == 8 and data["gallery"]["median_s"] > 0
    assert data["memory"]["images"] == 30 and data["memory"]["peak_mib"] > 0
    table = (tmp_path / "audit.md").read_text()
    assert "| saliency |" in table and "Memory for 30 images" in table
