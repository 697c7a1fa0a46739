"""Ready-made training, evaluation and prediction runs on the known data sets.

These are the functions behind ``striate train / evaluate / predict``: they
build the model from the zoo, the loaders with the data set's normalisation and
augmentation, the optimizer and LR schedule, run the Trainer, and write the
model file (with the class names and normalisation it needs for prediction).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from .. import models, nn, optim
from .._random import manual_seed
from ..data import Compose, DataLoader, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat, load_dataset
from ..errors import ConfigError, ShapeError
from ..nn.module import Module
from ..serialize import load, save
from .inputs import check_finite
from .trainer import CHECKPOINT, METRICS, Trainer, evaluate
from ..viz.curves import epoch_curves_writer

# Per-channel mean and std of each training set (pixels scaled to [0, 1]).
DATASET_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
# Horizontal flips keep the class of clothes and objects, not of digits.
FLIP_OK = {"fashion-mnist": True, "cifar10": True, "mnist": False}


@dataclass
class TrainConfig:
    """Everything a training run is made of (the ``striate train`` options)."""

    model: str = "fashion_cnn"
    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    label_smoothing: float = 0.0
    augment: bool = False
    seed: int = 0
    data_dir: str | None = None
    out: str = "runs/latest"
    resume: bool = False
    early_stopping: int | None = None
    skip_nonfinite: bool = False
    progress: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def check_config(cfg: TrainConfig) -> None:
    """Refuse impossible hyperparameters before anything is loaded."""
    if cfg.dataset not in DATASET_STATS:
        raise ConfigError(f"--dataset must be one of {sorted(DATASET_STATS)}; received '{cfg.dataset}'")
    for name in ("epochs", "batch_size"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer; received {v!r}")
    if not np.isfinite(cfg.lr) or cfg.lr <= 0:
        raise ConfigError(f"--lr must be a positive number; received {cfg.lr!r}")
    for name, low, high in (("weight_decay", 0.0, np.inf), ("momentum", 0.0, np.inf),
                            ("label_smoothing", 0.0, 1.0)):
        v = getattr(cfg, name)
        if not (np.isfinite(v) and low <= v <= high):
            span = f"in [{low:g}, {high:g}]" if np.isfinite(high) else f">= {low:g}"
            raise ConfigError(f"--{name.replace('_', '-')} must be a number {span}; received {v!r}")
    if cfg.early_stopping is not None and cfg.early_stopping < 1:
        raise ConfigError(f"--early-stopping must be a positive integer; received {cfg.early_stopping!r}")
    if cfg.optimizer not in ("sgd", "adam", "adamw", "rmsprop"):
        raise ConfigError(f"--optimizer must be sgd, adam, adamw or rmsprop; received '{cfg.optimizer}'")
    if cfg.schedule not in ("none", "step", "cosine", "onecycle"):
        raise ConfigError(f"--schedule must be none, step, cosine or onecycle; received '{cfg.schedule}'")
    if cfg.model not in models.list_models():
        raise ConfigError(f"--model must be one of {', '.join(models.list_models())}; received '{cfg.model}'")


def build_model(name: str, dataset_shape: tuple[int, int, int], num_classes: int,
                **kwargs: Any) -> Module:
    """A zoo model for images of ``dataset_shape`` (C, H, W), passing input_size where taken."""
    params = models.model_signature(name).parameters
    if "input_size" in params and "input_size" not in kwargs:
        kwargs["input_size"] = dataset_shape[1]
    return models.get_model(name, num_classes=num_classes, in_channels=dataset_shape[0], **kwargs)


def make_loaders(cfg: TrainConfig) -> tuple[DataLoader, DataLoader, list[str], tuple[int, ...]]:
    """Train and test loaders with normalisation (and augmentation if asked)."""
    train_set = load_dataset(cfg.dataset, "train", data_dir=cfg.data_dir)
    test_set = load_dataset(cfg.dataset, "test", data_dir=cfg.data_dir)
    mean, std = DATASET_STATS[cfg.dataset]
    shape = tuple(train_set.images.shape[1:])
    steps: list[Callable] = []
    if cfg.augment:
        steps.append(RandomCrop(shape[1], padding=4 if shape[1] >= 32 else 2,
                                rng=np.random.default_rng([cfg.seed, 1])))
        if FLIP_OK[cfg.dataset]:
            steps.append(RandomHorizontalFlip(rng=np.random.default_rng([cfg.seed, 2])))
    base = [ToFloat(), Normalize(mean, std)]
    train = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True,
                       transform=Compose(steps + base), rng=np.random.default_rng([cfg.seed, 3]))
    test = DataLoader(test_set, batch_size=500, transform=Compose(base))
    return train, test, list(train_set.classes), shape


def make_optimizer(cfg: TrainConfig, params: Any) -> Any:
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                         nesterov=cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay or 1e-2)
    return optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


def make_scheduler(cfg: TrainConfig, opt: Any, steps_per_epoch: int) -> tuple[Any, str]:
    """(scheduler or None, 'epoch' | 'batch')."""
    if cfg.schedule == "step":
        return optim.StepLR(opt, step_size=max(cfg.epochs // 3, 1), gamma=0.1), "epoch"
    if cfg.schedule == "cosine":
        return optim.CosineAnnealingLR(opt, T_max=cfg.epochs), "epoch"
    if cfg.schedule == "onecycle":
        return optim.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs,
                                steps_per_epoch=steps_per_epoch), "batch"
    return None, "epoch"


def train_run(cfg: TrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.dataset``; write model.npz, metrics.jsonl, checkpoint.npz.

    Returns:
        {'test_accuracy', 'test_loss', 'epochs', 'seconds', 'out', ...}.
    """
    check_config(cfg)
    start = time.perf_counter()
    probe = os.path.join(cfg.out, ".write-test")
    try:
        os.makedirs(cfg.out, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"--out {cfg.out}: cannot write there ({e.strerror})") from None
    manual_seed(cfg.seed)
    train, test, classes, shape = make_loaders(cfg)
    model = build_model(cfg.model, shape, len(classes), **cfg.model_kwargs)
    opt = make_optimizer(cfg, model.parameters())
    sched, sched_step = make_scheduler(cfg, opt, len(train))
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    trainer = Trainer(model, criterion, opt, train, val_loader=test, scheduler=sched,
                      scheduler_step=sched_step, epochs=cfg.epochs, out_dir=cfg.out,
                      early_stopping=cfg.early_stopping, monitor="val_accuracy",
                      num_classes=len(classes), progress=cfg.progress, log=log,
                      on_nonfinite="skip" if cfg.skip_nonfinite else "stop",
                      on_epoch_end=epoch_curves_writer(cfg.out, log))   # OUT/curves.png
    ckpt = os.path.join(cfg.out, CHECKPOINT)
    if cfg.resume:
        if not os.path.exists(ckpt):
            raise ConfigError(f"--resume: no checkpoint at {ckpt}")
        trainer.resume(ckpt)
        log(f"resumed from {ckpt} after epoch {trainer.epoch}")
    log(f"{cfg.model}: {model.num_parameters():,} parameters; {cfg.dataset}: "
        f"{len(train.dataset)} train / {len(test.dataset)} test images")
    trainer.fit()
    metrics, _ = evaluate(model, test, criterion, len(classes), prefix="test_")
    mean, std = DATASET_STATS[cfg.dataset]
    save(model, os.path.join(cfg.out, "model.npz"), metadata={
        "classes": classes, "mean": list(mean), "std": list(std), "input_shape": list(shape),
        "dataset": cfg.dataset, "train_config": asdict(cfg)})
    result = {"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
              "epochs": trainer.epoch, "seconds": round(time.perf_counter() - start, 1),
              "model": cfg.model, "dataset": cfg.dataset, "out": cfg.out,
              "metrics_file": os.path.join(cfg.out, METRICS)}
    return result


