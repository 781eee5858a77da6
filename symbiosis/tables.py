"""Reading the tables people keep: CSV (as European spreadsheets export them), Excel sheets, GeoPackage layers.

Every table is read as text first, so codes keep their leading zeros (EWC ``010101``, NACE ``03.22``) and
nothing is guessed silently; columns are then parsed one by one, and every cell that does not parse becomes
a located :class:`~symbiosis.errors.Problem`. CSVs may be UTF-8 (with or without BOM), UTF-16 with a BOM, or
Windows-1252 (only when no byte of the file is UTF-8, and then with a warning); comma- or semicolon-separated.
In a semicolon file the decimal convention is read from the numbers themselves (``0,5`` and ``1.234,5`` show a
decimal comma, ``0.002`` and ``1.5`` a decimal point); a number that is still ambiguous (``1.234``) is refused.
Headers are matched without regard to case or surrounding spaces; an unknown header is an error with the
nearest known column. Cells are NFC-normalised and stripped; invisible and control characters are refused.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import math
import re
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from symbiosis.errors import Problems

_TRUE = {"true", "yes", "y", "1", "t", "ja", "x"}
_FALSE = {"false", "no", "n", "0", "f", "nej", ""}

# A table bigger than this is not a region anyone keeps in a spreadsheet; reading it whole would only exhaust
# memory (the 10,000-facility benchmark region is about 10 MB).
MAX_TABLE_BYTES = 256 * 1024 * 1024

# Columns that hold free text: line breaks and joiners are allowed there, not in ids, codes or numbers.
FREE_TEXT_COLUMNS = frozenset({"name", "note", "source", "description", "citation", "value"})
# Columns parsed as numbers anywhere: their cells tell the decimal convention of a semicolon file.
NUMBER_COLUMNS = frozenset({
    "lat", "lon", "activity", "amount", "price", "max_secondary_share", "max_distance_km", "uncertainty_pct",
    "virgin_value", "distance_km", "cost_per_t", "co2e_per_t", "density_t_per_m3", "ratio", "max_share",
    "processing_cost_per_t", "processing_co2e_per_t", "co2e_t_per_t", "tax_per_t", "price_uncertainty_pct",
})
# Numbers beyond this are typing or unit errors in any column (the largest figure a region holds, a mass in
# kg per year, stays far below it), and would wreck the LP's numerics.
MAX_ABS_NUMBER = 1e15

# Invisible characters: C0/C1 controls, format characters (zero-width space and joiners, soft hyphen, word
# joiner, BOM) and bidirectional overrides, which make two ids look alike or reorder text on screen.
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_FORMAT = "\u00ad\u200b-\u200d\u2060-\u2064\ufeff\u180e"
_INVISIBLE_IN_TEXT = re.compile(f"[{_CONTROL}{_BIDI}]")
_INVISIBLE_IN_CODES = re.compile(f"[{_CONTROL}{_BIDI}{_FORMAT}\t\n\r]")
_INVISIBLE_QUICK = re.compile(f"[{_CONTROL}{_BIDI}{_FORMAT}\t\r]")

# Decimal conventions in a semicolon file.
_COMMA_EVIDENCE = re.compile(r"^[+-]?\d+,\d+$|^[+-]?\d{1,3}(\.\d{3})+,\d+$|^[+-]?\d{1,3}(\.\d{3}){2,}$")
_POINT_NUMBER = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")
_AMBIGUOUS = re.compile(r"^[+-]?[1-9]\d{0,2}\.\d{3}$")
_THOUSANDS_DOT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$|^[+-]?\d+(,\d+)?$")


@dataclass
class Table:
    """A table of text cells, with where it came from, for located error messages.

    ``first_row`` is the spreadsheet row number of the first data row (2 when the header is row 1).
    ``decimal_comma`` is true for a semicolon-separated CSV, whose numbers may use a decimal comma; the
    convention is then read per column from the cells themselves (see :func:`number_column`).
    ``warnings`` are non-fatal findings from reading (e.g. the file was read as Windows-1252).
    """

    frame: pd.DataFrame
    file: str
    decimal_comma: bool = False
    first_row: int = 2
    warnings: list[str] = field(default_factory=list)
    _file_convention: str | None = field(default=None, repr=False)

    def row_number(self, position: int) -> int:
        return self.first_row + position

    def file_convention(self) -> str:
        """``comma``, ``point``, ``mixed`` or ``none``: what the numeric columns of this file show."""
        if self._file_convention is None:
            seen = {_column_convention(self.frame[c].astype(str))[0] for c in self.frame.columns
                    if c in NUMBER_COLUMNS}
            seen.discard("none")
            self._file_convention = seen.pop() if len(seen) == 1 else "mixed" if seen else "none"
        return self._file_convention


def snippet(text: object, limit: int = 60) -> str:
    """A cell as an error message may quote it: control characters escaped, at most ``limit`` characters."""
    value = str(text)
    value = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------- reading


def read_bytes(path: Path, problems: Problems, file: str, *, max_bytes: int = MAX_TABLE_BYTES) -> bytes | None:
    """The bytes of a regular file no bigger than ``max_bytes``; anything else is a located problem.

    Devices, FIFOs and directories are refused before they are opened (``/dev/zero`` would never end).
    """
    try:
        info = path.stat()
    except OSError as exc:
        problems.add(file, f"cannot read the file ({exc.strerror})")
        return None
    if not stat.S_ISREG(info.st_mode):
        problems.add(file, "not a regular file", expected="a file (not a device, pipe or folder)")
        return None
    if info.st_size > max_bytes:
        problems.add(file, "the file is too large", found=f"{info.st_size:,} bytes",
                     expected=f"at most {max_bytes:,} bytes")
        return None
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # a file that grows while read (or a /proc file) is still capped
    except OSError as exc:
        problems.add(file, f"cannot read the file ({exc.strerror})")
        return None
    if len(raw) > max_bytes:
        problems.add(file, "the file is too large", expected=f"at most {max_bytes:,} bytes")
        return None
    return raw


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def decode_text(raw: bytes, file: str, problems: Problems, warnings: list[str] | None = None,
                separator: str | None = None) -> str | None:
    """Decode a text file: UTF-8 strictly, UTF-16 with its BOM, or Windows-1252 for a file with no UTF-8 in it.

    A file that is UTF-8 in places and not in others (one cell typed in another program) is refused with the
    line of the first bad byte, rather than turned into mojibake throughout.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            problems.add(file, "cannot decode the file as UTF-16", row=1, found=f"byte {exc.start}",
                         expected="UTF-8 text", fix="save the file as CSV UTF-8 from your spreadsheet program")
            return None
    nul = raw.find(b"\x00")
    if nul >= 0:
        problems.add(file, "a binary file, not text (it contains a NUL byte)", row=_line_of(raw, nul),
                     expected="a CSV or YAML text file", fix="save the file as CSV UTF-8 from your spreadsheet program")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first_bad = exc.start + (3 if raw.startswith(codecs.BOM_UTF8) else 0)
    lenient = raw.decode("utf-8", errors="replace")
    utf8_elsewhere = raw.startswith(codecs.BOM_UTF8) or any(
        ord(ch) > 127 and ch != "\ufffd" for ch in lenient)
    if utf8_elsewhere:
        line = _line_of(raw, first_bad)
        column = _column_of_bad_byte(lenient.splitlines()[0] if lenient else "",
                                     lenient.splitlines()[line - 1] if line <= len(lenient.splitlines()) else "",
                                     separator)
        problems.add(file, "mixed text encodings: the file is UTF-8 but this line holds a byte that is not",
                     row=line, column=column, found=f"byte 0x{raw[first_bad]:02x}",
                     expected="UTF-8 throughout",
                     fix="retype the character in that cell, or save the whole file as CSV UTF-8")
        return None
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        problems.add(file, "cannot decode the file", row=_line_of(raw, exc.start), found=f"byte 0x{raw[exc.start]:02x}",
                     expected="UTF-8 or Windows-1252 text",
                     fix="save the file as CSV UTF-8 from your spreadsheet program")
        return None
    if warnings is not None:
        warnings.append(f"{file}: not UTF-8; read as Windows-1252 (save it as CSV UTF-8 to be sure of accents)")
    return text


