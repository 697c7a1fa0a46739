"""Containers: Sequential (a chain of layers) and ModuleList."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import ConfigError
from .module import Module, is_grad_enabled

__all__ = ['Sequential', 'ModuleList']


class Sequential(Module):
    """Layers run in order; backward runs them in reverse.

    Args:
        *layers: modules, named "0", "1", ... as in torch.nn.Sequential; or a
            single OrderedDict of name -> module.

    Shape:
        whatever the chain maps its input to.
    """

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            for name, m in layers[0].items():
                self._add(str(name), m)
        else:
            for i, m in enumerate(layers):
                self._add(str(i), m)

    def _add(self, name: str, m: Any) -> None:
        if not isinstance(m, Module):
            raise ConfigError(
                f"Sequential: item '{name}' must be a striate Module; received {type(m).__name__}"
            )
        self.add_module(name, m)

    def append(self, m: Module) -> "Sequential":
        self._add(str(len(self._modules)), m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice | str) -> Any:
        if isinstance(idx, str):
            return self._modules[idx]
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(items[idx]))
        return items[idx][1]

    def forward(self, x: Any) -> Any:
        from .fusion import run_inference, training_order   # (fusion imports the layers)
        if not self.training and not is_grad_enabled():
            return run_inference(list(self._modules.values()), x)   # conv+BN+ReLU fused
        order = training_order(list(self._modules.values()))         # ReLU after MaxPool
        object.__setattr__(self, "_order", order)
        for m in order:
            x = m(x)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        order = getattr(self, "_order", None) or list(self._modules.values())
        for m in reversed(order):
            dy = m.backward(dy)
        return dy

    def set_input_grad(self, enabled: bool = True) -> "Sequential":
        """Pass the setting to the first layer, the one that reads the input (see Module)."""
        object.__setattr__(self, "input_grad", bool(enabled))
        first = next(iter(self._modules.values()), None)
        if first is not None:
            first.set_input_grad(enabled)
        return self


class ModuleList(Module):
    """A list of modules registered as children "0", "1", ... (no forward of its own)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> "ModuleList":
        if not isinstance(m, Module):
            raise ConfigError(f"ModuleList: items must be Modules; received {type(m).__name__}")
        self.add_module(str(len(self._modules)), m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int) -> Module:
        return list(self._modules.values())[idx]
