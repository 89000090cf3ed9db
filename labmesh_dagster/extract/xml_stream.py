"""Streaming XML: a document fed through ElementTree's expat parser into a target object, never a tree.

The parser calls the target's ``start``, ``end`` and ``data`` as it reads, and
nothing of the document is kept but what the target asks for, so memory stays
flat for a file of any size. :func:`feed_xml` adds what every extractor of an
XML format needs on top: the time budget checked between chunks, an early stop
(:class:`StopParsing`), and faults told apart (``truncated`` for a document
that ends before its root is closed, else ``bad_format``). Used for generic
XML (:mod:`labmesh_dagster.extract.documents`) and mzML
(:mod:`labmesh_dagster.extract.mzml`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import BinaryIO, Protocol
from xml.parsers.expat import errors as expat_errors

from labmesh_dagster.extract.base import FileContext

CHUNK_SIZE = 1024 * 1024


class XmlTarget(Protocol):
    """What ElementTree's parser calls as it reads: ``start(tag, attrib)``, ``end(tag)`` and ``data(text)``."""

    def start(self, tag: str, attrib: dict[str, str]) -> None: ...

    def end(self, tag: str) -> None: ...

    def data(self, text: str) -> None: ...


class StopParsing(Exception):
    """Raised by an XML target to end the scan early; the target has recorded why with ``ctx.stop_early``."""


def _truncation_codes() -> frozenset[int]:
    """expat's error codes meaning "the document stops before its end", as raised when the input is closed."""
    names = ("NO_ELEMENTS", "UNCLOSED_TOKEN", "PARTIAL_CHAR", "UNCLOSED_CDATA_SECTION")
    return frozenset(expat_errors.codes[getattr(expat_errors, f"XML_ERROR_{name}")] for name in names)


_TRUNCATION_CODES = _truncation_codes()


def local_name(tag: str) -> str:
    """An element name without its ``{namespace}``."""
    return tag.rpartition("}")[2]


def feed_xml(stream: BinaryIO, ctx: FileContext, target: XmlTarget) -> bool:
    """Stream a document through ElementTree's expat parser into ``target``; False if it stopped early.

    The deadline is checked between chunks (so a document read whole is
    never called partial); a target may stop sooner by
    raising StopParsing. A document that ends before its root element is
    closed is ``truncated`` (expat only says so once told the input is over);
    any other fault is ``bad_format``, with its line and column.
    """
    parser = ET.XMLParser(target=target)  # type: ignore[arg-type]
    try:
        chunk = stream.read(CHUNK_SIZE)
        while chunk:
            parser.feed(chunk)
            chunk = stream.read(CHUNK_SIZE)
            if chunk and ctx.deadline.expired():
                ctx.stop_early("time_budget")
                return False
    except StopParsing:
        return False
    except ET.ParseError as exc:
        raise ctx.error("bad_format", f"XML is not well-formed: {exc}") from exc
    try:
        parser.close()
    except ET.ParseError as exc:
        if exc.code in _TRUNCATION_CODES:
            raise ctx.error("truncated", f"the XML document ends before it is complete ({exc})") from exc
        raise ctx.error("bad_format", f"XML is not well-formed: {exc}") from exc
    return True
