"""The ``striate`` command line: argument parsing and printing only.

Every command calls a library function (striate.train.recipe, striate.summary,
striate.data, striate.models); errors a user can cause print one line to
standard error and exit with code 2, internal errors exit with 1 (``--debug``
shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, Sequence

from .errors import StriateError


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a zoo model on a data set")
    p.add_argument("--model", default="fashion_cnn")
    p.add_argument("--dataset", default="fashion-mnist", help="mnist, fashion-mnist or cifar10")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", default="adam", help="sgd, adam, adamw or rmsprop")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="none", help="none, step, cosine or onecycle")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--augment", action="store_true", help="random crops (and flips where they keep the class)")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE")
    p.add_argument("--skip-nonfinite", action="store_true", help="skip steps with a NaN/Inf loss or gradient")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the zoo builder, e.g. padding=2 (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="output folder (default runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON line")


def _add_others(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="evaluate a saved model on a data set")
    p.add_argument("model")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("predict", help="top-k classes of image files")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--topk", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("models", help="the model zoo with parameter counts")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("datasets", help="where each data set is found")
    p.add_argument("--data-dir", default=None)
    p = sub.add_parser("summary", help="per-layer shapes, parameters, MACs and receptive fields")
    p.add_argument("model", help="a zoo name, a .npz model file or an .onnx file")
    p.add_argument("--input-shape", default=None, help="C,H,W (or C,L), without the batch")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="striate", description="CNNs in NumPy: train, evaluate, inspect.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_others(sub)
    return parser


def parse_model_args(items: Sequence[str]) -> dict[str, Any]:
    """['padding=2', 'activation=relu'] -> {'padding': 2, 'activation': 'relu'} (JSON values, else text)."""
    from .errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--model-arg must be KEY=VALUE; received '{item}'")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_train(a: argparse.Namespace) -> None:
    from .train.recipe import TrainConfig, train_run

    out = a.out or f"runs/{a.model}-{a.dataset}"
    cfg = TrainConfig(model=a.model, dataset=a.dataset, epochs=a.epochs, batch_size=a.batch_size,
                      lr=a.lr, optimizer=a.optimizer, momentum=a.momentum,
                      weight_decay=a.weight_decay, schedule=a.schedule,
                      label_smoothing=a.label_smoothing, augment=a.augment, seed=a.seed,
                      data_dir=a.data_dir, out=out, resume=a.resume,
                      early_stopping=a.early_stopping, skip_nonfinite=a.skip_nonfinite,
                      progress=not a.no_progress, model_kwargs=parse_model_args(a.model_arg))
    r = train_run(cfg, log=lambda s: print(s, flush=True))
    print(f"test accuracy {r['test_accuracy']:.4f}  test loss {r['test_loss']:.4f}  "
          f"epochs {r['epochs']}  {r['seconds']:.1f}s  model {out}/model.npz")
    if a.json:
        print(json.dumps({k: r[k] for k in ("test_accuracy", "test_loss", "epochs", "seconds")}))


def cmd_evaluate(a: argparse.Namespace) -> None:
    from .train.recipe import evaluate_file

    metrics, cm, classes = evaluate_file(a.model, a.dataset, a.split, a.data_dir)
    if a.json:
        print(json.dumps({**metrics, "confusion_matrix": cm.tolist(), "classes": classes}))
        return
    print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    from .viz.text import confusion_text

    print(confusion_text(cm, classes))


def cmd_predict(a: argparse.Namespace) -> None:
    from .train.recipe import predict_files

    results = predict_files(a.model, a.images, a.topk)
    if a.json:
        print(json.dumps([{"image": p, "top": [{"class": c, "probability": q} for c, q in top]}
                          for p, top in results]))
        return
    for path, top in results:
        print(path + ": " + ", ".join(f"{c} {q:.3f}" for c, q in top))


def cmd_models(a: argparse.Namespace) -> None:
    from .models import model_table

    rows = model_table()
    if a.json:
        print(json.dumps(rows))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['parameters']:>12,}  {r['description']}")


def cmd_datasets(a: argparse.Namespace) -> None:
    from .data import DATASETS, dataset_locations

    for name in DATASETS:
        found = [loc for loc in dataset_locations(name, a.data_dir) if loc.found]
        where = "; ".join(str(loc) for loc in found) if found else "not found (will be downloaded)"
        print(f"{name:<14} {where}")


def cmd_summary(a: argparse.Namespace) -> None:
    from .summary import summary_for

    s = summary_for(a.model, a.input_shape, a.num_classes)
    print(json.dumps(s.to_dict()) if a.json else str(s))


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "models": cmd_models, "datasets": cmd_datasets, "summary": cmd_summary}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 1 internal error)."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except StriateError as e:
        if args.debug:
            traceback.print_exc()
        print(f"striate {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"striate {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place internal errors are reported
        if args.debug:
            traceback.print_exc()
        print(f"striate {args.command}: internal error: {type(e).__name__}: {e} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


def entry() -> None:
    sys.exit(main())