def _column_of_bad_byte(header: str, line: str, separator: str | None) -> str | None:
    if separator is None:
        return None
    try:
        names = next(csv.reader([header], delimiter=separator))
        cells = next(csv.reader([line], delimiter=separator))
    except (csv.Error, StopIteration):
        return None
    for position, cell in enumerate(cells):
        if "\ufffd" in cell:
            return snippet(names[position].strip().lstrip("\ufeff")) if position < len(names) else None
    return None


def read_csv_table(path: Path, problems: Problems, *, label: str | None = None,
                   max_bytes: int = MAX_TABLE_BYTES) -> Table | None:
    """Read a CSV as text cells; returns None (with a problem recorded) if it cannot be used at all."""
    file = label or str(path)
    raw = read_bytes(path, problems, file, max_bytes=max_bytes)
    if raw is None:
        return None
    first_line = raw.split(b"\n", 1)[0]
    separator = ";" if first_line.count(b";") > first_line.count(b",") else ","
    warnings: list[str] = []
    text = decode_text(raw, file, problems, warnings, separator)
    if text is None:
        return None
    if not text.strip():
        problems.add(file, "the file is empty", row=1, expected="a header row and at least one data row")
        return None
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)  # one spelling of é: composed, whatever the editor wrote
    header_line = text.lstrip("\ufeff").splitlines()[0]
    separator = ";" if header_line.count(";") > header_line.count(",") else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False,
                            skipinitialspace=True, quoting=csv.QUOTE_MINIMAL, header=None)
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        line = re.search(r"line (\d+)", str(exc))
        problems.add(file, f"cannot parse as CSV ({snippet(exc, 200)})", row=int(line.group(1)) if line else None,
                     expected=f"a '{separator}'-separated table with the same number of cells in every row")
        return None
    header = ["" if pd.isna(c) else str(c) for c in frame.iloc[0]] if len(frame) else []
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = header
    table = _finish(frame, file, problems, decimal_comma=separator == ";", text_is_nfc=True)
    table.warnings.extend(warnings)
    if table.frame.empty:
        problems.add(file, "the table has a header but no data rows", row=2, expected="at least one data row")
    return table


