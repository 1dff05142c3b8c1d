"""The Panel: the canonical tables of one study, their row audit and their provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import SchemaError

AUDIT_COLUMNS = ["source", "table", "step", "rows", "reason"]


class Panel:
    """Container of the canonical tables (see ``data_schemas/``).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Canonical tables by name: ``enterprise`` and ``enterprise_year`` are required;
        ``manager``, ``cluster_year``, ``rct_assignment`` and ``deflator`` are optional. Columns
        beyond the canonical ones (unmapped source columns, prefixed ``src_``) are kept.
    audit : DataFrame, optional
        Row accounting, one row per (source, table, step): ``rows`` read, kept, rejected, with a
        ``reason``. Every row read appears as kept or as rejected with its reason.
    rejects : mapping of str to DataFrame, optional
        What quarantine set aside: per table, the rejected rows with their original values,
        ``_reject_reason``, ``_cascade`` and ``_source_row``; under ``"cells"``, the values set
        missing (table, column, rule, row, source, key, value).
    metadata : mapping, optional
        Provenance: variable and value labels of the sources, file and mapping hashes, a
        ``synthetic`` flag for simulated data, a ``label``.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        audit: pd.DataFrame | None = None,
        rejects: Mapping[str, pd.DataFrame] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(tables, Mapping):
            raise SchemaError(
                f"a Panel is built from a mapping of table name to DataFrame, not {type(tables).__name__}"
            )
        unknown = set(tables) - set(schema.TABLES)
        if unknown:
            raise SchemaError(f"unknown canonical tables {sorted(unknown)}; the tables are {', '.join(schema.TABLES)}")
        missing = [t for t in schema.REQUIRED_TABLES if t not in tables]
        if missing:
            raise SchemaError(f"a Panel needs the tables {', '.join(missing)}")
        self.tables: dict[str, pd.DataFrame] = {k: v for k, v in tables.items() if v is not None}
        self.audit: pd.DataFrame = (
            audit.reset_index(drop=True) if audit is not None else pd.DataFrame(columns=AUDIT_COLUMNS)
        )
        self.rejects: dict[str, pd.DataFrame] = dict(rejects or {})
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- table access ---------------------------------------------------------------------
    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def __contains__(self, table: object) -> bool:
        return table in self.tables

    def get(self, table: str) -> pd.DataFrame | None:
        return self.tables.get(table)

    @property
    def enterprise(self) -> pd.DataFrame:
        return self.tables["enterprise"]

    @property
    def enterprise_year(self) -> pd.DataFrame:
        return self.tables["enterprise_year"]

    @property
    def manager(self) -> pd.DataFrame | None:
        return self.tables.get("manager")

    @property
    def cluster_year(self) -> pd.DataFrame | None:
        return self.tables.get("cluster_year")

    @property
    def rct_assignment(self) -> pd.DataFrame | None:
        return self.tables.get("rct_assignment")

    @property
    def deflator(self) -> pd.DataFrame | None:
        return self.tables.get("deflator")

    def has_column(self, table: str, column: str) -> bool:
        """True if the table exists and the column has at least one non-missing value."""
        df = self.tables.get(table)
        return df is not None and column in df.columns and bool(df[column].notna().any())

    def replace(self, **tables: pd.DataFrame) -> Panel:
        """A new Panel with some tables replaced (audit, rejects and metadata carried over)."""
        new = dict(self.tables)
        new.update(tables)
        return Panel(new, self.audit, self.rejects, self.metadata)

    # -- derived data (implemented in cluster_econ.panel.derive) --------------------------
    def lag(self, column: str, periods: int = 1) -> pd.Series:
        """Value of ``column`` in ``year - periods`` for the same enterprise (missing across gaps)."""
        from cluster_econ.panel.derive import lag

        return lag(self.enterprise_year, column, periods)

    def lead(self, column: str, periods: int = 1) -> pd.Series:
        from cluster_econ.panel.derive import lag

        return lag(self.enterprise_year, column, -periods)

    def entry_exit(self) -> pd.DataFrame:
        from cluster_econ.panel.derive import entry_exit

        return entry_exit(self)

    def lineage(self) -> pd.DataFrame:
        from cluster_econ.panel.derive import lineage

        return lineage(self.enterprise)

    def with_cluster_year(self) -> Panel:
        """A Panel whose ``cluster_year`` holds the aggregates of ``enterprise_year`` (existing
        cluster-level columns such as ``price_index`` and ``phase`` are kept)."""
        from cluster_econ.panel.derive import aggregate_cluster_year

        return self.replace(cluster_year=aggregate_cluster_year(self))

    # -- persistence ------------------------------------------------------------------------
    def to_parquet(self, directory: str, partition_by: Sequence[str] | str | None = None) -> str:
        """Write the panel folder (Parquet files and a manifest), replacing it in one step.

        ``partition_by`` (for example ``["country", "survey_round"]``) writes each table as a
        hive-style dataset partitioned by those columns, readable by DuckDB, polars and Dask as it
        is (see :mod:`cluster_econ.io.parquet`). Returns the folder.
        """
        from cluster_econ.io.parquet import write_panel

        return write_panel(self, directory, partition_by=partition_by)

    def audit_summary(self) -> pd.DataFrame:
        """Rows per source and table: read from the file, added (recalled years), kept, dropped
        (identical duplicates, superseded recalls) and rejected. For the unit table of each source
        ``read + added == kept + dropped + rejected``."""
        steps = ["read", "added", "kept", "dropped", "rejected"]
        if self.audit.empty:
            return pd.DataFrame(columns=["source", "table", *steps])
        counted = self.audit[self.audit["step"].isin(steps)]
        pivot = counted.pivot_table(
            index=["source", "table"], columns="step", values="rows", aggfunc="sum", fill_value=0
        )
        for col in steps:
            if col not in pivot.columns:
                pivot[col] = 0
        return pivot[steps].astype("int64").reset_index().rename_axis(columns=None)

    # -- display ------------------------------------------------------------------------------
    def summary(self) -> str:
        lines = []
        label = self.metadata.get("label")
        if label:
            lines.append(str(label))
        if self.metadata.get("synthetic"):
            lines.append("SYNTHETIC DATA: simulated by cluster_econ.simulate, not a real survey")
        for name in schema.TABLES:
            df = self.tables.get(name)
            if df is not None:
                lines.append(f"  {name:16s} {len(df):>9,d} rows x {df.shape[1]:>3d} columns")
        ey = self.enterprise_year
        if len(ey) and "year" in ey:
            lines.append(
                f"  years {int(ey['year'].min())}-{int(ey['year'].max())}, "
                f"{self.enterprise['cluster_id'].nunique()} clusters, "
                f"{ey['enterprise_id'].nunique():,d} enterprises observed"
            )
        cy = self.cluster_year
        if cy is not None and "phase" in cy and cy["phase"].notna().any():
            counts = cy["phase"].value_counts()
            lines.append("  cluster-years by phase: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        n_rej = sum(len(r) for r in self.rejects.values())
        if n_rej:
            lines.append(f"  rejected rows (quarantine): {n_rej:,d}")
        return "Panel\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
