"""Settings: every ``LABMESH_*`` environment variable, read once into a typed object.

Nothing reads the environment at import time; `Settings.from_env` is called
when the Dagster definitions or the CLI start, and everything else receives the
object. Paths default to folders under ``LABMESH_HOME`` so one variable moves
the whole platform.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from labmesh_dagster.core import defaults
from labmesh_dagster.core.errors import LabmeshError

PROFILES = ("local", "aws")
GIB = 1024**3


class SettingsError(LabmeshError, ValueError):
    """An environment variable with a value labmesh cannot use."""


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={value!r}: expected 1/0, true/false, yes/no or on/off")


def _number(environ: Mapping[str, str], name: str, default: float, kind: type[float] | type[int], unit: str) -> float:
    """A number from the environment: empty means the default, and anything else must parse as ``kind``."""
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except ValueError as exc:
        raise SettingsError(f"{name}={value!r}: expected a number of {unit}") from exc
    if not math.isfinite(number):
        raise SettingsError(f"{name}={value!r}: must be a finite number of {unit}")
    return number


def _seconds(environ: Mapping[str, str], name: str, default: float, *, zero: bool = True) -> float:
    """A duration; ``zero=False`` for one that is waited in a loop (a poll interval), where 0 would spin."""
    seconds = _number(environ, name, default, float, "seconds")
    if seconds < 0:
        raise SettingsError(f"{name}={environ[name]!r}: must not be negative")
    if seconds == 0 and not zero:
        raise SettingsError(f"{name}={environ[name]!r}: must be more than 0 seconds")
    return seconds


def _bytes(environ: Mapping[str, str], name: str, default: int) -> int:
    number = int(_number(environ, name, default, int, "bytes (a whole number)"))
    if number <= 0:
        raise SettingsError(f"{name}={environ[name]!r}: must be positive")
    return number


def _eln_watch(env: Mapping[str, str]) -> str:
    value = (env.get("LABMESH_ELN_WATCH") or "auto").lower()
    if value not in {"auto", "on", "off"}:
        raise SettingsError(f"LABMESH_ELN_WATCH={value!r}: expected auto, on or off")
    return value


def _database_url(env: Mapping[str, str]) -> str | None:
    from labmesh_dagster.connectors.postgres import DatabaseUrlError, check_url

    url = env.get("LABMESH_DATABASE_URL") or None
    if url is None:
        return None
    try:
        return check_url(url)
    except DatabaseUrlError as error:
        raise SettingsError(f"LABMESH_DATABASE_URL={error}") from error


@dataclass(frozen=True)
class Secret:
    """A secret with the variable it came from, so it can be shown by name and never by value.

    ``from_environment`` says whether the value was read from the process
    environment: only then can the Dagster UI show the variable (``EnvVar``) and
    a run read it again there; settings built from a mapping (a test, a tool)
    carry the value itself.
    """

    variable: str
    value: str = field(repr=False)
    from_environment: bool = False


@dataclass(frozen=True)
class AwsConnection:
    """Where and how patiently labmesh reaches one AWS service: the one place for endpoint, region and retries."""

    endpoint_url: str | None
    region_name: str | None
    max_attempts: int


@dataclass(frozen=True)
class OmicsSettings:
    """Optional import of sequencing files into an AWS HealthOmics sequence store."""

    sequence_store_id: str
    role_arn: str
    reference_arn: str | None
    platforms: tuple[str, ...]
    timeout_seconds: float
    poll_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OmicsSettings | None:
        store_id, role = env.get("LABMESH_OMICS_SEQUENCE_STORE_ID"), env.get("LABMESH_OMICS_ROLE_ARN")
        if not store_id and not role:
            return None
        if not store_id or not role:
            raise SettingsError("LABMESH_OMICS_SEQUENCE_STORE_ID and LABMESH_OMICS_ROLE_ARN go together")
        platforms = tuple(p.strip() for p in (env.get("LABMESH_OMICS_PLATFORMS") or "").split(",") if p.strip())
        return cls(
            sequence_store_id=store_id,
            role_arn=role,
            reference_arn=env.get("LABMESH_OMICS_REFERENCE_ARN") or None,
            platforms=platforms,
            timeout_seconds=_seconds(env, "LABMESH_OMICS_TIMEOUT_SECONDS", 6 * 3600),
            poll_seconds=_seconds(env, "LABMESH_OMICS_POLL_SECONDS", 30, zero=False),
        )


def _rate(environ: Mapping[str, str], name: str, default: float) -> float:
    rate = _number(environ, name, default, float, "calls per second")
    if rate <= 0:
        raise SettingsError(f"{name}={environ[name]!r}: must be positive")
    return rate


def _attempts(environ: Mapping[str, str], name: str, default: int) -> int:
    number = int(_number(environ, name, default, int, "attempts (a whole number)"))
    if number < 1:
        raise SettingsError(f"{name}={environ[name]!r}: must be at least 1")
    return number


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in (env.get(name) or "").split(",") if item.strip())


_DATAZONE_PROJECT_ID = re.compile(r"[a-zA-Z0-9_-]{1,36}")


def _group_projects(env: Mapping[str, str], name: str) -> dict[str, str] | None:
    """``group=projectId,...`` (``*``: every other group) as a dict; None when unset, as before groups were mapped."""
    text = env.get(name)
    if text is None or not text.strip():
        return None
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for entry in (item.strip() for item in text.split(",")):
        group, equals, project_id = entry.rpartition("=")
        group, project_id = " ".join(group.split()), project_id.strip()
        if not equals or not group:
            raise SettingsError(f"{name}: {entry!r} is not group=projectId (groups are separated by commas)")
        if not _DATAZONE_PROJECT_ID.fullmatch(project_id):
            raise SettingsError(f"{name}: {project_id!r} (for {group!r}) is not a DataZone project id")
        if seen.setdefault(group.casefold(), project_id) != project_id:
            raise SettingsError(f"{name}: {group!r} is mapped to two projects")
        mapping[group] = project_id
    return mapping


def _restricted_project(env: Mapping[str, str], name: str) -> str | None:
    project_id = (env.get(name) or "").strip()
    if project_id and not _DATAZONE_PROJECT_ID.fullmatch(project_id):
        raise SettingsError(f"{name}={project_id!r}: not a DataZone project id")
    return project_id or None


@dataclass(frozen=True)
class DataZoneSettings:
    """Optional publishing into an Amazon DataZone domain: the catalog, its search, and lineage.

    ``group_projects`` maps groups (``*``: every other group) to the projects
    owning their experiments' assets, None: every group to ``project_id``.
    Experiments with no group or an unmapped one go, unpublished, to
    ``restricted_project_id`` (``project_id`` when None).
    """

    domain_id: str
    project_id: str
    endpoint_url: str | None
    max_per_second: float
    glossary_terms: dict[str, tuple[str, ...]]
    group_projects: dict[str, str] | None = None
    restricted_project_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DataZoneSettings | None:
        domain, project = env.get("LABMESH_DATAZONE_DOMAIN_ID"), env.get("LABMESH_DATAZONE_PROJECT_ID")
        if not domain and not project:
            return None
        if not domain or not project:
            raise SettingsError("LABMESH_DATAZONE_DOMAIN_ID and LABMESH_DATAZONE_PROJECT_ID go together")
        terms = {
            category: _list(env, f"LABMESH_DATAZONE_GLOSSARY_{category.upper()}S") for category in ("platform", "assay")
        }
        return cls(
            domain_id=domain,
            project_id=project,
            endpoint_url=env.get("LABMESH_DATAZONE_ENDPOINT_URL") or None,
            max_per_second=_rate(env, "LABMESH_DATAZONE_MAX_CALLS_PER_SECOND", defaults.DATAZONE_CALLS_PER_SECOND),
            glossary_terms={category: values for category, values in terms.items() if values},
            group_projects=_group_projects(env, "LABMESH_DATAZONE_GROUP_PROJECTS"),
            restricted_project_id=_restricted_project(env, "LABMESH_DATAZONE_RESTRICTED_PROJECT_ID"),
        )


@dataclass(frozen=True)
class KendraSettings:
    """Optional content indexing into an Amazon Kendra index (closed to new customers: see the Bedrock settings)."""

    index_id: str
    endpoint_url: str | None
    max_per_second: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KendraSettings | None:
        index_id = env.get("LABMESH_KENDRA_INDEX_ID")
        if not index_id:
            return None
        return cls(
            index_id=index_id,
            endpoint_url=env.get("LABMESH_KENDRA_ENDPOINT_URL") or None,
            max_per_second=_rate(env, "LABMESH_KENDRA_MAX_CALLS_PER_SECOND", defaults.KENDRA_CALLS_PER_SECOND),
        )


_BEDROCK_ID = re.compile(r"[0-9a-zA-Z]{10}")


@dataclass(frozen=True)
class BedrockKnowledgeBaseSettings:
    """Optional content indexing into an Amazon Bedrock Knowledge Base's custom data source, Kendra's successor.

    On when LABMESH_BEDROCK_KNOWLEDGE_BASE_ID is set; the data source must be
    custom, with the chunking strategy NONE (README: "Bedrock Knowledge Base").
    With a Kendra index configured too, content goes to the knowledge base: a
    lab moving off Kendra sets these and publishes again.
    """

    knowledge_base_id: str
    data_source_id: str
    endpoint_url: str | None
    max_per_second: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BedrockKnowledgeBaseSettings | None:
        kb_id = (env.get("LABMESH_BEDROCK_KNOWLEDGE_BASE_ID") or "").strip()
        source_id = (env.get("LABMESH_BEDROCK_DATA_SOURCE_ID") or "").strip()
        if not kb_id and not source_id:
            return None
        if not kb_id or not source_id:
            raise SettingsError("LABMESH_BEDROCK_KNOWLEDGE_BASE_ID and LABMESH_BEDROCK_DATA_SOURCE_ID go together")
        for name, value in (("KNOWLEDGE_BASE_ID", kb_id), ("DATA_SOURCE_ID", source_id)):
            if not _BEDROCK_ID.fullmatch(value):
                raise SettingsError(f"LABMESH_BEDROCK_{name}={value!r}: Bedrock ids are 10 letters and digits")
        return cls(
            knowledge_base_id=kb_id,
            data_source_id=source_id,
            endpoint_url=env.get("LABMESH_BEDROCK_KB_ENDPOINT_URL") or None,
            max_per_second=_rate(env, "LABMESH_BEDROCK_KB_MAX_CALLS_PER_SECOND", defaults.BEDROCK_CALLS_PER_SECOND),
        )


ANSWERERS = ("extractive", "bedrock")
BEDROCK_SOURCES = ("search_results", "documents")
_GUARDRAIL_ID = re.compile(r"[a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+")
_GUARDRAIL_VERSION = re.compile(r"[1-9][0-9]{0,7}|DRAFT")


@dataclass(frozen=True)
class AnswerSettings:
    """Which engine answers in the chat: the offline extractive one, or Bedrock's Converse on retrieved passages.

    ``sources`` is how passages reach the model: ``search_results`` blocks
    (cited by search result, supported by Anthropic's Claude models) or
    ``documents`` (cited by character range, for other models). A guardrail
    needs its version too: Bedrock applies a named version, never "the latest".
    """

    answerer: str = "extractive"
    bedrock_model_id: str | None = None
    guardrail_id: str | None = None
    guardrail_version: str | None = None
    sources: str = "search_results"
    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = defaults.AWS_MAX_ATTEMPTS

    @property
    def bedrock(self) -> bool:
        return self.answerer == "bedrock"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnswerSettings:
        answerer = env.get("LABMESH_ANSWERER") or "extractive"
        if answerer not in ANSWERERS:
            raise SettingsError(f"LABMESH_ANSWERER={answerer!r}: answers come from {', '.join(ANSWERERS)}")
        if answerer != "bedrock":
            return cls(answerer=answerer)
        model_id = env.get("LABMESH_BEDROCK_MODEL_ID") or ""
        if not model_id:
            raise SettingsError(
                "LABMESH_ANSWERER=bedrock needs LABMESH_BEDROCK_MODEL_ID (a model or inference profile)"
            )
        guardrail_id = env.get("LABMESH_BEDROCK_GUARDRAIL_ID") or None
        guardrail_version = env.get("LABMESH_BEDROCK_GUARDRAIL_VERSION") or None
        if (guardrail_id is None) != (guardrail_version is None):
            raise SettingsError(
                "LABMESH_BEDROCK_GUARDRAIL_ID and LABMESH_BEDROCK_GUARDRAIL_VERSION go together: "
                "Bedrock applies one version of a guardrail"
            )
        if guardrail_id is not None and not _GUARDRAIL_ID.fullmatch(guardrail_id):
            raise SettingsError(f"LABMESH_BEDROCK_GUARDRAIL_ID={guardrail_id!r}: a guardrail id or its ARN")
        if guardrail_version is not None and not _GUARDRAIL_VERSION.fullmatch(guardrail_version):
            raise SettingsError(f"LABMESH_BEDROCK_GUARDRAIL_VERSION={guardrail_version!r}: a version number or DRAFT")
        sources = env.get("LABMESH_BEDROCK_SOURCES") or "search_results"
        if sources not in BEDROCK_SOURCES:
            raise SettingsError(f"LABMESH_BEDROCK_SOURCES={sources!r}: one of {', '.join(BEDROCK_SOURCES)}")
        return cls(
            answerer=answerer,
            bedrock_model_id=model_id,
            guardrail_id=guardrail_id,
            guardrail_version=guardrail_version,
            sources=sources,
            endpoint_url=env.get("LABMESH_BEDROCK_ENDPOINT_URL") or None,
            region=env.get("LABMESH_AWS_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            max_attempts=_attempts(env, "LABMESH_AWS_MAX_ATTEMPTS", defaults.AWS_MAX_ATTEMPTS),
        )


ELNS = ("folder", "elabftw", "benchling")


def _eln_timeout(env: Mapping[str, str]) -> float:
    """One request's time limit; 0 would fail every request, so it is refused."""
    return _seconds(env, "LABMESH_ELN_TIMEOUT_SECONDS", defaults.ELN_TIMEOUT_SECONDS, zero=False)


@dataclass(frozen=True)
class ElabFtwSettings:
    """An eLabFTW instance as the ELN: where it is, the API key, and how its fields map (REST API v2)."""

    url: str
    api_key: Secret
    mapping_path: Path | None
    scope: int
    verify_tls: bool
    timeout_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, environment: bool = False) -> ElabFtwSettings:
        url, key = env.get("LABMESH_ELABFTW_URL"), env.get("LABMESH_ELABFTW_API_KEY")
        if not url or not key:
            raise SettingsError("LABMESH_ELN=elabftw needs LABMESH_ELABFTW_URL and LABMESH_ELABFTW_API_KEY")
        scope = int(_number(env, "LABMESH_ELABFTW_SCOPE", 2, int, "scope (1 own, 2 team, 3 all)"))
        if scope not in (1, 2, 3):
            raise SettingsError(f"LABMESH_ELABFTW_SCOPE={scope}: 1 (own entries), 2 (team) or 3 (everything)")
        mapping = env.get("LABMESH_ELN_MAPPING")
        return cls(
            url=url,
            api_key=Secret("LABMESH_ELABFTW_API_KEY", key, environment),
            mapping_path=Path(mapping).expanduser().resolve() if mapping else None,
            scope=scope,
            verify_tls=_flag(env, "LABMESH_ELABFTW_VERIFY_TLS", True),
            timeout_seconds=_eln_timeout(env),
        )


