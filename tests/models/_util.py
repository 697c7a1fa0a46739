"""Shared checks of the model-zoo tests."""

from __future__ import annotations

import numpy as np


def forward_backward(model, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Run forward and backward; check shapes, finiteness and that every parameter got a gradient."""
    model.zero_grad()
    y = model(x)
    assert y.shape == (x.shape[0], num_classes)
    assert y.dtype == x.dtype
    assert np.all(np.isfinite(y))
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(y.dtype)
    dx = model.backward(dy)
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    assert np.any(dx != 0)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.shape == p.data.shape, name
        assert np.all(np.isfinite(p.grad)), name
    return y


def state_shapes(sd) -> list[tuple[str, tuple[int, ...]]]:
    """[(key, shape)] of a striate or torch state dict, in order."""
    return [(k, tuple(np.shape(v)) if not hasattr(v, "shape") else tuple(v.shape)) for k, v in sd.items()]


# Parameter gradients smaller than this fraction of the largest are compared at that scale.
NEAR_ZERO_GRAD = 1e-2


def compare_model(net, ref, x: np.ndarray, dtype, zero_grads: tuple[str, ...] = ()) -> None:
    """tests.util.compare_with_torch for whole models, against a float64 oracle.

    The torch model always runs in float64 on the same (exactly up-cast) weights,
    input and output gradient, and the striate model in ``dtype`` must match it
    within that dtype's tolerance.  (torch's own float32 is no oracle for deep
    nets: its conv backward drifts by ~1e-3 from the float64 result on ResNet-50,
    where striate's float32 stays within ~1e-6.)

    ``zero_grads`` names parameters whose gradient is zero in exact arithmetic (a conv
    bias right before a BatchNorm in training mode): both sides hold only rounding
    noise there, so they are checked to be negligible against the largest parameter
    gradient instead of being compared with each other.  Likewise a gradient more than
    NEAR_ZERO_GRAD times smaller than the largest is judged against that fraction of
    the largest (a bias before a ReLU and a batch norm over 4 samples: its float32
    rounding noise comes from the large gradients and reached 1.1-1.9e-4 of its own
    size for 2 of 12 inputs, with either convolution route).
    """
    import torch

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)    # the oracle's threads fight BLAS's for 2 cores otherwise
    try:
        _compare(net, ref, x, np.dtype(dtype), zero_grads)
    finally:
        torch.set_num_threads(prev_threads)


def _compare(net, ref, x, dtype, zero_grads) -> None:
    import torch

    from tests.util import TOL, assert_close, copy_to_torch

    ref = ref.to(torch.float64)
    copy_to_torch(net, ref)
    ref.train(net.training)
    x = np.asarray(x, dtype=dtype)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    y = net(x)
    ty = ref(tx)
    assert y.dtype == dtype
    assert_close(y, ty.detach().numpy(), dtype, "output")
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
    net.zero_grad()
    ref.zero_grad()
    dx = net.backward(dy)
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    assert_close(dx, tx.grad.numpy(), dtype, "input grad")
    tparams = dict(ref.named_parameters())
    scale = max(float(np.abs(p.grad.numpy()).max()) for p in tparams.values())
    for name, p in net.named_parameters():
        want = tparams[name].grad.numpy()
        if name in zero_grads:
            assert np.abs(p.grad).max() <= TOL[dtype] * scale, f"grad of {name} is not ~0"
            assert np.abs(want).max() <= TOL[dtype] * scale, f"torch grad of {name} is not ~0"
        else:
            floor = NEAR_ZERO_GRAD * scale
            err = float(np.abs(p.grad - want).max(initial=0.0)) / max(float(np.abs(want).max(initial=0.0)), floor)
            assert err <= TOL[dtype], f"grad of {name}: relative error {err:.3g} > {TOL[dtype]:g}"
    tbufs = dict(ref.named_buffers())
    for name, b in net.named_buffers():
        if np.asarray(b).dtype.kind == "f":
            assert_close(b, tbufs[name].numpy(), dtype, f"buffer {name}")
