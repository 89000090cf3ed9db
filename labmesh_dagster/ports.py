"""One way in: every port labmesh talks through, opened from its settings.

The CLI, `labmesh api`, `labmesh sync`, the Pipes pipelines and the Dagster
resources all open their store, ELN, inbox, catalog, content index, lineage
sink, store events and sequence store here, so each is built one way whoever
asks. `Ports` opens them from a `Settings`; the `open_*` functions beneath it
take the plain values a Dagster resource holds as its configuration.

AWS clients come from one injectable factory, as in dagster-aws
(``client or boto3.client(...)``): the default makes boto3 clients with
labmesh's retries, and tests hand in a factory that gives out validating
fakes (DataZone, Kendra, HealthOmics) or records calls, instead of patching
module names. Every import below is lazy so that a command which needs one
port pays for that port alone: `labmesh status` on the local profile imports
neither boto3 nor Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from labmesh_dagster.core.clock import Clock, utc_now
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.settings import AwsConnection, Settings

if TYPE_CHECKING:
    from labmesh_dagster.connectors.catalog.base import Catalog
    from labmesh_dagster.connectors.eln.base import ElnSource
    from labmesh_dagster.connectors.eln.inbox import EventInbox
    from labmesh_dagster.connectors.events.base import EventQueue
    from labmesh_dagster.connectors.lineage.base import LineageLog, LineageSink
    from labmesh_dagster.connectors.omics.base import SequenceStore
    from labmesh_dagster.connectors.rejections import RejectionStore
    from labmesh_dagster.connectors.search.base import ContentIndex
    from labmesh_dagster.connectors.store.base import ObjectStore

StoreConfig = Mapping[str, Any]
"""``{"kind": "local", "root": ...}`` or ``{"kind": "s3", "buckets": {...}, ...}``: plain enough for a subprocess."""


class ClientFactory(Protocol):
    """Makes the client of one AWS service (``"s3"``, ``"datazone"``...) for a connection."""

    def __call__(self, service: str, connection: AwsConnection) -> Any: ...


def boto3_clients(service: str, connection: AwsConnection) -> Any:
    """The real thing: a boto3 client with labmesh's retry and checksum configuration."""
    from labmesh_dagster.connectors.aws import make_client

    return make_client(
        service,
        endpoint_url=connection.endpoint_url,
        region_name=connection.region_name,
        max_attempts=connection.max_attempts,
    )


def store_config(settings: Settings) -> StoreConfig:
    """The store the profile selects, as plain configuration (what a Pipes subprocess is handed)."""
    if settings.aws is None:
        return {"kind": "local", "root": str(settings.store_dir)}
    from labmesh_dagster.connectors.store.s3_setup import queue_arn

    aws, connection = settings.aws, settings.aws.connection("s3")
    region = aws.region or "us-east-1"
    return {
        "kind": "s3",
        "buckets": dict(aws.buckets),
        "endpoint_url": connection.endpoint_url,
        "region_name": connection.region_name,
        "max_attempts": connection.max_attempts,
        "multipart_threshold": aws.multipart_threshold,
        "part_size": aws.part_size,
        # Provisioning subscribes these zones' buckets to their queues.
        "notification_queues": {
            zone.value: queue_arn(url, region) for zone in Zone if (url := aws.queue_url(zone.value)) is not None
        },
    }


def open_store(config: StoreConfig, clients: ClientFactory = boto3_clients) -> ObjectStore:
    """The store ``config`` describes. Credentials are never part of it: S3 clients find them the usual way."""
    kind = config.get("kind")
    if kind == "local":
        from labmesh_dagster.connectors.store.local import LocalObjectStore

        return LocalObjectStore(config["root"])
    if kind == "s3":
        from labmesh_dagster.connectors.store.s3 import S3ObjectStore

        connection = AwsConnection(config["endpoint_url"], config["region_name"], int(config["max_attempts"]))
        return S3ObjectStore(
            clients("s3", connection),
            config["buckets"],
            multipart_threshold=int(config["multipart_threshold"]),
            part_size=int(config["part_size"]),
            notification_queues=config.get("notification_queues") or {},
        )
    raise ValueError(f"unknown store kind {kind!r} in {dict(config)!r}")


def open_folder_eln(records_dir: str | Path, outbox_dir: str | Path) -> ElnSource:
    from labmesh_dagster.connectors.eln.folder import FolderEln

    return FolderEln(records_dir, outbox_dir)


