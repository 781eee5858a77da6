"""The mass-balance chain-of-custody ledger (docs/custody.md): certified quantities received, converted,
passed on and claimed, per site, material group, scheme and balancing period, in a hash-chained, append-only
journal stored in SQLite or PostgreSQL."""

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

__all__ = ["BookingRefused", "Claim", "Close", "Conversion", "Ledger", "LedgerError", "Receipt", "Refused",
           "Reversal", "SchemeRule", "Transfer", "VerifyResult", "init_ledger", "ledger_url"]
