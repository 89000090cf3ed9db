"""OpenLineage run events for one materialization of one labmesh asset for one experiment.

A materialization is one OpenLineage run: a START event when it begins, then
COMPLETE or FAIL. Both carry the same run id, derived from the Dagster run id,
the asset and the experiment, so replaying a materialization (or re-posting its
events after a crash) describes the same run again instead of inventing one:
lineage stays idempotent like everything else in labmesh.

What each event says, and why:

- START lists the inputs with their versions (their manifests were read
  before the work began) and the outputs by name only: nothing was written yet.
- COMPLETE adds each output's version (its manifest digest) and, as the
  ``labmesh_files`` facet, its files with their checksums and the keys each
  was computed from: file-level lineage, which no standard facet carries.
- FAIL names the same datasets but no output versions, since a failed run
  published nothing, and carries the error in the standard ``errorMessage`` facet.
- A run that ran pipelines (``processed_dataset``) names them, with their
  versions, engines, declared commands and the tool versions they reported, in
  the ``labmesh_pipelines`` job facet; each file a pipeline made carries
  ``producedBy`` in ``labmesh_files``: the pipeline, its version, the
  invocation, and the exact inputs (key and sha256) it read.

Events must stay small whatever a dataset holds: DataZone's `PostLineageEvent`
refuses events over 300,000 bytes, and an experiment can hold tens of thousands
of files. The file list is therefore capped by count and by encoded size, the
facet says how many files it left out, and it points at the manifest, which
always lists them all. Free text from the ELN (descriptions, errors) is
clipped for the same reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from importlib import metadata
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    ownership_dataset,
    ownership_job,
    processing_engine_run,
    storage_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.utils import RedactMixin

from labmesh_dagster import __version__
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import MANIFEST_PATH, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry, Provenance
from labmesh_dagster.lineage.naming import DatasetName, dataset_name, job_name
from labmesh_dagster.lineage.pipelines import PipelineRef, pipelines_of

# labmesh publishes no schemas yet. `.example` is reserved (RFC 2606), so these
# URIs can never point at somebody else's site; move them to the project's home
# once it serves the schemas in `FACET_SCHEMAS`.
LABMESH_BASE_URL = "https://labmesh.example"
PRODUCER = f"{LABMESH_BASE_URL}/labmesh-dagster/{__version__}"
OPENLINEAGE_SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

RUN_FACET = "labmesh_run"
DATASET_FACET = "labmesh_dataset"
FILES_FACET = "labmesh_files"
PIPELINES_FACET = "labmesh_pipelines"

FILE_LIST_LIMIT = 1000
# Leaves room under DataZone's 300,000-byte limit for the other facets and datasets.
FILE_LIST_BUDGET = 200_000
DERIVED_FROM_LIMIT = 100
TEXT_LIMIT = 4000

# Never change: the run ids of replayed materializations are derived from it.
_RUN_ID_NAMESPACE = uuid.UUID("a919a854-4a69-5539-ac4b-76c798cd8269")

JOB_DESCRIPTIONS: Mapping[str, str] = {
    "experiment": (
        "Fetches the experiment record from the ELN or LIMS, provisions the experiment's folder in every zone "
        "and registers it in the catalog."
    ),
    "raw_dataset": (
        "Promotes instrument output from the landing zone to the raw zone (checksum verified before landing is "
        "cleared), extracts each file's metadata and writes the dataset's manifest."
    ),
    "processed_dataset": (
        "Runs the pipeline on the raw files and writes its outputs, with file-level lineage, and a manifest to "
        "the processed zone."
    ),
    "final_dataset": "Publishes the files people wrote to the final zone, with their lineage to the processed dataset.",
}


def _schema_url(facet: str) -> str:
    return f"{LABMESH_BASE_URL}/spec/facets/1-0-0/{facet}.json#/$defs/{facet}"


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_start(text: str, limit: int) -> str:
    """Python prints the exception last, so a stack trace keeps its end."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


@attr.define
class LabmeshRunFacet(RunFacet):
    """Ties an OpenLineage run back to its experiment and to the Dagster run that made it.

    The run id is a uuid5, so without this facet nobody could get from a
    catalog's run back to Dagster's logs, or know which partition it was.
    """

    experimentId: str  # noqa: N815
    dagsterRunId: str  # noqa: N815
    experimentTitle: str | None = attr.field(default=None)  # noqa: N815
    project: str | None = attr.field(default=None)
    platform: str | None = attr.field(default=None)
    protocol: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LabmeshRunFacet")


