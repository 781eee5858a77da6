"""A flow's composition (quality rows) and a facility's permits in the web app: kept as rows (migration 0004
keeps a programme's tables), edited by the firm through forms whose checks are ``symbiosis check``'s, at
the field; in the workbook at their cells; every change with who and when; the data version raised."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from symbiosis.inputs import load_region
from symbiosis.reference import data_dir
from symbiosis.web.models import Facility, Flow, Permit, Programme, QualityEntry
from tests.web_helpers import World

pytestmark = pytest.mark.django_db

KALUNDBORG = data_dir() / "regions" / "kalundborg"
#: Permits for the tests (invented: Kalundborg publishes none): Gyproc twice for FGD gypsum (tonnages add up),
#: the wastewater plant for urban sludge without a tonnage.
PERMITS = ("facility_id,ewc_code,max_t_per_yr,source\n"
           "gyproc,100105,90000,invented for a test\n"
           "gyproc,100105,10000,invented for a test\n"
           "kalundborg_forsyning,190805,,invented for a test\n")


def _tables(region) -> dict[str, pd.DataFrame]:  # type: ignore[no-untyped-def]
    """The region's tables, their ``origin`` cells without the folder they were read from."""
    out = {"facilities": region.facilities, "flows": region.flows, "quality": region.quality,
           "permits": region.permits, "arcs": region.arcs}
    for name, frame in out.items():
        if "origin" in frame:
            frame = frame.copy()
            frame["origin"] = frame["origin"].astype(str).map(lambda o: Path(o).name if o.startswith("/") else o)
            out[name] = frame
    return out


