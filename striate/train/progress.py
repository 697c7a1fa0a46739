"""A small progress bar: items/s, loss and accuracy, redrawn in place on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Progress of one epoch.

    On a terminal the bar is redrawn at most ten times a second; elsewhere (a log
    file, CI) nothing is printed until :meth:`close`, which prints one line.

    Args:
        total: number of items in the epoch.
        desc: text before the bar, e.g. 'epoch 3/10'.
        stream: where to write (standard error by default).
        enabled: False prints nothing at all.
    """

    def __init__(self, total: int, desc: str, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total, self.desc = max(int(total), 1), desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self.text = ""

    def update(self, n: int, loss: float, acc: float) -> None:
        """Record n more items and the running loss and accuracy."""
        self.done += n
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        frac = min(self.done / self.total, 1.0)
        bar = "=" * int(frac * 24)
        bar = (bar + ">").ljust(25)[:25] if frac < 1 else "=" * 25
        self.text = (f"{self.desc} [{bar}] {self.done}/{self.total} "
                     f"{self.done / elapsed:,.0f} items/s loss {loss:.4f} acc {acc:.4f}")
        now = time.perf_counter()
        if self.tty and (now - self._last_draw > 0.1 or self.done >= self.total):
            self.stream.write("\r" + self.text)
            self.stream.flush()
            self._last_draw = now

    @property
    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.start, 1e-9)

    def close(self) -> None:
        if not self.enabled:
            return
        self.stream.write(("\r" if self.tty else "") + self.text + "\n")
        self.stream.flush()
