"""Documents: plain text, Markdown, YAML, JSON, generic XML and HTML, summarised for the content index.

Text is validated as UTF-8 while it streams, so a file that is not text is
reported as ``not_utf8`` with the byte offset of the fault. JSON and YAML are
parsed only up to a size where holding the whole document is harmless.
XML is read with ElementTree's parser feeding a target object rather than
building a tree (see :mod:`labmesh_dagster.extract.xml_stream`), so nothing of
the document is kept but what is asked for: memory stays flat for a file of
any size. HTML (the reports tools write: fastp, MultiQC) is read with the standard
library's forgiving parser, chunk by chunk, keeping the title and the visible
text but never the scripts and styles that make up most of such a report.
PDFs have their own module, :mod:`labmesh_dagster.extract.pdf`.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any, BinaryIO

import yaml
from markdown_it import MarkdownIt

from labmesh_dagster.extract.base import TEXT_LIMIT, Extractor, FileContext, Summary
from labmesh_dagster.extract.compression import read_head
from labmesh_dagster.extract.xml_stream import feed_xml, local_name

CHUNK_SIZE = 1024 * 1024

JSON_PARSE_LIMIT = 8 * 1024 * 1024
"""JSON larger than this (decompressed) is not parsed: json.loads holds the whole document in memory."""

YAML_PARSE_LIMIT = JSON_PARSE_LIMIT
"""YAML larger than this is not parsed, for the same reason as JSON."""

MARKDOWN_PARSE_LIMIT = 1024 * 1024
"""Characters of a Markdown file searched for front matter and headings; lines are still counted to the end."""

MAX_JSON_KEYS = 200
MAX_HEADINGS = 20
MAX_STRING = 500
"""Longest title, name or description kept from a document."""

MAX_XML_NAMESPACES = 20
MAX_XML_ATTRIBUTES = 20

_TITLE_KEYS = ("title", "name", "description")


_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it: same types as ``safe_load``, many times faster."""


def _scan_text(stream: BinaryIO, ctx: FileContext, keep: int) -> tuple[int, str]:
    """Count lines and keep the first ``keep`` characters, validating UTF-8 as it goes.

    Out of time, it returns the whole lines counted so far.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    consumed = 0
    last = b""
    kept = ""
    while chunk := stream.read(CHUNK_SIZE):
        pending = len(decoder.getstate()[0])
        try:
            decoded = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            ctx.partial["lines_before_error"] = newlines + chunk[: max(exc.start - pending, 0)].count(b"\n")
            offset = consumed - pending + exc.start
            raise ctx.error("not_utf8", f"invalid UTF-8 at byte {offset}: {exc.reason}") from exc
        if len(kept) < keep:
            kept += decoded[: keep - len(kept)]
        newlines += chunk.count(b"\n")
        consumed += len(chunk)
        last = chunk[-1:]
        if ctx.deadline.expired():
            ctx.stop_early("time_budget")
            return newlines, kept.removeprefix("\ufeff")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        ctx.partial["lines_before_error"] = newlines
        raise ctx.error("not_utf8", f"a UTF-8 character is cut off at byte {consumed}") from exc
    lines = newlines + (1 if last not in (b"", b"\n") else 0)
    return lines, kept.removeprefix("\ufeff")


def extract_text(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Count lines and keep the first characters, validating UTF-8 as it goes."""
    lines, snippet = _scan_text(stream, ctx, TEXT_LIMIT)
    return Summary(metadata={"lines": lines, "encoding": "utf-8"}, text=snippet)


def _front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """A Markdown file's YAML front matter (between ``---`` lines at the very top) and the body after it.

    Front matter that is not a YAML mapping is left in the body: the file is
    still good Markdown, it just has no front matter to report.
    """
    if not text.startswith("---\n") and not text.startswith("---\r\n"):
        return None, text
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines[1:], start=1):
        if line.rstrip("\r\n") in ("---", "..."):
            try:
                value = yaml.load("".join(lines[1:index]), Loader=_YamlLoader)
            except yaml.YAMLError:
                return None, text
            if isinstance(value, dict):
                return value, "".join(lines[index + 1 :])
            return None, text
    return None, text


