"""HealthOmics workflow runs are started once per request id, followed to their end, and cancelled at a timeout.

Pinned here, against a fake held to botocore's ``omics`` model: StartRun is
sent with the workflow, type, version, role, output URI, parameters, run
group, cache, storage, priority and tags as given, and nothing unset; the
request id is derived from experiment, invocation and attempt only, fits the
model's 128 characters and differs per attempt; the same request id answers
the same run, whether repeated by the caller or by the retry after a lost
response, so only one run is ever started; GetRun's throttling is retried;
waiting follows PENDING, STARTING, RUNNING to COMPLETED with a growing
interval; a FAILED run is returned with the service's failure reason and
message; a run still going at the timeout is cancelled and reported timed
out; cancelling a run that already ended is not an error; Ready2Run
workflows are found by their type and still need a role; and the fake
refuses what the model refuses.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from labmesh_dagster.connectors.omics.workflows import (
    HealthOmicsWorkflows,
    OmicsRunError,
    WorkflowRunRequest,
    request_id_for,
)
from labmesh_dagster_tests.omics.fake_omics import check_request
from labmesh_dagster_tests.omics.fake_omics_workflows import FakeOmicsWorkflows, FakeWorkflow

ROLE = "arn:aws:iam::123456789012:role/labmesh-omics-runs"
OUTPUT = "s3://labmesh-omics-out/runs/"
WORKFLOW = "1234567"
READY2RUN = "9876543"
PARAMETERS = {"fastq_r1": "s3://raw/EXP-1/S1_R1.fastq.gz", "fastq_r2": "s3://raw/EXP-1/S1_R2.fastq.gz"}


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    @property
    def waits(self) -> list[float]:
        """The sleeps between polls and retries, without the client's millisecond pacing between calls."""
        return [seconds for seconds in self.sleeps if seconds >= 0.1]


def request(**overrides: object) -> WorkflowRunRequest:
    fields: dict[str, object] = {
        "workflow_id": WORKFLOW,
        "role_arn": ROLE,
        "output_uri": OUTPUT,
        "parameters": PARAMETERS,
        "name": "labmesh EXP-1 fastp-3f2a9c1e0b7d4a55",
    }
    fields.update(overrides)
    return WorkflowRunRequest(**fields)  # type: ignore[arg-type]


def workflows_for(fake: FakeOmicsWorkflows, time: FakeTime | None = None) -> HealthOmicsWorkflows:
    time = time or FakeTime()
    return HealthOmicsWorkflows(fake, max_per_second=1000, sleep=time.sleep, clock=time.clock)


def fake(**options: object) -> FakeOmicsWorkflows:
    workflows = (
        FakeWorkflow(WORKFLOW, "fastq-qc", versions=("1.0", "2.0")),
        FakeWorkflow(READY2RUN, "GATK-BP germline", type="READY2RUN", engine="WDL", versions=("3.0.0",)),
    )
    return FakeOmicsWorkflows(workflows=workflows, **options)  # type: ignore[arg-type]


def test_the_request_id_depends_on_experiment_invocation_and_attempt_only_and_fits_the_model() -> None:
    first = request_id_for("EXP-1", "fastp-3f2a9c1e0b7d4a55")

    assert first == request_id_for("EXP-1", "fastp-3f2a9c1e0b7d4a55") == "labmesh/EXP-1/fastp-3f2a9c1e0b7d4a55"
    assert request_id_for("EXP-1", "fastp-3f2a9c1e0b7d4a55", 1) == first + "/1"
    assert request_id_for("EXP-2", "fastp-3f2a9c1e0b7d4a55") != first
    long_id = request_id_for("E" * 128, "fastp-3f2a9c1e0b7d4a55")
    assert len(long_id) <= 128 and long_id == request_id_for("E" * 128, "fastp-3f2a9c1e0b7d4a55")
    for request_id in (first, long_id):
        check_request("StartRun", request().start_run_params(request_id))


