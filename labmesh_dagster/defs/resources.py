"""Resources: typed, configurable handles on the ports, one abstract base per port.

Assets and sensors ask for ``store``, ``eln`` and ``catalog`` by these base
types; `labmesh_dagster.definitions` binds the implementation the profile
picks. Each resource only builds a port object; all behaviour lives in
`labmesh_dagster.connectors`.
"""

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from labmesh_dagster.connectors.catalog.base import Catalog
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.eln.base import ElnSource
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.connectors.eln.inbox import EventInbox, SqliteInbox
from labmesh_dagster.connectors.events.base import EventQueue
from labmesh_dagster.connectors.lineage.base import FanOutSink, LineageLog, LineageSink
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.connectors.store.factory import open_store

if TYPE_CHECKING:
    from labmesh_dagster.connectors.search.base import ContentIndex


class StoreResource(dg.ConfigurableResource, ABC):
    """The object store holding the four zones."""

    @abstractmethod
    def store_config(self) -> dict[str, Any]:
        """Plain configuration from which a subprocess (a Pipes pipeline) can open the same store."""

    def get_store(self) -> ObjectStore:
        return open_store(self.store_config())


class LocalStoreResource(StoreResource):
    root: str = Field(description="Directory holding one sub-directory per zone (landing, raw, processed, final).")

    def store_config(self) -> dict[str, Any]:
        return {"kind": "local", "root": self.root}


class S3StoreResource(StoreResource):
    """The four zones as S3 buckets; ``endpoint_url`` points at moto, MinIO or any S3-compatible store."""

    landing_bucket: str = Field(description="Bucket of the landing zone (instrument output arrives here).")
    raw_bucket: str = Field(description="Bucket of the raw zone (verified copies of landing objects).")
    processed_bucket: str = Field(description="Bucket of the processed zone (pipeline outputs).")
    final_bucket: str = Field(description="Bucket of the final zone (files people publish).")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the buckets.")
    multipart_threshold: int = Field(
        default=5 * 1024**3, description="Objects larger than this are copied in parts (S3 allows 5 GiB per copy)."
    )
    part_size: int = Field(default=512 * 1024**2, description="Size of each part of a multipart copy (UploadPartCopy).")
    notification_queues: dict[str, str] = Field(
        default_factory=dict,
        description="Zone -> ARN of the SQS queue that provisioning subscribes to the zone bucket's object events.",
    )

    def store_config(self) -> dict[str, Any]:
        return {
            "kind": "s3",
            "buckets": {
                "landing": self.landing_bucket,
                "raw": self.raw_bucket,
                "processed": self.processed_bucket,
                "final": self.final_bucket,
            },
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "multipart_threshold": self.multipart_threshold,
            "part_size": self.part_size,
            "notification_queues": dict(self.notification_queues),
        }


class ElnResource(dg.ConfigurableResource, ABC):
    """The electronic lab notebook or LIMS experiments come from."""

    @abstractmethod
    def get_eln(self) -> ElnSource: ...


class FolderElnResource(ElnResource):
    records_dir: str = Field(
        description="Folder of experiment records (JSON or YAML, one experiment or a list per file)."
    )
    outbox_dir: str = Field(description="Folder where data locations are written back, one JSON file per experiment.")

    def get_eln(self) -> ElnSource:
        return FolderEln(self.records_dir, self.outbox_dir)


class ElabFtwElnResource(ElnResource):
    """An eLabFTW instance, through its REST API v2."""

    base_url: str = Field(description="eLabFTW URL, e.g. https://elab.example.org")
    api_key: str = Field(description="API key with write access (for the write-back of data locations).")
    mapping_path: str | None = Field(default=None, description="YAML field mapping; labmesh's defaults if unset.")
    scope: int = Field(default=2, description="Entries read: 1 own, 2 the key owner's team, 3 all readable.")
    verify_tls: bool = Field(default=True, description="Check the server's TLS certificate.")

    def get_eln(self) -> ElnSource:
        from labmesh_dagster.connectors.eln.elabftw import ElabFtwEln
        from labmesh_dagster.connectors.eln.mapping import ELABFTW_DEFAULTS, FieldMapping

        mapping = (
            FieldMapping.from_yaml(self.mapping_path, defaults=ELABFTW_DEFAULTS)
            if self.mapping_path
            else ELABFTW_DEFAULTS
        )
        return ElabFtwEln(self.base_url, self.api_key, mapping=mapping, scope=self.scope, verify=self.verify_tls)


