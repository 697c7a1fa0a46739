"""The model registry: build a zoo model by name and remember how it was built.

    @register("fashion_cnn")
    def fashion_cnn(num_classes=10, in_channels=1, *, dtype=None, rng=None): ...

    model = get_model("fashion_cnn", num_classes=5)
    model.zoo_spec   # {"name": "fashion_cnn", "kwargs": {"num_classes": 5, ...}}
    same = get_model(model.zoo_spec["name"], **model.zoo_spec["kwargs"])

Every registered builder, called through :func:`get_model` or directly, sets
``model.zoo_spec``: the name and ALL its arguments (defaults filled in), in a
JSON-friendly form (``dtype`` as its name, e.g. ``"float32"``; ``rng`` left out,
since it only decides the initial weights, which a saved file replaces).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from ..nn.module import Module

__all__ = ["register", "get_model", "list_models"]

_REGISTRY: dict[str, Callable[..., Module]] = {}


def register(name: str) -> Callable[[Callable[..., Module]], Callable[..., Module]]:
    """Decorator: register a model builder under ``name``.

    Args:
        name: the name :func:`get_model` will know it by (unique).

    Returns:
        A decorator returning a wrapper of the builder that validates its
        arguments and sets ``zoo_spec`` on the model it returns.

    Raises:
        ConfigError: ``name`` is not a non-empty string or is already registered.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"register: a model name must be a non-empty string; received {name!r}")
    if name in _REGISTRY:
        raise ConfigError(f"register: a model named '{name}' is already registered")

    def decorator(builder: Callable[..., Module]) -> Callable[..., Module]:
        sig = inspect.signature(builder)

        @functools.wraps(builder)
        def build(*args: Any, **kwargs: Any) -> Module:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                accepted = ", ".join(sig.parameters)
                raise ConfigError(
                    f"model '{name}': {exc}; it accepts {accepted}"
                ) from None
            bound.apply_defaults()
            model = builder(*bound.args, **bound.kwargs)
            model.zoo_spec = {"name": name, "kwargs": _spec_kwargs(bound.arguments)}
            return model

        _REGISTRY[name] = build
        return build

    return decorator


def _spec_kwargs(arguments: dict[str, Any]) -> dict[str, Any]:
    """The builder arguments in JSON-friendly form: dtype by name, rng left out."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if key == "rng":
            continue
        if key == "dtype":
            value = np.dtype(value or np.float32).name
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def get_model(name: str, **kwargs: Any) -> Module:
    """Build the registered model ``name`` with the builder's keyword arguments.

    Args:
        name: a name from :func:`list_models`.
        **kwargs: the builder's arguments (``num_classes``, ``in_channels``,
            family options, ``dtype``, ``rng``).

    Returns:
        The model, with ``model.zoo_spec = {"name": name, "kwargs": {...}}``.

    Raises:
        ConfigError: an unknown name (the message lists the available ones) or
            an argument the builder does not take or cannot use.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ConfigError(
            f"get_model: unknown model {name!r}; available models are: "
            + ", ".join(list_models())
        )
    return _REGISTRY[name](**kwargs)


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def model_signature(name: str) -> inspect.Signature:
    """The builder's signature (its arguments and defaults) of the registered model ``name``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available models are: " + ", ".join(list_models()))
    return inspect.signature(_REGISTRY[name])


def model_table() -> list[dict[str, Any]]:
    """Every registered model with its default parameter count and one-line description.

    Builds each model once with its defaults, under ``striate.init.skip_init`` (no
    random fills: the weights' pages are never touched, so VGG's 138M cost nothing).
    """
    from .. import init

    rows = []
    for name in list_models():
        with init.skip_init():
            model = _REGISTRY[name]()
        doc = (inspect.getdoc(_REGISTRY[name]) or "").splitlines()
        rows.append({"name": name, "parameters": model.num_parameters(),
                     "description": doc[0] if doc else ""})
        del model
    return rows