def table_from_frame(frame: pd.DataFrame, file: str, problems: Problems | None = None) -> Table:
    """A Table from a frame read elsewhere (Excel sheet, GeoPackage layer); all cells become text."""
    text = frame.copy()
    for column in text.columns:
        text[column] = text[column].map(_cell_text)
    text.columns = ["" if str(c).startswith("Unnamed: ") else str(c) for c in text.columns]
    return _finish(text, file, problems if problems is not None else Problems(), decimal_comma=False)


def _finish(frame: pd.DataFrame, file: str, problems: Problems, *, decimal_comma: bool,
            text_is_nfc: bool = False) -> Table:
    """Normalise headers and cells (NFC, stripped), drop empty rows and empty unnamed columns."""
    names = [_clean_cell(str(c)).lstrip("\ufeff").strip() for c in frame.columns]
    if text_is_nfc:  # a CSV normalised as a whole: strip the cells column by column
        frame = frame.copy()
        frame.columns = pd.RangeIndex(len(names))
        for position in range(len(names)):
            frame[position] = frame[position].fillna("").astype(str).str.strip()
    else:
        cells = [_clean_cell(v) for v in frame.to_numpy(dtype=object).ravel()]
        frame = pd.DataFrame(np.array(cells, dtype=object).reshape(frame.shape), dtype=object)
    keep = []
    for position, name in enumerate(names):
        if name == "":
            if (frame[position] != "").any():
                first = int(np.flatnonzero((frame[position] != "").to_numpy())[0])
                problems.add(file, "a column without a header holds values", row=1,
                             column=f"column {position + 1}", found=snippet(frame[position].iat[first]),
                             expected="a header name in row 1 over every column that holds data")
            continue  # a trailing separator on every line: an empty column, not data
        keep.append(position)
    frame = frame[keep]
    frame.columns = [names[p] for p in keep]
    if len(frame):
        frame = frame.loc[~(frame == "").all(axis=1)].reset_index(drop=True)
    return Table(frame=frame, file=file, decimal_comma=decimal_comma)


