"""A dataset becomes content documents that hold what was extracted, never the raw sequence data.

Pinned here: a FASTQ's document holds the extracted statistics as words and
numbers under its own name, but none of its reads or quality strings (even if
an extractor left some in the entry's text); what the experiment says and
where the file sits (title, description, protocol, path, format, samples) are
attributes and the catalog's, never words of the text, so a word of the
experiment's description finds no file while a word inside one file finds
that file alone; long nucleotide runs are scrubbed from any
text while short primers stay; ids are the manifest keys, the same on every
run, and long or undecodable keys get stable, distinct, short enough ids;
attributes come from the record and the entry, the access list from the record (group, owner, people)
or, when given, the catalog's (grants included), and an experiment with no group is its owner's alone; labmesh's
own, empty and content-less files get no document; removed ids are the
searchable files that vanished; `index_dataset` keeps an index in step with
the dataset, run after run.
"""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labmesh_dagster.connectors.search.base import ContentFilter
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.extract import extract
from labmesh_dagster.steps.content import (
    MAX_ID_LENGTH,
    dataset_documents,
    document_id,
    index_dataset,
    is_searchable,
    removed_document_ids,
)

RECORD = ExperimentRecord(
    id="EXP-1",
    title="Liver fibrosis time course",
    description="Bulk RNA-seq of mouse liver after CCl4 treatment.",
    group="liver-lab",
    owner="Ada",
    samples=(Sample("S1"), Sample("S2")),
    platform="NovaSeq 6000",
    protocol="TruSeq stranded mRNA",
)


def uri_of(key: str) -> str:
    return f"s3://lab/{key}"


def fastq_reads(count: int = 6, length: int = 60, seed: int = 1) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    return [
        (
            f"read{number}",
            "".join(rng.choice("ACGT") for _ in range(length)),
            "".join(rng.choice("#+5:?FIJ") for _ in range(length)),
        )
        for number in range(count)
    ]


def fastq_entry(reads: list[tuple[str, str, str]], key: str = "raw/EXP-1/run1/S1_R1.fastq") -> ManifestEntry:
    """The entry the manifest step makes for a FASTQ, plus reads left in its text by a careless extractor."""
    data = "".join(f"@{name}\n{sequence}\n+\n{quality}\n" for name, sequence, quality in reads).encode()
    extraction = extract(io.BytesIO(data), key.rsplit("/", 1)[-1])
    assert extraction.format == "fastq" and extraction.error is None
    return ManifestEntry(
        key=key,
        size=len(data),
        sha256="0" * 64,
        format=extraction.format,
        created="2025-01-02T10:00:00+00:00",
        metadata=extraction.metadata,
        sample_ids=("S1",),
        text=extraction.text + "\n" + data.decode(),
    )


def entry(key: str, fmt: str, **fields: object) -> ManifestEntry:
    return ManifestEntry(key=key, size=10, sha256="0" * 64, format=fmt, created="2025-01-03T00:00:00Z", **fields)  # type: ignore[arg-type]


def manifest(*entries: ManifestEntry, zone: str = "raw") -> Manifest:
    return Manifest.build("EXP-1", zone, entries)


def test_a_fastq_document_holds_its_statistics_and_never_its_reads() -> None:
    reads = fastq_reads()

    (document,) = dataset_documents(manifest(fastq_entry(reads)), RECORD, uri_of)

    whole = "\n".join([document.id, document.title, document.text, document.uri, str(document.attributes)])
    for _, sequence, quality in reads:
        assert sequence not in whole
        assert sequence[:20] not in whole
        assert quality not in whole
    assert "@read0" not in whole
    for expected in ["reads: 6", "bases: 360", "gc percent:"]:
        assert expected in document.text
    assert document.title == "S1_R1.fastq"


def test_what_the_experiment_says_is_no_word_of_any_file() -> None:
    (document,) = dataset_documents(manifest(fastq_entry(fastq_reads())), RECORD, uri_of)

    for metadata in [
        "Liver fibrosis",
        "CCl4",
        "TruSeq",
        "NovaSeq",
        "liver-lab",
        "EXP-1",
        "Samples:",
        "Format:",
        "raw/",
    ]:
        assert metadata not in document.text and metadata not in document.title, metadata


