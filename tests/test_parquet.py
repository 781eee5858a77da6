"""Parquet copies of the large result tables (issue 17): exchanges, supplies and demands, row for row the CSVs.

Read back with pandas (pyarrow) and compared with the CSVs read back with pandas: every row, every column, the
numbers exactly (a CSV written by pandas round-trips float64) and the text as the CSV shows it, including a
formula-looking name that the CSV defuses. Written unasked from ``PARQUET_FROM_ROWS`` rows, always with
``--parquet``, never with ``--no-parquet``; listed in the run's manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from symbiosis.atomic import verify_outputs
from symbiosis.outputs import export
from symbiosis.outputs.export import PARQUET_TABLES, write_csv, write_parquet, write_results
from symbiosis.results import Results
from tests.test_cli import TINY, assert_ok, invoke

FORMULA = "=HYPERLINK(\"http://x\",\"y\")"


def _same_rows(parquet: pd.DataFrame, csv: pd.DataFrame) -> None:
    assert list(parquet.columns) == list(csv.columns)
    assert len(parquet) == len(csv) > 0
    for column in csv.columns:
        a, b = parquet[column], csv[column]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            x, y = pd.to_numeric(a).to_numpy(float), b.to_numpy(float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), column
            assert np.array_equal(x[~np.isnan(x)], y[~np.isnan(y)]), column  # exactly: no rounding on the way
        else:  # text, booleans and empty cells as the CSV shows them
            shown = a.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            read = b.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            assert shown.tolist() == read.tolist(), column


def test_parquet_equals_the_csvs_row_for_row(results: Results, tmp_path: Path) -> None:
    written = write_results(results, tmp_path, parquet=True)
    for name in PARQUET_TABLES:
        assert written[f"{name}.parquet"] == tmp_path / f"{name}.parquet"
        parquet = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert len(parquet) == len(getattr(results, name))
        _same_rows(parquet, pd.read_csv(tmp_path / f"{name}.csv"))
    exchanges = pd.read_parquet(tmp_path / "exchanges.parquet")
    assert pd.api.types.is_float_dtype(exchanges["amount_t_per_yr"])  # typed, not text


def test_parquet_cells_are_the_csv_cells(tmp_path: Path) -> None:
    """A formula-looking text is defused as in the CSV; a column of text and numbers is written as text."""
    frame = pd.DataFrame({"name": [FORMULA, "plain", None], "mixed": ["a", 2, 3.5],
                          "amount": [1.0 / 3.0, np.nan, 1e-300], "flag": [True, False, True]})
    write_csv(tmp_path / "t.csv", frame)
    write_parquet(tmp_path / "t.parquet", frame)
    parquet = pd.read_parquet(tmp_path / "t.parquet")
    assert parquet["name"].tolist()[:2] == ["'" + FORMULA, "plain"]
    assert parquet["mixed"].tolist() == ["a", "2", "3.5"]
    _same_rows(parquet, pd.read_csv(tmp_path / "t.csv"))


def test_parquet_unasked_only_for_large_tables(results: Results, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    largest = max(len(getattr(results, name)) for name in PARQUET_TABLES)
    monkeypatch.setattr(export, "PARQUET_FROM_ROWS", largest + 1)
    assert not any(name.endswith(".parquet") for name in write_results(results, tmp_path / "small"))
    assert not list((tmp_path / "small").glob("*.parquet"))
    monkeypatch.setattr(export, "PARQUET_FROM_ROWS", largest)
    written = write_results(results, tmp_path / "large")
    assert sorted(n for n in written if n.endswith(".parquet")) == sorted(f"{n}.parquet" for n in PARQUET_TABLES)
    assert not any(n.endswith(".parquet") for n in write_results(results, tmp_path / "no", parquet=False))


def test_run_parquet_option(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert_ok(invoke("run", TINY, "--out", out, "--no-pngs", "--parquet"))
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name in PARQUET_TABLES:
        assert f"{name}.parquet" in manifest["files"]
        _same_rows(pd.read_parquet(out / f"{name}.parquet"), pd.read_csv(out / f"{name}.csv"))
    verify_outputs(out)
    assert_ok(invoke("run", TINY, "--out", tmp_path / "plain", "--no-pngs"))
    assert not list((tmp_path / "plain").glob("*.parquet"))  # the tiny region is far below the threshold
