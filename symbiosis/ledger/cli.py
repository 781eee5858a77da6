"""``symbiosis ledger ...``: the custody ledger's commands (a typer sub-app registered in symbiosis/cli.py).

Thin wrappers: parse, call :mod:`symbiosis.ledger`, print. SQLAlchemy and the rest are imported inside the
commands so that ``symbiosis --help`` stays quick. A refused booking prints why and exits with status 1,
never a traceback; nothing of it is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

ledger_app = typer.Typer(no_args_is_help=True, help=(
    "Mass-balance chain-of-custody ledger: certified receipts, conversions, transfers and claims per site, "
    "in a hash-chained journal (SQLite file or PostgreSQL URL; docs/custody.md)."))
book_app = typer.Typer(no_args_is_help=True, help="Book a receipt, conversion, transfer, claim, correction, "
                       "scheme, or a CSV of deliveries: each one transaction, refused whole if any rule breaks.")
ledger_app.add_typer(book_app, name="book")

Db = Annotated[str | None, typer.Option(
    "--db", envvar="SYMBIOSIS_LEDGER_DB",
    help="Ledger: a SQLite file path or a postgresql://user@host:port/database URL (default ledger.sqlite)")]
Clerk = Annotated[str | None, typer.Option("--clerk", envvar="SYMBIOSIS_CLERK",
                                           help="Who books (recorded in every entry; default the login name)")]
Site = Annotated[str, typer.Option("--site", help="Site (facility id)")]
Scheme = Annotated[str, typer.Option("--scheme", help="Certification scheme, as registered")]
Group = Annotated[str, typer.Option("--group", help="Material group")]
Date = Annotated[str, typer.Option("--date", help="Date of the booking, YYYY-MM-DD")]
Declaration = Annotated[str, typer.Option("--declaration", help="Declaration id (sustainability declaration)")]
Quantity = Annotated[str, typer.Option("--quantity", help="Physical quantity, t")]
Certified = Annotated[str | None, typer.Option("--certified", help="Certified quantity, t")]
Share = Annotated[str | None, typer.Option("--certified-share", help="Certified share of the quantity, 0 to 1")]
Note = Annotated[str | None, typer.Option("--note", help="Free text kept with the entry")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Folder for the files (replaced whole)")]
Period = Annotated[str, typer.Option("--period", help="Any date in the balancing period, YYYY-MM-DD")]


def _fail(exc: Exception) -> NoReturn:
    from symbiosis.cli import _fail as fail

    fail(exc)


def _open(db: str | None, clerk: str | None = None) -> Any:
    from symbiosis.ledger import Ledger

    return Ledger(db, clerk=clerk or os.environ.get("USER") or os.environ.get("USERNAME"))


def _book(db: str | None, clerk: str | None, spec: Any) -> None:
    from symbiosis.cli import console
    from symbiosis.errors import SymbiosisError

    try:
        with _open(db, clerk) as ledger:
            entries = ledger.book(spec)
    except SymbiosisError as exc:
        _fail(exc)
    for entry in entries:
        console.print(f"booked #{entry.seq} {entry.kind}: {entry.site or ''} {entry.material_group or ''} "
                      f"{entry.certified_kg / 1000:+g} t certified  {entry.hash[:16]}…", markup=False,
                      highlight=False)


@ledger_app.command("init")
def init_command(db: Db = None) -> None:
    """Create the ledger (or upgrade an older one) with the packaged migrations."""
    from symbiosis.cli import console
    from symbiosis.errors import SymbiosisError
    from symbiosis.ledger import init_ledger

    try:
        where = init_ledger(db)
    except SymbiosisError as exc:
        _fail(exc)
    console.print(f"ledger ready: {where}", markup=False, highlight=False)


@book_app.command("scheme")
def book_scheme(name: Annotated[str, typer.Argument(help="Scheme name, e.g. 'ISCC PLUS'")],
                period_months: Annotated[int, typer.Option("--period-months", help="Balancing period, months")],
                carry_over: Annotated[str, typer.Option("--carry-over", help="all: a positive balance carries "
                                                        "over to the next period; none: it is forfeited")],
                date: Annotated[str | None, typer.Option("--date")] = None, note: Note = None,
                db: Db = None, clerk: Clerk = None) -> None:
    """Register a certification scheme's balancing period and carry-over rule (once; they cannot change)."""
    from symbiosis.ledger import SchemeRule

    _book(db, clerk, SchemeRule(name, period_months, carry_over, date=date, note=note))


@book_app.command("receipt")
def book_receipt(site: Site, group: Group, scheme: Scheme, declaration: Declaration, quantity: Quantity, date: Date,
                 certificate: Annotated[str, typer.Option("--certificate", help="The supplier's certificate id")],
                 supplier: Annotated[str, typer.Option("--supplier", help="Who supplied it")],
                 certified: Certified = None, certified_share: Share = None, note: Note = None,
                 db: Db = None, clerk: Clerk = None) -> None:
    """Book certified material received from a supplier outside the ledger."""
    from symbiosis.ledger import Receipt

    _book(db, clerk, Receipt(site, group, scheme, declaration, quantity, date, certificate_id=certificate,
                             supplier=supplier, certified_share=certified_share, certified_t=certified, note=note))