def _assert_same_region(a, b) -> None:  # type: ignore[no-untyped-def]
    for name, frame in _tables(a).items():
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), _tables(b)[name].reset_index(drop=True),
                                      obj=name)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _old_style_region(programme, tmp: Path):  # type: ignore[no-untyped-def]
    """The region as the app before migration 0004 built it: facilities and flows from their rows, the other
    tables written as the text kept in ``extra_tables`` (bridge.write_region of that time)."""
    from symbiosis.web.bridge import FACILITY_FIELDS, FLOW_FIELDS, _write_csv, facility_row, flow_row

    tmp.mkdir()
    (tmp / "region.yaml").write_text(programme.settings_yaml, encoding="utf-8")
    facilities = programme.facilities.order_by("pk")
    _write_csv(tmp / "facilities.csv", ["facility_id", *FACILITY_FIELDS], [facility_row(f) for f in facilities])
    flows = [flow_row(f) for f in facilities.model._meta.apps.get_model("web", "Flow").objects.filter(
        facility__programme=programme).order_by("pk").select_related("facility")]
    _write_csv(tmp / "flows.csv", ["flow_id", "facility_id", *FLOW_FIELDS], flows)
    for name, text in programme.extra_tables.items():
        (tmp / f"{name}.csv").write_text(text, encoding="utf-8")
    return load_region(tmp)


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_a_programmes_region(tmp_path: Path) -> None:
    """A programme stored before 0004 (its quality and permits tables as CSV text) gives the same region after
    the migration, built from its rows: same facilities, flows, quality (order, units harmonised to the first
    unit seen), permits, arcs. Backwards, the text comes back and gives it again."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from symbiosis.web import bridge

    folder = tmp_path / "kalundborg"
    shutil.copytree(KALUNDBORG, folder)
    (folder / "permits.csv").write_text(PERMITS, encoding="utf-8")
    old = [("web", "0003_programme_changes")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(old)
        apps = MigrationExecutor(connection).loader.project_state(old).apps
        P, Firm, F, Fl = (apps.get_model("web", n) for n in ("Programme", "Firm", "Facility", "Flow"))
        programme = P.objects.create(
            name="Old", slug="old", settings_yaml=(folder / "region.yaml").read_text("utf-8"),
            extra_tables={n: (folder / f"{n}.csv").read_text("utf-8") for n in ("quality", "arcs", "permits")})
        facilities = {}
        for row in _rows(folder / "facilities.csv"):
            values: dict[str, object] = {k: row.get(k, "") or "" for k in bridge.FACILITY_FIELDS}
            values["confidential"] = str(values["confidential"]).lower() == "true"
            facilities[row["facility_id"]] = F.objects.create(
                programme=programme, firm=Firm.objects.create(programme=programme, name=row["name"]),
                facility_id=row["facility_id"], **values)
        for row in _rows(folder / "flows.csv"):
            Fl.objects.create(facility=facilities[row["facility_id"]], flow_id=row["flow_id"],
                              direction=row["direction"], **{k: row.get(k, "") or "" for k in bridge.FLOW_FIELDS
                                                             if k != "direction"})
        before = _old_style_region(programme, tmp_path / "before")
        measured = ~before.quality["flow_id"].str.contains(".model.", regex=False)
        assert measured.sum() == 22 and len(before.permits) == 3  # the tables really are in it

        MigrationExecutor(connection).migrate(latest)
        migrated = Programme.objects.get(slug="old")
        assert "quality" not in migrated.extra_tables and "permits" not in migrated.extra_tables
        assert "arcs" in migrated.extra_tables  # not edited in the app: still text
        assert QualityEntry.objects.filter(flow__facility__programme=migrated).count() == 22
        assert list(Permit.objects.filter(facility__programme=migrated).values_list("max_t_per_yr", flat=True)) \
            == ["90000", "10000", ""]
        bridge.clear_caches()
        _assert_same_region(before, bridge.load_programme_region(migrated))

        MigrationExecutor(connection).migrate(old)
        apps = MigrationExecutor(connection).loader.project_state(old).apps
        back = apps.get_model("web", "Programme").objects.get(slug="old")
        _assert_same_region(before, _old_style_region(back, tmp_path / "back"))
    finally:
        MigrationExecutor(connection).migrate(latest)


def test_demo_programme_keeps_quality_as_rows_and_loads_as_the_folder(world: World) -> None:
    """Loaded from its folder, the demo programme's quality rows are rows of their flows, and the programme's
    region has the folder's quality table, row for row."""
    from symbiosis.web import bridge

    programme = world.programme
    assert "quality" not in programme.extra_tables  # type: ignore[attr-defined]
    entry = QualityEntry.objects.get(flow__flow_id="asnaes_fgd_gypsum", parameter="chloride")
    assert (entry.value, entry.unit, entry.bound) == ("0.005", "%", "")
    region = bridge.load_programme_region(programme)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(region.quality, load_region(KALUNDBORG).quality)


def test_rows_naming_no_flow_stay_as_text_and_are_reported() -> None:
    """A quality row of a flow the programme does not have cannot belong to a flow: it stays as text, in the
    table's place, so the checks report it (it is not silently dropped)."""
    from symbiosis.web.composition import split_table

    text = ("flow_id,parameter,value,unit\n"
            "a,chloride,0.1,%\n"
            "nobody,chloride,0.2,%\n"
            "b,moisture,\"1,5\",%\n")
    kept, rest = split_table("quality", text, {"a", "b"})
    assert [r["flow_id"] for r in kept] == ["a", "b"] and kept[1]["value"] == "1,5"
    assert rest == "flow_id,parameter,value,unit\nnobody,chloride,0.2,%\n"
    # a ';'-separated table with decimal commas: the rows keep the numbers' meaning in a ','-separated table
    kept, rest = split_table("quality", "flow_id;parameter;value;unit\na;chloride;0,25;%\n", {"a"})
    assert rest is None and float(kept[0]["value"]) == 0.25
    # a column the quality table does not have: the table stays whole, as it was
    odd = "flow_id,parameter,value,unit,colour\na,chloride,0.1,%,red\n"
    assert split_table("quality", odd, {"a"}) == ([], odd)


