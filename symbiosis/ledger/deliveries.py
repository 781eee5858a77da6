"""Bookings from files: a CSV of deliveries as firms' ERP systems export them, and an optimiser run's
``exchanges.csv`` turned into transfers (credits flow with the exchanges).

A deliveries file has one booking a row; its dialect (separator, quoting) is sniffed with :mod:`csv`, its
encoding read as the region files are (UTF-8, UTF-16 with BOM, or Windows-1252). Every row is checked before
anything is booked, and the whole file is then booked in one transaction: a file is booked whole or not at
all, and every problem is reported with its row as a spreadsheet shows it (header = row 1).
"""

from __future__ import annotations

import csv
import datetime
import io
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from symbiosis.errors import InputError, Problems
from symbiosis.ledger.ledger import BookingRefused, BookingSpec, Claim, Conversion, Ledger, Receipt, Transfer
from symbiosis.ledger.rules import Refused
from symbiosis.tables import decode_text, read_bytes

#: the columns a deliveries file may have; ``kind`` says which others a row needs
DELIVERY_COLUMNS = ("kind", "date", "site", "material_group", "scheme", "declaration_id", "quantity_t",
                    "certified_share", "certified_t", "certificate_id", "supplier", "customer", "to_site",
                    "to_group", "input_group", "output_group", "factor", "note")
REQUIRED = {
    "receipt": ("date", "site", "material_group", "scheme", "declaration_id", "quantity_t", "certificate_id",
                "supplier"),
    "claim": ("date", "site", "material_group", "scheme", "declaration_id", "quantity_t"),
    "transfer": ("date", "site", "to_site", "material_group", "scheme", "declaration_id", "quantity_t"),
    "conversion": ("date", "site", "scheme", "input_group", "output_group", "certified_t", "factor"),
}
NUMBER_COLUMNS = ("quantity_t", "certified_share", "certified_t", "factor")


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:64 * 1024]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _read_text(path: Path) -> tuple[str, str]:
    """(file name, text) of a CSV, read and decoded as every region file is; InputError if it can't be."""
    problems = Problems()
    raw = read_bytes(path, problems, path.name)
    text = None if raw is None else decode_text(raw, path.name, problems)
    problems.raise_if_any()
    assert text is not None
    return path.name, text


def read_deliveries(path: str | Path) -> list[tuple[int, BookingSpec]]:
    """The bookings of a deliveries CSV with their spreadsheet row numbers; raises :class:`InputError`
    listing every problem (row, column, found, expected) when any row is wrong."""
    file, text = _read_text(Path(path))
    problems = Problems()
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError([_problem(file, "the file is empty", row=1, expected="a header row and booking rows")])
    dialect = _dialect(text)
    decimal_comma = getattr(dialect, "delimiter", ",") == ";"
    rows = list(csv.reader(io.StringIO(text), dialect))
    header = [h.strip() for h in rows[0]]
    for position, name in enumerate(header):
        if name not in DELIVERY_COLUMNS:
            problems.add(file, "unknown column", row=1, column=name or f"#{position + 1}", found=name,
                         expected="one of " + ", ".join(DELIVERY_COLUMNS))
    if "kind" not in header:
        problems.add(file, "no 'kind' column", row=1, expected="kind = receipt, claim, transfer or conversion")
    problems.raise_if_any()
    bookings: list[tuple[int, BookingSpec]] = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.add(file, "wrong number of cells", row=number, found=str(len(cells)),
                         expected=f"{len(header)}, as in the header")
            continue
        record = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
        spec = _row_booking(record, file, number, problems, decimal_comma)
        if spec is not None:
            bookings.append((number, spec))
    problems.raise_if_any()
    if not bookings:
        raise InputError([_problem(file, "the file has a header but no booking rows", row=2,
                                   expected="at least one booking row")])
    return bookings


def _problem(file: str, message: str, **where: Any) -> Any:
    collector = Problems()
    collector.add(file, message, **where)
    return collector.items[0]


