"""Fixtures of the web app's tests: Kalundborg as a programme, two firms (A: Asnæs, B: Gyproc, whose plant is
confidential and whose firm has not opted in to show its name), agency staff, a facilitator."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.test import Client

from symbiosis.reference import data_dir


@dataclass
class World:
    programme: object
    firm_a: object
    firm_b: object
    users: dict[str, object]

    def client(self, who: str | None, *, csrf: bool = False) -> Client:
        client = Client(enforce_csrf_checks=csrf)
        if who is not None:
            client.force_login(self.users[who], backend="django.contrib.auth.backends.ModelBackend")
        return client


def make_world() -> World:
    from symbiosis.web.bridge import clear_caches
    from symbiosis.web.demo import load_programme

    clear_caches()  # each test's database starts its ids afresh: a cache keyed by them must not outlive it
    from symbiosis.web.models import Facility, Membership

    programme = load_programme(data_dir() / "regions" / "kalundborg", "kalundborg")
    a = Facility.objects.get(programme=programme, facility_id="asnaes").firm
    gyproc = Facility.objects.get(programme=programme, facility_id="gyproc")
    gyproc.confidential = True
    gyproc.save()
    b = gyproc.firm
    User = get_user_model()
    users = {}
    for name, role, firm in [("agency", "agency", None), ("facilitator", "facilitator", None),
                             ("a", "firm", a), ("b", "firm", b)]:
        user = User.objects.create_user(name, password=f"{name}-Secret-pass-42")
        Membership.objects.create(user=user, programme=programme, role=role, firm=firm)
        users[name] = user
    users["outsider"] = User.objects.create_user("outsider", password="outsider-Secret-pass-42")
    return World(programme, a, b, users)

