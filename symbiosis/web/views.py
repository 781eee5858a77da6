"""Pages of the web app. Each view declares its access rule (access.py); objects are looked up within what
the member may see, so another firm's id gives 404."""

from __future__ import annotations

import math
import mimetypes
import secrets
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from symbiosis.disclosure import MIN_CONTRIBUTORS, distance_band
from symbiosis.errors import SymbiosisError

from . import bridge, composition, jobs, search_cache
from .access import own_facilities, own_flows, own_permits, own_quality, rule
from .forms import (
    FacilityForm,
    FirmSettingsForm,
    FlowForm,
    IntroductionStatusForm,
    InvitationForm,
    PermitForm,
    QualityForm,
    RunForm,
    UploadForm,
)
from .models import (
    STEPS,
    Facility,
    Firm,
    Flow,
    Interest,
    Introduction,
    Invitation,
    Membership,
    Permit,
    Programme,
    QualityEntry,
    Run,
    direction_of,
)

login_view = rule("public")(LoginView.as_view(template_name="web/login.html"))
logout_view = rule("public")(LogoutView.as_view())


# ------------------------------------------------------------------------------------------------ public


def public_aggregates(programme: Programme) -> dict[str, Any]:
    """What anyone may see: counts, and totals per material class only where at least MIN_CONTRIBUTORS
    facilities contribute whenever one of them is confidential (the rule of symbiosis.disclosure)."""
    facilities = Facility.objects.filter(programme=programme)
    # Counted by the database (a programme of 5,000 facilities has some 46,000 flows: in Python, this page
    # cost seconds of a server's CPU per view).
    per_material = (Flow.objects.filter(facility__programme=programme, direction="out",
                                        category__in=STEPS["residues"][1])
                    .values("material")
                    .annotate(n=Count("facility", distinct=True),
                              n_confidential=Count("facility", distinct=True, filter=Q(facility__confidential=True)))
                    .order_by("material"))
    streams = [{"material": r["material"], "n_facilities": r["n"]} for r in per_material
               if not (r["n_confidential"] and r["n"] < MIN_CONTRIBUTORS)]
    last = Run.objects.filter(programme=programme, status="done").first()
    kpis = {k: last.kpis.get(k) for k in ("co2e_avoided_t", "waste_diverted_t", "virgin_avoided_t", "n_exchanges")
            } if last else {}
    return {"programme": programme, "n_facilities": facilities.count(),
            "n_firms": Firm.objects.filter(programme=programme).count(), "streams": streams, "kpis": kpis}


@rule("public")
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html",
                  {"programmes": [public_aggregates(p) for p in Programme.objects.order_by("pk")]})


@rule("public")
def public_json(request: HttpRequest, slug: str) -> JsonResponse:
    data = public_aggregates(get_object_or_404(Programme, slug=slug))
    data["programme"] = data["programme"].name
    return JsonResponse(data)


@rule("public")
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = get_object_or_404(Invitation, token=token, accepted_at__isnull=True)
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            user.email = invitation.email
            user.save()
            Membership.objects.create(user=user, programme=invitation.programme, role=invitation.role,
                                      firm=invitation.firm)
            invitation.accepted_at = timezone.now()
            invitation.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("dashboard")
    return render(request, "web/invite.html", {"form": form, "invitation": invitation})


# ------------------------------------------------------------------------------------------------ members