def _flow(flow_id: str) -> Flow:
    return Flow.objects.get(flow_id=flow_id)


def _post_quality(client, flow, **fields):  # type: ignore[no-untyped-def]
    data = {"quality-parameter": "", "quality-value": "", "quality-unit": "", "quality-bound": "",
            "quality-virgin_value": "", "quality-source": "", "quality-note": ""}
    data.update({f"quality-{k}": v for k, v in fields.items()})
    return client.post(f"/flows/{flow.pk}/quality/new/", data)


def test_composition_entry_checked_at_the_field(world: World) -> None:
    """Each mistake gets the loader's own message at its field, and nothing is saved until there is none."""
    a, b = world.client("a"), world.client("b")
    ash, gypsum_in = _flow("asnaes_fly_ash"), _flow("gyproc_natural_gypsum")
    cases = [
        (a, ash, {"parameter": "mercury", "value": "lots", "unit": "mg/kg"}, "value", "a measured value or a limit"),
        (a, ash, {"parameter": "mercury", "value": "0.3", "unit": "mg/kgg"}, "unit", "unknown unit"),
        # the flow has chloride already (one entry per flow, parameter and bound)
        (a, ash, {"parameter": "chloride", "value": "0.03", "unit": "%"}, "parameter", "duplicate quality entry"),
        # chloride is in % in this facility's other flows: mg/L (a mass per volume) does not convert
        (a, ash, {"parameter": "chloride", "value": "3", "unit": "mg/L", "bound": "max"}, "unit",
         "quality units differ for parameter 'chloride'"),
        # loss on ignition is in % at Asnæs only: Gyproc's own folder has none, the programme's does
        (b, gypsum_in, {"parameter": "loss_on_ignition", "value": "5", "unit": "degC", "bound": "max"}, "unit",
         "quality units differ for parameter 'loss_on_ignition'"),
        # a demand's virgin material must meet its own limit
        (b, gypsum_in, {"parameter": "sulphate", "value": "1", "unit": "%", "bound": "max", "virgin_value": "5"},
         "virgin_value", "violates its own bound"),
    ]
    version, n = Programme.objects.get().data_version, QualityEntry.objects.count()
    for client, flow, fields, field, message in cases:
        response = _post_quality(client, flow, **fields)
        assert response.status_code == 200, (fields, response.status_code)
        errors = response.context["form"].errors
        assert list(errors) == [field] and message in " ".join(errors[field]), (fields, errors.as_data())
        assert f'id="id_quality-{field}"' in response.content.decode()  # shown with its field
    assert QualityEntry.objects.count() == n
    assert Programme.objects.get().data_version == version  # nothing written, nothing for searches to reload


