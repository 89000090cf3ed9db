"""`content_vectors_sensor`: starts the ``content_vectors`` job while the content index wants vectors."""

import dagster as dg

from labmesh_dagster.defs.resources import ContentIndexResource
from labmesh_dagster.defs.vectors import JOB_NAME

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def content_vectors_sensor(context: dg.SensorEvaluationContext, content_index: ContentIndexResource) -> dg.SensorResult:
    """Passages indexed by their words only (a large delivery's) get their vectors from the content_vectors job.

    One run at a time: a tick reads one flag of the index and, when it is set
    and no run of the job is queued or running, requests the next run.
    """
    if not content_index.get_index().vectors_wanted():
        return dg.SensorResult(skip_reason="every passage has its vector")
    active = context.instance.get_run_records(dg.RunsFilter(job_name=JOB_NAME, statuses=ACTIVE), limit=1)
    if active:
        return dg.SensorResult(skip_reason=f"run {active[0].dagster_run.run_id} is embedding passages")
    return dg.SensorResult(run_requests=[dg.RunRequest()])
