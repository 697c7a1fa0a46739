"""Exceptions raised by striate.

Every failure a user can cause raises a subclass of :class:`StriateError` whose
message says what was expected, what was received and where (a layer's path in
the model, a file name, an option).  The subclasses also derive from the
built-in exception a Python user would expect (``ValueError``, ``TypeError``,
...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class StriateError(Exception):
    """Base class of every error striate raises on purpose."""


class ShapeError(StriateError, ValueError):
    """An array has the wrong rank, shape or number of channels."""


class DTypeError(StriateError, TypeError):
    """An array has a dtype the operation does not accept."""


class ConfigError(StriateError, ValueError):
    """A constructor argument or hyperparameter is impossible."""


class StateError(StriateError, RuntimeError):
    """An operation was called in the wrong order (e.g. backward before forward)."""


class StateDictError(StriateError, KeyError):
    """A state dict does not fit the model: missing, unexpected or mis-shaped keys."""

    def __str__(self) -> str:  # KeyError would quote the message; keep it readable
        return str(self.args[0]) if self.args else ""


class NonFiniteError(StriateError, FloatingPointError):
    """A value (input, loss or gradient) is NaN or infinite."""


class DataError(StriateError, ValueError):
    """A data file or data set is missing, corrupt or malformed."""


class MissingDependencyError(StriateError, ImportError):
    """An optional dependency (Pillow, onnx, matplotlib) is needed but not installed."""


class OnnxError(StriateError, ValueError):
    """An ONNX model is malformed, or cannot be imported into or exported from striate."""


class UnsupportedOperatorError(OnnxError):
    """An ONNX model uses operators striate does not implement (all of them are listed)."""


class StorageError(StriateError, OSError):
    """A file could not be written (disk full, no permission, read-only folder).

    Raised after the temporary file was removed: the previous version of the
    file (a model, a checkpoint) is left exactly as it was.
    """


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C (SIGINT) at a step boundary, after saving a checkpoint.

    It derives from ``KeyboardInterrupt`` (not StriateError: nothing went wrong), so
    ``except KeyboardInterrupt`` still sees it. ``checkpoint`` is the path of the
    checkpoint to resume from, or None when the trainer has no ``out_dir``.
    """

    def __init__(self, message: str, checkpoint: str | None = None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