def test_composition_add_edit_delete_with_who_when_and_the_version(world: World) -> None:
    """A firm adds, edits and deletes a contaminant of its fly ash: each change is in the region searches
    read (the data version raised), in the flow's and the agency's records with the user's name."""
    from symbiosis.web import bridge

    a = world.client("a")
    ash = _flow("asnaes_fly_ash")
    programme = Programme.objects.get()
    assert "mercury" not in set(bridge.programme_region(programme).quality["parameter"])  # a kept region
    version = programme.data_version
    response = _post_quality(a, ash, parameter="mercury", value="0.3", unit="mg/kg", source="lab report 2024")
    assert response.status_code == 302 and response["Location"].endswith(f"/flows/{ash.pk}/edit/#composition")
    entry = QualityEntry.objects.get(flow=ash, parameter="mercury")
    programme.refresh_from_db()
    assert programme.data_version == version + 1
    quality = bridge.programme_region(programme).quality
    row = quality[(quality["flow_id"] == "asnaes_fly_ash") & (quality["parameter"] == "mercury")]
    assert list(row["value"]) == [0.3] and list(row["unit"]) == ["mg/kg"]
    page = a.get(f"/flows/{ash.pk}/edit/").content.decode()
    assert "mercury" in page and "lab report 2024" in page
    assert "mercury 0.3 mg/kg" in a.get(f"/facilities/{ash.facility.pk}/").content.decode()

    response = a.post(f"/quality/{entry.pk}/edit/", {"quality-parameter": "mercury", "quality-value": "0.5",
                                                     "quality-unit": "mg/kg", "quality-bound": "",
                                                     "quality-virgin_value": "", "quality-source": "lab 2025",
                                                     "quality-note": ""})
    assert response.status_code == 302
    quality = bridge.programme_region(programme).quality
    assert list(quality.loc[(quality["flow_id"] == "asnaes_fly_ash") & (quality["parameter"] == "mercury"),
                            "value"]) == [0.5]
    assert a.post(f"/quality/{entry.pk}/delete/").status_code == 302
    assert not QualityEntry.objects.filter(pk=entry.pk).exists()
    assert "mercury" not in set(bridge.programme_region(programme).quality["parameter"])
    programme.refresh_from_db()
    assert programme.data_version == version + 3
    history = list(QualityEntry.history.filter(id=entry.pk).order_by("history_date"))
    assert [h.history_type for h in history] == ["+", "~", "-"]
    assert [h.value for h in history] == ["0.3", "0.5", "0.5"]
    assert {h.history_user.username for h in history} == {"a"}
    audit = world.client("agency").get("/programme/audit/").content.decode()
    assert "composition of asnaes_fly_ash: mercury 0.5 mg/kg" in audit


def test_a_composition_change_reaches_the_partner_search(world: World) -> None:
    """Gyproc takes FGD gypsum with at most 0.01 % chloride. Asnæs' gypsum at 0.005 % fits as it is; at 0.05 %
    (typed by its firm) only in a blend, and the partner search run after the change says so."""
    a = world.client("a")
    gypsum = _flow("asnaes_fgd_gypsum")
    before = a.get(f"/flows/{gypsum.pk}/partners/").context["rows"]
    fit = {r["receiver"]: r["quality_fit"] for r in before}
    assert "a firm in sector 23.62" in fit  # Gyproc, confidential
    entry = QualityEntry.objects.get(flow=gypsum, parameter="chloride")
    response = a.post(f"/quality/{entry.pk}/edit/", {"quality-parameter": "chloride", "quality-value": "0.05",
                                                     "quality-unit": "%", "quality-bound": "",
                                                     "quality-virgin_value": "", "quality-source": "lab",
                                                     "quality-note": ""})
    assert response.status_code == 302
    after = a.get(f"/flows/{gypsum.pk}/partners/").context["rows"]
    # 0.05 % is above the 0.01 % limit, but blended with natural gypsum (0.002 %) up to a share of
    # (0.01 - 0.002) / (0.05 - 0.002) = 17 % it stays within it
    assert fit["a firm in sector 23.62"] == "passes"
    assert {r["receiver"]: r["quality_fit"] for r in after}["a firm in sector 23.62"] == "blend needed"


def _post_permit(client, facility, **fields):  # type: ignore[no-untyped-def]
    data = {"permit-ewc_code": "", "permit-max_t_per_yr": "", "permit-source": "", "permit-note": ""}
    data.update({f"permit-{k}": v for k, v in fields.items()})
    return client.post(f"/facilities/{facility.pk}/permits/new/", data)