def _headings(body: str) -> list[dict[str, Any]]:
    """The first headings (ATX ``#`` and setext ``===``), as CommonMark reads them: not lines in code blocks."""
    tokens = MarkdownIt("commonmark").parse(body)
    found: list[dict[str, Any]] = []
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open":
            continue
        words = "".join(child.content for child in inline.children or () if child.type in ("text", "code_inline"))
        found.append({"level": int(opening.tag[1:]), "text": words.strip()[:MAX_STRING]})
        if len(found) >= MAX_HEADINGS:
            break
    return found


def extract_markdown(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Lines and text as for plain text, plus the title, the first headings and the front-matter keys."""
    lines, head = _scan_text(stream, ctx, MARKDOWN_PARSE_LIMIT)
    metadata: dict[str, Any] = {"lines": lines, "encoding": "utf-8"}
    front, body = _front_matter(head)
    headings = _headings(body)
    title = front.get("title") if front else None
    if not isinstance(title, str | int | float) or isinstance(title, bool):
        title = next((heading["text"] for heading in headings if heading["level"] == 1), None)
    if title:
        metadata["title"] = str(title)[:MAX_STRING]
    if headings:
        metadata["headings"] = headings
    if front is not None:
        metadata["front_matter_keys"] = [str(key) for key in front][:MAX_JSON_KEYS]
    return Summary(metadata=metadata, text=head[:TEXT_LIMIT])


def _titles(value: object) -> dict[str, str]:
    """A document's own ``title``, ``name`` and ``description``, where it has them at the top level as text."""
    if not isinstance(value, Mapping):
        return {}
    return {
        key: str(value[key]).strip()[:MAX_STRING]
        for key in _TITLE_KEYS
        if isinstance(value.get(key), str | int | float) and not isinstance(value.get(key), bool)
    }


def _json_shape(value: object) -> dict[str, Any]:
    """Describe a parsed JSON document by its top-level type (and keys or length)."""
    if isinstance(value, dict):
        return {"type": "object", "keys": [str(key) for key in value][:MAX_JSON_KEYS], "key_count": len(value)}
    if isinstance(value, list):
        return {"type": "array", "length": len(value)}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int | float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, datetime | date):
        return {"type": "timestamp"}
    if value is None:
        return {"type": "null"}
    return {"type": type(value).__name__}