@book_app.command("conversion")
def book_conversion(site: Site, scheme: Scheme,
                    input_group: Annotated[str, typer.Option("--from-group", help="Input material group")],
                    output_group: Annotated[str, typer.Option("--to-group", help="Output material group")],
                    certified: Annotated[str, typer.Option("--certified", help="Certified input converted, t")],
                    date: Date,
                    factor: Annotated[str | None, typer.Option("--factor", help="t out per t in, (0, 1]")] = None,
                    model: Annotated[str | None, typer.Option(
                        "--model", help="Take the factor from this process model (models/*.yaml): its output "
                        "--to-group per its input --from-group")] = None,
                    note: Note = None, db: Db = None, clerk: Clerk = None) -> None:
    """Book a conversion of certified input into certified output through the site's process."""
    from symbiosis.errors import SymbiosisError
    from symbiosis.ledger import Conversion
    from symbiosis.ledger.ledger import model_factor

    if (factor is None) == (model is None):
        _fail(typer.BadParameter("give --factor or --model, one of them"))
    try:
        used = factor if factor is not None else str(model_factor(str(model), input_group, output_group))
    except SymbiosisError as exc:
        _fail(exc)
    _book(db, clerk, Conversion(site, scheme, input_group, output_group, certified, used, date,
                                note=note if model is None else f"factor from process model {model}" +
                                (f"; {note}" if note else "")))


@book_app.command("claim")
def book_claim(site: Site, group: Group, scheme: Scheme, declaration: Declaration, quantity: Quantity, date: Date,
               customer: Annotated[str | None, typer.Option("--customer")] = None,
               certified: Certified = None, certified_share: Share = None, note: Note = None,
               db: Db = None, clerk: Clerk = None) -> None:
    """Book a sale with certified content allocated to it (a claim), under a new outgoing declaration."""
    from symbiosis.ledger import Claim

    _book(db, clerk, Claim(site, group, scheme, declaration, quantity, date, customer=customer,
                           certified_share=certified_share, certified_t=certified, note=note))


@book_app.command("transfer")
def book_transfer(from_site: Annotated[str, typer.Option("--from", help="Sending site")],
                  to_site: Annotated[str, typer.Option("--to", help="Receiving site")],
                  group: Group, scheme: Scheme, declaration: Declaration, quantity: Quantity, date: Date,
                  to_group: Annotated[str | None, typer.Option("--to-group", help="Group at the receiver "
                                                               "(default the same)")] = None,
                  certified: Certified = None, certified_share: Share = None, note: Note = None,
                  db: Db = None, clerk: Clerk = None) -> None:
    """Book certified material passed from one site of the ledger to another: the sender's outgoing
    declaration becomes the receiver's receipt, with the same tonnes."""
    from symbiosis.ledger import Transfer

    _book(db, clerk, Transfer(from_site, to_site, group, scheme, declaration, quantity, date,
                              certified_share=certified_share, certified_t=certified, to_group=to_group, note=note))


@book_app.command("reverse")
def book_reverse(entry: Annotated[int, typer.Argument(help="Number of the entry to correct")],
                 reason: Annotated[str, typer.Option("--reason", help="Why (kept with the reversal)")],
                 date: Annotated[str | None, typer.Option("--date")] = None,
                 db: Db = None, clerk: Clerk = None) -> None:
    """Correct a booking by reversing it (both halves of a transfer or conversion); nothing is ever edited."""
    from symbiosis.ledger import Reversal

    _book(db, clerk, Reversal(entry, reason, date=date))


@book_app.command("csv")
def book_csv(file: Annotated[Path, typer.Argument(help="CSV of deliveries, one booking a row (docs/custody.md)")],
             db: Db = None, clerk: Clerk = None) -> None:
    """Book a CSV of deliveries (an ERP export) whole, or nothing of it, with every problem located by row."""
    from symbiosis.cli import console
    from symbiosis.errors import SymbiosisError
    from symbiosis.ledger.deliveries import book_deliveries

    try:
        with _open(db, clerk) as ledger:
            n = book_deliveries(ledger, file)
    except SymbiosisError as exc:
        _fail(exc)
    console.print(f"booked {file}: {n} entries", markup=False, highlight=False)


@ledger_app.command("book-exchanges")
def book_exchanges(exchanges: Annotated[Path, typer.Argument(help="exchanges.csv of `symbiosis optimise "
                                                             "--private` (facility ids = site ids)")],
                   scheme: Scheme, date: Date,
                   certified_share: Annotated[str, typer.Option(
                       "--certified-share", help="Certified share of each exchanged tonne, 0 to 1")],
                   prefix: Annotated[str, typer.Option("--prefix", help="Declaration id prefix")] = "EX",
                   db: Db = None, clerk: Clerk = None) -> None:
    """Book the optimum's exchanges as transfers for one balancing period (credits flow with the exchanges):
    each moves amount_t_per_yr x months / 12 from supplier to receiver, all or none."""
    from symbiosis.cli import console
    from symbiosis.errors import SymbiosisError
    from symbiosis.ledger.deliveries import book_rows, exchange_transfers

    try:
        with _open(db, clerk) as ledger:
            rows = exchange_transfers(exchanges, scheme=scheme, date=date,
                                      period_months=ledger.scheme_months(scheme), certified_share=certified_share,
                                      prefix=prefix)
            n = book_rows(ledger, rows, exchanges.name) if rows else 0
    except SymbiosisError as exc:
        _fail(exc)
    console.print(f"booked {len(rows)} exchanges as transfers ({n} entries)", markup=False, highlight=False)


