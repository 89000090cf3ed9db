"""EventBridge rules: Benchling's events to the ELN queue, HealthOmics run status to a queue of its own.

Benchling publishes through an EventBridge partner event source; the operator
accepts it, which creates a partner event bus named after the source
(``aws.partner/benchling.com/<tenant>/<app>``), given here as a parameter.
Benchling's go to the queue the ELN sensor reads (``LABMESH_SQS_ELN_QUEUE_URL``),
which reads them as Benchling events. HealthOmics emits "Run Status Change" on
the default bus; those go to a queue of their own, since the ELN inbox ignores
what is not an entry event: labmesh polls HealthOmics runs today
(``LABMESH_OMICS_POLL_SECONDS``), and the queue keeps the status changes for
operators and for a consumer to come. Each target has a dead-letter queue for
events EventBridge could not deliver.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class LabEvents(Construct):
    """The two rules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        eln_queue: tuple[sqs.Queue, sqs.Queue],
        omics_queue: tuple[sqs.Queue, sqs.Queue],
        benchling_bus_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        benchling_bus = events.EventBus.from_event_bus_name(self, "BenchlingBus", benchling_bus_name)
        self.benchling = events.Rule(
            self,
            "BenchlingEvents",
            description="labmesh: Benchling entry events to the ELN queue",
            event_bus=benchling_bus,
            event_pattern=events.EventPattern(
                source=events.Match.prefix("aws.partner/benchling.com"),
                detail_type=events.Match.prefix("v2.entry."),
            ),
            targets=[targets.SqsQueue(eln_queue[0], dead_letter_queue=eln_queue[1])],
        )
        self.omics = events.Rule(
            self,
            "HealthOmicsRunStatus",
            description="labmesh: HealthOmics run status changes to their queue",
            event_pattern=events.EventPattern(source=["aws.omics"], detail_type=["Run Status Change"]),
            targets=[targets.SqsQueue(omics_queue[0], dead_letter_queue=omics_queue[1])],
        )
