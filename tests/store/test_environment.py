"""One environment(): record.json's provenance and the result store's key list the same libraries."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import metadata

from whylabel import evidence, explainers, models
from whylabel.explainers import kept
from whylabel.store import environment as env
from whylabel.store import results

DECIDING = {
    "torch",
    "captum",
    "lime",
    "shap",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "onnxruntime",
    "pillow",
}
"""Written out by hand: scipy decides the blur fill, scikit-learn LIME's fit, pillow decoding and resizing."""


def record_of(clf: models.Classifier) -> dict:
    img = models.sample_image("mnist digit 3")
    return json.loads(evidence.files(evidence.collect(clf, img, ["saliency"], score=False))["record.json"])


def test_the_record_and_the_store_key_name_the_same_libraries_with_their_installed_versions():
    record = record_of(models.load("mnist_cnn"))
    libraries = set(record["versions"]) - {"python", "whylabel"}

    assert libraries == set(env.environment()["libraries"]) == DECIDING
    for library in DECIDING:
        assert record["versions"][library] == metadata.version(library)
    assert record["versions"]["whylabel"] == metadata.version("whylabel")


def test_the_record_carries_the_code_digest_of_the_shipped_files():
    record = record_of(models.load("mnist_cnn"))
    root = env.Path(env.__file__).resolve().parents[1]
    digest = hashlib.sha256()
    rooms = sorted(d for d in root.iterdir() if (d / "__init__.py").is_file() and d.name not in env.NOT_SHIPPED)
    for path in [*sorted(root.glob("*.py")), *(p for room in rooms for p in sorted(room.rglob("*.py")))]:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())

    assert re.fullmatch(r"[0-9a-f]{64}", record["code_sha256"])
    assert record["code_sha256"] == digest.hexdigest()
    assert {"tests", "bench", "scripts"} <= set(env.NOT_SHIPPED)


def test_a_change_of_any_deciding_library_is_a_new_store_key(monkeypatch, tiny_clf, noise_image):
    asked = explainers.Request.make(tiny_clf, noise_image(16, 16), "saliency")
    before = kept.request_key(asked, "map")
    original = env.environment()
    for library in DECIDING:
        changed = {**original, "libraries": {**original["libraries"], library: "0.0.0-other"}}
        monkeypatch.setattr(results, "environment", lambda changed=changed: changed)
        assert kept.request_key(asked, "map") != before, library
