"""Between the database and the library: a programme as a region folder, checked by symbiosis.inputs.

The web app never re-implements a check. To validate a facility or flow a firm entered, the programme is
written out as a region folder with the candidate row in it (last, so its row number is known) and loaded by
:func:`symbiosis.inputs.check_region`; the problems located on the candidate's row become field messages.
An uploaded workbook is merged the same way, its rows after everyone else's, so that each problem maps back
to its sheet cell.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl.utils import get_column_letter

from symbiosis.errors import Problem
from symbiosis.inputs import FACILITY_INPUT, FLOW_INPUT, check_region, load_region
from symbiosis.region import Region

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
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return first_facility, first_flow


def problems_with(programme: Programme, *, facilities: list[dict[str, str]] | None = None,
                  flows: list[dict[str, str]] | None = None) -> tuple[list[Problem], int, int]:
    """Every problem ``symbiosis check`` finds in the programme with these rows, and where the rows start."""
    with tempfile.TemporaryDirectory(prefix="symbiosis-web-") as tmp:
        first_facility, first_flow = write_region(programme, Path(tmp), facilities=facilities, flows=flows)
        _region, error = check_region(Path(tmp))
    return (list(error.problems) if error else []), first_facility, first_flow


def _file(problem: Problem) -> str:
    return Path(problem.file.split(" [")[0]).name


def row_problems(programme: Programme, table: str, row: dict[str, str]) -> dict[str, list[str]]:
    """The problems of one candidate row, by column ('' for the row as a whole)."""
    kwargs = {"facilities": [row]} if table == "facilities" else {"flows": [row]}
    problems, first_facility, first_flow = problems_with(programme, **kwargs)
    wanted = first_facility if table == "facilities" else first_flow
    out: dict[str, list[str]] = {}
    for p in problems:
        if _file(p) == f"{table}.csv" and p.row == wanted:
            out.setdefault(p.column or "", []).append(_message(p))
    return out


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
    for name in ("facilities", "flows"):
        frame = sheets.get(name)
        if frame is None:
            out[name] = []
            continue
        collected = Problems()
        table = table_from_frame(frame, name, collected)
        problems += [WorkbookProblem(name, None, _message(p)) for p in collected.items]
        out[name] = [{str(k): str(v) for k, v in r.items()} for r in table.frame.fillna("").to_dict("records")]
    if not out.get("facilities") and not out.get("flows"):
        problems.append(WorkbookProblem("-", None, "no 'facilities' or 'flows' sheet with rows"))
    out["_columns_facilities"] = [{"c": str(c)} for c in sheets.get("facilities", pd.DataFrame()).columns]
    out["_columns_flows"] = [{"c": str(c)} for c in sheets.get("flows", pd.DataFrame()).columns]
    return out, problems


def workbook_problems(programme: Programme, rows: dict[str, list[dict[str, str]]]) -> list[WorkbookProblem]:
    """The checks of ``symbiosis check`` on the programme with the workbook's rows, at the workbook's cells.
    Only problems on the workbook's own rows are reported (other firms' rows are not theirs to see)."""
    facilities, flows = rows.get("facilities", []), rows.get("flows", [])
    columns = {"facilities": [r["c"] for r in rows.get("_columns_facilities", [])],
               "flows": [r["c"] for r in rows.get("_columns_flows", [])]}
    kept = {"facilities": ["facility_id", *FACILITY_FIELDS], "flows": ["flow_id", "facility_id", *FLOW_FIELDS]}
    # A column the app does not keep would be dropped without a word: refused at its header cell instead.
    unkept = [WorkbookProblem(sheet, f"{get_column_letter(k + 1)}1", f"column '{c}' is not kept by the web app; "
                              f"expected one of {', '.join(kept[sheet])}")
              for sheet in ("facilities", "flows") for k, c in enumerate(columns[sheet]) if c not in kept[sheet]]
    if unkept:
        return unkept
    problems, first_facility, first_flow = problems_with(programme, facilities=facilities, flows=flows)
    out = []
    for p in problems:
        sheet = _file(p).removesuffix(".csv")
        if sheet not in ("facilities", "flows") or p.row is None:
            continue
        first, n = (first_facility, len(facilities)) if sheet == "facilities" else (first_flow, len(flows))
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
