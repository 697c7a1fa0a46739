"""Ctrl-C or SIGTERM during training: finish the current step, save, stop cleanly.

A KeyboardInterrupt raised at an arbitrary point could land inside
``optimizer.step()`` and leave half of the weights updated.  While training,
:class:`InterruptGuard` replaces Python's SIGINT handler (and the default
SIGTERM action, with which a job scheduler pre-empts a run): the first signal
only sets a flag that the Trainer checks between steps (it then saves a
checkpoint and raises :class:`striate.errors.TrainingInterrupted`); a second one
raises KeyboardInterrupt at once (the last checkpoint on disk stays intact,
since checkpoints are written atomically).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

__all__ = ["InterruptGuard"]


class InterruptGuard:
    """Context manager deferring the first SIGINT to the next step boundary.

    The handler is installed only in the main thread and only when SIGINT has
    Python's default handler (a handler of the caller's own is left alone).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is not threading.main_thread():
            return self
        defaults = {signal.SIGINT: signal.default_int_handler}
        if hasattr(signal, "SIGTERM"):
            defaults[signal.SIGTERM] = signal.SIG_DFL
        for signum, default in defaults.items():
            if signal.getsignal(signum) is default:       # a caller's own handler is left alone
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        what = "interrupt" if signum == signal.SIGINT else f"signal {signal.Signals(signum).name}"
        print(f"striate: {what} received; saving a checkpoint after the current step "
              "(send it again to stop at once)", file=sys.stderr, flush=True)
