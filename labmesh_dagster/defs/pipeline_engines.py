"""Where pipelines run: each engine handed its invocations, each answering with one result per invocation.

- ``local``: the runner (`labmesh_dagster.pipelines.tool_runner`) as a subprocess through Dagster Pipes,
  with each pipeline's time and memory limits applied by the runner to the tool it starts;
- ``ecs``: the same runner as an ECS task through `dagster_aws.pipes.PipesECSClient`;
- ``healthomics``: an AWS HealthOmics workflow run per invocation.

An engine the deployment cannot reach (ECS or HealthOmics without the aws profile) fails its invocations
with a reason saying so, rather than the whole run.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg
from pydantic import Field

from labmesh_dagster import ports
from labmesh_dagster.connectors.omics.workflows import HealthOmicsWorkflows
from labmesh_dagster.defs.previews import chosen_previews
from labmesh_dagster.defs.resources import AwsResource
from labmesh_dagster.pipelines.healthomics_engine import HealthOmicsConfigError, run_invocation_on_healthomics
from labmesh_dagster.pipelines.tool_runner import TOOL_VERSIONS_CACHE_EXTRA
from labmesh_dagster.settings import AwsConnection


def run_local(
    context: dg.AssetExecutionContext,
    client: dg.PipesSubprocessClient,
    store_config: Mapping[str, Any],
    invocations: Sequence[Mapping[str, Any]],
    tool_versions_cache: str | None = None,
) -> list[dict[str, Any]]:
    """The local engine: the runner as a subprocess through Pipes, reporting a result per invocation."""
    extras: dict[str, Any] = {"store": dict(store_config), "invocations": [dict(item) for item in invocations]}
    if tool_versions_cache:
        extras[TOOL_VERSIONS_CACHE_EXTRA] = tool_versions_cache
    with chosen_previews():  # Pipes reads a preview member of its own message reader
        completed = client.run(
            command=[sys.executable, "-m", "labmesh_dagster.pipelines.tool_runner"], context=context, extras=extras
        )
    return [
        dict(result)
        for message in completed.get_custom_messages()
        if isinstance(message, Mapping)
        for result in message.get("results", [])
    ]


def _unreachable(invocations: Sequence[Mapping[str, Any]], engine: str, why: str) -> list[dict[str, Any]]:
    return [
        {"invocation_id": item["invocation_id"], "status": "failed", "engine": engine, "reason": why}
        for item in invocations
    ]


def _config_failures(invocations: Sequence[Mapping[str, Any]], engine: str, error: Exception) -> list[dict[str, Any]]:
    return _unreachable(invocations, engine, f"the {engine} run could not be started: {error}")


class PipelineEnginesResource(AwsResource):
    """How `processed_dataset` reaches each engine its pipelines name. The AWS connection (``endpoint_url``) is
    ECS's; the AWS fields matter only for ecs and healthomics pipelines, and only in the aws profile."""

    aws_profile: bool = Field(default=False, description="Whether ECS and HealthOmics can be reached (aws profile).")
    logs_endpoint_url: str | None = Field(
        default=None, description="Endpoint of CloudWatch Logs, where an ECS task's Pipes messages are read."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of S3, where a HealthOmics run's outputs are read; None for AWS."
    )
    omics_endpoint_url: str | None = Field(default=None, description="Endpoint of HealthOmics; None for AWS.")
    tool_versions_cache: str | None = Field(
        default=None,
        description="A file where local pipelines keep the versions their tools report, so each is asked once"
        " per installed tool rather than in every run; None asks every time.",
    )
    ecs_poll_seconds: float = Field(default=6.0, description="How often a running ECS task is checked.")
    healthomics_poll_seconds: float = Field(
        default=30.0, description="First wait between checks of a HealthOmics run (it grows to 300 s)."
    )
    healthomics_parallel_runs: int = Field(
        default=16, description="HealthOmics runs one processed_dataset run starts and follows at once."
    )

    def _client(self, service: str, endpoint_url: str | None) -> Any:
        return self.clients(service, AwsConnection(endpoint_url, self.region_name, self.max_attempts))

    def _ecs(
        self,
        context: dg.AssetExecutionContext,
        store_config: Mapping[str, Any],
        batch: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        # Imported here: dagster_aws.pipes costs most of a second to import, paid by every run process of a lab
        # that never starts an ECS task otherwise.
        from labmesh_dagster.defs.pipeline_ecs import run_on_ecs

        return run_on_ecs(
            context,
            ecs_client=self._client("ecs", self.endpoint_url),
            logs_client=self._client("logs", self.logs_endpoint_url),
            invocations=batch,
            store_config=store_config,
            poll_seconds=self.ecs_poll_seconds,
        )

    def _healthomics(self, store_config: Mapping[str, Any], batch: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Each invocation is one workflow run; they are started and followed side by side (runs take hours)."""
        workflows = HealthOmicsWorkflows(
            self._client("omics", self.omics_endpoint_url), s3_client=self._client("s3", self.s3_endpoint_url)
        )
        store = ports.open_store(dict(store_config), self.clients)

        def one(invocation: Mapping[str, Any]) -> dict[str, Any]:
            try:
                return run_invocation_on_healthomics(invocation, workflows, store, poll=self.healthomics_poll_seconds)
            except HealthOmicsConfigError as exc:
                return _config_failures([invocation], "healthomics", exc)[0]

        with ThreadPoolExecutor(max_workers=max(1, min(len(batch), self.healthomics_parallel_runs))) as pool:
            return list(pool.map(one, batch))

    def execute(
        self,
        context: dg.AssetExecutionContext,
        store_config: Mapping[str, Any],
        invocations: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        by_engine: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for invocation in invocations:
            by_engine[str(invocation["pipeline"].get("engine") or "local")].append(invocation)
        results: list[dict[str, Any]] = []
        for engine, batch in sorted(by_engine.items()):
            if engine == "local":
                # A tool's failure is a result; the runner itself dying fails the run, which is resumed.
                results += run_local(context, dg.PipesSubprocessClient(), store_config, batch, self.tool_versions_cache)
            elif not self.aws_profile:
                results += _unreachable(
                    batch, engine, f"the {engine} engine needs the aws profile (LABMESH_PROFILE=aws)"
                )
            elif engine == "ecs":
                results += self._ecs(context, store_config, batch)
            else:
                results += self._healthomics(store_config, batch)
        return results
