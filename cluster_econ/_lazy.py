"""Lazy public names for packages, so that ``import cluster_econ`` stays light.

A package lists its public names and where each lives; the first access imports that module and
caches the value in the package's namespace (PEP 562 ``__getattr__``).

:func:`pin_functions` gives a package attribute one meaning when a function and a submodule share
its name (``cluster_econ.panel``, the estimator, and the ``cluster_econ/panel/`` subpackage;
``cluster_econ.schema.validate``, the function, and its module): the attribute is always the
function, and the submodule is reached by ``from cluster_econ.panel import Panel``-style imports.
"""

from __future__ import annotations

import importlib
import sys
import types
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
        return sorted(set(names) | set(getattr(sys.modules[package], "__all__", ())))

    return module_getattr, module_dir


def pin_functions(package: str, functions: Mapping[str, tuple[str, str]]) -> None:
    """Make ``package.<name>`` the function ``functions[name] = (module, attribute)``, always.

    Python binds a submodule to its package's attribute of the same name whenever the submodule
    is imported (``import cluster_econ.panel.container`` sets ``cluster_econ.panel``), which would
    replace a function of that name at an unpredictable moment. Here each name is a property of the
    package's module class: reading it gives the function (imported on first use), the import
    system's binding of the submodule is ignored, and an explicit assignment (a test's
    ``monkeypatch``) is kept until deleted. The submodule itself stays importable by its dotted
    name; ``import package.name as m`` gives the function, ``from package.name import X`` the
    submodule's ``X``.
    """
    module = sys.modules[package]
    overrides: dict[str, Any] = module.__dict__.setdefault("__pinned_overrides__", {})

    def pinned(name: str, target: tuple[str, str]) -> property:
        module_name, attr = target

        def get(self: types.ModuleType) -> Any:
            if name in overrides:
                return overrides[name]
            return getattr(importlib.import_module(module_name), attr)

        def set_(self: types.ModuleType, value: Any) -> None:
            if isinstance(value, types.ModuleType) and value.__name__ == f"{package}.{name}":
                return  # the import system binding the submodule: the name stays the function
            overrides[name] = value

        def delete(self: types.ModuleType) -> None:
            overrides.pop(name, None)

        return property(get, set_, delete, doc=f"{module_name}.{attr}")

    namespace = {name: pinned(name, target) for name, target in functions.items()}
    cls = type(f"{package}.<module>", (type(module),), namespace)
    module.__class__ = cls
