"""fold_batchnorm: folded models equal the unfolded eval-mode model, with fewer BatchNorms.

Speed is not asserted (timings are flaky); measured with bench_fold's method
(``PYTHONPATH=. python tests/test_fold.py``: models run alternately, best of
60, one BLAS thread, on a loaded 2-core machine), float32:
  resnet() below at widths (16, 32, 16), batch 8 of 3x32x32, 11 -> 0 BatchNorms:
    unfolded 4.74-4.85 ms, folded 4.05-4.09 ms per forward (1.17-1.19x);
  striate.models.resnet18(num_classes=10), batch 4 of 3x64x64, 20 -> 0 BatchNorms:
    unfolded 29.6 ms, folded 28.3-29.2 ms (1.01-1.05x: the convolutions dominate).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from striate.errors import ShapeError
from striate.fold import count_batchnorm, fold_batchnorm
from striate.nn import (AdaptiveAvgPool2d, Add, BasicBlock, BasicConv2d, BatchNorm1d, BatchNorm2d,
                        Bottleneck, Conv1d, Conv2d, Flatten, Graph, Identity, InceptionModule, Linear,
                        MaxPool2d, ReLU, Sequential, conv1x1)
from tests.util import rel_err

TOL = 1e-5


def warm_up(model, shape, seed=0, steps=3):
    """Give the BatchNorms non-trivial statistics: random affine params, a few training forwards."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d)) and m.weight is not None:
            m.weight.data = rng.uniform(0.5, 1.5, m.weight.shape).astype(m.weight.dtype)
            m.bias.data = rng.normal(0, 0.5, m.bias.shape).astype(m.bias.dtype)
    model.train()
    for _ in range(steps):
        model(rng.normal(0.3, 2.0, shape).astype(_dtype(model)))
    return model


def _dtype(model):
    return next(model.parameters()).dtype


def check_folded(model, shape, expect_left=0, seed=1):
    """Fold, then compare with the eval-mode original; return the folded model."""
    before = count_batchnorm(model)
    state = {k: v.copy() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert model.training, "the original keeps its mode"
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=f"original changed: {k}")
    assert not folded.training
    assert before > expect_left
    assert count_batchnorm(folded) == expect_left
    x = np.random.default_rng(seed).normal(0.3, 2.0, shape).astype(_dtype(model))
    ref = model.eval()(x)
    got = folded(x)
    assert rel_err(got, ref) <= TOL, rel_err(got, ref)
    model.train()
    return folded


