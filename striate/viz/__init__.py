"""Pictures and tables of what a network learned and how it trained."""

from .text import confusion_text

__all__ = ["confusion_text"]