@attr.define
class LabmeshDatasetFacet(DatasetFacet):
    """The experiment and zone a dataset belongs to, which its S3 or file name only implies.

    Bucket names are configurable, so the zone cannot be read back from a name;
    the graph needs both to group datasets by experiment and order them by zone.
    """

    experimentId: str  # noqa: N815
    zone: str

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LabmeshDatasetFacet")


@attr.define
class LabmeshPipeline(RedactMixin):
    """One pipeline a run ran: ``command`` as the pipelines file declares it, ``toolVersions`` as the tools said."""

    name: str
    version: str
    engine: str
    command: str
    toolVersions: dict[str, str] = attr.field(factory=dict)  # noqa: N815
    invocationCount: int | None = attr.field(default=None)  # noqa: N815


@attr.define
class LabmeshPipelinesJobFacet(JobFacet):
    """The pipelines, at their versions, that this run of the job ran.

    A pipeline's version is the processed dataset's code version; naming it on
    the job lets a lineage reader tell which datasets an old version made.
    """

    pipelines: list[LabmeshPipeline] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LabmeshPipelinesJobFacet")


@attr.define
class LabmeshInput(RedactMixin):
    key: str
    sha256: str


@attr.define
class LabmeshProducedBy(RedactMixin):
    """What made one file: the pipeline and version, its invocation, and the exact inputs it read.

    ``inputCount`` appears only when ``inputs`` was cut (a MultiQC report reads every output of its experiment).
    """

    pipeline: str
    version: str
    invocationId: str  # noqa: N815
    inputs: list[LabmeshInput] = attr.field(factory=list)
    inputCount: int | None = attr.field(default=None)  # noqa: N815


@attr.define
class LabmeshFile(RedactMixin):
    """One file of an output dataset; ``derivedFromCount`` appears only when ``derivedFrom`` was cut;
    ``producedBy`` only for a file a pipeline made."""

    key: str
    size: int
    sha256: str
    format: str
    derivedFrom: list[str] = attr.field(factory=list)  # noqa: N815
    derivedFromCount: int | None = attr.field(default=None)  # noqa: N815
    producedBy: LabmeshProducedBy | None = attr.field(default=None)  # noqa: N815


@attr.define
class LabmeshFilesOutputDatasetFacet(OutputDatasetFacet):
    """The files a run wrote and what each was computed from: file-level lineage.

    ``fileCount`` and ``totalBytes`` cover the whole dataset; ``files`` may list
    fewer (``truncated``), in key order, and ``manifestUri`` lists them all.
    """

    fileCount: int  # noqa: N815
    totalBytes: int  # noqa: N815
    truncated: bool
    files: list[LabmeshFile] = attr.field(factory=list)
    manifestUri: str | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LabmeshFilesOutputDatasetFacet")


def _facet_schema(facet: str, key: str, base: str, properties: Mapping[str, Any], required: list[str]) -> dict:
    url = _schema_url(facet).split("#", 1)[0]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "$defs": {
            facet: {
                "allOf": [
                    {"$ref": f"{OPENLINEAGE_SPEC}#/$defs/{base}"},
                    {"type": "object", "properties": dict(properties), "required": required},
                ],
                "type": "object",
            }
        },
        "type": "object",
        "properties": {key: {"$ref": f"#/$defs/{facet}"}},
    }


_TEXT = {"type": "string"}
_COUNT = {"type": "integer", "minimum": 0}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}

