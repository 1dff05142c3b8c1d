"""The Panel container, derived variables, entry, exit and spin-off lineage."""

from cluster_econ.panel.container import Panel


def read_panel(directory: str) -> Panel:
    """Read a Panel written by :meth:`Panel.to_parquet` (checks the manifest's hashes)."""
    from cluster_econ.io.parquet import read_panel as _read

    return _read(directory)


__all__ = ["Panel", "read_panel"]
