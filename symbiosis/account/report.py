"""One facility's account for its manager: balance, Sankey, reconciliation, MFCA, MCI and the action plan,
as an HTML page and an XLSX workbook (``symbiosis facility PATH FACILITY_ID --out DIR``).

The page and the workbook are written into a folder staged by symbiosis.atomic.output_folder. Every string
from the data is escaped by the template (autoescape; plotly's own HTML is the one thing marked safe).
Partners that are confidential appear as ``confidential-N`` (symbiosis.disclosure) unless the copy is
private; a confidential facility's own report is only written as a private copy.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from symbiosis.account.actions import AHP, action_register, candidate_actions, score_actions
from symbiosis.account.mci import circularity
from symbiosis.account.mfca import mfca
from symbiosis.errors import SymbiosisError
from symbiosis.region import Region

logger = logging.getLogger(__name__)

#: Reconciliation columns shown when the table has them (today's per-facility reconciliation and the network
#: reconciliation use some of each).
RECONCILIATION_COLUMNS = ["flow_id", "stream_id", "direction", "material", "measured_flow", "amount",
                          "standard_uncertainty", "reconciled", "reconciled_standard_uncertainty", "adjustment",
                          "adjustment_pct", "adjustment_sigma", "measurement_test", "gross_error",
                          "gross_error_suspected", "observable", "redundant"]


class FacilityNotFound(SymbiosisError):
    """The facility asked for is not in the region (or may not be shown)."""


@dataclass
class FacilityAccount:
    """What the facility report shows, as tables (see :func:`facility_account`)."""

    facility_id: str
    name: str
    currency: str
    balance: pd.DataFrame
    flows: pd.DataFrame
    reconciliation: pd.DataFrame
    reconciliation_test: pd.DataFrame
    centre: dict[str, Any]
    losses: pd.DataFrame
    circularity: dict[str, Any]
    products: pd.DataFrame
    actions: pd.DataFrame
    weights: dict[str, float]
    consistency_ratio: float | None = None
    notes: list[str] = field(default_factory=list)
    region: Region | None = None
    #: the network reconciliation's global test (chi-square, dof, p-value, ...; empty without one)
    global_test: dict[str, Any] = field(default_factory=dict)
    #: true when the account was computed on reconciled flows (``facility --reconciled``)
    reconciled: bool = False
    #: the region's ranked action list (every facility's), for the adviser and the agency
    region_actions: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: MFCA of the whole region (MFCA.region): total cost of losses, and what the optimum's exchanges recover
    region_mfca: dict[str, Any] = field(default_factory=dict)
    #: flow id of this facility → the facilities it trades with in the optimum (for the public copy)
    partners: dict[str, set[str]] = field(default_factory=dict)


def _did_you_mean(facility_id: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(facility_id, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; the facilities are {', '.join(known[:12])}"


def check_facility(region: Region, facility_id: str, *, public: bool = True) -> None:
    """Refuse a facility the region does not have, or (in a public copy) a confidential one."""
    from symbiosis.disclosure import confidential_mask

    known = region.facilities["facility_id"].astype(str).tolist()
    if facility_id not in known:
        raise FacilityNotFound(f"unknown facility {facility_id!r}{_did_you_mean(facility_id, known)}")
    hidden = set(region.facilities.loc[confidential_mask(region.facilities), "facility_id"].astype(str))
    if public and facility_id in hidden:
        raise FacilityNotFound(f"facility {facility_id!r} is confidential: its own account can only be written as "
                               "a private copy (--private)")


def facility_account(region: Region, facility_id: str, *, results: Any = None, costs: pd.DataFrame | None = None,
                     weights: dict[str, float] | AHP | None = None, reconciliation: Any = None,
                     key: str = "mass", reconciled: bool = False) -> FacilityAccount:
    """The account of ``facility_id``: MFCA, MCI and actions are computed for the region (so that losses and
    actions are ranked against the region's) and cut to this facility. ``reconciliation``: a table or an
    object with ``flows`` (and ``facilities``, ``network``) from a reconciliation; by default the region's
    (symbiosis.balances.reconcile: mass as one network). ``reconciled``: ``region`` already carries reconciled
    amounts (symbiosis.account.reconcile.reconciled_region); said on the page."""
    from symbiosis.balances import balances, reconcile

    check_facility(region, facility_id, public=False)
    row = region.facilities.set_index("facility_id").loc[facility_id]
    cost_view = mfca(region, costs=costs, key=key, results=results)
    mci_view = circularity(region, results)
    balance_view = balances(region)
    if reconciliation is None:
        reconciliation = reconcile(region)
    actions = candidate_actions(region, mfca=cost_view, results=results, circularity=mci_view,
                                balances=balance_view, reconciliation=reconciliation)
    scored = score_actions(actions, weights)
    mine = scored[(scored["facility_id"] == facility_id) | (scored["partner_id"] == facility_id)].copy()
    mine.insert(1, "facility_rank", range(1, len(mine) + 1))

    rec_flows = getattr(reconciliation, "flows", reconciliation)
    rec_flows = rec_flows if isinstance(rec_flows, pd.DataFrame) else pd.DataFrame(columns=["flow_id"])
    own_ids = set(region.flows.loc[region.flows["facility_id"] == facility_id, "flow_id"])
    rec_mine = rec_flows[rec_flows["flow_id"].isin(own_ids)]
    rec_mine = rec_mine[[c for c in RECONCILIATION_COLUMNS if c in rec_mine.columns]]
    tests = getattr(reconciliation, "facilities", None)
    tests = (tests[tests["facility_id"] == facility_id] if isinstance(tests, pd.DataFrame)
             and "facility_id" in tests.columns else pd.DataFrame())
    flows = region.flows[region.flows["facility_id"] == facility_id][
        ["flow_id", "direction", "category", "material", "quantity", "amount_t_per_yr", "amount_mwh_per_yr", "fate",
         "price_per_t", "data_quality", "source", "origin"]]
    given = weights.weights if isinstance(weights, AHP) else (weights or {"technical": 1 / 3, "environmental": 1 / 3,
                                                                             "economic": 1 / 3})
    return FacilityAccount(
        facility_id=facility_id, name=str(row["name"]), currency=region.settings.currency,
        balance=balance_view.table[balance_view.table["facility_id"] == facility_id].reset_index(drop=True),
        flows=flows.reset_index(drop=True), reconciliation=rec_mine.reset_index(drop=True),
        reconciliation_test=tests.reset_index(drop=True),
        centre=cost_view.centres.set_index("facility_id").loc[facility_id].to_dict(),
        losses=cost_view.losses[cost_view.losses["facility_id"] == facility_id].reset_index(drop=True),
        circularity=mci_view.facilities.set_index("facility_id").loc[facility_id].to_dict(),
        products=mci_view.products[mci_view.products["facility_id"] == facility_id].reset_index(drop=True),
        actions=mine.reset_index(drop=True), weights=dict(given),
        consistency_ratio=weights.consistency_ratio if isinstance(weights, AHP) else None,
        notes=_notes(cost_view.centres.set_index("facility_id").loc[facility_id], flows), region=region,
        partners=_partners(results, own_ids), region_mfca=dict(cost_view.region), region_actions=scored,
        global_test=dict(getattr(getattr(reconciliation, "network", None), "global_test", None) or {}),
        reconciled=reconciled)


def _partners(results: Any, own: set[str]) -> dict[str, set[str]]:
    partners: dict[str, set[str]] = {}
    if results is None or not len(results.exchanges):
        return partners
    ex = results.exchanges
    for mine, other in (("supply_id", "demand_facility"), ("demand_id", "supply_facility")):
        for flow_id, facility in zip(ex[mine].astype(str), ex[other].astype(str), strict=True):
            if flow_id in own:
                partners.setdefault(flow_id, set()).add(facility)
    return partners


def _notes(centre: pd.Series, flows: pd.DataFrame) -> list[str]:
    notes = []
    blank = flows[(flows["quantity"] == "mass") & flows["amount_t_per_yr"].isna()]
    if len(blank):
        notes.append(f"{len(blank)} mass flow(s) have no figure (declared unmeasured: "
                     f"{', '.join(blank['flow_id'].astype(str).head(5))}) and count as 0 here: run with --reconciled "
                     "to use their estimates from the network reconciliation")
    if centre["unpriced_input_t"] > 0:
        notes.append(f"{centre['unpriced_input_t']:,.0f} t/yr of material inputs have no price and count at 0 in "
                     "the cost of losses: give `price` in flows.csv or map their purchase account to them")
    if centre["product_t"] == 0 and centre["input_t"] > 0:
        notes.append("no product is recorded in tonnes (a power station's products are energy): by mass every "
                     "cost falls on the losses; record the products, or read the cost of losses with another "
                     "allocation key")
    if centre["system_cost"] == 0:
        notes.append("no system costs (labour, depreciation, maintenance) are given: add them to costs.csv or "
                     "map the facility's accounts (--accounts, --account-map), or the cost of losses is too low")
    return notes


def _public_actions(actions: pd.DataFrame, scrub: Any) -> pd.DataFrame:
    """Actions as a public list: confidential facilities as ``confidential-N``; an action of or with one keeps
    its rank and score, not its figures (they would give the facility's)."""
    from symbiosis.account.actions import CRITERIA

    actions = actions.copy()
    if actions.empty:
        return actions
    involved = (actions["facility_id"].isin(scrub.id_map.keys()) | actions["partner_id"].isin(scrub.id_map.keys()))
    numeric = [c for c in CRITERIA if c not in ("feasibility", "data_confidence", "permit_ok")]
    actions.loc[involved, numeric] = float("nan")
    for column in ("action_id", "facility_id", "partner_id", "action", "evidence"):
        actions[column] = actions[column].map(lambda v: str(scrub.text(v)))
    return actions


def public_account(account: FacilityAccount) -> FacilityAccount:
    """The copy a facility's manager may share: confidential partners as ``confidential-N``.

    A confidential facility's own account cannot be made public (it is all about that facility)."""
    from symbiosis.disclosure import for_region

    region = account.region
    if region is None:
        return account
    scrub = for_region(region)
    if account.facility_id in scrub.id_map:
        raise FacilityNotFound(f"facility {account.facility_id!r} is confidential: its own account can only be "
                               "written as a private copy (--private)")
    if not scrub.active:
        return account
    actions = _public_actions(account.actions, scrub)
    region_actions = _public_actions(account.region_actions, scrub)
    # what the exchanges with a confidential partner move would give the exchange: shown as not public
    hidden = set(scrub.id_map)
    secret = {f for f, others in account.partners.items() if others & hidden}
    losses = account.losses.copy()
    for column in ("recovered_t_per_yr", "recovered_cost"):
        if column in losses.columns:
            losses.loc[losses["flow_id"].isin(secret), column] = float("nan")
    circular = dict(account.circularity)
    if secret:
        for column in ("M_optimum", "V_optimum", "W0_optimum", "W_optimum", "recycled_feedstock_optimum"):
            circular[column] = float("nan")
    return FacilityAccount(**{**account.__dict__, "actions": actions, "region_actions": region_actions,
                              "losses": losses, "circularity": circular,
                              "notes": [str(scrub.text(n)) for n in account.notes]})


# ------------------------------------------------------------------------------------------------ writing


def _environment() -> Any:
    import jinja2
    from markupsafe import Markup

    from symbiosis.outputs.escape import html_text
    from symbiosis.outputs.report import format_number

    def finalize(value: Any) -> Any:
        # data text through the project's escaper (braces too), once; Markup (plotly's HTML) as it is
        return value if isinstance(value, Markup) or not isinstance(value, str) else Markup(html_text(value))  # noqa: S704

    env = jinja2.Environment(loader=jinja2.PackageLoader("symbiosis.outputs", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=finalize)
    env.filters["num"] = format_number
    env.filters["pct"] = lambda v, d=1: "" if v is None or v != v else f"{float(v) * 100:.{d}f} %"
    env.filters["dec"] = lambda v, d=3: "" if v is None or v != v else f"{float(v):.{d}f}"
    return env


def render_facility_report(account: FacilityAccount, *, public: bool = True, self_contained: bool = False) -> str:
    """The page as a string."""
    from markupsafe import Markup

    from symbiosis.outputs.sankey import facility_sankey

    sankey = None
    if account.region is not None and len(account.flows[account.flows["quantity"] == "mass"]):
        try:
            figure = facility_sankey(account.region, account.facility_id)
            sankey = Markup(figure.to_html(  # noqa: S704 (plotly's own HTML; figure data JSON-encoded by plotly)
                full_html=False, include_plotlyjs=True if self_contained else "cdn",
                config={"displaylogo": False, "responsive": True}, default_width="100%"))
        except ValueError as exc:
            logger.info("no Sankey for %s: %s", account.facility_id, exc)
    records = {name: frame.to_dict(orient="records") for name, frame in (
        ("balance", account.balance), ("flows", account.flows), ("reconciliation", account.reconciliation),
        ("tests", account.reconciliation_test), ("losses", account.losses), ("products", account.products),
        ("actions", account.actions))}
    return str(_environment().get_template("facility.html.j2").render(
        title=f"Facility account: {account.name}", account=account, currency=account.currency, sankey=sankey,
        public=public, generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        reconciliation_columns=list(account.reconciliation.columns), **records))


def workbook_sheets(account: FacilityAccount) -> dict[str, pd.DataFrame]:
    """The workbook's sheets: the same tables as the page."""
    summary = pd.DataFrame([{"facility_id": account.facility_id, "name": account.name, "currency": account.currency,
                             **{f"mfca_{k}": v for k, v in account.centre.items()},
                             **{f"mci_{k}": v for k, v in account.circularity.items() if k != "origin"},
                             **{f"weight_{k}": v for k, v in account.weights.items()}}])
    return {"summary": summary, "balance": account.balance, "flows": account.flows,
            "reconciliation": account.reconciliation, "mfca_losses": account.losses,
            "mci_products": account.products, "actions": action_register(account.actions)}


def write_facility_report(account: FacilityAccount, folder: Path, *, public: bool = True,
                          self_contained: bool = False) -> dict[str, Path]:
    """``facility.html``, ``facility.xlsx``, the facility's action register ``actions.csv`` and the region's
    ``region_actions.csv`` in ``folder``."""
    from symbiosis.atomic import write_text_atomic
    from symbiosis.outputs.export import write_csv, write_xlsx

    view = public_account(account) if public else account
    written = {"html": write_text_atomic(folder / "facility.html",
                                         render_facility_report(view, public=public, self_contained=self_contained)),
               "xlsx": write_xlsx(folder / "facility.xlsx", workbook_sheets(view)),
               "actions": write_csv(folder / "actions.csv", action_register(view.actions)),
               "region_actions": write_csv(folder / "region_actions.csv", action_register(view.region_actions))}
    return written
