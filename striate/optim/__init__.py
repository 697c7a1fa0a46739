"""Optimizers, learning-rate schedules and gradient clipping (torch.optim semantics)."""

from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .lr_scheduler import (CosineAnnealingLR, LRScheduler, MultiStepLR, OneCycleLR,
                           ReduceLROnPlateau, StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ['Optimizer', 'SGD', 'Adam', 'AdamW', 'RMSprop', 'lr_scheduler', 'LRScheduler', 'StepLR',
           'MultiStepLR', 'CosineAnnealingLR', 'OneCycleLR', 'ReduceLROnPlateau',
           'clip_grad_norm_', 'clip_grad_value_']
