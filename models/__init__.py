"""Classifiers for whylabel: a registry of named models, preprocessing, labels and image loading.

This package knows nothing of explainers or Streamlit.
"""

from models.classifier import Classifier, Prediction, from_module
from models.images import ImageError, open_image
from models.registry import available, default_image_for, load
from models.samples import sample_image, samples
from models.user import ARCHITECTURES, ModelError, check_model, load_user_model, read_labels

__all__ = [
    "ARCHITECTURES",
    "Classifier",
    "ImageError",
    "ModelError",
    "Prediction",
    "available",
    "check_model",
    "default_image_for",
    "from_module",
    "load",
    "load_user_model",
    "open_image",
    "read_labels",
    "sample_image",
    "samples",
]
