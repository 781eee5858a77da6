"""The facility's own account: reconciled balances, the cost of losses (MFCA), circularity (MCI) and a ranked
action plan (docs/account.md)."""
