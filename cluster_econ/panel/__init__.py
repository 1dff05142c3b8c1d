"""The Panel container, derived variables, entry, exit and spin-off lineage.

``cluster_econ.panel`` is also the panel-data estimator: ``ce.panel(formula, data, model="re")``
calls :func:`cluster_econ.estimate.panel_models.panel`. Python binds this subpackage to the
attribute ``cluster_econ.panel`` as soon as anything imports it, which would hide an estimator
of the same name; making the package callable keeps both the package layout and the estimator's
public name, whatever was imported first.
"""

import sys
import types
from typing import Any

from cluster_econ.panel.container import Panel


def read_panel(directory: str) -> Panel:
    """Read a Panel written by :meth:`Panel.to_parquet` (checks the manifest's hashes)."""
    from cluster_econ.io.parquet import read_panel as _read

    return _read(directory)


def open_panel(source: str) -> Panel:
    """The Panel a command line names: the word ``demo`` (the built-in synthetic universe) or a
    panel folder written by ``cluster-econ normalize`` / :meth:`Panel.to_parquet`."""
    from pathlib import Path

    from cluster_econ.errors import InputError

    if source == "demo":
        from cluster_econ.datasets import demo

        return demo()
    if not Path(source).is_dir():
        raise InputError(f"{source}: not a panel folder (or the word 'demo')")
    return read_panel(source)


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from cluster_econ.estimate.panel_models import panel

        return panel(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["Panel", "open_panel", "read_panel"]
