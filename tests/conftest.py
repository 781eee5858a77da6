"""Shared fixtures: the tiny test region (invented figures, its own reference tables and process model)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from symbiosis.inputs import load_region
from symbiosis.region import Region

TEST_DATA = Path(__file__).parent / "data"
TEST_REFERENCE = TEST_DATA / "reference"
TEST_MODELS = TEST_DATA / "models"
TINY = TEST_DATA / "regions" / "tiny"
REPO = Path(__file__).resolve().parent.parent


def load_test_region(path: Path) -> Region:
    """Load a region against the test reference tables and process models (stable, invented figures)."""
    return load_region(path, reference_dir=TEST_REFERENCE, models_directory=TEST_MODELS)


@pytest.fixture
def tiny_region() -> Region:
    return load_test_region(TINY)


@pytest.fixture
def tiny_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy the tiny region to a temporary folder, optionally editing tables: returns the folder."""

    def make(edit: Callable[[dict[str, pd.DataFrame]], None] | None = None) -> Path:
        target = tmp_path / "tiny"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(TINY, target)
        if edit is not None:
            tables = {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in target.glob("*.csv")}
            edit(tables)
            for name, frame in tables.items():
                frame.to_csv(target / f"{name}.csv", index=False)
        return target

    return make


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-expected", action="store_true", default=False,
                     help="rewrite tests/expected/*.json from the current results (deliberate changes only)")


@pytest.fixture
def update_expected(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-expected"))


@pytest.fixture(scope="session")
def sample() -> tuple[object, Region]:
    """(Results, Region) of the shipped Kalundborg region through the real pipeline, once per test process."""
    from browser_support import sample_results

    return sample_results()


@pytest.fixture(scope="session")
def results(sample: tuple[object, Region]) -> object:
    return sample[0]
