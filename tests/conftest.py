"""Shared fixtures: the tiny test region (invented figures, its own reference tables and process model).

Also the suite-wide settings: the hypothesis profiles (``ci``: derandomised, a fixed number of examples, no
deadline; ``dev``: hypothesis' random search without a deadline), chosen by ``HYPOTHESIS_PROFILE`` or, when
that is unset, by ``CI``; and a summary line naming the browser tests that did not run outside CI.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from symbiosis.inputs import load_region
from symbiosis.region import Region

TEST_DATA = Path(__file__).parent / "data"
TEST_REFERENCE = TEST_DATA / "reference"
TEST_MODELS = TEST_DATA / "models"
TINY = TEST_DATA / "regions" / "tiny"
REPO = Path(__file__).resolve().parent.parent

# Solves take a variable time on a shared machine: no deadline in either profile. Under CI the examples are
# derived from each test's name (derandomize), so a run can be repeated exactly and never fails by chance.
settings.register_profile("ci", derandomize=True, max_examples=50, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(HYPOTHESIS_PROFILE)


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
    from tests.browser_support import sample_results

    return sample_results()


@pytest.fixture(scope="session")
def results(sample: tuple[object, Region]) -> object:
    return sample[0]


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {HYPOTHESIS_PROFILE} (set HYPOTHESIS_PROFILE=ci|dev to choose)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
                            ) -> None:
    """Say loudly when browser tests were skipped (they can only skip outside CI; under CI they fail)."""
    skipped = [report for report in terminalreporter.stats.get("skipped", [])
               if "browser" in getattr(report, "keywords", {})]
    if not skipped:
        return
    longrepr = skipped[0].longrepr
    reason = (str(longrepr[-1]) if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
    terminalreporter.write_sep("!", f"{len(skipped)} BROWSER TESTS DID NOT RUN", red=True, bold=True)
    terminalreporter.write_line(f"{reason}. What a person sees in the map and the report was not checked; "
                                "under CI (env CI set) this is a failure.", red=True)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM: the main thread of this process, as pytest runs tests)."""

    def expire(signum, frame):  # type: ignore[no-untyped-def]
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, initialised custody ledger, once on a SQLite file and once on a fresh PostgreSQL database
    (skipped without ``SYMBIOSIS_TEST_POSTGRES_URL``, failed under CI; tests/ledger_support.py)."""
    from symbiosis.ledger import init_ledger
    from tests.ledger_support import fresh_postgres_database

    if request.param == "sqlite":
        db = str(tmp_path / "ledger.sqlite")
        init_ledger(db)
        yield db
    else:
        with fresh_postgres_database() as url:
            init_ledger(url)
            yield url


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    """The web app's Kalundborg programme with two firms and their users (tests/web_helpers.py)."""
    from tests.web_helpers import make_world

    return make_world()
