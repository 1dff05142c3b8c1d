"""Source files and their mapping specifications to one validated canonical Panel.

The steps: read every source file (:mod:`cluster_econ.io.readers`, with its mapping's ``source:``
options and identifier columns), settle identifiers stored as numbers in one round and as text in
another (:mod:`cluster_econ.harmonize.linking`), map each file (:mod:`cluster_econ.harmonize.mapping`)
and split its rows into the canonical tables. Then the rounds are appended:
enterprise-level facts are combined (the latest round's non-missing value wins; disagreements are
counted in the audit), an enterprise-year reported twice with identical values is kept once, and one
reported twice with different values is a violation (strict: reported with every other violation in
one error) or quarantined with both copies. Finally every table is validated
(:mod:`cluster_econ.schema.validate`; in quarantine mode bad values are set missing cell by cell and
only rows with a bad key or required field are rejected) and the cluster-year aggregates are computed.

The audit accounts for every source row: read = kept + dropped (identical duplicates) + rejected.

Performance (a million enterprise-years should cost about what reading the file costs): values that
repeat (codes to recode, IDs to format, enterprise-level facts on every enterprise-year) are handled
once per distinct value through ``pd.factorize`` and spread back with one take; the tables share the
mapped columns rather than copying them (``_select``, ``_fresh_index``); work that cannot apply is
skipped (no duplicate enterprise-years, one file). These are written here rather than with pandas'
own ``map``/``groupby`` because those build a Python object or a group per row, which at this size is
most of the run time; each such helper says which pandas expression it reproduces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import ConfigError, MappingError
from cluster_econ.harmonize.linking import link_identifiers
from cluster_econ.harmonize.mapping import (
    PROVENANCE,
    SOURCE_PREFIX,
    _fresh_index,
    _select,
    map_source,
)
from cluster_econ.harmonize.spec import MappingSpec, load_mapping
from cluster_econ.io.readers import SourceTable, read_source
from cluster_econ.panel.container import Panel
from cluster_econ.schema.validate import Violation

__all__ = ["PROVENANCE", "SOURCE_PREFIX", "dataset_hash", "map_source", "normalize", "split_tables"]


# -- splitting into tables and appending rounds ------------------------------------------------
def _extras(wide: pd.DataFrame, spec: MappingSpec) -> list[str]:
    extra = [n for n, c in spec.columns.items() if c.get("extra")]
    return extra + [c for c in wide.columns if str(c).startswith(SOURCE_PREFIX)]


def split_tables(wide: pd.DataFrame, spec: MappingSpec) -> dict[str, pd.DataFrame]:
    unit = spec.unit
    tables: dict[str, pd.DataFrame] = {}
    unit_fields = [f for f in schema.load(unit).field_names if f in wide.columns]
    tables[unit] = _select(wide, unit_fields + _extras(wide, spec) + list(PROVENANCE))
    if unit == "enterprise_year":
        if spec.recall_blocks:
            wide = wide[wide["recall"].ne(True).to_numpy()]
        ent_fields = [f for f in schema.load("enterprise").field_names if f in wide.columns]
        tables["enterprise"] = _select(wide, [*ent_fields, "year", *PROVENANCE])
        man_fields = [f for f in schema.load("manager").field_names if f in wide.columns and f != "enterprise_id"]
        if [f for f in man_fields if f != "manager_id"]:
            man = _select(wide, ["enterprise_id", *man_fields, "year", *PROVENANCE])
            if "manager_id" not in man.columns:
                man.insert(1, "manager_id", "1")
            tables["manager"] = man
    return tables


def _disagreement_note(table: str, column: str, n: int) -> dict[str, Any]:
    return {
        "step": "note",
        "table": table,
        "rows": n,
        "reason": f"{column}: {n} {table}(s) reported different values across rows; the latest non-missing "
        "value is kept",
    }


def _latest_per_key(df: pd.DataFrame, key: list[str], table: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per key: the latest non-missing value of each column; count keys whose values disagree.

    "Latest" is the order of ``year`` (missing or non-numeric years last), then ``_order`` (the file's
    position), then the row. Keys come
    out in the order they first appear in that order; ``_source`` and ``_source_row`` are the latest
    row's. Computed on integer codes of the key, with one pass per column (the enterprise-level
    columns repeat on every enterprise-year row, so no frame of all rows is built or grouped).
    """
    notes: list[dict[str, Any]] = []
    if df.empty:
        return df, notes
    if "year" in df.columns and not _plain_numeric(df["year"]):
        # a year that is not a number (text in the source) counts as missing: such rows sort last
        df = df.assign(year=pd.to_numeric(df["year"], errors="coerce"))
    if not all(_plain_numeric(df[c]) for c in ("year", "_order") if c in df.columns):
        return _latest_per_key_sorted(df, key, table)
    n = len(df)
    order = _latest_order(df)
    kc = _codes(df, key)
    kcodes = kc[order]
    keyed = df[key].notna().all(axis=1).to_numpy()  # rows with a missing key count in no disagreement
    # positions (in the sorted order) of the first and the last row of each key
    first = np.flatnonzero(~pd.Series(kcodes).duplicated(keep="first").to_numpy())
    last_any = np.flatnonzero(~pd.Series(kcodes).duplicated(keep="last").to_numpy())
    n_keys = len(first)
    slot = np.empty(kcodes.max() + 1, dtype=np.int64)
    slot[kcodes[first]] = np.arange(n_keys)  # output row of each key code
    last_row = np.empty(n_keys, dtype=np.int64)
    last_row[slot[kcodes[last_any]]] = order[last_any]
    value_cols = [c for c in df.columns if c not in key and c not in ("year", "_order", *PROVENANCE)]
    repeated = n_keys < n
    out: dict[str, Any] = {c: _at(df[c], order[first]) for c in key}
    for c in [c for c in df.columns if c not in key and c not in ("year", "_order")]:
        col = df[c]
        if c in PROVENANCE:
            out[c] = _at(col, last_row)
            continue
        vcodes, _ = pd.factorize(col)
        present = (vcodes >= 0)[order]
        if present.all():
            out[c] = _at(col, last_row)
        else:
            # the last row of each key where the column has a value; keys without any stay missing
            pos = np.flatnonzero(present)
            sub = kcodes[pos]
            last = pos[~pd.Series(sub).duplicated(keep="last").to_numpy()]
            rows = np.full(n_keys, -1, dtype=np.int64)
            rows[slot[kcodes[last]]] = order[last]
            out[c] = _at(col, rows)
        if repeated and c in value_cols:
            # a key's values differ when their codes do: compare the least and the greatest code
            ok = (vcodes >= 0) & keyed
            low = np.full(n_keys, len(vcodes), dtype=np.int64)
            high = np.full(n_keys, -1, dtype=np.int64)
            np.minimum.at(low, slot[kc[ok]], vcodes[ok])
            np.maximum.at(high, slot[kc[ok]], vcodes[ok])
            n_conf = int((high > low).sum())
            if n_conf:
                notes.append(_disagreement_note(table, c, n_conf))
    return pd.DataFrame(out, copy=False), notes