def test_permits_checked_at_the_field_and_kept_with_who_and_when(world: World) -> None:
    """A permit's EWC code and tonnage get the loader's messages at their fields; a good one is in the region
    the searches read (the version raised), on the facility's page, and in the record of changes."""
    from symbiosis.web import bridge

    b = world.client("b")
    gyproc = Facility.objects.get(facility_id="gyproc")
    programme = Programme.objects.get()
    version = programme.data_version
    for fields, field, message in [({"ewc_code": "999999"}, "ewc_code", "999999"),
                                   ({"ewc_code": ""}, "ewc_code", "This field is required"),
                                   ({"ewc_code": "100105", "max_t_per_yr": "-5"}, "max_t_per_yr", "negative"),
                                   ({"ewc_code": "100105", "max_t_per_yr": "much"}, "max_t_per_yr", "")]:
        response = _post_permit(b, gyproc, **fields)
        assert response.status_code == 200, fields
        errors = response.context["form"].errors
        assert list(errors) == [field] and message in " ".join(errors[field]), (fields, errors.as_data())
    assert not Permit.objects.exists() and Programme.objects.get().data_version == version
    response = _post_permit(b, gyproc, ewc_code="10 01 05", max_t_per_yr="90000", source="permit 2019")
    assert response.status_code == 302 and response["Location"].endswith(f"/facilities/{gyproc.pk}/#permits")
    permit = Permit.objects.get(facility=gyproc)
    permits = bridge.programme_region(programme).permits
    assert list(permits["facility_id"]) == ["gyproc"] and list(permits["ewc_code"]) == ["100105"]
    assert list(permits["max_t_per_yr"]) == [90000.0]
    assert "permit 2019" in b.get(f"/facilities/{gyproc.pk}/").content.decode()
    response = b.post(f"/permits/{permit.pk}/edit/", {"permit-ewc_code": "100105", "permit-max_t_per_yr": "",
                                                      "permit-source": "permit 2019", "permit-note": ""})
    assert response.status_code == 302
    assert bridge.programme_region(programme).permits["max_t_per_yr"].isna().all()  # no tonnage: no limit
    assert b.post(f"/permits/{permit.pk}/delete/").status_code == 302
    assert bridge.programme_region(programme).permits.empty
    assert Programme.objects.get().data_version == version + 3
    history = list(Permit.history.filter(id=permit.pk).order_by("history_date"))
    assert [(h.history_type, h.history_user.username) for h in history] == [("+", "b"), ("~", "b"), ("-", "b")]
    assert "permit of gyproc: EWC 100105" in world.client("facilitator").get("/programme/audit/").content.decode()


def _book(sheets: dict[str, list[list[object]]]) -> io.BytesIO:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    data.name = "firm.xlsx"
    return data


QUALITY_HEADER = ["flow_id", "parameter", "value", "unit", "bound", "virgin_value", "source"]