# JSON Schemas of labmesh's own facets, laid out like OpenLineage's facet files
# and keyed by their `$id`, so a consumer (or a test) can validate them offline.
FACET_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    schema["$id"]: schema
    for schema in (
        _facet_schema(
            "LabmeshRunFacet",
            RUN_FACET,
            "RunFacet",
            {
                "experimentId": _TEXT,
                "dagsterRunId": _TEXT,
                "experimentTitle": _TEXT,
                "project": _TEXT,
                "platform": _TEXT,
                "protocol": _TEXT,
            },
            ["experimentId", "dagsterRunId"],
        ),
        _facet_schema(
            "LabmeshDatasetFacet",
            DATASET_FACET,
            "DatasetFacet",
            {"experimentId": _TEXT, "zone": {"enum": [zone.value for zone in Zone]}},
            ["experimentId", "zone"],
        ),
        _facet_schema(
            "LabmeshFilesOutputDatasetFacet",
            FILES_FACET,
            "OutputDatasetFacet",
            {
                "fileCount": _COUNT,
                "totalBytes": _COUNT,
                "truncated": {"type": "boolean"},
                "manifestUri": _TEXT,
                "files": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": _TEXT,
                            "size": _COUNT,
                            "sha256": _SHA256,
                            "format": _TEXT,
                            "derivedFrom": {"type": "array", "items": _TEXT},
                            "derivedFromCount": _COUNT,
                            "producedBy": {
                                "type": "object",
                                "properties": {
                                    "pipeline": _TEXT,
                                    "version": _TEXT,
                                    "invocationId": _TEXT,
                                    "inputs": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {"key": _TEXT, "sha256": _SHA256},
                                            "required": ["key", "sha256"],
                                            "additionalProperties": False,
                                        },
                                    },
                                    "inputCount": _COUNT,
                                },
                                "required": ["pipeline", "version", "invocationId", "inputs"],
                                "additionalProperties": False,
                            },
                        },
                        "required": ["key", "size", "sha256", "format", "derivedFrom"],
                        "additionalProperties": False,
                    },
                },
            },
            ["fileCount", "totalBytes", "truncated", "files"],
        ),
        _facet_schema(
            "LabmeshPipelinesJobFacet",
            PIPELINES_FACET,
            "JobFacet",
            {
                "pipelines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": _TEXT,
                            "version": _TEXT,
                            "engine": _TEXT,
                            "command": _TEXT,
                            "toolVersions": {"type": "object", "additionalProperties": _TEXT},
                            "invocationCount": _COUNT,
                        },
                        "required": ["name", "version", "engine", "command", "toolVersions"],
                        "additionalProperties": False,
                    },
                },
            },
            ["pipelines"],
        ),
    )
}


def openlineage_run_id(dagster_run_id: str, asset: str, experiment_id: str) -> str:
    """The OpenLineage run id of one asset's materialization for one experiment within one Dagster run.

    A uuid5 of the three, so the START and the COMPLETE or FAIL of a
    materialization, and any replay of them, agree without storing anything.
    A Dagster run that materializes several partitions or assets still yields
    one OpenLineage run for each.
    """
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, json.dumps([dagster_run_id, asset, experiment_id])))


@dataclass(frozen=True)
class DatasetRef:
    """One experiment's folder in one zone, as lineage sees it.

    ``uri`` is the store's location of the folder (``s3://lm-raw/EXP-1/`` or
    ``file:///lab/raw/EXP-1/``); ``manifest`` is its manifest when one has
    been read or written, and supplies the version and the file list.
    """

    uri: str
    zone: Zone
    manifest: Manifest | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", Zone(self.zone))
        dataset_name(self.uri)  # a URI lineage cannot name is refused here, not when the event is posted
        if self.manifest is not None and self.manifest.zone != self.zone.value:
            raise ValueError(f"{self.uri}: the manifest is the {self.manifest.zone} zone's, not the {self.zone}'s")

    @property
    def name(self) -> DatasetName:
        return dataset_name(self.uri)

    @property
    def manifest_uri(self) -> str:
        return f"{self.uri.rstrip('/')}/{MANIFEST_PATH}"

    @cached_property
    def version(self) -> str | None:
        """The manifest digest, computed once: START and the end event both need it, and it hashes every entry."""
        return self.manifest.digest if self.manifest is not None else None


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(moment).__name__}")
    # Naive times are taken as UTC, as everywhere else in labmesh.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Materialization:
    """One asset materialized for one experiment: the unit an OpenLineage run describes.

    ``description`` says what the asset does (defaults to `JOB_DESCRIPTIONS`);
    ``pipelines`` are the pipelines the run ran (the ``labmesh_pipelines`` job facet, absent when none);
    ``job_owners`` are the asset's owners (``team:lab-informatics``). They are
    not the experiment's owner: one job serves every experiment, and catalogs
    keep a job's latest facets, so experiment owners there would flip from lab
    to lab with every run. The experiment's owner and group own its datasets.
    """

    asset: str
    run_id: str
    experiment: ExperimentRecord
    started: datetime
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    description: str | None = None
    job_owners: tuple[str, ...] = ()
    pipelines: tuple[PipelineRef, ...] = ()

    def __post_init__(self) -> None:
        job_name(self.asset)
        object.__setattr__(self, "pipelines", pipelines_of(self.pipelines))
        if not self.run_id:
            raise ValueError(f"{self.asset}: a materialization needs its Dagster run id")
        object.__setattr__(self, "started", _utc(self.started, "started"))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "job_owners", tuple(self.job_owners))
        for role, refs in (("input", self.inputs), ("output", self.outputs)):
            names = [ref.name for ref in refs]
            if len(set(names)) != len(names):
                raise ValueError(f"{self.asset}: an {role} dataset is listed twice")
            for ref in refs:
                if ref.manifest is not None and ref.manifest.experiment_id != self.experiment.id:
                    raise ValueError(
                        f"{self.asset}: {ref.uri} holds a manifest of {ref.manifest.experiment_id}, "
                        f"not of {self.experiment.id}"
                    )

    @property
    def openlineage_run_id(self) -> str:
        return openlineage_run_id(self.run_id, self.asset, self.experiment.id)


