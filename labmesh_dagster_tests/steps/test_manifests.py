"""A manifest is rebuilt from what a zone holds, reading each file once and unchanged files not at all.

Pinned here: `samples_in_path` finds sample ids as whole tokens, case-blind
(``S1`` in ``S1_R1.fq``, not in ``S10_R1.fq``); `describe_object` gives the
sha256 of every byte plus the extractor's format, metadata and errors;
`build_manifest` lists the experiment's folder minus labmesh's own files,
reuses a previous entry without opening the file when size, modification time
and samples are unchanged, re-reads what changed or was promoted just now, and
skips a file that vanishes while it works; `provenance` stamps each file
with the pipeline run that made it, on new and reused entries alike; `write_manifest` leaves an identical
manifest untouched (same mtime); `read_manifest` treats a damaged manifest as
none.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

import pytest

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import ObjectKey, Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest, Provenance, ProvenanceInput
from labmesh_dagster.steps.manifests import (
    build_manifest,
    describe_object,
    read_manifest,
    samples_in_path,
    write_manifest,
)

FASTQ = b"@r1\nACGT\n+\nIIII\n@r2\nGGCC\n+\nIIII\n"


class CountingStore(LocalObjectStore):
    """Records every object opened, to prove what was (not) read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    def open(self, key: ObjectKey) -> AbstractContextManager[BinaryIO]:
        self.opened.append(str(key))
        return super().open(key)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "store")


def raw(key: str) -> ObjectKey:
    return ObjectKey(Zone.RAW, key)


def bump_mtime(store: LocalObjectStore, key: ObjectKey) -> None:
    path = store.path(key)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize(
    ("path", "sample_ids", "expected"),
    [
        ("S1_R1.fq", ["S1", "S10"], ("S1",)),
        ("S10_R1.fq", ["S1", "S10"], ("S10",)),
        ("run/S1/reads.fq", ["S1"], ("S1",)),
        ("s1-r1.fq.gz", ["S1"], ("S1",)),
        ("S1.fq", ["S1"], ("S1",)),
        ("XS1_R1.fq", ["S1"], ()),
        ("S1a.fq", ["S1"], ()),
        ("S-001_R1.fq", ["S-001", "S-0011"], ("S-001",)),
        ("S-0011_R1.fq", ["S-001", "S-0011"], ("S-0011",)),
        ("pool_S1_S2.fq", ["S2", "S1", "S3"], ("S2", "S1")),
        ("sample(1)+x.fq", ["sample(1)"], ("sample(1)",)),
        ("summary.csv", ["S1", "S2"], ()),
    ],
)
def test_sample_ids_are_found_in_paths_as_whole_tokens(path: str, sample_ids: list[str], expected: tuple) -> None:
    assert samples_in_path(path, sample_ids) == expected


def test_describe_object_hashes_every_byte_and_keeps_what_the_extractor_found(store: CountingStore) -> None:
    info = store.put(raw("EXP-1/run/S1_R1.fastq"), FASTQ)

    entry = describe_object(store, info, ["S1", "S2"], derived_from=("landing/EXP-1/x",), source_checksum="sha256:cafe")

    assert entry.key == "raw/EXP-1/run/S1_R1.fastq"
    assert entry.size == len(FASTQ)
    assert entry.sha256 == hashlib.sha256(FASTQ).hexdigest()
    assert entry.format == "fastq"
    assert entry.metadata["reads"] == 2
    assert entry.sample_ids == ("S1",)
    assert entry.created == info.modified.isoformat()
    assert entry.derived_from == ("landing/EXP-1/x",)
    assert entry.source_checksum == "sha256:cafe" and entry.checksums == {}
    assert entry.error is None
    assert store.opened == ["raw/EXP-1/run/S1_R1.fastq"]


def test_describe_object_hashes_the_bytes_an_extractor_leaves_unread(store: CountingStore) -> None:
    content = os.urandom(3 * 1024 * 1024)
    info = store.put(raw("EXP-1/blob.bin"), content)

    assert describe_object(store, info, []).sha256 == hashlib.sha256(content).hexdigest()


