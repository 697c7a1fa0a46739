"""striate against PyTorch (and onnxruntime for inference), side by side in one run.

    python benchmarks/bench.py            # full run: a few minutes on 2 cores
    python benchmarks/bench.py --quick    # smoke test: small sizes, one round (CI)

Each workload is timed for striate and for torch in alternation (A B A B ...) over
several rounds; the table gives the median of each and the ratio striate / torch
(below 1 means striate is faster).  Each turn starts with one untimed call
(``--warm``): torch's OpenMP workers keep spinning for several milliseconds after
each parallel region (measured: ~10 ms of CPU after a fashion_cnn step), which
would otherwise compete with the first timed call of the other framework; the
warm-up call also wakes the framework's own threads, so each is timed in the
steady state of a training loop.  ``--warm 0`` gives the old back-to-back timing.  It also prints the machine's float32 GEMM
rate and each workload's achieved GFLOP/s (multiply-adds from striate.summary,
x2 for FLOPs, x3 for a training step), and the peak resident memory of a short
training run of each framework, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Callable


def _threads_from_argv(argv: list[str]) -> str | None:
    """The value of --threads, read before NumPy loads its BLAS (which fixes its thread count)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


if _threads_from_argv(sys.argv) is not None:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads_from_argv(sys.argv)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# striate before NumPy, as the `striate` command does: it then sets OPENBLAS_THREAD_TIMEOUT
# before OpenBLAS loads, so idle BLAS threads sleep instead of spinning during torch's turn.
import striate  # noqa: E402
from striate import models, nn, optim  # noqa: E402

import numpy as np  # noqa: E402


def gemm_gflops(n: int) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    reps = 3
    for _ in range(reps):
        a @ a
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


CLOCK = time.perf_counter
DEFAULT_WARM = 1
WARM = DEFAULT_WARM


def interleave(fns: dict[str, Callable[[], None]], rounds: int, reps: int) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation (on CLOCK).

    Each turn makes WARM untimed calls, then times ``reps`` calls back to back.
    """
    for f in fns.values():          # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            for _ in range(WARM):
                f()
            t = CLOCK()
            for _ in range(reps):
                f()
            times[k].append((CLOCK() - t) / reps)
    return {k: float(np.median(v)) for k, v in times.items()}


def copy_weights(model: striate.nn.Module, tmodel) -> None:
    import torch

    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})


def train_step_fns(name: str, tmodel, x: np.ndarray, y: np.ndarray):
    import torch

    model = models.get_model(name, in_channels=x.shape[1], rng=0)
    copy_weights(model, tmodel)
    model.set_input_grad(False)      # as torch: the input does not require a gradient
    crit, opt = nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3)
    tcrit, topt = torch.nn.CrossEntropyLoss(), torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def s() -> None:
        crit(model(x), y)
        opt.zero_grad()
        model.backward(crit.backward())
        opt.step()

    def t() -> None:
        topt.zero_grad()
        tcrit(tmodel(tx), ty).backward()
        topt.step()

    macs = striate.summary(model, x.shape[1:], batch_size=x.shape[0]).total_macs
    return {"striate": s, "torch": t}, 6.0 * macs


def inference_fns(tmodel, x: np.ndarray):
    import torch

    model = models.get_model("fashion_cnn", rng=0)
    copy_weights(model, tmodel)
    model.eval()
    tmodel.eval()
    tx = torch.from_numpy(x)

    def s() -> None:
        with striate.no_grad():
            model(x)

    def t() -> None:
        with torch.inference_mode():
            tmodel(tx)

    fns = {"striate": s, "torch": t}
    try:
        import onnxruntime as ort
        import io

        import warnings

        buf = io.BytesIO()
        with warnings.catch_warnings():   # the legacy exporter needs no extra packages
            warnings.simplefilter("ignore")
            torch.onnx.export(tmodel, tx[:1], buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}}, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        if os.environ.get("BENCH_ORT_SPIN", "0") != "1":
            # Idle onnxruntime threads spin-wait for work by default and would take a core
            # from whichever engine runs next in the interleaved rounds.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        fns["onnxruntime"] = lambda: sess.run(None, {"x": x})
    except Exception as e:  # noqa: BLE001 - the reference is optional
        print(f"(onnxruntime reference skipped: {type(e).__name__}: {e})", file=sys.stderr)
    macs = striate.summary(model, x.shape[1:], batch_size=x.shape[0]).total_macs
    return fns, 2.0 * macs


def layer_fns(kind: str, cfg: dict, n: int, backward: bool):
    import torch

    rng = np.random.default_rng(0)
    if kind == "conv":
        layer = nn.Conv2d(cfg["c"], cfg["o"], cfg["k"], stride=cfg["s"], padding=cfg["k"] // 2, rng=0)
        tl = torch.nn.Conv2d(cfg["c"], cfg["o"], cfg["k"], stride=cfg["s"], padding=cfg["k"] // 2)
        copy_weights(layer, tl)
    elif kind == "maxpool":
        layer, tl = nn.MaxPool2d(2), torch.nn.MaxPool2d(2)
    else:
        layer, tl = nn.BatchNorm2d(cfg["c"]), torch.nn.BatchNorm2d(cfg["c"])
    x = rng.standard_normal((n, cfg["c"], cfg["hw"], cfg["hw"])).astype(np.float32)
    y = layer(x)
    dy = np.ones_like(y)
    tx = torch.from_numpy(x).requires_grad_(backward)
    tdy = torch.from_numpy(dy)

    def s() -> None:
        layer(x)
        if backward:
            layer.backward(dy)

    def t() -> None:
        out = tl(tx)
        if backward:
            out.backward(tdy)

    macs = striate.summary(layer, x.shape[1:], batch_size=n).total_macs
    return {"striate": s, "torch": t}, (3.0 if backward else 1.0) * 2 * macs


def peak_rss(framework: str, model: str, steps: int) -> float:
    """Peak resident memory (MiB) of a short training run in a fresh process."""
    code = f"""