def _owners(experiment: ExperimentRecord) -> list[str]:
    # URNs as the ownership facets recommend: `user:` for a person, `team:` for a group.
    owners = [f"user:{experiment.owner}"] if experiment.owner else []
    return owners + ([f"team:{experiment.group}"] if experiment.group else [])


def _job(materialization: Materialization, producer: str) -> Job:
    namespace, name = job_name(materialization.asset)
    description = materialization.description or JOB_DESCRIPTIONS.get(
        materialization.asset, f"The labmesh asset {materialization.asset}, one partition per experiment."
    )
    facets: dict[str, JobFacet] = {
        "documentation": documentation_job.DocumentationJobFacet(description=_clip(description), producer=producer),
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="DAGSTER", jobType="ASSET", producer=producer
        ),
    }
    if materialization.job_owners:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=owner, type="OWNER") for owner in materialization.job_owners],
            producer=producer,
        )
    if materialization.pipelines:
        facets[PIPELINES_FACET] = LabmeshPipelinesJobFacet(
            pipelines=[
                LabmeshPipeline(
                    name=pipeline.name,
                    version=pipeline.version,
                    engine=pipeline.engine,
                    command=_clip(pipeline.command),
                    toolVersions={
                        tool: _clip(version, 200) for tool, version in sorted(pipeline.tool_versions.items())
                    },
                    invocationCount=pipeline.invocations or None,
                )
                for pipeline in materialization.pipelines
            ],
            producer=producer,
        )
    return Job(namespace=namespace, name=name, facets=facets)


@cache
def _openlineage_version() -> str:
    try:
        return metadata.version("openlineage-python")
    except metadata.PackageNotFoundError:
        return "unknown"


def _run(materialization: Materialization, producer: str, error: str | None, stack_trace: str | None) -> Run:
    experiment = materialization.experiment
    facets: dict[str, RunFacet] = {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_iso(materialization.started), producer=producer
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name="labmesh", openlineageAdapterVersion=_openlineage_version(), producer=producer
        ),
        RUN_FACET: LabmeshRunFacet(
            experimentId=experiment.id,
            dagsterRunId=materialization.run_id,
            experimentTitle=_clip(experiment.title, 500),
            project=experiment.project,
            platform=experiment.platform,
            protocol=experiment.protocol,
            producer=producer,
        ),
    }
    if error is not None:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=_clip(error or "failed without a message"),
            programmingLanguage="python",
            stackTrace=_clip_start(stack_trace, 3 * TEXT_LIMIT) if stack_trace else None,
            producer=producer,
        )
    return Run(runId=materialization.openlineage_run_id, facets=facets)


