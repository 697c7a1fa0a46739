"""Training: the Trainer loop, metrics, checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .metrics import (MetricTracker, accuracy, confusion_matrix, per_class_accuracy,
                      topk_accuracy)
from .trainer import Trainer, evaluate

__all__ = ["Trainer", "evaluate", "MetricTracker", "accuracy", "topk_accuracy",
           "confusion_matrix", "per_class_accuracy", "save_checkpoint", "load_checkpoint"]
