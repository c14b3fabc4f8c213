"""How soon a hanging upload is refused, and the limits a working one's calls get (docs/security.md#time-limits).

Uploads a 32-px TorchScript model whose forward never ends and times its refusal (the worker's start, then the
check's limit, `WHYLABEL_CHECK_SECONDS`); then a small working network at 224 px: its load and check, the forward
pass the check measured, and the limits of a prediction, a perturbation call of 16 images and a whole method.

Usage: python -m bench.upload_check
"""

from __future__ import annotations

import io
import time

import torch
from torch import nn

from whylabel import models
from whylabel.models import worker

LABELS = b"a\nb\nc\n"


class Hang(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        count = x.sum() * 0
        while bool(count >= 0):
            count = count + 1
        return x.mean(dim=(2, 3)) + count


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def scripted(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def main() -> None:
    began = time.perf_counter()
    try:
        models.load_user_model(scripted(Hang()), LABELS, "hang", input_size=32)
        print("the hanging model was not refused")
    except models.ModelError as err:
        print(f"hanging 32-px upload refused after {time.perf_counter() - began:.1f} s: {err}")
    began = time.perf_counter()
    clf = models.load_user_model(scripted(Small()), LABELS, "small", input_size=224)
    held = clf.worker  # type: ignore[attr-defined]
    print(f"small 224-px upload loaded and checked in {time.perf_counter() - began:.1f} s (worker start included)")
    print(f"measured forward pass: {held.pass_seconds * 1000:.2f} ms")
    for what, passes in (("a prediction", 1), ("a perturbation call", 16), ("a whole method", worker.RUN_PASSES)):
        print(f"limit of {what} ({passes} passes): {worker.call_limit(held.pass_seconds, passes):.0f} s")


if __name__ == "__main__":
    main()