def _dataset_facets(
    ref: DatasetRef, experiment: ExperimentRecord, producer: str, *, versioned: bool
) -> dict[str, DatasetFacet]:
    namespace, _ = ref.name
    description = f"{experiment.title} ({experiment.id}), {ref.zone.value} zone"
    if experiment.description:
        description += "\n\n" + experiment.description
    facets: dict[str, DatasetFacet] = {
        "documentation": documentation_dataset.DocumentationDatasetFacet(
            description=_clip(description), producer=producer
        ),
        "storage": storage_dataset.StorageDatasetFacet(
            storageLayer="s3" if namespace.startswith("s3://") else "file",
            fileFormat=ref.manifest.formats[0] if ref.manifest and len(ref.manifest.formats) == 1 else None,
            producer=producer,
        ),
        DATASET_FACET: LabmeshDatasetFacet(experimentId=experiment.id, zone=ref.zone.value, producer=producer),
    }
    owners = _owners(experiment)
    if owners:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=owner, type="OWNER") for owner in owners], producer=producer
        )
    if versioned and ref.version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=ref.version, producer=producer
        )
    return facets


def _produced_by(made_by: Provenance | None, input_limit: int) -> LabmeshProducedBy | None:
    if made_by is None:
        return None
    inputs = made_by.inputs
    return LabmeshProducedBy(
        pipeline=made_by.pipeline,
        version=made_by.version,
        invocationId=made_by.invocation_id,
        inputs=[LabmeshInput(key=item.key, sha256=item.sha256) for item in inputs[:input_limit]],
        inputCount=len(inputs) if len(inputs) > input_limit else None,
    )


def _listed_file(entry: ManifestEntry, derived_from_limit: int) -> LabmeshFile:
    derived = list(entry.derived_from)
    return LabmeshFile(
        key=entry.key,
        size=entry.size,
        sha256=entry.sha256,
        format=entry.format,
        derivedFrom=derived[:derived_from_limit],
        derivedFromCount=len(derived) if len(derived) > derived_from_limit else None,
        producedBy=_produced_by(entry.produced_by, derived_from_limit),
    )


def _was_cut(listed: LabmeshFile) -> bool:
    return listed.derivedFromCount is not None or (
        listed.producedBy is not None and listed.producedBy.inputCount is not None
    )


def files_facet(
    manifest: Manifest,
    *,
    manifest_uri: str | None = None,
    limit: int = FILE_LIST_LIMIT,
    budget: int = FILE_LIST_BUDGET,
    derived_from_limit: int = DERIVED_FROM_LIMIT,
    producer: str = PRODUCER,
) -> LabmeshFilesOutputDatasetFacet:
    """The ``labmesh_files`` facet of a dataset: its files in key order, up to ``limit`` files and ``budget`` bytes.

    Manifests sort their entries, so the same manifest always lists the same
    files and the event posted again is the same event.
    """
    files: list[LabmeshFile] = []
    used = 0
    for entry in manifest.entries[:limit]:
        listed = _listed_file(entry, derived_from_limit)
        encoded = attr.asdict(listed)
        if listed.producedBy is None:
            del encoded["producedBy"]  # the event drops nulls: a file no pipeline made costs what it always did
        size = len(json.dumps(encoded))
        if used + size > budget:
            break
        files.append(listed)
        used += size
    return LabmeshFilesOutputDatasetFacet(
        fileCount=manifest.file_count,
        totalBytes=manifest.total_bytes,
        truncated=len(files) < manifest.file_count or any(_was_cut(item) for item in files),
        files=files,
        manifestUri=manifest_uri,
        producer=producer,
    )


def _event(
    materialization: Materialization,
    state: RunState,
    at: datetime,
    producer: str,
    error: str | None = None,
    stack_trace: str | None = None,
) -> RunEvent:
    experiment = materialization.experiment
    completed = state is RunState.COMPLETE
    inputs = [
        InputDataset(
            namespace=ref.name.namespace,
            name=ref.name.name,
            facets=_dataset_facets(ref, experiment, producer, versioned=True),
        )
        for ref in materialization.inputs
    ]
    outputs = []
    # The byte budget is the event's, not each output's: two large outputs share it.
    budget = FILE_LIST_BUDGET // max(1, sum(ref.manifest is not None for ref in materialization.outputs))
    for ref in materialization.outputs:
        output_facets: dict[str, OutputDatasetFacet] = {}
        if completed and ref.manifest is not None:
            output_facets[FILES_FACET] = files_facet(
                ref.manifest, manifest_uri=ref.manifest_uri, budget=budget, producer=producer
            )
        outputs.append(
            OutputDataset(
                namespace=ref.name.namespace,
                name=ref.name.name,
                facets=_dataset_facets(ref, experiment, producer, versioned=completed),
                outputFacets=output_facets,
            )
        )
    return RunEvent(
        eventType=state,
        eventTime=_iso(at),
        run=_run(materialization, producer, error, stack_trace),
        job=_job(materialization, producer),
        inputs=inputs,
        outputs=outputs,
        producer=producer,
    )


