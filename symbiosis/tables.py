"""Reading the tables people keep: CSV (as European spreadsheets export them), Excel sheets, GeoPackage layers.

Every table is read as text first, so codes keep their leading zeros (EWC ``010101``, NACE ``03.22``) and
nothing is guessed silently; columns are then parsed one by one, and every cell that does not parse becomes
a located :class:`~symbiosis.errors.Problem`. CSVs may be UTF-8 (with or without BOM) or Windows-1252, comma-
or semicolon-separated; in a semicolon file a decimal comma is read as a decimal point (``1.234,5`` is
1234.5). A comma inside a number in a comma-separated file is ambiguous and refused.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from symbiosis.errors import Problems

_TRUE = {"true", "yes", "y", "1", "t", "ja", "x"}
_FALSE = {"false", "no", "n", "0", "f", "nej", ""}
_EURO_NUMBER = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$|^[+-]?\d+,\d+$|^[+-]?\d+$")


@dataclass
class Table:
    """A table of text cells, with where it came from, for located error messages.

    ``first_row`` is the spreadsheet row number of the first data row (2 when the header is row 1).
    """

    frame: pd.DataFrame
    file: str
    decimal_comma: bool = False
    first_row: int = 2

    def row_number(self, position: int) -> int:
        return self.first_row + position


def _decode(raw: bytes, file: str, problems: Problems) -> str | None:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    problems.add(file, "cannot decode the file", expected="UTF-8 or Windows-1252 text",
                 fix="save the file as CSV UTF-8 from your spreadsheet program")
    return None


def read_csv_table(path: Path, problems: Problems, *, label: str | None = None) -> Table | None:
    """Read a CSV as text cells; returns None (with a problem recorded) if it cannot be used at all."""
    file = label or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.add(file, f"cannot read the file ({exc.strerror})")
        return None
    text = _decode(raw, file, problems)
    if text is None:
        return None
    if not text.strip():
        problems.add(file, "the file is empty", expected="a header row and at least one data row")
        return None
    header_line = text.splitlines()[0]
    separator = ";" if header_line.count(";") > header_line.count(",") else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False,
                            skipinitialspace=True, quoting=csv.QUOTE_MINIMAL)
    except (pd.errors.ParserError, ValueError) as exc:
        problems.add(file, f"cannot parse as CSV ({exc})",
                     expected=f"a '{separator}'-separated table with the same number of cells in every row")
        return None
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    frame = frame.apply(lambda col: col.str.strip())
    # A trailing all-empty line or a spreadsheet's empty rows are not data.
    frame = frame.loc[~(frame == "").all(axis=1)].reset_index(drop=True) if len(frame) else frame
    if frame.empty:
        problems.add(file, "the table has a header but no data rows", expected="at least one data row")
    return Table(frame=frame, file=file, decimal_comma=separator == ";")


def table_from_frame(frame: pd.DataFrame, file: str) -> Table:
    """A Table from a frame read elsewhere (Excel sheet, GeoPackage layer); all cells become text."""
    text = frame.copy()
    for column in text.columns:
        text[column] = text[column].map(_cell_text)
    text.columns = [str(c).strip() for c in text.columns]
    text = text.loc[~(text == "").all(axis=1)].reset_index(drop=True) if len(text) else text
    return Table(frame=text, file=file, decimal_comma=False)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value) if not value.is_integer() else str(int(value)) if abs(value) < 1e15 else repr(value)
    if isinstance(value, (np.floating,)):
        return _cell_text(float(value))
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value).strip()


def require_columns(table: Table, required: list[str], problems: Problems) -> bool:
    missing = [c for c in required if c not in table.frame.columns]
    for column in missing:
        problems.add(table.file, "a required column is missing", row=1, column=column,
                     found=", ".join(table.frame.columns) or "no columns",
                     expected=f"the columns {', '.join(required)}")
    return not missing


def text_column(table: Table, column: str, default: str = "") -> pd.Series:
    if column in table.frame.columns:
        return table.frame[column].astype(str)
    return pd.Series([default] * len(table.frame), index=table.frame.index, dtype=object)


def _parse_number(cell: str, decimal_comma: bool) -> float:
    if decimal_comma:
        if not _EURO_NUMBER.match(cell) and "," in cell:
            raise ValueError(cell)
        if "," in cell or re.match(r"^[+-]?\d{1,3}(\.\d{3})+$", cell):
            cell = cell.replace(".", "").replace(",", ".")
    elif "," in cell:
        raise ValueError(cell)
    return float(cell)


def number_column(table: Table, column: str, problems: Problems, *, required: bool = False,
                  minimum: float | None = None, maximum: float | None = None,
                  allow_negative: bool = True, mask: pd.Series | None = None,
                  expected: str = "a number") -> pd.Series:
    """Parse a column of numbers; empty cells are NaN (a problem when ``required``).

    ``mask`` limits the checks (and the result) to some rows; rows outside it are NaN.
    """
    values = pd.Series(np.nan, index=table.frame.index, dtype=float)
    if column not in table.frame.columns:
        return values
    cells = table.frame[column].astype(str)
    considered = np.ones(len(cells), dtype=bool) if mask is None else mask.to_numpy(dtype=bool)
    empty = (cells == "").to_numpy()
    has_comma = cells.str.contains(",", regex=False).to_numpy()
    text = cells
    if table.decimal_comma:
        european = cells.str.match(_EURO_NUMBER).to_numpy() & (
            has_comma | cells.str.match(r"^[+-]?\d{1,3}(\.\d{3})+$").to_numpy())
        text = cells.where(~european, cells.str.replace(".", "", regex=False).str.replace(",", ".", regex=False))
        comma_error = has_comma & ~european
    else:
        comma_error = has_comma
    parsed = pd.to_numeric(text.where(~(empty | comma_error)), errors="coerce").to_numpy(dtype=float)
    bad_text = considered & ~empty & (np.isnan(parsed) | comma_error)
    not_finite = considered & ~empty & ~bad_text & ~np.isfinite(parsed)
    lowered = cells.str.lower().to_numpy()
    literal_nan = np.isin(lowered, ["nan", "inf", "-inf", "+inf", "infinity", "-infinity"])
    for position in np.flatnonzero(bad_text):
        cell = cells.iat[position]
        if literal_nan[position]:
            problems.add(table.file, "not a finite number", row=table.row_number(int(position)), column=column,
                         found=cell, expected=expected)
            continue
        hint = ("a decimal comma in a comma-separated file is ambiguous; use a decimal point or "
                "save with ';' separators") if "," in cell and not table.decimal_comma else None
        problems.add(table.file, "not a number", row=table.row_number(int(position)), column=column,
                     found=cell, expected=expected, fix=hint)
    for position in np.flatnonzero(not_finite):
        problems.add(table.file, "not a finite number", row=table.row_number(int(position)), column=column,
                     found=cells.iat[position], expected=expected)
    if required:
        for position in np.flatnonzero(considered & empty):
            problems.add(table.file, "a value is required", row=table.row_number(int(position)), column=column,
                         found="an empty cell", expected=expected)
    ok = considered & ~empty & ~bad_text & ~not_finite
    with np.errstate(invalid="ignore"):
        negative = ok & (parsed < 0) if not allow_negative else np.zeros(len(cells), dtype=bool)
        low = ok & ~negative & (parsed < minimum) if minimum is not None else np.zeros(len(cells), dtype=bool)
        high = ok & ~negative & (parsed > maximum) if maximum is not None else np.zeros(len(cells), dtype=bool)
    for position in np.flatnonzero(negative):
        problems.add(table.file, "negative value", row=table.row_number(int(position)), column=column,
                     found=cells.iat[position], expected=f"{expected} ≥ 0")
    for position in np.flatnonzero(low | high):
        problems.add(table.file, "value out of range", row=table.row_number(int(position)), column=column,
                     found=cells.iat[position], expected=f"{expected} between {minimum} and {maximum}")
    keep = ok & ~negative & ~low & ~high
    values[keep] = parsed[keep]
    return values


def bool_column(table: Table, column: str, problems: Problems, *, default: bool | None = False
                ) -> pd.Series:
    """Parse true/false cells (also yes/no, 1/0); empty cells take ``default`` (None keeps them as NA)."""
    result: list[object] = []
    cells = text_column(table, column)
    for position, cell in enumerate(cells):
        lowered = cell.lower()
        if lowered == "":
            result.append(default)
        elif lowered in _TRUE:
            result.append(True)
        elif lowered in _FALSE:
            result.append(False)
        else:
            problems.add(table.file, "not a yes/no value", row=table.row_number(position), column=column,
                         found=cell, expected="true or false (also yes/no, 1/0)")
            result.append(default)
    return pd.Series(result, index=table.frame.index, dtype=object)


def duplicate_ids(table: Table, column: str, problems: Problems) -> None:
    cells = table.frame[column]
    duplicated = cells[(cells != "") & cells.duplicated(keep=False)]
    first_seen: dict[str, int] = {}
    for position, value in duplicated.items():
        row = table.row_number(int(position))  # type: ignore[arg-type]
        if value in first_seen:
            problems.add(table.file, "duplicate id", row=row, column=column, found=value,
                         expected=f"a unique id (already used on row {first_seen[value]})")
        else:
            first_seen[value] = row
    for position, value in cells.items():
        if value == "":
            problems.add(table.file, "an id is required", row=table.row_number(int(position)),  # type: ignore[arg-type]
                         column=column, found="an empty cell", expected="a unique id")
