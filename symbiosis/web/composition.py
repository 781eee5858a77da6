"""A flow's composition (the region's quality table) and a facility's permits (its permits table), kept as rows.

Each quality row (:class:`~symbiosis.web.models.QualityEntry`) belongs to a flow and each permit
(:class:`~symbiosis.web.models.Permit`) to a facility, so a firm edits only its own and the history records
who changed what. The region the checks, searches and runs read is written from these rows as
``quality.csv`` and ``permits.csv``, in the order the rows were made (the first unit of a parameter is the one
the loader harmonises the programme's values to), exactly as the table a programme was loaded from.

Rows of a table that name no flow (no facility) of the programme when it was loaded or migrated cannot belong
to one: they stay in ``Programme.extra_tables`` under the table's name, as CSV text, and are written after the
others, so the checks still report them instead of the rows vanishing.

The checks are those of ``symbiosis check`` (:func:`symbiosis.inputs.check_region`), run on the facility's
folder (:func:`symbiosis.web.bridge.write_facility`) with the candidate row last in its table: every check of
a quality or permit row concerns the row, its flow or its facility, except one, that the units of a parameter
convert to one another across the programme, which :func:`check_quality` runs with the loader's own function
against the programme's other rows of the parameter.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from symbiosis.errors import Problem, Problems
from symbiosis.inputs import PERMIT_INPUT, QUALITY_INPUT
from symbiosis.tables import number_column, read_csv_table

#: The tables kept as rows: the column naming the row's owner, the other columns (the model's fields) and the
#: columns holding numbers.
TABLES: dict[str, tuple[str, list[str], tuple[str, ...]]] = {
    "quality": ("flow_id", [c for c in QUALITY_INPUT if c != "flow_id"], ("value", "virgin_value")),
    "permits": ("facility_id", [c for c in PERMIT_INPUT if c != "facility_id"], ("max_t_per_yr",)),
}
QUALITY_FIELDS = TABLES["quality"][1]
PERMIT_FIELDS = TABLES["permits"][1]

Rows = list[dict[str, str]]


# ------------------------------------------------------------------------------------------ text <-> rows


def read_table(name: str, text: str) -> tuple[list[str], Rows] | None:
    """A table's CSV text as the loader reads it (separator, byte-order mark, accents and spaces as
    :func:`symbiosis.tables.read_csv_table` has them): its header and rows of text cells. Numbers written with a
    decimal comma (a ';'-separated table) are rewritten with a point, so that the rows mean the same in the
    ','-separated table they are written to. None when the loader could not read it as a table."""
    problems = Problems()
    with tempfile.TemporaryDirectory(prefix="symbiosis-web-") as tmp:
        path = Path(tmp) / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        table = read_csv_table(path, problems, label=f"{name}.csv")
    if table is None or problems.items:
        return None
    frame = table.frame.astype(str)
    if table.decimal_comma:
        for column in TABLES[name][2] if name in TABLES else ():
            if column not in frame.columns:
                continue
            parsed = number_column(table, column, Problems()).to_numpy(dtype=float)
            frame[column] = [repr(float(x)) if math.isfinite(x) else cell
                             for x, cell in zip(parsed, frame[column], strict=True)]
    return list(frame.columns), frame.to_dict("records")


def to_text(header: list[str], rows: Iterable[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def split_table(name: str, text: str, owners: Iterable[str], max_length: dict[str, int] | None = None
                ) -> tuple[Rows, str | None]:
    """The rows of a table's text that can be kept as rows of the database (their owner, a flow_id or a
    facility_id, is one of ``owners``, every column is one the table has, and no cell is longer than
    ``max_length`` says), in the table's order, and the text of the rest (None: nothing left). A table the
    loader cannot read is left whole, as it was."""
    key, fields, _numbers = TABLES[name]
    read = read_table(name, text)
    if read is None:
        return [], text
    header, rows = read
    if any(c not in (key, *fields) for c in header):  # a column the rows cannot keep: the table stays text
        return [], text
    known = set(owners)
    limits = max_length or {}

    def fits(r: dict[str, str]) -> bool:
        return r.get(key, "") in known and all(len(r.get(c, "")) <= n for c, n in limits.items())

    kept = [{c: r.get(c, "") for c in (key, *fields)} for r in rows if fits(r)]
    rest = [r for r in rows if not fits(r)]
    return kept, (to_text(header, rest) if rest else None)


_leftover_cache: dict[tuple[str, int], tuple[list[str], Rows] | None] = {}


def _leftover(programme: Any, name: str) -> tuple[tuple[list[str], Rows] | None, str | None]:
    """The rows of table ``name`` left as text in ``extra_tables`` (parsed once per text), and the text."""
    text = (programme.extra_tables or {}).get(name)
    if not text:
        return ([], []), None
    key = (name, hash(text))
    if key not in _leftover_cache:
        if len(_leftover_cache) > 64:
            _leftover_cache.clear()
        _leftover_cache[key] = read_table(name, text)
    return _leftover_cache[key], text


# ------------------------------------------------------------------------------------------ the region's tables


def table_rows(programme: Any, name: str, *, facility_id: str | None = None, exclude_pk: int | None = None,
               replaced_owners: Iterable[str] = ()) -> tuple[list[str], Rows] | str:
    """Table ``name`` of the programme as a header and rows (the database's rows in their order, then those
    left as text), of one facility only when ``facility_id`` is given, without the row ``exclude_pk`` and the
    rows of ``replaced_owners``. A table left as text the loader cannot read comes back as that text."""
    from .models import Permit, QualityEntry

    key, fields, _numbers = TABLES[name]
    replaced = set(replaced_owners)
    if name == "quality":
        qs = QualityEntry.objects.filter(flow__facility__programme=programme)
        if facility_id is not None:
            qs = qs.filter(flow__facility__facility_id=facility_id)
        owner = "flow__flow_id"
    else:
        qs = Permit.objects.filter(facility__programme=programme)  # type: ignore[assignment]
        if facility_id is not None:
            qs = qs.filter(facility__facility_id=facility_id)  # type: ignore[assignment]
        owner = "facility__facility_id"
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    rows = [dict(zip((key, *fields), values, strict=True))
            for values in qs.order_by("pk").values_list(owner, *fields)]
    rows = [r for r in rows if r[key] not in replaced]
    leftover, text = _leftover(programme, name)
    if leftover is None:
        return text or ""
    header = [key, *fields]
    header += [c for c in leftover[0] if c not in header]
    rows += [r for r in leftover[1] if r.get(key, "") not in replaced]
    return header, rows


def write_tables(programme: Any, folder: Path, replace: dict[str, Rows] | None = None) -> dict[str, int]:
    """Write ``quality.csv`` and ``permits.csv`` of the programme into ``folder`` (a table without rows is not
    written: an optional table with a header and no row is an error of its own). ``replace`` rows take the
    place of every row of the owners they name and go last. Returns, per table, the row number (spreadsheet
    style) of the first row of ``replace``."""
    replace = replace or {}
    first: dict[str, int] = {}
    for name, (key, _fields, _numbers) in TABLES.items():
        extra = replace.get(name, [])
        got = table_rows(programme, name, replaced_owners={r.get(key, "") for r in extra})
        if isinstance(got, str):  # left as text the loader cannot read: written as it is, its problems reported
            (folder / f"{name}.csv").write_text(got, encoding="utf-8")
            first[name] = -1
            continue
        header, rows = got
        first[name] = len(rows) + 2
        if rows or extra:
            (folder / f"{name}.csv").write_text(to_text(header, [*rows, *extra]), encoding="utf-8")
    return first


def quality_row(entry: Any, flow_id: str | None = None) -> dict[str, str]:
    return {"flow_id": flow_id or entry.flow.flow_id, **{c: str(getattr(entry, c) or "") for c in QUALITY_FIELDS}}


def permit_row(permit: Any, facility_id: str | None = None) -> dict[str, str]:
    return {"facility_id": facility_id or permit.facility.facility_id,
            **{c: str(getattr(permit, c) or "") for c in PERMIT_FIELDS}}


# ------------------------------------------------------------------------------------------ loading a programme


def store_tables(programme: Any, tables: dict[str, str], *, history: bool = True) -> None:
    """Keep the quality and permits tables of ``tables`` (CSV text by name) as rows of the programme, whose
    facilities and flows are in the database; rows naming none of them stay as text (``extra_tables``)."""
    from .models import Facility, Flow, Permit, QualityEntry

    store_rows(programme, tables, Facility, Flow, QualityEntry, Permit, history=history)


def store_rows(programme: Any, tables: dict[str, str], facility_model: Any, flow_model: Any, quality_model: Any,
               permit_model: Any, *, history: bool) -> None:
    """:func:`store_tables` with the models given (a migration passes its historical ones)."""
    extra = dict(programme.extra_tables or {})
    for name, text in tables.items():
        if name not in TABLES:
            continue
        if name == "quality":
            owners = dict(flow_model.objects.filter(facility__programme=programme).values_list("flow_id", "pk"))
            model, owner_field = quality_model, "flow_id"
        else:
            owners = dict(facility_model.objects.filter(programme=programme).values_list("facility_id", "pk"))
            model, owner_field = permit_model, "facility_id"
        key, fields, _numbers = TABLES[name]
        limits = {c: int(model._meta.get_field(c).max_length) for c in fields
                  if getattr(model._meta.get_field(c), "max_length", None)}
        kept, rest = split_table(name, text, owners, limits)
        objects = [model(**{owner_field: owners[r[key]]}, **{c: r[c] for c in fields}) for r in kept]
        if history:
            from simple_history.utils import bulk_create_with_history

            bulk_create_with_history(objects, model, batch_size=1000)
        else:
            model.objects.bulk_create(objects, batch_size=1000)
        if rest is None:
            extra.pop(name, None)
        else:
            extra[name] = rest
    programme.extra_tables = extra
    programme.save(update_fields=["extra_tables"])


# ------------------------------------------------------------------------------------------ checks


def _file(problem: Problem) -> str:
    return Path(problem.file.split(" [")[0]).name


def check_row(programme: Any, table: str, row: dict[str, str]) -> dict[str, list[str]]:
    """The problems ``symbiosis check`` finds on one candidate quality or permit row, by column ('' for the
    row). ``row`` holds the table's columns, and ``_pk``, the id of the row it replaces ('' for a new one)."""
    from . import bridge
    from .models import Facility, Flow

    key, fields, _numbers = TABLES[table]
    pk = int(row["_pk"]) if row.get("_pk") else None
    if table == "quality":
        facility_id = str(Flow.objects.filter(facility__programme=programme, flow_id=row[key])
                          .values_list("facility__facility_id", flat=True).get())
    else:
        facility_id = str(Facility.objects.filter(programme=programme, facility_id=row[key])
                          .values_list("facility_id", flat=True).get())
    out: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="symbiosis-web-") as tmp:
        folder = Path(tmp)
        bridge.write_facility(programme, folder, facility_id, flow=None)
        got = table_rows(programme, table, facility_id=facility_id, exclude_pk=pk)
        header, rows = got if not isinstance(got, str) else ([key, *fields], [])
        candidate = {c: str(row.get(c, "")) for c in (key, *fields)}
        (folder / f"{table}.csv").write_text(to_text(header, [*rows, candidate]), encoding="utf-8")
        at = len(rows) + 2
        _region, error = bridge.check_region(folder)
    for p in (error.problems if error else []):
        if _file(p) == f"{table}.csv" and p.row == at:
            out.setdefault(p.column or "", []).append(bridge._message(p))
    if table == "quality" and not out:
        for p in _programme_units(programme, candidate, pk, at):
            out.setdefault(p.column or "", []).append(bridge._message(p))
    return out


