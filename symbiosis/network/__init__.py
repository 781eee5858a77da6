"""Network rules between facilities: what a receiver can physically take in (``intake``) and what waste law
lets it accept (``permits``, with the European List of Waste in ``ewc``)."""
