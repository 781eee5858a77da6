"""The mass-balance chain-of-custody ledger (docs/custody.md): certified quantities received, converted,
passed on and claimed, per site, material group, scheme and balancing period, in a hash-chained, append-only
journal stored in SQLite or PostgreSQL.

The public names are re-exported lazily, so that ``symbiosis --help`` (which registers the ledger's commands)
does not load SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "LedgerError": "symbiosis.ledger.db", "init_ledger": "symbiosis.ledger.db", "ledger_url": "symbiosis.ledger.db",
    "Refused": "symbiosis.ledger.rules",
    **{name: "symbiosis.ledger.ledger" for name in ("BookingRefused", "Claim", "Close", "Conversion", "Ledger",
                                                     "Receipt", "Reversal", "SchemeRule", "Transfer",
                                                     "VerifyResult")},
}
__all__ = ["BookingRefused", "Claim", "Close", "Conversion", "Ledger", "LedgerError", "Receipt", "Refused",
           "Reversal", "SchemeRule", "Transfer", "VerifyResult", "init_ledger", "ledger_url"]

if TYPE_CHECKING:
    from symbiosis.ledger.db import LedgerError, init_ledger, ledger_url
    from symbiosis.ledger.ledger import (
        BookingRefused,
        Claim,
        Close,
        Conversion,
        Ledger,
        Receipt,
        Reversal,
        SchemeRule,
        Transfer,
        VerifyResult,
    )
    from symbiosis.ledger.rules import Refused


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'symbiosis.ledger' has no attribute {name!r}")
