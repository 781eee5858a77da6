"""``symbiosis serve``: migrate, optionally load the demo programme, and serve the app (waitress, or Django's
development server with ``--dev``)."""

from __future__ import annotations

import os


def setup(db: str | None = None) -> None:
    if db:
        os.environ["SYMBIOSIS_DATABASE_URL"] = db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "symbiosis.web.settings")
    import django

    django.setup()


def serve(*, db: str | None, demo: bool, host: str, port: int, threads: int = 8) -> None:
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
    from .search_cache import warm_up

    warm_up()  # the programmes' regions and first optima, in the background
    from waitress import serve as waitress_serve

    from .wsgi import application

    print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)")
    waitress_serve(application, host=host, port=port, threads=threads)
