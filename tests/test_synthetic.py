"""Synthetic regions (symbiosis.synthetic): deterministic, sized as asked, and loadable by the normal loader.

Most tests use a tiny set of process models and reference tables written into tmp_path, so they do not depend
on the shipped data; the last ones run against the shipped models/ and data/reference/.
"""

from __future__ import annotations

import csv
import hashlib
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from symbiosis.balances import balances
from symbiosis.candidates import candidates
from symbiosis.inputs import load_region
from symbiosis.synthetic import generate_region

REPO = Path(__file__).resolve().parents[1]

MATERIALS = """material_id,name,class,density_t_per_m3,ewc_codes,hazardous,max_distance_km,source
fly_ash,Fly ash,ash,0.9,100102,false,,test fixture
gypsum_fgd,FGD gypsum,gypsum,1.1,100105,false,,test fixture
gypsum_natural,Natural gypsum,gypsum,1.2,,false,,test fixture
limestone,Limestone,mineral,1.5,,false,,test fixture
coal,Coal,fuel,0.8,,false,,test fixture
clinker,Clinker,product,1.4,,false,,test fixture
co2,CO2,gas,0.002,,false,,test fixture
electricity,Electricity,energy,,,false,,test fixture
water,Water,water,1.0,,false,,test fixture
wastewater,Waste water,wastewater,1.0,,false,,test fixture
"""
SUBSTITUTIONS = """secondary_material,primary_material,ratio,max_share,processing_cost_per_t,\
processing_co2e_per_t,max_distance_km,source
fly_ash,limestone,0.8,0.3,2,0.001,,test fixture
gypsum_fgd,gypsum_natural,1.0,1.0,5,0.002,,test fixture
wastewater,water,0.9,0.5,1,0.0,,test fixture
"""
FATES = """fate_id,name,kind,cost_per_t,co2e_t_per_t,source
landfill,Landfill,landfill,60,0.02,test fixture
sewer,Sewer,sewer,2,0.0,test fixture
"""
EMISSION_FACTORS = """item,kind,co2e_t_per_t,source,year
limestone,virgin,0.01,test fixture,2020
gypsum_natural,virgin,0.02,test fixture,2020
road,transport,0.000062,test fixture,2020
"""
POWER = {
    "id": "power_station", "name": "Coal power station", "nace": "35.11", "activity_unit": "MWh",
    "flows": [
        {"direction": "in", "category": "raw_material", "material": "coal", "amount": 0.4, "unit": "t",
         "price": 110, "price_unit": "EUR/t"},
        {"direction": "in", "category": "auxiliary", "material": "limestone", "amount": 0.02, "unit": "t"},
        {"direction": "in", "category": "water", "material": "water", "amount": 1.0, "unit": "m**3"},
        {"direction": "out", "category": "product", "material": "electricity", "amount": 1.0, "unit": "MWh"},
        {"direction": "out", "category": "by_product", "material": "fly_ash", "amount": 0.04, "unit": "t",
         "fate": "landfill"},
        {"direction": "out", "category": "by_product", "material": "gypsum_fgd", "amount": 0.03, "unit": "t",
         "fate": "landfill"},
        {"direction": "out", "category": "wastewater", "material": "wastewater", "amount": 0.8, "unit": "m**3",
         "fate": "sewer"},
        {"direction": "out", "category": "emission", "material": "co2", "amount": 0.55, "unit": "t"},
    ],
    "quality": [{"direction": "out", "material": "fly_ash", "parameter": "chloride", "value": 0.1,
                 "unit": "percent"}],
}
KILN = {
    "id": "cement_kiln", "name": "Cement kiln", "nace": "23.51", "activity_unit": "t",
    "flows": [
        {"direction": "in", "category": "raw_material", "material": "limestone", "amount": 1.5, "unit": "t",
         "price": 12, "price_unit": "EUR/t"},
        {"direction": "in", "category": "auxiliary", "material": "gypsum_natural", "amount": 0.05, "unit": "t"},
        {"direction": "in", "category": "raw_material", "material": "coal", "amount": 0.1, "unit": "t"},
        {"direction": "out", "category": "product", "material": "clinker", "amount": 1.0, "unit": "t"},
        {"direction": "out", "category": "emission", "material": "co2", "amount": 0.65, "unit": "t"},
    ],
    "quality": [{"direction": "in", "material": "limestone", "parameter": "chloride", "value": 0.5,
                 "unit": "percent", "bound": "max", "virgin_value": 0.01}],
}
FILES = ("region.yaml", "facilities.csv", "flows.csv", "quality.csv")


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synthetic-fixture")
    ref, models = root / "reference", root / "models"
    ref.mkdir()
    models.mkdir()
    for name, text in (("materials", MATERIALS), ("substitutions", SUBSTITUTIONS), ("fates", FATES),
                       ("emission_factors", EMISSION_FACTORS)):
        (ref / f"{name}.csv").write_text(text)
    for model in (POWER, KILN):
        (models / f"{model['id']}.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    return ref, models


def _generate(out: Path, fixture: tuple[Path, Path], n: int = 60, **kwargs: object) -> Path:
    ref, models = fixture
    return generate_region(n, out, models_dir=models, reference_dir=ref, **kwargs)  # type: ignore[arg-type]


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_seed_gives_identical_files(tmp_path: Path, fixture_data: tuple[Path, Path]) -> None:
    a = _generate(tmp_path / "a", fixture_data, seed=7)
    b = _generate(tmp_path / "b", fixture_data, seed=7, name="synthetic-60-seed7")
    assert _digest(a) == _digest(b)


def test_different_seeds_differ(tmp_path: Path, fixture_data: tuple[Path, Path]) -> None:
    a, b = _generate(tmp_path / "a", fixture_data, seed=1), _generate(tmp_path / "b", fixture_data, seed=2)
    for name in ("facilities.csv", "flows.csv", "quality.csv"):
        assert (a / name).read_bytes() != (b / name).read_bytes()


@pytest.mark.parametrize("n", [1, 17, 250])
def test_sizes_and_contents(tmp_path: Path, fixture_data: tuple[Path, Path], n: int) -> None:
    folder = _generate(tmp_path / "r", fixture_data, n=n, seed=3, max_distance_km=40)
    facilities = _rows(folder / "facilities.csv")
    flows = _rows(folder / "flows.csv")
    assert len(facilities) == n
    assert len({f["facility_id"] for f in facilities}) == n
    assert {f["facility_id"] for f in flows} <= {f["facility_id"] for f in facilities}
    assert all(f["source"] == "synthetic" and "generated" in f["note"] for f in flows)
    settings = yaml.safe_load((folder / "region.yaml").read_text())
    assert "synthetic" in settings["description"].lower()
    assert settings["defaults"]["max_distance_km"] == 40
    lat = [float(f["lat"]) for f in facilities]
    lon = [float(f["lon"]) for f in facilities]
    assert min(lat) >= 54.7 and max(lat) <= 56.2
    assert min(lon) >= 8.9 and max(lon) <= 12.1


def test_quality_parameters_and_streams(tmp_path: Path, fixture_data: tuple[Path, Path]) -> None:
    folder = _generate(tmp_path / "r", fixture_data, n=80, seed=4, quality_parameters=3)
    quality = _rows(folder / "quality.csv")
    assert len({q["parameter"] for q in quality}) == 3
    bounds = [q for q in quality if q["bound"]]
    assert bounds and all(q["bound"] in ("max", "min") for q in bounds)
    for q in bounds:  # the virgin material meets its own bound
        assert (float(q["virgin_value"]) <= float(q["value"])) == (q["bound"] == "max")
    more = _generate(tmp_path / "s", fixture_data, n=80, seed=4, streams_per_facility=12)
    assert len(_rows(more / "flows.csv")) > len(_rows(folder / "flows.csv"))


def test_cli(tmp_path: Path, fixture_data: tuple[Path, Path]) -> None:
    # The CLI uses the shipped data; check the argument plumbing only through main() with the fixture.
    from symbiosis import synthetic

    out = tmp_path / "cli"
    original = synthetic.generate_region
    seen: dict[str, object] = {}

    def fake(n: int, out_dir: Path, **kwargs: object) -> Path:
        seen.update(kwargs, n=n)
        return original(n, out_dir, models_dir=fixture_data[1], reference_dir=fixture_data[0], **kwargs)

    synthetic.generate_region = fake  # type: ignore[assignment]
    try:
        assert synthetic.main(["12", str(out), "--seed", "5"]) == 0
    finally:
        synthetic.generate_region = original  # type: ignore[assignment]
    assert seen["n"] == 12 and seen["seed"] == 5
    assert len(_rows(out / "facilities.csv")) == 12


def test_loads_and_balances_close(tmp_path: Path, fixture_data: tuple[Path, Path]) -> None:
    ref, models = fixture_data
    folder = _generate(tmp_path / "r", fixture_data, n=120, seed=5)
    region = load_region(folder, reference_dir=ref, models_directory=models)
    assert len(region.facilities) == 120
    table = balances(region).table
    mass = table[table["quantity"] == "mass"]
    assert len(mass) == 120
    assert mass["within_tolerance"].all(), mass.loc[~mass["within_tolerance"], ["facility_id", "closure_error"]]


def test_shipped_data_region_loads_with_arcs(tmp_path: Path) -> None:
    """A region drawn from the shipped models loads, its balances close, and it yields candidate arcs."""
    folder = generate_region(60, tmp_path / "r", seed=0)
    region = load_region(folder)
    assert len(region.facilities) == 60
    table = balances(region).table
    mass = table[table["quantity"] == "mass"]
    assert mass["within_tolerance"].all(), mass.loc[~mass["within_tolerance"], ["facility_id", "closure_error"]]
    cands = candidates(region)
    assert len(cands.arcs) > 0


@pytest.mark.filterwarnings("ignore:'symbiosis.synthetic' found in sys.modules")
def test_module_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m symbiosis.synthetic N OUT_DIR --seed S`` (run in-process, as -m would, to stay fast)."""
    out = tmp_path / "cli"
    monkeypatch.setattr(sys, "argv", ["symbiosis.synthetic", "10", str(out), "--seed", "3"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("symbiosis.synthetic", run_name="__main__", alter_sys=False)
    assert done.value.code == 0
    assert len(_rows(out / "facilities.csv")) == 10


# --- processors and heat (the default since issue 19; ``plain`` leaves them out) -------------------------


@pytest.fixture(scope="module")
def shipped_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 400-facility draw from the shipped models, with processors and heat and plain."""
    root = tmp_path_factory.mktemp("synthetic-shipped")
    return generate_region(400, root / "full", seed=2), generate_region(400, root / "plain", seed=2, plain=True)


def test_processors_and_heat_in_a_realistic_share(shipped_pair: tuple[Path, Path]) -> None:
    from symbiosis.synthetic import PROCESSOR_MODELS

    folder, _ = shipped_pair
    facilities = {f["facility_id"]: f for f in _rows(folder / "facilities.csv")}
    processors = _rows(folder / "processors.csv")
    assert 0.02 * 400 <= len(processors) <= 0.05 * 400
    for p in processors:
        facility = facilities[p["facility_id"]]
        assert facility["process_model"] in PROCESSOR_MODELS
        assert float(p["capacity"]) >= float(facility["activity"])
        assert "invented" in p["source"]
    assert {facilities[p["facility_id"]]["process_model"] for p in processors} == set(PROCESSOR_MODELS)
    flows = _rows(folder / "flows.csv")
    temperature = {q["flow_id"]: q for q in _rows(folder / "quality.csv") if q["parameter"] == "temperature"}
    carriers = ("steam", "hot_water", "district_heat", "heat", "waste_heat")
    heat = [f for f in flows if f["unit"] == "MWh" and f["material"] in carriers
            and (f["exchangeable"] == "true" if f["direction"] == "in" else f["category"] in ("by_product", "waste"))]
    with_heat = {f["facility_id"] for f in heat}
    assert 0.10 * 400 <= len(with_heat) <= 0.25 * 400
    assert {f["material"] for f in heat} >= {"steam", "waste_heat", "heat"}
    for f in heat:  # every heat row has its temperature: a supply's own, a demand's minimum
        q = temperature[f["flow_id"]]
        assert q["unit"] == "degC" and q["bound"] == ("min" if f["direction"] == "in" else "")
    effluent = [f for f in heat if f["material"] == "waste_heat"
                and facilities[f["facility_id"]]["process_model"] == "wastewater_treatment"]
    assert effluent and all(float(temperature[f["flow_id"]]["value"]) <= 20 for f in effluent)


def test_generated_processors_and_heat_reach_the_model(shipped_pair: tuple[Path, Path]) -> None:
    """The region loads; processors, heat supplies, heat demands and heat arcs all reach the candidates."""
    folder, _ = shipped_pair
    region = load_region(folder)
    cands = candidates(region)
    assert cands.processors is not None and len(cands.processors) >= 8
    assert set(cands.processor_links["side"]) == {"in", "out"}
    energy_s = cands.supplies["quantity"].to_numpy() == "energy"
    energy_d = cands.demands["quantity"].to_numpy() == "energy"
    assert energy_s.sum() >= 20 and energy_d.sum() >= 20
    heat_arcs = energy_s[cands.arcs["s"].to_numpy()]
    assert heat_arcs.sum() >= 10
    assert (cands.arcs.loc[heat_arcs, "heat_pump_cop"].notna()).any()  # some heat is lifted by a heat pump
    # A treatment plant's effluent heat follows its activity: a processor link on a heat row, in MWh per unit.
    links = cands.processor_links
    heat_links = links[(links["side"] == "out") & energy_s[links["row"].to_numpy()]]
    assert len(heat_links) > 0 and np.isfinite(links["per_unit"].to_numpy(float)).all()
    assert (heat_links["per_unit"] > 0).all()


def test_plain_leaves_processors_and_heat_out_and_keeps_the_places(shipped_pair: tuple[Path, Path]) -> None:
    full, plain = shipped_pair
    assert not (plain / "processors.csv").exists()
    assert "exchangeable" not in _rows(plain / "flows.csv")[0]
    assert "process_model" not in _rows(plain / "facilities.csv")[0]
    cands = candidates(load_region(plain))
    assert (cands.supplies["quantity"] == "mass").all() and (cands.demands["quantity"] == "mass").all()
    assert cands.processors is None or len(cands.processors) == 0
    # The extras draw from their own random stream: the facilities stand where the plain region has them.
    places = [[(f["lat"], f["lon"]) for f in _rows(folder / "facilities.csv")] for folder in (full, plain)]
    assert places[0] == places[1]


def test_processors_and_heat_are_deterministic_by_seed(tmp_path: Path) -> None:
    a = generate_region(150, tmp_path / "a", seed=9)
    b = generate_region(150, tmp_path / "b", seed=9)
    c = generate_region(150, tmp_path / "c", seed=10)
    for name in (*FILES, "processors.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "processors.csv").read_bytes() != (c / "processors.csv").read_bytes()


def test_cli_plain(tmp_path: Path) -> None:
    from symbiosis import synthetic

    assert synthetic.main(["30", str(tmp_path / "p"), "--seed", "1", "--plain"]) == 0
    assert not (tmp_path / "p" / "processors.csv").exists()
    assert synthetic.main(["30", str(tmp_path / "f"), "--seed", "1"]) == 0
    assert (tmp_path / "f" / "processors.csv").exists()


# --- the layouts (issue 17): the default region unchanged, the continental layout -----------------------

# sha256 over the files of a region (sorted by name, each name then its bytes), computed with the generator as
# it was before the continental layout was added (commit 2d297df). A change of the shipped models/ or
# data/reference/ changes the "shipped" figures legitimately: recompute them then, and only then.
DIGESTS_BEFORE_LAYOUTS = {
    ("fixture", False): "61b8894a2a10c5c56e9b3db9c961dc114c9e88e679ba420707bf0e6d20173516",
    ("fixture", True): "9903f05aca02d2ded58811a2b0b4ecb23e71f9a0607c1a8cfdbf8c9663e0d7ab",
    ("shipped", False): "3277e0421d4a654ff00d679ae63fa618898664bdbd96a4615811bce6f8caf539",
    ("shipped", True): "72d729283c6188bc727c40a6206df0f41fdda89f9726ce61be9e3274c7a6cde8",
}


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("data", ["fixture", "shipped"])
@pytest.mark.parametrize("plain", [False, True])
def test_default_and_plain_regions_are_byte_for_byte_as_before(tmp_path: Path, fixture_data: tuple[Path, Path],
                                                               data: str, plain: bool) -> None:
    if data == "fixture":
        folder = _generate(tmp_path / "r", fixture_data, n=80, seed=4, plain=plain)
    else:
        folder = generate_region(120, tmp_path / "r", seed=4, plain=plain)
    assert _folder_digest(folder) == DIGESTS_BEFORE_LAYOUTS[(data, plain)]


def _distance_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Haversine, written here (not the package's) to check the generator's positions independently."""
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(lon2 - lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(h))


@pytest.fixture(scope="module")
def continent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_region(3000, tmp_path_factory.mktemp("continent") / "c", seed=1, layout="continent")


def test_continent_spans_a_continent_in_towns_sparse_between(continent: Path) -> None:
    rows = _rows(continent / "facilities.csv")
    lat = np.array([float(r["lat"]) for r in rows])
    lon = np.array([float(r["lon"]) for r in rows])
    # A few thousand km across, inside the extent (3,600 x 2,800 km around 50 N, 10 E).
    north_south = _distance_km(lat.min(), 10.0, lat.max(), 10.0)
    east_west = _distance_km(np.full(1, 50.0), lon.min(), 50.0, lon.max())[0]
    assert 2_000 < north_south <= 2_801 and east_west > 2_000
    assert lat.min() >= 50.0 - 1400 / 111.32 - 1e-3 and lat.max() <= 50.0 + 1400 / 111.32 + 1e-3
    # Clustered: most facilities have many others within 10 km, yet most of the extent is empty: of a grid
    # of 100 x 100 km cells over the extent, most hold no facility and a few hold hundreds.
    d = _distance_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    within_10 = (d < 10.0).sum(axis=1) - 1
    assert np.median(within_10) >= 10
    assert np.quantile(within_10, 0.9) >= 50  # towns of varied size: some large
    cell = np.floor((lat - lat.min()) * 111.32 / 100).astype(int) * 1000 + np.floor(
        (lon - lon.min()) * 111.32 * np.cos(np.radians(lat)) / 100).astype(int)
    per_cell = np.unique(cell, return_counts=True)[1]
    assert len(per_cell) < 0.5 * 28 * 36 and per_cell.max() >= 150
    # Sparse between: some facilities stand alone, more than 50 km from any other.
    np.fill_diagonal(d, np.inf)
    assert (d.min(axis=1) > 50.0).sum() >= 5


def test_continent_keeps_the_sector_mix_processors_and_heat(continent: Path, tmp_path: Path) -> None:
    region_folder = generate_region(3000, tmp_path / "r", seed=1)
    for name in ("flows.csv", "quality.csv", "processors.csv"):  # only the places differ from the region layout
        assert (continent / name).read_bytes() == (region_folder / name).read_bytes(), name
    a, b = _rows(continent / "facilities.csv"), _rows(region_folder / "facilities.csv")
    assert [(r["sector"], r["activity"], r["process_model"]) for r in a] == [
        (r["sector"], r["activity"], r["process_model"]) for r in b]
    assert [r["lat"] for r in a] != [r["lat"] for r in b]
    assert "continental layout" in yaml.safe_load((continent / "region.yaml").read_text())["description"]


def test_continent_is_deterministic_and_loads_with_local_arcs(continent: Path, tmp_path: Path) -> None:
    again = generate_region(3000, tmp_path / "again", seed=1, layout="continent")
    assert _folder_digest(again) == _folder_digest(continent)
    other = generate_region(3000, tmp_path / "other", seed=2, layout="continent")
    assert (other / "facilities.csv").read_bytes() != (continent / "facilities.csv").read_bytes()
    region = load_region(continent)
    cands = candidates(region)
    assert len(cands.arcs) > 10_000
    assert cands.processors is not None and len(cands.processors) >= 0.02 * 3000
    facilities = {r["facility_id"]: (float(r["lat"]), float(r["lon"])) for r in _rows(continent / "facilities.csv")}
    sf = cands.supplies["facility_id"].to_numpy()[cands.arcs["s"].to_numpy()]
    df = cands.demands["facility_id"].to_numpy()[cands.arcs["d"].to_numpy()]
    a = np.array([facilities[f] for f in sf])
    b = np.array([facilities[f] for f in df])
    # Local: every arc under the region's default limit (50 km by road, circuity 1.3; some materials and
    # substitutions have limits of their own, fly ash by sea for one) is that short by an independent haversine.
    general = cands.arcs["max_distance_km"].to_numpy(float) == 50.0
    assert general.sum() > 0.1 * len(general)
    assert _distance_km(a[general, 0], a[general, 1], b[general, 0], b[general, 1]).max() * 1.3 <= 50.0 + 0.01


def test_layout_is_checked_and_on_the_command_line(tmp_path: Path) -> None:
    from symbiosis import synthetic

    with pytest.raises(ValueError, match="layout must be one of region, continent"):
        generate_region(10, tmp_path / "x", layout="planet")
    assert synthetic.main(["40", str(tmp_path / "c"), "--seed", "1", "--layout", "continent"]) == 0
    lat = [float(r["lat"]) for r in _rows(tmp_path / "c" / "facilities.csv")]
    assert max(lat) - min(lat) > 5.0  # degrees: a continent, not the default 150 km region