@dataclass(frozen=True)
class BenchlingSettings:
    """A Benchling tenant as the ELN: its URL, the API key, the entry field(s) locations go to, the mapping."""

    url: str
    api_key: Secret
    location_field: str
    schema_id: str | None
    mapping_path: Path | None
    timeout_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, environment: bool = False) -> BenchlingSettings:
        url, key = env.get("LABMESH_BENCHLING_URL"), env.get("LABMESH_BENCHLING_API_KEY")
        if not url or not key:
            raise SettingsError("LABMESH_ELN=benchling needs LABMESH_BENCHLING_URL and LABMESH_BENCHLING_API_KEY")
        mapping = env.get("LABMESH_ELN_MAPPING")
        return cls(
            url=url,
            api_key=Secret("LABMESH_BENCHLING_API_KEY", key, environment),
            location_field=env.get("LABMESH_BENCHLING_LOCATION_FIELD") or "labmesh data location",
            schema_id=env.get("LABMESH_BENCHLING_SCHEMA_ID") or None,
            mapping_path=Path(mapping).expanduser().resolve() if mapping else None,
            timeout_seconds=_eln_timeout(env),
        )


DEFAULT_BENCHLING_JWKS_URL = "https://apps.benchling.com/api/v1/apps/{app_definition_id}/jwks"
WEBHOOK_KEY = re.compile(r"LABMESH_WEBHOOK_([A-Z0-9_]+?)_(SECRETS|PAYLOAD|BENCHLING_APP_DEFINITION_ID)")


