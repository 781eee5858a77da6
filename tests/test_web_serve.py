"""`symbiosis serve --demo`, as the README starts it: migrations on a fresh SQLite database, the demo
programme, the printed accounts, a login over real HTTP (waitress on the loopback) with Django's CSRF token."""

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
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_demo_starts_and_a_printed_account_logs_in(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMBIOSIS_DATABASE_URL")
           and k not in ("SYMBIOSIS_SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(SYMBIOSIS_WEB_DIR=str(tmp_path / "web"), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-c", "from symbiosis.cli import app; app()", "serve", "--demo",
                                "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        printed: list[str] = []
        deadline = time.monotonic() + 180
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if line.startswith("serving on"):
                break
        text = "".join(printed)
        assert f"serving on http://127.0.0.1:{port}/" in text, text
        password = re.search(r"demo-asnaes\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        # the secret key was generated into the data folder, readable by its owner only
        assert (tmp_path / "web" / "secret_key").stat().st_mode & 0o077 == 0
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):  # "serving on" is printed just before waitress binds the port
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.25)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(base + "/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        body = urllib.parse.urlencode({"username": "demo-asnaes", "password": password,
                                       "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(base + "/login/", data=body, headers={"Referer": base + "/login/"})
        response = opener.open(request)
        assert response.geturl().endswith("/dashboard/")
        assert "Asnæs power station" in response.read().decode()
        assert "Kalundborg" in opener.open(base + "/").read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
    # The server's children (the partner searches' solver, started on serve) end with it: none is left working
    # in its folder once it is stopped by a signal.
    deadline = time.monotonic() + 20
    while _processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_in(tmp_path), "a child of the server outlived it"


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` (the server's children inherit it)."""
    out = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if cwd.resolve() == folder.resolve():
                out.append(int(cwd.parent.name))
        except OSError:
            continue
    return out