class BenchlingElnResource(ElnResource):
    """A Benchling tenant, through its API v2 (events feed, entries)."""

    base_url: str = Field(description="The tenant, e.g. https://acme.benchling.com")
    api_key: str = Field(description="API key with write access to entries (for the write-back).")
    location_field: str = Field(default="labmesh data location", description="Entry field the locations go to.")
    schema_id: str | None = Field(default=None, description="Only entries of this schema (ts_...).")
    mapping_path: str | None = Field(default=None, description="YAML field mapping; labmesh's defaults if unset.")

    def get_eln(self) -> ElnSource:
        from labmesh_dagster.connectors.eln.benchling import BENCHLING_DEFAULTS, BenchlingEln
        from labmesh_dagster.connectors.eln.mapping import FieldMapping

        mapping = (
            FieldMapping.from_yaml(self.mapping_path, defaults=BENCHLING_DEFAULTS)
            if self.mapping_path
            else BENCHLING_DEFAULTS
        )
        return BenchlingEln(
            self.base_url,
            self.api_key,
            mapping=mapping,
            location_field=self.location_field,
            schema_id=self.schema_id,
        )


class ElnInboxResource(dg.ConfigurableResource):
    """Where `labmesh api` keeps pushed ELN events until `eln_sensor` takes them."""

    path: str = Field(description="SQLite file of the ELN event inbox (shared with `labmesh api`).")
    queue_url: str | None = Field(default=None, description="SQS queue as the inbox instead (aws profile).")
    endpoint_url: str | None = Field(default=None, description="SQS endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the queue.")

    def get_inbox(self) -> EventInbox:
        if not self.queue_url:
            return SqliteInbox(self.path)
        from labmesh_dagster.connectors.eln.sqs_inbox import SqsInbox

        return SqsInbox(aws_client("sqs", endpoint_url=self.endpoint_url, region_name=self.region_name), self.queue_url)


class CatalogResource(dg.ConfigurableResource, ABC):
    """The metadata catalog experiments and datasets are registered and searched in."""

    @abstractmethod
    def get_catalog(self) -> Catalog: ...


class SqliteCatalogResource(CatalogResource):
    path: str = Field(description="Path of the SQLite catalog database (created on first use).")

    def get_catalog(self) -> Catalog:
        return SqliteCatalog(self.path)


class DataZoneCatalogResource(CatalogResource):
    """The catalog published into an Amazon DataZone domain; the SQLite registry keeps labmesh's own state."""

    registry_path: str = Field(description="SQLite registry of experiments and datasets (labmesh's own state).")
    domain_id: str = Field(description="DataZone domain id (dzd_...).")
    project_id: str = Field(description="DataZone project that owns labmesh's assets.")
    endpoint_url: str | None = Field(default=None, description="DataZone endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the domain.")
    max_per_second: float = Field(default=10, description="Calls per second kept under DataZone's quota.")
    glossary_terms: dict[str, list[str]] = Field(
        default_factory=dict, description="Glossary terms to create per category (platform, assay)."
    )

    def get_catalog(self) -> Catalog:
        from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog

        return DataZoneCatalog(
            aws_client("datazone", endpoint_url=self.endpoint_url, region_name=self.region_name),
            domain_id=self.domain_id,
            project_id=self.project_id,
            registry=SqliteCatalog(self.registry_path),
            max_per_second=self.max_per_second,
            glossary_terms=self.glossary_terms,
        )


class LineageResource(dg.ConfigurableResource):
    """Where OpenLineage run events go: the local lineage log always (for `labmesh lineage`), and DataZone."""

    log_path: str = Field(description="SQLite file of the local lineage log (the catalog's file by default).")
    datazone_domain_id: str | None = Field(default=None, description="Also post events to this DataZone domain.")
    datazone_endpoint_url: str | None = Field(default=None, description="DataZone endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the DataZone domain.")
    max_per_second: float = Field(default=10, description="Calls per second kept under DataZone's quota.")

    def get_log(self) -> LineageLog:
        return SqliteLineageLog(self.log_path)

    def get_sink(self) -> LineageSink:
        if not self.datazone_domain_id:
            return self.get_log()
        from labmesh_dagster.connectors.lineage.datazone import DataZoneLineageSink

        client = aws_client("datazone", endpoint_url=self.datazone_endpoint_url, region_name=self.region_name)
        remote = DataZoneLineageSink(client, domain_id=self.datazone_domain_id, max_per_second=self.max_per_second)
        return FanOutSink([self.get_log(), remote])


