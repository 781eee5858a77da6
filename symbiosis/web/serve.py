"""``symbiosis serve``: migrate, optionally load the demo programme, and serve the app: with waitress in one
process (``--workers 1``, the default; also on Windows), or with gunicorn's pre-forked worker processes
(``--workers N``), each with its own threads and caches and one solver of each programme's optimum among them
(:mod:`symbiosis.web.search_cache`)."""

from __future__ import annotations

import os
from typing import Any


def setup(db: str | None = None) -> None:
    if db:
        os.environ["SYMBIOSIS_DATABASE_URL"] = db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "symbiosis.web.settings")
    import django

    django.setup()


def serve(*, db: str | None, demo: bool, host: str, port: int, threads: int = 8, workers: int = 1) -> None:
    setup(db)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from .jobs import fail_orphans

    fail_orphans()
    if demo:
        from .demo import load_demo

        print("demo programme: Kalundborg. Demo accounts (passwords are new on every start):")
        for user, password, role in load_demo():
            print(f"  {user:22s} {password:20s} {role}")
    if workers > 1:
        _serve_gunicorn(host, port, workers, threads)
        return
    from .search_cache import warm_up

    warm_up()  # the programmes' regions and first optima, in the background
    from waitress import serve as waitress_serve

    from .wsgi import application

    print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    waitress_serve(application, host=host, port=port, threads=threads)


def _serve_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    """gunicorn's pre-fork server: the app loaded once here, then ``workers`` processes forked, each serving
    with ``threads`` threads (gthread) and warming up its own caches after the fork (no thread, database
    connection or solver child is carried across a fork)."""
    from django.db import connections
    from gunicorn.app.base import BaseApplication

    from .wsgi import application

    connections.close_all()

    def post_fork(_server: object, _worker: object) -> None:
        from .search_cache import warm_up

        warm_up()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                       "worker_class": "gthread", "post_fork": post_fork,
                       "timeout": 120, "graceful_timeout": 30, "loglevel": "warning",
                       # idle connections kept 75 s (gunicorn's default, 2 s, is shorter than a user's pause
                       # between pages: a browser or proxy reusing a connection as it closes gets a reset)
                       "keepalive": 75}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> object:
            return application

    print(f"serving on http://{host}:{port}/ with {workers} worker processes (Ctrl-C to stop)", flush=True)
    Server().run()


def pid_header(get_response: Any) -> Any:
    """Middleware for the tests only (``SYMBIOSIS_TEST_PID_HEADER=1``): which server process answered."""

    def middleware(request: Any) -> Any:
        response = get_response(request)
        response["X-Symbiosis-Process"] = str(os.getpid())
        return response

    return middleware
