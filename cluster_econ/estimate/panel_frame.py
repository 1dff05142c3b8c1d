"""The estimation frame of a Panel: one row per enterprise-year with every column a formula may use.

Every estimator given a :class:`~cluster_econ.panel.Panel` instead of a DataFrame (``ce.feols(
"log(value_added) ~ schooling_years | year", panel)``) reads ``enterprise_year`` joined with

- ``enterprise`` on ``enterprise_id``: cluster, country, industry, product, founding year, founder
  origin, spin-off parent, exit year;
- ``manager``: the columns of the **manager in charge** of the enterprise in the year (schooling,
  sector experience, prior occupation, generation, management training, ``manager_id``...). The
  manager in charge is the package's one definition
  (:func:`cluster_econ.panel.derive.manager_schooling_by_year`): the manager with the latest
  ``start_year`` at or before the year, else the enterprise's current manager (highest
  generation, then last ``manager_id``). ``schooling_years`` is exactly that function's value, so
  a regression on schooling uses the schooling the propositions and the phase profile use;
- ``cluster_year`` on ``(cluster_id, year)``: the cluster's phase and price index when present.

A column of ``enterprise_year`` wins over a joined column of the same name (and ``enterprise``
over ``manager`` over ``cluster_year``). Rows are those of ``enterprise_year``, in order, indexed
0 to n-1; nothing is dropped (an enterprise-year without a manager or cluster-year row gets
missing values there).

Written here because no library knows the canonical tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import SchemaError

__all__ = ["panel_frame"]


def panel_frame(panel: Any) -> pd.DataFrame:
    """``enterprise_year`` with the enterprise, manager-in-charge and cluster-year columns joined
    (see the module docstring)."""
    ey = panel.enterprise_year
    ent = panel.enterprise
    cols = ["enterprise_id"] + [c for c in ent.columns if c not in ey.columns]
    frame = ey.merge(ent[cols], on="enterprise_id", how="left", validate="many_to_one")
    joined: dict[str, pd.Series] = {}
    manager = getattr(panel, "manager", None)
    if manager is not None and len(manager) and "enterprise_id" in manager.columns:
        joined.update(_manager_in_charge(panel, manager, frame))
    cluster_year = getattr(panel, "cluster_year", None)
    if cluster_year is not None and {"cluster_id", "year"} <= set(cluster_year.columns) \
            and {"cluster_id", "year"} <= set(frame.columns):
        joined.update(_cluster_year_columns(cluster_year, frame, taken=set(joined)))
    if not joined:
        return frame
    return pd.concat([frame, pd.DataFrame(joined, index=frame.index)], axis=1)


def _manager_in_charge(panel: Any, manager: pd.DataFrame, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Columns of the manager in charge of each row of ``frame``."""
    from cluster_econ.panel.derive import manager_schooling_by_year

    add = [c for c in manager.columns if c != "enterprise_id" and c not in frame.columns]
    if not add:
        return {}
    # the definition applied to row numbers gives the row of the manager in charge (NaN: none)
    numbered = panel.replace(manager=manager.assign(schooling_years=np.arange(len(manager), dtype=float)))
    at = manager_schooling_by_year(numbered, frame).to_numpy(dtype=float)
    rows = np.where(np.isnan(at), -1, at).astype(np.int64)
    joined: dict[str, pd.Series] = {}
    for c in add:
        if c == "schooling_years":
            joined[c] = manager_schooling_by_year(panel, frame).astype("float64")
        else:
            joined[c] = manager[c].reset_index(drop=True).reindex(rows).set_axis(frame.index)
    return joined


def _cluster_year_columns(cluster_year: pd.DataFrame, frame: pd.DataFrame,
                          taken: set[str]) -> dict[str, pd.Series]:
    """Columns of the cluster-year of each row of ``frame``."""
    add = [c for c in cluster_year.columns
           if c not in ("cluster_id", "year") and c not in frame.columns and c not in taken]
    if not add:
        return {}

    def key(df: pd.DataFrame) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays([df["cluster_id"].astype(str).to_numpy(),
                                          pd.to_numeric(df["year"], errors="coerce").to_numpy(dtype=float)])

    cy_key = key(cluster_year)
    if cy_key.has_duplicates:
        dup = cluster_year[cy_key.duplicated(keep=False)]
        raise SchemaError(f"table cluster_year: (cluster_id, year) is not unique ({len(dup)} rows, for example "
                          f"{dup[['cluster_id', 'year']].head(3).to_dict('records')}); validate the panel first")
    rows = cy_key.get_indexer(key(frame))
    return {c: cluster_year[c].reset_index(drop=True).reindex(rows).set_axis(frame.index) for c in add}