def open_elabftw(
    url: str, api_key: str, *, mapping_path: str | None, scope: int, verify_tls: bool, timeout_seconds: float
) -> ElnSource:
    from labmesh_dagster.connectors.eln.elabftw import ElabFtwEln
    from labmesh_dagster.connectors.eln.mapping import ELABFTW_DEFAULTS, FieldMapping

    mapping = FieldMapping.from_yaml(mapping_path, defaults=ELABFTW_DEFAULTS) if mapping_path else ELABFTW_DEFAULTS
    return ElabFtwEln(url, api_key, mapping=mapping, scope=scope, verify=verify_tls, timeout=timeout_seconds)


def open_benchling(
    url: str,
    api_key: str,
    *,
    location_field: str,
    schema_id: str | None,
    mapping_path: str | None,
    timeout_seconds: float,
) -> ElnSource:
    from labmesh_dagster.connectors.eln.benchling import BENCHLING_DEFAULTS, BenchlingEln
    from labmesh_dagster.connectors.eln.mapping import FieldMapping

    mapping = FieldMapping.from_yaml(mapping_path, defaults=BENCHLING_DEFAULTS) if mapping_path else BENCHLING_DEFAULTS
    return BenchlingEln(
        url, api_key, mapping=mapping, location_field=location_field, schema_id=schema_id, timeout=timeout_seconds
    )


def open_sqlite_inbox(path: str | Path, clock: Clock = utc_now) -> EventInbox:
    from labmesh_dagster.connectors.eln.inbox import SqliteInbox

    return SqliteInbox(path, clock=clock)


def open_postgres_inbox(url: str, clock: Clock = utc_now) -> EventInbox:
    """The inbox as a table in labmesh's PostgreSQL database: the portal and the daemon may be apart."""
    from labmesh_dagster.connectors.eln.postgres_inbox import PostgresInbox

    return PostgresInbox(url, clock=clock)


def open_sqs_inbox(queue_url: str, connection: AwsConnection, clients: ClientFactory = boto3_clients) -> EventInbox:
    from labmesh_dagster.connectors.eln.sqs_inbox import SqsInbox

    return SqsInbox(clients("sqs", connection), queue_url)


def open_eln_rejections(path: str | Path, clock: Clock = utc_now) -> RejectionStore:
    """ELN records the sensor could not read, kept (in the catalog's file) until they read fine."""
    from labmesh_dagster.connectors.rejections import SqliteRejectionStore

    return SqliteRejectionStore(path, clock=clock)


def open_postgres_eln_rejections(url: str, clock: Clock = utc_now) -> RejectionStore:
    """ELN records the sensor could not read, kept in labmesh's PostgreSQL database until they read fine."""
    from labmesh_dagster.connectors.postgres_rejections import PostgresRejectionStore

    return PostgresRejectionStore(url, clock=clock)


def open_sqlite_catalog(path: str | Path) -> Catalog:
    from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog

    return SqliteCatalog(path)


def open_postgres_catalog(url: str) -> Catalog:
    """labmesh's catalog in PostgreSQL (``LABMESH_DATABASE_URL``): what several processes share."""
    from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog

    return PostgresCatalog(url)


def open_registry(path: str | Path, database_url: str | None = None) -> Catalog:
    """labmesh's own record of experiments and datasets: in PostgreSQL when a database is given, else SQLite."""
    return open_postgres_catalog(database_url) if database_url is not None else open_sqlite_catalog(path)


def open_datazone_catalog(
    *,
    registry: Catalog,
    domain_id: str,
    project_id: str,
    max_per_second: float,
    glossary_terms: Mapping[str, Sequence[str]],
    connection: AwsConnection,
    clients: ClientFactory = boto3_clients,
    group_projects: Mapping[str, str] | None = None,
    restricted_project_id: str | None = None,
) -> Catalog:
    """DataZone as the catalog; the registry beside it (SQLite or PostgreSQL) keeps labmesh's own state."""
    from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog

    return DataZoneCatalog(
        clients("datazone", connection),
        domain_id=domain_id,
        project_id=project_id,
        registry=registry,
        max_per_second=max_per_second,
        glossary_terms=glossary_terms,
        group_projects=group_projects,
        restricted_project_id=restricted_project_id,
    )


def open_lineage_log(path: str | Path) -> LineageLog:
    """The local OpenLineage log: the one lineage store `labmesh lineage` (and the portal) read."""
    from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog

    return SqliteLineageLog(path)


def open_postgres_lineage_log(url: str) -> LineageLog:
    """The lineage log as a table in labmesh's PostgreSQL database, read by `labmesh lineage` and the portal."""
    from labmesh_dagster.connectors.lineage.postgres import PostgresLineageLog

    return PostgresLineageLog(url)