@rule("member")
def dashboard(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    if m.sees_programme:
        return render(request, "web/agency.html", {
            **public_aggregates(m.programme),
            "runs": Run.objects.filter(programme=m.programme)[:5],
            "interests": Interest.objects.filter(programme=m.programme).count(),
            "introductions": Introduction.objects.filter(programme=m.programme).count()})
    facilities = own_facilities(m).prefetch_related("flows")
    return render(request, "web/firm.html", {"firm": m.firm, "facilities": facilities,
                                             "interests": Interest.objects.filter(flow__facility__firm=m.firm)})


# ------------------------------------------------------------------------------------------------ firms


@rule("firm")
@require_http_methods(["GET", "POST"])
def facility_new(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    form = FacilityForm(request.POST or None, programme=m.programme)
    if request.method == "POST" and form.is_valid():
        facility = form.save(commit=False)
        facility.programme, facility.firm = m.programme, m.firm
        facility.save()
        m.programme.touch()
        return redirect("facility", pk=facility.pk)
    return render(request, "web/form.html", {"form": form, "title": "New facility"})


@rule("firm")
def facility_detail(request: HttpRequest, pk: int) -> HttpResponse:
    facility = get_object_or_404(own_facilities(request.membership), pk=pk)  # type: ignore[attr-defined]
    flows = list(facility.flows.prefetch_related("quality"))
    steps = [{"key": key, "label": label, "flows": [f for f in flows if f.category in cats]}
             for key, (label, cats) in STEPS.items()]
    return render(request, "web/facility.html", {"facility": facility, "steps": steps,
                                                 "permits": facility.permits.all(),
                                                 "permit_form": PermitForm(facility=facility)})


@rule("firm")
@require_http_methods(["GET", "POST"])
def facility_edit(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    facility = get_object_or_404(own_facilities(m), pk=pk)
    form = FacilityForm(request.POST or None, instance=facility, programme=m.programme)
    if request.method == "POST" and form.is_valid():
        form.save()
        m.programme.touch()
        return redirect("facility", pk=facility.pk)
    return render(request, "web/form.html", {"form": form, "title": f"Edit {facility.name}"})


@rule("firm")
@require_http_methods(["GET", "POST"])
def flow_new(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    facility = get_object_or_404(own_facilities(m), pk=pk)
    if step not in STEPS:
        raise Http404("no such step")
    form = FlowForm(request.POST or None, facility=facility, step=step)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():  # the row and the version that says it changed, together
            form.save()
            m.programme.touch()
            search_cache.record_change(m.programme, form.checked)
        search_cache.changed(m.programme, form.checked)
        return redirect("facility", pk=facility.pk)
    return render(request, "web/form.html", {"form": form, "title": f"{STEPS[step][0]}: new flow of {facility.name}"})


@rule("firm")
@require_http_methods(["GET", "POST"])
def flow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    flow = get_object_or_404(own_flows(m), pk=pk)
    form = FlowForm(request.POST or None, instance=flow, facility=flow.facility, step=flow.step)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():  # the row and the version that says it changed, together
            form.save()
            m.programme.touch()
            search_cache.record_change(m.programme, form.checked)
        search_cache.changed(m.programme, form.checked)
        return redirect("facility", pk=flow.facility.pk)
    return render(request, "web/form.html", {"form": form, "title": f"Edit flow {flow.flow_id}",
                                             "history": flow.history.all()[:50], "flow": flow,
                                             "composition": flow.quality.all(), "quality_form": QualityForm(flow=flow),
                                             "parameters": composition.known_parameters()})


@rule("firm")
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    form = UploadForm(request.POST or None, request.FILES or None)
    problems: list[bridge.WorkbookProblem] = []
    if request.method == "POST" and form.is_valid():
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as handle:
            for chunk in form.cleaned_data["workbook"].chunks():
                handle.write(chunk)
            handle.flush()
            rows, problems = bridge.read_workbook(Path(handle.name))
        if not problems:
            problems = _ownership_problems(m, rows) or bridge.workbook_problems(m.programme, rows)
        if not problems:
            _save_workbook(m, rows)
            messages.success(request, f"{len(rows['facilities'])} facilities, {len(rows['flows'])} flows, "
                                      f"{len(rows.get('quality', []))} quality rows and "
                                      f"{len(rows.get('permits', []))} permits saved")
            return redirect("dashboard")
    return render(request, "web/upload.html", {"form": form, "problems": problems})


def _ownership_problems(m: Membership, rows: dict[str, list[dict[str, str]]]) -> list[bridge.WorkbookProblem]:
    """A workbook may only hold the firm's own facilities and flows (new ids are the firm's)."""
    others_f = set(Facility.objects.filter(programme=m.programme).exclude(firm=m.firm)
                   .values_list("facility_id", flat=True))
    others_fl = set(Flow.objects.filter(facility__programme=m.programme).exclude(facility__firm=m.firm)
                    .values_list("flow_id", flat=True))
    mine = set(own_facilities(m).values_list("facility_id", flat=True)) | {
        r.get("facility_id", "") for r in rows["facilities"]}
    out = []
    for i, r in enumerate(rows["facilities"]):
        if r.get("facility_id") in others_f:
            out.append(bridge.WorkbookProblem("facilities", f"row {i + 2}",
                                              "this facility_id is taken; choose another"))
    for i, r in enumerate(rows["flows"]):
        if r.get("flow_id") in others_fl:
            out.append(bridge.WorkbookProblem("flows", f"row {i + 2}", "this flow_id is taken; choose another"))
        if r.get("facility_id") not in mine:
            out.append(bridge.WorkbookProblem("flows", f"row {i + 2}",
                                              "facility_id is not one of your firm's facilities"))
    # a flow's composition and a facility's permits: of the firm's own flows and facilities only
    my_flows = set(own_flows(m).values_list("flow_id", flat=True)) | {
        r.get("flow_id", "") for r in rows["flows"] if r.get("facility_id") in mine}
    for i, r in enumerate(rows.get("quality", [])):
        if r.get("flow_id") not in my_flows:
            out.append(bridge.WorkbookProblem("quality", f"row {i + 2}", "flow_id is not one of your firm's flows"))
    for i, r in enumerate(rows.get("permits", [])):
        if r.get("facility_id") not in mine:
            out.append(bridge.WorkbookProblem("permits", f"row {i + 2}",
                                              "facility_id is not one of your firm's facilities"))
    return out


@transaction.atomic
def _save_workbook(m: Membership, rows: dict[str, list[dict[str, str]]]) -> None:
    for r in rows["facilities"]:
        values: dict[str, object] = {k: r.get(k, "") for k in bridge.FACILITY_FIELDS}
        values["confidential"] = str(values["confidential"]).strip().lower() in ("true", "1", "yes", "y")
        Facility.objects.update_or_create(programme=m.programme, facility_id=r["facility_id"],
                                          defaults={**values, "firm": m.firm})
    for r in rows["flows"]:
        facility = Facility.objects.get(programme=m.programme, facility_id=r["facility_id"], firm=m.firm)
        values = {k: r.get(k, "") for k in bridge.FLOW_FIELDS}
        values["direction"] = values.get("direction") or direction_of(str(values["category"]))
        flow = Flow.objects.filter(facility__programme=m.programme, flow_id=r["flow_id"]).first()
        if flow is None:
            Flow.objects.create(facility=facility, flow_id=r["flow_id"], **values)
        else:
            for k, v in values.items():
                setattr(flow, k, v)
            flow.facility = facility
            flow.save()
    # A quality sheet gives the whole composition of each flow it names, a permits sheet all the permits of each
    # facility it names: their rows replace those (deleted and made again, in the sheet's order, as checked).
    quality = rows.get("quality", [])
    flows = {f.flow_id: f for f in own_flows(m).filter(flow_id__in={r["flow_id"] for r in quality})}
    for entry in QualityEntry.objects.filter(flow__in=flows.values()):
        entry.delete()  # one by one: each deletion in the record of changes
    for r in quality:
        QualityEntry.objects.create(flow=flows[r["flow_id"]], **{c: r.get(c, "") for c in composition.QUALITY_FIELDS})
    permits = rows.get("permits", [])
    facilities = {f.facility_id: f
                  for f in own_facilities(m).filter(facility_id__in={r["facility_id"] for r in permits})}
    for permit in Permit.objects.filter(facility__in=facilities.values()):
        permit.delete()
    for r in permits:
        Permit.objects.create(facility=facilities[r["facility_id"]],
                              **{c: r.get(c, "") for c in composition.PERMIT_FIELDS})
    m.programme.touch()


@rule("firm")
@require_http_methods(["GET", "POST"])
def firm_settings(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    form = FirmSettingsForm(request.POST or None, instance=m.firm)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("dashboard")
    return render(request, "web/form.html", {"form": form, "title": f"{m.firm.name}: settings"})


# ------------------------------------------------------------------------------------------------ partners


def partner_rows(m: Membership, flow: Flow, shown: slice = slice(None)
                 ) -> tuple[list[dict[str, Any]], list[str], str, int, str, int]:
    """The ranked receivers of one of the firm's streams as the firm may see them: another firm's facility by
    name only if that firm opted in and the facility is not confidential; otherwise its sector and a distance
    band; a confidential receiver's figures suppressed. Returns the rows of the ranks ``shown`` (only those
    are looked up and made: a search may rank a thousand receivers), the demand ids of every rank (kept
    server-side, in the session), an error message, how many changes of the programme the optimum used is
    behind (0: exact), the unit the figures are per (``t``, or ``MWh`` for heat) and the number of ranks."""
    try:
        found = bridge.partner_search(m.programme, flow.flow_id)
    except (SymbiosisError, RuntimeError, TimeoutError) as exc:  # an input problem, or the optimum not solved
        return [], [], str(exc), 0, "t", 0
    search = found.result
    records = found.records
    first = range(len(records))[shown]
    page = records[shown]
    by_id = {f[0]: SimpleNamespace(facility_id=f[0], name=f[1], sector=f[2], confidential=f[3], firm_id=f[4],
                                   firm=SimpleNamespace(name=f[5], show_name_to_partners=f[6]))
             for f in Facility.objects.filter(programme=m.programme,
                                              facility_id__in={p["facility_id"] for p in page}).values_list(
                 "facility_id", "name", "sector", "confidential", "firm_id", "firm__name",
                 "firm__show_name_to_partners")}
    rows: list[dict[str, Any]] = []
    # A heat supply is ranked per MWh (symbiosis.partners): its columns carry the unit in their names.
    heat = search.unit == "MWh"
    supplier_col, receiver_col, co2_col = (
        ("supplier_value_per_mwh", "receiver_value_per_mwh", "co2e_avoided_t_per_mwh") if heat
        else ("supplier_value_per_t", "receiver_value_per_t", "co2e_avoided_per_t"))
    for rank, p in zip(first, page, strict=True):
        facility = by_id.get(p["facility_id"])
        if facility is None:  # not in the database any more: the rank stays, the row is left out
            continue
        own = facility.firm_id == m.firm_id
        named = own or (facility.firm.show_name_to_partners and not facility.confidential)
        hidden_figures = facility.confidential and not own
        distance = float(p["distance_km"])
        rows.append({
            "rank": rank + 1,
            "receiver": (f"{facility.name} ({facility.firm.name})" if named
                         else f"a firm in sector {facility.sector}"),
            "named": named,
            "material": p["material"],
            "distance": (f"{distance:,.1f} km" if named else f"about {float(distance_band(distance)):,.0f} km"),
            "quality_fit": p["quality_fit"],
            "supplier_value_per_t": _num(p[supplier_col]),
            "receiver_value_per_t": "–" if hidden_figures else _num(p[receiver_col]),
            "co2e_avoided_per_t": "–" if hidden_figures else _num(p[co2_col], 3),
            "used_by_optimum": bool(p["used_by_optimum"]),
            "viable": (p["what_would_make_it_viable"] if named else
                       ", ".join(k for k in ("price", "distance", "quality")
                                 if k in str(p["what_would_make_it_viable"])) or "–"),
        })
    return rows, found.demand_ids, "", found.optimum_behind, search.unit, len(records)


def _num(value: Any, digits: int = 2) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(x) else f"{x:,.{digits}f}"


#: Receivers listed on a page of the partners page (``?page=N``), unless the firm asks for all (``?all=1``).
PARTNERS_SHOWN = 25


@rule("firm")
def partners(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    flow = get_object_or_404(own_flows(m), pk=pk, direction="out")
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    shown = slice(None) if request.GET.get("all") else slice((page - 1) * PARTNERS_SHOWN, page * PARTNERS_SHOWN)
    rows, demand_ids, error, behind, unit, n = partner_rows(m, flow, shown)
    # The receivers' ids never reach the page: "I'm interested" posts a rank, resolved here from the session
    # (written only when the ranking changed: a session write per search would queue the searches on SQLite).
    if request.session.get(f"partners-{flow.pk}") != demand_ids:
        request.session[f"partners-{flow.pk}"] = demand_ids
    start, stop, _ = shown.indices(n)
    return render(request, "web/partners.html", {
        "flow": flow, "rows": rows, "error": error, "unit": unit, "optimum_behind": behind,
        "not_shown": n - stop, "earlier": start > 0, "page": page, "next_page": page + 1 if n > stop else None,
        "previous_page": page - 1 if start > 0 else None})


@rule("firm")
@require_POST
def interest(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    flow = get_object_or_404(own_flows(m), pk=pk, direction="out")
    demand_ids = request.session.get(f"partners-{flow.pk}") or []
    try:
        rank = int(request.POST.get("rank", ""))
        demand_id = demand_ids[rank - 1]
        if rank < 1:
            raise IndexError
    except (ValueError, IndexError):
        raise Http404("search partners first") from None
    demand = get_object_or_404(Flow, facility__programme=m.programme, flow_id=demand_id)
    Interest.objects.create(programme=m.programme, flow=flow, receiver=demand.facility, demand_flow_id=demand_id,
                            created_by=request.user, note=request.POST.get("note", "")[:2000])
    messages.success(request, "The facilitator has been told of your interest and will broker the introduction.")
    return redirect("partners", pk=flow.pk)


# ------------------------------------------------------------------------------------------------ agency


@rule("programme")
def facilities_all(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    facilities = Facility.objects.filter(programme=m.programme).select_related("firm").prefetch_related("flows")
    return render(request, "web/facilities_all.html", {"facilities": facilities})


@rule("programme")
@require_http_methods(["GET", "POST"])
def invitations(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    form = InvitationForm(request.POST or None, programme=m.programme)
    if request.method == "POST" and form.is_valid():
        firm = form.cleaned_data["firm"]
        if form.cleaned_data["role"] == Membership.FIRM and firm is None:
            firm = Firm.objects.create(programme=m.programme, name=form.cleaned_data["new_firm"])
        invitation = Invitation.objects.create(programme=m.programme, email=form.cleaned_data["email"],
                                               role=form.cleaned_data["role"], firm=firm,
                                               token=secrets.token_urlsafe(32), created_by=request.user)
        link = request.build_absolute_uri(reverse("invite", args=[invitation.token]))
        messages.success(request, f"Invitation for {invitation.email}: {link}")
        return redirect("invitations")
    return render(request, "web/invitations.html", {
        "form": form, "invitations": Invitation.objects.filter(programme=m.programme).select_related("firm")})


@rule("programme")
def interests(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    return render(request, "web/interests.html", {"interests": Interest.objects.filter(programme=m.programme)
                                                  .select_related("flow__facility__firm", "receiver__firm")})


@rule("programme")
@require_POST
def introduce(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    interest_ = get_object_or_404(Interest, programme=m.programme, pk=pk)
    Introduction.objects.get_or_create(programme=m.programme, interest=interest_, defaults={
        "supplier": interest_.flow.facility, "receiver": interest_.receiver, "material": interest_.flow.material})
    return redirect("introductions")


@rule("programme")
def introductions(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    rows = Introduction.objects.filter(programme=m.programme).select_related("supplier", "receiver")
    return render(request, "web/introductions.html", {"introductions": rows, "form": IntroductionStatusForm()})


@rule("programme")
@require_POST
def introduction_status(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    intro = get_object_or_404(Introduction, programme=m.programme, pk=pk)
    form = IntroductionStatusForm(request.POST)
    if form.is_valid():
        intro.status, intro.note = form.cleaned_data["status"], form.cleaned_data["note"]
        intro.save()
    return redirect("introductions")


@rule("programme")
@require_http_methods(["GET", "POST"])
def runs(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    form = RunForm(request.POST or None, programme=m.programme)
    if request.method == "POST" and form.is_valid():
        run = Run.objects.create(programme=m.programme, created_by=request.user,
                                 carbon_price=form.cleaned_data["carbon_price"], kind=form.cleaned_data["kind"],
                                 options=form.cleaned_data["options"])
        transaction.on_commit(lambda: jobs.start_run(run))
        return redirect("run", pk=run.pk)
    return render(request, "web/runs.html", {"form": form, "runs": Run.objects.filter(programme=m.programme)})


@rule("programme")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, programme=request.membership.programme, pk=pk)  # type: ignore[attr-defined]
    folder = Path(run.out_dir) if run.out_dir else None
    files = (sorted(p.name for p in folder.iterdir() if p.is_file())
             if run.status == "done" and folder is not None and folder.is_dir() else [])
    return render(request, "web/run.html", {"run": run, "files": files})


@rule("programme")
def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(Run, programme=request.membership.programme, pk=pk)  # type: ignore[attr-defined]
    return JsonResponse({"status": run.status, "progress": run.progress, "kpis": run.kpis})


@rule("programme")
def run_file(request: HttpRequest, pk: int, name: str) -> FileResponse:
    run = get_object_or_404(Run, programme=request.membership.programme, pk=pk)  # type: ignore[attr-defined]
    if run.status != "done":
        raise Http404("the run has not finished")
    folder = Path(run.out_dir).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():  # one file of the run's folder, nothing else
        raise Http404("no such file")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path.open("rb"), content_type=content_type,
                        as_attachment=not path.name.endswith((".html", ".png", ".svg")))


@rule("programme")
def audit(request: HttpRequest) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    changes = []
    for history in (Firm.history.filter(programme=m.programme), Facility.history.filter(programme=m.programme),
                    Flow.history.filter(facility__programme=m.programme),
                    Introduction.history.filter(programme=m.programme)):
        changes += list(history.select_related("history_user").order_by("-history_date")[:200])
    # a flow's composition and a facility's permits, named by their flow and facility (read with them)
    for history, owner in ((QualityEntry.history.filter(flow__facility__programme=m.programme), "flow"),
                           (Permit.history.filter(facility__programme=m.programme), "facility")):
        changes += _labelled(history.select_related("history_user", owner).order_by("-history_date")[:200])
    changes.sort(key=lambda h: h.history_date, reverse=True)
    return render(request, "web/audit.html", {"changes": changes[:200]})


# ------------------------------------------------------------------------------------------------ composition


def _composition_changed(m: Membership, write: Any) -> None:
    """A quality row or permit written, deleted: the programme's data version raised in the same transaction,
    and the searches told (the next one loads the programme: the kept region is patched for flows only)."""
    with transaction.atomic():
        write()
        m.programme.touch()
        search_cache.record_change(m.programme, None)
    search_cache.changed(m.programme)


def _labelled(history: Any) -> list[Any]:
    out = list(history)
    for h in out:
        h.label = composition.change_label(h)
    return out


@rule("firm")
@require_http_methods(["GET", "POST"])
def quality_new(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    flow = get_object_or_404(own_flows(m), pk=pk)
    form = QualityForm(request.POST or None, flow=flow)
    if request.method == "POST" and form.is_valid():
        _composition_changed(m, form.save)
        return redirect(reverse("flow_edit", args=[flow.pk]) + "#composition")
    return render(request, "web/form.html", {"form": form, "title": f"Composition of {flow.flow_id}: new parameter",
                                             "parameters": composition.known_parameters()})


@rule("firm")
@require_http_methods(["GET", "POST"])
def quality_edit(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    entry = get_object_or_404(own_quality(m), pk=pk)
    form = QualityForm(request.POST or None, instance=entry, flow=entry.flow)
    if request.method == "POST" and form.is_valid():
        _composition_changed(m, form.save)
        return redirect(reverse("flow_edit", args=[entry.flow.pk]) + "#composition")
    return render(request, "web/form.html", {
        "form": form, "title": f"Composition of {entry.flow.flow_id}: {entry.parameter}",
        "parameters": composition.known_parameters(),
        "changes": _labelled(entry.history.select_related("history_user", "flow")[:50])})


@rule("firm")
@require_POST
def quality_delete(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    entry = get_object_or_404(own_quality(m), pk=pk)
    flow_pk = entry.flow.pk
    _composition_changed(m, entry.delete)
    return redirect(reverse("flow_edit", args=[flow_pk]) + "#composition")


@rule("firm")
@require_http_methods(["GET", "POST"])
def permit_new(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    facility = get_object_or_404(own_facilities(m), pk=pk)
    form = PermitForm(request.POST or None, facility=facility)
    if request.method == "POST" and form.is_valid():
        _composition_changed(m, form.save)
        return redirect(reverse("facility", args=[facility.pk]) + "#permits")
    return render(request, "web/form.html", {"form": form, "title": f"Permits of {facility.name}: new permit"})


@rule("firm")
@require_http_methods(["GET", "POST"])
def permit_edit(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    permit = get_object_or_404(own_permits(m), pk=pk)
    form = PermitForm(request.POST or None, instance=permit, facility=permit.facility)
    if request.method == "POST" and form.is_valid():
        _composition_changed(m, form.save)
        return redirect(reverse("facility", args=[permit.facility.pk]) + "#permits")
    return render(request, "web/form.html", {
        "form": form, "title": f"Permits of {permit.facility.name}: {permit.ewc_code}",
        "changes": _labelled(permit.history.select_related("history_user", "facility")[:50])})


@rule("firm")
@require_POST
def permit_delete(request: HttpRequest, pk: int) -> HttpResponse:
    m = request.membership  # type: ignore[attr-defined]
    permit = get_object_or_404(own_permits(m), pk=pk)
    facility_pk = permit.facility.pk
    _composition_changed(m, permit.delete)
    return redirect(reverse("facility", args=[facility_pk]) + "#permits")
