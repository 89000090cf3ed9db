"""A small writer of text-only PDFs, so the evaluation's reports are real PDFs that labmesh extracts with pypdf.

pypdf reads PDFs but cannot lay out text, and no PDF-writing library is a
dependency of labmesh; a text page needs only a font, a content stream of
``Tj`` lines and a cross-reference table (PDF 32000-1, 7.5), so it is written
here. The output is byte-for-byte the same on every run: fixed dates, no ids.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 64
FONT_SIZE = 10
LEADING = 14
WRAP = 95
"""Characters per line: Helvetica at 10 pt fits about this many across A4 between the margins."""


def _escape(text: str) -> bytes:
    """A PDF literal string's content: WinAnsi (Latin-1 for what we use) with ``\\``, ``(``, ``)`` escaped."""
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _page_stream(text: str) -> bytes:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, WRAP) or [""])
    out = [b"BT", f"/F1 {FONT_SIZE} Tf {LEADING} TL {MARGIN} {PAGE_HEIGHT - MARGIN} Td".encode()]
    for line in lines:
        out.append(b"(" + _escape(line) + b") Tj T*")
    out.append(b"ET")
    return b"\n".join(out)


def text_pdf(pages: Sequence[str], *, title: str, author: str, created: str = "20261101120000Z") -> bytes:
    """A PDF with one page per item of ``pages`` (lines kept, long ones wrapped), and its title and author.

    ``created`` is a PDF date without its ``D:`` prefix, fixed so the bytes never change.
    """
    objects: list[bytes] = []
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for page_id, text in zip(page_ids, pages, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>".encode()
        )
        stream = _page_stream(text)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = len(objects) + 1
    objects.append(
        b"<< /Title (" + _escape(title) + b") /Author (" + _escape(author) + b") /Producer (labmesh evaluation)"
        b" /CreationDate (D:" + created.encode() + b") >>"
    )
    body = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + content + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        body += f"{offset:010d} 00000 n \n".encode()
    body += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info_id} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(body)