def test_start_run_sends_every_setting_given_and_nothing_unset() -> None:
    client = fake()

    run_id = workflows_for(client).start_run(
        request(
            workflow_version_name="2.0",
            run_group_id="5551234",
            cache_id="4441234",
            cache_behavior="CACHE_ALWAYS",
            storage_type="STATIC",
            storage_capacity=1200,
            priority=10,
            tags={"labmesh:experiment": "EXP-1"},
        ),
        request_id="labmesh/EXP-1/fastp-1",
    )

    assert client.calls == [
        (
            "StartRun",
            {
                "workflowId": WORKFLOW,
                "workflowType": "PRIVATE",
                "roleArn": ROLE,
                "outputUri": OUTPUT,
                "parameters": PARAMETERS,
                "requestId": "labmesh/EXP-1/fastp-1",
                "workflowVersionName": "2.0",
                "name": "labmesh EXP-1 fastp-3f2a9c1e0b7d4a55",
                "runGroupId": "5551234",
                "cacheId": "4441234",
                "cacheBehavior": "CACHE_ALWAYS",
                "storageType": "STATIC",
                "storageCapacity": 1200,
                "priority": 10,
                "tags": {"labmesh:experiment": "EXP-1"},
            },
        )
    ]
    assert client.started_runs() == [run_id]
    minimal = request(name=None, parameters={}).start_run_params("r")
    assert set(minimal) == {"workflowId", "workflowType", "roleArn", "outputUri", "parameters", "requestId"}


def test_the_same_request_id_answers_the_same_run_and_never_starts_a_second() -> None:
    client = fake()
    workflows = workflows_for(client)

    first = workflows.start_run(request(), request_id="labmesh/EXP-1/fastp-1")
    again = workflows.start_run(request(), request_id="labmesh/EXP-1/fastp-1")

    assert again == first
    assert client.started_runs() == [first]


def test_a_start_whose_response_was_lost_is_retried_and_finds_the_run_it_started() -> None:
    client = fake()
    time = FakeTime()
    client.lose_next_start_response()

    run_id = workflows_for(client, time).start_run(request(), request_id="labmesh/EXP-1/fastp-1")

    assert client.call_counts["StartRun"] == 2
    assert client.started_runs() == [run_id]
    assert len(time.waits) == 1  # one backoff before the retry


def test_the_same_request_id_with_other_parameters_is_refused() -> None:
    workflows = workflows_for(fake())
    workflows.start_run(request(), request_id="labmesh/EXP-1/fastp-1")

    with pytest.raises(OmicsRunError, match="ConflictException") as raised:
        workflows.start_run(
            request(parameters={"fastq_r1": "s3://raw/EXP-1/other.fq.gz"}), request_id="labmesh/EXP-1/fastp-1"
        )

    assert isinstance(raised.value.__cause__, ClientError)


def test_waiting_follows_the_run_to_completed_with_a_growing_interval() -> None:
    client = fake(polls_to_finish=5)
    time = FakeTime()
    workflows = workflows_for(client, time)
    run_id = workflows.start_run(request(), request_id="r-1")

    seen = [workflows.get_run(run_id).status for _ in range(2)]
    outcome = workflows.wait(run_id, timeout=3600, poll=30, backoff=2, max_poll=100)

    assert seen == ["PENDING", "STARTING"]
    assert outcome.run.status == "COMPLETED" and not outcome.timed_out
    assert outcome.run.output_uri == f"{OUTPUT.rstrip('/')}/{run_id}"
    assert outcome.run.outputs_uri == f"{OUTPUT}{run_id}/out/"
    assert time.waits == [30, 60]


def test_throttled_status_reads_are_retried() -> None:
    client = fake(polls_to_finish=1)
    workflows = workflows_for(client)
    run_id = workflows.start_run(request(), request_id="r-1")
    client.throttle("GetRun", times=2)

    assert workflows.wait(run_id, timeout=60, poll=10).run.status == "COMPLETED"
    # Two throttled, then PENDING, STARTING and COMPLETED.
    assert client.call_counts["GetRun"] == 2 + 3


