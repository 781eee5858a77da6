"""The facility's own account: reconciled balances (reconcile.py) and, beside them, its costs, circularity and
actions. Each module is a function of the Region (and, where it needs them, the optimiser's Results)."""
