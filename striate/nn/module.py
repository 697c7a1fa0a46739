"""The base class of every layer and model.

A Module holds parameters (trainable), buffers (state such as BatchNorm's
running statistics) and child modules, in insertion order, and names them as
PyTorch does (``features.0.weight``), so ``state_dict()`` keys match the same
``torch.nn`` model.  ``y = module(x)`` runs ``forward`` and keeps what
``backward`` needs; ``dx = module.backward(dy)`` returns the input gradient and
adds parameter gradients into ``param.grad``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from ..errors import DTypeError, ShapeError, StateDictError, StateError
from .parameter import Parameter

_grad_enabled = True

__all__ = ['Module', 'no_grad', 'is_grad_enabled']


class no_grad:
    """Context manager: forward passes inside it keep no cache for backward."""

    def __enter__(self) -> "no_grad":
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = False
        return self

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._prev


def is_grad_enabled() -> bool:
    """Whether forward passes currently keep caches for backward."""
    return _grad_enabled


class Module:
    """Base class: parameters, buffers, children, train/eval and state dicts."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "Module":
        obj = super().__new__(cls)
        # The constructor arguments, kept so a model's architecture can be written
        # as JSON and rebuilt without the code that built it (striate.save/load).
        object.__setattr__(obj, "_init_args", (args, kwargs))
        return obj

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_parent", None)
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_cache", None)

    # ------------------------------------------------------------------ registry
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise StateError(
                f"{type(self).__name__}.__init__ must call super().__init__() "
                f"before assigning '{name}'"
            )
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            if value is None:
                del self._buffers[name]
                object.__setattr__(self, name, None)
            else:
                self._buffers[name] = value
            return
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
            object.__setattr__(value, "_parent", (self, name))
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a placeholder such as a disabled bias)."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Add a buffer: state saved in ``state_dict`` but not trained."""
        self.__dict__.pop(name, None)
        if value is None:
            object.__setattr__(self, name, None)
            return
        self._buffers[name] = value

    def set_buffer(self, name: str, value: np.ndarray) -> None:
        """Replace the array of an existing buffer."""
        self._buffers[name] = value

    def add_module(self, name: str, module: "Module") -> None:
        """Add a child module under ``name``."""
        setattr(self, name, module)

    # ------------------------------------------------------------------ naming
    @property
    def path(self) -> str:
        """This module's dotted path from the root of its model ('' for the root)."""
        parts = []
        node = self
        seen = 0
        while node._parent is not None and seen < 1000:
            parent, name = node._parent
            if parent._modules.get(name) is not node:
                break
            parts.append(name)
            node = parent
            seen += 1
        return ".".join(reversed(parts))

    def where(self) -> str:
        """'features.3 (Conv2d)' — how error messages name this module."""
        p = self.path
        return f"{p} ({type(self).__name__})" if p else type(self).__name__

    # ------------------------------------------------------------------ traversal
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Every module in the tree, itself first, each once, with its path."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            kids = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its PyTorch-style name (``0.weight``), each once."""
        seen: set[int] = set()
        for mname, mod in self.named_modules(prefix):
            for pname, p in mod._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mname, mod in self.named_modules(prefix):
            for bname, b in mod._buffers.items():
                yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers():
            yield b

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(p.data.size for p in self.parameters()))

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # Whether backward computes the gradient with respect to this module's input.
    input_grad = True

    def set_input_grad(self, enabled: bool = True) -> "Module":
        """Whether ``backward`` returns the gradient with respect to the model's input.

        PyTorch skips that work when the input has ``requires_grad=False``, as in
        training; ``set_input_grad(False)`` does the same here: the first layer
        (a convolution or linear layer, possibly the first of nested Sequentials)
        computes only its parameter gradients and the model's ``backward``
        returns None. Saliency maps need it on (the default). Layers that do not
        support skipping ignore it.

        Returns:
            self.
        """
        object.__setattr__(self, "input_grad", bool(enabled))
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (None, or zeros if not set_to_none)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def to(self, dtype: Any) -> "Module":
        """Cast every floating parameter and buffer to ``dtype`` in place."""
        dt = np.dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                p.data = p.data.astype(dt)
                p.grad = None if p.grad is None else p.grad.astype(dt)
            for k, b in m._buffers.items():
                if b.dtype.kind == "f":
                    m._buffers[k] = b.astype(dt)
            m._cache = None
        return self

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by PyTorch-style key, as copies."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mname, mod in self.named_modules():
            for pname, p in mod._parameters.items():
                out[f"{mname}.{pname}" if mname else pname] = p.data.copy()
            for bname, b in mod._buffers.items():
                out[f"{mname}.{bname}" if mname else bname] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state: "dict[str, Any]", strict: bool = True) -> None:
        """Copy values from ``state`` (NumPy arrays or anything with ``__array__``).

        Raises:
            StateDictError: naming every missing, unexpected and mis-shaped key
                (missing/unexpected only when ``strict``).
        """
        targets: dict[str, tuple[Module, str, bool]] = {}
        for mname, mod in self.named_modules():
            for pname in mod._parameters:
                targets[f"{mname}.{pname}" if mname else pname] = (mod, pname, True)
            for bname in mod._buffers:
                targets[f"{mname}.{bname}" if mname else bname] = (mod, bname, False)
        arrays = {k: _as_numpy(v) for k, v in state.items()}
        missing = [k for k in targets if k not in arrays]
        unexpected = [k for k in arrays if k not in targets]
        mismatched = []
        for k, (mod, name, is_param) in targets.items():
            if k not in arrays:
                continue
            cur = mod._parameters[name].data if is_param else mod._buffers[name]
            if tuple(arrays[k].shape) != tuple(cur.shape):
                mismatched.append(f"{k}: model has {tuple(cur.shape)}, file has {tuple(arrays[k].shape)}")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("mis-shaped keys: " + "; ".join(mismatched))
        if problems:
            raise StateDictError(
                f"state dict does not fit {type(self).__name__}: " + " | ".join(problems)
            )
        for k, (mod, name, is_param) in targets.items():
            if k not in arrays:
                continue
            if is_param:
                p = mod._parameters[name]
                p.data = arrays[k].astype(p.data.dtype, copy=True)
            else:
                mod._buffers[name] = arrays[k].astype(mod._buffers[name].dtype, copy=True)

    # ------------------------------------------------------------------ running
    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _keep(self, cache: Any) -> None:
        """Store the forward cache for backward (dropped under ``no_grad``)."""
        object.__setattr__(self, "_cache", cache if _grad_enabled else None)

    def _take(self) -> Any:
        """Return the forward cache; error if forward did not run (with grad)."""
        cache = self._cache
        if cache is None:
            raise StateError(
                f"{self.where()}: backward() called before forward() "
                "(or forward ran under no_grad)"
            )
        return cache

    # ------------------------------------------------------------------ input checks
    def _float_input(self, x: Any, dtype: np.dtype | None = None) -> np.ndarray:
        """Return ``x`` as a floating array (cast to ``dtype`` if given)."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype.kind != "f":
            raise DTypeError(
                f"{self.where()} expects a floating-point input (float32 or float64); "
                f"received dtype {x.dtype}. Convert with x.astype(np.float32) "
                "(and scale images to [0, 1])."
            )
        if dtype is not None and x.dtype != dtype:
            x = x.astype(dtype)
        return x

    def _check_ndim(self, x: np.ndarray, pattern: tuple, extra: str = "") -> None:
        """Check ``x`` against a pattern such as ('N', 16, 'H', 'W').

        Integers in the pattern must match exactly; strings are free sizes.
        """
        ok = x.ndim == len(pattern) and all(
            isinstance(p, str) or x.shape[i] == p for i, p in enumerate(pattern)
        )
        if not ok:
            want = "(" + ", ".join(str(p) for p in pattern) + ")"
            raise ShapeError(
                f"{self.where()} expects input {want}; received {tuple(x.shape)}{extra}"
            )

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


def _as_numpy(v: Any) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v)
