"""im2col + GEMM against the DFT route, per convolution shape, and what "auto" picks.

    python benchmarks/conv_routes.py            # the 20 shapes the cost model was fitted to
    python benchmarks/conv_routes.py --quick    # three small shapes (a smoke test)

For each stride-1 shape (N, C, O, H=W, K) it times inference (``conv2d_infer``)
and a training step of the layer (``conv2d_forward`` + ``conv2d_backward``) with
each route, medians of interleaved repeats, and prints speed-ups (im2col time /
DFT time: above 1 the DFT route is faster), the cost model's ratio
(``dft_conv_costs``) and the NumPy route "auto" takes (its choice between these two;
with llvmlite installed "auto" may take the compiled kernels first, see
``conv_jit.JIT_MIN_WIDTH``).  Rerun it to re-fit ``DFT_MIN_RATIO_TRAIN`` /
``DFT_MIN_RATIO_INFER`` on another machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import striate  # noqa: E402,F401  (before NumPy: sleeping BLAS threads)
import numpy as np  # noqa: E402

from striate.functional import conv as C  # noqa: E402
from striate.functional.conv_dft import DftGeometry, dft_conv_costs  # noqa: E402

# (N, C, O, H=W, K): ResNet-20's stages, fashion_cnn and LeNet layers, VGG/ResNet-like
# layers with many channels and few images, large maps.
SHAPES = [
    (128, 3, 16, 32, 3), (128, 16, 16, 32, 3), (128, 32, 32, 16, 3), (128, 64, 64, 8, 3),
    (32, 64, 64, 56, 3), (8, 64, 64, 112, 3), (128, 8, 8, 32, 3), (64, 16, 16, 64, 3),
    (32, 32, 32, 64, 5), (64, 6, 16, 28, 5), (32, 96, 128, 28, 3), (16, 256, 256, 14, 3),
    (16, 512, 512, 7, 3), (32, 128, 128, 28, 3), (16, 64, 192, 27, 5), (64, 16, 32, 14, 5),
    (64, 32, 32, 32, 3), (64, 128, 128, 16, 3), (100, 16, 32, 14, 5), (32, 192, 64, 13, 3),
]
QUICK = [(8, 4, 8, 12, 3), (8, 16, 32, 14, 5), (4, 1, 8, 16, 5)]


def _median_ms(fns: dict, repeats: int) -> dict:
    for f in fns.values():                                   # warm-up
        f()
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def measure(shape: tuple, repeats: int) -> dict:
    """Times of both routes for one shape, the model's ratio and auto's choices."""
    n, c, o, h, k = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32)
    dy = rng.standard_normal((n, o, h, h), dtype=np.float32)
    pads = ((k // 2, k // 2), (k // 2, k // 2))

    def step(route: str):
        def run() -> None:
            _, cache = C.conv2d_forward(x, w, None, padding=pads, algorithm=route)
            C.conv2d_backward(dy, cache)
        return run

    def infer(route: str):
        return lambda: C.conv2d_infer(x, w, None, padding=pads, algorithm=route)

    ms = _median_ms({"infer_im2col": infer("im2col"), "infer_dft": infer("dft"),
                     "train_im2col": step("im2col"), "train_dft": step("dft")}, repeats)
    direct, dft = dft_conv_costs(DftGeometry(n, c, o, (h, h), (k, k), pads, (1, 1)))
    auto = {mode: C._numpy_route(x, w, (1, 1), pads, (1, 1), 1, "auto", mode == "train")
            for mode in ("train", "infer")}
    return {"shape": shape, **ms, "model_ratio": direct / dft, "auto": auto}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three small shapes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    shapes, repeats = (QUICK, 1) if args.quick else (SHAPES, args.repeats)
    rows = []
    print(f"{'N, C, O, H, K':22s} {'infer x':>8s} {'train x':>8s} {'model':>6s}  auto (train/infer)")
    for shape in shapes:
        r = measure(shape, repeats)
        rows.append(r)
        print(f"{str(shape):22s} {r['infer_im2col'] / r['infer_dft']:8.2f} "
              f"{r['train_im2col'] / r['train_dft']:8.2f} {r['model_ratio']:6.2f}  "
              f"{r['auto']['train']}/{r['auto']['infer']}", flush=True)
    return rows


if __name__ == "__main__":
    main()
