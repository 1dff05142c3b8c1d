"""Normalize sources too large for memory straight into a (partitioned) panel folder.

:func:`normalize_to_folder` gives the panel :func:`~cluster_econ.harmonize.pipeline.normalize`
would give for the same files (same tables, values, rejects, audit counts; rows grouped by
partition), reading each source once, in chunks of ``chunk_rows`` rows, then going over the mapped
rows a second time:

1. **First pass**, chunk by chunk: read and map the rows (:func:`map_source`), fold the enterprise-
   and manager-level facts into one entry per key (:class:`~cluster_econ.harmonize.latest.LatestPerKey`:
   the latest non-missing value, and whether values disagree), keep for each enterprise-year row
   only its key, year, recall flag, place (file, recall block, row) and a 64-bit hash of its values,
   and write the mapped rows to a spill folder (Parquet, inside the staging folder). Then:
   duplicate enterprise-years are resolved as ``normalize`` resolves them (a recalled year
   superseded by a reported one is dropped; identical copies kept once, the first in file order;
   copies with different values set aside), and the enterprise and manager tables are validated,
   which says which enterprises are rejected.
2. **Second pass**, over the spilled rows (much cheaper to read back than reading and mapping the
   sources again): drop or set aside the duplicates found, validate the enterprise-year rows
   (quarantine: bad values set missing cell by cell, rows with a bad key rejected, rows of a
   rejected enterprise follow it), write the kept rows as part files of the (partitioned)
   ``enterprise_year`` dataset, and keep only the columns the cluster-year aggregates need.

At the end the cluster-year aggregates are computed a batch of clusters at a time, the small tables
are written, and the folder is switched in one step (:mod:`cluster_econ.io.atomic`). Memory is
bounded by the chunk, the per-key state (one entry per enterprise), the per-row keys and the
aggregate columns (about 80 bytes a row), not by the data. In strict mode every violation of both
passes is collected and one :class:`SchemaError` raised at the end; nothing is written.

Differences from ``normalize``, all documented: the reader decides per chunk whether a column holds
numbers (so a rejected row may keep 80 where ``normalize`` keeps "80"; typed values are the same);
two copies of an enterprise-year count as identical when their values hash alike (64-bit hashes;
a collision is astronomically unlikely); a ``src_*`` column read as numbers in some chunks and as
text in others is stored as text; values of the spilled rows that mix numbers and text are
read back as text (again: the same typed values).
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ import schema
from cluster_econ.errors import ConfigError, MappingError, SchemaError
from cluster_econ.harmonize.latest import LatestPerKey
from cluster_econ.harmonize.mapping import map_source
from cluster_econ.harmonize.pipeline import (
    _check_params,
    _disagreement_note,
    _resolve_duplicates,
    _spec_for,
    split_tables,
)
from cluster_econ.harmonize.stream_index import RowIndex, find_duplicates, merge_notes, merge_violations
from cluster_econ.io.chunks import iter_source
from cluster_econ.io.readers import SourceTable, file_sha256, read_source
from cluster_econ.panel.container import Panel
from cluster_econ.schema.validate import Finding, Violation, _check_table, _Collector, _validate

DEFAULT_CHUNK_ROWS = 250_000
CLUSTER_BATCH_ROWS = 2_000_000  # enterprise-year rows per batch of clusters for the aggregates
AGGREGATE_COLUMNS = (
    "year", "exit", "operating", "employment", "sales", "export_share", "indirect_export_share",
    "parts_market_share", "new_product", "new_process", "own_brand", "direct_sales", "long_term_subcontract",
    "vertical_integration", "quality_certification",
)


def _release_memory() -> None:
    """Hand memory freed by the last pass back to the system (glibc keeps freed heap memory for
    reuse otherwise, and the next step's arrays come on top of it)."""
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _as_text(v: Any) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


# -- reading in chunks ------------------------------------------------------------------------------
def _link(paths: list[Path], specs: list[Any], params: dict[str, Any], chunk_rows: int
          ) -> tuple[list[dict[str, int]], list[tuple[int, dict[str, Any]]]]:
    """:func:`~cluster_econ.harmonize.linking.link_identifiers` for sources read in chunks: it needs
    only the distinct values of the identifier columns, collected from the chunks (and only when two
    sources build ``enterprise_id`` the same way, so that linking can apply)."""
    from cluster_econ.harmonize.linking import _id_parts, link_identifiers

    parts = [_id_parts(spec, params) for spec in specs]
    shapes = [p[0] for p in parts if p is not None]
    if not any(shapes.count(shape) > 1 for shape in shapes):
        return [{} for _ in paths], []
    light: list[SourceTable] = []
    for path, spec, part in zip(paths, specs, parts, strict=True):
        fields = part[1] if part is not None else []
        seen: dict[str, list[pd.Series]] = {f: [] for f in fields}
        first: SourceTable | None = None
        for piece, _ in iter_source(path, spec.read_options(), chunk_rows):
            first = first or piece
            for f in fields:
                if f in piece.data.columns:
                    seen[f].append(pd.Series(pd.unique(piece.data[f].dropna())))
        assert first is not None
        data = pd.DataFrame({f: pd.concat(v, ignore_index=True).drop_duplicates().reset_index(drop=True)
                             for f, v in seen.items() if v})
        table = SourceTable(data, first.path, first.format, "")
        table.id_widths = first.id_widths
        light.append(table)
    return link_identifiers(light, specs, params)


def _mapped_chunks(paths: list[Path], specs: list[Any], chunk_rows: int, deflator: pd.DataFrame | None,
                   params: dict[str, Any], id_widths: list[dict[str, int]], link_notes: list[tuple[int, dict]]
                   ) -> Iterator[tuple[int, SourceTable, int, dict[str, pd.DataFrame], list]]:
    """Each chunk of each file, mapped and split into tables: (file, source, rows before, tables, notes)."""
    for i, (path, spec) in enumerate(zip(paths, specs, strict=True)):
        for source, offset in iter_source(path, spec.read_options(), chunk_rows):
            wide, notes = map_source(source, spec, deflator, params, id_widths[i])
            if offset == 0:
                notes += [note for j, note in link_notes if j == i]
            n = len(source.data)
            wide["_source_row"] = wide["_source_row"].to_numpy() + offset
            tables = split_tables(wide, spec)
            if "enterprise_year" in tables:  # its place: 0 the rows as reported, k recall block k
                ey = tables["enterprise_year"]
                tables["enterprise_year"] = ey.assign(_block=ey.index.to_numpy() // max(n, 1))
            yield i, source, offset, tables, notes


# -- the pipeline -----------------------------------------------------------------------------------
def normalize_to_folder(
    files: str | Path | Sequence[str | Path],
    mapping: Any,
    out: str | Path,
    mode: str = "strict",
    deflator: pd.DataFrame | str | Path | None = None,
    params: dict[str, Any] | None = None,
    partition_by: Sequence[str] | None = ("country", "survey_round"),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
) -> str:
    """Harmonize survey source files into a panel folder, a chunk of rows at a time.

    Parameters are those of :func:`~cluster_econ.harmonize.pipeline.normalize`, plus ``out`` (the
    panel folder, replaced in one step), ``partition_by`` (columns to partition the tables by; see
    :mod:`cluster_econ.io.parquet`) and ``chunk_rows`` (rows read and mapped at a time). Returns the
    folder; read it with :func:`cluster_econ.read_panel` (its ``audit`` accounts for every source row).

    Raises
    ------
    SchemaError
        In strict mode, listing every violation of every chunk; nothing is written.
    """
    from cluster_econ.io.atomic import atomic_directory
    from cluster_econ.io.manifest import is_panel_folder
    from cluster_econ.io.parquet import PanelFolderWriter

    if mode not in ("strict", "quarantine"):
        raise ConfigError(f"normalize: mode must be 'strict' or 'quarantine', not {mode!r}")
    if int(chunk_rows) < 1:
        raise ConfigError(f"chunk_rows must be a positive number of rows, not {chunk_rows!r}")
    paths = [Path(files)] if isinstance(files, str | Path) else [Path(f) for f in files]
    if not paths:
        raise MappingError("no source files given")
    specs = [_spec_for(mapping, i, len(paths)) for i in range(len(paths))]
    params = dict(params or {})
    _check_params(specs, params)
    defl = None
    if deflator is not None:
        defl = deflator if isinstance(deflator, pd.DataFrame) else read_source(deflator).data
    partition_by = [partition_by] if isinstance(partition_by, str) else list(partition_by or [])
    with atomic_directory(out, replaceable=is_panel_folder) as staging:
        run = _Run(paths, specs, defl, params, mode, int(chunk_rows), partition_by, progress)
        spill = staging / ".spill"
        try:
            run.first_pass(spill)
            run.between()
            writer = PanelFolderWriter(staging, partition_by)
            run.second_pass(writer)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        run.finish(writer)
    return str(out)


class _Run:
    """The state of one streamed normalize (see the module docstring)."""

    def __init__(self, paths: list[Path], specs: list[Any], deflator: pd.DataFrame | None, params: dict[str, Any],
                 mode: str, chunk_rows: int, partition_by: list[str], progress: bool) -> None:
        self.paths, self.specs, self.deflator, self.params = paths, specs, deflator, params
        self.mode, self.chunk_rows, self.partition_by, self.progress = mode, chunk_rows, partition_by, progress
        self.names: list[str] = []
        self.sources_meta: list[dict[str, Any]] = []
        self.var_labels: dict[str, Any] = {}
        self.val_labels: dict[str, Any] = {}
        self.audit: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.latest = {"enterprise": LatestPerKey(["enterprise_id"]),
                       "manager": LatestPerKey(["enterprise_id", "manager_id"])}
        self.index = RowIndex()
        self.has_recall = False
        self.missing_partition: set[str] = set()
        self.violations: list[Violation] = []
        self.rejects: dict[str, list[pd.DataFrame]] = {}
        self.cells: list[pd.DataFrame] = []
        self.kept_rows: dict[str, int] = {}
        self.aside_rows: list[pd.DataFrame] = []
        self.aggregate: dict[str, list[Any]] = {}
        self.template: pd.DataFrame | None = None
        self.kinds: dict[str, set[str]] = {}

    def _chunks(self) -> Iterator[tuple[int, SourceTable, int, dict[str, pd.DataFrame], list]]:
        chunks = _mapped_chunks(self.paths, self.specs, self.chunk_rows, self.deflator, self.params,
                                self.id_widths, self.link_notes)
        if self.progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="normalize", unit="chunk")
        return chunks

    # -- pass 1 ---------------------------------------------------------------------------------
    def first_pass(self, spill: Path) -> None:
        """Read and map every chunk; keep the per-key and per-row state, and write the mapped
        enterprise-year rows to ``spill`` (Parquet, read back by the second pass instead of reading and
        mapping the sources again)."""
        from cluster_econ.io.parquet import _write_frame

        spill.mkdir(parents=True, exist_ok=True)
        self.spilled: list[Path] = []
        self.id_widths, self.link_notes = _link(self.paths, self.specs, self.params, self.chunk_rows)
        # each file is hashed on a second thread while the first pass reads it
        hashes: dict[int, str] = {}
        hashers = [threading.Thread(target=lambda i=i, p=p: hashes.setdefault(i, file_sha256(p)), daemon=True)
                   for i, p in enumerate(self.paths)]
        for h in hashers:
            h.start()
        rows_read: dict[int, int] = {}
        for i, source, offset, tables, notes in self._chunks():
            if offset == 0:
                self._describe_source(i, source)
            spec = self.specs[i]
            rows_read[i] = rows_read.get(i, 0) + len(source.data)
            self.notes.extend({"source": source.name, "table": spec.unit, **n} for n in notes)
            for name in ("enterprise", "manager"):
                if name in tables:
                    df = tables[name]
                    self.latest[name].add(df.drop(columns=["_block"], errors="ignore"), i,
                                          df["_source_row"].to_numpy())
            ey = tables.get("enterprise_year")
            if ey is not None and len(ey):
                self.has_recall |= "recall" in ey.columns
                compare = [c for c in ey.columns if c in schema.load("enterprise_year").field_names
                           and c not in ("enterprise_id", "year", "survey_round", "recall")]
                self.index.add(ey, i, compare, self.latest["enterprise"].lookup)
                self._note_kinds(ey)
                path = spill / f"{len(self.spilled)}.parquet"
                with open(path, "wb") as fh:
                    _write_frame(ey.drop(columns="_block"), fh)
                self.spilled.append(path)
                for c in self.partition_by:
                    if c in ey.columns and ey[c].isna().any():
                        self.missing_partition.add(c)
        for h in hashers:
            h.join()
        for i, n in rows_read.items():
            self.sources_meta[i]["rows"] = n
            self.sources_meta[i]["sha256"] = hashes[i]
            self.audit.append({"source": self.names[i], "table": self.specs[i].unit, "step": "read", "rows": n,
                               "reason": f"mapping {self.specs[i].name}"})

    def _note_kinds(self, ey: pd.DataFrame) -> None:
        """How each non-canonical column (``src_*``, extras) came out of the reader in this chunk."""
        fields = set(schema.load("enterprise_year").field_names) | {"_source", "_source_row", "_block"}
        for c in ey.columns:
            if c in fields:
                continue
            s = ey[c]
            if not s.notna().any():
                kind = "empty"
            elif isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu":
                kind = "int"
            elif isinstance(s.dtype, np.dtype) and s.dtype.kind == "f":
                kind = "float"
            elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.infer_dtype(s, skipna=True) == "boolean":
                kind = "bool"
            else:
                kind = "text"
            self.kinds.setdefault(c, set()).add(kind)

    def _one_type(self, df: pd.DataFrame) -> pd.DataFrame:
        """Non-canonical columns with one type in every part file: numbers if every chunk read them as
        numbers (integers if always integers), booleans if always booleans, else text (numbers written
        as the reader read them: 80.0 as "80")."""
        changed = {}
        for c, kinds in self.kinds.items():
            if c not in df.columns:
                continue
            kinds = kinds - {"empty"}
            s = df[c]
            if kinds <= {"int"}:
                if not kinds or not (isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu"):
                    changed[c] = pd.to_numeric(s, errors="coerce").astype("float64") if not kinds else s.astype("Int64")
            elif kinds <= {"int", "float"}:
                changed[c] = pd.to_numeric(s, errors="coerce").astype("float64")
            elif kinds == {"bool"}:
                changed[c] = s.astype("boolean")
            elif s.dtype != object or pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
                codes, uniques = pd.factorize(s)
                text = [_as_text(u) for u in uniques.tolist()]
                changed[c] = pd.Series(np.array([*text, None], dtype=object)[codes], index=s.index)
        return df.assign(**changed) if changed else df

    def _describe_source(self, i: int, source: SourceTable) -> None:
        spec = self.specs[i]
        self.names.append(source.name)
        self.sources_meta.append({"file": source.name, "path": str(self.paths[i]), "format": source.format,
                                  "sha256": "", "rows": None, "encoding": source.encoding,
                                  "delimiter": source.delimiter, "header_row": source.header_row,
                                  "mapping": spec.path, "mapping_name": spec.name, "mapping_sha256": spec.sha256})
        if source.variable_labels:
            self.var_labels[source.name] = source.variable_labels
        if source.value_labels:
            self.val_labels[source.name] = {k: {str(a): b for a, b in v.items()}
                                            for k, v in source.value_labels.items()}

    # -- between the passes ---------------------------------------------------------------------
    def between(self) -> None:
        _release_memory()
        self.audit.extend(merge_notes(self.notes))
        rows = self.index.arrays()
        self.n_rows = len(rows["ids"])
        self.drop, self.aside, dropped = find_duplicates(rows, self.names, self.has_recall)
        self.audit.extend(dropped)
        del rows
        # the enterprise and manager tables, validated on their own (their rejects cascade below)
        tables: dict[str, pd.DataFrame] = {}
        for name, state in self.latest.items():
            df, disagree = state.result()
            if len(df):
                tables[name] = df
            self.audit.extend({"source": "(all)", **_disagreement_note(name, c, k)} for c, k in disagree.items())
        self.latest = {}
        if "enterprise" not in tables:
            raise MappingError("the sources produced no enterprise table: map enterprise_id and cluster_id")
        for name, df in tables.items():
            for src, k in df["_source"].value_counts().sort_index().items():
                self.audit.append({"source": src, "table": name, "step": "kept", "rows": int(k), "reason": ""})
        if self.deflator is not None:
            tables["deflator"] = self.deflator.copy()
        small = Panel({**tables, "enterprise_year": pd.DataFrame({"enterprise_id": [], "year": []})},
                      pd.DataFrame(self.audit))
        report = _validate(small, mode="report" if self.mode == "strict" else "quarantine", share=True)
        self.violations.extend(report.violations)
        self.small = report.panel
        ent = self.small.enterprise
        self.all_ids = pd.Index(tables["enterprise"]["enterprise_id"].astype(str))
        kept_ids = pd.Index(ent["enterprise_id"].astype(str))
        self.rejected_ids = self.all_ids.difference(kept_ids)
        self.country_of = pd.Series(ent["country"].to_numpy(dtype=object), index=kept_ids) \
            if "country" in ent.columns else None
        self.parts = [c for c in self.partition_by if c not in self.missing_partition
                      and (c != "country" or self.country_of is not None)]

    # -- pass 2 ---------------------------------------------------------------------------------
    def second_pass(self, writer: Any) -> None:
        import pyarrow.parquet as pq

        g0 = 0
        spilled: Any = self.spilled
        if self.progress:
            from tqdm import tqdm

            spilled = tqdm(spilled, desc="validate and write", unit="chunk")
        for path in spilled:
            ey = pq.read_table(path).to_pandas()
            path.unlink()
            g = np.arange(g0, g0 + len(ey))
            g0 += len(ey)
            aside = self.aside[g]
            if aside.any():
                self.aside_rows.append(ey[aside])
            keep = ~(self.drop[g] | aside)
            if not keep.all():
                ey = ey[keep]
            if len(ey):
                self._validate_chunk(ey, writer)
        if g0 != self.n_rows:
            raise MappingError("a source changed while it was read (the two passes saw different rows)")

    def _validate_chunk(self, ey: pd.DataFrame, writer: Any) -> None:
        from cluster_econ.schema.quarantine import _table

        col = _Collector()
        typed, raw = _check_table("enterprise_year", ey, col, share=True)
        if self.template is None:
            self.template = typed.iloc[:0]  # written if no row is kept
        ids = pd.Index(typed["enterprise_id"].astype(str))
        present = typed["enterprise_id"].notna().to_numpy()
        orphan = present & ~ids.isin(self.all_ids)
        col.add("enterprise_year", raw, "enterprise_id", "foreignKey: no matching enterprise.enterprise_id", orphan,
                values=raw["enterprise_id"], scope="row")
        if self.mode == "strict":
            self.violations.extend(col.violations)
            if not self.violations:  # (once there is one, nothing will be written: the run raises)
                self._write(typed, writer)
            return
        findings = col.findings.get("enterprise_year", [])
        own = np.zeros(len(typed), bool)
        for f in findings:
            if f.scope == "row":
                own |= f.mask
        followed = present & ids.isin(self.rejected_ids) & ~own
        if followed.any():
            findings.append(Finding(("enterprise_id",), "foreignKey cascade: its enterprise.enterprise_id was "
                                    "rejected", followed, "cascade"))
        self.violations.extend(col.violations)
        kept, rejected, cells, _, _ = _table("enterprise_year", typed, raw, findings)
        if rejected is not None:
            self.rejects.setdefault("enterprise_year", []).append(rejected)
        if cells is not None:
            self.cells.append(cells)
        self._write(kept, writer)

    def _write(self, kept: pd.DataFrame, writer: Any) -> None:
        if not len(kept):
            return
        kept = self._one_type(kept)
        for src, k in kept["_source"].value_counts().items():
            self.kept_rows[src] = self.kept_rows.get(src, 0) + int(k)
        added: list[str] = []
        if "country" in self.parts and "country" not in kept.columns:
            kept = kept.assign(country=self.country_of.reindex(kept["enterprise_id"].astype(str)).to_numpy())
            added = ["country"]
        writer.add_table("enterprise_year", kept, added, parts=self.parts, pieces=True)
        self._keep_for_aggregates(kept)

    def _keep_for_aggregates(self, kept: pd.DataFrame) -> None:
        """The columns the cluster-year aggregates need, compactly (ids as codes, years as int32)."""
        codes = self.all_ids.get_indexer(kept["enterprise_id"].astype(str)).astype(np.int32)
        self.aggregate.setdefault("enterprise_id", []).append(codes)
        for c in AGGREGATE_COLUMNS:
            if c in kept.columns:
                values = kept[c]
                if c == "year":  # kept rows have a valid year
                    values = pd.Series(values.to_numpy(dtype=np.int32))
                self.aggregate.setdefault(c, []).append(values.reset_index(drop=True))

    # -- the end --------------------------------------------------------------------------------
    def finish(self, writer: Any) -> None:
        _release_memory()
        audit = list(self.small.audit.to_dict("records"))
        if self.aside_rows:
            rows = pd.concat(self.aside_rows, ignore_index=True)
            if self.template is None:
                self.template = _check_table("enterprise_year", rows.iloc[:0], _Collector())[0]
            left, rej, dup_audit, found = _resolve_duplicates(rows, self.mode)
            if len(left):  # (every row set aside has a copy with other values)
                raise RuntimeError("streamed normalize: a duplicate enterprise-year was not resolved")
            self.violations = found + self.violations
            audit.extend(dup_audit)
            if len(rej):
                self.rejects.setdefault("enterprise_year", []).insert(0, rej)
        if self.mode == "strict" and self.violations:
            from cluster_econ.schema.validate import ValidationReport

            report = ValidationReport(merge_violations(self.violations))
            raise SchemaError(str(report), violations=report.to_frame())
        for src, k in sorted(self.kept_rows.items()):
            audit.append({"source": src, "table": "enterprise_year", "step": "kept", "rows": k, "reason": ""})
        ey_rejects = pd.concat(self.rejects["enterprise_year"], ignore_index=True) \
            if "enterprise_year" in self.rejects else None
        if ey_rejects is not None:
            source = ey_rejects["_source"].fillna("")
            for (src, why), k in ey_rejects[~ey_rejects["_reject_reason"].str.startswith("enterprise_id+year: dup")]\
                    .groupby([source, "_reject_reason"]).size().items():
                audit.append({"source": src, "table": "enterprise_year", "step": "rejected", "rows": int(k),
                              "reason": why})
        cells = pd.concat(self.cells, ignore_index=True) if self.cells else None
        if cells is not None:
            for (src, column, rule), k in cells.assign(source=cells["source"].fillna("")).groupby(
                    ["source", "column", "rule"]).size().items():
                audit.append({"source": src, "table": "enterprise_year", "step": "note", "rows": int(k),
                              "reason": f"{column}: {rule}: {k} value(s) set missing (see rejects/cells)"})
        if not writer.tables.get("enterprise_year"):
            empty = self.template if self.template is not None else pd.DataFrame(
                {"enterprise_id": pd.Series(dtype=object), "year": pd.Series(dtype="Int64")})
            writer.add_table("enterprise_year", empty, pieces=True)
        small = self.small
        tables = dict(small.tables)
        tables.pop("enterprise_year")
        if "enterprise" in tables and tables["enterprise"]["cluster_id"].notna().any():
            tables["cluster_year"] = self._cluster_year(tables)
        rejects = dict(small.rejects)
        cell_logs = [x for x in (rejects.pop("cells", None), cells) if x is not None]
        if cell_logs:
            rejects["cells"] = pd.concat(cell_logs, ignore_index=True)
        if ey_rejects is not None:
            rejects["enterprise_year"] = ey_rejects
        from cluster_econ.io.parquet import _with_country

        for name in schema.TABLES:
            if name in tables and name != "enterprise_year":
                df, added = _with_country(small, name, tables[name]) if "country" in self.parts else (tables[name], [])
                writer.add_table(name, df, added)
        writer.add_single("audit.parquet", "audit", pd.DataFrame(audit))
        for name, df in sorted(rejects.items()):
            writer.add_single(f"rejects/{name}.parquet", f"rejects/{name}", df)
        writer.write_manifest({"sources": self.sources_meta, "variable_labels": self.var_labels,
                               "value_labels": self.val_labels, "label": ", ".join(self.names)})

    def _cluster_year(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Cluster-year aggregates of the kept enterprise-years, a batch of clusters at a time (each
        aggregate depends on its own cluster's rows only)."""
        from cluster_econ.panel.derive import aggregate_cluster_year

        columns: dict[str, Any] = {}
        for c in list(self.aggregate):  # one column at a time, each list freed once joined
            pieces = self.aggregate.pop(c)
            columns[c] = np.concatenate(pieces) if c == "enterprise_id" else pd.concat(pieces, ignore_index=True)
            del pieces
        ent = tables["enterprise"]
        if "enterprise_id" not in columns:  # no row kept
            empty = {"enterprise": ent, "enterprise_year": self.template}
            if "manager" in tables:
                empty["manager"] = tables["manager"]
            return aggregate_cluster_year(Panel(empty))
        ids = self.all_ids
        cluster_of = pd.Series(ent["cluster_id"].to_numpy(dtype=object), index=ent["enterprise_id"].astype(str))
        row_cluster, clusters = pd.factorize(cluster_of.reindex(ids).to_numpy()[columns["enterprise_id"]], sort=True)
        sizes = np.bincount(row_cluster[row_cluster >= 0], minlength=len(clusters))
        batches, current, size = [], [], 0
        for k, s in enumerate(sizes):
            current.append(k)
            size += s
            if size >= CLUSTER_BATCH_ROWS:
                batches.append(current)
                current, size = [], 0
        if current:
            batches.append(current)
        pieces = []
        for batch in batches:
            rows = np.flatnonzero(np.isin(row_cluster, batch))
            ey = pd.DataFrame({c: v.iloc[rows].reset_index(drop=True) for c, v in columns.items()
                               if c != "enterprise_id"})
            ey.insert(0, "enterprise_id", pd.Categorical.from_codes(columns["enterprise_id"][rows], categories=ids))
            wanted = ent[ent["cluster_id"].isin(np.asarray(clusters)[batch])]
            man = tables.get("manager")
            sub = {"enterprise": wanted, "enterprise_year": ey}
            if man is not None:
                sub["manager"] = man[man["enterprise_id"].isin(wanted["enterprise_id"])]
            pieces.append(aggregate_cluster_year(Panel(sub)))
        return pd.concat(pieces, ignore_index=True).sort_values(["cluster_id", "year"], kind="stable") \
            .reset_index(drop=True)
