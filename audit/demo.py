"""The audit's teaching demo: the held-out MNIST digits, part of one class carrying a mark that the model
`models.marked.train(mark)` learned as evidence; the audit should find those images as a flagged cluster.

    python -m scripts.demo_audit   (make demo)   trains it, reports how far it leans on the mark, audits
"""

from __future__ import annotations

from PIL import Image

from whylabel.models import mnist
from whylabel.models.marked import Mark, marked_digits, train


def images(mark: Mark, seed: int = 1) -> list[tuple[str, Image.Image, str]]:
    """The held-out digits to audit as (file, image, group); the carriers of the mark are the group "marked"."""
    _, test_idx = mnist.split()
    chosen, labels, carriers = marked_digits(mark, test_idx, seed)
    out = []
    for n, (pixels, label, carrier) in enumerate(zip(chosen, labels, carriers, strict=True)):
        group = "marked" if carrier else "plain"
        out.append((f"{group}/{label}_{n:04d}.png", Image.fromarray(pixels), group))
    return out


__all__ = ["Mark", "images", "train"]
