"""Real networks: processors (facilities whose activity is a decision, outputs following inputs) and
substances traced through the optimum (docs/formulation.md, "Processors" and "Substances")."""