def _row_booking(record: dict[str, str], file: str, row: int, problems: Problems,
                 decimal_comma: bool) -> BookingSpec | None:
    kind = record.get("kind", "").lower()
    if kind not in REQUIRED:
        problems.add(file, "unknown booking kind", row=row, column="kind", found=record.get("kind", ""),
                     expected="receipt, claim, transfer or conversion")
        return None
    ok = True
    for column in REQUIRED[kind]:
        if not record.get(column):
            problems.add(file, f"a {kind} needs this column", row=row, column=column, found="",
                         expected="a value")
            ok = False
    values: dict[str, str | None] = {k: (v or None) for k, v in record.items()}
    for column in NUMBER_COLUMNS:
        value = values.get(column)
        if value is None:
            continue
        if decimal_comma:
            value = value.replace(".", "").replace(",", ".") if "," in value else value
        try:
            number = Decimal(value)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            problems.add(file, "not a number", row=row, column=column, found=record[column],
                         expected="a number (tonnes, or a share from 0 to 1)")
            ok = False
            continue
        values[column] = str(number)
    if values.get("date"):
        try:
            datetime.date.fromisoformat(str(values["date"]))
        except ValueError:
            problems.add(file, "not a date", row=row, column="date", found=record["date"], expected="YYYY-MM-DD")
            ok = False
    if kind in ("receipt", "claim", "transfer") and not (values.get("certified_share") or values.get("certified_t")):
        problems.add(file, f"a {kind} needs its certified quantity", row=row, column="certified_t", found="",
                     expected="certified_t (tonnes) or certified_share (0 to 1)")
        ok = False
    if not ok:
        return None
    v = values
    if kind == "receipt":
        return Receipt(str(v["site"]), str(v["material_group"]), str(v["scheme"]), str(v["declaration_id"]),
                       v["quantity_t"], v["date"], certificate_id=v.get("certificate_id"), supplier=v.get("supplier"),
                       certified_share=v.get("certified_share"), certified_t=v.get("certified_t"), note=v.get("note"))
    if kind == "claim":
        return Claim(str(v["site"]), str(v["material_group"]), str(v["scheme"]), str(v["declaration_id"]),
                     v["quantity_t"], v["date"], customer=v.get("customer"), certified_share=v.get("certified_share"),
                     certified_t=v.get("certified_t"), note=v.get("note"))
    if kind == "transfer":
        return Transfer(str(v["site"]), str(v["to_site"]), str(v["material_group"]), str(v["scheme"]),
                        str(v["declaration_id"]), v["quantity_t"], v["date"], certified_share=v.get("certified_share"),
                        certified_t=v.get("certified_t"), to_group=v.get("to_group"), note=v.get("note"))
    return Conversion(str(v["site"]), str(v["scheme"]), str(v["input_group"]), str(v["output_group"]),
                      v["certified_t"], v["factor"], v["date"], note=v.get("note"))


def book_rows(ledger: Ledger, rows: list[tuple[int, BookingSpec]], file: str) -> int:
    """Book located rows in one transaction; a refusal becomes an :class:`InputError` naming the row. Returns
    the number of entries written."""
    try:
        return len(ledger.book(*(spec for _, spec in rows)))
    except BookingRefused as exc:
        raise InputError([_problem(file, f"booking refused, nothing in the file was booked: {exc.reason}",
                                   row=rows[exc.index][0])]) from None
    except Refused as exc:
        raise InputError([_problem(file, f"booking refused: {exc.reason}", row=rows[0][0])]) from None


def book_deliveries(ledger: Ledger, path: str | Path) -> int:
    """Read and book a deliveries CSV whole; returns the number of entries written."""
    return book_rows(ledger, read_deliveries(path), Path(path).name)


def exchange_transfers(path: str | Path, *, scheme: str, date: Any, period_months: int,
                       certified_share: Any, prefix: str = "EX") -> list[tuple[int, BookingSpec]]:
    """Transfers for the exchanges of an optimiser run (``exchanges.csv``, written with ``--private`` so that
    the facility ids are the ledger's site ids): each exchange of material between two facilities moves one
    balancing period's share of its annual tonnes (``amount_t_per_yr`` × months / 12, rounded down to the
    kilogram), of which ``certified_share`` is certified, from the supplying to the receiving facility, under
    the declaration ``PREFIX-SUPPLY-DEMAND-DATE``. Heat (no tonnes) and exchanges within one facility are
    left out."""
    file, text = _read_text(Path(path))
    problems = Problems()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    needed = ("supply_id", "demand_id", "supply_facility", "demand_facility", "material", "amount_t_per_yr")
    missing = [c for c in needed if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError([_problem(file, "not an exchanges.csv of `symbiosis optimise`", row=1,
                                   column=", ".join(missing), expected="columns " + ", ".join(needed))])
    day = datetime.date.fromisoformat(str(date))
    bookings: list[tuple[int, BookingSpec]] = []
    for number, record in enumerate(reader, start=2):
        amount = (record.get("amount_t_per_yr") or "").strip()
        if not amount or record["supply_facility"] == record["demand_facility"]:
            continue
        try:
            per_year = Decimal(amount)
        except InvalidOperation:
            problems.add(file, "not a number", row=number, column="amount_t_per_yr", found=amount,
                         expected="tonnes per year")
            continue
        quantity = (per_year * period_months / 12).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
        declaration = f"{prefix}-{record['supply_id']}-{record['demand_id']}-{day.isoformat()}"
        bookings.append((number, Transfer(record["supply_facility"], record["demand_facility"], record["material"],
                                          scheme, declaration, str(quantity), day.isoformat(),
                                          certified_share=certified_share,
                                          note=f"exchange {record['supply_id']} -> {record['demand_id']}")))
    problems.raise_if_any()
    return bookings
