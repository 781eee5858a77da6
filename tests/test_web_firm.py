"""The web app's firm and agency work: entries checked by the library's own checks, located at the field
or the workbook cell; partner search and interest; the audit trail; a background run that survives reloads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import Workbook

from symbiosis.web.models import Facility, Flow, Interest, Introduction, Run
from tests.web_helpers import World

pytestmark = pytest.mark.django_db

GOOD_FLOW = {"flow_id": "asnaes_slag", "category": "waste", "material": "fly_ash", "amount": "1200", "unit": "t",
             "fate": "landfill_nonhazardous", "source": "invoice"}


def test_flow_entry_checked_at_the_field(world: World) -> None:
    facility = Facility.objects.get(facility_id="asnaes")
    client = world.client("a")
    url = f"/facilities/{facility.pk}/flows/new/residues/"
    # a unit that is not a mass or energy, and an unknown material: the loader's messages, at their fields
    response = client.post(url, {**GOOD_FLOW, "material": "fly_ashh"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "did you mean 'fly_ash'" in " ".join(errors["material"])  # the loader's own message
    errors = client.post(url, {**GOOD_FLOW, "unit": "parsecs"}).context["form"].errors
    assert list(errors) == ["unit"], errors
    assert not Flow.objects.filter(flow_id="asnaes_slag").exists()
    response = client.post(url, GOOD_FLOW)
    assert response.status_code == 302
    flow = Flow.objects.get(flow_id="asnaes_slag")
    assert flow.direction == "out" and flow.facility == facility
    # every change kept with who and when
    client.post(f"/flows/{flow.pk}/edit/", {**GOOD_FLOW, "amount": "1500"})
    history = list(flow.history.all())
    assert [h.amount for h in history] == ["1500", "1200"]
    assert all(h.history_user.username == "a" for h in history)


def test_facility_entry_bad_nace_and_coordinates(world: World) -> None:
    response = world.client("a").post("/facilities/new/", {"facility_id": "asnaes_2", "name": "New site",
                                                           "sector": "99.99", "lat": "123", "lon": "11.1"})
    errors = response.context["form"].errors
    assert "sector" in errors and "lat" in errors, errors


def _workbook(rows: list[list[object]]) -> io.BytesIO:
    book = Workbook()
    sheet = book.active
    sheet.title = "flows"
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    data.name = "flows.xlsx"
    return data


def test_workbook_problems_at_their_cells(world: World) -> None:
    header = ["flow_id", "facility_id", "direction", "category", "material", "amount", "unit", "fate"]
    good = ["asnaes_ash2", "asnaes", "out", "waste", "fly_ash", 500, "t", "landfill_nonhazardous"]
    bad = ["asnaes_ash3", "asnaes", "out", "waste", "fly_ash", "lots", "t", "landfill_nonhazardous"]
    response = world.client("a").post("/upload/", {"workbook": _workbook([header, good, bad])})
    problems = [str(p) for p in response.context["problems"]]
    assert any(p.startswith("sheet flows, cell F3:") for p in problems), problems  # amount of the third row
    assert not Flow.objects.filter(flow_id="asnaes_ash2").exists()  # nothing saved unless all pass
    # another firm's facility cannot be written through a workbook
    theirs = ["x1", "gyproc", "out", "waste", "fly_ash", 5, "t", "landfill_nonhazardous"]
    response = world.client("a").post("/upload/", {"workbook": _workbook([header, theirs])})
    assert any("not one of your firm's facilities" in str(p) for p in response.context["problems"])
    # a column of the region format the app does not keep yet is refused at its header cell, not dropped
    response = world.client("a").post("/upload/", {"workbook": _workbook([[*header, "stream_id"], [*good, "s1"]])})
    assert [str(p) for p in response.context["problems"]][0].startswith("sheet flows, cell I1: column 'stream_id'")
    response = world.client("a").post("/upload/", {"workbook": _workbook([header, good])})
    assert response.status_code == 302
    assert Flow.objects.get(flow_id="asnaes_ash2").amount == "500"


def test_interest_reaches_the_facilitator_who_proposes_an_introduction(world: World) -> None:
    flow = Flow.objects.get(flow_id="asnaes_fgd_gypsum")
    client = world.client("a")
    page = client.get(f"/flows/{flow.pk}/partners/").content.decode()
    assert "I&#x27;m interested" in page or "I'm interested" in page
    assert client.post(f"/flows/{flow.pk}/interest/", {"rank": "1"}).status_code == 302
    interest = Interest.objects.get(flow=flow)
    assert interest.receiver.facility_id == "gyproc"  # the best receiver, resolved server-side from the rank
    facilitator = world.client("facilitator")
    assert "gyproc" in facilitator.get("/programme/interests/").content.decode()
    facilitator.post(f"/programme/interests/{interest.pk}/introduce/")
    intro = Introduction.objects.get(interest=interest)
    assert intro.status == "proposed"
    facilitator.post(f"/programme/introductions/{intro.pk}/status/", {"status": "in_talks", "note": "met"})
    intro.refresh_from_db()
    assert intro.status == "in_talks" and intro.history.count() == 2
    # a rank the firm was never shown is refused
    assert client.post(f"/flows/{flow.pk}/interest/", {"rank": "99"}).status_code == 404


def test_invitation_creates_a_firm_account(world: World) -> None:
    from symbiosis.web.models import Invitation, Membership

    world.client("agency").post("/programme/invitations/", {"email": "new@firm.example", "role": "firm",
                                                             "new_firm": "New Firm A/S"})
    invitation = Invitation.objects.get(email="new@firm.example")
    client = world.client(None)
    response = client.post(f"/invite/{invitation.token}/", {"username": "newbie", "password1": "Sturdy-pass-2026",
                                                            "password2": "Sturdy-pass-2026"})
    assert response.status_code == 302
    m = Membership.objects.get(user__username="newbie")
    assert m.role == "firm" and m.firm.name == "New Firm A/S"
    # an invitation is used once
    assert world.client(None).get(f"/invite/{invitation.token}/").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_background_run_status_in_the_database(tmp_path, settings) -> None:
    from symbiosis.web import jobs
    from tests.web_helpers import make_world

    settings.RUNS_DIR = tmp_path
    w = make_world()
    client = w.client("agency")
    response = client.post("/programme/runs/", {"carbon_price": ""})
    assert response.status_code == 302
    run = Run.objects.get()
    jobs.wait(run.pk, timeout=300)
    run.refresh_from_db()
    assert run.status == "done", run.progress
    assert run.kpis["n_exchanges"] > 0
    page = client.get(f"/programme/runs/{run.pk}/").content.decode()  # a reload reads the status from the database
    assert "map.html" in page
    assert client.get(f"/programme/runs/{run.pk}/files/map.html").status_code == 200
    assert client.get(f"/programme/runs/{run.pk}/files/..%2Fsecret").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_comparison_and_uncertainty_run_in_the_background(tmp_path, settings) -> None:
    from symbiosis.web import jobs
    from tests.web_helpers import make_world

    settings.RUNS_DIR = tmp_path
    w = make_world()
    client = w.client("facilitator")
    # a comparison without a price is refused at the field, nothing started
    response = client.post("/programme/runs/", {"kind": "compare", "carbon_prices": ""})
    assert response.status_code == 200 and "carbon_prices" in response.context["form"].errors
    assert client.post("/programme/runs/", {"kind": "compare", "carbon_prices": "150"}).status_code == 302
    assert client.post("/programme/runs/", {"kind": "uncertainty", "samples": "4", "seed": "1"}).status_code == 302
    compare, uncertainty = Run.objects.get(kind="compare"), Run.objects.get(kind="uncertainty")
    for run in (compare, uncertainty):
        jobs.wait(run.pk, timeout=600)
        run.refresh_from_db()
        assert run.status == "done", run.progress
    assert compare.options == {"carbon_prices": [150.0]} and uncertainty.options == {"samples": 4, "seed": 1}
    page = client.get(f"/programme/runs/{compare.pk}/").content.decode()
    assert "scenario comparison" in page
    compared = sorted(p.name for p in Path(compare.out_dir).iterdir())
    assert any("carbon_price_150" in n for n in [*compared, *(p.name for p in Path(compare.out_dir).rglob("*"))])
    files = sorted(p.name for p in Path(uncertainty.out_dir).iterdir() if p.is_file())
    assert files, "the uncertainty run wrote no file"
    assert client.get(f"/programme/runs/{uncertainty.pk}/files/{files[0]}").status_code == 200
    # a firm user reaches none of it
    firm = w.client("a")
    assert firm.get(f"/programme/runs/{uncertainty.pk}/").status_code == 403
    assert firm.post("/programme/runs/", {"kind": "uncertainty", "samples": "4"}).status_code == 403