import sys, numpy as np
sys.path.insert(0, {os.path.dirname(HERE)!r}); sys.path.insert(0, {HERE!r})
shape = (100, 1, 28, 28) if {model!r} == 'fashion_cnn' else (128, 3, 32, 32)
rng = np.random.default_rng(0)
x = rng.random(shape, dtype=np.float32); y = rng.integers(0, 10, shape[0])
if {framework!r} == 'striate':
    from striate import models, nn, optim
    m = models.get_model({model!r}, in_channels=shape[1]); c = nn.CrossEntropyLoss()
    o = optim.Adam(m.parameters())
    for _ in range({steps}):
        c(m(x), y); o.zero_grad(); m.backward(c.backward()); o.step()
else:
    import torch, torch_twins
    m = getattr(torch_twins, {model!r})() if {model!r} == 'fashion_cnn' else torch_twins.resnet20(shape[1])
    c = torch.nn.CrossEntropyLoss(); o = torch.optim.Adam(m.parameters())
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range({steps}):
        o.zero_grad(); c(m(tx), ty).backward(); o.step()
# VmHWM is this address space's peak; ru_maxrss would carry the parent's peak over fork+exec.
print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke test")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch and BLAS (default: all cores); set before numpy loads its BLAS")
    p.add_argument("--only", default=None, help="run only the workloads whose name contains this text")
    p.add_argument("--warm", type=int, default=DEFAULT_WARM,
                   help="untimed calls at the start of each turn (0: the turns back to back)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock: steadier on a "
                        "busy machine, meaningful with --threads 1 only")
    a = p.parse_args(argv)
    global CLOCK, WARM
    WARM = 0 if a.quick else a.warm
    if a.cpu_time:
        CLOCK = time.process_time
    import torch

    sys.path.insert(0, HERE)
    import torch_twins

    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    q = a.quick
    rounds = a.rounds or (1 if q else 5)
    rng = np.random.default_rng(0)
    print(f"float32 GEMM: {gemm_gflops(512 if q else 2048):.1f} GFLOP/s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; numpy {np.__version__}")
    rows = []

    def record(name: str, fns: dict, flops: float, reps: int) -> None:
        if a.only is not None and a.only not in name:
            return
        med = interleave(fns, rounds, reps)
        row = {"workload": name, **{f"{k}_ms": v * 1e3 for k, v in med.items()}}
        row["ratio_vs_torch"] = med["striate"] / med["torch"]
        if "onnxruntime" in med:
            row["ratio_vs_onnxruntime"] = med["striate"] / med["onnxruntime"]
        row["striate_gflops"] = flops / med["striate"] / 1e9
        rows.append(row)
        extra = f"  vs onnxruntime {row['ratio_vs_onnxruntime']:.2f}" if "onnxruntime" in med else ""
        print(f"{name:<44} striate {med['striate'] * 1e3:9.2f} ms  torch {med['torch'] * 1e3:9.2f} ms  "
              f"ratio {row['ratio_vs_torch']:5.2f}{extra}  ({row['striate_gflops']:.1f} GFLOP/s)",
              flush=True)

    b = 10 if q else 100
    x = rng.random((b, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, b)
    record(f"fashion_cnn train step, batch {b}", *train_step_fns("fashion_cnn", torch_twins.fashion_cnn(), x, y), 1 if q else 3)
    xi = rng.random((100 if q else 1000, 1, 28, 28), dtype=np.float32)
    record(f"fashion_cnn inference, {len(xi)} images", *inference_fns(torch_twins.fashion_cnn(), xi), 1 if q else 3)
    b = 8 if q else 128
    x = rng.random((b, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, b)
    record(f"resnet20 train step, batch {b}", *train_step_fns("resnet20", torch_twins.resnet20(), x, y), 1)
    n = 8 if q else 64
    for cfg in ({"c": 16, "o": 16, "k": 3, "s": 1, "hw": 32}, {"c": 32, "o": 64, "k": 3, "s": 2, "hw": 16},
                {"c": 16, "o": 32, "k": 5, "s": 1, "hw": 14}, {"c": 128, "o": 128, "k": 3, "s": 1, "hw": 8}):
        for bwd in (False, True):
            label = f"Conv2d {cfg['c']}->{cfg['o']} {cfg['k']}x{cfg['k']} s{cfg['s']} {cfg['hw']}px " + ("fwd+bwd" if bwd else "fwd")
            record(label, *layer_fns("conv", cfg, n, bwd), 1 if q else 5)
    record("MaxPool2d(2) 32ch 32px fwd+bwd", *layer_fns("maxpool", {"c": 32, "hw": 32}, n, True), 1 if q else 5)
    record("BatchNorm2d 32ch 32px fwd+bwd", *layer_fns("bn", {"c": 32, "hw": 32}, n, True), 1 if q else 5)
    steps = 2 if q else 20
    for model in ("fashion_cnn", "resnet20"):
        if a.only is not None and a.only not in f"peak RSS, {model}":
            continue
        s_mb, t_mb = peak_rss("striate", model, steps), peak_rss("torch", model, steps)
        rows.append({"workload": f"peak RSS, {model} training", "striate_MiB": s_mb, "torch_MiB": t_mb,
                     "ratio_vs_torch": s_mb / t_mb})
        print(f"peak RSS, {model} training ({steps} steps)            striate {s_mb:8.0f} MiB  "
              f"torch {t_mb:8.0f} MiB  ratio {s_mb / t_mb:5.2f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