def test_a_file_the_extractor_cannot_read_is_described_with_its_error(store: CountingStore) -> None:
    info = store.put(raw("EXP-1/S1.fastq"), b"@r\nACGT\n+\nII")

    entry = describe_object(store, info, ["S1"])

    assert entry.error is not None and entry.error["reason"] == "truncated"
    assert entry.sha256 == hashlib.sha256(b"@r\nACGT\n+\nII").hexdigest()


def test_build_manifest_describes_the_experiment_folder_without_labmesh_files(store: CountingStore) -> None:
    store.put(raw("EXP-1/S1_R1.fastq"), FASTQ)
    store.put(raw("EXP-1/run/summary.csv"), b"a,b\n1,2\n")
    store.put(raw("EXP-1/_labmesh/manifest.json"), b"{}")
    store.put(raw("EXP-10/S1_R1.fastq"), FASTQ)

    manifest = build_manifest(store, Zone.RAW, "EXP-1", ["S1"])

    assert (manifest.experiment_id, manifest.zone) == ("EXP-1", "raw")
    assert [entry.key for entry in manifest.entries] == ["raw/EXP-1/S1_R1.fastq", "raw/EXP-1/run/summary.csv"]
    assert manifest.formats == ["csv", "fastq"]
    assert manifest.sample_ids == ["S1"]
    assert sorted(store.opened) == ["raw/EXP-1/S1_R1.fastq", "raw/EXP-1/run/summary.csv"]


def test_unchanged_files_keep_their_entries_without_being_read_again(store: CountingStore) -> None:
    store.put(raw("EXP-1/S1_R1.fastq"), FASTQ)
    store.put(raw("EXP-1/S2_R1.fastq"), FASTQ)
    first = build_manifest(store, Zone.RAW, "EXP-1", ["S1", "S2"])
    store.opened.clear()

    again = build_manifest(store, Zone.RAW, "EXP-1", ["S1", "S2"], previous=first)

    assert store.opened == []
    assert again == first
    assert again.digest == first.digest


def test_changed_new_and_removed_files_are_noticed(store: CountingStore) -> None:
    store.put(raw("EXP-1/kept.txt"), b"kept")
    store.put(raw("EXP-1/touched.txt"), b"same size")
    store.put(raw("EXP-1/removed.txt"), b"bye")
    first = build_manifest(store, Zone.RAW, "EXP-1", [])
    store.opened.clear()

    store.put(raw("EXP-1/touched.txt"), b"SAME SIZE")
    bump_mtime(store, raw("EXP-1/touched.txt"))
    store.put(raw("EXP-1/added.txt"), b"new")
    store.delete(raw("EXP-1/removed.txt"))
    again = build_manifest(store, Zone.RAW, "EXP-1", [], previous=first)

    assert sorted(store.opened) == ["raw/EXP-1/added.txt", "raw/EXP-1/touched.txt"]
    assert [entry.key for entry in again.entries] == [
        "raw/EXP-1/added.txt",
        "raw/EXP-1/kept.txt",
        "raw/EXP-1/touched.txt",
    ]
    assert again.entry("raw/EXP-1/touched.txt").sha256 == hashlib.sha256(b"SAME SIZE").hexdigest()  # type: ignore[union-attr]


def test_a_changed_sample_list_re_attributes_files_without_re_reading_them(store: CountingStore) -> None:
    store.put(raw("EXP-1/S1_R1.fastq"), FASTQ)
    store.put(raw("EXP-1/S2_R1.fastq"), FASTQ)
    first = build_manifest(store, Zone.RAW, "EXP-1", ["S1"])
    store.opened.clear()

    again = build_manifest(store, Zone.RAW, "EXP-1", ["S2"], previous=first)

    assert store.opened == []
    assert again.entry("raw/EXP-1/S2_R1.fastq").sample_ids == ("S2",)  # type: ignore[union-attr]
    assert again.entry("raw/EXP-1/S1_R1.fastq").sample_ids == ()  # type: ignore[union-attr]
    assert again.entry("raw/EXP-1/S1_R1.fastq").metadata == first.entry("raw/EXP-1/S1_R1.fastq").metadata  # type: ignore[union-attr]