def resnet(dt=np.float64, w=(4, 8, 4)):
    a, b, c = w
    return Sequential(
        Conv2d(3, a, 3, padding=1, bias=False, dtype=dt, rng=0), BatchNorm2d(a, dtype=dt), ReLU(),
        BasicBlock(a, a, dtype=dt, rng=0),
        BasicBlock(a, b, stride=2, downsample=Sequential(conv1x1(a, b, 2, dtype=dt, rng=0),
                                                         BatchNorm2d(b, dtype=dt)), dtype=dt, rng=0),
        Bottleneck(b, c, stride=2, downsample=Sequential(conv1x1(b, 4 * c, 2, dtype=dt, rng=0),
                                                         BatchNorm2d(4 * c, dtype=dt)), dtype=dt, rng=0),
        AdaptiveAvgPool2d(1), Flatten(), Linear(4 * c, 6, dtype=dt, rng=0), BatchNorm1d(6, dtype=dt),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sequential_conv_bn_pairs(dtype):
    model = Sequential(
        Conv2d(3, 4, 3, bias=False, dtype=dtype, rng=0), BatchNorm2d(4, dtype=dtype), ReLU(),
        Conv2d(4, 5, 3, padding=1, groups=1, dtype=dtype, rng=0), BatchNorm2d(5, dtype=dtype),
        Flatten(), Linear(5 * 4 * 4, 3, dtype=dtype, rng=0), BatchNorm1d(3, dtype=dtype),
    )
    warm_up(model, (8, 3, 6, 6))
    folded = check_folded(model, (4, 3, 6, 6))
    assert isinstance(folded[1], Identity) and isinstance(folded[4], Identity)
    assert folded[0].bias is not None and folded[0].bias.dtype == dtype
    assert folded[0].weight.dtype == dtype
    keys = list(folded.state_dict())
    assert "0.bias" in keys and not any(k.startswith(("1.", "4.", "7.")) for k in keys)
    assert "6.weight" in keys   # later layers keep their names
    args, kwargs = folded[0]._init_args   # what striate.save records: now with a bias
    assert Conv2d(*args, **kwargs).bias is not None


def test_grouped_conv1d_and_bn1d():
    model = Sequential(Conv1d(4, 6, 3, groups=2, dtype=np.float64, rng=0), BatchNorm1d(6, dtype=np.float64))
    warm_up(model, (8, 4, 7))
    check_folded(model, (3, 4, 7))


def test_resnet_blocks_fold_completely():
    model = warm_up(resnet(), (6, 3, 8, 8))
    folded = check_folded(model, (2, 3, 8, 8))
    assert count_batchnorm(model) == 11   # stem 1, blocks 2 + 3 + 4, head 1
    block = folded[5]
    assert isinstance(block.bn3, Identity) and block.conv3.bias is not None
    assert isinstance(block.downsample[1], Identity)


def test_inception_folds_completely():
    model = Sequential(BasicConv2d(3, 6, kernel_size=3, padding=1, dtype=np.float64, rng=0),
                       InceptionModule(6, 2, 3, 4, 1, 2, 2, dtype=np.float64, rng=0),
                       MaxPool2d(2), AdaptiveAvgPool2d(1), Flatten())
    warm_up(model, (4, 3, 6, 6))
    folded = check_folded(model, (2, 3, 6, 6))
    assert isinstance(folded[1].branch3[1].bn, Identity)


def test_graph_folds_only_exclusive_conv_bn_edges():
    dt = np.float64
    g = Graph(["x"])
    g.add("conv1", Conv2d(3, 4, 3, padding=1, bias=False, dtype=dt, rng=0), "x")
    g.add("bn1", BatchNorm2d(4, dtype=dt), "conv1")                   # foldable
    g.add("relu1", ReLU(), "bn1")
    g.add("conv2", Conv2d(4, 4, 3, padding=1, dtype=dt, rng=0), "relu1")
    g.add("bn2", BatchNorm2d(4, dtype=dt), "conv2")                   # conv2 also feeds 'skip'
    g.add("skip", Add(), "bn2", "conv2")
    g.add("bn3", BatchNorm2d(4, dtype=dt), "skip")                    # input is not a conv
    g.add("conv3", Conv2d(4, 4, 1, dtype=dt, rng=0), "bn3")
    g.add("bn4", BatchNorm2d(4, dtype=dt), "conv3")                   # foldable
    g.output("bn4")
    warm_up(g, (6, 3, 5, 5))
    folded = check_folded(g, (2, 3, 5, 5), expect_left=2)
    assert [type(folded[n]).__name__ for n in ("bn1", "bn2", "bn3", "bn4")] == \
        ["Identity", "BatchNorm2d", "BatchNorm2d", "Identity"]
    assert folded.nodes[1].inputs == ("conv1",)


def test_graph_conv_that_is_an_output_is_not_folded():
    dt = np.float64
    g = Graph(["x"], nodes=[("conv", Conv2d(2, 2, 1, dtype=dt, rng=0), "x"),
                            ("bn", BatchNorm2d(2, dtype=dt), "conv")], outputs=["bn", "conv"])
    warm_up(g, (4, 2, 3, 3))
    folded = fold_batchnorm(g)
    assert count_batchnorm(folded) == 1


def test_mismatched_or_batch_stat_bn_is_left_alone():
    dt = np.float64
    model = Sequential(Linear(4, 3, dtype=dt, rng=0), BatchNorm2d(3, dtype=dt),
                       Conv2d(3, 3, 1, dtype=dt, rng=0),
                       BatchNorm2d(3, track_running_stats=False, dtype=dt))
    folded = fold_batchnorm(model)
    assert count_batchnorm(folded) == 2


def test_folded_model_still_validates_input():
    folded = fold_batchnorm(warm_up(resnet(), (4, 3, 8, 8)))
    with pytest.raises(ShapeError, match=r"0 \(Conv2d\)"):
        folded(np.ones((1, 2, 8, 8)))


def bench_fold(repeats: int = 60) -> tuple[float, float]:
    """Best seconds per forward (unfolded eval, folded) of a wider float32 resnet; not a test.

    The two models run alternately and the minimum is kept, so load from other
    processes inflates neither side more than the other.
    """
    model = warm_up(resnet(np.float32, (16, 32, 16)), (8, 3, 32, 32))
    model.eval()
    folded = fold_batchnorm(model)
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, m in enumerate((model, folded)):
            t0 = time.perf_counter()
            m(x)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0], best[1]


if __name__ == "__main__":
    before, after = bench_fold()
    print(f"unfolded {before * 1e3:.2f} ms, folded {after * 1e3:.2f} ms, "
          f"speed-up {before / after:.2f}x")
