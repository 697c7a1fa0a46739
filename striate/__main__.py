"""``python -m striate ...`` is the same as ``striate ...``."""

from .cli import entry

entry()
