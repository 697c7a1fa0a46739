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


def _add_image_source(p: Any) -> None:
    p.add_argument("image", nargs="?", default=None, help="an image file (or use --dataset and --index)")
    p.add_argument("--dataset", default=None, help="take the image from this data set instead")
    p.add_argument("--index", type=int, default=0, help="which image of --dataset (default 0)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", default=None)


def _add_viz(sub: Any) -> None:
    v = sub.add_parser("viz", help="pictures: curves, filters, feature maps, saliency, confusion")
    vs = v.add_subparsers(dest="viz_command", required=True)
    p = vs.add_parser("curves", help="loss and accuracy per epoch of a run")
    p.add_argument("run", help="a run folder (with metrics.jsonl) or a metrics.jsonl file")
    p = vs.add_parser("filters", help="a convolution's kernels (default: the first)")
    p.add_argument("model")
    p.add_argument("--layer", default=None, help="the conv's path, e.g. 4")
    p = vs.add_parser("maps", help="one layer's feature maps for one image")
    p.add_argument("model")
    _add_image_source(p)
    p.add_argument("--layer", required=True, help="the layer's path, e.g. 2 or features.3")
    p = vs.add_parser("saliency", help="vanilla saliency or Grad-CAM of one image")
    p.add_argument("model")
    _add_image_source(p)
    p.add_argument("--grad-cam", action="store_true", help="Grad-CAM at --layer instead")
    p.add_argument("--layer", default=None)
    p.add_argument("--target", default=None, help="class index or name (default: the predicted one)")
    for name, text in (("confusion", "the confusion matrix of an evaluation"),
                       ("misclassified", "the most confidently misclassified images")):
        p = vs.add_parser(name, help=text)
        p.add_argument("model")
        p.add_argument("--dataset", required=True)
        p.add_argument("--split", default="test")
        p.add_argument("--data-dir", default=None)
        if name == "confusion":
            p.add_argument("--text", action="store_true", help="also print the matrix as a table")
        else:
            p.add_argument("--count", type=int, default=16, help="how many images (default 16)")
    for p in vs.choices.values():
        p.add_argument("--out", default=None, help="the PNG to write (default: beside the input)")


def _add_onnx(sub: Any) -> None:
    p = sub.add_parser("export", help="write a saved model (.npz) as an ONNX file")
    p.add_argument("model", help="a .npz model file (striate.save, striate train)")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--input-shape", default=None,
                   help="C,H,W (or C,L) without the batch; default: the shape the file records")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset, 9 to 17 (default 13)")
    p.add_argument("--fold-batchnorm", action="store_true", help="fold BatchNorm into the layers before it")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("convert", help="import an ONNX file as a striate model file (.npz)")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("output", help="the .npz model file to write")
    p.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="striate", description="CNNs in NumPy: train, evaluate, inspect.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_others(sub)
    _add_viz(sub)
    _add_onnx(sub)
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


def cmd_export(a: argparse.Namespace) -> None:
    from .onnx.files import export_file

    r = export_file(a.model, a.output, a.input_shape, a.opset, a.fold_batchnorm)
    if a.json:
        print(json.dumps(r))
        return
    shape = "(" + ", ".join(str(d) for d in r["input_shape"]) + ")"
    print(f"wrote {r['path']}: ONNX opset {r['opset']}, input {shape}, {r['nodes']} nodes, "
          f"{r['parameters']:,} parameters")


def cmd_convert(a: argparse.Namespace) -> None:
    from .onnx.files import convert_file

    r = convert_file(a.model, a.output)
    if a.json:
        print(json.dumps(r))
        return
    shape = "unknown" if r["input_shape"] is None else \
        "(" + ", ".join(str(d) for d in r["input_shape"]) + ")"
    print(f"wrote {r['path']}: {r['layers']} layers, {r['parameters']:,} parameters, input {shape}")


def cmd_viz(a: argparse.Namespace) -> None:
    from .viz import commands as V

    source = {k: getattr(a, k, None) for k in ("dataset", "index", "split", "data_dir")}
    kind = a.viz_command
    if kind == "curves":
        path = V.viz_curves(a.run, a.out)
    elif kind == "filters":
        path = V.viz_filters(a.model, a.out, a.layer)
    elif kind == "maps":
        path = V.viz_maps(a.model, a.layer, a.image, a.out, **source)
    elif kind == "saliency":
        path = V.viz_saliency(a.model, a.image, a.out, grad_cam=a.grad_cam, layer=a.layer,
                              target=a.target, **source)
    elif kind == "confusion":
        path, text = V.viz_confusion(a.model, a.dataset, a.split, a.data_dir, a.out)
        if a.text:
            print(text)
    else:
        path = V.viz_misclassified(a.model, a.dataset, a.split, a.data_dir, a.out, a.count)
    print(path)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "models": cmd_models, "datasets": cmd_datasets, "summary": cmd_summary,
            "viz": cmd_viz, "export": cmd_export, "convert": cmd_convert}


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
    except KeyboardInterrupt as e:  # TrainingInterrupted says where the checkpoint is
        checkpoint = getattr(e, "checkpoint", None)
        how = "; to continue, run the same command with --resume" if checkpoint else ""
        print(f"striate {args.command}: {e or 'interrupted'}{how}", file=sys.stderr)
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