def test_files_promoted_just_now_are_re_read_and_keep_their_landing_checksum(store: CountingStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"a")
    first = build_manifest(store, Zone.RAW, "EXP-1", [], source_checksums={"raw/EXP-1/a.txt": "sha256:landing"})
    store.opened.clear()

    again = build_manifest(store, Zone.RAW, "EXP-1", [], previous=first)
    promoted_again = build_manifest(
        store, Zone.RAW, "EXP-1", [], previous=first, source_checksums={"raw/EXP-1/a.txt": "sha256:newer"}
    )

    assert first.entry("raw/EXP-1/a.txt").source_checksum == "sha256:landing"  # type: ignore[union-attr]
    assert again.entry("raw/EXP-1/a.txt").source_checksum == "sha256:landing"  # type: ignore[union-attr]
    assert promoted_again.entry("raw/EXP-1/a.txt").source_checksum == "sha256:newer"  # type: ignore[union-attr]
    assert store.opened == ["raw/EXP-1/a.txt"]


def test_lineage_is_applied_to_reused_entries_too(store: CountingStore) -> None:
    store.put(ObjectKey(Zone.PROCESSED, "EXP-1/S1.qc.json"), b'{"reads": 2}')
    first = build_manifest(store, Zone.PROCESSED, "EXP-1", ["S1"])
    store.opened.clear()

    again = build_manifest(
        store, Zone.PROCESSED, "EXP-1", ["S1"], previous=first, lineage=lambda key: (f"raw/EXP-1/{key.name}.src",)
    )

    assert store.opened == []
    assert again.entries[0].derived_from == ("raw/EXP-1/S1.qc.json.src",)


def made_by(version: str) -> Provenance:
    return Provenance(
        pipeline="fastp",
        version=version,
        invocation_id=f"fastp-{version}",
        engine="local",
        run_id=f"run-{version}",
        command_line="fastp --in1 in.fq",
        tool_versions={"fastp": "0.23.2"},
        inputs=(ProvenanceInput("raw/EXP-1/S1.fq", "ab" * 32),),
    )


def test_provenance_stamps_new_files_and_is_refreshed_on_reused_entries(store: CountingStore) -> None:
    store.put(ObjectKey(Zone.PROCESSED, "EXP-1/fastp/S1.fastp.json"), b'{"summary": {}}')
    store.put(ObjectKey(Zone.PROCESSED, "EXP-1/notes.txt"), b"by hand")

    def provenance_of(version: str) -> Callable[[ObjectKey], Provenance | None]:
        return lambda key: made_by(version) if key.name.endswith(".fastp.json") else None

    first = build_manifest(store, Zone.PROCESSED, "EXP-1", ["S1"], provenance=provenance_of("1"))
    store.opened.clear()
    again = build_manifest(store, Zone.PROCESSED, "EXP-1", ["S1"], previous=first, provenance=provenance_of("2"))

    assert first.entry("processed/EXP-1/fastp/S1.fastp.json").produced_by == made_by("1")  # type: ignore[union-attr]
    assert store.opened == []
    assert again.entry("processed/EXP-1/fastp/S1.fastp.json").produced_by == made_by("2")  # type: ignore[union-attr]
    assert again.entry("processed/EXP-1/notes.txt").produced_by is None  # type: ignore[union-attr]
    assert build_manifest(store, Zone.PROCESSED, "EXP-1", ["S1"], previous=again).entries[0].produced_by is None


