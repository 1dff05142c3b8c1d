"""The latest non-missing value of each column per key, fed in pieces (for streamed sources).

:func:`cluster_econ.harmonize.pipeline._latest_per_key` reduces enterprise-level facts reported on
every enterprise-year row to one row per enterprise: for each column, the value of the latest row
(by year, then file, then row) where it is not missing; keys whose non-missing values differ are
counted. :class:`LatestPerKey` gives the same result when the rows arrive in pieces, holding only
one entry per key and column (never the rows): for each column, the position of the latest value
seen, its code in a dictionary of that column's distinct values, and the least and greatest codes
seen (a key's values differ exactly when those differ). A row's position is (missing year, year,
file, row in the file); rows with a missing or non-numeric year count as the latest, as in
``np.lexsort``.

Written here because the pieces can come in any order of years: no library reduces "latest by a
sort key, per key, per column, ignoring missing values" incrementally.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class _Growing:
    """A 1-d array that grows as keys are added (amortised doubling)."""

    def __init__(self, dtype: Any, fill: Any) -> None:
        self.values = np.full(1024, fill, dtype=dtype)
        self.fill = fill

    def ensure(self, n: int) -> None:
        if n > len(self.values):
            bigger = np.full(max(n, 2 * len(self.values)), self.fill, dtype=self.values.dtype)
            bigger[: len(self.values)] = self.values
            self.values = bigger


class _Position:
    """Per key, the position of a chosen row: (missing year, year, file and row packed)."""

    def __init__(self, fill_low: bool) -> None:
        # "low" positions start above every real one (so that any row is earlier), "high" below
        self.nan = _Growing(np.int8, 2 if fill_low else -1)
        self.year = _Growing(np.float64, 0.0)
        self.row = _Growing(np.int64, 0)

    def ensure(self, n: int) -> None:
        for a in (self.nan, self.year, self.row):
            a.ensure(n)

    def later(self, keys: np.ndarray, nan: np.ndarray, year: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Whether each (key, position) is later than the key's stored position."""
        s_nan, s_year, s_row = self.nan.values[keys], self.year.values[keys], self.row.values[keys]
        return (nan > s_nan) | ((nan == s_nan) & ((year > s_year) | ((year == s_year) & (row > s_row))))

    def set(self, keys: np.ndarray, nan: np.ndarray, year: np.ndarray, row: np.ndarray) -> None:
        self.nan.values[keys], self.year.values[keys], self.row.values[keys] = nan, year, row


class _Column:
    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}
        self.distinct: list[Any] = []
        self.latest = _Position(fill_low=False)
        self.value = _Growing(np.int64, -1)
        self.low = _Growing(np.int64, np.iinfo(np.int64).max)
        self.high = _Growing(np.int64, -1)

    def ensure(self, n: int) -> None:
        self.latest.ensure(n)
        for a in (self.value, self.low, self.high):
            a.ensure(n)

    def encode(self, series: pd.Series) -> np.ndarray:
        """Codes of the values in this column's dictionary (-1 for missing)."""
        local, uniques = pd.factorize(series)
        glob = np.empty(len(uniques) + 1, dtype=np.int64)
        glob[-1] = -1
        for i, u in enumerate(uniques.tolist()):
            code = self.codes.get(u)
            if code is None:
                code = self.codes[u] = len(self.distinct)
                self.distinct.append(u)
            glob[i] = code
        return glob[local]


