"""Classifiers for whylabel: a registry of named models, preprocessing, labels and image loading.

This package knows nothing of explainers or Streamlit.
"""

from models.classifier import Classifier, Prediction, from_module
from models.images import ImageError, open_image
from models.registry import available, default_image_for, load
from models.samples import sample_image, samples

__all__ = [
    "Classifier",
    "ImageError",
    "Prediction",
    "available",
    "default_image_for",
    "from_module",
    "load",
    "open_image",
    "sample_image",
    "samples",
]
