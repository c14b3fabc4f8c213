"""Classifiers and how they see an image: named models, weights from packages, preprocessing, labels,
`from_module`, users' models (TorchScript, state_dict, ONNX) in an isolated worker, and `open_image`.

May import: whylabel.store (the engine's disk cache). It knows nothing of explainers or Streamlit.
"""

from whylabel.models.classifier import Classifier, Prediction, from_module
from whylabel.models.images import ImageError, open_image
from whylabel.models.registry import available, default_image_for, load
from whylabel.models.samples import sample_image, samples
from whylabel.models.user import ARCHITECTURES, ModelError, check_model, load_user_model, read_labels
from whylabel.models.worker import WorkerError

__all__ = [
    "ARCHITECTURES",
    "Classifier",
    "ImageError",
    "ModelError",
    "Prediction",
    "WorkerError",
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