@dataclass(frozen=True)
class WebhookSettings:
    """One sender `labmesh api` accepts events from, and how its signatures are checked.

    ``LABMESH_WEBHOOK_<NAME>_SECRETS``: Standard Webhooks HMAC secrets; several,
    comma-separated, are all accepted, so a key can be rotated without refusing
    events signed with the old one meanwhile.
    ``LABMESH_WEBHOOK_<NAME>_BENCHLING_APP_DEFINITION_ID``: the source is a
    Benchling app, whose webhooks are signed with keys Benchling publishes (JWKS)
    for that app definition. Either or both may be set (a request passes if one
    of them verifies it, each judged on its own signature entries), so a tenant
    can move from a secret-signed webhook to the app without a gap; a source
    with neither is a mistake and stops startup.
    """

    name: str
    secrets: tuple[str, ...]
    payload: str
    benchling_app_definition_id: str | None = None

    @classmethod
    def all_from_env(cls, env: Mapping[str, str]) -> tuple[WebhookSettings, ...]:
        names = sorted({match.group(1) for key in env if (match := WEBHOOK_KEY.fullmatch(key)) and env[key].strip()})
        return tuple(cls._from_env(env, name) for name in names)

    @classmethod
    def _from_env(cls, env: Mapping[str, str], name: str) -> WebhookSettings:
        prefix = f"LABMESH_WEBHOOK_{name}"
        secrets = _list(env, f"{prefix}_SECRETS")
        app = (env.get(f"{prefix}_BENCHLING_APP_DEFINITION_ID") or "").strip() or None
        if not secrets and app is None:
            raise SettingsError(
                f"webhook source {name.lower()!r} has neither secrets nor a Benchling app: set {prefix}_SECRETS "
                f"(Standard Webhooks) or {prefix}_BENCHLING_APP_DEFINITION_ID (Benchling app signatures)"
            )
        if app is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", app):
            raise SettingsError(f"{prefix}_BENCHLING_APP_DEFINITION_ID={app!r}: expected an id like appdef_aBc123")
        default = "benchling" if app is not None or name == "BENCHLING" else "labmesh"
        payload = env.get(f"{prefix}_PAYLOAD") or default
        if payload not in {"labmesh", "benchling"}:
            raise SettingsError(f"{prefix}_PAYLOAD={payload!r}: use labmesh or benchling")
        if app is not None and payload != "benchling":
            raise SettingsError(f"{prefix}_PAYLOAD={payload!r}: a Benchling app sends Benchling's envelope (benchling)")
        return cls(name=name.lower(), secrets=secrets, payload=payload, benchling_app_definition_id=app)