def _plain_numeric(series: pd.Series) -> bool:
    return isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf"


def _latest_order(df: pd.DataFrame) -> np.ndarray:
    """Row positions sorted by year, then file, stably (missing years last)."""
    if "year" not in df.columns:
        return np.arange(len(df))
    year = df["year"].to_numpy()
    if "_order" in df.columns and df["_order"].nunique() > 1:
        return np.lexsort((df["_order"].to_numpy(), year))
    return np.argsort(year, kind="stable")


def _codes(df: pd.DataFrame, key: list[str]) -> np.ndarray:
    """One integer per distinct key (missing values form their own key, as in groupby(dropna=False))."""
    codes, _ = pd.factorize(df[key[0]], use_na_sentinel=False)
    for c in key[1:]:
        more, uniques = pd.factorize(df[c], use_na_sentinel=False)
        codes, _ = pd.factorize(codes.astype(np.int64) * (len(uniques) + 1) + more)
    return codes.astype(np.int64)


def _at(col: pd.Series, rows: np.ndarray) -> pd.Series:
    """Values of ``col`` at positions ``rows`` (-1 gives a missing value), indexed 0..len(rows)-1."""
    found = rows >= 0
    taken = col.iloc[rows if found.all() else np.where(found, rows, 0)].reset_index(drop=True)
    return taken if found.all() else taken.where(pd.Series(found))


