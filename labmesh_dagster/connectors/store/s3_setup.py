"""What provisioning sets up around an experiment's S3 prefixes, as plain data.

Bucket-level settings (event notifications, the multipart clean-up rule) are
merged into whatever configuration a bucket already has, never replacing a
lab's own rules, and written only when something is missing, so provisioning
any number of experiments stays idempotent and cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

NOTIFICATION_ID = "labmesh-object-events"
LIFECYCLE_RULE_ID = "labmesh-abort-incomplete-multipart-uploads"
ABORT_INCOMPLETE_AFTER_DAYS = 7


def queue_arn(queue_url: str, region: str, partition: str = "aws") -> str:
    """The ARN of an SQS queue from its URL (``.../<account>/<name>``), without an API call."""
    parts = [part for part in urlparse(queue_url).path.split("/") if part]
    if len(parts) != 2:
        raise ValueError(f"{queue_url!r} is not an SQS queue URL ending in /<account>/<name>")
    account, name = parts
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def with_notification(configuration: Mapping[str, Any], arn: str) -> dict[str, Any] | None:
    """The bucket's notification configuration with labmesh's queue added, or None if already there."""
    queues = [dict(item) for item in configuration.get("QueueConfigurations", [])]
    if any(item.get("QueueArn") == arn and item.get("Id") == NOTIFICATION_ID for item in queues):
        return None
    queues = [item for item in queues if item.get("Id") != NOTIFICATION_ID]
    queues.append({"Id": NOTIFICATION_ID, "QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]})
    merged = {key: value for key, value in configuration.items() if key != "ResponseMetadata"}
    merged["QueueConfigurations"] = queues
    return merged


def with_abort_rule(rules: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The bucket's lifecycle rules with the multipart clean-up rule added, or None if already there."""
    if any(rule.get("ID") == LIFECYCLE_RULE_ID for rule in rules):
        return None
    return [
        *rules,
        {
            "ID": LIFECYCLE_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_AFTER_DAYS},
        },
    ]


def experiment_access_policy(buckets: Mapping[str, str], experiment_id: str, partition: str = "aws") -> dict[str, Any]:
    """Least privilege for one experiment: write landing and final, read raw, processed and final; nothing else.

    Generated and stored beside the data for the lab's administrators to attach
    to a role or group; labmesh never applies IAM policies itself.
    """
    prefix = f"{experiment_id}/"

    def objects(zone: str) -> str:
        return f"arn:{partition}:s3:::{buckets[zone]}/{prefix}*"

    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListTheExperimentOnly",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": [f"arn:{partition}:s3:::{bucket}" for bucket in buckets.values()],
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
            },
            {
                "Sid": "DeliverInstrumentOutput",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": [objects("landing")],
            },
            {
                "Sid": "PublishFinalFiles",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [objects("final")],
            },
            {
                "Sid": "ReadTheExperimentsData",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectTagging"],
                "Resource": [objects("raw"), objects("processed"), objects("final")],
            },
        ],
    }