def _jwks_url(env: Mapping[str, str]) -> str:
    """Where Benchling publishes an app's keys: a template with ``{app_definition_id}`` (tests point it elsewhere)."""
    url = env.get("LABMESH_BENCHLING_JWKS_URL") or DEFAULT_BENCHLING_JWKS_URL
    if not url.startswith(("https://", "http://")) or "{app_definition_id}" not in url:
        raise SettingsError(
            f"LABMESH_BENCHLING_JWKS_URL={url!r}: expected an http(s) URL containing {{app_definition_id}}"
        )
    return url


@dataclass(frozen=True)
class AwsSettings:
    """The `aws` profile's object store: one bucket per zone, and where to reach S3."""

    buckets: dict[str, str]
    endpoint_url: str | None
    region: str | None
    multipart_threshold: int
    part_size: int
    max_attempts: int
    landing_queue_url: str | None
    final_queue_url: str | None
    omics: OmicsSettings | None
    datazone: DataZoneSettings | None
    kendra: KendraSettings | None
    eln_queue_url: str | None
    knowledge_base: BedrockKnowledgeBaseSettings | None = None

    def connection(self, service: str = "s3") -> AwsConnection:
        """How to reach ``service``: LABMESH_AWS_ENDPOINT_URL serves S3 and SQS (MinIO, moto); DataZone, Kendra and
        the Bedrock knowledge base take their own endpoint setting, and HealthOmics is only ever AWS itself."""
        endpoints = {
            "datazone": self.datazone.endpoint_url if self.datazone else None,
            "kendra": self.kendra.endpoint_url if self.kendra else None,
            "bedrock-agent": self.knowledge_base.endpoint_url if self.knowledge_base else None,
            "bedrock-agent-runtime": self.knowledge_base.endpoint_url if self.knowledge_base else None,
            "omics": None,
        }
        endpoint = endpoints.get(service, self.endpoint_url)
        return AwsConnection(endpoint, self.region, self.max_attempts)

    def queue_url(self, zone: str) -> str | None:
        """The SQS queue receiving the object events of ``zone``'s bucket (landing and final have one)."""
        return {"landing": self.landing_queue_url, "final": self.final_queue_url}.get(zone)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsSettings:
        prefix = env.get("LABMESH_S3_BUCKET_PREFIX") or "labmesh"
        zones = ("landing", "raw", "processed", "final")
        buckets = {zone: env.get(f"LABMESH_S3_BUCKET_{zone.upper()}") or f"{prefix}-{zone}" for zone in zones}
        landing_queue = env.get("LABMESH_SQS_LANDING_QUEUE_URL") or None
        if landing_queue and landing_queue == env.get("LABMESH_SQS_FINAL_QUEUE_URL"):
            raise SettingsError(
                "LABMESH_SQS_LANDING_QUEUE_URL and LABMESH_SQS_FINAL_QUEUE_URL must differ: each sensor "
                "acknowledges every message it receives, so one queue would lose the other zone's events"
            )
        if len(set(buckets.values())) != len(buckets):
            raise SettingsError(f"LABMESH_S3_BUCKET_*: every zone needs its own bucket, got {buckets}")
        return cls(
            buckets=buckets,
            endpoint_url=env.get("LABMESH_AWS_ENDPOINT_URL") or None,
            region=env.get("LABMESH_AWS_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            multipart_threshold=_bytes(env, "LABMESH_S3_MULTIPART_THRESHOLD", 5 * GIB),
            part_size=_bytes(env, "LABMESH_S3_PART_SIZE", 512 * 1024**2),
            max_attempts=_attempts(env, "LABMESH_AWS_MAX_ATTEMPTS", defaults.AWS_MAX_ATTEMPTS),
            landing_queue_url=env.get("LABMESH_SQS_LANDING_QUEUE_URL") or None,
            final_queue_url=env.get("LABMESH_SQS_FINAL_QUEUE_URL") or None,
            omics=OmicsSettings.from_env(env),
            datazone=DataZoneSettings.from_env(env),
            eln_queue_url=env.get("LABMESH_SQS_ELN_QUEUE_URL") or None,
            kendra=KendraSettings.from_env(env),
            knowledge_base=BedrockKnowledgeBaseSettings.from_env(env),
        )


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name)
    return Path(value).expanduser().resolve() if value else default


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    number = int(_number(env, name, default, int, "a whole number"))
    if number < 1:
        raise SettingsError(f"{name}={env[name]!r}: must be at least 1")
    return number


