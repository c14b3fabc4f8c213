"""A classifier's identity: the sha256 of its weights, and of everything that decides its outputs."""

from __future__ import annotations

import hashlib
import json
import weakref

from whylabel.models.classifier import Classifier
from whylabel.models.remote import is_remote
from whylabel.store.engines import state_dict_sha256


def weights_sha256(clf: Classifier) -> tuple[str, str]:
    """The sha256 of the weights file when there is one, else of every tensor in the state_dict, in order;
    and what was hashed."""
    if clf.weights_path is not None:
        with open(clf.weights_path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest(), "file"
    if is_remote(clf):
        return clf.weights  # type: ignore[attr-defined]  # computed in the model's worker
    return state_dict_sha256(clf.module), "state_dict (float32, in order)"


MODEL_IDS: weakref.WeakKeyDictionary[Classifier, str] = weakref.WeakKeyDictionary()
"""Each classifier's identity, computed once (hashing the weights file takes tens of milliseconds)."""


def model_id(clf: Classifier) -> str | None:
    """The sha256 of the name, weights, preprocessing and labels; None for a user's uploaded model, whose
    identity is its worker's word (and the randomised copies the worker derives share it)."""
    if is_remote(clf):
        return None
    if clf not in MODEL_IDS:
        parts = {
            "name": clf.name,
            "weights": weights_sha256(clf),
            "preprocessing": [clf.input_size, list(clf.mean), list(clf.std), clf.crop, int(clf.resample)],
            "labels": clf.labels,
        }
        MODEL_IDS[clf] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return MODEL_IDS[clf]