def _programme_units(programme: Any, row: dict[str, str], pk: int | None, at: int) -> list[Problem]:
    """The loader's check that a parameter's units convert to one another across the region
    (``symbiosis.inputs._harmonise_quality_units``), on the candidate and the programme's first other row of
    its parameter in another unit (units that convert to one unit convert to each other, so one suffices)."""
    from symbiosis.inputs import _harmonise_quality_units

    from .models import QualityEntry

    other = (QualityEntry.objects.filter(flow__facility__programme=programme, parameter=row["parameter"])
             .exclude(pk=pk).exclude(unit=row["unit"]).order_by("pk").values_list("unit", flat=True).first())
    if other is None:
        return []
    frame = pd.DataFrame({"flow_id": ["", row["flow_id"]], "parameter": [row["parameter"]] * 2,
                          "value": [0.0, 0.0], "unit": [other, row["unit"]], "bound": ["", ""],
                          "virgin_value": [np.nan, np.nan], "origin": ["the programme", f"quality.csv:{at}"]})
    problems = Problems()
    _harmonise_quality_units(frame, problems)
    return [p for p in problems.items if _file(p) == "quality.csv" and p.row == at]


# ------------------------------------------------------------------------------------------ pages


@functools.cache
def known_parameters() -> tuple[str, ...]:
    """The parameters of data/reference/quality_parameters.csv, offered as the firm types one (the loader
    accepts others too: docs/data-format.md)."""
    from symbiosis.reference import data_dir

    path = data_dir() / "reference" / "quality_parameters.csv"
    if not path.exists():
        return ()
    with path.open(encoding="utf-8", newline="") as handle:
        return tuple(sorted({r["parameter"].strip() for r in csv.DictReader(handle) if r.get("parameter")}))


