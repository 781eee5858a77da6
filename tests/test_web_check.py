"""A saved flow is checked in memory (symbiosis.inputs.load_tables) with the checks and messages of a region
folder (symbiosis.inputs.load_region, what `symbiosis check` runs), without writing the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from symbiosis.errors import InputError
from symbiosis.inputs import TABLE_NAMES, load_region, load_tables
from symbiosis.process_models import read_yaml
from symbiosis.reference import data_dir
from symbiosis.web import bridge
from symbiosis.web.models import Flow
from tests.web_helpers import World

KALUNDBORG = data_dir() / "regions" / "kalundborg"


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in TABLE_NAMES if (folder / f"{name}.csv").exists()}


def _settings(folder: Path) -> dict[str, object]:
    from symbiosis.errors import Problems

    data = read_yaml(folder / "region.yaml", Problems())
    assert isinstance(data, dict)
    return data


def _problems(call) -> list[tuple[str, int | None, str | None, str, object, object]]:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as caught:
        call()
    return sorted((Path(p.file).name, p.row, p.column, p.message, p.found, p.expected)
                  for p in caught.value.problems)


def test_tables_in_memory_load_as_the_folder_does() -> None:
    from_folder = load_region(KALUNDBORG)
    in_memory = load_tables(_settings(KALUNDBORG), _frames(KALUNDBORG), base_dir=KALUNDBORG)
    for table in ("facilities", "flows", "quality", "arcs"):
        a, b = getattr(in_memory, table).copy(), getattr(from_folder, table).copy()
        if "origin" in b:  # where a row came from: the same file and row, named without the folder
            b["origin"] = b["origin"].str.replace(r"^.*/(?=[^/]+\.csv:)", "", regex=True)
        pd.testing.assert_frame_equal(a, b)
    assert in_memory.settings == from_folder.settings


def test_tables_in_memory_have_the_problems_of_the_folder_at_the_same_cells(tmp_path: Path) -> None:
    """Bad cells of every kind a firm can type (unknown material, unit, EWC code, amount, coordinates,
    NACE code): the same problems, at the same file, row and column, as the folder's CSV files give."""
    folder = tmp_path / "region"
    shutil.copytree(KALUNDBORG, folder)
    flows = pd.read_csv(folder / "flows.csv", dtype=str, keep_default_na=False)
    flows.loc[0, "material"] = "fly_ashh"
    flows.loc[1, "unit"] = "parsecs"
    flows.loc[2, "amount"] = "-5"
    flows["ewc_code"] = ""
    flows.loc[3, "ewc_code"] = "99 99 99"
    flows.loc[4, "price"], flows.loc[4, "price_unit"] = "12", "USD/t"
    flows.to_csv(folder / "flows.csv", index=False)
    facilities = pd.read_csv(folder / "facilities.csv", dtype=str, keep_default_na=False)
    facilities.loc[0, "lat"] = "95.5"
    facilities.loc[1, "sector"] = "99.99"
    facilities.to_csv(folder / "facilities.csv", index=False)

    expected = _problems(lambda: load_region(folder))
    found = _problems(lambda: load_tables(_settings(folder), _frames(folder), base_dir=folder))
    assert found == expected
    located = {(file, row, column) for file, row, column, *_ in found}
    # each bad cell is reported where a spreadsheet shows it (row 2 = the first data row)
    assert {("flows.csv", 2, "material"), ("flows.csv", 3, "unit"), ("flows.csv", 4, "amount"),
            ("flows.csv", 5, "ewc_code"), ("facilities.csv", 2, "lat"), ("facilities.csv", 3, "sector")} <= located
    assert any(r[0] == "flows.csv" and r[1] == 6 for r in found)  # the price in another currency


def test_a_table_with_a_header_and_no_row_is_refused_as_the_file_is(tmp_path: Path) -> None:
    frames = _frames(KALUNDBORG)
    frames["facilities"] = frames["facilities"].iloc[:0]
    problems = _problems(lambda: load_tables(_settings(KALUNDBORG), frames, base_dir=KALUNDBORG))
    assert ("facilities.csv", 2, None, "the table has a header but no data rows", None,
            "at least one data row") in problems
    with pytest.raises(ValueError, match="not tables of a region"):
        load_tables(_settings(KALUNDBORG), {**frames, "realised": frames["flows"]}, base_dir=KALUNDBORG)


BAD_ROWS = [{"material": "fly_ashh"}, {"unit": "parsecs"}, {"amount": "-5"}, {"ewc_code": "99 99 99"},
            {"price": "12", "price_unit": "USD/t"}, {"amount": "abc"}, {"fate": "the_moon"},
            {"uncertainty_pct": "150"}, {"max_secondary_share": "2"}, {"source": ""}]


@pytest.mark.django_db
def test_a_saved_flow_is_checked_without_a_folder_with_the_folders_messages(world: World, monkeypatch) -> None:
    """check_row of a flow writes no folder (a 5,000-facility programme's save spent most of its time writing
    and reading one), and every bad row gets the messages, at the fields, that the folder gives."""
    programme = world.programme
    gypsum = Flow.objects.get(flow_id="asnaes_fgd_gypsum")
    row = bridge.flow_row(gypsum)

    def folder_path() -> None:
        raise AssertionError("a folder was written to check a flow")

    in_memory = {}
    with monkeypatch.context() as patch:
        patch.setattr(bridge.tempfile, "TemporaryDirectory", folder_path)
        good = bridge.check_row(programme, "flows", {**row, "amount": "140000"})
        assert not good.problems and good.region is not None
        assert float(good.region.flows.set_index("flow_id").loc["asnaes_fgd_gypsum", "amount_t_per_yr"]) == 140000
        for bad in BAD_ROWS:
            in_memory[tuple(bad.items())] = bridge.check_row(programme, "flows", {**row, **bad}).problems
    with monkeypatch.context() as patch:
        patch.setattr(bridge, "facility_tables", lambda *a, **k: None)  # the folder, as before
        for bad in BAD_ROWS:
            through_folder = bridge.check_row(programme, "flows", {**row, **bad}).problems
            assert in_memory[tuple(bad.items())] == through_folder, bad
    assert "did you mean 'fly_ash'" in " ".join(in_memory[(("material", "fly_ashh"),)]["material"])
    assert list(in_memory[(("unit", "parsecs"),)]) == ["unit"]
    assert sum(1 for p in in_memory.values() if p) >= 6  # most of the bad rows are refused


@pytest.mark.django_db
def test_a_programme_whose_region_names_reference_files_is_checked_through_its_folder(world: World) -> None:
    programme = world.programme
    programme.settings_yaml += "\nreference: {materials: materials.csv}\n"
    row = bridge.flow_row(Flow.objects.get(flow_id="asnaes_fgd_gypsum"))
    assert bridge.facility_tables(programme, "asnaes", flow=row) is None
    checked = bridge.check_row(programme, "flows", row)  # through the folder: materials.csv is not there
    assert checked.region is None