def test_workbook_quality_and_permits_problems_at_their_cells(world: World) -> None:
    """A workbook's quality and permits sheets: each problem at its cell, another firm's flow or facility
    refused, nothing saved unless every row passes; then a sheet replaces the composition of the flows (the
    permits of the facilities) it names, with who and when."""
    from symbiosis.web import bridge

    a = world.client("a")
    bad = {"quality": [QUALITY_HEADER,
                       ["asnaes_fly_ash", "mercury", 0.3, "mg/kg", None, None, "lab"],
                       ["asnaes_fly_ash", "cadmium", "lots", "mg/kg", None, None, "lab"],
                       ["asnaes_fly_ash", "chloride", 2, "mg/L", None, None, "lab"]],
           "permits": [["facility_id", "ewc_code", "max_t_per_yr"], ["asnaes", "999999", 5000]]}
    problems = [str(p) for p in a.post("/upload/", {"workbook": _book(bad)}).context["problems"]]
    assert any(p.startswith("sheet quality, cell C3:") for p in problems), problems  # 'lots'
    assert any(p.startswith("sheet permits, cell B2:") and "999999" in p for p in problems), problems
    assert not any("cell D4" in p for p in problems)  # units are compared once every row reads (a later stage)
    fixed = {**bad, "quality": [bad["quality"][0], bad["quality"][1], bad["quality"][3]],
             "permits": [bad["permits"][0], ["asnaes", "100105", 5000]]}
    problems = [str(p) for p in a.post("/upload/", {"workbook": _book(fixed)}).context["problems"]]
    assert problems == [p for p in problems if p.startswith("sheet quality, cell D3:")] and problems, problems
    assert "quality units differ for parameter 'chloride'" in problems[0]
    # another firm's flow and facility
    theirs = {"quality": [QUALITY_HEADER, ["gyproc_natural_gypsum", "mercury", 1, "mg/kg", "max", None, "x"]],
              "permits": [["facility_id", "ewc_code"], ["gyproc", "100105"]]}
    problems = [str(p) for p in a.post("/upload/", {"workbook": _book(theirs)}).context["problems"]]
    assert "sheet quality, cell row 2: flow_id is not one of your firm's flows" in problems
    assert "sheet permits, cell row 2: facility_id is not one of your firm's facilities" in problems
    # a cell longer than the database keeps, at its cell (not a server error on PostgreSQL)
    long = {"quality": [QUALITY_HEADER, ["asnaes_fly_ash", "mercury", "0." + "3" * 60, "mg/kg", None, None, "x"]]}
    problems = [str(p) for p in a.post("/upload/", {"workbook": _book(long)}).context["problems"]]
    assert problems[0].startswith("sheet quality, cell C2: at most 40 characters"), problems
    assert not QualityEntry.objects.filter(parameter="mercury").exists() and not Permit.objects.exists()

    good = {"quality": [QUALITY_HEADER, ["asnaes_fly_ash", "mercury", 0.3, "mg/kg", None, None, "lab"],
                        ["asnaes_fly_ash", "chloride", 0.03, "%", None, None, "lab"]],
            "permits": [["facility_id", "ewc_code", "max_t_per_yr"], ["asnaes", "100105", 5000]]}
    version = Programme.objects.get().data_version
    assert a.post("/upload/", {"workbook": _book(good)}).status_code == 302
    ash = _flow("asnaes_fly_ash")
    # the sheet is the fly ash's whole composition now: its loss on ignition (not in the sheet) is gone
    assert list(QualityEntry.objects.filter(flow=ash).values_list("parameter", "value")) == [
        ("mercury", "0.3"), ("chloride", "0.03")]
    programme = Programme.objects.get()
    assert programme.data_version > version
    region = bridge.programme_region(programme)
    q = region.quality[region.quality["flow_id"] == "asnaes_fly_ash"]
    assert list(q["parameter"]) == ["mercury", "chloride"] and list(q["value"]) == [0.3, 0.03]
    assert list(region.permits["ewc_code"]) == ["100105"] and list(region.permits["max_t_per_yr"]) == [5000.0]
    deleted = QualityEntry.history.filter(history_type="-", flow_id=ash.pk, history_user__username="a")
    assert set(deleted.values_list("parameter", flat=True)) == {"loss_on_ignition", "chloride"}


def test_a_stored_row_of_no_flow_is_kept_and_reported_by_the_checks(world: World) -> None:
    """A quality row naming a flow the programme does not have stays as text after the programme's rows and
    is reported by symbiosis check's loader (unknown flow), not dropped; the known flows' rows become rows."""
    from symbiosis.web import bridge, composition

    programme = world.programme
    n = QualityEntry.objects.count()
    composition.store_tables(programme, {"quality": "flow_id,parameter,value,unit\n"
                                                    "asnaes_fly_ash,mercury,0.3,mg/kg\n"
                                                    "ghost_flow,chloride,0.1,%\n"})
    assert QualityEntry.objects.count() == n + 1
    assert programme.extra_tables["quality"] == "flow_id,parameter,value,unit\nghost_flow,chloride,0.1,%\n"
    problems, _first_facility, _first_flow = bridge.problems_with(programme)  # type: ignore[arg-type]
    assert [(Path(p.file).name, p.row, p.column, p.found) for p in problems] == [
        ("quality.csv", n + 3, "flow_id", "ghost_flow")]  # after the n + 1 rows of the database
