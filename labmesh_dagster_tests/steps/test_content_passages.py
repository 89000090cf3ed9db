"""Publishing gives each file's document its passages, cut from what extraction kept and placed in the file.

Pinned here, through the real extractors: a PDF's passages name their pages, a
CSV's its rows under the header, a Markdown file's its sections; every
document's metadata fields follow as passages naming the fields; a FASTQ's
passages hold its statistics and none of its reads; ids are ``<document
id>#<ordinal>``, and an index fed by `index_dataset` retrieves them.
"""

from __future__ import annotations

import io
from pathlib import Path

from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.core.passages import LocationKind, SearchMode
from labmesh_dagster.extract import extract
from labmesh_dagster.steps.content import dataset_documents, file_passages, index_dataset
from labmesh_dagster_tests.extract.test_pdf import pdf_bytes
from labmesh_dagster_tests.steps.test_content import RECORD, fastq_entry, fastq_reads, manifest, uri_of


def extracted_entry(key: str, data: bytes) -> ManifestEntry:
    extraction = extract(io.BytesIO(data), key.rsplit("/", 1)[-1])
    assert extraction.error is None
    return ManifestEntry(
        key=key,
        size=len(data),
        sha256="0" * 64,
        format=extraction.format,
        created="2025-01-02T10:00:00+00:00",
        metadata=extraction.metadata,
        text=extraction.text,
    )


def test_a_pdfs_passages_name_their_pages_and_its_fields_follow() -> None:
    pdf = extracted_entry("raw/EXP-1/sop.pdf", pdf_bytes(["Coat the plate with antibody", "Wash three times"]))

    passages = file_passages(pdf)

    pages = [(p.location.describe(), p.text) for p in passages if p.location.kind is LocationKind.PAGE]
    assert pages[0][0] == "page 1" and pages[0][1].endswith("Coat the plate with antibody")
    assert pages[1] == ("page 2", "Wash three times")
    fields = [p for p in passages if p.location.kind is LocationKind.FIELD]
    assert any("pages: 2" in p.text and "pages" in (p.location.label or "") for p in fields)
    assert [p.id for p in passages] == [f"raw/EXP-1/sop.pdf#{n}" for n in range(len(passages))]


def test_a_tables_passages_name_their_rows_and_a_markdowns_their_sections() -> None:
    rows = "".join(f"S{n},{n * 2.5},liver\n" for n in range(1, 6))
    table = extracted_entry("raw/EXP-1/samples.csv", f"sample,yield,tissue\n{rows}".encode())
    notes = extracted_entry("raw/EXP-1/notes.md", b"# Aim\nFibrosis.\n\n## Results\n" + b"Q30 was high. " * 80)

    (row_passage,) = [p for p in file_passages(table) if p.location.kind is LocationKind.ROWS]
    assert (row_passage.location.start, row_passage.location.end) == (1, 5)
    assert row_passage.text.startswith("sample,yield,tissue\nS1,2.5,liver")
    sections = {p.location.label for p in file_passages(notes) if p.location.kind is LocationKind.SECTION}
    assert sections == {"Aim", "Results"}


def test_a_fastqs_passages_hold_its_statistics_and_none_of_its_reads() -> None:
    reads = fastq_reads()

    (document,) = dataset_documents(manifest(fastq_entry(reads)), RECORD, uri_of)

    assert document.passages and all(p.location.kind is LocationKind.FIELD for p in document.passages)
    quoted = "\n".join(p.text for p in document.passages)
    assert "reads: 6" in quoted
    assert not any(sequence[:20] in quoted for _, sequence, _ in reads)


def test_a_published_dataset_is_retrieved_by_passage(tmp_path: Path) -> None:
    pdf = extracted_entry("raw/EXP-1/sop.pdf", pdf_bytes(["Coat the plate with antibody", "Wash three times"]))
    index = SqliteContentIndex(tmp_path / "catalog.sqlite")

    assert index_dataset(index, manifest(pdf), None, RECORD, uri_of).ok

    (hit,) = index.retrieve("wash", limit=1, mode=SearchMode.KEYWORD)
    assert (hit.passage.id, hit.passage.location.describe()) == ("raw/EXP-1/sop.pdf#1", "page 2")