class VanishingStore(CountingStore):
    """Another run deletes ``gone.txt`` between the listing and the read."""

    def open(self, key: ObjectKey) -> AbstractContextManager[BinaryIO]:
        if key.name == "gone.txt":
            self.delete(key)
        return super().open(key)


def test_a_file_that_vanishes_while_the_manifest_is_built_is_left_out(tmp_path: Path) -> None:
    store = VanishingStore(tmp_path / "store")
    store.put(raw("EXP-1/gone.txt"), b"x")
    store.put(raw("EXP-1/kept.txt"), b"y")

    manifest = build_manifest(store, Zone.RAW, "EXP-1", [])

    assert [entry.key for entry in manifest.entries] == ["raw/EXP-1/kept.txt"]


def test_an_empty_folder_gives_an_empty_manifest(store: CountingStore) -> None:
    assert build_manifest(store, Zone.FINAL, "EXP-1", ["S1"]) == Manifest.build("EXP-1", "final", [])


def test_write_manifest_then_read_manifest_round_trips(store: CountingStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"a")
    manifest = build_manifest(store, Zone.RAW, "EXP-1", [])

    key = write_manifest(store, manifest)

    assert key == manifest_key(Zone.RAW, "EXP-1")
    assert store.read_bytes(key) == manifest.to_json().encode("utf-8")
    assert read_manifest(store, Zone.RAW, "EXP-1") == manifest


def test_write_manifest_does_not_rewrite_identical_content(store: CountingStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"a")
    manifest = build_manifest(store, Zone.RAW, "EXP-1", [])
    key = write_manifest(store, manifest)
    before = store.stat(key)
    mtime_ns = store.path(key).stat().st_mtime_ns

    write_manifest(store, build_manifest(store, Zone.RAW, "EXP-1", [], previous=manifest))

    assert store.stat(key) == before
    assert store.path(key).stat().st_mtime_ns == mtime_ns


def test_write_manifest_replaces_different_content(store: CountingStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"a")
    key = write_manifest(store, build_manifest(store, Zone.RAW, "EXP-1", []))
    before = store.stat(key)

    store.put(raw("EXP-1/b.txt"), b"b")
    changed = build_manifest(store, Zone.RAW, "EXP-1", [])
    write_manifest(store, changed)

    assert store.stat(key).etag != before.etag
    assert read_manifest(store, Zone.RAW, "EXP-1") == changed


@pytest.mark.parametrize("content", [b"not json", b'{"version": 99}', b'{"version": 1}', b"\xff\xfe"])
def test_a_damaged_manifest_reads_as_none_so_it_is_rebuilt(store: CountingStore, content: bytes) -> None:
    store.put(manifest_key(Zone.RAW, "EXP-1"), content)

    assert read_manifest(store, Zone.RAW, "EXP-1") is None


def test_a_missing_manifest_reads_as_none(store: CountingStore) -> None:
    assert read_manifest(store, Zone.RAW, "EXP-1") is None


ILLUMINA_READS = b"@A00123:45:HJK7LDSX2:1:1101:1000:2000 1:N:0:ACGT\nACGT\n+\nIIII\n"
RUN_INFO = b"""<?xml version="1.0"?>
<RunInfo Version="5"><Run Id="261101_A00123_0045_AHJK7LDSX2" Number="45">
<Flowcell>HJK7LDSX2</Flowcell><Instrument>A00123</Instrument><Date>11/1/2026 9:00:00 AM</Date>
<Reads><Read Number="1" NumCycles="4" IsIndexedRead="N"/></Reads>
<FlowcellLayout LaneCount="1" SurfaceCount="1" SwathCount="1" TileCount="1"/></Run></RunInfo>
"""


