"""The web app's access sweep: every URL pattern × every role, with another firm's ids.

A firm user must neither read nor change anything of another firm (ids guessed, enumerated or taken from
another page); an anonymous visitor gets only the public pages; a signed-in user without a membership gets
nothing; every POST needs a CSRF token. The sweep walks the URL resolver, so a new route is covered the day
it is added, and fails when its view declares no access rule.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from symbiosis.web.access import RULES
from symbiosis.web.models import Facility, Flow, Interest, Introduction, Permit, QualityEntry, Run
from tests.web_helpers import World

pytestmark = pytest.mark.django_db


def _patterns(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    out = []
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            out += _patterns(p, prefix + str(p.pattern))
        else:
            out.append((prefix + str(p.pattern), p))
    return out


def test_every_route_declares_an_access_rule() -> None:
    missing = [route for route, p in _patterns() if getattr(p.callback, "access_rule", None) not in RULES]
    assert not missing, f"routes without an access rule (symbiosis.web.access.rule): {missing}"
    assert len(_patterns()) >= 20


def _b_objects(world: World, tmp_path) -> dict[str, object]:
    """Objects of firm B (and of the programme) whose ids firm A tries."""
    b_facility = Facility.objects.get(programme=world.programme, facility_id="gyproc")
    b_flow = Flow.objects.filter(facility=b_facility).first()
    a_out = Flow.objects.get(flow_id="asnaes_fgd_gypsum")
    b_out = Flow.objects.filter(facility__firm=world.firm_b, direction="out").first() or b_flow
    interest = Interest.objects.create(programme=world.programme, flow=b_out, receiver=a_out.facility,
                                       demand_flow_id="x", created_by=world.users["b"])
    intro = Introduction.objects.create(programme=world.programme, supplier=b_facility, receiver=a_out.facility,
                                        material="gypsum", interest=interest)
    (tmp_path / "kpis.json").write_text("{}")
    run = Run.objects.create(programme=world.programme, status="done", out_dir=str(tmp_path))
    # the composition of B's (confidential) plant's gypsum and its permit, marked so a leak shows
    quality = QualityEntry.objects.filter(flow__facility=b_facility).first()
    quality.source, quality.note = SECRETS[0], SECRETS[0]  # type: ignore[union-attr]
    quality.save()  # type: ignore[union-attr]
    permit = Permit.objects.create(facility=b_facility, ewc_code="100105", source=SECRETS[1], note=SECRETS[1])
    return {"facility": b_facility, "flow": b_flow, "interest": interest, "introduction": intro, "run": run,
            "quality": quality, "permit": permit}


#: Text in firm B's quality row and permit that no page of another firm or of the public may show.
SECRETS = ("b-secret-composition-source", "b-secret-permit-source")


def _url(route: str, pattern: URLPattern, objects: dict[str, object], world: World) -> str:
    """The route with another firm's ids (or the programme's) in it."""
    name = pattern.name or ""
    kwargs: dict[str, object] = {}
    for key in pattern.pattern.converters:
        if key == "pk":
            kind = ("facility" if name.startswith("facility") or name in ("flow_new", "permit_new") else
                    "flow" if name in ("flow_edit", "partners", "interest", "quality_new") else
                    "quality" if name.startswith("quality") else
                    "permit" if name.startswith("permit") else
                    "interest" if name == "introduce" else
                    "introduction" if name.startswith("introduction") else "run")
            kwargs[key] = objects[kind].pk  # type: ignore[attr-defined]
        elif key == "step":
            kwargs[key] = "residues"
        elif key == "slug":
            kwargs[key] = world.programme.slug  # type: ignore[attr-defined]
        elif key == "token":
            kwargs[key] = "no-such-token"
        elif key == "name":
            kwargs[key] = "kpis.json"
    from django.urls import reverse

    return reverse(name, kwargs=kwargs)


def _history_count() -> int:
    return (sum(m.history.count() for m in (Facility, Flow, Introduction, QualityEntry, Permit))
            + Interest.objects.count() + Run.objects.count())


def test_sweep_firm_a_cannot_reach_firm_b_anonymous_gets_only_public(world: World, tmp_path) -> None:
    objects = _b_objects(world, tmp_path)
    b_name = objects["facility"].name  # type: ignore[attr-defined]
    failures = []
    for route, pattern in _patterns():
        rule = pattern.callback.access_rule
        url = _url(route, pattern, objects, world)
        for who in (None, "outsider", "a", "agency"):
            client = world.client(who)
            for method in ("get", "post"):
                before = _history_count()
                response = getattr(client, method)(url, data={
                    "rank": "1", "status": "stopped", "email": "x@y.z", "role": "firm", "new_firm": "X",
                    "category": "waste", "quality-parameter": "chloride", "quality-value": "0.1",
                    "quality-unit": "%", "permit-ewc_code": "100105"})
                code = response.status_code
                changed = _history_count() != before
                if rule == "public":
                    ok = code in (200, 302, 404, 405)  # 404: no-such-token
                elif who is None:
                    ok = code == 302 and "/login/" in response["Location"] and not changed
                elif who == "outsider" or (who == "a" and rule == "programme"):
                    ok = code == 403 and not changed
                elif who == "a" and rule == "firm":
                    # routes with another firm's object: 404 (no existence oracle); own-scope routes may answer
                    ok = (code in (404, 405) if "pk" in pattern.pattern.converters else code in (200, 302, 405))
                    ok = ok and not ("pk" in pattern.pattern.converters and changed)
                elif who == "agency" and rule == "firm":
                    ok = code == 403 and not changed
                else:
                    ok = code in (200, 302, 405)
                if code == 200 and who in (None, "outsider", "a") and any(
                        secret in response.content.decode() for secret in (b_name, *SECRETS)):
                    ok = False
                if not ok:
                    failures.append(f"{method.upper()} {url} as {who or 'anonymous'} ({rule}): {code}"
                                    + (" and changed data" if changed else ""))
    assert not failures, "\n".join(failures)


def test_enumerated_ids_reach_only_the_own_firm(world: World) -> None:
    client = world.client("a")
    own = set(Facility.objects.filter(firm=world.firm_a).values_list("pk", flat=True))
    highest = Facility.objects.order_by("-pk").first().pk  # type: ignore[union-attr]
    for pk in range(1, highest + 3):
        for url in (f"/facilities/{pk}/", f"/facilities/{pk}/edit/"):
            assert client.get(url).status_code == (200 if pk in own else 404), url
    own_flows = set(Flow.objects.filter(facility__firm=world.firm_a).values_list("pk", flat=True))
    highest = Flow.objects.order_by("-pk").first().pk  # type: ignore[union-attr]
    for pk in range(1, highest + 3):
        assert client.get(f"/flows/{pk}/edit/").status_code == (200 if pk in own_flows else 404), pk
    # the composition of the flows and the permits of the facilities, by their own ids
    Permit.objects.create(facility=Facility.objects.get(facility_id="gyproc"), ewc_code="100105")
    Permit.objects.create(facility=Facility.objects.get(facility_id="asnaes"), ewc_code="100105")
    for model, route in ((QualityEntry, "quality"), (Permit, "permits")):
        owner = "flow__facility__firm" if model is QualityEntry else "facility__firm"
        own = set(model.objects.filter(**{owner: world.firm_a}).values_list("pk", flat=True))
        assert own and model.objects.exclude(pk__in=own).exists()
        for pk in range(1, model.objects.order_by("-pk").first().pk + 3):  # type: ignore[union-attr]
            assert client.get(f"/{route}/{pk}/edit/").status_code == (200 if pk in own else 404), (route, pk)
            if pk not in own:
                assert client.post(f"/{route}/{pk}/delete/").status_code == 404, (route, pk)
        assert model.objects.count() == len(own) + model.objects.exclude(pk__in=own).count()


def test_every_post_needs_a_csrf_token(world: World, tmp_path) -> None:
    objects = _b_objects(world, tmp_path)
    own = {"facility": Facility.objects.get(facility_id="asnaes"),
           "flow": Flow.objects.get(flow_id="asnaes_fgd_gypsum"),
           "interest": objects["interest"], "introduction": objects["introduction"], "run": objects["run"],
           "quality": QualityEntry.objects.filter(flow__flow_id="asnaes_fgd_gypsum").first(),
           "permit": Permit.objects.create(facility=Facility.objects.get(facility_id="asnaes"), ewc_code="100105")}
    for route, pattern in _patterns():
        url = _url(route, pattern, own, world)
        for who in ("a", "agency", None):
            response = world.client(who, csrf=True).post(url, data={"rank": "1"})
            if response.status_code == 405:
                continue
            if pattern.callback.access_rule != "public" and who is None:
                continue  # redirected to the login page before anything else
            assert response.status_code == 403 and b"CSRF" in response.content, (url, who, response.status_code)


def test_confidential_receiver_never_reaches_another_firm(world: World) -> None:
    """Firm A's partner search for its FGD gypsum: Gyproc (confidential, not opted in) is its best receiver.
    Its name, id, flow ids and exact coordinates must not be in the page; the distance is a 5 km band."""
    gyproc = Facility.objects.get(facility_id="gyproc")
    flow = Flow.objects.get(flow_id="asnaes_fgd_gypsum")
    QualityEntry.objects.filter(flow__facility=gyproc).update(source=SECRETS[0], note=SECRETS[0])
    Permit.objects.create(facility=gyproc, ewc_code="100105", source=SECRETS[1])
    world.programme.touch()  # type: ignore[attr-defined]
    page = world.client("a").get(f"/flows/{flow.pk}/partners/").content.decode()
    assert "a firm in sector 23.62" in page
    for secret in [gyproc.name, "Gyproc", "gyproc", gyproc.lat, gyproc.lon, *SECRETS,
                   *Flow.objects.filter(facility=gyproc).values_list("flow_id", flat=True)]:
        assert secret not in page, secret
    # an opted-in, non-confidential receiver is shown by name
    gyproc.confidential = False
    gyproc.save()
    world.firm_b.show_name_to_partners = True  # type: ignore[attr-defined]
    world.firm_b.save()  # type: ignore[attr-defined]
    world.programme.touch()  # type: ignore[attr-defined]
    page = world.client("a").get(f"/flows/{flow.pk}/partners/").content.decode()
    assert "Gyproc plasterboard plant" in page


def test_public_json_respects_confidential(world: World) -> None:
    """A material offered by fewer than 3 facilities, one of them confidential, is not in the public totals."""
    from symbiosis.web.models import Flow as F

    gyproc = Facility.objects.get(facility_id="gyproc")
    F.objects.create(facility=gyproc, flow_id="gyproc_offcuts", direction="out", category="waste",
                     material="plasterboard_waste_unique", amount="10", unit="t")
    data = world.client(None).get(f"/public/{world.programme.slug}.json").json()  # type: ignore[attr-defined]
    materials = {s["material"] for s in data["streams"]}
    assert "plasterboard_waste_unique" not in materials
    assert "fgd_gypsum" in materials  # a public facility's stream is counted


def test_passwords_hashed_login_throttled_sessions_expire(world: World, settings) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.get(username="a")
    assert user.password.startswith("argon2$argon2id$") and "a-Secret-pass-42" not in user.password
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "a", "password": "wrong"})
    response = client.post("/login/", {"username": "a", "password": "a-Secret-pass-42"})
    assert response.status_code in (403, 429)  # locked out even with the right password
    assert "_auth_user_id" not in client.session
    assert settings.SESSION_COOKIE_AGE <= 8 * 3600 and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_HTTPONLY


def test_new_passwords_argon2id_old_pbkdf2_hashes_still_log_in_and_are_upgraded(world: World) -> None:
    """A new account's password is stored as Argon2id; an account hashed with PBKDF2 before Argon2 came first
    still logs in through the login form, and its hash is then rehashed with Argon2id (Django does it at a
    successful login when the hasher is not the first of PASSWORD_HASHERS)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.test import Client

    User = get_user_model()
    fresh = User.objects.create_user("newcomer", password="newcomer-Secret-pass-42")
    assert fresh.password.startswith("argon2$argon2id$")
    old = User.objects.get(username="b")
    # the hash as the app stored it before Argon2id came first (PBKDF2-SHA256, Django's 1,000,000 iterations)
    old.password = PBKDF2PasswordHasher().encode("b-Secret-pass-42", "saltsaltsalt1234")
    old.save(update_fields=["password"])
    assert old.password.startswith("pbkdf2_sha256$1000000$")
    client = Client()
    response = client.post("/login/", {"username": "b", "password": "b-Secret-pass-42"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(old.pk)
    old.refresh_from_db()
    assert old.password.startswith("argon2$argon2id$")
    assert Client().post("/login/", {"username": "b", "password": "b-Secret-pass-42"}).status_code == 302
    assert Client().post("/login/", {"username": "b", "password": "wrong-pass-4242"}).status_code == 200


def test_the_tests_run_on_the_configured_database() -> None:
    """Under CI the access tests must really run on PostgreSQL (SYMBIOSIS_TEST_POSTGRES_URL), else SQLite."""
    import os

    from django.db import connection

    expected = "postgresql" if os.environ.get("SYMBIOSIS_TEST_POSTGRES_URL") else "sqlite"
    assert connection.vendor == expected


def test_public_totals_count_facilities_once_and_show_three_with_a_confidential_one(world: World) -> None:
    """Counted by hand: a residue of three facilities (one confidential, one offering it twice) is public with
    3 facilities; a product is no residual stream and is not listed."""
    from symbiosis.web.models import Flow as F

    facilities = [Facility.objects.get(facility_id=f) for f in ("gyproc", "asnaes", "novozymes")]
    assert facilities[0].confidential and not facilities[1].confidential
    for k, facility in enumerate([*facilities, facilities[1]]):
        F.objects.create(facility=facility, flow_id=f"hand_{k}", direction="out", category="by_product",
                         material="hand_counted_residue", amount="10", unit="t")
    F.objects.create(facility=facilities[1], flow_id="hand_product", direction="out", category="product",
                     material="hand_counted_product", amount="10", unit="t")
    data = world.client(None).get(f"/public/{world.programme.slug}.json").json()  # type: ignore[attr-defined]
    counts = {s["material"]: s["n_facilities"] for s in data["streams"]}
    assert counts["hand_counted_residue"] == 3
    assert "hand_counted_product" not in counts
    assert [s["material"] for s in data["streams"]] == sorted(counts)