class LatestPerKey:
    """Feed pieces with :meth:`add`; :meth:`result` gives what ``_latest_per_key`` gives for all rows
    at once (the keys in the order they first appear, by position), and the number of keys whose
    values disagree for each column.

    Parameters
    ----------
    key : list of str
        The key columns (``["enterprise_id"]``, or ``["enterprise_id", "manager_id"]``).
    provenance : tuple of str
        Columns taken from the latest row of the key whatever they hold (``_source``, ``_source_row``).
    """

    def __init__(self, key: list[str], provenance: tuple[str, ...] = ("_source", "_source_row")) -> None:
        self.key = key
        self.provenance = provenance
        self.keys: dict[Any, int] = {}
        self.key_values: list[Any] = []
        self.first = _Position(fill_low=True)
        self.last = _Position(fill_low=False)
        self.last_prov: dict[str, _Growing] = {}
        self.prov_values: dict[str, list[Any]] = {}
        self.columns: dict[str, _Column] = {}
        self.keyed = _Growing(bool, True)

    def _key_codes(self, df: pd.DataFrame) -> np.ndarray:
        if len(self.key) == 1:
            local, uniques = pd.factorize(df[self.key[0]], use_na_sentinel=False)
            items = [None if pd.isna(u) else u for u in uniques.tolist()]
        else:
            combo = np.zeros(len(df), dtype=np.int64)
            for k in self.key:
                codes, uniques = pd.factorize(df[k], use_na_sentinel=False)
                combo = combo * (len(uniques) + 1) + codes
            local, _ = pd.factorize(combo)
            rows = np.flatnonzero(~pd.Series(local).duplicated().to_numpy())  # first row of each key
            columns = [df[k].to_numpy(dtype=object)[rows] for k in self.key]
            items = [tuple(None if pd.isna(v) else v for v in values) for values in zip(*columns, strict=True)]
        glob = np.empty(len(items), dtype=np.int64)
        for i, item in enumerate(items):
            code = self.keys.get(item)
            if code is None:
                code = self.keys[item] = len(self.key_values)
                self.key_values.append(item)
            glob[i] = code
        n = len(self.key_values)
        self.first.ensure(n)
        self.last.ensure(n)
        self.keyed.ensure(n)
        for g in self.last_prov.values():
            g.ensure(n)
        for col in self.columns.values():
            col.ensure(n)
        return glob[local]

    def lookup(self, values: pd.Series) -> np.ndarray:
        """Codes of the keys (one key column) already seen; -1 for others and for missing values."""
        local, uniques = pd.factorize(values)
        glob = np.array([*(self.keys.get(u, -1) for u in uniques.tolist()), -1], dtype=np.int64)
        return glob[local]

    def add(self, df: pd.DataFrame, file: int, row: np.ndarray) -> None:
        """One piece: its rows (key, value columns, ``year``), the file's position among the sources,
        and each row's position in its file."""
        if not len(df):
            return
        keys = self._key_codes(df)
        if "year" in df.columns:
            year = pd.to_numeric(df["year"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            year = np.zeros(len(df))
        nan = np.isnan(year).astype(np.int8)
        year = np.nan_to_num(year, nan=0.0)
        packed = (np.int64(file) << 40) + np.asarray(row, dtype=np.int64)
        # the rows in position order: the last row of a key in this piece is its latest
        order = np.lexsort((packed, year, nan))
        k, n_, y_, p_ = keys[order], nan[order], year[order], packed[order]
        missing_key = np.zeros(len(df), bool)
        for c in self.key:
            missing_key |= df[c].isna().to_numpy()
        self.keyed.values[keys[missing_key]] = False
        last = np.flatnonzero(~pd.Series(k).duplicated(keep="last").to_numpy())
        first = np.flatnonzero(~pd.Series(k).duplicated(keep="first").to_numpy())
        earlier = ~self.first.later(k[first], n_[first], y_[first], p_[first])
        self.first.set(k[first][earlier], n_[first][earlier], y_[first][earlier], p_[first][earlier])
        newer = self.last.later(k[last], n_[last], y_[last], p_[last])
        for c in self.provenance:
            if c in df.columns:
                g = self.last_prov.setdefault(c, _Growing(np.int64, -1))
                g.ensure(len(self.key_values))
                values = self.prov_values.setdefault(c, [])
                chosen = order[last][newer]
                g.values[k[last][newer]] = np.arange(len(values), len(values) + len(chosen))
                values.extend(df[c].to_numpy(dtype=object)[chosen].tolist())
        self.last.set(k[last][newer], n_[last][newer], y_[last][newer], p_[last][newer])
        for c in df.columns:
            if c in self.key or c in self.provenance or c in ("year", "_order"):
                continue
            col = self.columns.get(c)
            if col is None:
                col = self.columns[c] = _Column()
                col.ensure(len(self.key_values))
            codes = col.encode(df[c])[order]
            present = np.flatnonzero(codes >= 0)
            if not len(present):
                continue
            kp, vp = k[present], codes[present]
            lp = present[~pd.Series(kp).duplicated(keep="last").to_numpy()]
            newer_c = col.latest.later(k[lp], n_[lp], y_[lp], p_[lp])
            upd = lp[newer_c]
            col.latest.set(k[upd], n_[upd], y_[upd], p_[upd])
            col.value.values[k[upd]] = codes[upd]
            np.minimum.at(col.low.values, kp, vp)
            np.maximum.at(col.high.values, kp, vp)

    def result(self) -> tuple[pd.DataFrame, dict[str, int]]:
        """The reduced table and, per column, how many keys reported different values."""
        n = len(self.key_values)
        order = np.lexsort((self.first.row.values[:n], self.first.year.values[:n], self.first.nan.values[:n]))
        out: dict[str, Any] = {}
        if len(self.key) == 1:
            out[self.key[0]] = pd.Series(np.array(self.key_values, dtype=object)[order], dtype=object)
        else:
            for i, c in enumerate(self.key):
                out[c] = pd.Series(np.array([kv[i] for kv in self.key_values], dtype=object)[order], dtype=object)
        disagree: dict[str, int] = {}
        keyed = self.keyed.values[:n]
        for c, col in self.columns.items():
            distinct = np.empty(len(col.distinct) + 1, dtype=object)
            distinct[:-1] = col.distinct
            distinct[-1] = None
            out[c] = pd.Series(distinct[col.value.values[:n][order]]).infer_objects()
            n_conf = int(((col.high.values[:n] > col.low.values[:n]) & (col.high.values[:n] >= 0) & keyed).sum())
            if n_conf:
                disagree[c] = n_conf
        for c, g in self.last_prov.items():
            values = np.array(self.prov_values[c] + [None], dtype=object)
            out[c] = pd.Series(values[g.values[:n][order]]).infer_objects()
        return pd.DataFrame(out), disagree
