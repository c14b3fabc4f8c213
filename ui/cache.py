"""Streamlit caches: models shared across sessions, results keyed on everything that decides them."""

from __future__ import annotations

from typing import Any

import streamlit as st
from PIL import Image

import explainers
import models
from explainers.base import Progress


@st.cache_resource(show_spinner="Loading the model…")
def model(name: str) -> models.Classifier:
    """One classifier per name for the whole server (read-only, so safe to share between sessions)."""
    return models.load(name)


@st.cache_data(show_spinner=False, max_entries=64)
def prediction(model_name: str, image_key: str, _clf: models.Classifier, _image: Image.Image) -> models.Prediction:
    return _clf.predict(_image, k=5)


@st.cache_data(show_spinner=False, max_entries=512)
def attribution(
    model_name: str,
    image_key: str,
    target: int,
    method: str,
    seed: int,
    params: tuple[tuple[str, Any], ...],
    _clf: models.Classifier,
    _image: Image.Image,
    _progress: Progress,
) -> explainers.Attribution:
    """An attribution, cached on (model, image hash, target, method, seed, parameters)."""
    return explainers.explain(_clf, _image, method, target=target, seed=seed, progress=_progress, **dict(params))
