"""Network rules and real networks between facilities: what a receiver can physically take in
(``intake``), what waste law lets it accept (``permits``, with the European List of Waste in ``ewc``),
processors (facilities whose activity is a decision, outputs following inputs: ``processors``) and
substances traced through the optimum (``substances``); docs/formulation.md."""
