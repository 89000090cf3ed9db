"""Bad input is reported clearly, quarantined where it is data, and never stops the good input beside it.

Contract: an unreadable or invalid ELN record is logged by name and creates no
partition while valid records proceed; landing files under an invalid or
unknown experiment id are moved to quarantine with a reason (never deleted) and
reported by `labmesh status`; a corrupt FASTQ is still promoted and cataloged,
with the extraction error in its manifest entry.
"""

from __future__ import annotations

import gzip

import dagster as dg
import pytest

from labmesh_dagster import cli
from labmesh_dagster.core.keys import Zone, manifest_key
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.settings import Settings
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster_tests.conftest import DATA, Lab, make_settings

GOOD = {"id": "EXP-1", "title": "Good experiment", "samples": ["S1"], "platform": "MiSeq"}


def test_invalid_and_unreadable_records_are_skipped_by_name_and_the_rest_proceed(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.write_record("good.yaml", GOOD)
    lab.write_record("bad-id.json", {"id": "../etc", "title": "Path escape"})
    lab.write_record("no-title.yaml", {"id": "EXP-2"})
    lab.write_record("broken.yaml", "id: [unclosed\n")
    lab.write_record("export.json", {"experiments": [{"id": "EXP-3", "title": "In an export"}, {"title": "no id"}]})

    runs = lab.run_sensor("eln_sensor")

    assert lab.partitions() == ["EXP-1", "EXP-3"]
    assert all(run.success for run in runs) and len(runs) == 2
    errors = "\n".join(line for line in capsys.readouterr().err.splitlines() if " - ERROR - " in line)
    assert "bad-id.json" in errors and "invalid experiment id '../etc'" in errors
    assert "no-title.yaml" in errors and "has no title" in errors
    assert "broken.yaml" in errors and "cannot be read" in errors
    assert "export.json[1]" in errors and "no experiment id" in errors


def test_landing_files_without_a_valid_registered_experiment_are_quarantined_not_lost(
    lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.write_record("good.yaml", GOOD)
    lab.run_sensor("eln_sensor")
    lab.land("bad id/reads.fastq", None, b"@r\nACGT\n+\nIIII\n")
    lab.land("loose-file.fastq", None, b"@r\nACGT\n+\nIIII\n")
    lab.land("UNKNOWN-9", "reads.fastq", b"@r\nACGT\n+\nIIII\n")
    lab.land("EXP-1", "S1.fastq", b"@r\nACGT\n+\nIIII\n")

    runs = lab.run_sensor("landing_sensor")

    assert len(runs) == 1 and runs[0].success
    assert lab.keys(Zone.RAW, "EXP-1") == ["EXP-1/S1.fastq", "EXP-1/_labmesh/manifest.json"]
    quarantined = {item.original_key: item for item in list_quarantine(lab.store)}
    assert set(quarantined) == {
        "landing/bad id/reads.fastq",
        "landing/loose-file.fastq",
        "landing/UNKNOWN-9/reads.fastq",
    }
    assert "invalid experiment id 'bad id'" in quarantined["landing/bad id/reads.fastq"].reason
    assert "not inside an experiment folder" in quarantined["landing/loose-file.fastq"].reason
    assert "UNKNOWN-9 is not registered" in quarantined["landing/UNKNOWN-9/reads.fastq"].reason
    assert all(lab.store.read_bytes(item.key) == b"@r\nACGT\n+\nIIII\n" for item in quarantined.values())
    assert [key for key in lab.keys(Zone.LANDING) if not key.startswith("_quarantine")] == []

    assert lab.run_sensor("landing_sensor") == []  # quarantine is not picked up again

    monkeypatch.setenv("LABMESH_HOME", str(lab.settings.home))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Quarantined (3)" in out and "UNKNOWN-9 is not registered" in out and "landing/bad id/reads.fastq" in out
    assert "EXP-1" in out


def test_files_of_an_experiment_not_yet_registered_wait_for_their_grace_period(settings, instance) -> None:
    patient = Lab(make_settings(settings.home, LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS="3600"), instance)
    patient.land("EXP-LATE", "reads.fastq", b"@r\nACGT\n+\nIIII\n")
    assert patient.run_sensor("landing_sensor") == []
    assert patient.keys(Zone.LANDING) == ["EXP-LATE/reads.fastq"]

    patient.write_record("late.yaml", {"id": "EXP-LATE", "title": "Registered after its data arrived"})
    patient.run_sensor("eln_sensor")
    [run] = patient.run_sensor("landing_sensor")
    assert run.success and patient.keys(Zone.LANDING) == []


@pytest.mark.real_tools
def test_a_corrupt_fastq_is_promoted_and_cataloged_with_its_extraction_error(lab: Lab) -> None:
    lab.write_record("good.yaml", GOOD)
    lab.run_sensor("eln_sensor")
    good = (DATA / "dnaio" / "simple.fastq").read_bytes()
    truncated = gzip.compress(good * 50)[:-30]
    lab.land("EXP-1", "S1_R1.fastq.gz", truncated)
    lab.land("EXP-1", "S1_R2.fastq", good)
    lab.land("EXP-1", "S1_R3.fastq", b"@r1\nACGT\n+\nII\n")

    [run] = lab.run_sensor("landing_sensor")

    assert run.success
    manifest = Manifest.from_json(lab.store.read_bytes(manifest_key(Zone.RAW, "EXP-1")))
    by_name = {entry.name: entry for entry in manifest.entries}
    assert by_name["S1_R1.fastq.gz"].error["reason"] == "truncated"
    assert by_name["S1_R3.fastq"].error["reason"] == "length_mismatch"
    assert by_name["S1_R2.fastq"].error is None and by_name["S1_R2.fastq"].metadata["reads"] == 2
    assert lab.keys(Zone.LANDING, "EXP-1") == []
    cataloged = lab.catalog.get_dataset("EXP-1", "raw")
    assert {entry.name for entry in cataloged.files} == set(by_name)

    assert lab.materialize("processed_dataset", partition="EXP-1").success
    processed = Manifest.from_json(lab.store.read_bytes(manifest_key(Zone.PROCESSED, "EXP-1")))
    reports = {entry.key for entry in processed.entries if entry.key.endswith(".fastp.json")}
    assert reports == {f"processed/EXP-1/fastp/S1_R{n}.fastp.json" for n in (1, 2, 3)}  # one fastp report each


def test_a_raw_copy_that_does_not_match_its_landing_checksum_keeps_the_landing_file(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labmesh_dagster.connectors.store.local import LocalObjectStore

    lab.write_record("good.yaml", GOOD)
    lab.run_sensor("eln_sensor")
    lab.land("EXP-1", "S1.fastq", b"@r\nACGT\n+\nIIII\n")
    lab.land("EXP-1", "notes.txt", b"fine\n")
    real_copy = LocalObjectStore.copy

    def corrupting_copy(self, source, destination, **options):  # type: ignore[no-untyped-def]
        info = real_copy(self, source, destination, **options)
        if destination.name == "S1.fastq":
            self.path(destination).write_bytes(b"bit rot")
        return info

    monkeypatch.setattr(LocalObjectStore, "copy", corrupting_copy)
    result = lab.materialize("raw_dataset", partition="EXP-1", raise_on_error=False)

    assert not result.success
    assert lab.keys(Zone.LANDING, "EXP-1") == ["EXP-1/S1.fastq"]
    assert lab.store.read_bytes(next(lab.store.list(Zone.LANDING, "EXP-1/")).key) == b"@r\nACGT\n+\nIIII\n"
    failure = "\n".join(str(event.event_specific_data) for event in result.all_events if event.is_failure)
    assert "checksum mismatch for landing/EXP-1/S1.fastq" in failure
    # What did verify is recorded as materialized, so processed_dataset can follow it.
    recorded = lab.instance.get_latest_materialization_event(dg.AssetKey("raw_dataset"))
    assert recorded is not None and recorded.asset_materialization.partition == "EXP-1"
    # The verified file beside it was promoted and published all the same.
    assert lab.keys(Zone.RAW, "EXP-1") == ["EXP-1/_labmesh/manifest.json", "EXP-1/notes.txt"]
    assert [entry.name for entry in lab.catalog.get_dataset("EXP-1", "raw").files] == ["notes.txt"]
    # ... and checked: the partition shows its checks' results, not "Not evaluated".
    logged = lab.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = {
        data.check_name: (data.passed, data.partition)
        for data in (record.dagster_event.event_specific_data for record in logged if record.dagster_event)
    }
    assert evaluations["raw_files_match_landing_checksums"] == (True, "EXP-1")
    assert evaluations["catalog_matches_manifest"] == (True, "EXP-1")


def test_a_second_file_of_the_same_name_in_quarantine_does_not_replace_the_first(lab: Lab) -> None:
    lab.land("NOPE-1", "reads.fastq", b"first\n")
    lab.run_sensor("landing_sensor")
    lab.land("NOPE-1", "reads.fastq", b"second\n")
    lab.run_sensor("landing_sensor")

    contents = sorted(lab.store.read_bytes(item.key) for item in list_quarantine(lab.store))
    assert contents == [b"first\n", b"second\n"]


def test_odd_landing_entries_are_reported_or_ignored_and_never_stop_the_good_files(lab: Lab, tmp_path) -> None:
    lab.write_record("good.yaml", GOOD)
    lab.run_sensor("eln_sensor")
    landing = lab.settings.store_dir / "landing"
    (landing / "EXP-1").mkdir(parents=True, exist_ok=True)
    (tmp_path / "secret.txt").write_text("outside the store")
    (landing / "EXP-1" / "link.fastq").symlink_to(tmp_path / "secret.txt")
    (landing / "EXP-1" / b"r\xff.fastq".decode("utf-8", "surrogateescape")).write_bytes(b"@r\nA\n+\nI\n")
    lab.land("EXP-1", "_labmesh/manifest.json", b"{}")
    lab.land("EXP-1", "S1.fastq", b"@r\nACGT\n+\nIIII\n")

    [run] = lab.run_sensor("landing_sensor")

    assert run.success
    assert [entry.name for entry in lab.catalog.get_dataset("EXP-1", "raw").files] == ["S1.fastq"]
    reasons = sorted(item.reason for item in list_quarantine(lab.store))
    assert reasons == [
        "'_labmesh/manifest.json' is reserved for labmesh's own files",
        "the file name is not valid UTF-8",
    ]
    assert (landing / "EXP-1" / "link.fastq").is_symlink()  # left alone, never followed
    assert (tmp_path / "secret.txt").read_text() == "outside the store"


def test_a_different_file_delivered_under_a_promoted_name_is_quarantined_and_raw_stays(lab: Lab) -> None:
    lab.write_record("good.yaml", GOOD)
    lab.run_sensor("eln_sensor")
    lab.land("EXP-1", "S1.fastq", b"@r\nACGT\n+\nIIII\n")
    lab.run_sensor("landing_sensor")
    before = lab.catalog.snapshot()

    lab.land("EXP-1", "S1.fastq", b"@r\nTTTT\n+\nIIII\n")
    [run] = lab.run_sensor("landing_sensor")

    assert run.success
    assert lab.store.read_bytes(next(lab.store.list(Zone.RAW, "EXP-1/S1")).key) == b"@r\nACGT\n+\nIIII\n"
    [conflict] = list_quarantine(lab.store)
    assert conflict.original_key == "landing/EXP-1/S1.fastq" and "raw is never overwritten" in conflict.reason
    assert lab.store.read_bytes(conflict.key) == b"@r\nTTTT\n+\nIIII\n"
    assert lab.catalog.snapshot() == before


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("id: EXP-5\ntitle: T\ntags: 5\n", "'tags' must be text or a list"),
        ("id: EXP-5\ntitle: T\ncreated: 2024-13-45\n", "cannot be read"),
        ("id: EXP-5\ntitle: T\nanchor: &a [*a]\n", "refers to itself"),
        ('{"id": "EXP-5", "title": "T", "n": ' + "9" * 5000 + "}", "cannot be read"),
    ],
)
def test_records_with_wrongly_typed_fields_are_reported_and_the_others_registered(
    lab: Lab, capsys: pytest.CaptureFixture[str], content: str, complaint: str
) -> None:
    lab.write_record("good.yaml", GOOD)
    lab.write_record("odd.json" if content.startswith("{") else "odd.yaml", content)

    runs = lab.run_sensor("eln_sensor")

    assert [run.success for run in runs] == [True] and lab.partitions() == ["EXP-1"]
    assert complaint in capsys.readouterr().err


def test_odd_but_storable_record_fields_are_kept(lab: Lab) -> None:
    lab.write_record("odd.yaml", 'id: EXP-6\ntitle: T\n2024: year key\n~: null key\nnote: "\\ud800 lone"\n')

    [run] = lab.run_sensor("eln_sensor")

    assert run.success
    assert lab.catalog.get_experiment("EXP-6").custom == {"2024": "year key", "None": "null key", "note": "\ufffd lone"}


def test_a_file_that_outlasts_the_extraction_budget_is_recorded_partial_and_the_run_succeeds(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    hurried = Lab(make_settings(settings.home, LABMESH_EXTRACT_SECONDS="0.000001"), instance)
    hurried.write_record("good.yaml", GOOD)
    hurried.run_sensor("eln_sensor")
    reads = b"".join(b"@r%d\nACGTACGTAC\n+\nIIIIIIIIII\n" % number for number in range(300_000))
    hurried.land("EXP-1", "S1_R1.fastq", reads)

    [run] = hurried.run_sensor("landing_sensor")

    assert run.success
    manifest = Manifest.from_json(hurried.store.read_bytes(manifest_key(Zone.RAW, "EXP-1")))
    [entry] = manifest.entries
    assert entry.error is None
    assert entry.metadata["partial"] == "time_budget"
    assert 0 < entry.metadata["reads"] < 300_000
    assert entry.size == len(reads), "the whole file is still promoted and hashed"