def evaluate_file(model_path: str, dataset: str, split: str = "test", data_dir: str | None = None,
                  batch_size: int = 500) -> tuple[dict[str, float], np.ndarray, list[str]]:
    """Evaluate a saved model on a data set split; (metrics, confusion matrix, class names)."""
    if dataset not in DATASET_STATS:
        raise ConfigError(f"--dataset must be one of {sorted(DATASET_STATS)}; received '{dataset}'")
    model = load(model_path)
    data = load_dataset(dataset, split, data_dir=data_dir)
    meta = getattr(model, "metadata", {}) or {}
    mean, std = meta.get("mean"), meta.get("std")
    if mean is None:
        mean, std = DATASET_STATS[dataset]
    loader = DataLoader(data, batch_size=batch_size, transform=Compose([ToFloat(), Normalize(mean, std)]))
    metrics, cm = evaluate(model, loader, nn.CrossEntropyLoss(), len(data.classes))
    return metrics, cm, list(data.classes)


def predict_files(model_path: str, images: list[str], topk: int = 3) -> list[tuple[str, list[tuple[str, float]]]]:
    """Top-k classes with probabilities for each image file (resized to the model's input)."""
    from ..data.images import load_image_for_model

    model = load(model_path).eval()
    meta = getattr(model, "metadata", {}) or {}
    shape = meta.get("input_shape")
    if shape is None:
        raise ConfigError(f"{model_path}: the model file does not record its input shape "
                          "(it was not written by striate train); cannot prepare images for it")
    classes = meta.get("classes")
    if not images:
        raise ShapeError("predict: expected at least one image file; received none")
    x = np.stack([load_image_for_model(p, tuple(shape)) for p in images])     # (N, C, H, W) uint8
    x = Compose([ToFloat(), Normalize(meta["mean"], meta["std"])])(x)
    for path, xi in zip(images, x):
        check_finite(xi, f"predict: {path} (after the model's normalisation)")
    out = []
    with nn.no_grad():
        logits = model(x)
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)                  # (N, classes)
    for path, p in zip(images, probs):
        top = np.argsort(-p)[:topk]
        out.append((path, [(classes[i] if classes else str(i), float(p[i])) for i in top]))
    return out
