"""The facility's own account: reconciled balances (reconcile.py), the cost of losses (mfca.py, ISO 14051),
circularity (mci.py, the Material Circularity Indicator), a ranked action plan (actions.py) and the facility
report (report.py). Each module is a function of the Region (and, where it needs them, the optimiser's
Results); docs/reconciliation.md and docs/account.md.
"""
