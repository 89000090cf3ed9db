"""The aws profile driven by S3 event notifications through SQS (moto's server, over HTTP).

Contract: provisioning subscribes the landing and final buckets to their
queues, adds the multipart clean-up rule, tags the experiment's folder markers
and stores its least-privilege access policy, idempotently; an upload to landing
becomes an event, one run per experiment, a verified promotion and an empty
landing, with no LIST call on the way; duplicate, stale and out-of-order events
start one run; S3's test event and malformed messages are skipped; final-zone
events rematerialize `final_dataset`, and labmesh's own manifest writes do not;
a final file put back after its removal was published is published again;
without queues the listing fallback misses nothing, however many objects share
a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labmesh_dagster.connectors.aws import make_client
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.steps.landing import list_quarantine
from labmesh_dagster_tests.aws_fakes import ServiceClients
from labmesh_dagster_tests.conftest import Lab, aws_settings

RECORD = {"id": "EXP-1", "title": "Event driven", "samples": ["S1"], "platform": "MiSeq"}
FASTQ = b"@r1\nACGT\n+\nIIII\n"


@pytest.fixture
def s3(moto_endpoint: str, aws_environment: None) -> Any:
    return make_client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def api_calls(clients: ServiceClients) -> list[str]:
    """Every AWS operation the lab's clients make."""
    return clients.calls


def registered(lab: Lab) -> None:
    lab.write_record("exp.yaml", RECORD)
    [run] = lab.run_sensor("eln_sensor")
    assert run.success


def test_provisioning_sets_up_notifications_lifecycle_tags_and_an_access_policy(
    aws_lab: Lab, s3: Any, s3_buckets: dict[str, str], queues: dict[str, str]
) -> None:
    registered(aws_lab)
    assert aws_lab.materialize("experiment", partition="EXP-1").success  # again: nothing doubles

    for zone in ("landing", "final"):
        [queue] = s3.get_bucket_notification_configuration(Bucket=s3_buckets[zone])["QueueConfigurations"]
        assert queue["QueueArn"].endswith(queues[zone].rsplit("/", 1)[1])
        assert set(queue["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    for bucket in s3_buckets.values():
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert [rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for rule in rules] == [7]
        tags = s3.get_object_tagging(Bucket=bucket, Key="EXP-1/")["TagSet"]
        assert {"Key": "labmesh-experiment", "Value": "EXP-1"} in tags
    policy = json.loads(s3.get_object(Bucket=s3_buckets["raw"], Key="EXP-1/_labmesh/access-policy.json")["Body"].read())
    resources = [r for statement in policy["Statement"] for r in statement["Resource"]]
    assert f"arn:aws:s3:::{s3_buckets['landing']}/EXP-1/*" in resources
    assert all("EXP-1" in resource or resource.endswith(tuple(s3_buckets.values())) for resource in resources)


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_an_upload_becomes_an_event_a_run_and_a_verified_promotion_without_listing(
    aws_lab: Lab, s3: Any, s3_buckets: dict[str, str], api_calls: list[str]
) -> None:
    registered(aws_lab)
    aws_lab.run_sensor("landing_sensor")  # drains the provisioning's test events and folder markers
    names = ["run 1/S1 R1.fastq", "S1+R2.fastq", "100%.fastq", "Probe-µ/über.fastq"]
    for name in names:
        s3.put_object(Bucket=s3_buckets["landing"], Key=f"EXP-1/{name}", Body=FASTQ)
    api_calls.clear()

    data = aws_lab.tick("landing_sensor")

    assert "ListObjectsV2" not in api_calls and "ListObjects" not in api_calls
    [request] = data.run_requests
    assert request.partition_key == "EXP-1"
    job = aws_lab.defs.resolve_job_def(aws_lab.defs.resolve_sensor_def("landing_sensor").job_name)
    assert job.execute_in_process(instance=aws_lab.instance, partition_key="EXP-1").success
    assert aws_lab.keys(Zone.LANDING) == []
    cataloged = {entry.name for entry in aws_lab.catalog.get_dataset("EXP-1", "raw").files}
    assert cataloged == {name.rsplit("/", 1)[-1] for name in names}
    assert aws_lab.tick("landing_sensor").run_requests == []  # removal events of landing start nothing


def _notification(bucket: str, key: str, sequencer: str, event: str = "ObjectCreated:Put", size: int = 16) -> str:
    record = {
        "eventName": event,
        "eventTime": "2026-11-29T10:00:00.000Z",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "eTag": "abc", "sequencer": sequencer},
        },
    }
    return json.dumps({"Records": [record]})


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_duplicate_stale_and_out_of_order_events_start_one_run(
    aws_lab: Lab, moto_endpoint: str, s3: Any, s3_buckets: dict[str, str], queues: dict[str, str]
) -> None:
    registered(aws_lab)
    aws_lab.run_sensor("landing_sensor")
    s3.put_object(Bucket=s3_buckets["landing"], Key="EXP-1/S1.fastq", Body=FASTQ)
    sqs = make_client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = s3_buckets["landing"]
    poison = [
        json.dumps({"Event": "s3:TestEvent", "Bucket": bucket}),
        "not json at all",
        json.dumps({"Records": 5}),
        "null",
        _notification(bucket, "EXP-1/S1.fastq", "00C").replace('"EXP-1/S1.fastq"', "42"),
    ]
    for body in (
        _notification(bucket, "EXP-1/S1.fastq", "00B"),  # newest first: out of order
        _notification(bucket, "EXP-1/S1.fastq", "00A"),
        _notification(bucket, "EXP-1/S1.fastq", "00B"),  # redelivered duplicate
        *poison,
    ):
        sqs.send_message(QueueUrl=queues["landing"], MessageBody=body)

    runs = aws_lab.run_sensor("landing_sensor")
    assert len(runs) == 1 and runs[0].success
    sqs.send_message(QueueUrl=queues["landing"], MessageBody=_notification(bucket, "EXP-1/S1.fastq", "00B"))
    assert aws_lab.tick("landing_sensor").run_requests == []  # the same event, redelivered a tick later
    assert aws_lab.keys(Zone.LANDING) == []