class ContentIndexResource(dg.ConfigurableResource, ABC):
    """The index of file contents behind semantic and keyword content search."""

    @abstractmethod
    def get_index(self) -> "ContentIndex": ...


class SqliteContentIndexResource(ContentIndexResource):
    path: str = Field(description="SQLite file of the local content index (FTS5; the catalog's file by default).")

    def get_index(self) -> "ContentIndex":
        from labmesh_dagster.connectors.search.local import SqliteContentIndex

        return SqliteContentIndex(self.path)


class KendraContentIndexResource(ContentIndexResource):
    index_id: str = Field(description="Amazon Kendra index id.")
    endpoint_url: str | None = Field(default=None, description="Kendra endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the index.")
    max_per_second: float = Field(default=5, description="Calls per second kept under Kendra's quota.")

    def get_index(self) -> "ContentIndex":
        from labmesh_dagster.connectors.search.kendra import KendraContentIndex

        client = aws_client("kendra", endpoint_url=self.endpoint_url, region_name=self.region_name)
        return KendraContentIndex(client, index_id=self.index_id, max_per_second=self.max_per_second)


def aws_client(service: str, *, endpoint_url: str | None, region_name: str | None) -> Any:
    """A boto3 client; a module-level function so tests can hand out validating fakes for services moto lacks."""
    from labmesh_dagster.connectors.aws import make_client

    return make_client(service, endpoint_url=endpoint_url, region_name=region_name)


class LandingPolicyResource(dg.ConfigurableResource):
    """How patient ingestion is: the lab's to tune, shared by the sensors and the promotion."""

    settle_seconds: float = Field(
        default=10, description="A landing or final file is taken once it has not changed for this many seconds."
    )
    unknown_experiment_grace_seconds: float = Field(
        default=900,
        description="Landing files of an experiment no ELN record announced wait this long, then go to quarantine.",
    )
    retry_seconds: float = Field(
        default=3600,
        description=(
            "Settled landing files still there this long after they were written (their run failed, or was "
            "lost) get one more `raw_dataset` run per period; with S3 events, landing is listed once per period "
            "to find them. 0 turns this off."
        ),
    )


class ExtractionPolicyResource(dg.ConfigurableResource):
    """How long metadata extraction may spend on one file before it records what it has, marked partial."""

    budget_seconds: float = Field(
        default=600,
        description=(
            "Seconds one file's extractor may take; then it stops at its next batch and the manifest entry is "
            "marked `partial: time_budget`. 0 means no limit."
        ),
    )

    @property
    def budget(self) -> float | None:
        return self.budget_seconds or None


class StoreEventsResource(dg.ConfigurableResource):
    """Where S3 event notifications of the landing and final buckets arrive (SQS).

    Without a queue URL a zone is watched by listing it instead, as the local
    profile always is.
    """

    landing_queue_url: str | None = Field(default=None, description="SQS queue receiving the landing bucket's events.")
    final_queue_url: str | None = Field(default=None, description="SQS queue receiving the final bucket's events.")
    endpoint_url: str | None = Field(default=None, description="SQS endpoint; None for AWS itself.")
    region_name: str | None = Field(default=None, description="AWS region of the queues.")

    def _queue(self, url: str | None) -> EventQueue | None:
        if not url:
            return None
        from labmesh_dagster.connectors.aws import make_client
        from labmesh_dagster.connectors.events.sqs import SqsEventQueue

        return SqsEventQueue(make_client("sqs", endpoint_url=self.endpoint_url, region_name=self.region_name), url)

    def landing_queue(self) -> EventQueue | None:
        return self._queue(self.landing_queue_url)

    def final_queue(self) -> EventQueue | None:
        return self._queue(self.final_queue_url)