def test_a_word_of_the_description_finds_no_file_and_a_word_inside_one_file_finds_that_file(tmp_path: Path) -> None:
    """We saw one description word return every file of the experiment: it was copied into each document."""
    index = SqliteContentIndex(tmp_path / "catalog.sqlite")
    notes = entry("raw/EXP-1/notes.txt", "text", text="Sample S2 was re-extracted after QC")
    summary = entry("raw/EXP-1/summary.md", "md", text="COL1A1 expression is higher in S1")
    index_dataset(index, manifest(fastq_entry(fastq_reads()), notes, summary), None, RECORD, uri_of)

    assert index.search("CCl4") == []  # the description's word
    assert index.search("TruSeq") == []  # the protocol
    assert index.search("EXP-1") == []  # the experiment id: a facet
    assert [hit.id for hit in index.search("COL1A1")] == [summary.key]
    assert [hit.id for hit in index.search("anything", filters=ContentFilter(experiment_id="EXP-1"))] == []
    assert len(index.search("", filters=ContentFilter(experiment_id="EXP-1"))) == 3


def test_long_per_position_series_are_summarised_not_listed() -> None:
    fastq = fastq_entry(fastq_reads())
    series = {**fastq.metadata, "per_position_mean_quality": [30.0 + position % 7 for position in range(150)]}
    fastq = ManifestEntry(**{**fastq.__dict__, "metadata": series})

    (document,) = dataset_documents(manifest(fastq), RECORD, uri_of)

    assert "per position mean quality: 150 values from 30.0 to 36.0" in document.text
    assert "31.0, 32.0" not in document.text


def test_nucleotide_runs_are_scrubbed_from_any_text_but_primers_stay() -> None:
    construct = "ATGGCCAAGCTTGACTACGATCGATCGGCTAGCTAGGACTTAA"
    primer = "AGATCGGAAGAGCACACGTC"
    table = entry("raw/EXP-1/constructs.csv", "csv", text=f"name,sequence\nprobe1,{construct}\nadapter,{primer}\n")

    (document,) = dataset_documents(manifest(table), RECORD, uri_of)

    assert construct not in document.text and "[sequence]" in document.text
    assert primer in document.text


def test_ids_are_the_manifest_keys_and_the_same_on_every_run() -> None:
    data = manifest(fastq_entry(fastq_reads()), entry("raw/EXP-1/notes.txt", "text", text="Sample sheet notes"))

    first = dataset_documents(data, RECORD, uri_of)
    second = dataset_documents(Manifest.from_json(data.to_json()), RECORD, uri_of)

    assert [document.id for document in first] == ["raw/EXP-1/notes.txt", "raw/EXP-1/run1/S1_R1.fastq"]
    assert first == second


def test_long_and_undecodable_keys_get_stable_distinct_ids_kendra_accepts() -> None:
    stem = "raw/EXP-1/" + "deep/" * 500
    long_a, long_b = stem + "a.txt", stem + "b.txt"
    odd = "raw/EXP-1/caf\udce9.txt"

    ids = [document_id(long_a), document_id(long_b), document_id(odd)]

    assert all(1 <= len(value) <= MAX_ID_LENGTH for value in ids)
    assert len(set(ids)) == 3
    assert ids == [document_id(long_a), document_id(long_b), document_id(odd)]
    assert ids[2].encode("utf-8")
    assert document_id("raw/EXP-1/a.txt") == "raw/EXP-1/a.txt"


def test_attributes_and_access_come_from_the_record_and_the_entry() -> None:
    summary = entry("processed/EXP-1/qc/summary.json", "json", metadata={"parsed": True, "type": "object"})

    fastq, whole = dataset_documents(
        Manifest.build("EXP-1", "processed", [fastq_entry(fastq_reads(), "processed/EXP-1/S1.fastq"), summary]),
        RECORD,
        uri_of,
    )

    assert fastq.attributes == {
        "experiment_id": "EXP-1",
        "sample_ids": ["S1"],
        "zone": "processed",
        "format": "fastq",
        "platform": "NovaSeq 6000",
        "group": "liver-lab",
        "created": datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
    }
    assert fastq.principals == ("group:liver-lab", "user:ada")
    assert fastq.uri == "s3://lab/processed/EXP-1/S1.fastq"
    assert fastq.title == "S1.fastq"
    # A file of no sample in particular belongs to all of the experiment's samples.
    assert whole.attributes["sample_ids"] == ["S1", "S2"]
    assert whole.attributes["created"] == datetime(2025, 1, 3, tzinfo=UTC)


