"""The built wheel: one top-level name, its assets inside, importable and runnable when installed non-editable,
beside a user's own `models/` and `explainers/` packages (pytest imports the checkout, so only this sees it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DECOY = "DECOY = True  # a user's own package of the same name\n"


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built by pip from a copy of the checkout (so no build/ or egg-info is left in it)."""
    work = tmp_path_factory.mktemp("wheel")
    copy = work / "whylabel-checkout"
    copy.mkdir()
    with tarfile.open(work / "tree.tar", "w") as tree:
        for name in tracked_files():
            tree.add(ROOT / name, arcname=name)
    with tarfile.open(work / "tree.tar") as tree:
        tree.extractall(copy, filter="data")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work), str(copy)],
        check=True,
        capture_output=True,
    )
    (built,) = work.glob("whylabel-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict[str, str]:
    """The wheel installed into a folder of its own, and an environment that imports it from a folder holding
    decoy `models/` and `explainers/` packages."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    project = tmp_path_factory.mktemp("user-project")
    for name in ("models", "explainers"):
        (project / name).mkdir()
        (project / name / "__init__.py").write_text(DECOY)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    return {"site": str(site), "project": str(project), **{f"env:{k}": v for k, v in env.items()}}


def env_of(installed: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("env:"): v for k, v in installed.items() if k.startswith("env:")}


def test_the_wheel_installs_one_top_level_name_with_its_assets(wheel):
    names = zipfile.ZipFile(wheel).namelist()

    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"whylabel", wheel.name.split("-py")[0] + ".dist-info"}, tops
    for needed in ("app.py", "__main__.py", ".streamlit/config.toml", "assets/mnist_cnn.pt", "assets/mnist_cnn.json",
                   "models/__init__.py", "explainers/__init__.py", "trust/__init__.py", "render/__init__.py",
                   "cli/runner.py", "store/results.py", "whatif/search.py", "explainers/methods/lime_image.py",
                   "ui/launch.py"):  # fmt: skip
        assert f"whylabel/{needed}" in names, needed
    assert not [n for n in names if n.split("/")[1] in ("bench", "tests", "scripts") or n.endswith("screenshot.png")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "whylabel = whylabel.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


INSTALLED_USE = """
import json, models, explainers as theirs
import whylabel
from whylabel import evidence, explainers, models as wm, trust
assert models.DECOY and theirs.DECOY  # the user's own packages keep their names
clf = wm.load("mnist_cnn")  # its weights are package data
img = wm.sample_image("mnist digit 3")
att = explainers.explain(clf, img, "saliency")
record = json.loads(evidence.files(evidence.collect(clf, img, ["saliency"], score=False))["record.json"])
print(json.dumps({"file": whylabel.__file__, "shape": list(att.heatmap.shape), "top": record["target"]["label"],
                  "verdict": trust.verdict(0.1).passed}))
"""


def test_installed_whylabel_works_beside_a_users_own_models_package(installed):
    done = subprocess.run(
        [sys.executable, "-c", INSTALLED_USE], cwd=installed["project"], env=env_of(installed),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    out = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(installed["site"])  # the installed copy, not the checkout
    assert out["shape"] == [28, 28] and out["top"] == "3" and out["verdict"] is True


INSTALLED_PAGE = """
import sys
from importlib import resources
from streamlit.testing.v1 import AppTest
page = str(resources.files("whylabel") / "app.py")
assert page.startswith(sys.argv[1]), page
at = AppTest.from_file(page, default_timeout=240)
for key, value in {"model": "mnist_cnn", "lime.samples.28": 60, "lime.n_segments.28": 20,
                   "shap.evaluations.28": 40}.items():
    at.session_state[key] = value
at.run()
assert not at.exception, [e.value for e in at.exception]
keys = {c.key for c in at.get("plotly_chart") if c.key}
assert {"figure.saliency", "figure.occlusion", "figure.lime", "figure.shap"} <= keys, keys
from whylabel.ui import cache
cache.warm_up().join(timeout=300)  # the page's background warm-up (numba compiling) ends before the interpreter does
print("page ok")
"""


def test_the_installed_page_runs(installed):
    done = subprocess.run(
        [sys.executable, "-c", INSTALLED_PAGE, installed["site"]], cwd=installed["project"], env=env_of(installed),
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip

    assert done.returncode == 0 and "page ok" in done.stdout, done.stderr[-3000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_whylabel_dashboard_serves_the_installed_page(installed):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "whylabel", "dashboard", "--port", str(port), "--address", "127.0.0.1"],
        cwd=installed["project"], env=env_of(installed), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        health = f"http://127.0.0.1:{port}/_stcore/health"
        deadline, answer = time.monotonic() + 90, ""
        while time.monotonic() < deadline and not answer:
            try:
                answer = urllib.request.urlopen(health, timeout=2).read().decode()
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                time.sleep(0.5)
        assert answer == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