def open_datazone_lineage(
    log_path: str | Path,
    *,
    domain_id: str,
    max_per_second: float,
    connection: AwsConnection,
    clients: ClientFactory = boto3_clients,
    log: LineageLog | None = None,
) -> LineageSink:
    """Every event to the local log first (kept whatever DataZone says), then to DataZone.

    The local log is ``log`` when given (the PostgreSQL one), else the SQLite log at ``log_path``.
    """
    from labmesh_dagster.connectors.lineage.base import FanOutSink
    from labmesh_dagster.connectors.lineage.datazone import DataZoneLineageSink

    remote = DataZoneLineageSink(clients("datazone", connection), domain_id=domain_id, max_per_second=max_per_second)
    return FanOutSink([log or open_lineage_log(log_path), remote])


def open_sqlite_content_index(path: str | Path) -> ContentIndex:
    from labmesh_dagster.connectors.search.local import SqliteContentIndex

    return SqliteContentIndex(path)


def open_postgres_content_index(url: str) -> ContentIndex:
    """The content index as tables in labmesh's PostgreSQL database: what machines that share no file share."""
    from labmesh_dagster.connectors.search.postgres import PostgresContentIndex

    return PostgresContentIndex(url)


def open_kendra_index(
    index_id: str, *, max_per_second: float, connection: AwsConnection, clients: ClientFactory = boto3_clients
) -> ContentIndex:
    from labmesh_dagster.connectors.search.kendra import KendraContentIndex

    return KendraContentIndex(clients("kendra", connection), index_id=index_id, max_per_second=max_per_second)


def open_bedrock_knowledge_base(
    knowledge_base_id: str,
    data_source_id: str,
    *,
    max_per_second: float,
    connection: AwsConnection,
    runtime_connection: AwsConnection | None = None,
    clients: ClientFactory = boto3_clients,
) -> ContentIndex:
    """Kendra's successor: documents in through ``bedrock-agent``, passages out through ``bedrock-agent-runtime``."""
    from labmesh_dagster.connectors.search.bedrock import BedrockKnowledgeBaseIndex

    return BedrockKnowledgeBaseIndex(
        clients("bedrock-agent", connection),
        clients("bedrock-agent-runtime", runtime_connection or connection),
        knowledge_base_id=knowledge_base_id,
        data_source_id=data_source_id,
        max_per_second=max_per_second,
    )


def open_event_queue(queue_url: str, connection: AwsConnection, clients: ClientFactory = boto3_clients) -> EventQueue:
    from labmesh_dagster.connectors.events.sqs import SqsEventQueue

    return SqsEventQueue(clients("sqs", connection), queue_url)


def open_sequence_store(
    sequence_store_id: str,
    role_arn: str,
    connection: AwsConnection,
    clients: ClientFactory = boto3_clients,
    *,
    s3_connection: AwsConnection | None = None,
) -> SequenceStore:
    """The HealthOmics store; ``s3_connection`` reaches the raw bucket to check it before an import."""
    from labmesh_dagster.connectors.omics.healthomics import HealthOmicsSequenceStore

    return HealthOmicsSequenceStore(
        clients("omics", connection),
        sequence_store_id=sequence_store_id,
        role_arn=role_arn,
        s3_client=clients("s3", s3_connection) if s3_connection else None,
    )


