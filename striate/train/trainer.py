"""The training loop: epochs, evaluation, LR schedule, early stopping, logs, checkpoints.

    trainer = Trainer(model, criterion, optimizer, train_loader, val_loader=test_loader,
                      scheduler=sched, epochs=10, out_dir="runs/fashion")
    history = trainer.fit()          # one dict of metrics per epoch

With ``out_dir``, every epoch rewrites ``metrics.jsonl`` (one JSON object per
epoch) and ``checkpoint.npz`` (model, optimizer, scheduler, data position and
every generator state, written atomically); ``Trainer.resume(path)`` continues
from it, and the resumed run ends with the same weights, bit for bit, as a run
that was never interrupted.

Ctrl-C (SIGINT) stops at the next step boundary: the trainer writes a
checkpoint of that exact point (mid-epoch, with the data loader's position and
the epoch's running metrics) and raises TrainingInterrupted; resuming from it
also ends bit-identical.  Each batch is checked at the entry (empty batch,
labels outside [0, C), NaN/Inf inputs) and every checkpoint write either
succeeds or leaves the previous checkpoint intact (StorageError).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, DataError, NonFiniteError, StorageError, StriateError, TrainingInterrupted
from ..nn.module import Module, no_grad
from ..serialize import atomic_write_text, remove_stale_temporaries
from .checkpoint import (check_free_space, checkpoint_bytes, load_checkpoint, load_model_state,
                         restore_rng_states, rng_states, save_checkpoint)
from .inputs import check_batch, check_labels
from .interrupt import InterruptGuard
from .metrics import MetricTracker
from .nonfinite import first_nonfinite_gradient, first_nonfinite_output
from .progress import Progress

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"


def evaluate(model: Module, loader: Any, criterion: Any, num_classes: int,
             prefix: str = "") -> tuple[dict[str, float], np.ndarray]:
    """Loss, accuracy, top-5 accuracy and confusion matrix of ``model`` over ``loader``.

    Returns:
        (metrics dict with keys prefixed by ``prefix``, confusion matrix (C, C)).
    """
    was_training = model.training
    model.eval()
    tracker = MetricTracker(num_classes)
    with no_grad():
        for k, (x, y) in enumerate(loader, start=1):
            check_batch(x, y, f"evaluate: batch {k}", num_classes)
            logits = model(x)
            tracker.update(logits, y, float(criterion(logits, y)))
    model.train(was_training)
    return tracker.summary(prefix), tracker.cm


class Trainer:
    """Mini-batch training of a classifier.

    Args:
        model: the network; its output is (N, num_classes) logits.
        criterion: a loss module, e.g. CrossEntropyLoss().
        optimizer: a striate.optim optimizer over ``model.parameters()``.
        train_loader: yields (x, y) batches; a DataLoader makes resume exact.
        val_loader: evaluated after each epoch (metrics prefixed 'val_').
        scheduler: an LR scheduler, stepped per epoch (ReduceLROnPlateau gets the
            monitored value) or per batch (``scheduler_step='batch'``, e.g. OneCycleLR).
        epochs: total number of epochs.
        out_dir: where checkpoint.npz and metrics.jsonl go (None: nowhere).
        early_stopping: stop after this many epochs without improvement of ``monitor``.
        monitor: 'val_loss' (lower is better) or a '*accuracy' key (higher is better).
        num_classes: C (default: inferred from the model's first output).
        on_nonfinite: 'stop' (raise NonFiniteError naming the layer and step) or
            'skip' (drop that step's update and go on).
        progress: show a progress bar on standard error.
        log: called with one line of text per epoch.
        on_epoch_end: optional callback(trainer, record) after each epoch's checkpoint.
    """

    def __init__(self, model: Module, criterion: Any, optimizer: Any, train_loader: Any, *,
                 val_loader: Any = None, scheduler: Any = None, scheduler_step: str = "epoch",
                 epochs: int = 10, out_dir: str | os.PathLike | None = None,
                 early_stopping: int | None = None, monitor: str = "val_loss",
                 num_classes: int | None = None, on_nonfinite: str = "stop",
                 progress: bool = True, log: Callable[[str], None] | None = print,
                 on_epoch_end: Callable[["Trainer", dict], None] | None = None) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"Trainer: epochs must be a positive int; received {epochs!r}")
        if scheduler_step not in ("epoch", "batch"):
            raise ConfigError(f"Trainer: scheduler_step must be 'epoch' or 'batch'; received {scheduler_step!r}")
        if on_nonfinite not in ("stop", "skip"):
            raise ConfigError(f"Trainer: on_nonfinite must be 'stop' or 'skip'; received {on_nonfinite!r}")
        if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
            raise ConfigError(f"Trainer: early_stopping must be a positive int or None; received {early_stopping!r}")
        self.model, self.criterion, self.optimizer = model, criterion, optimizer
        self.train_loader, self.val_loader = train_loader, val_loader
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        self.epochs, self.early_stopping, self.monitor = epochs, early_stopping, monitor
        self.num_classes = num_classes
        self.on_nonfinite, self.progress, self.log = on_nonfinite, progress, log
        self.on_epoch_end = on_epoch_end
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.epoch = 0                 # completed epochs
        self.step = 0                  # optimizer steps taken
        self.skipped_steps = 0
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self._partial: dict[str, Any] | None = None   # the interrupted epoch's progress
        self._saved_epoch: int | None = None          # epoch of the last checkpoint written

    # ------------------------------------------------------------------ running
    def fit(self) -> list[dict[str, Any]]:
        """Train until ``epochs`` (or early stopping); return the per-epoch history.

        Raises:
            TrainingInterrupted: Ctrl-C; a checkpoint of the last finished step was saved.
            StorageError: the output folder is unwritable or full (checked before the first
                step where possible); the previous checkpoint is intact.
        """
        ckpt = None
        if self.out_dir is not None:
            ckpt = os.path.join(self.out_dir, CHECKPOINT)
            self._prepare_out_dir()
        input_grad = self.model.input_grad
        self.model.set_input_grad(False)      # as torch: the data needs no gradient (less work)
        try:
            return self._run_epochs(ckpt)
        finally:
            self.model.set_input_grad(input_grad)

    def _run_epochs(self, ckpt: str | None) -> list[dict[str, Any]]:
        with InterruptGuard() as guard:
            while self.epoch < self.epochs and not self.stopped_early:
                start = time.perf_counter()
                train_metrics, rate = self._train_epoch(guard)
                record: dict[str, Any] = {"epoch": self.epoch + 1,
                                          "lr": float(self.optimizer.param_groups[0]["lr"])}
                record.update(train_metrics)
                if self.val_loader is not None:
                    val, _ = evaluate(self.model, self.val_loader, self.criterion,
                                      self._classes(), prefix="val_")
                    record.update(val)
                self.epoch += 1
                self._after_epoch(record)
                record["seconds"] = round(time.perf_counter() - start, 3)
                record["items_per_s"] = round(rate, 1)
                self.history.append(record)
                if ckpt is not None:
                    self._save_epoch_checkpoint(ckpt)
                    self._write_metrics()
                if self.log is not None:
                    self.log(self._epoch_line(record))
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self, record)
                if guard.requested:
                    where = f"; checkpoint saved to {ckpt}" if ckpt else ""
                    raise TrainingInterrupted(f"interrupted after epoch {self.epoch}{where}", ckpt)
        return self.history

    def _prepare_out_dir(self) -> None:
        """Create out_dir, clear temporaries of killed runs, check the free space."""
        try:
            os.makedirs(self.out_dir, exist_ok=True)
        except OSError as e:
            raise StorageError(f"Trainer: cannot create the output folder {self.out_dir} "
                               f"({e.strerror or e})") from e
        remove_stale_temporaries(self.out_dir)
        check_free_space(self.out_dir, checkpoint_bytes(self.model))

    def _save_epoch_checkpoint(self, path: str) -> None:
        try:
            self.save_checkpoint(path)
        except StorageError as e:
            kept = (f"the checkpoint of epoch {self._saved_epoch} is intact"
                    if self._saved_epoch is not None else "no earlier checkpoint exists")
            raise StorageError(f"training stopped after epoch {self.epoch}: {e}; {kept}. "
                               f"Free some space, then resume (--resume)") from e
        self._saved_epoch = self.epoch

    def _classes(self) -> int:
        if self.num_classes is None:
            raise ConfigError("Trainer: num_classes is not known yet (no batch has run)")
        return self.num_classes

    def _train_epoch(self, guard: InterruptGuard) -> tuple[dict[str, float], float]:
        self.model.train()
        partial, self._partial = self._partial, None
        batch = partial["batches"] if partial else 0
        tracker, bar, stopped = None, None, False
        total = len(getattr(self.train_loader, "dataset", ())) or len(self.train_loader)
        batches = iter(self.train_loader)
        for x, y in batches:
            batch += 1
            where = f"Trainer: epoch {self.epoch + 1}, step {self.step + 1} (batch {batch})"
            check_batch(x, y, where)
            logits = self.model(x)
            if tracker is None:
                self.num_classes = self.num_classes or int(logits.shape[1])
                tracker = _tracker(self.num_classes, partial)
                bar = Progress(total, f"epoch {self.epoch + 1}/{self.epochs}", enabled=self.progress)
            check_labels(y, self.num_classes, where)
            loss = float(self.criterion(logits, y))
            self.optimizer.zero_grad()
            if not math.isfinite(loss):
                self._nonfinite(f"loss is {loss}", x)
            else:
                self.model.backward(self.criterion.backward())
                bad = first_nonfinite_gradient(self.model)
                if bad is not None:
                    self._nonfinite(f"the gradient of {bad} is not finite", x)
                else:
                    self.optimizer.step()
                    self.step += 1
                    if self.scheduler is not None and self.scheduler_step == "batch":
                        self.scheduler.step()
                    tracker.update(logits, y, loss)
                    bar.update(len(y), tracker.loss, tracker.accuracy)
            if guard.requested and self._mid_epoch():
                stopped = True
                break
        close = getattr(batches, "close", None)
        if close is not None:
            close()   # the loader's iteration ends here (position kept), as after a full epoch
        if stopped:
            self._interrupted(tracker, batch)
        if tracker is None:
            raise ConfigError("Trainer: the training loader yielded no batch")
        bar.close()
        return tracker.summary("train_"), bar.rate

    def _mid_epoch(self) -> bool:
        """Whether the loader is inside an epoch (after its last batch, finish the epoch instead)."""
        if not hasattr(self.train_loader, "state_dict"):
            return True
        return self.train_loader.state_dict()["position"] > 0

    def _interrupted(self, tracker: MetricTracker, batch: int) -> None:
        """Save a checkpoint of this step boundary (if the loader can resume there) and stop."""
        partial = {"batches": batch, "tracker": _tracker_state(tracker)}
        where = f"interrupted at epoch {self.epoch + 1}, step {self.step} (batch {batch})"
        if not hasattr(self.train_loader, "state_dict"):     # cannot resume mid-epoch
            if self.out_dir is None or self._saved_epoch is None:
                raise TrainingInterrupted(where + " (nothing saved)", None)
            path = os.path.join(self.out_dir, CHECKPOINT)
            raise TrainingInterrupted(f"{where}; the loader cannot resume mid-epoch: resume from the "
                                      f"checkpoint of epoch {self._saved_epoch}, {path}", path)
        loader_state = self.train_loader.state_dict()
        self._partial = partial
        self.train_loader.load_state_dict(loader_state)   # fit() again continues from here
        if self.out_dir is None:
            raise TrainingInterrupted(where + " (no out_dir: nothing saved)", None)
        path = os.path.join(self.out_dir, CHECKPOINT)
        try:
            self.save_checkpoint(path)
        except StorageError as e:
            raise StorageError(f"{where}: {e}") from e
        raise TrainingInterrupted(f"{where}; checkpoint saved to {path}", path)

    def _nonfinite(self, what: str, x: np.ndarray) -> None:
        """Stop with a message naming the first non-finite layer, or skip the step."""
        self.optimizer.zero_grad()
        if self.on_nonfinite == "skip":
            self.skipped_steps += 1
            return
        layer = first_nonfinite_output(self.model, x)
        where = f"; first non-finite output: {layer}" if layer else ""
        kept = (f" The last good checkpoint ({os.path.join(self.out_dir, CHECKPOINT)}) is intact."
                if self.out_dir else "")
        raise NonFiniteError(
            f"training stopped at epoch {self.epoch + 1}, step {self.step + 1}: {what}{where}."
            f"{kept} Lower the learning rate, or pass on_nonfinite='skip' (--skip-nonfinite)."
        )

    def _after_epoch(self, record: dict[str, Any]) -> None:
        value = record.get(self.monitor)
        if self.scheduler is not None and self.scheduler_step == "epoch":
            if type(self.scheduler).__name__ == "ReduceLROnPlateau":
                self.scheduler.step(value if value is not None else record["train_loss"])
            else:
                self.scheduler.step()
        if value is None:
            return
        higher = "accuracy" in self.monitor
        if self.best is None or (value > self.best if higher else value < self.best):
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
            if self.early_stopping is not None and self.bad_epochs >= self.early_stopping:
                self.stopped_early = True
        record["stopped_early"] = self.stopped_early

    def _epoch_line(self, r: dict[str, Any]) -> str:
        parts = [f"epoch {r['epoch']}/{self.epochs}", f"lr {r['lr']:.3g}",
                 f"train loss {r['train_loss']:.4f}", f"train acc {r['train_accuracy']:.4f}"]
        if "val_loss" in r:
            parts += [f"val loss {r['val_loss']:.4f}", f"val acc {r['val_accuracy']:.4f}"]
        parts.append(f"{r['seconds']:.1f}s")
        return "  ".join(parts)

    # ------------------------------------------------------------------ persistence
    def _write_metrics(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write_text(os.path.join(self.out_dir, METRICS), text)

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain values and arrays."""
        loader_state = (self.train_loader.state_dict()
                        if hasattr(self.train_loader, "state_dict") else None)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "loader": loader_state,
            "rng": rng_states(self.model),
            "epoch": self.epoch, "step": self.step, "skipped_steps": self.skipped_steps,
            "history": self.history, "best": self.best, "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early, "num_classes": self.num_classes,
            "partial": self._partial,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state` atomically to ``path``."""
        save_checkpoint(path, self.state())

    def resume(self, path: str | os.PathLike) -> None:
        """Load a checkpoint written by this trainer's configuration and continue from it.

        Raises:
            DataError: the file is corrupt, or does not fit this model, optimizer or loader
                (the message names the file and the keys or entries that differ).
        """
        st = load_checkpoint(path)
        where = os.fspath(path)
        load_model_state(self.model, st["model"], where)
        try:
            self._restore(st)
        except StriateError as e:
            raise DataError(f"{where}: checkpoint does not fit this run: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise DataError(f"{where}: checkpoint does not fit this run or is damaged "
                            f"({type(e).__name__}: {e})") from None
        self._saved_epoch = self.epoch

    def _restore(self, st: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scheduler is not None and st.get("scheduler") is not None:
            self.scheduler.load_state_dict(st["scheduler"])
        if st.get("loader") is not None and hasattr(self.train_loader, "load_state_dict"):
            self.train_loader.load_state_dict(st["loader"])
        restore_rng_states(self.model, st["rng"])
        self.epoch, self.step = int(st["epoch"]), int(st["step"])
        self.skipped_steps = int(st.get("skipped_steps", 0))
        self.history = list(st.get("history", []))
        self.best, self.bad_epochs = st.get("best"), int(st.get("bad_epochs", 0))
        self.stopped_early = bool(st.get("stopped_early", False))
        self.num_classes = st.get("num_classes") or self.num_classes
        self._partial = st.get("partial")


def _tracker(num_classes: int, partial: dict[str, Any] | None) -> MetricTracker:
    """A fresh MetricTracker, or one holding an interrupted epoch's running sums."""
    tracker = MetricTracker(num_classes)
    if partial:
        st = partial["tracker"]
        tracker.loss_sum, tracker.count = float(st["loss_sum"]), int(st["count"])
        tracker.correct, tracker.topk_hits = int(st["correct"]), int(st["topk_hits"])
        tracker.cm = np.array(st["cm"], dtype=np.int64)
    return tracker


def _tracker_state(tracker: MetricTracker) -> dict[str, Any]:
    """The running sums of an epoch's metrics, as checkpoint values."""
    return {"loss_sum": tracker.loss_sum, "count": tracker.count, "correct": tracker.correct,
            "topk_hits": tracker.topk_hits, "cm": tracker.cm.copy()}
