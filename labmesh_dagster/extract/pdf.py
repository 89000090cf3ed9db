"""PDF documents: document information, page count and the first pages' text, for the content index.

pypdf reads a PDF from a temporary copy, because a PDF's index (its
cross-reference table) is at its end and the stream here cannot seek. A copy
without its ``%%EOF`` marker is reported as ``truncated``; an encrypted file is
opened with the empty user password where that suffices, as viewers do.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from pypdf import PdfReader
from pypdf._utils import parse_iso8824_date
from pypdf.errors import PyPdfError

from labmesh_dagster.extract.base import TEXT_LIMIT, Extractor, FileContext, Summary, spooled
from labmesh_dagster.extract.documents import MAX_STRING

PAGE_BREAK = "\f"
"""Between two pages' text (the chunker of `labmesh_dagster.semantic` counts pages by it)."""

PDF_TEXT_PAGES = 5
"""Pages whose text is extracted for the content index (the first ones: title page, abstract, summary)."""

PDF_EOF_WINDOW = 1024
"""A PDF ends with ``%%EOF`` within its last kilobyte (PDF 32000-1, 7.5.5); a cut-off copy does not."""

_PDF_FIELDS = {
    "/Title": "title",
    "/Author": "author",
    "/Subject": "subject",
    "/Keywords": "keywords",
    "/Creator": "creator",
    "/Producer": "producer",
}
_PDF_DATES = {"/CreationDate": "creation_date", "/ModDate": "modification_date"}


def _pdf_string(value: object) -> str:
    """A PDF string as text; pypdf leaves undecodable ones as bytes."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).replace("\x00", "").strip()[:MAX_STRING]


def _pdf_date(raw: object) -> str:
    """A PDF date (``D:20240501101112+02'00'``) in ISO 8601, or as written if it is not a valid date."""
    text = _pdf_string(raw)
    try:
        parsed = parse_iso8824_date(text)
    except ValueError:
        return text
    return parsed.isoformat() if parsed else text


def _pdf_info(reader: PdfReader) -> dict[str, Any]:
    """The document information dictionary: title, author, dates and the rest, as readable text."""
    info = reader.metadata
    found: dict[str, Any] = {}
    if info is None:
        return found
    for key, name in _PDF_FIELDS.items():
        if info.get(key) not in (None, ""):
            found[name] = _pdf_string(info[key])
    for key, name in _PDF_DATES.items():
        if info.get(key) not in (None, ""):
            found[name] = _pdf_date(info[key])
    return {key: value for key, value in found.items() if value}


def _pdf_text(reader: PdfReader, ctx: FileContext, metadata: dict[str, Any]) -> str:
    """The text of the first pages, enough for the content index; a page that cannot be read is noted, not fatal.

    Pages are separated by a form feed, as pdftotext writes them, so that
    passages cut from the text know their page; a page without text (or
    unreadable) is an empty one, keeping the count.
    """
    parts: list[str] = []
    length = 0
    for index, page in enumerate(reader.pages[:PDF_TEXT_PAGES]):
        if length >= TEXT_LIMIT:
            break
        if ctx.deadline.expired():
            ctx.stop_early("time_budget")
            break
        try:
            words = " ".join(page.extract_text().split())
        except (PyPdfError, KeyError, ValueError, TypeError) as exc:
            metadata.setdefault("unreadable_text_pages", []).append(index)
            metadata.setdefault("text_error", f"page {index}: {type(exc).__name__}: {exc}"[:MAX_STRING])
            words = ""
        parts.append(words)
        length += len(words) + 1
    return PAGE_BREAK.join(parts).rstrip(PAGE_BREAK)


def extract_pdf(stream: BinaryIO, ctx: FileContext) -> Summary:
    """Document information, page count and the first pages' text; for encrypted files, what can be read.

    An encrypted PDF whose user password is empty (only printing or copying
    is restricted) is opened as any reader would; otherwise only the fact
    that it is encrypted is reported.
    """
    with spooled(stream, ctx, ".pdf") as path, path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(size - PDF_EOF_WINDOW, 0))
        if b"%%EOF" not in fh.read():
            raise ctx.error("truncated", f"no %%EOF marker in the last {PDF_EOF_WINDOW} bytes: the PDF is cut off")
        fh.seek(0)
        try:
            reader = PdfReader(fh, strict=False)
            metadata: dict[str, Any] = {"pdf_version": reader.pdf_header.removeprefix("%PDF-")}
            metadata["encrypted"] = reader.is_encrypted
            if reader.is_encrypted:
                readable = _try_empty_password(reader)
                metadata["decrypted"] = readable
                if not readable:
                    return Summary(metadata=metadata)
            metadata.update(_pdf_info(reader))
            metadata["pages"] = len(reader.pages)
            text = _pdf_text(reader, ctx, metadata)
        except PyPdfError as exc:
            raise ctx.error("bad_format", f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    heading = " ".join(str(metadata[key]) for key in ("title", "author") if key in metadata)
    # Not `strip()`: a form feed before the text says its first page had none.
    return Summary(metadata=metadata, text=f"{heading}\n{text}".strip(" \n"))


def _try_empty_password(reader: PdfReader) -> bool:
    """Open an encrypted PDF with the empty user password, as viewers do; False if it needs a real one."""
    try:
        return bool(reader.decrypt(""))
    except (PyPdfError, NotImplementedError):
        return False


EXTRACTORS: dict[str, Extractor] = {"pdf": extract_pdf}
