"""Design-based descriptive tables: means, shares and totals by group (for example by phase) with
their linearised standard errors, rendered like every other table.

The numbers come from :func:`cluster_econ.estimate.survey.survey_mean` and
:func:`~cluster_econ.estimate.survey.survey_total`; each group is a domain of the full design, so
its standard error keeps every primary sampling unit (as R's ``svyby``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cluster_econ.tables._render import TableError
from cluster_econ.tables.descriptive import DescriptiveTable, descriptive_table

__all__ = ["survey_summary", "survey_table"]

STATISTICS = ("mean", "total")


def survey_summary(data: pd.DataFrame, variables: Sequence[str], design: Any, by: str | None = None,
                   statistic: str = "mean") -> pd.DataFrame:
    """Long frame of design-based estimates: one row per variable (level, for a categorical
    variable: its share) and group, with ``estimate``, ``std_error``, ``n``, interval and ``df``."""
    from cluster_econ.estimate.survey import survey_mean, survey_total

    if statistic not in STATISTICS:
        raise TableError(f"survey table: statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
    if isinstance(variables, str):
        variables = [variables]
    fn = survey_mean if statistic == "mean" else survey_total
    parts = [fn(data, v, design, by=by) for v in variables]
    return pd.concat(parts, ignore_index=True)


def survey_table(data: pd.DataFrame, variables: Sequence[str], design: Any, by: str | None = None,
                 statistic: str = "mean", digits: int = 3, labels: Mapping[str, str] | None = None,
                 title: str | None = None) -> DescriptiveTable:
    """A table of design-based means (shares for categorical variables) or totals of
    ``variables``, one column pair (estimate, standard error) per group of ``by``.

    Parameters
    ----------
    data : DataFrame
        The full sample (every row of the design: groups are domains, never cut out).
    variables : list of str
    design : SurveyDesign
    by : str, optional
        Grouping column (for example ``phase``).
    statistic : {"mean", "total"}
    digits, labels, title : as :func:`cluster_econ.tables.descriptive_table`.
    """
    long = survey_summary(data, variables, design, by=by, statistic=statistic)
    key = by if by is not None else None
    if key is None:
        wide = long.set_index("term")[["estimate", "std_error"]]
        wide.columns = pd.MultiIndex.from_tuples([("All", "Estimate"), ("All", "s.e.")])
    else:
        wide = long.pivot(index="term", columns=key, values=["estimate", "std_error"])
        wide = wide.swaplevel(0, 1, axis=1)
        groups = [g for g in long[key].drop_duplicates().tolist()]
        wide = wide.reindex(columns=pd.MultiIndex.from_tuples(
            [(g, stat) for g in groups for stat in ("estimate", "std_error")]))
        wide.columns = pd.MultiIndex.from_tuples(
            [(str(g), "Estimate" if stat == "estimate" else "s.e.") for g, stat in wide.columns])
    order = list(dict.fromkeys(long["term"]))
    wide = wide.reindex(order)
    wide.index.name = ""
    df = int(long["df"].iloc[0]) if len(long) else 0
    note = (f"Design-based {statistic}s ({long.attrs.get('design', design.describe())}); standard errors by "
            f"Taylor linearisation, groups as domains of the full design; design degrees of freedom {df}.")
    return descriptive_table(wide, digits=digits, labels=labels, title=title, notes=[note])
