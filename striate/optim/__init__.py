"""Optimizers and learning-rate schedules (torch.optim semantics)."""
