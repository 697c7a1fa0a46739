"""Where a training step's time goes: CPU time per layer type, forward and backward.

    OPENBLAS_NUM_THREADS=1 STRIATE_NUM_THREADS=1 \\
        python benchmarks/profile_layers.py fashion_cnn --batch 100 --shape 1,28,28
    python benchmarks/profile_layers.py resnet20 --batch 128 --shape 3,32,32 --repo /tmp/old

It times each leaf layer's forward and backward with the process's CPU time,
which a busy shared machine disturbs far less than the wall clock (use one
thread: CPU time adds the threads up).  ``--repo`` runs another checkout of
striate (e.g. a ``git worktree`` of an older commit) for a before/after table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from typing import Any, Callable

# As `import striate` sets it (striate/memory.py); set here too because --repo may point at
# an older checkout that does not, and NumPy is loaded before striate here.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402


CLOCK = time.process_time


def _timed(fn: Callable, key: tuple[str, str], totals: dict) -> Callable:
    def run(*args: Any, **kwargs: Any) -> Any:
        start = CLOCK()
        out = fn(*args, **kwargs)
        totals[key] += CLOCK() - start
        return out
    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--shape", default="1,28,28", help="C,H,W of one input")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repo", default=None, help="import striate from this checkout instead")
    p.add_argument("--wall", action="store_true", help="wall-clock time (for several threads)")
    a = p.parse_args(argv)
    global CLOCK
    if a.wall:
        CLOCK = time.perf_counter
    if a.repo:
        sys.path.insert(0, a.repo)
    import striate
    from striate import models, nn, optim

    shape = tuple(int(v) for v in a.shape.split(","))
    model = models.get_model(a.model, num_classes=10, in_channels=shape[0], rng=0)
    if hasattr(model, "set_input_grad"):
        model.set_input_grad(False)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch,) + shape).astype(np.float32)
    y = rng.integers(0, 10, a.batch)
    crit, opt = nn.CrossEntropyLoss(), optim.Adam(model.parameters())
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for _, m in model.named_modules():
        if not list(m.children()):
            kind = type(m).__name__
            object.__setattr__(m, "forward", _timed(m.forward, (kind, "forward"), totals))
            object.__setattr__(m, "backward", _timed(m.backward, (kind, "backward"), totals))

    def step() -> None:
        crit(model(x), y)
        opt.zero_grad()
        model.backward(crit.backward())
        opt.step()

    step()
    totals.clear()
    times = []
    for _ in range(a.steps):
        start = CLOCK()
        step()
        times.append(CLOCK() - start)
    print(f"striate from {striate.__file__}")
    print(f"{a.model}, batch {a.batch}: step {1e3 * np.median(times):.1f} ms {'wall' if a.wall else 'CPU'} (median of {a.steps})")
    for (kind, phase), total in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<20} {phase:<9} {1e3 * total / a.steps:8.2f} ms")


if __name__ == "__main__":
    main()