def change_label(h: Any) -> str:
    """A historical quality row or permit as the audit page names it (its flow or facility read with it)."""
    try:
        owner = h.flow.flow_id if hasattr(h, "flow_id") else h.facility.facility_id
    except Exception:  # the flow or facility removed since: the history keeps its id only
        owner = f"#{getattr(h, 'flow_id', None) or getattr(h, 'facility_id', '?')}"
    if hasattr(h, "parameter"):
        bound = f" {h.bound}" if h.bound else ""
        return f"composition of {owner}: {h.parameter}{bound} {h.value} {h.unit}"
    limit = f" up to {h.max_t_per_yr} t/yr" if h.max_t_per_yr else ""
    return f"permit of {owner}: EWC {h.ewc_code}{limit}"


def too_long(rows: dict[str, Rows], columns: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """Cells of a workbook longer than the database keeps (PostgreSQL refuses them, SQLite would keep them
    whole): (sheet, cell, message) for each, so that the firm sees where, not a server error."""
    from openpyxl.utils import get_column_letter

    from .models import Facility, Flow, Permit, QualityEntry

    models: dict[str, Any] = {"facilities": Facility, "flows": Flow, "quality": QualityEntry, "permits": Permit}
    out = []
    for sheet, model in models.items():
        for k, column in enumerate(columns.get(sheet, [])):
            owner: Any = model if hasattr(model, column) else Flow if column == "flow_id" else Facility
            try:
                limit = getattr(owner._meta.get_field(column), "max_length", None)
            except Exception:  # not a field (the checks report unknown columns)
                continue
            if not limit:
                continue
            for i, row in enumerate(rows.get(sheet, [])):
                if len(str(row.get(column, ""))) > limit:
                    out.append((sheet, f"{get_column_letter(k + 1)}{i + 2}",
                                f"at most {limit} characters in column {column}; found {len(row[column])}"))
    return out
