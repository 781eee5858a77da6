"""Fuzzing the region reader: a few hundred mutated copies of the tiny region, each either refused with
located problems (and exit status 1 from ``symbiosis check``, without a traceback) or, where the mutation
does not change the meaning, read as the very same region. Never a traceback, a hang or a silent change.

Each case is one mutation drawn by a seeded generator (case ``i`` always gets the same mutation), in one of
three kinds:

- ``harmless``: reordered rows, spaces around cells, ``t`` -> ``kg`` with the amount x 1000, header case,
  separators, decimal commas, encodings, quoting, line endings, exponents, an empty optional column. The
  region must equal the unmutated one (and, for every tenth, so must the KPIs of ``optimise``).
- ``error``: non-numbers, NaN, inf, huge numbers and formula-like text in number cells, empty required
  cells, duplicated rows, misspelt or deleted headers, bad units, invisible characters, a stray Latin-1 byte,
  swapped coordinates, a virgin value beyond its own bound, broken region.yaml. Load must raise InputError
  whose every problem names a file and a row or column.
- ``free``: deleted rows, swapped cells, junk in any cell, a deleted column. Either outcome is allowed, but
  an error must be located and a load must not crash.

Each case runs under a 30 s SIGALRM deadline; it interrupts Python code, not a single long C call (such as
the big-integer power pint would evaluate for a unit ``9**9**9*t``, which the unit parser now refuses).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from symbiosis.cli import app
from symbiosis.errors import InputError
from symbiosis.region import Region
from symbiosis.tables import NUMBER_COLUMNS
from tests.conftest import TEST_DATA, TINY, deadline, load_test_region

SEED = 20_261_129
CASES = 240
KINDS = ("harmless", "error", "free")
CLI_ENV = {"SYMBIOSIS_DATA": str(TEST_DATA), "SYMBIOSIS_MODELS": str(TEST_DATA / "models")}
TABLES = ("facilities", "flows", "quality")
# The fuzzed base: the tiny region with one name that is not ASCII, so that encodings matter.
BASE_NAME = "Asnæs værk"
JUNK = ["", " ", "NaN", "nan", "inf", "-inf", "1e400", "1e300", "-1e308", "0x1F", "1_000", "=SUM(A1:A9)",
        "+cmd|' /C calc'!A0", "@SUM(1)", "abc", "☃", "💥", "\u200b", "\u202e", "\x07", "1,5", "1.234,5",
        "NULL", "None", "true", "-", "1e", "..", "--1", "١٢٣", "５", "   ", "\ufeff", "a\nb", "'", '"']


# ----------------------------------------------------------------------------------------- the tables


@dataclass
class Sheet:
    """A CSV table as rows of text, header first."""

    header: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> int:
        return self.header.index(name)


@dataclass
class RegionFiles:
    sheets: dict[str, Sheet]
    region_yaml: str
    separator: dict[str, str] = field(default_factory=dict)
    encoding: dict[str, str] = field(default_factory=dict)
    quoting: dict[str, int] = field(default_factory=dict)
    line_end: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)  # a table written byte for byte (encoding mutations)

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "region.yaml").write_bytes(self.region_yaml.encode("utf-8", "surrogateescape"))
        for name in self.sheets:
            if name in self.raw:
                (folder / f"{name}.csv").write_bytes(self.raw[name])
                continue
            (folder / f"{name}.csv").write_bytes(self.text(name).encode(self.encoding.get(name, "utf-8")))

    def text(self, name: str) -> str:
        sheet = self.sheets[name]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.separator.get(name, ","),
                            lineterminator=self.line_end.get(name, "\n"),
                            quoting=self.quoting.get(name, csv.QUOTE_MINIMAL))
        writer.writerow(sheet.header)
        writer.writerows(sheet.rows)
        return buffer.getvalue()


def _base_files() -> RegionFiles:
    sheets = {}
    for name in TABLES:
        with (TINY / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        sheets[name] = Sheet(rows[0], rows[1:])
    facilities = sheets["facilities"]
    facilities.rows[0][facilities.column("name")] = BASE_NAME
    return RegionFiles(sheets, (TINY / "region.yaml").read_text(encoding="utf-8"))


# -------------------------------------------------------------------------------------- the mutations


Mutation = Callable[[RegionFiles, random.Random], str]


def _pick_table(files: RegionFiles, rng: random.Random) -> tuple[str, Sheet]:
    name = rng.choice(TABLES)
    return name, files.sheets[name]


# harmless ---------------------------------------------------------------------------------------------


def reorder_rows(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    rng.shuffle(sheet.rows)
    return f"reorder the rows of {name}"


def pad_cells(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    for row in sheet.rows:
        for j, cell in enumerate(row):
            if cell and rng.random() < 0.5:
                row[j] = rng.choice([" ", "  ", "\u00a0", "\t", " \u3000"]) + cell + rng.choice([" ", "\u00a0", ""])
    return f"spaces around the cells of {name}"


def tonnes_to_kg(files: RegionFiles, rng: random.Random) -> str:
    sheet = files.sheets["flows"]
    unit, amount = sheet.column("unit"), sheet.column("amount")
    candidates = [row for row in sheet.rows if row[unit] == "t"]
    row = rng.choice(candidates)
    factor, new_unit = rng.choice([(1000, "kg"), (1000, " kg"), (1, "tonne"), (1, "t/yr"), (1000, "kg/a")])
    row[amount] = str(int(row[amount]) * factor)
    row[unit] = new_unit
    return f"flow {row[0]}: t -> {new_unit!r} with the amount x {factor}"


def header_case(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    j = rng.randrange(len(sheet.header))
    old = sheet.header[j]
    sheet.header[j] = rng.choice([old.upper(), old.title(), f" {old} ", f"{old}\u00a0"])
    return f"{name}: header {old!r} -> {sheet.header[j]!r}"


def semicolon_decimal_comma(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    files.separator[name] = ";"
    numeric = [j for j, h in enumerate(sheet.header) if h in NUMBER_COLUMNS]
    for row in sheet.rows:
        for j in numeric:
            if re.fullmatch(r"-?\d+\.\d+", row[j]):
                row[j] = row[j].replace(".", ",")
    return f"{name}: ';' separators and decimal commas"


def semicolon_decimal_point(files: RegionFiles, rng: random.Random) -> str:
    name, _ = _pick_table(files, rng)
    files.separator[name] = ";"
    return f"{name}: ';' separators, decimal points kept"


def encoding(files: RegionFiles, rng: random.Random) -> str:
    name = "facilities"  # the table with the non-ASCII name
    files.encoding[name] = rng.choice(["utf-8-sig", "utf-16", "cp1252"])
    return f"{name} written as {files.encoding[name]}"


def quote_all(files: RegionFiles, rng: random.Random) -> str:
    name, _ = _pick_table(files, rng)
    files.quoting[name] = csv.QUOTE_ALL
    return f"{name}: every cell quoted"


def crlf(files: RegionFiles, rng: random.Random) -> str:
    name, _ = _pick_table(files, rng)
    files.line_end[name] = "\r\n"
    return f"{name}: CRLF line endings"


def trailing_separator_and_blank_rows(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    sheet.header.append("")
    for row in sheet.rows:
        row.append("")
    sheet.rows.insert(rng.randrange(len(sheet.rows) + 1), [""] * len(sheet.header))
    return f"{name}: an empty trailing column and a blank row"


def exponent(files: RegionFiles, rng: random.Random) -> str:
    sheet = files.sheets["flows"]
    amount = sheet.column("amount")
    row = rng.choice(sheet.rows)
    value = int(row[amount])
    row[amount] = rng.choice([f"{value:e}", f"{value:E}", f"{value}.0", f"+{value}", f"{value / 1000:g}e3"])
    return f"flow {row[0]}: amount written {row[amount]!r}"


def empty_optional_column(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    if "note" in sheet.header:
        return "note column already there"
    sheet.header.append("note")
    for row in sheet.rows:
        row.append("")
    return f"{name}: an empty note column"


def yaml_comments(files: RegionFiles, rng: random.Random) -> str:
    lines = files.region_yaml.splitlines()
    files.region_yaml = "# a comment\n" + "\n".join(f"{line}   # note" if ":" in line and rng.random() < 0.5 else line
                                                    for line in lines) + "\n\n"
    return "region.yaml: comments and blank lines"


HARMLESS: list[Mutation] = [reorder_rows, pad_cells, tonnes_to_kg, header_case, semicolon_decimal_comma,
                            semicolon_decimal_point, encoding, quote_all, crlf, trailing_separator_and_blank_rows,
                            exponent, empty_optional_column, yaml_comments]


# errors -----------------------------------------------------------------------------------------------


REQUIRED_NUMBERS = {"facilities": ["lat", "lon"], "flows": ["amount"], "quality": ["value"]}
REQUIRED_TEXT = {"facilities": ["facility_id", "name", "sector"],
                 "flows": ["flow_id", "facility_id", "category", "material", "unit"],
                 "quality": ["flow_id", "parameter", "unit"]}


def bad_number(files: RegionFiles, rng: random.Random) -> str:
    name = rng.choice(TABLES)
    sheet = files.sheets[name]
    column = rng.choice(REQUIRED_NUMBERS[name])
    row = rng.choice(sheet.rows)
    row[sheet.column(column)] = rng.choice(["NaN", "nan", "inf", "-Infinity", "1e400", "1e300", "-1e20", "abc",
                                            "=SUM(A1:A9)", "+1+1", "@A1", "1,5", "0x10", "", "☃", "1.2.3", "--1",
                                            "5 t", "1e"])
    return f"{name}.{column} of {row[0]} := {row[sheet.column(column)]!r}"


def empty_required_text(files: RegionFiles, rng: random.Random) -> str:
    name = rng.choice(TABLES)
    sheet = files.sheets[name]
    column = rng.choice(REQUIRED_TEXT[name])
    row = rng.choice(sheet.rows)
    row[sheet.column(column)] = rng.choice(["", " ", "\u00a0"])
    return f"{name}.{column} emptied on {row[0]}"


def duplicate_row(files: RegionFiles, rng: random.Random) -> str:
    name = rng.choice(TABLES)
    sheet = files.sheets[name]
    row = rng.choice(sheet.rows)
    sheet.rows.insert(rng.randrange(len(sheet.rows) + 1), list(row))
    return f"{name}: row {row[0]} duplicated"


def misspell_header(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    j = rng.randrange(len(sheet.header))
    old = sheet.header[j]
    k = rng.randrange(len(old) - 1)
    new = rng.choice([old[:k] + old[k + 1] + old[k] + old[k + 2:], old[:k] + old[k + 1:], old + "s",
                      old.replace("_", " "), old + "_x"])
    if new.casefold() == old.casefold():
        new = old + "x"
    sheet.header[j] = new
    return f"{name}: header {old!r} -> {new!r}"


def delete_required_column(files: RegionFiles, rng: random.Random) -> str:
    name = rng.choice(TABLES)
    sheet = files.sheets[name]
    column = rng.choice([*REQUIRED_NUMBERS[name], *REQUIRED_TEXT[name]])
    j = sheet.column(column)
    del sheet.header[j]
    for row in sheet.rows:
        del row[j]
    return f"{name}: column {column} deleted"


def bad_unit(files: RegionFiles, rng: random.Random) -> str:
    sheet = files.sheets["flows"]
    row = rng.choice(sheet.rows)
    row[sheet.column("unit")] = rng.choice(["kt", "degC", "degF", "widgets", "t**2", "9**9**9*t", "t/degC", "EUR",
                                            "m/s", "t" * 60, "1/0", "%", "t;t", "t)"])
    return f"flow {row[0]}: unit {row[sheet.column('unit')]!r}"


def invisible_in_id(files: RegionFiles, rng: random.Random) -> str:
    name = rng.choice(TABLES)
    sheet = files.sheets[name]
    column = rng.choice(["facility_id"] if name == "facilities" else ["flow_id", "facility_id"]
                        if name == "flows" else ["flow_id"])
    row = rng.choice(sheet.rows)
    j = sheet.column(column)
    at = rng.randrange(len(row[j]) + 1)
    invisible = rng.choice(["\u200b", "\u200e", "\u202e", "\ufeff", "\x07", "\u2060", "\u00ad"])
    row[j] = row[j][:at] + invisible + row[j][at:]
    return f"{name}.{column}: invisible character in {row[j]!r}"


def case_collision(files: RegionFiles, rng: random.Random) -> str:
    name = rng.choice(["facilities", "flows"])
    sheet = files.sheets[name]
    row = list(rng.choice(sheet.rows))
    row[0] = row[0].upper() if row[0] != row[0].upper() else row[0].lower()
    sheet.rows.append(row)
    return f"{name}: id {row[0]!r} differs from another only by case"


def stray_latin1_byte(files: RegionFiles, rng: random.Random) -> str:
    text = files.text("facilities").encode("utf-8")
    lines = text.split(b"\n")
    k = rng.randrange(2, len(lines) - 1)  # not the row holding the UTF-8 name
    cut = lines[k].index(b",") + 1 + rng.randrange(2)
    lines[k] = lines[k][:cut] + rng.choice([b"\xe6", b"\xf8", b"\xe9", b"\xa0", b"\xff"]) + lines[k][cut:]
    files.raw["facilities"] = b"\n".join(lines)
    return f"facilities: a Latin-1 byte in line {k + 1}"


def swapped_coordinates(files: RegionFiles, rng: random.Random) -> str:
    sheet = files.sheets["facilities"]
    lat, lon = sheet.column("lat"), sheet.column("lon")
    if rng.random() < 0.5:
        sheet.header[lat], sheet.header[lon] = "lon", "lat"
        return "facilities: lat and lon headers exchanged"
    row = rng.choice(sheet.rows[:3])  # one of the three facilities around Kalundborg
    row[lat], row[lon] = row[lon], row[lat]
    return f"facilities: lat and lon swapped for {row[0]}"


def virgin_beyond_bound(files: RegionFiles, rng: random.Random) -> str:
    sheet = files.sheets["quality"]
    bounded = [row for row in sheet.rows if row[sheet.column("bound")] in ("max", "min")]
    row = rng.choice(bounded)
    limit = float(row[sheet.column("value")])
    row[sheet.column("virgin_value")] = repr(limit * (rng.uniform(1.5, 10) if row[sheet.column("bound")] == "max"
                                                      else rng.uniform(0.01, 0.9)))
    return f"quality {row[0]}: virgin value beyond its {row[sheet.column('bound')]}"


def unknown_reference(files: RegionFiles, rng: random.Random) -> str:
    sheet = files.sheets["flows"]
    row = rng.choice(sheet.rows)
    column = rng.choice(["facility_id", "material"])
    row[sheet.column(column)] = rng.choice(["nowhere", "unobtainium", row[sheet.column(column)].upper() + "x"])
    return f"flow {row[0]}: {column} := {row[sheet.column(column)]!r}"


BOMB = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(6))


def broken_yaml(files: RegionFiles, rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        files.region_yaml = files.region_yaml.replace("circuity", "circuitry")
        return "region.yaml: misspelt key"
    if choice == 1:
        files.region_yaml = 'a: &a ["lol","lol"]\n' + BOMB + "name: *g\n"
        return "region.yaml: alias bomb"
    if choice == 2:
        files.region_yaml += "reference:\n  fates: " + rng.choice(["/dev/zero", "/proc/self/environ", "../../x.csv",
                                                                    "/etc/passwd"]) + "\n"
        return "region.yaml: a reference path outside the region"
    if choice == 3:
        files.region_yaml = files.region_yaml.replace("max_distance_km: 50", "max_distance_km: [50")
        return "region.yaml: syntax error"
    if choice == 4:
        files.region_yaml = files.region_yaml.replace("circuity: 1.3", "circuity: -1")
        return "region.yaml: a value out of range"
    files.region_yaml = files.region_yaml.replace("Tiny", "Tiny \udcff")
    return "region.yaml: not UTF-8"


ERRORS: list[Mutation] = [bad_number, empty_required_text, duplicate_row, misspell_header, delete_required_column,
                          bad_unit, invisible_in_id, case_collision, stray_latin1_byte, swapped_coordinates,
                          virgin_beyond_bound, unknown_reference, broken_yaml]


# free -------------------------------------------------------------------------------------------------


def delete_row(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    row = sheet.rows.pop(rng.randrange(len(sheet.rows)))
    return f"{name}: row {row[0]} deleted"


def swap_cells(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    row = rng.choice(sheet.rows)
    i, j = rng.sample(range(len(row)), 2)
    row[i], row[j] = row[j], row[i]
    return f"{name}: cells {sheet.header[i]} and {sheet.header[j]} of {row[0]} swapped"


def junk_cell(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    row = rng.choice(sheet.rows)
    j = rng.randrange(len(row))
    row[j] = rng.choice(JUNK) * rng.choice([1, 1, 3, 1000])
    return f"{name}.{sheet.header[j]} of {row[0]} := junk"


def delete_column(files: RegionFiles, rng: random.Random) -> str:
    name, sheet = _pick_table(files, rng)
    j = rng.randrange(len(sheet.header))
    column = sheet.header.pop(j)
    for row in sheet.rows:
        del row[j]
    return f"{name}: column {column} deleted"


def truncate(files: RegionFiles, rng: random.Random) -> str:
    name, _ = _pick_table(files, rng)
    data = files.text(name).encode("utf-8")
    files.raw[name] = data[: rng.randrange(1, len(data))]
    return f"{name}: cut short"


def odd_separator(files: RegionFiles, rng: random.Random) -> str:
    name, _ = _pick_table(files, rng)
    files.separator[name] = rng.choice(["\t", "|", " "])
    return f"{name}: separator {files.separator[name]!r}"


FREE: list[Mutation] = [delete_row, swap_cells, junk_cell, delete_column, truncate, odd_separator]


# --------------------------------------------------------------------------------------------- the cases


def case(index: int) -> tuple[str, str, RegionFiles]:
    """The kind, a description and the mutated files of case ``index`` (the same every run)."""
    rng = random.Random(SEED * 1_000_003 + index)
    kind = KINDS[index % len(KINDS)]
    files = _base_files()
    pool = {"harmless": HARMLESS, "error": ERRORS, "free": FREE}[kind]
    mutation = pool[(index // len(KINDS)) % len(pool)]
    description = mutation(files, rng)
    if kind != "error" and rng.random() < 0.3:  # a second, harmless, mutation on top
        description += "; " + rng.choice(HARMLESS)(files, rng)
    return kind, f"{mutation.__name__}: {description}", files




@functools.cache
def _base_region(folder: str) -> Region:
    return load_test_region(Path(folder))


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "base"
    _base_files().write(folder)
    return folder


def _canonical(region: Region) -> dict[str, pd.DataFrame]:
    def tidy(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
        return frame.sort_values(key).reset_index(drop=True)

    return {
        "facilities": tidy(region.facilities, ["facility_id"]),
        "flows": tidy(region.flows.drop(columns="origin"), ["flow_id"]),
        "quality": tidy(region.quality, ["flow_id", "parameter", "bound"]),
        "arcs": region.arcs.reset_index(drop=True),
    }


def _assert_same_region(region: Region, base: Region, description: str) -> None:
    assert region.settings == base.settings, description
    mine, theirs = _canonical(region), _canonical(base)
    for name in mine:
        pd.testing.assert_frame_equal(mine[name], theirs[name], check_exact=False, rtol=1e-12, atol=0,
                                      obj=f"{name} after {description}")


def _assert_located(error: InputError, description: str) -> None:
    assert error.problems, description
    for problem in error.problems:
        assert problem.file, f"{description}: {problem}"
        assert problem.row is not None or problem.column is not None, f"{description}: unlocated {problem}"
        assert len(str(problem)) < 1500, f"{description}: a message quotes too much"


def _cli_check(folder: Path, description: str) -> int:
    result = CliRunner().invoke(app, ["check", str(folder)], env=CLI_ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{description}: the CLI crashed with {result.exception!r}")
    assert "Traceback" not in result.output, description
    return result.exit_code


def test_the_mutations_cover_every_kind_and_are_deterministic():
    kinds = [case(i)[0] for i in range(CASES)]
    assert {k: kinds.count(k) for k in KINDS} == {k: CASES // 3 for k in KINDS}
    assert [case(i)[1] for i in (0, 1, 2, 99)] == [case(i)[1] for i in (0, 1, 2, 99)]
    # every mutation of every pool is drawn at least once
    names = {case(i)[1].split(":")[0] for i in range(CASES)}
    assert {m.__name__ for m in [*HARMLESS, *ERRORS, *FREE]} <= names


@pytest.mark.parametrize("index", range(CASES))
def test_a_mutated_region_is_refused_with_located_problems_or_read_unchanged(index, base_folder, tmp_path):
    kind, description, files = case(index)
    folder = tmp_path / "region"
    files.write(folder)
    with deadline(30):
        try:
            region: Region | None = load_test_region(folder)
            error: InputError | None = None
        except InputError as exc:
            region, error = None, exc
        # the CLI on every refusal, and on every fourth region that loads (to keep the run short)
        exit_code = _cli_check(folder, description) if error is not None or index % 4 == 0 else 0
    if error is not None:
        assert kind != "harmless", f"{description} should be harmless but was refused:\n{error}"
        _assert_located(error, description)
        assert exit_code == 1, description
        return
    assert kind != "error", f"{description} should have been refused but loaded"
    assert exit_code == 0, description
    assert region is not None
    if kind == "harmless":
        base = _base_region(str(base_folder))
        _assert_same_region(region, base, description)
        if index % 30 == 0:  # a cheap subset through the optimiser
            from symbiosis.pipeline import optimise

            mine, theirs = optimise(region).kpis, _base_kpis(str(base_folder))
            for key, value in theirs.items():
                if isinstance(value, float):
                    assert math.isclose(mine[key], value, rel_tol=1e-9, abs_tol=1e-6), (description, key)
                else:
                    assert mine[key] == value, (description, key)


@functools.cache
def _base_kpis(folder: str) -> dict[str, object]:
    from symbiosis.pipeline import optimise

    return dict(optimise(_base_region(folder)).kpis)


def test_the_base_of_the_fuzz_is_the_tiny_region_with_an_accented_name(base_folder, tiny_region):
    base = _base_region(str(base_folder))
    assert base.facilities.set_index("facility_id").at["power", "name"] == BASE_NAME
    assert len(base.flows) == len(tiny_region.flows)
