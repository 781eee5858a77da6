"""Self-contained map pages: the scripts and styles a folium page loads from CDNs, put into the page itself.

Folium writes ``<script src>`` and ``<link rel="stylesheet">`` tags for Leaflet, jQuery, Bootstrap, Font
Awesome and Leaflet.awesome-markers (and Leaflet.markercluster for a clustered map). Our maps draw with
Leaflet alone (their markers are ``L.divIcon`` and circle markers, their popups and tooltips plain HTML), so
:func:`inline_assets` puts Leaflet's script and style (and markercluster's when the page asks for it) into
the page from the copies in ``symbiosis/outputs/assets/`` and drops the rest. Any other CDN URL in the page
is an error naming it: a page written as self-contained never silently needs the network. The background
tiles are the one part that still comes from the network (the page says so when they do not load).
"""

from __future__ import annotations

import base64
import functools
import re
from importlib import resources

#: CDN URL folium writes -> file in symbiosis/outputs/assets/ (folium 0.20).
VENDORED = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet-1.9.3/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet-1.9.3/leaflet.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js":
        "leaflet.markercluster-1.1.0/leaflet.markercluster.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css":
        "leaflet.markercluster-1.1.0/MarkerCluster.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css":
        "leaflet.markercluster-1.1.0/MarkerCluster.Default.css",
}

#: folium's default scripts and styles that our maps do not use (jQuery, Bootstrap, icon fonts, awesome-markers).
UNUSED = re.compile(
    r"^https://(code\.jquery\.com/jquery-|cdn\.jsdelivr\.net/npm/bootstrap@|netdna\.bootstrapcdn\.com/bootstrap/"
    r"|cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@|cdnjs\.cloudflare\.com/ajax/libs/Leaflet\.awesome-markers/"
    r"|cdn\.jsdelivr\.net/gh/python-visualization/folium/folium/templates/leaflet\.awesome\.rotate)"
)

_SCRIPT_TAG = re.compile(r'<script src="(?P<url>https?://[^"]+)"></script>')
_STYLE_TAG = re.compile(r'<link rel="stylesheet" href="(?P<url>https?://[^"]+)"\s*/?>')
_CSS_IMAGE = re.compile(r"url\((?P<path>images/[A-Za-z0-9_.-]+\.png)\)")


class NotSelfContained(ValueError):
    """A page asks for a script or style from the network that has no local copy."""


@functools.cache
def asset_text(name: str) -> str:
    """The text of a file in ``symbiosis/outputs/assets/``, ready to stand inside a ``<script>``/``<style>``."""
    folder = resources.files("symbiosis.outputs").joinpath("assets")
    text = folder.joinpath(name).read_text(encoding="utf-8")
    text = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", text)  # no request for a source map
    if name.endswith(".css"):
        base = name.rsplit("/", 1)[0]

        def data_uri(match: re.Match[str]) -> str:
            data = folder.joinpath(f"{base}/{match['path']}").read_bytes()
            return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

        text = _CSS_IMAGE.sub(data_uri, text)
    # Neither file holds "</script" or "</style"; should a new version do so, it must not end the element.
    return text.replace("</script", "<\\/script").replace("</style", "<\\/style")


def inline_assets(page: str) -> str:
    """``page`` (a folium map's HTML) with its CDN scripts and styles inlined or dropped; see the module doc.

    Raises :class:`NotSelfContained` naming any script or style URL that has no local copy.
    """
    missing: list[str] = []

    def replace(match: re.Match[str], element: str) -> str:
        url = match["url"]
        if url in VENDORED:
            return f"<{element}>\n{asset_text(VENDORED[url])}\n</{element}>"
        if UNUSED.match(url):
            return ""
        missing.append(url)
        return match.group(0)

    page = _SCRIPT_TAG.sub(lambda m: replace(m, "script"), page)
    page = _STYLE_TAG.sub(lambda m: replace(m, "style"), page)
    if missing:
        raise NotSelfContained(
            "no local copy of " + ", ".join(missing) + " (see symbiosis/outputs/assets/README.md)")
    return page