def test_the_latest_operation_on_a_key_wins_whatever_order_the_events_arrive_in(
    aws_lab: Lab, moto_endpoint: str, s3_buckets: dict[str, str], queues: dict[str, str]
) -> None:
    registered(aws_lab)
    aws_lab.run_sensor("landing_sensor")
    sqs = make_client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = s3_buckets["landing"]
    # The object was written, then deleted; the deletion's event arrives first.
    for body in (
        _notification(bucket, "EXP-1/gone.fastq", "0002", event="ObjectRemoved:Delete"),
        _notification(bucket, "EXP-1/gone.fastq", "0001"),
    ):
        sqs.send_message(QueueUrl=queues["landing"], MessageBody=body)

    assert aws_lab.tick("landing_sensor").run_requests == []


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_events_of_an_unknown_experiment_wait_then_flow_once_it_is_registered(
    tmp_path: Path, moto_endpoint: str, s3: Any, s3_buckets: dict[str, str], queues: dict[str, str], instance
) -> None:
    lab = Lab(
        aws_settings(
            tmp_path / "home",
            moto_endpoint,
            s3_buckets,
            LABMESH_SQS_LANDING_QUEUE_URL=queues["landing"],
            LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS="3600",
        ),
        instance,
    )
    lab.store.provision("EXP-LATE")
    lab.run_sensor("landing_sensor")
    s3.put_object(Bucket=s3_buckets["landing"], Key="EXP-LATE/S1.fastq", Body=FASTQ)
    assert lab.run_sensor("landing_sensor") == []
    assert lab.run_sensor("landing_sensor") == []  # no new event: the waiting object is remembered

    lab.write_record("late.yaml", {"id": "EXP-LATE", "title": "Record after data"})
    lab.run_sensor("eln_sensor")
    [run] = lab.run_sensor("landing_sensor")
    assert run.success and lab.keys(Zone.LANDING) == [] and list_quarantine(lab.store) == []


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_final_zone_events_rematerialize_final_dataset_but_its_own_manifest_does_not(
    aws_lab: Lab, s3: Any, s3_buckets: dict[str, str]
) -> None:
    registered(aws_lab)
    aws_lab.run_sensor("final_sensor")
    s3.put_object(Bucket=s3_buckets["final"], Key="EXP-1/report.md", Body=b"# Report\n")

    [run] = aws_lab.run_sensor("final_sensor")

    assert run.success
    assert [entry.name for entry in aws_lab.catalog.get_dataset("EXP-1", "final").files] == ["report.md"]
    assert aws_lab.run_sensor("final_sensor") == []
    s3.delete_object(Bucket=s3_buckets["final"], Key="EXP-1/report.md")
    [removal] = aws_lab.run_sensor("final_sensor")
    assert removal.success and aws_lab.catalog.get_dataset("EXP-1", "final").files == ()


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_a_final_file_put_back_after_its_removal_was_published_is_published_again(
    aws_lab: Lab, s3: Any, s3_buckets: dict[str, str]
) -> None:
    registered(aws_lab)
    aws_lab.run_sensor("final_sensor")
    for change in ("put", "delete", "put"):
        if change == "put":
            s3.put_object(Bucket=s3_buckets["final"], Key="EXP-1/report.md", Body=b"# Report\n")
        else:
            s3.delete_object(Bucket=s3_buckets["final"], Key="EXP-1/report.md")
        [run] = aws_lab.run_sensor("final_sensor")
        assert run.success, change

    assert [entry.name for entry in aws_lab.catalog.get_dataset("EXP-1", "final").files] == ["report.md"]
    assert aws_lab.run_sensor("final_sensor") == []


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_final_files_of_an_experiment_registered_later_are_published_once_it_is(
    tmp_path: Path, moto_endpoint: str, s3: Any, s3_buckets: dict[str, str], queues: dict[str, str], instance
) -> None:
    lab = Lab(
        aws_settings(tmp_path / "home", moto_endpoint, s3_buckets, LABMESH_SQS_FINAL_QUEUE_URL=queues["final"]),
        instance,
    )
    lab.store.provision("EXP-1")
    lab.run_sensor("final_sensor")
    s3.put_object(Bucket=s3_buckets["final"], Key="EXP-1/early-report.md", Body=b"# Early\n")
    assert lab.run_sensor("final_sensor") == []

    registered(lab)
    [run] = lab.run_sensor("final_sensor")

    assert run.success
    assert [entry.name for entry in lab.catalog.get_dataset("EXP-1", "final").files] == ["early-report.md"]


