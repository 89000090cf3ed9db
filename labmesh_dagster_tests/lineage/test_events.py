"""A materialization becomes a START and a COMPLETE or FAIL event that say what the run read, wrote and hit.

Pinned here: the run id is a uuid5 of (Dagster run, asset, experiment), the
same for both events and for any replay, so replayed events encode to the same
bytes; START names outputs without versions and COMPLETE adds each output's
manifest digest and its file-level lineage, capped in files, bytes and
derivations, with the manifest named for the rest; FAIL carries the error and
publishes no version; ownership, storage and documentation come from the
experiment and the manifest; bad wiring is refused early; events go to JSON
lines and come back as the same data.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.lineage.events import (
    FILE_LIST_LIMIT,
    DatasetRef,
    Materialization,
    end_event,
    event_from_json,
    event_to_dict,
    event_to_json,
    events_from_json_lines,
    events_to_json_lines,
    files_facet,
    materialization_events,
    openlineage_run_id,
    start_event,
)
from labmesh_dagster_tests.lineage.samples import EXPERIMENT, PROCESSED, RAW, T0, chain, entry, events_for, ref


def test_the_run_id_is_a_uuid5_of_the_dagster_run_the_asset_and_the_experiment() -> None:
    start, end = events_for("raw_dataset", run_id="8d7c1f2e-0000-4000-8000-000000000001")
    run_id = openlineage_run_id("8d7c1f2e-0000-4000-8000-000000000001", "raw_dataset", "EXP-1")

    assert start.run.runId == end.run.runId == run_id
    assert uuid.UUID(run_id).version == 5
    others = {
        openlineage_run_id("another-run", "raw_dataset", "EXP-1"),
        openlineage_run_id("8d7c1f2e-0000-4000-8000-000000000001", "processed_dataset", "EXP-1"),
        openlineage_run_id("8d7c1f2e-0000-4000-8000-000000000001", "raw_dataset", "EXP-2"),
    }
    assert run_id not in others and len(others) == 3


def test_the_run_id_never_changes_between_releases() -> None:
    # Replays of events posted by earlier versions must land on the same runs.
    assert openlineage_run_id("run-1", "raw_dataset", "EXP-1") == str(
        uuid.uuid5(uuid.UUID("a919a854-4a69-5539-ac4b-76c798cd8269"), '["run-1", "raw_dataset", "EXP-1"]')
    )


def test_replaying_a_materialization_gives_byte_identical_events() -> None:
    first = [event_to_json(event) for event in events_for("processed_dataset")]
    again = [event_to_json(event) for event in events_for("processed_dataset")]

    assert first == again


def test_start_names_the_outputs_and_complete_publishes_their_version_and_files() -> None:
    start, end = (event_to_dict(event) for event in events_for("processed_dataset"))
    (start_input,), (start_output,) = start["inputs"], start["outputs"]
    (end_output,) = end["outputs"]

    assert (start_output["namespace"], start_output["name"]) == ("s3://lm-processed", "EXP-1")
    assert start_input["facets"]["version"]["datasetVersion"] == RAW.digest
    assert "version" not in start_output["facets"] and start_output["outputFacets"] == {}
    assert end_output["facets"]["version"]["datasetVersion"] == PROCESSED.digest
    files = end_output["outputFacets"]["labmesh_files"]
    assert files["fileCount"] == 3 and files["totalBytes"] == 5_000 and files["truncated"] is False
    assert files["manifestUri"] == "s3://lm-processed/EXP-1/_labmesh/manifest.json"
    assert files["files"][2] == {
        "key": "processed/EXP-1/qc/summary.json",
        "size": 900,
        "sha256": "05" * 32,
        "format": "json",
        "derivedFrom": ["raw/EXP-1/S1_R1.fastq.gz", "raw/EXP-1/S2_R1.fastq.gz"],
    }
    assert [item["key"] for item in files["files"]] == [item.key for item in PROCESSED.entries]


def test_fail_carries_the_error_and_publishes_nothing() -> None:
    start, end = (event_to_dict(event) for event in events_for("final_dataset", error="OSError: disk full"))

    assert end["eventType"] == "FAIL" and end["eventTime"] == "2026-11-29T10:03:00.000Z"
    error = end["run"]["facets"]["errorMessage"]
    assert error["message"] == "OSError: disk full" and error["programmingLanguage"] == "python"
    assert error["stackTrace"].endswith("OSError: disk full")
    (output,) = end["outputs"]
    assert "version" not in output["facets"] and output["outputFacets"] == {}
    assert "errorMessage" not in start["run"]["facets"]
    assert "errorMessage" not in event_to_dict(events_for("final_dataset")[1])["run"]["facets"]


def test_an_empty_error_message_is_still_a_failure() -> None:
    _, end = events_for("raw_dataset", error="")

    assert end.eventType is not None and end.eventType.value == "FAIL"
    assert event_to_dict(end)["run"]["facets"]["errorMessage"]["message"] == "failed without a message"


def test_job_run_and_dataset_facets_describe_the_asset_and_the_experiment() -> None:
    _, end = (event_to_dict(event) for event in events_for("raw_dataset", store="local"))
    job, run, (output,) = end["job"], end["run"]["facets"], end["outputs"]

    assert (job["namespace"], job["name"]) == ("labmesh", "raw_dataset")
    assert job["facets"]["jobType"] | {"_producer": "", "_schemaURL": ""} == {
        "processingType": "BATCH",
        "integration": "DAGSTER",
        "jobType": "ASSET",
        "_producer": "",
        "_schemaURL": "",
    }
    assert "landing zone to the raw zone" in job["facets"]["documentation"]["description"]
    assert job["facets"]["ownership"]["owners"] == [{"name": "team:lab-informatics", "type": "OWNER"}]
    assert run["nominalTime"]["nominalStartTime"] == "2026-11-29T10:00:00.000Z"
    assert run["processing_engine"]["name"] == "labmesh"
    assert run["labmesh_run"]["experimentId"] == "EXP-1" and run["labmesh_run"]["dagsterRunId"] == "dagster-run-1"
    assert run["labmesh_run"]["platform"] == "NovaSeq 6000"
    assert (output["namespace"], output["name"]) == ("file", "/srv/lab data/zürich/raw/EXP-1")
    facets = output["facets"]
    assert facets["ownership"]["owners"] == [
        {"name": "user:Ada Lovelace", "type": "OWNER"},
        {"name": "team:Genomics", "type": "OWNER"},
    ]
    assert facets["storage"]["storageLayer"] == "file" and facets["storage"]["fileFormat"] == "fastq"
    assert facets["documentation"]["description"].startswith("Liver RNA-seq (EXP-1), raw zone\n\nBulk RNA-seq")
    assert facets["labmesh_dataset"]["zone"] == "raw"
    assert output["outputFacets"]["labmesh_files"]["manifestUri"] == (
        "file:///srv/lab%20data/z%C3%BCrich/raw/EXP-1/_labmesh/manifest.json"
    )


def test_a_dataset_of_mixed_formats_names_no_single_format_and_an_ownerless_experiment_no_owners() -> None:
    mixed = Manifest.build("EXP-1", "raw", [entry("raw/EXP-1/a.csv", 1, "csv"), entry("raw/EXP-1/b.fastq", 1, "fastq")])
    ownerless = EXPERIMENT.__class__(id="EXP-1", title="Untitled")
    _, end = materialization_events(
        asset="raw_dataset",
        run_id="r",
        experiment=ownerless,
        outputs=[DatasetRef("s3://lm-raw/EXP-1/", Zone.RAW, mixed)],
        started=T0,
        ended=T0,
    )
    facets = event_to_dict(end)["outputs"][0]["facets"]

    assert facets["storage"] == {k: v for k, v in facets["storage"].items() if k != "fileFormat"}
    assert "ownership" not in facets and "ownership" not in event_to_dict(end)["job"]["facets"]


def test_the_file_list_is_capped_by_count_by_bytes_and_by_derivations() -> None:
    derived = tuple(f"raw/EXP-1/lane{n:03}.fastq" for n in range(250))
    big = Manifest.build(
        "EXP-1", "processed", [entry(f"processed/EXP-1/qc/{n:05}.json", 10, "json", *derived) for n in range(2_500)]
    )

    by_count = files_facet(big, limit=3, budget=10**9, derived_from_limit=1_000)
    by_bytes = files_facet(big, limit=10_000, budget=30_000, derived_from_limit=1_000)
    by_derivations = files_facet(big, limit=1, derived_from_limit=5, manifest_uri="s3://x/EXP-1/_labmesh/manifest.json")

    assert [item.key for item in by_count.files] == [item.key for item in big.entries[:3]]
    assert by_count.truncated and by_count.fileCount == 2_500 and by_count.totalBytes == 25_000
    assert 0 < len(by_bytes.files) < 10 and by_bytes.truncated
    (only,) = by_derivations.files
    assert only.derivedFrom == list(derived[:5]) and only.derivedFromCount == 250 and by_derivations.truncated
    assert not files_facet(RAW).truncated


def test_an_event_for_thousands_of_files_stays_under_datazones_limit() -> None:
    keys = [f"processed/EXP-1/run-{n // 100:03}/sample-{n:05}_R1.fastq.gz.qc.json" for n in range(5_000)]
    big = Manifest.build(
        "EXP-1", "processed", [entry(key, 10, "json", key.replace("processed", "raw")) for key in keys]
    )
    _, end = materialization_events(
        asset="processed_dataset",
        run_id="r",
        experiment=EXPERIMENT,
        inputs=[ref(Zone.RAW)],
        outputs=[DatasetRef("s3://lm-processed/EXP-1/", Zone.PROCESSED, big)],
        started=T0,
        ended=T0 + timedelta(hours=2),
    )
    encoded = event_to_json(end).encode("utf-8")
    files = event_to_dict(end)["outputs"][0]["outputFacets"]["labmesh_files"]

    assert len(encoded) < 300_000
    assert len(files["files"]) <= FILE_LIST_LIMIT and files["fileCount"] == 5_000 and files["truncated"]


def test_long_eln_text_is_clipped() -> None:
    verbose = EXPERIMENT.__class__(id="EXP-1", title="T", description="word " * 50_000)
    _, end = materialization_events(
        asset="raw_dataset",
        run_id="r",
        experiment=verbose,
        outputs=[ref(Zone.RAW)],
        started=T0,
        ended=T0,
        error="x" * 100_000,
        stack_trace="Traceback (most recent call last):\n" + "  frame\n" * 10_000 + "OSError: disk full",
    )
    data = event_to_dict(end)
    error = data["run"]["facets"]["errorMessage"]

    assert len(data["outputs"][0]["facets"]["documentation"]["description"]) <= 4_000
    assert len(error["message"]) <= 4_000 and error["message"].endswith("x…")
    assert len(error["stackTrace"]) <= 12_000 and error["stackTrace"].endswith("frame\nOSError: disk full")


def test_naive_times_are_utc_and_an_end_before_the_start_is_refused() -> None:
    naive = Materialization(asset="raw_dataset", run_id="r", experiment=EXPERIMENT, started=datetime(2026, 11, 29, 10))

    assert start_event(naive).eventTime == "2026-11-29T10:00:00.000Z"
    with pytest.raises(ValueError, match="before it started"):
        end_event(naive, ended=datetime(2026, 11, 29, 9, 59))


def test_wiring_mistakes_are_refused_when_the_materialization_is_described() -> None:
    other_experiment = Manifest.build("EXP-2", "raw", [])

    with pytest.raises(ValueError, match="the raw zone's, not the processed"):
        DatasetRef("s3://lm-processed/EXP-1/", Zone.PROCESSED, RAW)
    with pytest.raises(ValueError, match="'archive' is not a valid Zone"):
        DatasetRef("s3://lm-archive/EXP-1/", "archive")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="s3:// or file://"):
        DatasetRef("https://lm-raw/EXP-1/", Zone.RAW)
    with pytest.raises(ValueError, match="holds a manifest of EXP-2"):
        Materialization(
            asset="raw_dataset",
            run_id="r",
            experiment=EXPERIMENT,
            started=T0,
            outputs=(DatasetRef("s3://lm-raw/EXP-1/", Zone.RAW, other_experiment),),
        )
    with pytest.raises(ValueError, match="listed twice"):
        Materialization(
            asset="raw_dataset",
            run_id="r",
            experiment=EXPERIMENT,
            started=T0,
            inputs=(ref(Zone.LANDING), DatasetRef("s3://lm-landing/EXP-1", Zone.LANDING)),
        )
    with pytest.raises(ValueError, match="Dagster run id"):
        Materialization(asset="raw_dataset", run_id="", experiment=EXPERIMENT, started=T0)


def test_events_survive_a_json_lines_round_trip() -> None:
    events = chain(final_error="OSError: disk full")

    text = events_to_json_lines(events)
    back = events_from_json_lines(text)

    assert text.count("\n") == len(events) == 6 and text.isascii()
    assert back == [event_to_dict(event) for event in events]
    assert events_to_json_lines(back) == text
    assert event_from_json(text.splitlines()[0]) == back[0]
    assert events_to_json_lines([]) == ""


def test_json_lines_that_are_not_run_events_are_named_by_line() -> None:
    good = event_to_json(events_for("raw_dataset")[0])
    job_event = json.dumps({"eventTime": "2026-11-29T10:00:00Z", "job": {"namespace": "n", "name": "j"}})

    assert len(events_from_json_lines(f"{good}\n\n{good}\n".encode())) == 2
    with pytest.raises(ValueError, match="line 2: not an OpenLineage run event: no eventType, run"):
        events_from_json_lines(f"{good}\n{job_event}\n")
    with pytest.raises(ValueError, match="line 1: "):
        events_from_json_lines("{not json\n")
    with pytest.raises(ValueError, match="JSON object, got list"):
        event_from_json("[]")
    with pytest.raises(ValueError, match="no run.runId, job.name"):
        event_from_json('{"eventType": "START", "eventTime": "t", "run": [1], "job": {"namespace": "labmesh"}}')
