"""The four zones' buckets, their event queues, and the buckets Dagster and S3 itself write to.

Every bucket is versioned, encrypted with the lab's KMS key, refuses plain HTTP
and blocks public access. The landing and final zones tell labmesh about new
objects through S3 event notifications to SQS (the landing and final sensors
read those queues; listing is their fallback), each queue with a dead-letter
queue so an event the sensor cannot take is kept, not lost.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ZONES = ("landing", "raw", "processed", "final")
"""labmesh's zones, one bucket each (`labmesh_dagster.core.keys.Zone`)."""

NOTIFIED_ZONES = ("landing", "final")
"""Zones whose new objects labmesh learns of by events: people and instruments write there."""


class Storage(Construct):
    """The lab's key, its zone buckets, the queues their events go to, and the log buckets."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "LabKey",
            description="labmesh: encrypts the zone buckets, queues, logs, secrets and database",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The queues have a key of their own: S3 must be allowed to use a queue's key for its notifications
        # (a key policy naming the bucket), while the bucket names its own key; one key would make a cycle.
        self.queue_key = kms.Key(
            self,
            "QueueKey",
            description="labmesh: encrypts the event queues",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # S3 server access logs cannot be written to a KMS-encrypted bucket (S3 managed keys only).
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.zones: dict[str, s3.Bucket] = {zone: self._bucket(zone, f"{bucket_prefix}-{zone}") for zone in ZONES}
        self.compute_logs = self._bucket("compute-logs", None)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letters: dict[str, sqs.Queue] = {}
        for zone in NOTIFIED_ZONES:
            queue, dead_letter = self.queue(f"{zone.capitalize()}Events")
            self.queues[zone] = queue
            self.dead_letters[zone] = dead_letter
            self.zones[zone].add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(queue))

    def _bucket(self, zone: str, name: str | None) -> s3.Bucket:
        return s3.Bucket(
            self,
            f"{zone.title().replace('-', '')}Bucket",
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{zone}/",
            removal_policy=RemovalPolicy.RETAIN,
        )

    def queue(self, name: str) -> tuple[sqs.Queue, sqs.Queue]:
        """A KMS-encrypted, TLS-only queue and its dead-letter queue (after 5 receives)."""
        dead_letter = sqs.Queue(
            self,
            f"{name}DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.queue_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        queue = sqs.Queue(
            self,
            name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.queue_key,
            enforce_ssl=True,
            # Longer than a sensor tick takes to act on a batch, so a message is not handed out twice at once.
            visibility_timeout=Duration.minutes(5),
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=dead_letter),
        )
        return queue, dead_letter
