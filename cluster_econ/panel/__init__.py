"""The Panel container, derived variables, entry, exit and spin-off lineage.

Import from it by its dotted name (``from cluster_econ.panel import Panel, read_panel``). The
attribute ``cluster_econ.panel`` is the panel-data estimator
(:func:`cluster_econ.estimate.panel_models.panel`), not this subpackage: see
:func:`cluster_econ._lazy.pin_functions`.
"""

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


__all__ = ["Panel", "open_panel", "read_panel"]