def test_a_failed_run_is_returned_with_the_services_reason_and_message() -> None:
    client = fake(polls_to_finish=3, outcome="FAILED", failure_reason="TaskFailed", status_message="fastp exited 1")
    workflows = workflows_for(client)
    run_id = workflows.start_run(request(), request_id="r-1")

    outcome = workflows.wait(run_id, timeout=3600)

    assert outcome.run.status == "FAILED" and not outcome.timed_out
    assert outcome.run.why == "TaskFailed: fastp exited 1"


def test_a_run_still_going_at_the_timeout_is_cancelled_and_reported_timed_out() -> None:
    client = fake(outcome="NEVER")
    time = FakeTime()
    workflows = workflows_for(client, time)
    run_id = workflows.start_run(request(), request_id="r-1")

    outcome = workflows.wait(run_id, timeout=100, poll=30, backoff=1)

    assert outcome.timed_out
    assert outcome.run.status == "STOPPING"
    assert ("CancelRun", {"id": run_id}) in client.calls
    assert time.waits == pytest.approx([30, 30, 30, 10], abs=0.01)  # pacing took the odd millisecond
    assert workflows.get_run(run_id).status == "CANCELLED"


def test_cancelling_a_run_that_already_ended_is_not_an_error() -> None:
    client = fake(polls_to_finish=1)
    workflows = workflows_for(client)
    run_id = workflows.start_run(request(), request_id="r-1")
    assert workflows.wait(run_id, timeout=3600).run.status == "COMPLETED"

    workflows.cancel_run(run_id)

    assert workflows.get_run(run_id).status == "COMPLETED"


def test_a_ready2run_workflow_is_found_by_its_type_and_still_needs_a_role() -> None:
    client = fake(polls_to_finish=1)
    workflows = workflows_for(client)

    run_id = workflows.start_run(
        request(workflow_id=READY2RUN, workflow_type="READY2RUN", workflow_version_name="3.0.0"), request_id="r-1"
    )

    run = workflows.get_run(run_id)
    assert (run.workflow_type, run.workflow_version_name) == ("READY2RUN", "3.0.0")
    assert client.calls[0][1]["workflowType"] == "READY2RUN" and client.calls[0][1]["roleArn"] == ROLE
    assert workflows.workflow_name(READY2RUN, "READY2RUN") == "GATK-BP germline"
    assert workflows.workflow_name(READY2RUN, "PRIVATE") is None
    with pytest.raises(ValueError, match="Ready2Run too"):
        request(workflow_type="READY2RUN", role_arn="")
    with pytest.raises(ParamValidationError, match="roleArn"):
        client.start_run(workflowId=READY2RUN, workflowType="READY2RUN", outputUri=OUTPUT, requestId="r-2")


def test_the_fake_refuses_what_the_model_refuses() -> None:
    client = fake()

    with pytest.raises(ClientError, match="ValidationException") as raised:
        client.start_run(
            workflowId="wf-1",
            workflowType="PRIVATE",
            roleArn=ROLE,
            outputUri=OUTPUT,
            requestId="r" * 129,
            cacheBehavior="SOMETIMES",
        )
    message = str(raised.value)
    assert "workflowId" in message and "requestId: 129 characters" in message and "'SOMETIMES'" in message
    with pytest.raises(ParamValidationError, match="priority"):
        client.start_run(workflowId=WORKFLOW, roleArn=ROLE, outputUri=OUTPUT, requestId="r", priority=-1)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.start_run(workflowId="42", roleArn=ROLE, outputUri=OUTPUT, requestId="r")
    with pytest.raises(OmicsRunError, match="ResourceNotFoundException"):
        workflows_for(client).get_run("999")
    assert client.started_runs() == []


def test_settings_are_checked_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="1 to 18 digits"):
        request(workflow_id="wf-fastq", run_group_id="group-a")
    with pytest.raises(ValueError, match="s3://"):
        request(output_uri="/tmp/out")
    with pytest.raises(ValueError, match="CACHE_ALWAYS"):
        request(cache_behavior="ALWAYS")
