"""A manifest renders deterministically, so equal datasets give byte-identical JSON and equal digests.

Pinned here: entries are sorted by key whatever order they come in; a key
listed twice is refused; `to_json` ends in a newline and `from_json` reads it
back to an equal manifest; an unknown version is refused; totals, formats,
sample ids and errors summarise the entries; `entry` finds one by key.
A processed file's `produced_by` (the pipelines contract's section 5) round-trips
in exactly the contract's JSON shape, and is absent from the JSON of a file no
pipeline made, so manifests written before it existed keep their digest.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from labmesh_dagster.core.manifest import MANIFEST_VERSION, Manifest, ManifestEntry, Provenance, ProvenanceInput


def entry(key: str, **overrides: object) -> ManifestEntry:
    fields: dict[str, object] = {
        "key": key,
        "size": 10,
        "sha256": "ab" * 32,
        "format": "fastq",
        "created": "2024-03-01T10:00:00+00:00",
    }
    fields.update(overrides)
    return ManifestEntry(**fields)  # type: ignore[arg-type]


A = entry("raw/EXP-1/a.fastq", size=100, sample_ids=("S1",), metadata={"reads": 25, "lengths": [150, 151]})
B = entry("raw/EXP-1/b.csv", size=20, format="csv", sample_ids=("S2", "S1"), text="sample,value")
C = entry("raw/EXP-1/run/c.fastq.gz", size=5, error={"reason": "truncated", "detail": "ends mid-record"})


def test_entries_are_sorted_by_key_whatever_order_they_come_in() -> None:
    manifest = Manifest.build("EXP-1", "raw", [C, A, B])

    assert [item.key for item in manifest.entries] == [A.key, B.key, C.key]
    assert manifest.to_json() == Manifest.build("EXP-1", "raw", [B, C, A]).to_json()


def test_equal_content_gives_equal_json_and_digest_and_any_change_changes_it() -> None:
    first = Manifest.build("EXP-1", "raw", [A, B])
    second = Manifest.build("EXP-1", "raw", [B, A])

    assert first == second
    assert first.digest == second.digest
    assert len(first.digest) == 64
    assert Manifest.build("EXP-1", "raw", [A, entry(B.key, size=21)]).digest != first.digest
    assert Manifest.build("EXP-1", "processed", [A, B]).digest != first.digest


def test_a_key_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="lists a key twice"):
        Manifest.build("EXP-1", "raw", [A, entry(A.key, size=1)])


def test_the_json_is_canonical_with_a_version_and_no_timestamp_of_its_own() -> None:
    text = Manifest.build("EXP-1", "raw", [A]).to_json()
    data = json.loads(text)

    assert text.endswith("}\n")
    assert list(data) == sorted(data)
    assert data["version"] == MANIFEST_VERSION
    assert data["experiment_id"] == "EXP-1" and data["zone"] == "raw"
    assert data["files"][0]["sample_ids"] == ["S1"]
    assert data["files"][0]["derived_from"] == []


def test_from_json_reads_back_an_equal_manifest() -> None:
    derived = entry(
        "processed/EXP-1/qc.json",
        format="json",
        derived_from=("raw/EXP-1/a.fastq",),
        source_checksum="sha256:" + "cd" * 32,
    )
    manifest = Manifest.build("EXP-1", "raw", [A, B, C, derived])

    again = Manifest.from_json(manifest.to_json())

    assert again == manifest
    assert again.digest == manifest.digest
    assert Manifest.from_json(manifest.to_json().encode("utf-8")) == manifest
    assert again.entry(derived.key).derived_from == ("raw/EXP-1/a.fastq",)


def test_an_empty_manifest_round_trips() -> None:
    manifest = Manifest.build("EXP-1", "final", [])

    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.file_count == 0 and manifest.total_bytes == 0


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_an_unsupported_version_is_refused(version: object) -> None:
    data = Manifest.build("EXP-1", "raw", [A]).to_dict()
    data["version"] = version

    with pytest.raises(ValueError, match="unsupported manifest version"):
        Manifest.from_json(json.dumps(data))


def test_totals_formats_samples_and_errors_summarise_the_entries() -> None:
    manifest = Manifest.build("EXP-1", "raw", [A, B, C])

    assert manifest.file_count == 3
    assert manifest.total_bytes == 125
    assert manifest.formats == ["csv", "fastq"]
    assert manifest.sample_ids == ["S1", "S2"]
    assert manifest.errors == [C]


def test_entry_finds_a_file_by_key() -> None:
    manifest = Manifest.build("EXP-1", "raw", [A, B])

    assert manifest.entry(B.key) == B
    assert manifest.entry("raw/EXP-1/missing") is None
    assert B.name == "b.csv"


def test_an_entry_renders_every_field_as_dataclasses_asdict_did() -> None:
    """Manifests written before the entry rendered itself must keep their digest: no spurious revisions."""
    variants = ManifestEntry(
        key="raw/EXP-1/a.vcf",
        size=9,
        sha256="ab" * 32,
        format="vcf",
        created="2026-11-01T09:00:00+00:00",
        metadata={"samples": ["S1", "S2"], "contigs": {"chr1": 3}, "pairs": [("a", 1)]},
        sample_ids=("S1",),
        error={"reason": "partial"},
        derived_from=("landing/EXP-1/a.vcf",),
        source_checksum="crc64nvme:AAAA",
        text="variants",
        checksums={"crc64nvme": "AAAA", "crc32c": "BBBB"},
    )
    before = {name: value for name, value in dataclasses.asdict(variants).items() if name != "produced_by"} | {
        "sample_ids": ["S1"],
        "derived_from": ["landing/EXP-1/a.vcf"],
        "checksums": {"crc32c": "BBBB", "crc64nvme": "AAAA"},
    }
    assert set(variants.to_dict()) == {field.name for field in dataclasses.fields(ManifestEntry)} - {"produced_by"}
    assert json.dumps(variants.to_dict(), sort_keys=True) == json.dumps(before, sort_keys=True)


MADE_BY = Provenance(
    pipeline="fastp",
    version="1",
    invocation_id="fastp-3f2a9c1e0b7d4a55",
    engine="local",
    engine_run_id="pid-4242",
    run_id="0b4c-run",
    command_line="fastp --in1 /tmp/in/S1_R1.fastq.gz --json /tmp/out/S1_R1.fastp.json",
    tool_versions={"fastp": "0.23.2"},
    inputs=(ProvenanceInput("raw/EXP-1/fastq/S1_R1.fastq.gz", "cd" * 32),),
)


def test_a_processed_file_records_what_made_it_in_the_contracts_shape() -> None:
    made = entry("processed/EXP-1/fastp/S1_R1.fastp.json", format="json", produced_by=MADE_BY)

    assert made.to_dict()["produced_by"] == {
        "pipeline": "fastp",
        "version": "1",
        "invocation_id": "fastp-3f2a9c1e0b7d4a55",
        "engine": "local",
        "engine_run_id": "pid-4242",
        "run_id": "0b4c-run",
        "command_line": "fastp --in1 /tmp/in/S1_R1.fastq.gz --json /tmp/out/S1_R1.fastp.json",
        "tool_versions": {"fastp": "0.23.2"},
        "inputs": [{"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": "cd" * 32}],
    }
    manifest = Manifest.build("EXP-1", "processed", [made, A])
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest and again.digest == manifest.digest
    assert again.entry(made.key).produced_by == MADE_BY  # type: ignore[union-attr]
    assert again.entry(A.key).produced_by is None  # type: ignore[union-attr]


def test_a_file_no_pipeline_made_has_no_produced_by_in_its_json() -> None:
    """A raw or final manifest renders as it did before provenance existed, so its digest does not change."""
    data = json.loads(Manifest.build("EXP-1", "raw", [A]).to_json())

    assert "produced_by" not in data["files"][0]


def test_provenance_is_made_from_the_planners_invocation_and_the_runners_result() -> None:
    invocation = {
        "invocation_id": "fastp-3f2a9c1e0b7d4a55",
        "pipeline": {"name": "fastp", "version": "1", "engine": "local"},
        "experiment_id": "EXP-1",
        "label": "fastq/S1_R1",
        "inputs": [{"key": "raw/EXP-1/fastq/S1_R1.fastq.gz", "sha256": "cd" * 32, "role": "input"}],
        "staging_prefix": "processed/EXP-1/_labmesh/runs/0b4c-run/fastp-3f2a9c1e0b7d4a55/",
        "publish_prefix": "processed/EXP-1/fastp/fastq/",
    }
    result = {
        "invocation_id": "fastp-3f2a9c1e0b7d4a55",
        "status": "succeeded",
        "engine": "local",
        "engine_run_id": "pid-4242",
        "command_line": "fastp --in1 /tmp/in/S1_R1.fastq.gz --json /tmp/out/S1_R1.fastp.json",
        "tool_versions": {"fastp": "0.23.2"},
        "outputs": [],
    }

    assert Provenance.of_invocation(invocation, result, run_id="0b4c-run") == MADE_BY