@dataclass(frozen=True)
class OidcSettings:
    """Sign-in through an OpenID Connect provider: the portal runs the flow, `labmesh_dagster.access.oidc`
    turns the ID token's claims into a viewer.

    ``groups_claim`` names the claim holding the groups (``groups`` for most
    providers; a dotted path such as ``realm_access.roles`` reaches into an
    object). ``admin_groups`` are the groups whose members see everything.
    ``provider_name`` is what the login page's button says ("Sign in with
    ..."); ``redirect_url`` is the portal's ``/auth/callback`` as the provider
    must see it, when a proxy in front of the portal hides it (else the portal
    derives it from the request). ``post_logout_url`` is where the provider
    sends the browser after signing out there (the portal's ``/login`` unless
    set, derived from the request as the callback is); the provider must have
    it registered.
    """

    issuer: str
    client_id: str
    client_secret: Secret | None
    groups_claim: str
    user_claim: str
    admin_groups: tuple[str, ...]
    provider_name: str = ""
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    redirect_url: str | None = None
    post_logout_url: str | None = None

    @property
    def display_name(self) -> str:
        """The provider as people know it: the configured name, else the issuer's host."""
        return self.provider_name or self.issuer.split("://", 1)[-1].split("/", 1)[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, environment: bool = False) -> OidcSettings:
        issuer, client_id = env.get("LABMESH_OIDC_ISSUER"), env.get("LABMESH_OIDC_CLIENT_ID")
        if not issuer or not client_id:
            raise SettingsError("LABMESH_LOGIN=oidc needs LABMESH_OIDC_ISSUER and LABMESH_OIDC_CLIENT_ID")
        if not issuer.startswith(("https://", "http://")):
            raise SettingsError(f"LABMESH_OIDC_ISSUER={issuer!r}: expected the provider's http(s) issuer URL")
        secret = env.get("LABMESH_OIDC_CLIENT_SECRET")
        redirect_url = env.get("LABMESH_OIDC_REDIRECT_URL") or None
        if redirect_url and not redirect_url.startswith(("https://", "http://")):
            raise SettingsError(
                f"LABMESH_OIDC_REDIRECT_URL={redirect_url!r}: expected the portal's full http(s) URL "
                "ending in /auth/callback"
            )
        post_logout_url = env.get("LABMESH_OIDC_POST_LOGOUT_URL") or None
        if post_logout_url and not post_logout_url.startswith(("https://", "http://")):
            raise SettingsError(
                f"LABMESH_OIDC_POST_LOGOUT_URL={post_logout_url!r}: expected a full http(s) URL, "
                "such as the portal's /login"
            )
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=Secret("LABMESH_OIDC_CLIENT_SECRET", secret, environment) if secret else None,
            groups_claim=env.get("LABMESH_OIDC_GROUPS_CLAIM") or "groups",
            user_claim=env.get("LABMESH_OIDC_USER_CLAIM") or "preferred_username",
            admin_groups=_list(env, "LABMESH_OIDC_ADMIN_GROUPS"),
            provider_name=(env.get("LABMESH_OIDC_PROVIDER_NAME") or "").strip(),
            # "openid" is what makes it OpenID Connect: always asked for, whatever the list says.
            scopes=tuple(dict.fromkeys(("openid", *(env.get("LABMESH_OIDC_SCOPES") or "profile email").split()))),
            redirect_url=redirect_url,
            post_logout_url=post_logout_url,
        )


