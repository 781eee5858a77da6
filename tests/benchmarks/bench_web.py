"""Load test of the web application (issue 14): 50 simulated users on a 5,000-facility programme, 2 minutes.

Run by hand, never collected by pytest (the file name does not match ``test_*.py``)::

    PYTHONPATH=$PWD .venv/bin/python tests/benchmarks/bench_web.py --facilities 5000 --users 50 --minutes 2

What it does, in this order:

1. **prepare** (a child process, Django only): a synthetic region of ``--facilities`` facilities
   (:func:`symbiosis.synthetic.generate_region`, seed 0, with processors and heat) loaded as a programme into a
   fresh SQLite database in a temporary ``SYMBIOSIS_WEB_DIR`` (one firm per facility, as the demo does), a
   facilitator account, and one firm user for each of ``--users - 2`` firms that have an outgoing stream the
   partner search takes (passwords hashed by the app's first hasher, Argon2id, as in production).
2. **serve**: ``symbiosis serve`` on a free loopback port (waitress, 8 threads, as the README starts it; with
   ``--workers N``, gunicorn's N pre-forked processes of 8 threads each).
3. **warm-up**: one partner search, which loads the programme and solves its first optimum (reported apart:
   a server does this once after it starts).
4. **load** (Locust, run as a library, headless): the users arrive ``--spawn-rate`` a second (default 1,
   as members of a programme start their day, not all in one second) and log in through the login form (CSRF
   token, password check), then, each waiting 1-3 s between requests (``--think MIN MAX``), search partners
   for one of their streams (weight 5), open their facility page (2) or edit one of their flows (1: the edit
   form, then the save, which runs ``symbiosis check``'s checks on the programme and raises its data version);
   two facilitators open their dashboard (3), the interests (1) and the runs (1), waiting MIN + 1 to MAX + 2 s.
   A response that is not 200/302, a saved form sent back with errors, or a partner page with an error
   message counts as an error.
5. **report**: requests, errors and p50/p95/p99 (ms) per kind of request, the ``uptime`` load average before
   and after, and (``--out``) a JSON file with the same figures.

The server and the solver's child process are stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "bench-Secret-pass-2026"


# ------------------------------------------------------------------------------------------------ prepare


def prepare(web_dir: Path, n_facilities: int, n_firm_users: int, seed: int) -> dict[str, object]:
    """In a fresh process: the programme and accounts (see the module docstring); returns what the users need."""
    os.environ["SYMBIOSIS_WEB_DIR"] = str(web_dir)
    os.environ.pop("SYMBIOSIS_DATABASE_URL", None)
    from symbiosis.web.serve import setup

    setup(None)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from symbiosis.inputs import load_region
    from symbiosis.synthetic import generate_region
    from symbiosis.web.demo import load_programme
    from symbiosis.web.models import Facility, Flow, Membership

    call_command("migrate", interactive=False, verbosity=0)
    region_dir = generate_region(n_facilities, web_dir / "region", seed=seed)
    started = time.perf_counter()
    programme = load_programme(region_dir, "bench")
    loaded_s = time.perf_counter() - started
    # The streams a partner search takes: outgoing, exchangeable, mass (symbiosis.candidates' supplies).
    region = load_region(region_dir)
    from symbiosis.candidates import candidates

    supplies = candidates(region).supplies
    mass = supplies[supplies["quantity"] == "mass"]
    by_facility = mass.groupby("facility_id")["supply_id"].apply(list).to_dict()
    rng = random.Random(seed)
    chosen = rng.sample(sorted(by_facility), n_firm_users)
    User = get_user_model()
    users = []
    for k, facility_id in enumerate(chosen):
        facility = Facility.objects.get(programme=programme, facility_id=facility_id)
        user = User.objects.create_user(f"firm{k:03d}", password=PASSWORD)
        Membership.objects.create(user=user, programme=programme, role=Membership.FIRM, firm=facility.firm)
        flows = []
        for flow in Flow.objects.filter(facility=facility, flow_id__in=by_facility[facility_id]):
            flows.append({"pk": flow.pk, "fields": {f: getattr(flow, f) for f in (
                "category", "material", "amount", "unit", "fate", "price", "price_unit", "max_secondary_share",
                "max_distance_km", "uncertainty_pct", "ewc_code", "source", "note")}})
        users.append({"username": user.username, "facility_pk": facility.pk, "flows": flows})
    facilitators = []
    for k in range(2):
        user = User.objects.create_user(f"facilitator{k}", password=PASSWORD)
        Membership.objects.create(user=user, programme=programme, role=Membership.FACILITATOR)
        facilitators.append(user.username)
    return {"firm_users": users, "facilitators": facilitators, "facilities": Facility.objects.count(),
            "flows": Flow.objects.count(), "load_programme_s": loaded_s}


# ------------------------------------------------------------------------------------------------ serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(web_dir: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYMBIOSIS_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(SYMBIOSIS_WEB_DIR=str(web_dir), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    handle = log.open("wb")
    process = subprocess.Popen([sys.executable, "-c", "from symbiosis.cli import app; app()", "serve",
                                "--port", str(port), "--workers", str(workers)], cwd=web_dir, env=env, stdout=handle,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.25)
    raise RuntimeError("the server did not start within 5 minutes")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the server's own group: it and its solver child, nothing else
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def _cpu_seconds(group: int) -> float:
    """User + system CPU seconds of the live processes of one process group (the server and its solver)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ------------------------------------------------------------------------------------------------ load