def test_the_files_of_a_run_are_linked_in_the_manifest_and_relinked_when_one_arrives(store: CountingStore) -> None:
    store.put(raw("EXP-1/run/RunInfo.xml"), RUN_INFO)
    store.put(raw("EXP-1/run/S1_S1_L001_R1_001.fastq"), ILLUMINA_READS)
    first = build_manifest(store, Zone.RAW, "EXP-1", ["S1"])
    by_key = {entry.key: entry for entry in first.entries}
    assert by_key["raw/EXP-1/run/S1_S1_L001_R1_001.fastq"].metadata["links"]["run"] == "raw/EXP-1/run/RunInfo.xml"
    assert "mate" not in by_key["raw/EXP-1/run/S1_S1_L001_R1_001.fastq"].metadata["links"]

    store.put(raw("EXP-1/run/S1_S1_L001_R2_001.fastq"), ILLUMINA_READS.replace(b" 1:N", b" 2:N"))
    store.opened.clear()
    again = build_manifest(store, Zone.RAW, "EXP-1", ["S1"], previous=first)

    assert store.opened == ["raw/EXP-1/run/S1_S1_L001_R2_001.fastq"]
    links = {entry.key: entry.metadata.get("links", {}) for entry in again.entries}
    assert links["raw/EXP-1/run/S1_S1_L001_R1_001.fastq"]["mate"] == "raw/EXP-1/run/S1_S1_L001_R2_001.fastq"
    assert links["raw/EXP-1/run/S1_S1_L001_R2_001.fastq"]["pair_consistent"] is True
    assert links["raw/EXP-1/run/RunInfo.xml"]["fastq_file_count"] == 2


def test_samples_named_inside_a_file_attribute_it_to_the_experiments_samples(store: CountingStore) -> None:
    store.put(raw("EXP-1/plate/od600.csv"), b"well,sample_id,od600\nA1,s1,0.4\nA2,S9,0.5\n")
    manifest = build_manifest(store, Zone.RAW, "EXP-1", ["S1", "S2"])
    entry = manifest.entries[0]
    assert entry.metadata["samples_in_file"] == ["s1", "S9"]
    assert entry.sample_ids == ("S1",)


def test_a_fastq_the_sample_sheet_assigns_to_a_sample_belongs_to_it(store: CountingStore) -> None:
    sheet = b"[Header]\nIEMFileVersion,4\n[Data]\nSample_ID,Sample_Name,index\nS-001,liver,ACGT\n"
    store.put(raw("EXP-1/run/SampleSheet.csv"), sheet)
    store.put(raw("EXP-1/run/fastq/liver_S1_L001_R1_001.fastq"), ILLUMINA_READS)
    manifest = build_manifest(store, Zone.RAW, "EXP-1", ["S-001", "S-002"])
    by_key = {entry.key: entry for entry in manifest.entries}
    reads = by_key["raw/EXP-1/run/fastq/liver_S1_L001_R1_001.fastq"]
    assert reads.metadata["links"]["sample_sheet"] == "raw/EXP-1/run/SampleSheet.csv"
    assert reads.sample_ids == ("S-001",)
    assert by_key["raw/EXP-1/run/SampleSheet.csv"].sample_ids == ("S-001",)


class S3LikeStore(CountingStore):
    """Every object is described by a worker thread, as on S3, where each read is a round trip."""

    inline_below_bytes = 0


def test_files_described_by_worker_threads_are_listed_in_key_order_each_with_its_own_checksum(tmp_path: Path) -> None:
    store = S3LikeStore(tmp_path / "store")
    contents = {f"run/S{number:02}_R1.fastq": FASTQ * (number + 1) for number in range(12)}
    for relative, content in contents.items():
        store.put(raw(f"EXP-1/{relative}"), content)

    manifest = build_manifest(store, Zone.RAW, "EXP-1", [f"S{number:02}" for number in range(12)])

    assert [entry.key for entry in manifest.entries] == [f"raw/EXP-1/{relative}" for relative in sorted(contents)]
    for entry in manifest.entries:
        content = contents[entry.key.removeprefix("raw/EXP-1/")]
        assert entry.sha256 == hashlib.sha256(content).hexdigest()
        assert entry.metadata["reads"] == content.count(b"@r")
