"""A short demo: train a small CNN on synthetic images and print its loss falling.

Run with ``python -m striate.demo`` (or ``./run.sh``).  The images are 1x12x12
with a horizontal bar, a vertical bar or a square, in noise; the network is a
Conv-ReLU-MaxPool-Conv-ReLU-Linear stack trained with Adam and cross-entropy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import nn, optim


def make_shapes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n noisy 1x12x12 images of three classes: 0 horizontal bar, 1 vertical bar, 2 square.

    Returns:
        (images (n, 1, 12, 12) float32, labels (n,) int64).
    """
    x = rng.normal(0.0, 0.3, size=(n, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    for i in range(n):
        r, c = rng.integers(2, 9, size=2)
        if y[i] == 0:
            x[i, 0, r, 1:11] += 1.0
        elif y[i] == 1:
            x[i, 0, 1:11, c] += 1.0
        else:
            x[i, 0, r - 1:r + 2, c - 1:c + 2] += 1.0
    return x, y.astype(np.int64)


def build_model(rng: np.random.Generator) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, rng=rng),   # (N, 8, 12, 12)
        nn.ReLU(),
        nn.MaxPool2d(2),                          # (N, 8, 6, 6)
        nn.Conv2d(8, 16, 3, rng=rng),             # (N, 16, 4, 4)
        nn.ReLU(),
        nn.Flatten(),                             # (N, 256)
        nn.Linear(16 * 4 * 4, 3, rng=rng),
    )


def main(argv: list[str] | None = None) -> float:
    """Train for a few epochs, printing loss and accuracy; return the final test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_shapes(3000, rng)
    x_test, y_test = make_shapes(600, rng)
    model = build_model(rng)
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    print(f"demo: {model.num_parameters()} parameters, {len(x_train)} training images")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        model.train()
        for s in range(0, len(order), 50):
            idx = order[s:s + 50]
            logits = model(x_train[idx])
            losses.append(float(criterion(logits, y_train[idx])))
            opt.zero_grad()
            model.backward(criterion.backward())
            opt.step()
        model.eval()
        acc = float(np.mean(model(x_test).argmax(axis=1) == y_test))
        print(f"epoch {epoch}: train loss {np.mean(losses):.4f}  test accuracy {acc:.3f}"
              f"  ({time.perf_counter() - start:.1f}s)")
    return acc


if __name__ == "__main__":
    main()