def run_load(base: str, plan: dict[str, object], n_users: int, seconds: float,
             think: tuple[float, float] = (1.0, 3.0), spawn_rate: float = 1.0) -> dict[str, object]:
    """Locust as a library (gevent: imported only here, after the Django work is done in other processes)."""
    import gevent
    from locust import HttpUser, between, events, task
    from locust.env import Environment

    firm_plans = list(plan["firm_users"])  # type: ignore[call-overload]
    facilitators = list(plan["facilitators"])  # type: ignore[call-overload]

    def login(user: HttpUser, username: str) -> None:
        user.client.get("/login/", name="login (form)")
        token = user.client.cookies.get("csrftoken", "")
        with user.client.post("/login/", data={"username": username, "password": PASSWORD,
                                                "csrfmiddlewaretoken": token},
                              name="login (post)", allow_redirects=False, catch_response=True) as r:
            if r.status_code != 302:
                r.failure(f"login refused: {r.status_code}")

    class FirmUser(HttpUser):
        weight = max(1, n_users - 2)
        wait_time = between(*think)

        def on_start(self) -> None:
            self.plan = firm_plans.pop() if firm_plans else random.choice(plan["firm_users"])  # type: ignore[arg-type]
            login(self, self.plan["username"])

        @task(5)
        def search(self) -> None:
            flow = random.choice(self.plan["flows"])
            with self.client.get(f"/flows/{flow['pk']}/partners/", name="partner search", catch_response=True,
                                 timeout=300) as r:
                if r.status_code != 200 or "Partners for" not in r.text:
                    r.failure(f"status {r.status_code}")
                elif 'class="errorlist"' in r.text:
                    r.failure("error on the page: " + re.sub(r"\s+", " ", r.text.split('class="errorlist">')[1][:200]))

        @task(2)
        def facility(self) -> None:
            self.client.get(f"/facilities/{self.plan['facility_pk']}/", name="facility page", timeout=300)

        @task(1)
        def edit(self) -> None:
            flow = random.choice(self.plan["flows"])
            self.client.get(f"/flows/{flow['pk']}/edit/", name="edit flow (form)", timeout=300)
            fields = dict(flow["fields"])
            amount = float(fields["amount"]) * random.uniform(0.95, 1.05)
            fields["amount"] = f"{amount:.6g}"
            fields["csrfmiddlewaretoken"] = self.client.cookies.get("csrftoken", "")
            with self.client.post(f"/flows/{flow['pk']}/edit/", data=fields, name="edit flow (save)",
                                  allow_redirects=False, catch_response=True, timeout=300) as r:
                if r.status_code != 302:
                    r.failure(f"not saved: status {r.status_code}"
                              + (" (form errors)" if "errorlist" in r.text else ""))

    class Facilitator(HttpUser):
        weight = 2
        wait_time = between(think[0] + 1, think[1] + 2)

        def on_start(self) -> None:
            login(self, facilitators.pop() if facilitators else plan["facilitators"][0])  # type: ignore[index]

        @task(3)
        def dashboard(self) -> None:
            self.client.get("/dashboard/", name="facilitator dashboard", timeout=300)

        @task(1)
        def interests(self) -> None:
            self.client.get("/programme/interests/", name="facilitator interests", timeout=300)

        @task(1)
        def runs(self) -> None:
            self.client.get("/programme/runs/", name="facilitator runs", timeout=300)

    env = Environment(user_classes=[FirmUser, Facilitator], host=base, events=events)
    runner = env.create_local_runner()
    runner.start(n_users, spawn_rate=spawn_rate)  # users arrive over a ramp: spawn_rate a second
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    out: dict[str, object] = {}
    for (name, method), entry in sorted(env.stats.entries.items()):
        out[name] = {"method": method, "requests": entry.num_requests, "errors": entry.num_failures,
                     "p50_ms": entry.get_response_time_percentile(0.50),
                     "p95_ms": entry.get_response_time_percentile(0.95),
                     "p99_ms": entry.get_response_time_percentile(0.99), "max_ms": entry.max_response_time}
    out["_errors"] = [{"name": e.name, "error": str(e.error), "occurrences": e.occurrences}
                      for e in env.stats.errors.values()]
    out["_total"] = {"requests": env.stats.total.num_requests, "errors": env.stats.total.num_failures}
    return out


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facilities", type=int, default=5000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary web folder (its path is printed)")
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                        help="seconds a firm user waits between two requests (default 1 3; facilitators wait "
                             "1 s and 2 s more)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (symbiosis serve --workers; 1: waitress, more: gunicorn)")
    parser.add_argument("--spawn-rate", type=float, default=1.0,
                        help="users arriving a second (Locust's spawn rate; default 1: 50 users within 50 s)")
    parser.add_argument("--prepared", type=Path,
                        help="a folder kept by --keep from an earlier run with the same --facilities, --users and "
                             "--seed: copied instead of preparing anew")
    parser.add_argument("--_prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._prepare:  # the child process of step 1
        plan = prepare(args._prepare, args.facilities, args.users - 2, args.seed)
        (args._prepare / "plan.json").write_text(json.dumps(plan))
        return 0

    web_dir = Path(tempfile.mkdtemp(prefix="symbiosis-bench-web-"))
    server = None
    try:
        load_before = _uptime()
        print(f"load before: {load_before}", flush=True)
        started = time.perf_counter()
        if args.prepared:
            shutil.copytree(args.prepared, web_dir, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("optima", "runs", "server.log", "*-wal", "*-shm"))
        else:
            subprocess.run([sys.executable, __file__, "--facilities", str(args.facilities), "--users",
                            str(args.users), "--seed", str(args.seed), "--_prepare", str(web_dir)], check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
        plan = json.loads((web_dir / "plan.json").read_text())
        print(f"prepared {plan['facilities']} facilities, {plan['flows']} flows, {len(plan['firm_users'])} firm users "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
        port = _free_port()
        server = start_server(web_dir, port, web_dir / "server.log", args.workers)
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        warm = _warm_up(base, plan)
        warm_s = time.perf_counter() - started
        print(f"warm-up (first region load and optimum): {warm_s:.1f} s ({warm})", flush=True)
        cpu_before, wall_before = _cpu_seconds(server.pid), time.perf_counter()
        figures = run_load(base, plan, args.users, args.minutes * 60, tuple(args.think), args.spawn_rate)
        cpu = _cpu_seconds(server.pid) - cpu_before
        wall = time.perf_counter() - wall_before
        figures["_setup"] = {"facilities": plan["facilities"], "flows": plan["flows"], "users": args.users,
                             "seconds": args.minutes * 60, "think_s": list(args.think), "warm_up_s": warm_s,
                             "workers": args.workers, "spawn_rate": args.spawn_rate, "load_before": load_before,
                             "load_after": _uptime(),
                             "server_cpu_s": cpu, "wall_s": wall}
        _print(figures)
        if args.out:
            args.out.write_text(json.dumps(figures, indent=1) + "\n")
        return 0 if figures["_total"]["errors"] == 0 else 1  # type: ignore[index]
    finally:
        if server is not None:
            stop_server(server)
        if args.keep:
            print(f"kept {web_dir}")
        else:
            shutil.rmtree(web_dir, ignore_errors=True)


def _warm_up(base: str, plan: dict[str, object]) -> str:
    """Log in as the first firm user and search once (urllib, before gevent is imported)."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/login/", timeout=60).read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    user = plan["firm_users"][0]  # type: ignore[index]
    data = urllib.parse.urlencode({"username": user["username"], "password": PASSWORD,
                                   "csrfmiddlewaretoken": token}).encode()
    opener.open(urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"}),
                timeout=60).read()
    page = opener.open(f"{base}/flows/{user['flows'][0]['pk']}/partners/", timeout=1200).read().decode()
    return "ok" if "Partners for" in page and 'class="errorlist"' not in page else "ERROR: " + page[-500:]


def _print(figures: dict[str, object]) -> None:
    print(f"\n{'request':28s} {'count':>7s} {'errors':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}")
    for name, f in figures.items():
        if name.startswith("_"):
            continue
        print(f"{name:28s} {f['requests']:7d} {f['errors']:6d} {f['p50_ms']:8.0f} {f['p95_ms']:8.0f} "  # type: ignore[index]
              f"{f['p99_ms']:8.0f} {f['max_ms']:8.0f}")  # type: ignore[index]
    print(f"total: {figures['_total']}")
    for e in figures["_errors"]:  # type: ignore[attr-defined]
        print(f"  error: {e}")
    setup = figures["_setup"]
    print(f"server and solver CPU during the load: {setup['server_cpu_s']:.0f} s in {setup['wall_s']:.0f} s "  # type: ignore[index]
          f"({setup['server_cpu_s'] / setup['wall_s']:.2f} cores; the machine has {os.cpu_count()})")  # type: ignore[index]
    print(f"load after: {setup['load_after']}")  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
