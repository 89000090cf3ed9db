"""One way in: `Ports` opens every port from settings, with AWS clients from the factory it is given.

Contract: the local profile opens folders and SQLite files and asks the
factory for no client; the aws profile asks it for exactly the services it
configures, each at its own endpoint (S3 and SQS at LABMESH_AWS_ENDPOINT_URL,
DataZone, Kendra and the Bedrock knowledge base at theirs, HealthOmics at AWS itself) with the configured
region and retries; the Dagster resources open the same ports the same way;
and the commands that need no Dagster (`status`, `search`, `lineage`) import
none, and `status` creates nothing on an empty home. With
``LABMESH_DATABASE_URL`` the ELN inbox, the rejected records, the lineage
log and the content index are tables in that PostgreSQL database (the SQS
inbox still comes first where configured, DataZone still follows the local
log, and a configured Kendra index or Bedrock knowledge base stays the content
index), for `Ports` and the Dagster resources alike, and no SQLite file of
theirs is made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.catalog.datazone import DataZoneCatalog
from labmesh_dagster.connectors.catalog.postgres import PostgresCatalog
from labmesh_dagster.connectors.catalog.sqlite import SqliteCatalog
from labmesh_dagster.connectors.eln.folder import FolderEln
from labmesh_dagster.connectors.eln.inbox import SqliteInbox
from labmesh_dagster.connectors.eln.postgres_inbox import PostgresInbox
from labmesh_dagster.connectors.eln.sqs_inbox import SqsInbox
from labmesh_dagster.connectors.lineage.base import FanOutSink
from labmesh_dagster.connectors.lineage.postgres import PostgresLineageLog
from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.connectors.postgres_rejections import PostgresRejectionStore
from labmesh_dagster.connectors.rejections import SqliteRejectionStore
from labmesh_dagster.connectors.search.bedrock import BedrockKnowledgeBaseIndex
from labmesh_dagster.connectors.search.kendra import KendraContentIndex
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.definitions import build_definitions
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import AwsConnection, Settings
from labmesh_dagster_tests.conftest import make_settings

REPOSITORY = Path(__file__).resolve().parents[1]


class RecordingFactory:
    """Hands out a stand-in per request and remembers which service was asked for, and how."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, AwsConnection]] = []

    def __call__(self, service: str, connection: AwsConnection) -> Any:
        self.requests.append((service, connection))
        return object()

    def services(self) -> list[str]:
        return sorted({service for service, _ in self.requests})


def aws_everything(home: Path) -> Settings:
    return make_settings(
        home,
        LABMESH_PROFILE="aws",
        LABMESH_AWS_ENDPOINT_URL="http://127.0.0.1:9000",
        LABMESH_AWS_REGION="eu-west-1",
        LABMESH_AWS_MAX_ATTEMPTS="3",
        LABMESH_SQS_LANDING_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/landing",
        LABMESH_SQS_ELN_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/eln",
        LABMESH_DATAZONE_DOMAIN_ID="dzd_abc123",
        LABMESH_DATAZONE_PROJECT_ID="proj123",
        LABMESH_DATAZONE_ENDPOINT_URL="http://127.0.0.1:9100",
        LABMESH_KENDRA_INDEX_ID="0123abcd-4567-89ab-cdef-0123456789ab",
        LABMESH_OMICS_SEQUENCE_STORE_ID="1234567890",
        LABMESH_OMICS_ROLE_ARN="arn:aws:iam::123456789012:role/labmesh-omics-import",
    )


def test_the_local_profile_opens_folders_and_sqlite_and_asks_for_no_client(tmp_path: Path) -> None:
    factory = RecordingFactory()
    ports = Ports(make_settings(tmp_path / "home"), factory)

    assert isinstance(ports.store(), LocalObjectStore)
    assert isinstance(ports.eln(), FolderEln)
    assert isinstance(ports.inbox(), SqliteInbox)
    assert isinstance(ports.catalog(), SqliteCatalog)
    assert isinstance(ports.content_index(), SqliteContentIndex)
    assert isinstance(ports.lineage_sink(), SqliteLineageLog)
    assert isinstance(ports.lineage_log(), SqliteLineageLog)
    assert isinstance(ports.eln_rejections(), SqliteRejectionStore)
    assert ports.store_events(Zone.LANDING) is None and ports.store_events(Zone.FINAL) is None
    assert ports.sequence_store() is None
    assert factory.requests == []


