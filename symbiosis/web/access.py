"""Who may open what: every view declares its rule, and the rule is enforced here.

Rules (docs/app.md, "Roles"):

- ``public``: anyone, signed in or not (the public aggregates, the login and invitation pages).
- ``member``: any signed-in member of a programme; the view itself scopes what it shows to the member.
- ``firm``: a firm user; every object the view touches is looked up within the user's own firm
  (:func:`own_facilities`, :func:`own_flows`), so another firm's id gives 404, not 403 (no existence oracle).
- ``programme``: agency staff and facilitators of the programme; objects are looked up within the programme.

:func:`rule` attaches the rule to the view (``view.access_rule``); the access sweep in the tests walks every
URL pattern and fails on a view without one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from .models import Facility, Flow, Membership, Permit, QualityEntry

RULES = ("public", "member", "firm", "programme")


def membership(request: HttpRequest) -> Membership | None:
    user = request.user
    if not user.is_authenticated:
        return None
    try:
        return user.membership  # type: ignore[union-attr]
    except Membership.DoesNotExist:
        return None


def rule(name: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Declare and enforce a view's access rule."""
    if name not in RULES:
        raise ValueError(f"unknown access rule {name!r}; expected one of {RULES}")

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if name != "public":
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                m = membership(request)
                if m is None:
                    raise PermissionDenied("not a member of a programme")
                if name == "firm" and m.role != Membership.FIRM:
                    raise PermissionDenied("for firm users")
                if name == "programme" and not m.sees_programme:
                    raise PermissionDenied("for the agency and facilitators")
                request.membership = m  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        wrapped.access_rule = name  # type: ignore[attr-defined]
        return wrapped

    return decorate


def own_facilities(m: Membership) -> QuerySet[Facility]:
    """The facilities a member may edit: a firm user its firm's; agency and facilitators the programme's."""
    qs = Facility.objects.filter(programme=m.programme)
    return qs if m.sees_programme else qs.filter(firm=m.firm)


def own_flows(m: Membership) -> QuerySet[Flow]:
    qs = Flow.objects.filter(facility__programme=m.programme).select_related("facility")
    return qs if m.sees_programme else qs.filter(facility__firm=m.firm)


def own_quality(m: Membership) -> QuerySet[QualityEntry]:
    """The quality rows (composition) of the flows a member may edit."""
    qs = QualityEntry.objects.filter(flow__facility__programme=m.programme).select_related("flow__facility")
    return qs if m.sees_programme else qs.filter(flow__facility__firm=m.firm)


def own_permits(m: Membership) -> QuerySet[Permit]:
    """The permits of the facilities a member may edit."""
    qs = Permit.objects.filter(facility__programme=m.programme).select_related("facility")
    return qs if m.sees_programme else qs.filter(facility__firm=m.firm)


def membership_context(request: HttpRequest) -> dict[str, Any]:
    return {"membership": membership(request)}
