"""Between the database and the library: a programme as a region folder, checked by symbiosis.inputs.

The web app never re-implements a check. To validate a facility or flow a firm entered, the programme is
written out as a region folder with the candidate row in it (last, so its row number is known) and loaded by
:func:`symbiosis.inputs.check_region`; the problems located on the candidate's row become field messages.
An uploaded workbook is merged the same way, its rows after everyone else's, so that each problem maps back
to its sheet cell.
"""

from __future__ import annotations

import copy
import csv
import io
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl.utils import get_column_letter

from symbiosis.errors import Problem
from symbiosis.inputs import FACILITY_INPUT, FLOW_INPUT, check_region, load_region
from symbiosis.region import Region

from . import composition
from .models import Facility, Flow, Programme

#: The columns the web app keeps (a subset of the region format's; the rest stay empty).
FACILITY_FIELDS = [c for c in FACILITY_INPUT if c != "facility_id" and hasattr(Facility, c)]
FLOW_FIELDS = [c for c in FLOW_INPUT if c not in ("flow_id", "facility_id") and hasattr(Flow, c)]


def facility_row(f: Facility) -> dict[str, str]:
    row = {"facility_id": f.facility_id}
    for c in FACILITY_FIELDS:
        value = getattr(f, c)
        row[c] = ("true" if value else "false") if isinstance(value, bool) else str(value or "")
    return row


def flow_row(f: Flow, facility_id: str | None = None) -> dict[str, str]:
    row = {"flow_id": f.flow_id, "facility_id": facility_id or f.facility.facility_id}
    for c in FLOW_FIELDS:
        row[c] = str(getattr(f, c) or "")
    return row