def test_a_database_url_puts_the_catalog_inbox_rejections_lineage_log_and_content_index_in_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=postgres_url)
    ports = Ports(settings, RecordingFactory())

    assert ports.has_registry() and isinstance(ports.registry(), PostgresCatalog)
    assert isinstance(ports.catalog(), PostgresCatalog)
    assert isinstance(ports.inbox(), PostgresInbox)
    assert isinstance(ports.eln_rejections(), PostgresRejectionStore)
    assert isinstance(ports.lineage_log(), PostgresLineageLog)
    assert isinstance(ports.lineage_sink(), PostgresLineageLog)
    index = ports.content_index()
    assert isinstance(index, PostgresContentIndex) and index.url == postgres_url
    assert not settings.inbox_path.exists() and not settings.catalog_path.exists()


def test_with_a_database_url_sqs_stays_the_inbox_and_datazone_follows_the_postgres_log(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=postgres_url)
    aws = aws_everything(tmp_path / "home")
    ports = Ports(replace(aws, database_url=settings.database_url), RecordingFactory())

    sink = ports.lineage_sink()

    catalog = ports.catalog()
    assert isinstance(catalog, DataZoneCatalog) and isinstance(catalog.registry, PostgresCatalog)
    assert isinstance(ports.inbox(), SqsInbox)
    assert isinstance(ports.content_index(), KendraContentIndex)
    assert isinstance(sink, FanOutSink) and [type(each).__name__ for each in sink.sinks] == [
        "PostgresLineageLog",
        "DataZoneLineageSink",
    ]


