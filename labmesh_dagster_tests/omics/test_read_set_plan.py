"""Planning which raw files become which read sets, with names, samples and tokens the omics model accepts.

Pinned here: R1/R2 mates pair by name (``_R1``/``_R2`` with or without
``_001``, ``_1``/``_2``, ``.R1.``/``.R2.``) within one folder and one sample,
and anything unpaired imports alone; the sample is the file's own, else the
experiment's only one, and a file with no sample or several is skipped with
its reason, never named after itself; the subject comes from the sample's
``subject_id`` or ``subject``; only gzip FASTQ goes in (plain, bzip2, xz and
zstd FASTQ are skipped, each with its reason, and so is their mate); a BAM
without ``@SQ`` lines goes in as UBAM, an aligned BAM or a CRAM only with a
reference, a SAM never; errored files are skipped by name; the client token is
deterministic, order-independent and valid for the model; and a plan sent
through the store passes the fake's model checks end to end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from labmesh_dagster.connectors.omics import ImportedReadSet, ImportResult, ReadSetSource
from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.steps.read_set_import import import_client_token, read_set_metadata
from labmesh_dagster.steps.read_set_plan import ReadSetPlan, plan_read_sets
from labmesh_dagster_tests.omics.fake_omics import FakeOmicsClient, omics_model, service_problems

REFERENCE = "arn:aws:omics:eu-west-1:123456789012:referenceStore/9876543210/reference/1122334455"


def entry(
    path: str,
    fmt: str = "fastq.gz",
    samples: tuple[str, ...] = (),
    error: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> ManifestEntry:
    return ManifestEntry(
        key=f"raw/EXP-1/{path}",
        size=100,
        sha256="0" * 64,
        format=fmt,
        created="2025-01-06T09:00:00+00:00",
        metadata=dict(metadata or {}),
        sample_ids=samples,
        error={"reason": "truncated", "detail": "ends mid-record"} if error else None,
    )


def aligned(references: int) -> dict[str, Any]:
    """What extraction records of a BAM or CRAM header: how many @SQ lines it has."""
    return {"reference_count": references, "references": [f"chr{n}" for n in range(1, references + 1)]}


def uri_of(key: str) -> str:
    return "s3://labmesh-raw/" + key.split("/", 1)[1]


def record(*samples: Sample) -> ExperimentRecord:
    return ExperimentRecord(id="EXP-1", title="Liver RNA-seq", samples=samples)


def full_plan(
    entries: Iterable[ManifestEntry], experiment: ExperimentRecord | None = None, reference: str | None = None
) -> ReadSetPlan:
    """The plan for an experiment with one sample, S1, unless another record is given."""
    manifest = Manifest.build("EXP-1", "raw", entries)
    return plan_read_sets(manifest, experiment or record(Sample("S1")), uri_of, reference_arn=reference)


def plan(
    entries: Iterable[ManifestEntry], experiment: ExperimentRecord | None = None, reference: str | None = None
) -> list[ReadSetSource]:
    return list(full_plan(entries, experiment, reference).sources)


def skipped(plan: ReadSetPlan) -> dict[str, str]:
    return {file.key.rsplit("/", 1)[1]: file.reason for file in plan.skipped}


def files_of(sources: list[ReadSetSource]) -> list[tuple[str, ...]]:
    return [tuple(uri.rsplit("/", 1)[1] for uri in source.files) for source in sources]


@pytest.mark.parametrize(
    ("r1", "r2", "name"),
    [
        ("S1_L001_R1_001.fastq.gz", "S1_L001_R2_001.fastq.gz", "S1_L001"),
        ("S1_R1.fastq.gz", "S1_R2.fastq.gz", "S1"),
        ("SRR1234_1.fastq.gz", "SRR1234_2.fastq.gz", "SRR1234"),
        ("S1.R1.fq", "S1.R2.fq", "S1"),
        ("S1_r1.fq.gz", "S1_r2.fq.gz", "S1"),
    ],
)
def test_mates_pair_by_name_into_one_read_set_r1_first(r1: str, r2: str, name: str) -> None:
    sources = plan([entry(f"run1/{r2}", samples=("S1",)), entry(f"run1/{r1}", samples=("S1",))])

    assert files_of(sources) == [(r1, r2)]
    assert sources[0].name == name
    assert sources[0].file_type == "FASTQ"


def test_unpaired_and_ambiguous_files_import_alone() -> None:
    sources = plan(
        [
            entry("run1/A_R1.fastq.gz"),
            entry("run1/B.fastq.gz"),
            entry("run1/C_R1.fastq.gz"),
            entry("run1/C_R1.fq.gz"),
            entry("run1/C_R2.fastq.gz"),
        ]
    )

    assert files_of(sources) == [
        ("A_R1.fastq.gz",),
        ("B.fastq.gz",),
        ("C_R1.fastq.gz",),
        ("C_R1.fq.gz",),
        ("C_R2.fastq.gz",),
    ]
    assert [source.name for source in sources] == ["A_R1", "B", "C_R1", "C_R1", "C_R2"]


def test_mates_pair_only_within_one_folder_one_sample_and_one_chunk() -> None:
    sources = plan(
        [
            entry("run1/X_R1.fastq.gz", samples=("S1",)),
            entry("run2/X_R2.fastq.gz", samples=("S1",)),
            entry("run1/Y_R1.fastq.gz", samples=("S1",)),
            entry("run1/Y_R2.fastq.gz", samples=("S2",)),
            entry("run1/Z_R1_001.fastq.gz", samples=("S3",)),
            entry("run1/Z_R2_001.fastq.gz", samples=("S3",)),
            entry("run1/Z_R1_002.fastq.gz", samples=("S3",)),
            entry("run1/Z_R2_002.fastq.gz", samples=("S3",)),
        ]
    )

    assert files_of(sources) == [
        ("X_R1.fastq.gz",),
        ("Y_R1.fastq.gz",),
        ("Y_R2.fastq.gz",),
        ("Z_R1_001.fastq.gz", "Z_R2_001.fastq.gz"),
        ("Z_R1_002.fastq.gz", "Z_R2_002.fastq.gz"),
        ("X_R2.fastq.gz",),
    ]
    assert [source.name for source in sources[3:5]] == ["Z", "Z_002"]


def test_the_sample_is_the_files_own_else_the_experiments_only_one() -> None:
    own = plan([entry("S7_R1.fq.gz", samples=("S7",))], record(Sample("S1"), Sample("S7")))
    only = plan([entry("lane1_R1.fq.gz"), entry("lane1_R2.fq.gz")], record(Sample("S1")))

    assert [(s.sample_id, s.subject_id) for s in own + only] == [("S7", "S7"), ("S1", "S1")]


def test_a_file_without_one_sample_is_skipped_and_never_named_after_itself() -> None:
    """HealthOmics needs a sample and a subject per read set; the file name is neither."""
    unlinked = full_plan([entry("lane1_R1.fq.gz"), entry("lane1_R2.fq.gz")], record(Sample("S1"), Sample("S2")))
    nobody = full_plan([entry("lane2.fq.gz")], record())
    several = full_plan([entry("S1_S2_mix.fq.gz", samples=("S1", "S2"))], record(Sample("S1"), Sample("S2")))

    assert unlinked.sources == nobody.sources == several.sources == ()
    reasons = skipped(unlinked) | skipped(nobody) | skipped(several)
    assert set(reasons) == {"lane1_R1.fq.gz", "lane1_R2.fq.gz", "lane2.fq.gz", "S1_S2_mix.fq.gz"}
    assert "no sample id" in reasons["lane1_R1.fq.gz"] and "2 samples (S1, S2)" in reasons["lane1_R1.fq.gz"]
    assert "lists no samples" in reasons["lane2.fq.gz"]
    assert "2 samples (S1, S2): a read set is one sample's" in reasons["S1_S2_mix.fq.gz"]


def test_the_subject_comes_from_the_samples_subject_id_or_subject() -> None:
    experiment = record(Sample("S1", attributes={"subject_id": "P-007"}), Sample("S2", attributes={"subject": 42}))

    sources = plan([entry("S1.fq.gz", samples=("S1",)), entry("S2.fq.gz", samples=("S2",))], experiment)

    assert [(source.sample_id, source.subject_id) for source in sources] == [("S1", "P-007"), ("S2", "42")]


def test_every_read_set_is_tagged_with_its_experiment_and_zone_and_described() -> None:
    (source,) = plan([entry("S1.fastq.gz")])

    assert source.tags == {"experimentId": "EXP-1", "labmesh": "raw"}
    assert source.description == "Liver RNA-seq (labmesh experiment EXP-1)"
    assert source.files == ("s3://labmesh-raw/EXP-1/S1.fastq.gz",)


def test_errored_files_are_skipped_by_name_with_their_mate_and_other_files_are_not_sequencing() -> None:
    result = full_plan(
        [
            entry("S1_R1.fastq.gz", error=True),
            entry("S1_R2.fastq.gz"),
            entry("S2.fastq.gz"),
            entry("calls.vcf.gz", fmt="vcf.gz"),
            entry("notes.txt", fmt="text"),
        ]
    )

    assert files_of(list(result.sources)) == [("S2.fastq.gz",)]
    assert skipped(result) == {
        "S1_R1.fastq.gz": "its extraction failed (truncated), so the import job would fail on it too",
        "S1_R2.fastq.gz": "its mate S1_R1.fastq.gz is not imported (its extraction failed (truncated), so the "
        "import job would fail on it too)",
    }


@pytest.mark.parametrize(
    ("fmt", "what"),
    [
        ("fastq", "without compression"),
        ("fastq.bz2", "with bzip2"),
        ("fastq.xz", "with xz"),
        ("fastq.zst", "with zstd"),
    ],
)
def test_only_gzip_fastq_goes_in_and_other_fastq_is_skipped_with_why(fmt: str, what: str) -> None:
    """HealthOmics sequence stores take "FASTQ (gzip-only)": the format read from the bytes decides, not the name."""
    result = full_plan([entry("S1_R1.fastq.gz", fmt=fmt), entry("S1_R2.fastq.gz"), entry("S2.fq", fmt="fastq.gz")])

    assert files_of(list(result.sources)) == [("S2.fq",)]
    reasons = skipped(result)
    assert what in reasons["S1_R1.fastq.gz"] and "gzip-compressed only" in reasons["S1_R1.fastq.gz"]
    assert reasons["S1_R2.fastq.gz"].startswith("its mate S1_R1.fastq.gz is not imported")


def test_a_bam_without_sq_lines_goes_in_as_ubam_without_a_reference() -> None:
    files = [entry("unaligned/S1.bam", fmt="bam", metadata=aligned(0))]

    without, with_reference = plan(files), plan(files, reference=REFERENCE)

    assert [(s.file_type, s.reference_arn) for s in without + with_reference] == [("UBAM", None), ("UBAM", None)]


def test_aligned_bam_and_cram_go_in_only_with_a_reference_which_fastq_never_carries() -> None:
    files = [
        entry("aligned/S1.bam", fmt="bam", metadata=aligned(25)),
        entry("aligned/S2.cram", fmt="cram", metadata=aligned(3)),
        entry("S3.fq.gz"),
    ]

    without = full_plan(files)
    with_reference = plan(files, reference=REFERENCE)

    assert files_of(list(without.sources)) == [("S3.fq.gz",)]
    assert "aligned BAM (25 reference sequences)" in skipped(without)["S1.bam"]
    assert "LABMESH_OMICS_REFERENCE_ARN" in skipped(without)["S2.cram"]
    assert [(s.file_type, s.name, s.reference_arn) for s in with_reference] == [
        ("FASTQ", "S3", None),
        ("BAM", "S1", REFERENCE),
        ("CRAM", "S2", REFERENCE),
    ]


def test_sam_an_unread_header_and_an_unaligned_cram_are_skipped_with_why() -> None:
    result = full_plan(
        [
            entry("S1.sam", fmt="sam", metadata=aligned(2)),
            entry("S2.bam", fmt="bam"),
            entry("S3.cram", fmt="cram", metadata=aligned(0)),
        ],
        reference=REFERENCE,
    )

    assert result.sources == ()
    reasons = skipped(result)
    assert "convert it to BAM" in reasons["S1.sam"]
    assert "header was not read" in reasons["S2.bam"]
    assert "unaligned CRAM" in reasons["S3.cram"]


def test_names_and_ids_are_made_valid_for_the_model() -> None:
    long_sample = "S" * 200
    experiment = ExperimentRecord(id="EXP-1", title="Tab\tand\nnewline " + "t" * 300, samples=(Sample(long_sample),))
    (source,) = plan([entry(("n" * 150) + "\x07_R1.fastq.gz")], experiment)

    item_shape = omics_model().operation_model("StartReadSetImportJob").input_shape.members["sources"].member
    item = {
        "sourceFiles": {"source1": source.files[0]},
        "sourceFileType": source.file_type,
        "subjectId": source.subject_id,
        "sampleId": source.sample_id,
        "name": source.name,
        "description": source.description,
        "tags": dict(source.tags),
    }
    assert service_problems(item, item_shape) == []
    assert len(source.name) == 127 and len(source.sample_id) == 127 and len(source.description) == 255
    assert source.description.startswith("Tab_and_newline")


def test_the_client_token_is_deterministic_order_independent_and_valid_for_the_model() -> None:
    sources = plan([entry("A_R1.fq.gz"), entry("A_R2.fq.gz"), entry("B.fq.gz")])
    token = import_client_token("EXP-1", sources)
    token_shape = omics_model().operation_model("StartReadSetImportJob").input_shape.members["clientToken"]
    longest = import_client_token("E" * 128, sources)

    assert token == import_client_token("EXP-1", list(reversed(sources)))
    assert token.startswith("labmesh-EXP-1-")
    assert token != import_client_token("EXP-2", sources)
    assert token != import_client_token("EXP-1", sources[:1])
    assert service_problems(token, token_shape) == [] and service_problems(longest, token_shape) == []
    assert len(longest) <= 127


def test_a_plan_goes_through_the_store_and_the_fakes_model_checks_to_read_set_ids() -> None:
    experiment = record(Sample("S1", attributes={"subject": "P-1"}))
    sources = plan([entry("run1/S1_L001_R1_001.fastq.gz"), entry("run1/S1_L001_R2_001.fastq.gz")], experiment)
    client = FakeOmicsClient(polls_to_finish=1)
    store = HealthOmicsSequenceStore(
        client, sequence_store_id="1234567890", role_arn="arn:aws:iam::123456789012:role/omics-import"
    )

    job_id = store.start_import(sources, client_token=import_client_token("EXP-1", sources))
    result = store.wait_for_import(job_id, timeout_seconds=60, poll_seconds=5, sleep=lambda _: None)

    (read_set,) = result.read_sets
    assert read_set_metadata(result) == {
        "s3://labmesh-raw/EXP-1/run1/S1_L001_R1_001.fastq.gz": read_set.read_set_id,
        "s3://labmesh-raw/EXP-1/run1/S1_L001_R2_001.fastq.gz": read_set.read_set_id,
    }


def test_read_set_metadata_leaves_out_sources_without_a_read_set() -> None:
    result = ImportResult(
        job_id="4000000000",
        status="COMPLETED_WITH_FAILURES",
        read_sets=(
            ImportedReadSet(("s3://b/EXP-1/a.fq",), "5000000000", "FINISHED"),
            ImportedReadSet(("s3://b/EXP-1/b.fq",), None, "FAILED", "not FASTQ"),
        ),
    )

    assert read_set_metadata(result) == {"s3://b/EXP-1/a.fq": "5000000000"}
