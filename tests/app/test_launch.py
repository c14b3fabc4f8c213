"""How the page is started: the shipped settings reach `streamlit run`, with no file watcher outside `make dev`."""

from __future__ import annotations

from pathlib import Path

from whylabel.ui import launch

ROOT = Path(__file__).resolve().parents[2]


def test_the_served_page_watches_no_files():
    assert launch.settings()["server.fileWatcherType"] == "none"
    assert "--server.fileWatcherType=none" in launch.flags(8123)
    assert "--server.headless=true" in launch.flags(8123) and "--server.port=8123" in launch.flags(8123)


def test_only_make_dev_turns_the_watcher_on():
    targets = {}
    for block in (ROOT / "Makefile").read_text().split("\n\n"):
        for line in block.splitlines():
            if line and not line.startswith(("#", "\t", " ")) and ":" in line:
                targets[line.split(":")[0]] = block
    assert "fileWatcherType auto" in targets["dev"]
    assert "fileWatcherType" not in targets["run"]  # `make run` keeps the shipped setting: none