def _latest_per_key_sorted(df: pd.DataFrame, key: list[str], table: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """As :func:`_latest_per_key`, through pandas sorting and grouping (years that are not plain numbers)."""
    notes: list[dict[str, Any]] = []
    order = (
        df.sort_values([c for c in ("year",) if c in df.columns] + ["_order"], kind="stable")
        if "_order" in df.columns
        else df
    )
    value_cols = [c for c in df.columns if c not in key and c not in ("year", "_order", *PROVENANCE)]
    dup = order.duplicated(key, keep=False)
    if dup.any():
        sub = order[dup]
        counts = sub.groupby(key, sort=False)[value_cols].nunique() if value_cols else pd.DataFrame()
        for c in value_cols:
            n_conf = int((counts[c] > 1).sum())
            if n_conf:
                notes.append(_disagreement_note(table, c, n_conf))
    last = order.groupby(key, sort=False, dropna=False).last().reset_index()
    last = last.drop(columns=[c for c in ("year", "_order") if c in last.columns])
    return last, notes


def _any_duplicate_key(ey: pd.DataFrame) -> bool:
    """Whether some enterprise_id+year occurs twice (ids compared as text, years as numbers)."""
    ids = ey["enterprise_id"]
    if not (_plain_numeric(ids) or pd.api.types.is_bool_dtype(ids.dtype)):
        ids = ids.astype(str)  # numbers compare as themselves; anything else as its text, as below
    year = pd.to_numeric(ey["year"], errors="coerce")
    # as DataFrame({"i": ids, "y": year}).duplicated().any(), on codes (missing values equal each other)
    id_codes, id_values = pd.factorize(ids, use_na_sentinel=False)
    year_codes, year_values = pd.factorize(year, use_na_sentinel=False)
    key = id_codes.astype(np.int64) * len(year_values) + year_codes
    if len(id_values) * len(year_values) <= 8 * len(key) + 1024:
        return bool((np.bincount(key) > 1).any()) if len(key) else False
    return bool(pd.Series(key).duplicated().any())


def _comparable(series: pd.Series) -> pd.Series:
    """Values as the duplicate check compares them: a number, or text that reads as one, by its value
    (80, 80.0 and "80" are the same answer, whichever way a reader typed the column); booleans and
    other text as they are; missing values alike."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":
        return series.astype("float64")
    codes, uniques = pd.factorize(series)

    def value(v: Any) -> Any:
        if isinstance(v, bool | np.bool_):
            return bool(v)
        if isinstance(v, int | float | np.integer | np.floating):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v
        return v

    values = np.array([*(value(u) for u in uniques.tolist()), np.nan], dtype=object)
    return pd.Series(values[codes], index=series.index, dtype=object)


def _resolve_duplicates(
    ey: pd.DataFrame, mode: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]], list[Violation]]:
    """Enterprise-years reported twice: identical copies are kept once; different ones are set aside
    (rejected in quarantine; in strict mode a violation, reported with every other one)."""
    key = ["enterprise_id", "year"]
    audit: list[dict[str, Any]] = []
    found: list[Violation] = []
    if not {"enterprise_id", "year"} <= set(ey.columns):
        return ey, ey.iloc[0:0].copy(), audit, found
    if not _any_duplicate_key(ey):
        return ey, ey.iloc[0:0].copy(), audit, found
    yr = pd.to_numeric(ey["year"], errors="coerce")
    keyframe = pd.DataFrame({"enterprise_id": ey["enterprise_id"].astype(str), "year": yr})
    # a row without an enterprise or a year is no one's duplicate: validation rejects it on its own
    complete = (ey["enterprise_id"].notna() & yr.notna()).to_numpy()
    dup = keyframe.duplicated(keep=False).to_numpy() & complete
    if not dup.any():
        return ey, ey.iloc[0:0].copy(), audit, found
    compare = [
        c
        for c in ey.columns
        if c in schema.load("enterprise_year").field_names and c not in (*key, "survey_round", "recall")
    ]
    if "recall" in ey.columns:
        # a year reported in its own round beats the same year recalled in a later round
        flagged = ey["recall"].eq(True).fillna(False).to_numpy(dtype=bool)
        has_reported = (
            keyframe[dup & ~flagged].drop_duplicates().merge(keyframe[dup], how="right", indicator=True)["_merge"]
        )
        superseded = np.zeros(len(ey), bool)
        superseded[np.flatnonzero(dup)] = has_reported.eq("both").to_numpy() & flagged[dup]
        if superseded.any():
            for src, n in ey.loc[superseded, "_source"].value_counts().sort_index().items():
                audit.append(
                    {
                        "source": src,
                        "table": "enterprise_year",
                        "step": "dropped",
                        "rows": int(n),
                        "reason": "recalled year superseded by the row reported for that year",
                    }
                )
            ey, keyframe, complete = ey[~superseded], keyframe[~superseded], complete[~superseded]
            dup = keyframe.duplicated(keep=False).to_numpy() & complete
            if not dup.any():
                return ey, ey.iloc[0:0].copy(), audit, found
    sub = ey[dup].assign(_k1=keyframe["enterprise_id"][dup], _k2=keyframe["year"][dup])
    values = pd.DataFrame({c: _comparable(sub[c]) for c in compare}, index=sub.index)
    nun = values.groupby([sub["_k1"], sub["_k2"]]).nunique(dropna=False) if compare else None
    differ_keys = nun.index[(nun > 1).any(axis=1)] if nun is not None else pd.Index([])
    in_conflict = pd.MultiIndex.from_frame(sub[["_k1", "_k2"]]).isin(differ_keys)
    conflict_rows = sub[in_conflict]
    identical_later = sub[~in_conflict].duplicated(["_k1", "_k2"], keep="first")
    drop_idx = sub[~in_conflict].index[identical_later.to_numpy()]
    for src, n in ey.loc[drop_idx, "_source"].value_counts().sort_index().items():
        audit.append(
            {
                "source": src,
                "table": "enterprise_year",
                "step": "dropped",
                "rows": int(n),
                "reason": "duplicate enterprise-year reported with identical values (kept once)",
            }
        )
    rejects = ey.iloc[0:0].copy()
    if len(conflict_rows):
        details = []
        for (eid, year), grp in list(conflict_rows.groupby(["_k1", "_k2"]))[:10]:
            cols = [c for c in compare if values.loc[grp.index, c].nunique(dropna=False) > 1]
            where = ", ".join(f"{s} row {r}" for s, r in zip(grp["_source"], grp["_source_row"], strict=True))
            details.append(f"  - enterprise {eid}, year {int(year)}: {', '.join(cols)} differ ({where})")
        n_keys = conflict_rows.groupby(["_k1", "_k2"]).ngroups
        rows = tuple(int(r) for r in conflict_rows["_source_row"].head(10))
        found.append(
            Violation(
                "enterprise_year",
                "enterprise_id+year",
                f"duplicate enterprise-year with different values: {n_keys} enterprise-year(s)",
                len(conflict_rows),
                rows,
                tuple(f"{a}/{int(b)}" for a, b in zip(conflict_rows["_k1"].head(5), conflict_rows["_k2"].head(5),
                                                       strict=True)),
                tuple(sorted(conflict_rows["_source"].dropna().astype(str).unique()))[:5],
                detail="\n".join(details),
            )
        )
        if mode == "strict":
            keep = ey.index.difference(drop_idx).difference(conflict_rows.index)
            return ey.loc[keep], rejects, audit, found
        rejects = conflict_rows.drop(columns=["_k1", "_k2"]).copy()
        diff_cols = {}
        for (eid, year), grp in conflict_rows.groupby(["_k1", "_k2"]):
            diff_cols[(eid, year)] = ", ".join(c for c in compare if values.loc[grp.index, c].nunique(dropna=False) > 1)
        rejects["_reject_reason"] = [
            f"enterprise_id+year: duplicate with different values in {diff_cols[(a, b)]}"
            for a, b in zip(conflict_rows["_k1"], conflict_rows["_k2"], strict=True)
        ]
        rejects["_cascade"] = False
        for (src, why), n in rejects.groupby(["_source", "_reject_reason"]).size().items():
            audit.append({"source": src, "table": "enterprise_year", "step": "rejected", "rows": int(n), "reason": why})
    keep = ey.index.difference(drop_idx).difference(conflict_rows.index)
    return ey.loc[keep], rejects, audit, found


def _check_params(specs: list[MappingSpec], params: dict[str, Any]) -> None:
    """A parameter no mapping reads is a mistake (a typo, or the wrong mapping): say so."""
    used = set().union(*(s.params_used() for s in specs))
    unused = sorted(set(params) - used)
    if unused:
        raise MappingError(
            f"parameter(s) {', '.join(unused)} given (--set) but not used by the mapping(s) "
            f"{', '.join(sorted({s.name for s in specs}))}; they take: {', '.join(sorted(used)) or 'no parameters'}"
        )


def _spec_for(mapping: Any, i: int, n_files: int) -> MappingSpec:
    if isinstance(mapping, MappingSpec):
        return mapping
    if isinstance(mapping, str | Path):
        return load_mapping(mapping)
    if isinstance(mapping, Sequence):
        if len(mapping) == 1:
            return _spec_for(mapping[0], 0, 1)
        if len(mapping) != n_files:
            raise MappingError(
                f"give one mapping for all files or one per file: {len(mapping)} mappings for {n_files} files"
            )
        return _spec_for(mapping[i], i, n_files)
    raise MappingError(f"mapping must be a path or a MappingSpec, not {type(mapping).__name__}")


def normalize(
    files: str | Path | Sequence[str | Path],
    mapping: Any,
    mode: str = "strict",
    deflator: pd.DataFrame | str | Path | None = None,
    progress: bool = False,
    cluster_year: bool = True,
    params: dict[str, Any] | None = None,
) -> Panel:
    """Harmonize survey source files into one validated canonical Panel.

    Parameters
    ----------
    files : path or list of paths
        Source files (CSV, Excel, Stata, SPSS, Parquet), one survey round each.
    mapping : path, MappingSpec, or list of them
        One mapping for all files, or one per file.
    mode : {"strict", "quarantine"}
        ``strict`` raises one :class:`SchemaError` listing every violation of every kind (duplicate
        enterprise-years included); ``quarantine`` keeps what is good: a bad value in a field that
        is neither a key nor required is set missing and logged in ``panel.rejects["cells"]``; a row
        whose key or a required field fails goes to ``panel.rejects[table]`` with its original
        values and reasons, and so do the rows of its enterprise (counted as cascades). See
        :mod:`cluster_econ.schema.quarantine`.
    deflator : DataFrame or path, optional
        A deflator table (country, year, price_index) that overrides the mappings' ``deflate.deflator``
        and is stored as the panel's ``deflator`` table.
    progress : bool
        Show a progress bar over files.
    params : dict, optional
        Values for the mappings' ``param`` columns (for example ``{"country": "KEN", "year": 2013}``).
    cluster_year : bool
        Compute the cluster-year aggregates (default True).

    Returns
    -------
    Panel
        Typed, validated tables; ``panel.audit`` accounts for every source row.
    """
    from cluster_econ.schema.validate import _validate

    if mode not in ("strict", "quarantine"):
        raise ConfigError(f"normalize: mode must be 'strict' or 'quarantine', not {mode!r}")
    paths = [files] if isinstance(files, str | Path) else list(files)
    if not paths:
        raise MappingError("no source files given")
    defl_df = None
    if deflator is not None:
        defl_df = deflator if isinstance(deflator, pd.DataFrame) else read_source(deflator).data
    pieces: dict[str, list[pd.DataFrame]] = {}
    audit: list[dict[str, Any]] = []
    sources_meta: list[dict[str, Any]] = []
    var_labels: dict[str, Any] = {}
    val_labels: dict[str, Any] = {}
    params = dict(params or {})
    specs = [_spec_for(mapping, i, len(paths)) for i in range(len(paths))]
    _check_params(specs, params)
    iterator: Any = enumerate(paths)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(paths), desc="read", unit="file")
    sources: list[SourceTable | None] = [read_source(path, options=specs[i].read_options()) for i, path in iterator]
    # identifiers stored as numbers in one round and as text in another (audit notes say what was done)
    id_widths, link_notes = link_identifiers(sources, specs, params)  # type: ignore[arg-type]
    for i, path in enumerate(paths):
        spec, source = specs[i], sources[i]
        assert source is not None
        sources[i] = None  # the mapped frame keeps what it needs
        wide, notes = map_source(source, spec, defl_df, params, id_widths[i])
        notes += [note for j, note in link_notes if j == i]
        for note in notes:
            audit.append({"source": source.name, "table": spec.unit, **note})
        audit.append(
            {
                "source": source.name,
                "table": spec.unit,
                "step": "read",
                "rows": len(source.data),
                "reason": f"mapping {spec.name}",
            }
        )
        for table, df in split_tables(wide, spec).items():
            if table in ("enterprise", "manager"):
                df = df.copy(deep=False)
                df["_order"] = i
            pieces.setdefault(table, []).append(df)
        sources_meta.append(
            {
                "file": source.name,
                "path": str(path),
                "format": source.format,
                "sha256": source.sha256,
                "rows": len(source.data),
                "encoding": source.encoding,
                "delimiter": source.delimiter,
                "header_row": source.header_row,
                "mapping": spec.path,
                "mapping_name": spec.name,
                "mapping_sha256": spec.sha256,
            }
        )
        if source.variable_labels:
            var_labels[source.name] = source.variable_labels
        if source.value_labels:
            val_labels[source.name] = {k: {str(a): b for a, b in v.items()} for k, v in source.value_labels.items()}
    tables: dict[str, pd.DataFrame] = {}
    rejects: dict[str, pd.DataFrame] = {}
    duplicates: list[Violation] = []
    for table, dfs in pieces.items():
        df = _fresh_index(dfs[0]) if len(dfs) == 1 else pd.concat(dfs, ignore_index=True)
        if table == "enterprise":
            df, notes = _latest_per_key(df, ["enterprise_id"], table)
            audit.extend({"source": "(all)", **n} for n in notes)
        elif table == "manager":
            df, notes = _latest_per_key(df, ["enterprise_id", "manager_id"], table)
            audit.extend({"source": "(all)", **n} for n in notes)
        elif table == "enterprise_year":
            df, rej, dup_audit, duplicates = _resolve_duplicates(df, mode)
            audit.extend(dup_audit)
            if len(rej):
                rejects[table] = rej
        tables[table] = _fresh_index(df)
    if defl_df is not None:
        tables["deflator"] = defl_df.copy()  # validation may reuse its columns: never the caller's frame
    for table, df in tables.items():
        if "_source" in df.columns:
            for src, n in df["_source"].value_counts().sort_index().items():
                audit.append({"source": src, "table": table, "step": "kept", "rows": int(n), "reason": ""})
    if "enterprise" not in tables:
        raise MappingError("the sources produced no enterprise table: map enterprise_id and cluster_id")
    if "enterprise_year" not in tables:
        tables["enterprise_year"] = pd.DataFrame(columns=["enterprise_id", "year"])
    metadata = {
        "sources": sources_meta,
        "variable_labels": var_labels,
        "value_labels": val_labels,
        "label": ", ".join(s["file"] for s in sources_meta),
    }
    panel = Panel(tables, pd.DataFrame(audit), rejects, metadata)
    # nothing else holds the untyped tables: drop the references so that memory is freed as the
    # validation replaces them, and let it reuse the columns that already have their type
    del tables, pieces, dfs, df, wide, source
    report = _validate(panel, mode=mode, share=True, prior=duplicates)
    del panel
    panel = report.panel
    if cluster_year and panel.has_column("enterprise", "cluster_id"):
        panel = panel.with_cluster_year()
    return panel


def dataset_hash(panel: Panel) -> str:
    """Hash of the canonical tables' contents (for manifests and result provenance)."""
    h = hashlib.sha256()
    for name in schema.TABLES:
        df = panel.get(name)
        if df is not None:
            h.update(name.encode())
            h.update(pd.util.hash_pandas_object(df.reset_index(drop=True), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
