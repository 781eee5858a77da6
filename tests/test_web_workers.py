"""`symbiosis serve --workers 2`: a real gunicorn server with two pre-forked processes on the loopback. Pages are
served by both; the programme's optimum is solved once for both (a file lock, the optimum written to a file by
data version); a flow saved in one process reaches the other's partner search without loading the programme
again (the change's facility, recorded in the database, replayed)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn's pre-fork server is for POSIX")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate, seconds: float, what: str, log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {seconds} s; server output:\n{log.read_text()[-3000:]}")


def _supplier_values(page: str) -> set[str]:
    """The 'value for you /t' cells of the partners table (the 6th column of each row)."""
    rows = re.findall(r"<tr><td>\d+</td>(.*?)</tr>", page, flags=re.S)
    return {re.findall(r"<td>(.*?)</td>", row, flags=re.S)[4].strip() for row in rows}


@pytest.mark.slow
def test_two_worker_processes_serve_pages_and_share_one_solver(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMBIOSIS_DATABASE_URL")
           and k not in ("SYMBIOSIS_SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(SYMBIOSIS_WEB_DIR=str(tmp_path / "web"), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1",
               SYMBIOSIS_TEST_PID_HEADER="1")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", "from symbiosis.cli import app; app()", "serve", "--demo",
                                    "--port", str(port), "--workers", "2"], cwd=tmp_path, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(lambda: "serving on" in log.read_text(), 180, "the server did not start", log)
        assert "with 2 worker processes" in log.read_text()
        password = re.search(r"demo-asnaes\s+(\S+)", log.read_text()).group(1)  # type: ignore[union-attr]

        def port_open() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(port_open, 60, "the port did not open", log)
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(base + "/login/", timeout=60).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        body = urllib.parse.urlencode({"username": "demo-asnaes", "password": password,
                                       "csrfmiddlewaretoken": token}).encode()
        dashboard = opener.open(urllib.request.Request(base + "/login/", data=body,
                                                       headers={"Referer": base + "/login/"}), timeout=60)
        text = dashboard.read().decode()
        facility = re.search(r'href="(/facilities/\d+/)"', text).group(1)  # type: ignore[union-attr]
        text = opener.open(base + facility, timeout=60).read().decode()
        # The flow's edit link (its partners page has the same number): asnaes_fgd_gypsum, a by-product.
        flow_pk = int(re.search(r"asnaes_fgd_gypsum</td>.*?/flows/(\d+)/edit/", text, flags=re.S).group(1))  # type: ignore[union-attr]

        def search(_: int = 0) -> tuple[str, str]:
            response = opener.open(f"{base}/flows/{flow_pk}/partners/", timeout=300)
            return response.headers["X-Symbiosis-Process"], response.read().decode()

        def searches_by_process() -> dict[str, list[str]]:
            """Concurrent searches until both processes answered (the kernel hands connections to either)."""
            seen: dict[str, list[str]] = {}
            with ThreadPoolExecutor(8) as pool:
                for _round in range(20):
                    for pid, page in pool.map(search, range(16)):
                        seen.setdefault(pid, []).append(page)
                    if len(seen) >= 2:
                        break
            return seen

        before = searches_by_process()
        assert len(before) == 2, f"every request was served by one process: {list(before)}"
        assert {int(pid) for pid in before} != {process.pid}  # the workers answer, not the master
        for pages in before.values():
            for page in pages:
                assert "Partners for asnaes_fgd_gypsum" in page and 'class="errorlist"' not in page
                assert _supplier_values(page) == {"104.00"}  # landfill's reference cost: no price on the flow
        # Save a contract price through the form of one process...
        edit = opener.open(f"{base}/flows/{flow_pk}/edit/", timeout=60).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', edit).group(1)  # type: ignore[union-attr]
        fields = {"category": "by_product", "material": "fgd_gypsum", "amount": "150000", "unit": "t",
                  "fate": "landfill_nonhazardous", "source": "test", "price": "41.5", "price_unit": "EUR/t",
                  "csrfmiddlewaretoken": token}
        saved = opener.open(urllib.request.Request(f"{base}/flows/{flow_pk}/edit/",
                                                   data=urllib.parse.urlencode(fields).encode(),
                                                   headers={"Referer": f"{base}/flows/{flow_pk}/edit/"}), timeout=120)
        assert saved.geturl().rstrip("/").split("/")[-2] == "facilities", saved.geturl()
        # ...and both processes' searches show it: the other process replayed the change.
        after = searches_by_process()
        assert len(after) == 2, list(after)
        for pages in after.values():
            for page in pages:
                assert _supplier_values(page) == {"41.50"}, page[-2000:]
        output = log.read_text()
        solved = re.findall(r"solved the optimum of programme \S+ at data version (\d+) in [\d.]+ s \(process (\d+)\)",
                            output)
        versions = [v for v, _pid in solved]
        # one solve per data version among the two processes (the first optimum and the edit's), not one each
        assert len(versions) == len(set(versions)) and 1 <= len(versions) <= 2, output[-3000:]
        loads = re.findall(r"loaded programme \S+ at data version (\d+)", output)
        # each process loaded the programme once, before the edit: the edit was replayed, not reloaded
        assert len(loads) <= 2 and len(set(loads)) == 1, output[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=30)