def _write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_region(programme: Programme, folder: Path, *, facilities: list[dict[str, str]] | None = None,
                 flows: list[dict[str, str]] | None = None) -> tuple[int, int]:
    """Write the programme as a region folder; ``facilities``/``flows`` rows replace rows of the same id and go
    last. Returns the row number (spreadsheet style) of the first extra facility and flow row."""
    facilities = facilities or []
    flows = flows or []
    new_facility_ids = {r["facility_id"] for r in facilities}
    new_flow_ids = {r["flow_id"] for r in flows}
    fac_rows = [facility_row(f) for f in Facility.objects.filter(programme=programme)
                if f.facility_id not in new_facility_ids]
    flow_rows = [flow_row(f) for f in Flow.objects.filter(facility__programme=programme).select_related("facility")
                 if f.flow_id not in new_flow_ids]
    first_facility, first_flow = len(fac_rows) + 2, len(flow_rows) + 2
    (folder / "region.yaml").write_text(programme.settings_yaml, encoding="utf-8")
    _write_csv(folder / "facilities.csv", ["facility_id", *FACILITY_FIELDS], [*fac_rows, *facilities])
    _write_csv(folder / "flows.csv", ["flow_id", "facility_id", *FLOW_FIELDS], [*flow_rows, *flows])
    for name, text in (programme.extra_tables or {}).items():
        if name not in composition.TABLES:  # quality and permits: rows of their own, written below
            (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    composition.write_tables(programme, folder)
    return first_facility, first_flow


def problems_with(programme: Programme, *, facilities: list[dict[str, str]] | None = None,
                  flows: list[dict[str, str]] | None = None) -> tuple[list[Problem], int, int]:
    """Every problem ``symbiosis check`` finds in the programme with these rows, and where the rows start."""
    problems, first = problems_with_tables(programme, facilities=facilities, flows=flows)
    return problems, first["facilities"], first["flows"]


def problems_with_tables(programme: Programme, *, facilities: list[dict[str, str]] | None = None,
                         flows: list[dict[str, str]] | None = None,
                         tables: dict[str, list[dict[str, str]]] | None = None) -> tuple[list[Problem], dict[str, int]]:
    """:func:`problems_with`, also with rows of the quality and permits tables (``tables``, by name: they replace
    every row of the flows or facilities they name, and go last); the row number where each table's rows start."""
    with tempfile.TemporaryDirectory(prefix="symbiosis-web-") as tmp:
        first_facility, first_flow = write_region(programme, Path(tmp), facilities=facilities, flows=flows)
        first = {"facilities": first_facility, "flows": first_flow}
        if tables:
            first.update(composition.write_tables(programme, Path(tmp), tables))
        _region, error = check_region(Path(tmp))
    return (list(error.problems) if error else []), first


def _file(problem: Problem) -> str:
    return Path(problem.file.split(" [")[0]).name


def row_problems(programme: Programme, table: str, row: dict[str, str]) -> dict[str, list[str]]:
    """The problems of one candidate row, by column ('' for the row as a whole)."""
    return check_row(programme, table, row).problems


class CheckedRow:
    """The outcome of :func:`check_row`: problems by column, and for a flow without problems its facility as
    loaded with the row in it, and the programme's data version read before the rows were (search_cache uses
    them to bring its region up to date without loading the programme again)."""

    def __init__(self, problems: dict[str, list[str]], region: Region | None = None, version: int = -1,
                 facility_id: str = ""):
        self.problems, self.region, self.version, self.facility_id = problems, region, version, facility_id


def check_row(programme: Programme, table: str, row: dict[str, str]) -> CheckedRow:
    """The checks of ``symbiosis check`` on one candidate row.

    A facility row is checked within the whole programme (its coordinates are compared with the others').
    A flow row is checked within its facility: the facility's row and flows with the candidate among them, and
    the rows of the programme's other tables that concern only them (its quality rows, its permits...); what
    the row shares with other facilities' rows, its id, is checked here against the database. The checks of a
    flow row are its own and its facility's (units, densities, codes, the facility's balance), so the problems
    on the row are those of the whole programme, at a cost that does not grow with the programme."""
    out: dict[str, list[str]] = {}
    if table in composition.TABLES:  # a quality or permit row: symbiosis.web.composition
        return CheckedRow(composition.check_row(programme, table, row))
    if table == "facilities":
        problems, first_facility, _ = problems_with(programme, facilities=[row])
        for p in problems:
            if _file(p) == "facilities.csv" and p.row == first_facility:
                out.setdefault(p.column or "", []).append(_message(p))
        return CheckedRow(out)
    facility_id, flow_id = row["facility_id"], row["flow_id"]
    taken = Flow.objects.filter(facility__programme=programme, flow_id=flow_id).exclude(
        facility__facility_id=facility_id).exists()
    if taken:
        out.setdefault("flow_id", []).append("this flow_id is taken by another facility; choose another")
    version = int(Programme.objects.filter(pk=programme.pk).values_list("data_version", flat=True).get())
    in_memory = facility_tables(programme, facility_id, flow=row)
    if in_memory is not None:  # the same checks, on the rows in memory (no folder written and read back)
        settings, frames, first_flow = in_memory
        region, error = _check_tables(settings, frames)
    else:
        with tempfile.TemporaryDirectory(prefix="symbiosis-web-") as tmp:
            first_flow = write_facility(programme, Path(tmp), facility_id, flow=row)
            region, error = check_region(Path(tmp))
    for p in (error.problems if error else []):
        if _file(p) == "flows.csv" and p.row == first_flow:
            out.setdefault(p.column or "", []).append(_message(p))
    return CheckedRow(out, None if out or error else region, version, facility_id)


_parsed: dict[tuple[int, str], tuple[int, list[str], list[list[str]]]] = {}


def _extra_rows(programme: Programme, name: str, text: str) -> tuple[list[str], list[list[str]]]:
    """A table of ``extra_tables`` as header and rows (parsed once per programme and text)."""
    key = (programme.pk, name)
    digest = hash(text)
    hit = _parsed.get(key)
    if hit is None or hit[0] != digest:
        rows = list(csv.reader(io.StringIO(text)))
        hit = (digest, rows[0] if rows else [], rows[1:])
        _parsed[key] = hit
    return hit[1], hit[2]


class _IndexedTable:
    """A table of ``extra_tables`` with its rows indexed by the column that names a flow or a facility."""

    def __init__(self, header: list[str], rows: list[list[str]]):
        self.header, self.rows = header, rows
        self.by_flow = [k for k, c in enumerate(header) if c == "flow_id"]
        self.by_facility = [k for k, c in enumerate(header) if c in ("facility_id", "supply_facility",
                                                                   "demand_facility")]
        key = self.by_flow[0] if self.by_flow else self.by_facility[0] if self.by_facility else None
        self.key = key
        self.index: dict[str, list[int]] = {}
        if key is not None:
            for position, r in enumerate(rows):
                self.index.setdefault(r[key] if key < len(r) else "\0", []).append(position)

    def kept(self, facility_id: str, flow_ids: set[str]) -> list[list[str]]:
        """The rows :func:`write_facility` keeps for the facility (same rows, same order), found by the index."""
        if self.key is None:
            positions: Iterable[int] = range(len(self.rows))
        else:
            wanted = flow_ids if self.by_flow else {"", facility_id}
            positions = sorted(p for value in wanted for p in self.index.get(value, ()))
        return [r for r in (self.rows[p] for p in positions)
                if all(k < len(r) and r[k] in flow_ids for k in self.by_flow)
                and all(k < len(r) and r[k] in ("", facility_id) for k in self.by_facility)]


_indexed: dict[tuple[int, str], tuple[int, _IndexedTable]] = {}
_settings_parsed: dict[int, tuple[str, Any]] = {}


def _indexed_table(programme: Programme, name: str, text: str) -> _IndexedTable:
    """An ``extra_tables`` table parsed and indexed once per programme and text."""
    key = (programme.pk, name)
    digest = hash(text)
    hit = _indexed.get(key)
    if hit is None or hit[0] != digest:
        header, rows = _extra_rows(programme, name, text)
        hit = (digest, _IndexedTable(header, rows))
        _indexed[key] = hit
    return hit[1]


def _settings_of(text: str) -> Any:
    """region.yaml's text parsed as the loader parses it (once per text); None where it has a problem (then
    the check goes through a folder, so that the problem is reported as ``symbiosis check`` reports it)."""
    from symbiosis.errors import Problems
    from symbiosis.process_models import yaml_from_text

    digest = hash(text)
    hit = _settings_parsed.get(digest)
    if hit is None or hit[0] != text:
        problems = Problems()
        data = yaml_from_text(text.removeprefix("\ufeff"), problems, "region.yaml")  # as read with utf-8-sig
        hit = (text, data if isinstance(data, dict) and not problems.items else None)
        _settings_parsed.clear()  # one programme's text or a few: no growth
        _settings_parsed[digest] = hit
    return copy.deepcopy(hit[1])


def facility_tables(programme: Programme, facility_id: str, *, flow: dict[str, str]
                    ) -> tuple[dict[str, Any], dict[str, Any], int] | None:
    """The region folder :func:`write_facility` writes, as region.yaml's mapping and frames of text cells
    (:func:`symbiosis.inputs.load_tables`), with the row number of ``flow``; None when the programme's files
    cannot be checked in memory (region.yaml with a problem or naming reference files of the folder, a table
    the loader does not read from a folder by name): then the folder is written."""
    import pandas as pd

    from symbiosis.inputs import TABLE_NAMES

    settings = _settings_of(programme.settings_yaml)
    extra = programme.extra_tables or {}
    if settings is None or settings.get("reference") or set(extra) - set(TABLE_NAMES):
        return None
    facility = Facility.objects.filter(programme=programme, facility_id=facility_id).first()
    fac_rows = [facility_row(facility)] if facility is not None else []
    flow_rows = [flow_row(f, facility_id) for f in Flow.objects.filter(
        facility__programme=programme, facility__facility_id=facility_id) if f.flow_id != flow["flow_id"]]
    flow_ids = {r["flow_id"] for r in flow_rows} | {flow["flow_id"]}
    flow_columns = ["flow_id", "facility_id", *FLOW_FIELDS]
    frames: dict[str, Any] = {
        "facilities": pd.DataFrame(fac_rows, columns=["facility_id", *FACILITY_FIELDS], dtype=object),
        "flows": pd.DataFrame([[r.get(c, "") for c in flow_columns] for r in [*flow_rows, flow]],
                              columns=flow_columns, dtype=object)}
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    for name, text in extra.items():
        if name not in composition.TABLES:
            table = _indexed_table(programme, name, text)
            tables[name] = (table.header, table.kept(facility_id, flow_ids))
    for name in composition.TABLES:  # the facility's quality and permit rows (and those left as text)
        got = composition.table_rows(programme, name, facility_id=facility_id)
        if not isinstance(got, str):
            tables[name] = (got[0], _IndexedTable(got[0], [[r.get(c, "") for c in got[0]] for r in got[1]])
                            .kept(facility_id, flow_ids))
    for name, (header, kept) in tables.items():
        if not kept:  # an optional table with a header and no row is an error of its own: left out
            continue
        width = len(header)  # a short row reads as empty cells, a long one as the CSV reader would refuse
        if any(len(r) > width for r in kept):
            return None
        frames[name] = pd.DataFrame([[*r, *[""] * (width - len(r))] for r in kept], columns=header, dtype=object)
    return settings, frames, len(flow_rows) + 2


def _check_tables(settings: dict[str, Any], frames: dict[str, Any]) -> tuple[Region | None, Any]:
    from symbiosis.errors import InputError
    from symbiosis.inputs import load_tables

    try:
        return load_tables(settings, frames, base_dir=Path(tempfile.gettempdir())), None
    except InputError as exc:
        return None, exc


def write_facility(programme: Programme, folder: Path, facility_id: str, *, flow: dict[str, str] | None) -> int:
    """Write one facility of the programme as a region folder: its row, its flows with ``flow`` (replacing the
    flow of the same id, last; None: its flows as they are), and the rows of the other tables that name only
    it or its flows. Returns the row number (spreadsheet style) of ``flow``."""
    facility = Facility.objects.filter(programme=programme, facility_id=facility_id).first()
    fac_rows = [facility_row(facility)] if facility is not None else []
    flow_rows = [flow_row(f, facility_id) for f in Flow.objects.filter(
        facility__programme=programme, facility__facility_id=facility_id)
        if flow is None or f.flow_id != flow["flow_id"]]
    flow_ids = {r["flow_id"] for r in flow_rows} | ({flow["flow_id"]} if flow is not None else set())
    (folder / "region.yaml").write_text(programme.settings_yaml, encoding="utf-8")
    _write_csv(folder / "facilities.csv", ["facility_id", *FACILITY_FIELDS], fac_rows)
    _write_csv(folder / "flows.csv", ["flow_id", "facility_id", *FLOW_FIELDS],
               [*flow_rows, *([flow] if flow is not None else [])])
    tables = {name: _extra_rows(programme, name, text) for name, text in (programme.extra_tables or {}).items()
              if name not in composition.TABLES}
    for name in composition.TABLES:  # the facility's quality and permit rows (and those left as text)
        got = composition.table_rows(programme, name, facility_id=facility_id)
        if not isinstance(got, str):
            tables[name] = (got[0], [[r.get(c, "") for c in got[0]] for r in got[1]])
    for name, (header, rows) in tables.items():
        by_flow = [k for k, c in enumerate(header) if c == "flow_id"]
        by_facility = [k for k, c in enumerate(header) if c in ("facility_id", "supply_facility", "demand_facility")]
        kept = [r for r in rows
                if all(k < len(r) and r[k] in flow_ids for k in by_flow)
                and all(k < len(r) and r[k] in ("", facility_id) for k in by_facility)]
        if not kept:  # an optional table with a header and no row is an error of its own: left out
            continue
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(kept)
    return len(flow_rows) + 2


def _message(p: Problem) -> str:
    text = p.message
    if p.found is not None:
        text += f"; found {p.found!r}"
    if p.expected is not None:
        text += f"; expected {p.expected}"
    if p.fix:
        text += f". Fix: {p.fix}"
    return text


# ------------------------------------------------------------------------------------------ the loaded region


def load_programme_region(programme: Programme) -> Region:
    """The programme as a Region, loaded from the database now (searches share one per data version:
    :mod:`symbiosis.web.search_cache`)."""
    with tempfile.TemporaryDirectory(prefix="symbiosis-web-") as tmp:
        write_region(programme, Path(tmp))
        return load_region(Path(tmp))


def programme_region(programme: Programme) -> Region:
    """The programme loaded as a Region (built once per data version)."""
    from . import search_cache

    return search_cache.snapshot(programme).region


def clear_caches() -> None:
    """Forget loaded regions, optima and searches (a database restored or replaced under a running process)."""
    from . import search_cache

    search_cache.clear()


def partner_search(programme: Programme, flow_id: str) -> Any:
    """:func:`symbiosis.partners.find_partners` on the programme, sharing its region, candidates and optimum
    with every search of the same data version (:mod:`symbiosis.web.search_cache`)."""
    from django.conf import settings

    from . import search_cache

    return search_cache.search(programme, flow_id, settings.PARTNERS_EXACT_OPTIMUM_S)


# ------------------------------------------------------------------------------------------ workbook upload


#: The sheets of a firm's workbook (the region format's tables the app keeps).
SHEETS = ("facilities", "flows", "quality", "permits")


class WorkbookProblem:
    """One problem of an uploaded workbook, at its cell."""

    def __init__(self, sheet: str, cell: str | None, message: str):
        self.sheet, self.cell, self.message = sheet, cell, message

    def __str__(self) -> str:
        where = f"sheet {self.sheet}" + (f", cell {self.cell}" if self.cell else "")
        return f"{where}: {self.message}"


def read_workbook(path: Path) -> tuple[dict[str, list[dict[str, str]]], list[WorkbookProblem]]:
    """The facilities and flows sheets of a firm's workbook as rows of text (cells cleaned as the loader does)."""
    import pandas as pd

    from symbiosis.errors import Problems
    from symbiosis.tables import table_from_frame

    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object)
    except Exception as exc:  # openpyxl raises many kinds on a corrupt file
        return {}, [WorkbookProblem("-", None, f"cannot read the workbook ({type(exc).__name__}); expected an .xlsx")]
    out: dict[str, list[dict[str, str]]] = {}
    problems: list[WorkbookProblem] = []
    for name in SHEETS:
        frame = sheets.get(name)
        if frame is None:
            out[name] = []
            continue
        collected = Problems()
        table = table_from_frame(frame, name, collected)
        problems += [WorkbookProblem(name, None, _message(p)) for p in collected.items]
        out[name] = [{str(k): str(v) for k, v in r.items()} for r in table.frame.fillna("").to_dict("records")]
    if not any(out.get(name) for name in SHEETS):
        problems.append(WorkbookProblem("-", None, "no 'facilities', 'flows', 'quality' or 'permits' sheet with rows"))
    for name in SHEETS:
        out[f"_columns_{name}"] = [{"c": str(c)} for c in sheets.get(name, pd.DataFrame()).columns]
    return out, problems


