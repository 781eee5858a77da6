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
from pathlib import Path

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


def _update(run_id: int, **fields: object) -> None:
    Run.objects.filter(pk=run_id).update(**fields)


def _execute(run_id: int) -> None:
    close_old_connections()
    try:
        run = Run.objects.select_related("programme").get(pk=run_id)
        out = Path(settings.RUNS_DIR) / f"run-{run.pk}"
        out.parent.mkdir(parents=True, exist_ok=True)
        _update(run_id, status="running", progress="writing the region", out_dir=str(out))
        with tempfile.TemporaryDirectory(prefix="symbiosis-run-") as tmp:
            bridge.write_region(run.programme, Path(tmp))
            command = [sys.executable, "-c", "from symbiosis.cli import app; app()", "run", tmp, "--out", str(out),
                       "--private"]  # the agency's copy: agency staff see the whole programme
            if run.carbon_price is not None:
                command += ["--carbon-price", str(run.carbon_price)]
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
        if code == 0 and (out / "kpis.json").exists():
            kpis = json.loads((out / "kpis.json").read_text())
            _update(run_id, status="done", progress="done", kpis=kpis, finished=timezone.now())
        else:
            _update(run_id, status="failed", progress="\n".join(lines[-20:]) or f"exit status {code}",
                    finished=timezone.now())
    except Exception as exc:  # the run's row must say it failed, whatever failed
        logger.exception("run %s failed", run_id)
        _update(run_id, status="failed", progress=f"{type(exc).__name__}: {exc}", finished=timezone.now())
    finally:
        connection.close()