@ledger_app.command("exchanges")
def exchanges_command(exchanges: Annotated[Path, typer.Argument(help="exchanges.csv of `symbiosis optimise "
                                                                "--private`")],
                      scheme: Scheme, period: Period, out: Out = Path("certified-exchanges"),
                      db: Db = None) -> None:
    """Each exchange of a run with the certified tonnes and share that moved with it in one period
    (certified_exchanges.csv)."""
    import pandas as pd

    from symbiosis.ledger.statement import certified_exchanges
    from symbiosis.outputs.export import write_csv

    try:
        table = pd.read_csv(exchanges, dtype={"supply_facility": str, "demand_facility": str, "material": str})
    except (OSError, ValueError) as exc:
        _fail(exc)
    missing = [c for c in ("supply_facility", "demand_facility", "material") if c not in table.columns]
    if missing:
        from symbiosis.errors import InputError, Problem

        _fail(InputError([Problem(exchanges.name, "not an exchanges.csv of `symbiosis optimise`", row=1,
                                  column=", ".join(missing), expected="supply_facility, demand_facility, material")]))

    def write(folder: Path) -> Any:
        with _open(db) as ledger:
            frame = certified_exchanges(ledger, table, scheme, period)
        return {"certified_exchanges.csv": write_csv(folder / "certified_exchanges.csv", frame)}

    _write(out, write)


@ledger_app.command("close")
def close_command(site: Site, scheme: Scheme, period: Period,
                  as_of: Annotated[str | None, typer.Option("--as-of", help="Closing date (default today)")] = None,
                  db: Db = None, clerk: Clerk = None) -> None:
    """Close a site's balancing period: carry a positive balance over (or forfeit it) by the scheme's rule."""
    from symbiosis.ledger import Close

    _book(db, clerk, Close(site, scheme, period, as_of=as_of))


def _write(out: Path, write: Any) -> None:
    from symbiosis.atomic import output_folder
    from symbiosis.cli import console
    from symbiosis.errors import SymbiosisError

    try:
        with output_folder(out) as staging:
            written = write(staging)
    except SymbiosisError as exc:
        _fail(exc)
    for name in sorted(written):
        console.print(f"wrote {out / name}", markup=False, highlight=False)


@ledger_app.command("statement")
def statement_command(site: Site, scheme: Scheme, period: Period, out: Out = Path("statement"),
                      db: Db = None) -> None:
    """A site's balancing-period statement: statement.html (prints to PDF), statement.xlsx, statement.csv."""
    from symbiosis.ledger.statement import statement, write_statement

    def write(folder: Path) -> Any:
        with _open(db) as ledger:
            return write_statement(statement(ledger, site, scheme, period), folder)

    _write(out, write)


@ledger_app.command("export")
def export_command(site: Site, scheme: Scheme, period: Period, out: Out = Path("audit"), db: Db = None) -> None:
    """The auditor's export for a site and period: statement, every entry with its hash, balances, chain head."""
    from symbiosis.ledger.statement import write_audit_export

    def write(folder: Path) -> Any:
        with _open(db) as ledger:
            return write_audit_export(ledger, site, scheme, period, folder)

    _write(out, write)


@ledger_app.command("verify")
def verify_command(db: Db = None, anchor: Annotated[str | None, typer.Option(
        "--anchor", help="ENTRY:HASH recorded earlier (from a statement): that entry must still carry it")] = None
                   ) -> None:
    """Check the hash chain and replay the rules; names the first bad entry (exit status 1) if any."""
    from symbiosis.cli import console, err_console
    from symbiosis.errors import SymbiosisError

    pinned = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.strip().isdigit() or len(digest.strip()) != 64:
            _fail(typer.BadParameter(f"--anchor {anchor!r}: expected ENTRY:HASH, a number and 64 hex digits"))
        pinned = (int(seq), digest.strip().lower())
    try:
        with _open(db) as ledger:
            result = ledger.verify(anchor=pinned)
    except SymbiosisError as exc:
        _fail(exc)
    if not result.ok:
        where = f"entry #{result.first_bad_seq}" if result.first_bad_seq is not None else "the ledger"
        err_console.print(f"[bold red]ledger fails verification at {where}:[/] ", end="")
        err_console.print(result.problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(f"[green]✓[/] {result.entries} entries, chain and rules intact; head #{result.entries} "
                  f"{result.head_hash}", highlight=False)