LOGINS = ("password", "oidc")


@dataclass(frozen=True)
class AccessSettings:
    """Who may sign in and what is remembered of it: the accounts file, the audit log, login limits, OIDC.

    ``login`` says how people sign in to the portal: ``password`` (the local
    users of `labmesh users`) or ``oidc`` (the identity provider, whose
    settings are then required). API tokens work with either.
    """

    login: str
    access_path: Path
    audit_path: Path
    login_failures_per_user: int
    login_failures_per_address: int
    login_window_seconds: float
    oidc: OidcSettings | None
    portal_secret: str | None = None
    """Signs the portal's session cookies; without one, a random secret signs everyone out at each restart."""
    database_url: str | None = field(default=None, repr=False)
    """``LABMESH_DATABASE_URL``, as `Settings.database_url`: when set, the accounts, tokens, sign-in failures and
    the audit log are kept in this PostgreSQL database, and ``access_path`` and ``audit_path`` are not used."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], home: Path, *, environment: bool = False) -> AccessSettings:
        login = env.get("LABMESH_LOGIN") or "password"
        if login not in LOGINS:
            raise SettingsError(f"LABMESH_LOGIN={login!r}: people sign in with {' or '.join(LOGINS)}")
        return cls(
            login=login,
            access_path=_path(env, "LABMESH_ACCESS_PATH", home / "access.sqlite"),
            audit_path=_path(env, "LABMESH_AUDIT_PATH", home / "audit.sqlite"),
            login_failures_per_user=_count(env, "LABMESH_LOGIN_FAILURES_PER_USER", 5),
            login_failures_per_address=_count(env, "LABMESH_LOGIN_FAILURES_PER_ADDRESS", 20),
            login_window_seconds=_seconds(env, "LABMESH_LOGIN_WINDOW_SECONDS", 300, zero=False),
            oidc=OidcSettings.from_env(env, environment=environment) if login == "oidc" else None,
            portal_secret=env.get("LABMESH_PORTAL_SECRET") or None,
            database_url=_database_url(env),
        )


@dataclass(frozen=True)
class Settings:
    """Where labmesh keeps things and how patient its sensors are."""

    profile: str
    home: Path
    demo: bool
    store_dir: Path
    eln_dir: Path
    eln_outbox_dir: Path
    catalog_path: Path
    landing_settle_seconds: float
    unknown_experiment_grace_seconds: float
    sensor_interval_seconds: int
    landing_retry_seconds: float
    extract_budget_seconds: float
    webhook_sources: tuple[WebhookSettings, ...]
    benchling_jwks_url: str
    eln: str
    elabftw: ElabFtwSettings | None
    benchling: BenchlingSettings | None
    aws: AwsSettings | None
    access: AccessSettings
    dagster_url: str = "http://127.0.0.1:3000"
    """Where people open Dagster's UI: the portal links each experiment's partitions and runs there."""
    admin_notice: bool = True
    """Whether the commands reading the catalog as the local admin say so on stderr (LABMESH_ADMIN_NOTICE)."""
    answers: AnswerSettings = field(default_factory=AnswerSettings)
    """Which engine answers in the chat (LABMESH_ANSWERER) and, for Bedrock, the model and guardrail."""
    pipelines_path: Path | None = None
    """``LABMESH_PIPELINES``: the pipelines file `processed_dataset` runs (None: the built-in one, fastp, seqkit,
    samtools, bcftools and MultiQC)."""
    database_url: str | None = field(default=None, repr=False)
    """``LABMESH_DATABASE_URL``: labmesh's own state (and a deployment's Dagster instance) in this PostgreSQL
    database instead of SQLite files under the home. Kept out of ``repr``: it may hold a password."""
    eln_watch: str = "auto"
    """``LABMESH_ELN_WATCH``: whether the folder ELN's polls follow the kernel's change feed (inotify) instead of
    listing the folder each tick: ``auto`` (on local filesystems, not on network shares), ``on``, ``off``."""
    eln_reconcile_seconds: float = 600.0
    """``LABMESH_ELN_RECONCILE_SECONDS``: how often a watched records folder is listed all the same."""

    @property
    def datazone(self) -> DataZoneSettings | None:
        return self.aws.datazone if self.aws else None

    @property
    def kendra(self) -> KendraSettings | None:
        return self.aws.kendra if self.aws else None

    @property
    def knowledge_base(self) -> BedrockKnowledgeBaseSettings | None:
        return self.aws.knowledge_base if self.aws else None

    @property
    def omics(self) -> OmicsSettings | None:
        return self.aws.omics if self.aws else None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def inbox_path(self) -> Path:
        """The ELN event inbox `labmesh api` writes and `eln_sensor` reads (beside the catalog)."""
        return self.catalog_path.with_name("eln-inbox.sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        profile = env.get("LABMESH_PROFILE", "local") or "local"
        if profile not in PROFILES:
            raise SettingsError(
                f"LABMESH_PROFILE={profile!r}: this version provides the profiles {', '.join(PROFILES)}"
            )
        home = Path(env.get("LABMESH_HOME") or ".labmesh").expanduser().resolve()
        eln = env.get("LABMESH_ELN") or "folder"
        if eln not in ELNS:
            raise SettingsError(f"LABMESH_ELN={eln!r}: this version reads experiments from {', '.join(ELNS)}")

        def path(name: str, default: Path) -> Path:
            value = env.get(name)
            return Path(value).expanduser().resolve() if value else default

        return cls(
            profile=profile,
            home=home,
            demo=_flag(env, "LABMESH_DEMO", True),
            store_dir=path("LABMESH_STORE_DIR", home / "store"),
            eln_dir=path("LABMESH_ELN_DIR", home / "eln"),
            eln_outbox_dir=path("LABMESH_ELN_OUTBOX_DIR", home / "eln-outbox"),
            catalog_path=path("LABMESH_CATALOG_PATH", home / "catalog.sqlite"),
            landing_settle_seconds=_seconds(env, "LABMESH_LANDING_SETTLE_SECONDS", 10),
            unknown_experiment_grace_seconds=_seconds(env, "LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS", 900),
            sensor_interval_seconds=int(_seconds(env, "LABMESH_SENSOR_INTERVAL_SECONDS", 10)),
            landing_retry_seconds=_seconds(env, "LABMESH_LANDING_RETRY_SECONDS", 3600),
            extract_budget_seconds=_seconds(env, "LABMESH_EXTRACT_SECONDS", defaults.EXTRACT_SECONDS),
            webhook_sources=WebhookSettings.all_from_env(env),
            benchling_jwks_url=_jwks_url(env),
            eln=eln,
            elabftw=ElabFtwSettings.from_env(env, environment=environ is None) if eln == "elabftw" else None,
            benchling=BenchlingSettings.from_env(env, environment=environ is None) if eln == "benchling" else None,
            aws=AwsSettings.from_env(env) if profile == "aws" else None,
            access=AccessSettings.from_env(env, home, environment=environ is None),
            dagster_url=(env.get("LABMESH_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
            admin_notice=_flag(env, "LABMESH_ADMIN_NOTICE", True),
            answers=AnswerSettings.from_env(env),
            pipelines_path=Path(env["LABMESH_PIPELINES"]).expanduser().resolve()
            if env.get("LABMESH_PIPELINES")
            else None,
            database_url=_database_url(env),
            eln_watch=_eln_watch(env),
            eln_reconcile_seconds=_seconds(env, "LABMESH_ELN_RECONCILE_SECONDS", 600),
        )