def test_an_experiment_without_a_group_gives_documents_of_its_owner_and_people_only() -> None:
    record = ExperimentRecord(id="EXP-1", title="Open data", owner="Bob", custom={"people": ["Carol"]})
    nobodys = ExperimentRecord(id="EXP-1", title="Nobody's")
    data = manifest(entry("raw/EXP-1/a.txt", "text", text="hello"))

    (document,) = dataset_documents(data, record, uri_of)
    (orphan,) = dataset_documents(data, nobodys, uri_of)

    assert document.principals == ("user:bob", "user:carol")
    assert orphan.principals == ()  # admins only, never everyone
    assert "group" not in document.attributes and "platform" not in document.attributes


def test_the_catalogs_list_with_its_grants_is_used_when_given() -> None:
    data = manifest(entry("raw/EXP-1/a.txt", "text", text="hello"))

    (document,) = dataset_documents(data, RECORD, uri_of, principals={"group:liver-lab", "user:ada", "user:dan"})

    assert document.principals == ("group:liver-lab", "user:ada", "user:dan")


def test_files_with_nothing_to_search_get_no_document() -> None:
    data = manifest(
        entry("raw/EXP-1/_labmesh/notes.json", "json", metadata={"parsed": True}),
        entry("raw/EXP-1/empty.txt", "empty", metadata={"empty": True}),
        entry("raw/EXP-1/image.tiff", "tiff"),
        entry("raw/EXP-1/aligned.bam", "bam", text="not to be used"),
        entry(
            "raw/EXP-1/broken.fastq.gz",
            "fastq.gz",
            metadata={"reads_before_error": 3},
            error={"reason": "truncated", "detail": "cut"},
        ),
        entry("raw/EXP-1/readme.md", "md", text="# Run notes"),
    )

    documents = dataset_documents(data, RECORD, uri_of)

    assert [document.id for document in documents] == ["raw/EXP-1/broken.fastq.gz", "raw/EXP-1/readme.md"]
    assert "Extraction error: truncated: cut" in documents[0].text


def test_removed_ids_are_the_searchable_files_that_vanished() -> None:
    kept = entry("raw/EXP-1/a.txt", "text", text="a")
    gone = entry("raw/EXP-1/b.txt", "text", text="b")
    gone_image = entry("raw/EXP-1/c.tiff", "tiff")
    new = entry("raw/EXP-1/d.txt", "text", text="d")

    assert removed_document_ids(manifest(kept, gone, gone_image), manifest(kept, new)) == ["raw/EXP-1/b.txt"]
    assert removed_document_ids(None, manifest(kept)) == []
    assert removed_document_ids(manifest(kept), manifest(kept)) == []


def test_a_record_of_another_experiment_is_refused() -> None:
    with pytest.raises(ValueError, match="EXP-2"):
        dataset_documents(Manifest.build("EXP-2", "raw", []), RECORD, uri_of)


def test_index_dataset_keeps_the_index_in_step_with_the_dataset(tmp_path: Path) -> None:
    index = SqliteContentIndex(tmp_path / "catalog.sqlite")
    fastq = fastq_entry(fastq_reads())
    notes = entry("raw/EXP-1/S2_notes.txt", "text", text="Sample S2 was re-extracted after QC", sample_ids=("S2",))
    first = manifest(fastq, notes)

    report = index_dataset(index, first, None, RECORD, uri_of)
    again = index_dataset(index, first, first, RECORD, uri_of)

    assert sorted(report.indexed) == sorted(again.indexed) == [notes.key, fastq.key]
    assert index.document_ids() == [notes.key, fastq.key]
    liver_user, kidney_user = Viewer("bob", frozenset({"liver-lab"})), Viewer("carol", frozenset({"kidney-lab"}))
    assert [hit.id for hit in index.search("re-extracted", viewer=liver_user)] == [notes.key]
    assert [hit.id for hit in index.search("re-extracted", viewer=Viewer("ada"))] == [notes.key]
    assert index.search("re-extracted", viewer=kidney_user) == []
    assert [hit.id for hit in index.search("gc percent", filters=ContentFilter(sample_id="S1"))] == [fastq.key]

    second = manifest(fastq)
    report = index_dataset(index, second, first, RECORD, uri_of)

    assert report.deleted == (notes.key,)
    assert index.document_ids() == [fastq.key]


def test_a_file_described_only_by_its_mime_type_gets_no_document() -> None:
    blob = ManifestEntry(
        key="raw/EXP-1/run/blob.bin",
        size=10,
        sha256="0" * 64,
        format="binary",
        created="2026-11-01T00:00:00+00:00",
        metadata={"mime_type": "application/octet-stream"},
    )
    assert not is_searchable(blob)