def start_event(materialization: Materialization, *, producer: str = PRODUCER) -> RunEvent:
    """The START event, at ``materialization.started``: post it before the work, so a crash still shows."""
    return _event(materialization, RunState.START, materialization.started, producer)


def end_event(
    materialization: Materialization,
    *,
    ended: datetime,
    error: str | None = None,
    stack_trace: str | None = None,
    producer: str = PRODUCER,
) -> RunEvent:
    """COMPLETE, or FAIL when ``error`` is given (an empty message still fails: it is a failure without words)."""
    ended = _utc(ended, "ended")
    if ended < materialization.started:
        raise ValueError(
            f"{materialization.asset}: ended {_iso(ended)} before it started {_iso(materialization.started)}"
        )
    state = RunState.COMPLETE if error is None else RunState.FAIL
    return _event(materialization, state, ended, producer, error, stack_trace)


def materialization_events(
    *,
    asset: str,
    run_id: str,
    experiment: ExperimentRecord,
    inputs: Sequence[DatasetRef] = (),
    outputs: Sequence[DatasetRef] = (),
    started: datetime,
    ended: datetime,
    error: str | None = None,
    stack_trace: str | None = None,
    description: str | None = None,
    job_owners: Sequence[str] = (),
    pipelines: Sequence[PipelineRef | Provenance] = (),
    producer: str = PRODUCER,
) -> tuple[RunEvent, RunEvent]:
    """START and then COMPLETE (or FAIL, given ``error``) of one materialization, for when both are posted after it."""
    materialization = Materialization(
        asset=asset,
        run_id=run_id,
        experiment=experiment,
        started=started,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        description=description,
        job_owners=tuple(job_owners),
        pipelines=pipelines_of(pipelines),
    )
    return (
        start_event(materialization, producer=producer),
        end_event(materialization, ended=ended, error=error, stack_trace=stack_trace, producer=producer),
    )


def event_to_dict(event: RunEvent | Mapping[str, Any]) -> dict[str, Any]:
    """The event as JSON-ready data, nulls dropped, the way the OpenLineage client sends it."""
    return Serde.to_dict(dict(event) if isinstance(event, Mapping) else event)


def event_to_json(event: RunEvent | Mapping[str, Any]) -> str:
    """One line of ASCII JSON with sorted keys: the same event always encodes to the same bytes."""
    return json.dumps(event_to_dict(event), sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def events_to_json_lines(events: Iterable[RunEvent | Mapping[str, Any]]) -> str:
    """JSON lines, one event a line, each line ending in a newline (an empty string for no events)."""
    return "".join(event_to_json(event) + "\n" for event in events)


def event_from_json(text: str | bytes) -> dict[str, Any]:
    """A run event read back from JSON, as the dict `event_to_dict` gives.

    The client has no parser back to `RunEvent` and custom facets would not
    survive one, so consumers here (the graph, the catalog ports) work on
    dicts. Anything that is not a run event is refused with what is missing.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"an OpenLineage run event is a JSON object, got {type(data).__name__}")
    missing = [name for name in ("eventType", "eventTime", "run", "job") if not data.get(name)]
    for part, names in (("run", ("runId",)), ("job", ("namespace", "name"))):
        if part not in missing:
            value = data[part]
            missing += [f"{part}.{name}" for name in names if not (isinstance(value, dict) and value.get(name))]
    if missing:
        raise ValueError(f"not an OpenLineage run event: no {', '.join(missing)}")
    return data


def events_from_json_lines(text: str | bytes) -> list[dict[str, Any]]:
    """Every event of a JSON-lines text; blank lines are skipped and a bad line is named by its number."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(event_from_json(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"line {number}: {exc}") from exc
    return events
