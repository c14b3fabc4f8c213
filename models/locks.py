"""One lock per torch module, shared by every session and every classifier that wraps it."""

from __future__ import annotations

import threading
import weakref

import torch

_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def module_lock(module: torch.nn.Module) -> threading.RLock:
    """The one lock for a torch module, however many classifiers wrap it.

    Streamlit sessions share a model, each in its own thread. Methods that hook the module (Grad-CAM,
    guided backprop, Captum's gradient methods) change what every pass through it computes while the hooks
    are on, so every pass through the module (gradients, predictions, torch-engine batches, export, copies)
    holds this lock. onnxruntime batches do not touch the module and run freely.
    """
    with _LOCKS_GUARD:
        if module not in _LOCKS:
            _LOCKS[module] = threading.RLock()
        return _LOCKS[module]
