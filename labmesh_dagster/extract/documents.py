"""Text documents: plain text, Markdown, YAML and JSON, summarised for the content index.

Text is validated as UTF-8 while it streams, so a file that is not text is
reported as ``not_utf8`` with the byte offset of the fault; JSON is parsed only
up to a size where holding it whole is harmless.
"""

from __future__ import annotations

import codecs
import json
from typing import Any, BinaryIO

from labmesh_dagster.extract.base import TEXT_LIMIT, Extractor, FileContext, Summary
from labmesh_dagster.extract.compression import read_head

CHUNK_SIZE = 1024 * 1024

JSON_PARSE_LIMIT = 8 * 1024 * 1024
"""JSON larger than this (decompressed) is not parsed: json.loads holds the whole document in memory."""

MAX_JSON_KEYS = 200


def extract_text(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Count lines and keep the first characters, validating UTF-8 as it goes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    consumed = 0
    last = b""
    snippet = ""
    while chunk := stream.read(CHUNK_SIZE):
        pending = len(decoder.getstate()[0])
        try:
            decoded = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            ctx.partial["lines_before_error"] = newlines + chunk[: max(exc.start - pending, 0)].count(b"\n")
            offset = consumed - pending + exc.start
            raise ctx.error("not_utf8", f"invalid UTF-8 at byte {offset}: {exc.reason}") from exc
        if len(snippet) < TEXT_LIMIT:
            snippet += decoded[: TEXT_LIMIT - len(snippet)]
        newlines += chunk.count(b"\n")
        consumed += len(chunk)
        last = chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        ctx.partial["lines_before_error"] = newlines
        raise ctx.error("not_utf8", f"a UTF-8 character is cut off at byte {consumed}") from exc
    lines = newlines + (1 if last not in (b"", b"\n") else 0)
    return Summary(metadata={"lines": lines, "encoding": "utf-8"}, text=snippet.removeprefix("\ufeff"))


def _json_shape(value: object) -> dict[str, Any]:
    """Describe a parsed JSON document by its top-level type (and keys or length)."""
    if isinstance(value, dict):
        return {"type": "object", "keys": list(value)[:MAX_JSON_KEYS], "key_count": len(value)}
    if isinstance(value, list):
        return {"type": "array", "length": len(value)}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, (int, float)):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    return {"type": "null"}


def extract_json(stream: BinaryIO, ctx: FileContext) -> Summary:
    data = read_head(stream, JSON_PARSE_LIMIT + 1)
    if len(data) > JSON_PARSE_LIMIT:
        snippet = codecs.getincrementaldecoder("utf-8")("replace").decode(data[: TEXT_LIMIT * 4])
        return Summary(metadata={"parsed": False}, text=snippet[:TEXT_LIMIT].removeprefix("\ufeff"))
    try:
        document = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ctx.error("not_utf8", f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc
    try:
        value = json.loads(document)
    except json.JSONDecodeError as exc:
        raise ctx.error("bad_format", f"invalid JSON: {exc}") from exc
    return Summary(metadata={"parsed": True, **_json_shape(value)}, text=document[:TEXT_LIMIT])


EXTRACTORS: dict[str, Extractor] = {
    "text": extract_text,
    "md": extract_text,
    "yaml": extract_text,
    "json": extract_json,
}