class Ports:
    """Every port of one `Settings`, opened on demand: AWS clients made by ``clients``, time read from ``clock``."""

    def __init__(self, settings: Settings, clients: ClientFactory = boto3_clients, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock

    def store(self) -> ObjectStore:
        return open_store(store_config(self.settings), self.clients)

    def eln(self) -> ElnSource:
        """The folder of records (a LIMS export) unless ``LABMESH_ELN`` names an ELN."""
        if (elabftw := self.settings.elabftw) is not None:
            return open_elabftw(
                elabftw.url,
                elabftw.api_key.value,
                mapping_path=str(elabftw.mapping_path) if elabftw.mapping_path else None,
                scope=elabftw.scope,
                verify_tls=elabftw.verify_tls,
                timeout_seconds=elabftw.timeout_seconds,
            )
        if (benchling := self.settings.benchling) is not None:
            return open_benchling(
                benchling.url,
                benchling.api_key.value,
                location_field=benchling.location_field,
                schema_id=benchling.schema_id,
                mapping_path=str(benchling.mapping_path) if benchling.mapping_path else None,
                timeout_seconds=benchling.timeout_seconds,
            )
        return open_folder_eln(self.settings.eln_dir, self.settings.eln_outbox_dir)

    def inbox(self) -> EventInbox:
        """An SQS queue in the aws profile when one is configured; else PostgreSQL when selected, else SQLite."""
        aws = self.settings.aws
        if aws is not None and aws.eln_queue_url:
            return open_sqs_inbox(aws.eln_queue_url, aws.connection("sqs"), self.clients)
        if self.settings.database_url is not None:
            return open_postgres_inbox(self.settings.database_url, self.clock)
        return open_sqlite_inbox(self.settings.inbox_path, self.clock)

    def catalog(self) -> Catalog:
        """The registry (SQLite or PostgreSQL); DataZone in the aws profile when a domain is configured."""
        datazone, aws = self.settings.datazone, self.settings.aws
        if datazone is None or aws is None:
            return self.registry()
        return open_datazone_catalog(
            registry=self.registry(),
            domain_id=datazone.domain_id,
            project_id=datazone.project_id,
            max_per_second=datazone.max_per_second,
            glossary_terms=datazone.glossary_terms,
            connection=aws.connection("datazone"),
            clients=self.clients,
            group_projects=datazone.group_projects,
            restricted_project_id=datazone.restricted_project_id,
        )

    def eln_rejections(self) -> RejectionStore:
        """Rejected ELN records, beside labmesh's own state: PostgreSQL when selected, else the registry's file."""
        if self.settings.database_url is not None:
            return open_postgres_eln_rejections(self.settings.database_url, self.clock)
        return open_eln_rejections(self.settings.catalog_path, self.clock)

    def registry(self) -> Catalog:
        """labmesh's own record of experiments and datasets (which DataZone publishes from): PostgreSQL when
        ``LABMESH_DATABASE_URL`` is set, the SQLite catalog otherwise."""
        return open_registry(self.settings.catalog_path, self.settings.database_url)

    def has_registry(self) -> bool:
        """Whether there is a registry to read without making one: commands that only look leave an empty home
        empty. A PostgreSQL registry is always there to read."""
        return self.settings.database_url is not None or self.settings.catalog_path.exists()

    def content_index(self) -> ContentIndex:
        """In the aws profile a Bedrock knowledge base or a Kendra index, whichever is configured; otherwise
        PostgreSQL when ``LABMESH_DATABASE_URL`` is set, else the catalog's SQLite file."""
        kendra, knowledge_base, aws = self.settings.kendra, self.settings.knowledge_base, self.settings.aws
        if aws is not None and knowledge_base is not None:
            return open_bedrock_knowledge_base(
                knowledge_base.knowledge_base_id,
                knowledge_base.data_source_id,
                max_per_second=knowledge_base.max_per_second,
                connection=aws.connection("bedrock-agent"),
                runtime_connection=aws.connection("bedrock-agent-runtime"),
                clients=self.clients,
            )
        if kendra is None or aws is None:
            if self.settings.database_url is not None:
                return open_postgres_content_index(self.settings.database_url)
            return open_sqlite_content_index(self.settings.catalog_path)
        return open_kendra_index(
            kendra.index_id,
            max_per_second=kendra.max_per_second,
            connection=aws.connection("kendra"),
            clients=self.clients,
        )

    def lineage_log(self) -> LineageLog:
        """PostgreSQL when selected, else the catalog's SQLite file: the log `labmesh lineage` reads."""
        if self.settings.database_url is not None:
            return open_postgres_lineage_log(self.settings.database_url)
        return open_lineage_log(self.settings.catalog_path)

    def lineage_sink(self) -> LineageSink:
        """The lineage log; in the aws profile with a DataZone domain, the log first and then DataZone."""
        datazone, aws = self.settings.datazone, self.settings.aws
        if datazone is None or aws is None:
            return self.lineage_log()
        return open_datazone_lineage(
            self.settings.catalog_path,
            domain_id=datazone.domain_id,
            max_per_second=datazone.max_per_second,
            connection=aws.connection("datazone"),
            clients=self.clients,
            log=self.lineage_log(),
        )

    def store_events(self, zone: Zone) -> EventQueue | None:
        """The queue of ``zone``'s S3 object events, or None where the zone is watched by listing."""
        aws = self.settings.aws
        url = aws.queue_url(zone.value) if aws else None
        return open_event_queue(url, aws.connection("sqs"), self.clients) if aws and url else None

    def sequence_store(self) -> SequenceStore | None:
        """The HealthOmics sequence store raw sequencing files are imported into, where one is configured."""
        omics, aws = self.settings.omics, self.settings.aws
        if omics is None or aws is None:
            return None
        return open_sequence_store(
            omics.sequence_store_id,
            omics.role_arn,
            aws.connection("omics"),
            self.clients,
            s3_connection=aws.connection("s3"),
        )