def _read_structured(stream: BinaryIO, ctx: FileContext, limit: int) -> tuple[str | None, str]:
    """The whole document as text if it is at most ``limit`` bytes, else None; and a snippet either way."""
    data = read_head(stream, limit + 1)
    if len(data) > limit:
        snippet = codecs.getincrementaldecoder("utf-8")("replace").decode(data[: TEXT_LIMIT * 4])
        return None, snippet[:TEXT_LIMIT].removeprefix("\ufeff")
    try:
        document = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ctx.error("not_utf8", f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc
    return document, document[:TEXT_LIMIT]


def extract_json(stream: BinaryIO, ctx: FileContext) -> Summary:
    document, snippet = _read_structured(stream, ctx, JSON_PARSE_LIMIT)
    if document is None:
        return Summary(metadata={"parsed": False}, text=snippet)
    try:
        value = json.loads(document)
    except json.JSONDecodeError as exc:
        raise ctx.error("bad_format", f"invalid JSON: {exc}") from exc
    return Summary(metadata={"parsed": True, **_json_shape(value), **_titles(value)}, text=snippet)


def extract_yaml(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Parse YAML safely (plain data, no Python objects) and describe its first document like JSON."""
    document, snippet = _read_structured(stream, ctx, YAML_PARSE_LIMIT)
    if document is None:
        return Summary(metadata={"parsed": False}, text=snippet)
    count = 0
    first: object = None
    try:
        for value in yaml.load_all(document, Loader=_YamlLoader):
            if count == 0:
                first = value
            count += 1
    except yaml.YAMLError as exc:
        ctx.partial["documents_before_error"] = count
        raise ctx.error("bad_format", f"invalid YAML: {exc}") from exc
    metadata: dict[str, Any] = {"parsed": True, **_json_shape(first), **_titles(first)}
    if count != 1:
        metadata["documents"] = count
    return Summary(metadata=metadata, text=snippet)


class _XmlOutline:
    """Collects a generic XML document's root, namespaces, element count and the start of its text."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.root_attributes: dict[str, str] = {}
        self.namespaces: dict[str, str] = {}
        self.elements = 0
        self.depth = 0
        self.max_depth = 0
        self.text: list[str] = []
        self.text_length = 0

    def start_ns(self, prefix: str, uri: str) -> None:
        if len(self.namespaces) < MAX_XML_NAMESPACES:
            self.namespaces.setdefault(prefix, uri)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.root is None:
            self.root = tag
            self.root_attributes = {
                local_name(key): value[:MAX_STRING] for key, value in list(attrib.items())[:MAX_XML_ATTRIBUTES]
            }
        self.elements += 1
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)

    def end(self, tag: str) -> None:
        self.depth -= 1

    def data(self, text: str) -> None:
        if self.text_length < TEXT_LIMIT and (words := " ".join(text.split())):
            self.text.append(words)
            self.text_length += len(words) + 1

    def summary(self) -> dict[str, Any]:
        root = self.root or ""
        namespace = root[1:].partition("}")[0] if root.startswith("{") else None
        metadata: dict[str, Any] = {"root": local_name(root), "namespace": namespace}
        if self.namespaces:
            metadata["namespaces"] = self.namespaces
        if self.root_attributes:
            metadata["root_attributes"] = self.root_attributes
        metadata["elements"] = self.elements
        metadata["max_depth"] = self.max_depth
        return metadata


def extract_xml(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Root element, namespaces and text of any XML, checking that it is well-formed to its end."""
    outline = _XmlOutline()
    try:
        complete = feed_xml(stream, ctx, outline)
    except Exception:
        ctx.partial["elements_before_error"] = outline.elements
        raise
    metadata = outline.summary()
    if not complete:
        metadata["elements_read"] = metadata.pop("elements")
    return Summary(metadata=metadata, text=" ".join(outline.text)[:TEXT_LIMIT])


class _HtmlText(HTMLParser):
    """The title and the visible text of an HTML page, up to the text limit; scripts and styles are skipped."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.hidden = 0
        self.in_title = False
        self.elements = 0
        self.text: list[str] = []
        self.text_length = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements += 1
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag == "title":
            self.in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        words = " ".join(data.split())
        if not words:
            return
        if self.in_title and len(self.title) < MAX_STRING:
            self.title = (self.title + " " + words).strip()[:MAX_STRING]
        elif self.text_length < TEXT_LIMIT:
            self.text.append(words)
            self.text_length += len(words) + 1


def extract_html(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Title and visible text of an HTML file (a tool's report), validating UTF-8 as it streams."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    page = _HtmlText()
    consumed = 0
    while chunk := stream.read(CHUNK_SIZE):
        try:
            page.feed(decoder.decode(chunk))
        except UnicodeDecodeError as exc:
            raise ctx.error("not_utf8", f"invalid UTF-8 at byte {consumed + exc.start}: {exc.reason}") from exc
        consumed += len(chunk)
        if ctx.deadline.expired():
            ctx.stop_early("time_budget")
            break
    page.close()
    metadata: dict[str, Any] = {"elements": page.elements}
    if page.title:
        metadata["title"] = page.title
    text = " ".join(([page.title] if page.title else []) + page.text)
    return Summary(metadata=metadata, text=text[:TEXT_LIMIT])


EXTRACTORS: dict[str, Extractor] = {
    "text": extract_text,
    "md": extract_markdown,
    "yaml": extract_yaml,
    "json": extract_json,
    "xml": extract_xml,
    "html": extract_html,
}
