"""Country names and codes to ISO 3166-1 alpha-3: the built-in recode ``country_iso3``.

The table ``data_schemas/mappings/country_iso3.csv`` lists, for each ISO 3166-1 country (and Kosovo,
XKX, as the World Bank codes it), its ISO names, alpha-2 and alpha-3 codes, and the spellings the
World Bank and survey files use ("Congo, Dem. Rep.", "Lao PDR", "Cote d'Ivoire", "Turkiye").
Names are compared without case, accents or punctuation, and a survey year written after the name,
as in pooled Enterprise Surveys files ("Kenya2013", "Kenya 2013"), is ignored.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import cache

from cluster_econ import schema

NAME = "country_iso3"
_TRAILING_YEAR = re.compile(r"^(.*?\D)[\s_-]*(19|20)\d\d$")


def country_key(value: object) -> object:
    """Lookup key of a country name or code: lower case, no accents or punctuation, no trailing year."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().casefold()
    text = text.replace("&", " and ")
    text = re.sub(r"[^0-9a-z]+", " ", text).strip()
    m = _TRAILING_YEAR.match(text)
    if m:
        text = m.group(1).strip()
    return text


@cache
def country_table() -> dict[object, str]:
    """Lookup key -> ISO alpha-3, read once from the shipped table."""
    path = schema.schema_dir() / "mappings" / "country_iso3.csv"
    table: dict[object, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):  # read as written: "NA" is Namibia here, not a missing value
            table.setdefault(country_key(row["name"]), row["iso3"])
    return table