def test_keys_no_zone_path_may_take_do_not_stop_the_listing(
    tmp_path: Path, moto_endpoint: str, s3: Any, s3_buckets: dict[str, str], instance: dg.DagsterInstance
) -> None:
    lab = Lab(aws_settings(tmp_path / "home", moto_endpoint, s3_buckets), instance)
    registered(lab)
    s3.put_object(Bucket=s3_buckets["landing"], Key="EXP-1//double-slash.fastq", Body=FASTQ)
    s3.put_object(Bucket=s3_buckets["landing"], Key="EXP-1/fine.fastq", Body=FASTQ)

    [run] = lab.run_sensor("landing_sensor")

    assert run.success
    assert [entry.name for entry in lab.catalog.get_dataset("EXP-1", "raw").files] == ["fine.fastq"]


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_the_listing_fallback_misses_no_object_written_in_the_same_second(
    tmp_path: Path, moto_endpoint: str, s3: Any, s3_buckets: dict[str, str], instance: dg.DagsterInstance
) -> None:
    lab = Lab(aws_settings(tmp_path / "home", moto_endpoint, s3_buckets), instance)
    registered(lab)
    for number in range(60):
        s3.put_object(Bucket=s3_buckets["landing"], Key=f"EXP-1/burst/{number:03}.fastq", Body=FASTQ)

    [run] = lab.run_sensor("landing_sensor")

    assert run.success and lab.keys(Zone.LANDING) == []
    assert len(lab.catalog.get_dataset("EXP-1", "raw").files) == 60


@pytest.mark.slow  # a whole aws flow on moto's server; make test and CI run it
def test_files_whose_run_failed_get_another_run_in_the_next_retry_period(
    tmp_path: Path, moto_endpoint: str, s3_buckets: dict[str, str], queues: dict[str, str], instance, s3: Any
) -> None:
    """An event comes once and Dagster never reuses a run key: `landing_retry_sensor` lists landing per period.

    The event-driven landing_sensor itself never lists.
    """
    settings = aws_settings(
        tmp_path / "home",
        moto_endpoint,
        s3_buckets,
        LABMESH_SQS_LANDING_QUEUE_URL=queues["landing"],
        LABMESH_LANDING_RETRY_SECONDS="3600",
    )
    lab = Lab(settings, instance)
    lab.clock.clear_of_period_end(3600)  # the ticks below share one retry period, however slow they are
    registered(lab)
    lab.run_sensor("landing_sensor")
    s3.put_object(Bucket=s3_buckets["landing"], Key="EXP-1/S1.fastq", Body=FASTQ)
    [lost] = lab.tick("landing_sensor").run_requests
    lab.run_keys.add(lost.run_key)  # its run failed after every retry, or was never launched

    assert lab.tick("landing_sensor").run_requests == []
    assert lab.tick("landing_retry_sensor").run_requests == []  # not waiting long enough yet
    lab.clock.advance(3600.2)
    [retry] = lab.tick("landing_retry_sensor").run_requests

    assert retry.partition_key == "EXP-1" and retry.run_key != lost.run_key
    job = lab.defs.resolve_job_def(lab.defs.resolve_sensor_def("landing_retry_sensor").job_name)
    assert job.execute_in_process(instance=lab.instance, partition_key="EXP-1").success
    assert lab.keys(Zone.LANDING) == [] and "EXP-1/S1.fastq" in lab.keys(Zone.RAW, "EXP-1")
    assert lab.tick("landing_sensor").run_requests == []
