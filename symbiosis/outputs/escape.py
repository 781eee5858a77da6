"""Escaping for every place a string from the data can land in a page written by symbiosis.

Names, ids, materials, fates, sources, region and scenario names come from files that anyone may have
written, and they reach the map, the report, the comparison and the partner pages. Each helper here makes a
value safe for one context of an HTML page; the page code picks the helper for where the value lands:

- :func:`html_text`: text between tags, and the value of a *quoted* attribute (quotes are escaped too, and
  so are braces, see below);
- :func:`js_string`: a JavaScript string literal, quotes included, safe inside a ``<script>`` element;
- :func:`script_json`: any JSON value for a ``<script>`` element (``</script>``, ``<!--``, ``&`` and the
  U+2028/U+2029 line separators are written as ``\\u`` escapes, so the JSON can neither end the script
  nor break the JavaScript parser);
- :func:`plotly_text`: a label or hover text for plotly, which reads a few HTML tags (``<b>``, ``<br>``,
  ``<a href>``) in its strings: data text is HTML-escaped, so plotly shows it as text.

Folium (through branca) renders each element's output a second time as a Jinja template, so ``{{ ... }}``
in a name written into a map would be evaluated by Jinja on the machine that writes the map, with full access
to Python (``{{ cycler.__init__.__globals__.os.system(...) }}``), and ``{%`` would stop the writing with a
syntax error. :func:`html_text` therefore writes ``{`` and ``}`` as entities, and :func:`script_json` writes a
``{`` that opens ``{{``, ``{%`` or ``{#`` as ``\\u007b``: neither can open a Jinja tag, and both show the same.

Nothing from the data is ever placed in a URL, a CSS value or an event-handler attribute: colours come from
fixed palettes and links are fixed names. Folium puts tooltip text into a JavaScript template literal
(backquotes) where ``${...}`` runs: never hand it data text, use :func:`symbiosis.outputs.mapping.tooltip`,
which passes the HTML as JSON.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

#: Characters that JSON may leave as they are but that must not appear raw inside <script> in HTML.
_SCRIPT_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
#: Joins the texts :func:`html_texts` escapes at once (a character no escaping produces or changes).
_JOIN = "\x00"
#: A brace that opens a Jinja tag. In JSON a structural ``{`` is followed by ``"`` or ``}``, never by one of
#: these, so only braces inside strings match, and ``\u007b`` is the same character there.
_JINJA_OPEN = re.compile(r"\{(?=[{%#])")


def _text(value: Any) -> str:
    """``str(value)``, with None and NaN as an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def html_text(value: Any) -> str:
    """``value`` as HTML text or as the value of a quoted attribute: ``& < > " ' { }`` become entities."""
    return html.escape(_text(value), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def html_texts(values: Any) -> list[str]:
    """:func:`html_text` of each of ``values``, escaped in one pass over their joined text (each character is
    escaped on its own, so the pieces are the same as escaped one by one; 50,000 names take a tenth of the
    time). Values that hold the joining character are escaped one by one."""
    texts = [_text(value) for value in values]
    joined = _JOIN.join(texts)
    if joined.count(_JOIN) != max(len(texts) - 1, 0):
        return [html_text(text) for text in texts]
    return html_text(joined).split(_JOIN) if texts else []


def script_json(value: Any, **dumps_options: Any) -> str:
    """``value`` as JSON that is safe to place inside a ``<script>`` element of an HTML page.

    ``<``, ``>``, ``&`` and ``'`` become ``\\u`` escapes (no ``</script>``, ``<!--`` or entity can form), and so
    do U+2028 and U+2029, which older JavaScript parsers treat as line ends inside strings, and a ``{`` that
    would open a Jinja tag (folium renders scripts twice). The result is still valid JSON and valid
    JavaScript, and decodes to the same value.
    """
    text = json.dumps(value, ensure_ascii=False, **dumps_options)
    # One str.replace per character, not str.translate: translate looks every character of a non-ASCII text
    # up in a dict, 4 s for the 90 MB of a 50,000-facility map against 0.2 s (docs/performance.md).
    for char, escaped in _SCRIPT_UNSAFE.items():
        if char in text:
            text = text.replace(char, escaped)
    if "{{" in text or "{%" in text or "{#" in text:
        text = _JINJA_OPEN.sub(r"\\u007b", text)
    return text


def js_string(value: Any) -> str:
    """``value`` as a JavaScript string literal (double quotes included), safe inside ``<script>``."""
    return script_json(_text(value))


def plotly_text(value: Any) -> str:
    """Text for a plotly label, title or hover: HTML-escaped, so plotly's few HTML tags show as text."""
    return html.escape(_text(value), quote=False)