def test_with_a_database_url_the_dagster_resources_open_the_same_postgres_stores(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = make_settings(tmp_path / "home", LABMESH_DATABASE_URL=postgres_url)
    ports = Ports(settings, RecordingFactory())
    resources = build_definitions(settings, clients=RecordingFactory()).resources or {}

    opened = {
        "catalog": (ports.catalog(), resources["catalog"].get_catalog()),
        "inbox": (ports.inbox(), resources["eln_inbox"].get_inbox()),
        "rejections": (ports.eln_rejections(), resources["catalog"].get_eln_rejections()),
        "lineage": (ports.lineage_sink(), resources["lineage"].get_sink()),
        "content index": (ports.content_index(), resources["content_index"].get_index()),
    }

    assert {name: {type(a).__name__, type(b).__name__} for name, (a, b) in opened.items()} == {
        "catalog": {"PostgresCatalog"},
        "inbox": {"PostgresInbox"},
        "rejections": {"PostgresRejectionStore"},
        "lineage": {"PostgresLineageLog"},
        "content index": {"PostgresContentIndex"},
    }


def test_the_aws_profile_without_an_aws_index_keeps_its_content_in_postgres_when_a_database_is_given(
    tmp_path: Path, postgres_url: str
) -> None:
    aws = make_settings(
        tmp_path / "home",
        LABMESH_PROFILE="aws",
        LABMESH_AWS_ENDPOINT_URL="http://127.0.0.1:9000",
        LABMESH_DATABASE_URL=postgres_url,
    )
    factory = RecordingFactory()

    index = Ports(aws, factory).content_index()
    resource = (build_definitions(aws, clients=factory).resources or {})["content_index"]

    assert isinstance(index, PostgresContentIndex) and isinstance(resource.get_index(), PostgresContentIndex)
    assert isinstance(Ports(replace(aws, database_url=None), factory).content_index(), SqliteContentIndex)


def test_the_aws_profile_asks_for_each_configured_service_at_its_own_endpoint(tmp_path: Path) -> None:
    factory = RecordingFactory()
    ports = Ports(aws_everything(tmp_path / "home"), factory)

    ports.store()
    ports.inbox()
    assert ports.store_events(Zone.LANDING) is not None
    assert ports.store_events(Zone.FINAL) is None  # no final queue: the final zone is listed
    with pytest.raises(ValueError, match="sequence store id"):  # the stand-in reaches the real adapter's checks
        pass_through_sequence_store(ports)
    endpoints = {service: connection.endpoint_url for service, connection in factory.requests}

    assert endpoints == {"s3": "http://127.0.0.1:9000", "sqs": "http://127.0.0.1:9000", "omics": None}
    assert {(c.region_name, c.max_attempts) for _, c in factory.requests} == {("eu-west-1", 3)}


def pass_through_sequence_store(ports: Ports) -> None:
    """Open the sequence store with a store id the adapter refuses, after the client was asked for."""
    from dataclasses import replace

    assert ports.settings.aws is not None and ports.settings.aws.omics is not None
    omics = replace(ports.settings.aws.omics, sequence_store_id="not-digits")
    broken = replace(ports.settings, aws=replace(ports.settings.aws, omics=omics))
    Ports(broken, ports.clients).sequence_store()


def test_datazone_and_kendra_are_reached_at_their_own_endpoints(tmp_path: Path) -> None:
    factory = RecordingFactory()
    ports = Ports(aws_everything(tmp_path / "home"), factory)

    assert isinstance(ports.catalog(), DataZoneCatalog)
    assert isinstance(ports.content_index(), KendraContentIndex)
    assert isinstance(ports.lineage_sink(), FanOutSink)
    assert isinstance(ports.registry(), SqliteCatalog)

    assert [(service, c.endpoint_url) for service, c in factory.requests] == [
        ("datazone", "http://127.0.0.1:9100"),
        ("kendra", None),
        ("datazone", "http://127.0.0.1:9100"),
    ]


def test_a_bedrock_knowledge_base_is_the_content_index_even_beside_kendra(tmp_path: Path) -> None:
    factory = RecordingFactory()
    settings = make_settings(
        tmp_path / "home",
        LABMESH_PROFILE="aws",
        LABMESH_AWS_REGION="eu-west-1",
        LABMESH_KENDRA_INDEX_ID="0123abcd-4567-89ab-cdef-0123456789ab",
        LABMESH_BEDROCK_KNOWLEDGE_BASE_ID="KB12EXAMPL",
        LABMESH_BEDROCK_DATA_SOURCE_ID="DS12EXAMPL",
        LABMESH_BEDROCK_KB_ENDPOINT_URL="http://127.0.0.1:5004",
    )

    index = Ports(settings, factory).content_index()

    assert isinstance(index, BedrockKnowledgeBaseIndex)
    assert (index.knowledge_base_id, index.data_source_id) == ("KB12EXAMPL", "DS12EXAMPL")
    assert [(service, c.endpoint_url) for service, c in factory.requests] == [
        ("bedrock-agent", "http://127.0.0.1:5004"),
        ("bedrock-agent-runtime", "http://127.0.0.1:5004"),
    ]
    through_resources = RecordingFactory()
    resources = build_definitions(settings, clients=through_resources).resources or {}
    assert isinstance(resources["content_index"].get_index(), BedrockKnowledgeBaseIndex)
    assert through_resources.requests == factory.requests


def test_the_dagster_resources_open_the_same_ports_through_the_same_factory(tmp_path: Path) -> None:
    settings = aws_everything(tmp_path / "home")
    through_ports, through_resources = RecordingFactory(), RecordingFactory()
    ports = Ports(settings, through_ports)
    resources = build_definitions(settings, clients=through_resources).resources or {}

    opened = {
        "store": (ports.store(), resources["store"].get_store()),
        "catalog": (ports.catalog(), resources["catalog"].get_catalog()),
        "content_index": (ports.content_index(), resources["content_index"].get_index()),
        "lineage": (ports.lineage_sink(), resources["lineage"].get_sink()),
        "eln_inbox": (ports.inbox(), resources["eln_inbox"].get_inbox()),
        "store_events": (ports.store_events(Zone.LANDING), resources["store_events"].queue(Zone.LANDING)),
    }

    assert {name: type(a) for name, (a, _) in opened.items()} == {name: type(b) for name, (_, b) in opened.items()}
    assert through_ports.requests == through_resources.requests
    assert resources["store"].store_config() == {
        **resources["store"].store_config(),
        "endpoint_url": "http://127.0.0.1:9000",
        "region_name": "eu-west-1",
        "max_attempts": 3,
    }


def _run_cli(home: Path, *argv: str) -> dict[str, Any]:
    """Run one command in a fresh interpreter; what it printed, and which heavy packages it imported."""
    script = (
        "import json, sys\n"
        "from labmesh_dagster.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'boto3', 'openlineage', 'authlib'})\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "LABMESH_HOME": str(home), "HOME": str(home.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=home.parent, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    ("argv", "needed"),
    [(["status"], []), (["search", "liver"], []), (["lineage", "EXP-1"], ["openlineage"])],
)
def test_commands_that_need_no_dagster_import_none(tmp_path: Path, argv: list[str], needed: list[str]) -> None:
    """On the local profile they need no boto3 either; `lineage` reads OpenLineage events, so it takes that."""
    ran = _run_cli(tmp_path / "home", *argv)

    assert ran["heavy"] == needed, f"labmesh {' '.join(argv)} imported {ran['heavy']}"


def test_status_on_an_empty_home_creates_no_catalog(tmp_path: Path) -> None:
    home = tmp_path / "home"

    assert _run_cli(home, "status")["code"] == 0
    assert not (home / "catalog.sqlite").exists()
