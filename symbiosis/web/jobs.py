"""Background runs: ``symbiosis run`` on the programme in a child process, its status kept in the database.

The page that started a run can be closed or reloaded: the run's row says where it is (queued, running with
the last line the command printed, done with its KPIs, failed with the error). A thread of the server waits
on the child process; if the server stops mid-run, :func:`fail_orphans` marks the run failed on the next start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from . import bridge
from .models import Run

logger = logging.getLogger(__name__)
_threads: dict[int, threading.Thread] = {}


def start_run(run: Run) -> threading.Thread:
    thread = threading.Thread(target=_execute, args=(run.pk,), name=f"symbiosis-run-{run.pk}", daemon=True)
    _threads[run.pk] = thread
    thread.start()
    return thread


def wait(run_id: int, timeout: float | None = None) -> None:
    thread = _threads.get(run_id)
    if thread is not None:
        thread.join(timeout)


def fail_orphans() -> int:
    """Runs left queued or running by a server that stopped: they will not finish."""
    return Run.objects.filter(status__in=["queued", "running"]).exclude(pk__in=list(_threads)).update(
        status="failed", progress="the server stopped during the run", finished=timezone.now())


def command_of(run: Run, region_dir: Path, tmp: Path, out: Path) -> list[str]:
    """The ``symbiosis`` command line of a run of the programme written in ``region_dir``."""
    carbon = [] if run.carbon_price is None else ["--carbon-price", str(run.carbon_price)]
    if run.kind == "uncertainty":
        options = run.options or {}
        return ["uncertainty", str(region_dir), "--out", str(out), "--private", "--workers", "1",
                "--samples", str(int(options.get("samples", 200))), "--seed", str(int(options.get("seed", 0))),
                *carbon]
    if run.kind == "compare":
        # The programme as it is (with the run's carbon price, if any), then one scenario per carbon price.
        base_changes = [] if run.carbon_price is None else [{"parameters": {"carbon_price": run.carbon_price}}]
        files = [_scenario(tmp, "programme", "The programme as it is", region_dir, base_changes)]
        for price in (run.options or {}).get("carbon_prices", []):
            name = f"carbon_price_{float(price):g}".replace(".", "_")
            files.append(_scenario(tmp, name, f"A carbon price of {float(price):g} per t CO2e", region_dir,
                                   [{"parameters": {"carbon_price": float(price)}}]))
        # The agency's own scenarios (RunForm: a landfill tax factor, facilities closing, scenario YAML), each on
        # the programme as it is, with the run's carbon price first if one was given.
        for k, scenario in enumerate((run.options or {}).get("scenarios", []), start=1):
            files.append(_scenario(tmp, str(scenario["name"]), str(scenario.get("description", "")), region_dir,
                                   [*base_changes, *scenario.get("changes", [])], file_name=f"scenario-{k}"))
        return ["compare", *map(str, files), "--out", str(out), "--private", "--workers", "1"]
    return ["run", str(region_dir), "--out", str(out), "--private", *carbon]


def _scenario(folder: Path, name: str, description: str, region_dir: Path, changes: list[dict[str, Any]],
              file_name: str | None = None) -> Path:
    import yaml

    path = folder / f"{file_name or name}.yaml"  # a scenario's name may hold spaces: its file is named apart
    path.write_text(yaml.safe_dump({"name": name, "description": description, "base": str(region_dir),
                                    "changes": changes}, sort_keys=False), encoding="utf-8")
    return path


def _update(run_id: int, **fields: object) -> None:
    """Write the run's status. SQLite refuses a write while another connection reads the table at that instant
    ("database table is locked": a shared-cache lock, which no busy timeout waits for); a status line is
    worth a few short retries rather than failing the run."""
    from django.db import OperationalError

    for attempt in range(6):
        try:
            Run.objects.filter(pk=run_id).update(**fields)
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 5:
                raise
            time.sleep(0.05 * 2 ** attempt)


def _execute(run_id: int) -> None:
    close_old_connections()
    try:
        run = Run.objects.select_related("programme").get(pk=run_id)
        out = Path(settings.RUNS_DIR) / f"run-{run.pk}"
        out.parent.mkdir(parents=True, exist_ok=True)
        _update(run_id, status="running", progress="writing the region", out_dir=str(out))
        with tempfile.TemporaryDirectory(prefix="symbiosis-run-") as tmp:
            region_dir = Path(tmp) / "region"
            region_dir.mkdir()
            bridge.write_region(run.programme, region_dir)
            # the agency's copy (--private): agency staff see the whole programme
            command = [sys.executable, "-c", "from symbiosis.cli import app; app()",
                       *command_of(run, region_dir, Path(tmp), out)]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            _update(run_id, progress="optimising")
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            lines: list[str] = []
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip()
                if line:
                    lines.append(line)
                    _update(run_id, progress=line[-300:])
            code = process.wait()
        if code == 0 and (run.kind != "optimise" or (out / "kpis.json").exists()):
            kpis = json.loads((out / "kpis.json").read_text()) if (out / "kpis.json").exists() else {}
            _update(run_id, status="done", progress="done", kpis=kpis, finished=timezone.now())
        else:
            _update(run_id, status="failed", progress="\n".join(lines[-20:]) or f"exit status {code}",
                    finished=timezone.now())
    except Exception as exc:  # the run's row must say it failed, whatever failed
        logger.exception("run %s failed", run_id)
        _update(run_id, status="failed", progress=f"{type(exc).__name__}: {exc}", finished=timezone.now())
    finally:
        connection.close()
