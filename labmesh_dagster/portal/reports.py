"""HTML reports the pipelines write (MultiQC's, fastp's): found for the experiment page, and shown sandboxed.

A tool's HTML report carries its own scripts. Served from the portal's origin
as an ordinary page, those scripts could act as the signed-in person: read
every page and API answer they may see, post forms with the CSRF token a page
holds. So a report opened in the browser (``/download/<key>?view=1``, the
download route with its access checks and audit) is served with a
``Content-Security-Policy`` whose ``sandbox`` directive (without
``allow-same-origin``) gives the document an opaque origin: its scripts run,
so MultiQC's plots and toolbox work, but it has no cookies, no storage and no
same-origin access to the portal, and ``connect-src 'none'`` and
``form-action 'none'`` stop it sending anything anywhere. Everything a
MultiQC report needs is inline (scripts, styles, images and fonts as data
URIs), which is all the policy allows.

A sandboxed document may not touch ``localStorage`` or ``document.cookie``:
Chromium throws, and MultiQC's report (1.35), which keeps its toolbox settings
in ``localStorage``, then draws none of its plots. So the report shown is
the file with one inline script inserted after its ``<head>`` tag
(`SANDBOX_SHIM`), which gives it an empty, in-memory storage and cookie jar
of its own where the browser refuses them: nothing of the portal's, which
the sandbox still keeps out of reach. A download is the file's exact bytes.
Any other file, or a report asked for without ``view``, is a download
(``attachment``, ``application/octet-stream``) as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from labmesh_dagster.core.manifest import ManifestEntry

MULTIQC_REPORT = "multiqc_report.html"
"""The name MultiQC gives its report; the experiment page links the processed dataset's file of that name."""

HTML_SUFFIXES = (".html", ".htm")

REPORT_POLICY = "; ".join(
    (
        "sandbox allow-scripts allow-popups",
        "default-src 'none'",
        # MultiQC's bundled plotting code is inline; 'unsafe-eval' costs nothing in an opaque origin with no network.
        "script-src 'unsafe-inline' 'unsafe-eval'",
        "style-src 'unsafe-inline'",
        "img-src data: blob:",
        "font-src data:",
        "connect-src 'none'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)


SANDBOX_SHIM = b"""<script>(function () {
  function memory() {
    var items = new Map();
    return {
      getItem: function (k) { k = String(k); return items.has(k) ? items.get(k) : null; },
      setItem: function (k, v) { items.set(String(k), String(v)); },
      removeItem: function (k) { items.delete(String(k)); },
      clear: function () { items.clear(); },
      key: function (i) { var keys = Array.from(items.keys()); return i < keys.length ? keys[i] : null; },
      get length() { return items.size; }
    };
  }
  ["localStorage", "sessionStorage"].forEach(function (name) {
    try { window[name]; }
    catch (refused) { Object.defineProperty(window, name, {value: memory(), configurable: true}); }
  });
  try { document.cookie; } catch (refused) {
    Object.defineProperty(document, "cookie", {
      get: function () { return ""; }, set: function () {}, configurable: true
    });
  }
})();</script>"""
"""Storage and cookies of the report's own, in memory, where its sandbox refuses the browser's (see above)."""

HEAD_SEARCH = 256 * 1024
"""How far into a report its ``<head>`` tag is looked for (MultiQC's comes after a banner comment)."""
_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!doctype[^>]*>", re.IGNORECASE)


def with_sandbox_shim(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The report's bytes with `SANDBOX_SHIM` after its ``<head>`` tag (else after its doctype, else first),
    streamed: only the report's first `HEAD_SEARCH` bytes are held while the tag is looked for."""
    stream = iter(chunks)
    head = b""
    for chunk in stream:
        head += chunk
        if _HEAD.search(head) or len(head) >= HEAD_SEARCH:
            break
    found = _HEAD.search(head) or _DOCTYPE.search(head)
    at = found.end() if found else 0
    yield head[:at] + SANDBOX_SHIM + head[at:]
    yield from stream


def is_html(entry: ManifestEntry) -> bool:
    return entry.name.lower().endswith(HTML_SUFFIXES)


def download_href(key: str) -> str:
    return "/download/" + quote(key, safe="/")


def view_href(key: str) -> str:
    """Where the browser shows an HTML report, sandboxed; the same route as the download, with its access rules."""
    return download_href(key) + "?view=1"


def report_headers(name: str) -> Mapping[str, str]:
    """The headers of an HTML report shown in the browser: inline, sandboxed, never sniffed, never cached shared."""
    return {
        "Content-Security-Policy": REPORT_POLICY,
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
    }


def multiqc_report(files: Iterable[ManifestEntry]) -> dict[str, Any] | None:
    """The processed dataset's MultiQC report as the experiment page links it, or None before MultiQC has run.

    Should the dataset hold more than one (a pipeline's outputs under two
    prefixes), the one a pipeline made, most recently, is shown.
    """
    reports = [entry for entry in files if entry.name == MULTIQC_REPORT]
    if not reports:
        return None
    report = max(reports, key=lambda entry: (entry.produced_by is not None, entry.created, entry.key))
    made = report.produced_by
    return {
        "key": report.key,
        "label": "QC report (MultiQC)",
        "href": view_href(report.key),
        "download": download_href(report.key),
        "file_page": "/files/" + quote(report.key, safe="/"),
        "pipeline": f"{made.pipeline} {made.version}" if made else None,
        "tool_versions": dict(made.tool_versions) if made else {},
    }
