"""The web application (issue 14): a symbiosis programme run by an agency, with firms as members.

A Django project and app in one package. Firms enter their facilities and flows (checked by the same code as
``symbiosis check``: the programme is written out as a region folder and loaded by :mod:`symbiosis.inputs`),
find partners for their streams (:mod:`symbiosis.partners`), and express interest; the agency and its
facilitators see the whole programme, run ``optimise`` in the background and keep the record of
introductions. Access rules are declared on every view (:mod:`symbiosis.web.access`). Nothing here is
imported by the library: ``symbiosis serve`` imports it lazily.
"""