def _clean_cell(value: object) -> str:
    """A cell as the checks see it: text, NFC-normalised (one spelling of é), without surrounding spaces
    (Unicode spaces such as the no-break space included)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.strip()


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
    if value is pd.NaT:
        return ""
    return str(value).strip()


# -------------------------------------------------------------------------------------------- columns


def require_columns(table: Table, required: list[str], problems: Problems,
                    known: Iterable[str] | None = None) -> bool:
    """Check the header: required columns present, and (given ``known``) no unknown or repeated column.

    Headers are matched to the known columns without regard to case or surrounding spaces, and renamed to
    them; an unknown header is an error naming the nearest known column. Cells of the known columns are then
    checked for invisible characters.
    """
    if known is not None:
        _match_headers(table, [*required, *[k for k in known if k not in required]], problems)
        _check_invisible(table, problems)
    missing = [c for c in required if c not in table.frame.columns]
    for column in missing:
        problems.add(table.file, "a required column is missing", row=1, column=column,
                     found=snippet(", ".join(table.frame.columns), 200) or "no columns",
                     expected=f"the columns {', '.join(required)}")
    return not missing


def _match_headers(table: Table, known: list[str], problems: Problems) -> None:
    by_key = {k.casefold(): k for k in known}
    renamed: list[str] = []
    seen: dict[str, int] = {}
    keep: list[int] = []
    for position, header in enumerate(table.frame.columns):
        name = by_key.get(str(header).strip().casefold())
        if name is None:
            close = difflib.get_close_matches(str(header).strip().casefold(), list(by_key), n=1, cutoff=0.6)
            problems.add(table.file, "unknown column", row=1, column=snippet(header), found=snippet(header),
                         expected=f"one of {', '.join(known)}",
                         fix=f"did you mean '{by_key[close[0]]}'?" if close else
                         "rename or remove the column (unknown columns are not silently dropped)")
            continue
        if name in seen:
            problems.add(table.file, "a column appears twice", row=1, column=name, found=snippet(header),
                         expected=f"one column '{name}' (already column {seen[name] + 1})")
            continue
        seen[name] = position
        keep.append(position)
        renamed.append(name)
    frame = table.frame.iloc[:, keep]
    frame.columns = renamed
    table.frame = frame
    table._file_convention = None


def _check_invisible(table: Table, problems: Problems) -> None:
    values = table.frame.to_numpy(dtype=object).ravel().tolist()
    joined = "\n".join(values)
    # the common case in one scan: no invisible character anywhere and no line break inside a cell
    if not _INVISIBLE_QUICK.search(joined) and joined.count("\n") == max(len(values) - 1, 0):
        return
    for column in table.frame.columns:
        pattern = _INVISIBLE_IN_TEXT if column in FREE_TEXT_COLUMNS else _INVISIBLE_IN_CODES
        cells = table.frame[column]
        bad = cells.str.contains(pattern, regex=True).to_numpy(dtype=bool)
        for position in np.flatnonzero(bad):
            cell = cells.iat[position]
            characters = sorted({f"U+{ord(ch):04X}" for ch in pattern.findall(cell)})
            problems.add(table.file, f"an invisible or control character ({', '.join(characters)})",
                         row=table.row_number(int(position)), column=column, found=snippet(cell),
                         expected="visible characters only",
                         fix="retype the cell; invisible characters make two ids look alike")


def require_text(table: Table, columns: Iterable[str], problems: Problems) -> np.ndarray:
    """Flag empty cells in required text columns; returns the mask of rows with any such empty cell."""
    empty_any = np.zeros(len(table.frame), dtype=bool)
    for column in columns:
        if column not in table.frame.columns:
            continue
        empty = (table.frame[column] == "").to_numpy()
        empty_any |= empty
        for position in np.flatnonzero(empty):
            problems.add(table.file, "a value is required", row=table.row_number(int(position)), column=column,
                         found="an empty cell", expected=f"a {column.replace('_', ' ')}")
    return empty_any


def text_column(table: Table, column: str, default: str = "") -> pd.Series:
    if column in table.frame.columns:
        return table.frame[column].astype(str)
    return pd.Series([default] * len(table.frame), index=table.frame.index, dtype=object)


# -------------------------------------------------------------------------------------------- numbers


def _column_convention(cells: pd.Series) -> tuple[str, np.ndarray, np.ndarray]:
    """The decimal convention a column's cells show: ``comma``, ``point``, ``mixed`` or ``none``.

    Returns it with the masks of cells that show a decimal comma and a decimal point. ``1.234`` shows
    neither (a thousands dot or a decimal point); ``0.002``, ``1.5`` and ``12.3456`` can only be decimal
    points; ``0,5``, ``1.234,5`` and ``1.234.567`` only a decimal comma (with thousands dots).
    """
    comma = cells.str.match(_COMMA_EVIDENCE).to_numpy(dtype=bool)
    point = (cells.str.match(_POINT_NUMBER) & ~cells.str.match(_AMBIGUOUS)).to_numpy(dtype=bool)
    if comma.any() and point.any():
        return "mixed", comma, point
    return ("comma" if comma.any() else "point" if point.any() else "none"), comma, point


def _number_text(table: Table, column: str, cells: pd.Series, considered: np.ndarray, problems: Problems
                 ) -> tuple[pd.Series, np.ndarray]:
    """Cells rewritten with a decimal point, and the mask of cells already reported as problems."""
    reported = np.zeros(len(cells), dtype=bool)
    if not table.decimal_comma:
        return cells, reported
    convention, comma, point = _column_convention(cells)
    if convention == "mixed":
        minority, majority = (point, "comma") if comma.sum() >= point.sum() else (comma, "point")
        for position in np.flatnonzero(minority & considered):
            problems.add(table.file, "decimal comma and decimal point mixed in one column",
                         row=table.row_number(int(position)), column=column, found=snippet(cells.iat[position]),
                         expected=f"every number of the column with a decimal {majority} like the others",
                         fix="write all numbers of a column the same way, e.g. 0,002 or 0.002")
        reported |= minority
        convention = majority
    if convention == "none":
        convention = table.file_convention()
    ambiguous = cells.str.match(_AMBIGUOUS).to_numpy(dtype=bool)
    if convention in ("none", "mixed"):
        for position in np.flatnonzero(ambiguous & considered):
            cell = cells.iat[position]
            problems.add(table.file, "ambiguous number: '.' may be a thousands separator or a decimal point",
                         row=table.row_number(int(position)), column=column, found=snippet(cell),
                         expected="a number whose decimal separator is unambiguous",
                         fix=f"write {cell.replace('.', '')} (no thousands separator) or "
                             f"{cell.replace('.', ',')} (decimal comma), or save the file with ',' separators "
                             "and decimal points")
        reported |= ambiguous
        return cells, reported
    if convention == "point":
        return cells, reported
    european = cells.str.match(_THOUSANDS_DOT).to_numpy(dtype=bool)
    text = cells.where(~european, cells.str.replace(".", "", regex=False).str.replace(",", ".", regex=False))
    return text, reported


def number_column(table: Table, column: str, problems: Problems, *, required: bool = False,
                  minimum: float | None = None, maximum: float | None = None,
                  allow_negative: bool = True, mask: pd.Series | None = None,
                  expected: str = "a number") -> pd.Series:
    """Parse a column of numbers; empty cells are NaN (a problem when ``required``).

    ``mask`` limits the checks (and the result) to some rows; rows outside it are NaN. In a semicolon file
    the decimal convention is the column's own (or, where its cells show none, the file's); an ambiguous
    ``1.234`` with nothing to decide it is refused. Numbers beyond ±1e15 are refused as typing or unit errors.
    """
    values = pd.Series(np.nan, index=table.frame.index, dtype=float)
    if column not in table.frame.columns:
        return values
    cells = table.frame[column].astype(str)
    considered = np.ones(len(cells), dtype=bool) if mask is None else mask.to_numpy(dtype=bool)
    empty = (cells == "").to_numpy()
    text, reported = _number_text(table, column, cells, considered, problems)
    comma_error = text.str.contains(",", regex=False).to_numpy() & ~reported
    parsed = pd.to_numeric(text.where(~(empty | comma_error | reported)), errors="coerce").to_numpy(dtype=float)
    bad_text = considered & ~empty & ~reported & (np.isnan(parsed) | comma_error)
    not_finite = considered & ~empty & ~reported & ~bad_text & ~np.isfinite(parsed)
    with np.errstate(invalid="ignore"):
        huge = considered & ~empty & ~reported & ~bad_text & ~not_finite & (np.abs(parsed) > MAX_ABS_NUMBER)
    literal_nan = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}
    for position in np.flatnonzero(bad_text):
        cell = cells.iat[position]
        if cell.lower() in literal_nan:
            problems.add(table.file, "not a finite number", row=table.row_number(int(position)), column=column,
                         found=snippet(cell), expected=expected)
            continue
        if "," in cell and not table.decimal_comma:
            hint: str | None = ("a decimal comma in a comma-separated file is ambiguous; use a decimal point or "
                                "save with ';' separators")
        elif "," in cell:
            hint = "this column uses a decimal point; write the number without a comma"
        else:
            hint = None
        problems.add(table.file, "not a number", row=table.row_number(int(position)), column=column,
                     found=snippet(cell), expected=expected, fix=hint)
    for position in np.flatnonzero(not_finite):
        problems.add(table.file, "not a finite number", row=table.row_number(int(position)), column=column,
                     found=snippet(cells.iat[position]), expected=expected)
    for position in np.flatnonzero(huge):
        problems.add(table.file, "implausibly large number", row=table.row_number(int(position)), column=column,
                     found=snippet(cells.iat[position]), expected=f"{expected} of at most {MAX_ABS_NUMBER:g} in size",
                     fix="check the unit and the number of digits")
    if required:
        for position in np.flatnonzero(considered & empty):
            problems.add(table.file, "a value is required", row=table.row_number(int(position)), column=column,
                         found="an empty cell", expected=expected)
    ok = considered & ~empty & ~bad_text & ~not_finite & ~huge & ~reported
    with np.errstate(invalid="ignore"):
        negative = ok & (parsed < 0) if not allow_negative else np.zeros(len(cells), dtype=bool)
        low = ok & ~negative & (parsed < minimum) if minimum is not None else np.zeros(len(cells), dtype=bool)
        high = ok & ~negative & (parsed > maximum) if maximum is not None else np.zeros(len(cells), dtype=bool)
    for position in np.flatnonzero(negative):
        problems.add(table.file, "negative value", row=table.row_number(int(position)), column=column,
                     found=snippet(cells.iat[position]), expected=f"{expected} ≥ 0")
    for position in np.flatnonzero(low | high):
        problems.add(table.file, "value out of range", row=table.row_number(int(position)), column=column,
                     found=snippet(cells.iat[position]), expected=f"{expected} between {minimum} and {maximum}")
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
                         found=snippet(cell), expected="true or false (also yes/no, 1/0)")
            result.append(default)
    return pd.Series(result, index=table.frame.index, dtype=object)


def duplicate_ids(table: Table, column: str, problems: Problems) -> None:
    """Empty, repeated, and case-insensitively colliding ids, each naming the row of the first use."""
    cells = table.frame[column]
    first_seen: dict[str, tuple[int, str]] = {}
    for position, value in enumerate(cells.tolist()):
        row = table.row_number(position)
        if value == "":
            problems.add(table.file, "an id is required", row=row, column=column, found="an empty cell",
                         expected="a unique id")
            continue
        key = value.casefold()
        if key not in first_seen:
            first_seen[key] = (row, value)
            continue
        first_row, first_value = first_seen[key]
        if first_value == value:
            problems.add(table.file, "duplicate id", row=row, column=column, found=snippet(value),
                         expected=f"a unique id (already used on row {first_row})")
        else:
            problems.add(table.file, "ids differ only by case", row=row, column=column, found=snippet(value),
                         expected=f"an id that differs from '{snippet(first_value)}' (row {first_row}) by more "
                                  "than case", fix="use one spelling for one thing; ids are compared without case "
                                                   "to catch typing slips")
