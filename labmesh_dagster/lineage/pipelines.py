"""The pipelines one materialization ran, as its OpenLineage job facet names them.

Kept apart from `lineage.events` so that the Dagster side can describe the
pipelines it ran without importing openlineage-python (a second's import) until
the run records its lineage. Made from the pipelines contract's invocation and
result dicts (the planner's and the runner's, `pipeline_refs`), or from the
files' `Provenance` (one per invocation, `pipelines_of`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labmesh_dagster.core.manifest import Provenance


@dataclass(frozen=True)
class PipelineRef:
    """One pipeline, at one version, that a run ran on some of its inputs.

    ``command`` is the command as the pipelines file declares it (placeholders
    left in), which is the same for every input, or, made from provenance
    alone, the first invocation's command line; the command line each file was
    made by, with its paths, is in that file's provenance. ``tool_versions``
    are what the tools reported in this run (``{"fastp": "0.23.2"}``); when
    invocations disagree (an ECS image and a local install), both are kept.
    ``invocations`` counts the runs of it (0: not counted).
    """

    name: str
    version: str
    engine: str
    command: str
    tool_versions: Mapping[str, str] = field(default_factory=dict)
    invocations: int = 0


def _joined(values: dict[str, set[str]]) -> dict[str, str]:
    return {name: ", ".join(sorted(found)) for name, found in sorted(values.items())}


def pipelines_of(items: Iterable[PipelineRef | Provenance]) -> tuple[PipelineRef, ...]:
    """The refs as they are, plus one per pipeline and version of the provenances (one per invocation) given.

    What `LineageRun.pipelines` holds is read through this, so an asset may
    hand over either: its receipts' provenance, or refs it made itself.
    """
    given = list(items)
    refs = [item for item in given if isinstance(item, PipelineRef)]
    made: dict[tuple[str, str], list[Provenance]] = {}
    for item in given:
        if isinstance(item, Provenance):
            made.setdefault((item.pipeline, item.version), []).append(item)
    for (name, version), provenances in sorted(made.items()):
        provenances.sort(key=lambda provenance: provenance.invocation_id)
        unique = {provenance.invocation_id: provenance for provenance in provenances}.values()
        tools: dict[str, set[str]] = {}
        for provenance in unique:
            for tool, tool_version in provenance.tool_versions.items():
                tools.setdefault(tool, set()).add(tool_version)
        refs.append(
            PipelineRef(
                name=name,
                version=version,
                engine=", ".join(sorted({provenance.engine for provenance in unique})),
                command=provenances[0].command_line,
                tool_versions=_joined(tools),
                invocations=len(unique),
            )
        )
    return tuple(refs)


def declared_command(pipeline: Mapping[str, Any]) -> str:
    """The pipeline's command as one shell-quoted line; a HealthOmics workflow is named by its id instead."""
    argv = pipeline.get("command") or ()
    if argv:
        return shlex.join(str(part) for part in argv)
    workflow = pipeline.get("healthomics") or {}
    if workflow.get("workflow_id"):
        kind = str(workflow.get("workflow_type") or "PRIVATE")
        return f"HealthOmics {kind} workflow {workflow['workflow_id']}"
    return ""


def pipeline_refs(invocations: Iterable[Mapping[str, Any]], results: Iterable[Mapping[str, Any]]) -> list[PipelineRef]:
    """The distinct pipelines (by name and version) of ``invocations``, with the tool versions ``results`` reported.

    Results are matched to invocations by ``invocation_id``; an invocation
    without a result (reused, or not finished) still names its pipeline.
    """
    reported = {str(result["invocation_id"]): result for result in results}
    found: dict[tuple[str, str], tuple[Mapping[str, Any], dict[str, set[str]], set[str], set[str]]] = {}
    for invocation in invocations:
        pipeline = invocation["pipeline"]
        key = (str(pipeline["name"]), str(pipeline["version"]))
        _, tools, engines, ids = found.setdefault(key, (pipeline, {}, set(), set()))
        ids.add(str(invocation["invocation_id"]))
        result = reported.get(str(invocation["invocation_id"])) or {}
        engines.add(str(result.get("engine") or pipeline.get("engine") or "local"))
        for tool, version in (result.get("tool_versions") or {}).items():
            tools.setdefault(str(tool), set()).add(str(version))
    return [
        PipelineRef(
            name=name,
            version=version,
            engine=", ".join(sorted(engines)),
            command=declared_command(pipeline),
            tool_versions=_joined(tools),
            invocations=len(ids),
        )
        for (name, version), (pipeline, tools, engines, ids) in sorted(found.items())
    ]