def workbook_problems(programme: Programme, rows: dict[str, list[dict[str, str]]]) -> list[WorkbookProblem]:
    """The checks of ``symbiosis check`` on the programme with the workbook's rows, at the workbook's cells.
    Only problems on the workbook's own rows are reported (other firms' rows are not theirs to see)."""
    facilities, flows = rows.get("facilities", []), rows.get("flows", [])
    columns = {sheet: [r["c"] for r in rows.get(f"_columns_{sheet}", [])] for sheet in SHEETS}
    kept = {"facilities": ["facility_id", *FACILITY_FIELDS], "flows": ["flow_id", "facility_id", *FLOW_FIELDS],
            **{name: [key, *fields] for name, (key, fields, _n) in composition.TABLES.items()}}
    # A column the app does not keep would be dropped without a word: refused at its header cell instead.
    unkept = [WorkbookProblem(sheet, f"{get_column_letter(k + 1)}1", f"column '{c}' is not kept by the web app; "
                              f"expected one of {', '.join(kept[sheet])}")
              for sheet in SHEETS for k, c in enumerate(columns[sheet]) if c not in kept[sheet]]
    if unkept:
        return unkept
    too_long = composition.too_long(rows, columns)
    if too_long:
        return [WorkbookProblem(sheet, cell, message) for sheet, cell, message in too_long]
    tables = {name: rows[name] for name in composition.TABLES if rows.get(name)}
    problems, first_rows = problems_with_tables(programme, facilities=facilities, flows=flows, tables=tables)
    out = []
    for p in problems:
        sheet = _file(p).removesuffix(".csv")
        if sheet not in SHEETS or p.row is None:
            continue
        first, n = first_rows.get(sheet, -1), len(rows.get(sheet, []))
        if not first <= p.row < first + n:
            continue
        sheet_row = p.row - first + 2
        cell = None
        if p.column and p.column in columns[sheet]:
            cell = f"{get_column_letter(columns[sheet].index(p.column) + 1)}{sheet_row}"
        elif p.column:
            cell = f"row {sheet_row}, column {p.column}"
        else:
            cell = f"row {sheet_row}"
        out.append(WorkbookProblem(sheet, cell, _message(p)))
    return out


def as_text(value: Any) -> str:
    return "" if value is None else str(value)
