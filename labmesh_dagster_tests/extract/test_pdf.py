"""PDFs are summarised for the content index: document information, page count and the first pages' text.

Each PDF is written here by pypdf, with a real text content stream, streamed
to ``extract`` through a one-way stream, and spoiled the ways such files
break: cut off, malformed, encrypted.
"""

from __future__ import annotations

import io

import pytest
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject

from labmesh_dagster.extract.base import Deadline, FileContext
from labmesh_dagster.extract.pdf import PDF_TEXT_PAGES, extract_pdf
from labmesh_dagster_tests.extract.test_registry import extract_bytes

INFO = {
    "/Title": "ELISA plate reader SOP",
    "/Author": "A. Lab",
    "/Subject": "Standard operating procedure",
    "/Keywords": "elisa, od450",
    "/Creator": "LibreOffice Writer",
    "/CreationDate": "D:20240501101112+02'00'",
}


def pdf_bytes(
    pages: list[str],
    info: dict[str, str] | None = None,
    *,
    user_password: str | None = None,
    owner_password: str | None = None,
    algorithm: str | None = None,
) -> bytes:
    """A PDF whose pages show the given text in Helvetica, as a word processor would write it."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        content = ContentStream(None, writer)
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
        page.replace_contents(content)
    writer.add_metadata(INFO if info is None else info)
    if user_password is not None:
        writer.encrypt(user_password, owner_password, algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_pdf_gets_its_document_information_page_count_and_first_text() -> None:
    extraction = extract_bytes(pdf_bytes(["Coat the plate with antibody", "Wash three times"]), "sop.pdf")
    assert extraction.format == "pdf"
    assert extraction.error is None
    assert extraction.metadata == {
        "pdf_version": "1.3",
        "encrypted": False,
        "title": "ELISA plate reader SOP",
        "author": "A. Lab",
        "subject": "Standard operating procedure",
        "keywords": "elisa, od450",
        "creator": "LibreOffice Writer",
        "producer": "pypdf",
        "creation_date": "2024-05-01T10:11:12+02:00",
        "pages": 2,
    }
    assert extraction.text == "ELISA plate reader SOP A. Lab\nCoat the plate with antibody\fWash three times"


def test_only_the_first_pages_of_a_long_pdf_are_read_for_text() -> None:
    pages = [f"Page number {n}" for n in range(PDF_TEXT_PAGES + 3)]
    extraction = extract_bytes(pdf_bytes(pages), "long.pdf")
    assert extraction.metadata["pages"] == len(pages)
    assert f"Page number {PDF_TEXT_PAGES - 1}" in extraction.text
    assert f"Page number {PDF_TEXT_PAGES}" not in extraction.text


def test_a_pdf_with_an_invalid_date_keeps_the_date_as_written() -> None:
    data = pdf_bytes(["x"], {"/Title": "t", "/CreationDate": "last Tuesday"})
    assert extract_bytes(data, "odd.pdf").metadata["creation_date"] == "last Tuesday"


def test_a_pdf_locked_with_a_user_password_says_it_is_encrypted_without_failing() -> None:
    data = pdf_bytes(["Secret results"], user_password="secret", owner_password="owner", algorithm="AES-256")
    extraction = extract_bytes(data, "locked.pdf")
    assert extraction.error is None
    assert extraction.metadata == {"pdf_version": "1.3", "encrypted": True, "decrypted": False}
    assert extraction.text == ""


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_a_pdf_restricted_only_by_an_owner_password_is_read_like_any_viewer_would(algorithm: str) -> None:
    data = pdf_bytes(["Open results"], user_password="", owner_password="owner", algorithm=algorithm)
    extraction = extract_bytes(data, "restricted.pdf")
    assert extraction.error is None
    assert (extraction.metadata["encrypted"], extraction.metadata["decrypted"]) == (True, True)
    assert (extraction.metadata["title"], extraction.metadata["pages"]) == ("ELISA plate reader SOP", 1)
    assert "Open results" in extraction.text


def test_a_truncated_pdf_is_truncated() -> None:
    data = pdf_bytes(["Coat the plate"])
    extraction = extract_bytes(data[: len(data) * 2 // 3], "sop.pdf")
    assert extraction.error is not None
    assert (extraction.error.reason, extraction.error.name) == ("truncated", "sop.pdf")


def test_a_pdf_header_followed_by_garbage_is_bad_format() -> None:
    extraction = extract_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", "junk.pdf")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert "unreadable PDF" in extraction.error.detail


def test_a_pdf_out_of_time_keeps_its_document_information_and_skips_the_text() -> None:
    ctx = FileContext(name="sop.pdf", deadline=Deadline(0))
    summary = extract_pdf(io.BytesIO(pdf_bytes(["Coat the plate"])), ctx)  # type: ignore[arg-type]
    assert ctx.partial_reason == "time_budget"
    assert (summary.metadata["title"], summary.metadata["pages"]) == ("ELISA plate reader SOP", 1)
    assert "Coat the plate" not in summary.text
