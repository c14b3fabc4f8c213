"""The sidebar's "your own model" controls: a TorchScript or ONNX file or a state_dict, and a labels file.

A file that cannot be used says why under the uploader and changes nothing: the last model that loaded stays.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from whylabel import models
from whylabel.models.user import MAX_INPUT_SIZE, digest
from whylabel.ui import cache

OWN = "Your own model (upload)"
MAX_MODEL_MB = 100
SCRIPT = "TorchScript or ONNX (the network is in the file)"
LAYOUTS = {"read from the graph": None, "NCHW (PyTorch)": "NCHW", "NHWC (Keras, TensorFlow)": "NHWC"}
NORMALISATIONS: dict[str, dict[str, tuple[float, float, float]]] = {
    "ImageNet mean and std": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    "0.5 and 0.5 (pixels to -1..1)": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "none (pixels to 0..1)": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
}
LOADED = "own.loaded"


def pick() -> models.Classifier | None:
    """The user's model: the one just uploaded, else the last one that loaded in this session, else None."""
    with st.sidebar.expander("Your model", expanded=True):
        model_file = st.file_uploader(
            f"Model file: TorchScript, ONNX, or a state_dict of a known architecture (up to {MAX_MODEL_MB} MB)",
            type=["pt", "pth", "ts", "onnx"],
            key="own.model",
            max_upload_size=MAX_MODEL_MB,
            help="Never a pickled whole model: unpickling can run any code. Save with "
            "torch.jit.script(model).save(path) or torch.save(model.state_dict(), path). ONNX from any framework "
            "runs forward only: the methods that need gradients say so.",
        )
        labels_file = st.file_uploader(
            "Labels: one per line, or JSON (needed for TorchScript and ONNX)", type=["txt", "json"], key="own.labels"
        )
        architecture = st.selectbox("Architecture", [SCRIPT, *models.ARCHITECTURES], key="own.architecture")
        onnx = model_file is not None and model_file.name.lower().endswith(".onnx")
        preprocessing = _script_preprocessing(onnx) if architecture == SCRIPT else {}
    if model_file is None:
        return st.session_state.get(LOADED)
    data, labels = model_file.getvalue(), None if labels_file is None else labels_file.getvalue()
    known = None if architecture == SCRIPT else architecture
    try:
        clf = cache.own_model(
            digest(data, labels, known, preprocessing), data, labels, model_file.name, known, preprocessing
        )
    except (models.ModelError, models.WorkerError) as err:
        st.sidebar.error(f"{model_file.name}: {err}")
        return st.session_state.get(LOADED)
    st.session_state[LOADED] = clf
    return clf


def _script_preprocessing(onnx: bool) -> dict[str, Any]:
    """Input size, normalisation and crop for a TorchScript or ONNX model, which carry none of them; for ONNX,
    the input layout and whether the size is the one its graph fixes."""
    chosen: dict[str, Any] = {}
    if onnx:
        layout = st.selectbox("Input layout", list(LAYOUTS), key="own.layout")
        chosen["layout"] = LAYOUTS[layout]
        from_graph = st.checkbox("Input size from the graph (where it fixes one)", True, key="own.size_from_graph")
    if not onnx or not from_graph:
        chosen["input_size"] = int(st.number_input("Input size (pixels)", 8, MAX_INPUT_SIZE, 224, key="own.size"))
    norm = st.selectbox("Normalisation", list(NORMALISATIONS), key="own.normalisation")
    crop = st.slider("Centre crop (share of the shorter side)", 0.5, 1.0, 0.875, 0.005, key="own.crop")
    return {**chosen, **NORMALISATIONS[norm], "crop": float(crop)}
