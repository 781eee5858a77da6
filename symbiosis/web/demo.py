"""The demo programme: the shipped Kalundborg region, one firm per facility, and demo accounts.

Passwords are generated on each load and printed once (never fixed in the code): a demo database is for a
loopback machine, not for the internet.
"""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from symbiosis.reference import data_dir

from . import bridge, composition
from .models import Facility, Firm, Flow, Membership, Programme, direction_of

EXTRA_TABLES = ("quality", "arcs", "permits", "processors")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@transaction.atomic
def load_programme(folder: Path, slug: str) -> Programme:
    """A programme from a region folder (CSV tables), each facility its own firm."""
    programme = Programme.objects.create(
        name=slug.replace("-", " ").title(), slug=slug, settings_yaml=(folder / "region.yaml").read_text("utf-8"),
        extra_tables={n: (folder / f"{n}.csv").read_text("utf-8") for n in EXTRA_TABLES
                      if (folder / f"{n}.csv").exists()})
    facilities = {}
    for row in _rows(folder / "facilities.csv"):
        firm = Firm.objects.create(programme=programme, name=row["name"])
        values: dict[str, object] = {k: row.get(k, "") or "" for k in bridge.FACILITY_FIELDS}
        values["confidential"] = str(values["confidential"]).strip().lower() in ("true", "1", "yes", "y")
        facilities[row["facility_id"]] = Facility.objects.create(
            programme=programme, firm=firm, facility_id=row["facility_id"], **values)
    for row in _rows(folder / "flows.csv"):
        values = {k: row.get(k, "") or "" for k in bridge.FLOW_FIELDS}
        values["direction"] = values["direction"] or direction_of(str(values["category"]))
        Flow.objects.create(facility=facilities[row["facility_id"]], flow_id=row["flow_id"], **values)
    # the composition of the flows and the facilities' permits: rows of their own (symbiosis.web.composition)
    composition.store_tables(programme, {n: t for n, t in programme.extra_tables.items() if n in composition.TABLES})
    return programme


def load_demo(slug: str = "kalundborg") -> list[tuple[str, str, str]]:
    """Load Kalundborg (once) and (re)set the demo accounts; returns (user, password, role) to print."""
    programme = Programme.objects.filter(slug=slug).first() or load_programme(
        data_dir() / "regions" / "kalundborg", slug)
    accounts = [("agency", Membership.AGENCY, None), ("facilitator", Membership.FACILITATOR, None),
                ("asnaes", Membership.FIRM, "asnaes"), ("gyproc", Membership.FIRM, "gyproc")]
    User = get_user_model()
    out = []
    for username, role, facility_id in accounts:
        firm = Facility.objects.get(programme=programme, facility_id=facility_id).firm if facility_id else None
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=f"demo-{username}")
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(user=user, defaults={"programme": programme, "role": role, "firm": firm})
        out.append((user.username, password, role + (f" ({firm.name})" if firm else "")))
    return out
