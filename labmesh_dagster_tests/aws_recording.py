"""boto3 clients that keep every SQS message the lab received, so a test can deliver them again."""

from __future__ import annotations

from typing import Any

from labmesh_dagster_tests.aws_fakes import ServiceClients


class RecordingClients(ServiceClients):
    """boto3 clients over moto that also keep ``(queue url, body)`` of every SQS message the lab received."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, str]] = []

    def __call__(self, service: str, connection: Any) -> Any:
        client = super().__call__(service, connection)
        if service == "sqs":
            client.meta.events.register("provide-client-params.sqs.ReceiveMessage", self._note_queue)
            client.meta.events.register("after-call.sqs.ReceiveMessage", self._keep)
        return client

    @staticmethod
    def _note_queue(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["queue_url"] = params["QueueUrl"]

    def _keep(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        queue_url = context.get("queue_url", "")
        self.received += [(queue_url, message["Body"]) for message in parsed.get("Messages", [])]
