"""``symbiosis facility PATH FACILITY_ID --out DIR``: the body of the command (cli.py registers it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from symbiosis.errors import SymbiosisError


class WeightsError(SymbiosisError):
    """``--weights`` could not be read."""


def parse_weights(text: str) -> dict[str, float]:
    """``technical=1,environmental=1,economic=2`` (groups or criteria) → a dict; a located message if not."""
    from symbiosis.account.actions import CRITERIA, GROUPS

    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in GROUPS and name not in CRITERIA:
            raise WeightsError(f"--weights: unknown criterion {name!r}; expected {', '.join(GROUPS)} or one of "
                               f"{', '.join(CRITERIA)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise WeightsError(f"--weights: {part!r} is not NAME=NUMBER") from None
        if not weights[name] >= 0 or weights[name] == float("inf"):
            raise WeightsError(f"--weights: {name} must be a finite number ≥ 0, found {value!r}")
    if set(weights) & set(GROUPS) and set(weights) & set(CRITERIA):
        raise WeightsError("--weights: give weights either per group (technical, environmental, economic) or per "
                           "criterion, not both")
    if not weights or sum(weights.values()) <= 0:
        raise WeightsError("--weights: give at least one positive weight, e.g. technical=1,environmental=1,economic=2")
    return weights


def facility_command(region: Any, facility_id: str, out: Path, *, accounts: Path | None, account_map: Path | None,
                     weights: str | None, ahp_file: Path | None, key: str, private: bool, self_contained: bool,
                     console: Any, reconciled: bool = False) -> None:
    """Optimise the region, build the facility's account, write it, print the summary."""
    import pandas as pd
    from rich.markup import escape

    from symbiosis.account.actions import read_ahp
    from symbiosis.account.costs import read_accounts
    from symbiosis.account.report import check_facility, facility_account, public_account, write_facility_report
    from symbiosis.atomic import output_folder
    from symbiosis.disclosure import confidential_mask
    from symbiosis.outputs.export import write_disclosure_note
    from symbiosis.pipeline import optimise

    check_facility(region, facility_id, public=not private)  # before the solve: a typo costs nothing
    if (accounts is None) != (account_map is None):
        raise WeightsError("--accounts and --account-map go together: the export and the file that maps its "
                           "accounts to facilities, cost types or flows")
    if weights is not None and ahp_file is not None:
        raise WeightsError("give --weights or --ahp, not both")
    chosen: Any = parse_weights(weights) if weights is not None else (read_ahp(ahp_file) if ahp_file else None)
    costs = region.costs
    if accounts is not None and account_map is not None:
        costs = pd.concat([costs, read_accounts(accounts, account_map, region)], ignore_index=True)
    reconciliation = None
    account_region = region
    if reconciled:  # the account on the reconciled mass flows, the reconciliation shown of the data as given
        from symbiosis.account.reconcile import reconciled_region
        from symbiosis.balances import reconcile

        reconciliation = reconcile(region)
        account_region = reconciled_region(region, reconciliation.network)
    results = optimise(region, reconciled=reconciled)
    account = facility_account(account_region, facility_id, results=results, costs=costs, weights=chosen, key=key,
                               reconciliation=reconciliation, reconciled=reconciled)
    shown = account if private else public_account(account)
    with output_folder(out) as stage:
        write_facility_report(account, stage, public=not private, self_contained=self_contained)
        write_disclosure_note(stage, public=not private,
                              n_masked=0 if private else int(confidential_mask(region.facilities).sum()))
    cur = account.currency
    centre = shown.centre
    console.print(f"{escape(shown.name)}: material losses cost {centre['loss_cost']:,.0f} {escape(cur)}/yr, "
                  f"{centre['loss_cost_share']:.1%} of its costs (MFCA, {key} key); MCI "
                  f"{shown.circularity['MCI_bau']:.2f} today, {shown.circularity['MCI_optimum']:.2f} with the optimum",
                  highlight=False)
    region_view = shown.region_mfca
    if "recovered_cost" in region_view:
        console.print(f"region: losses cost {region_view['loss_cost']:,.0f} {escape(cur)}/yr; the optimum's exchanges "
                      f"recover {region_view['recovered_cost']:,.0f} ({region_view['recovered_share']:.1%})",
                      highlight=False)
    for note in shown.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for row in shown.actions.head(5).itertuples():
        console.print(f"  {row.facility_rank}. {escape(str(row.action))} (score {row.score:.2f})", highlight=False)
    console.print(f"wrote {out / 'facility.html'}, {out / 'facility.xlsx'} and {out / 'actions.csv'}")
