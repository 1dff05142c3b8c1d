"""Lazy public names for packages, so that ``import cluster_econ`` stays light.

A package lists its public names and where each lives; the first access imports that module and
caches the value in the package's namespace (PEP 562 ``__getattr__``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, names: Mapping[str, str | tuple[str, str | None]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps a public name to a module path (the attribute of the same name in it) or to
    ``(module path, attribute)``; an attribute of ``None`` means the module itself.
    """

    def module_getattr(name: str) -> Any:
        try:
            target = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module_name, attr = (target, name) if isinstance(target, str) else target
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        sys.modules[package].__dict__[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted(names)

    return module_getattr, module_dir
