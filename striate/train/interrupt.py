"""Ctrl-C during training: finish the current step, save, stop cleanly.

A KeyboardInterrupt raised at an arbitrary point could land inside
``optimizer.step()`` and leave half of the weights updated.  While training,
:class:`InterruptGuard` replaces Python's SIGINT handler: the first Ctrl-C only
sets a flag that the Trainer checks between steps (it then saves a checkpoint
and raises :class:`striate.errors.TrainingInterrupted`); a second Ctrl-C raises
KeyboardInterrupt at once (the last checkpoint on disk stays intact, since
checkpoints are written atomically).
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
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("striate: interrupt received; saving a checkpoint after the current step "
              "(press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
