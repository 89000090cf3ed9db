"""`Settings.from_env` reads every ``LABMESH_*`` variable once, with defaults under ``LABMESH_HOME``.

Pinned here: with only ``LABMESH_HOME`` set, every path lies beneath it and the
timings have their documented defaults; each variable overrides its default
(relative paths resolved, ``~`` expanded, empty values meaning "unset"); a
flag, number or negative duration labmesh cannot use raises `SettingsError`
naming the variable and the value; an unknown profile is refused with the
profiles this version provides; the process environment is read only when no
mapping is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labmesh_dagster.settings import AccessSettings, Settings, SettingsError


def test_defaults_live_under_labmesh_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"LABMESH_HOME": str(tmp_path / "home")})

    home = (tmp_path / "home").resolve()
    assert settings == Settings(
        profile="local",
        home=home,
        demo=True,
        store_dir=home / "store",
        eln_dir=home / "eln",
        eln_outbox_dir=home / "eln-outbox",
        catalog_path=home / "catalog.sqlite",
        landing_settle_seconds=10,
        unknown_experiment_grace_seconds=900,
        sensor_interval_seconds=10,
        landing_retry_seconds=3600,
        extract_budget_seconds=600,
        webhook_sources=(),
        benchling_jwks_url="https://apps.benchling.com/api/v1/apps/{app_definition_id}/jwks",
        eln="folder",
        elabftw=None,
        benchling=None,
        aws=None,
        access=AccessSettings(
            login="password",
            access_path=home / "access.sqlite",
            audit_path=home / "audit.sqlite",
            login_failures_per_user=5,
            login_failures_per_address=20,
            login_window_seconds=300,
            oidc=None,
        ),
    )
    assert settings.dagster_home == home / "dagster"


def test_without_labmesh_home_the_home_is_dot_labmesh_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert Settings.from_env({}).home == (tmp_path / ".labmesh").resolve()


def test_each_variable_overrides_its_default(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path / "home"),
            "LABMESH_PROFILE": "local",
            "LABMESH_DEMO": "off",
            "LABMESH_STORE_DIR": str(tmp_path / "big-disk" / "store"),
            "LABMESH_ELN_DIR": str(tmp_path / "shared" / "eln"),
            "LABMESH_ELN_OUTBOX_DIR": str(tmp_path / "shared" / "outbox"),
            "LABMESH_CATALOG_PATH": str(tmp_path / "db" / "catalog.sqlite"),
            "LABMESH_LANDING_SETTLE_SECONDS": "2.5",
            "LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS": "0",
            "LABMESH_SENSOR_INTERVAL_SECONDS": "30",
            "LABMESH_EXTRACT_SECONDS": "45",
        }
    )

    assert settings.demo is False
    assert settings.extract_budget_seconds == 45
    assert settings.store_dir == (tmp_path / "big-disk" / "store").resolve()
    assert settings.eln_dir == (tmp_path / "shared" / "eln").resolve()
    assert settings.eln_outbox_dir == (tmp_path / "shared" / "outbox").resolve()
    assert settings.catalog_path == (tmp_path / "db" / "catalog.sqlite").resolve()
    assert settings.landing_settle_seconds == 2.5
    assert settings.unknown_experiment_grace_seconds == 0
    assert settings.sensor_interval_seconds == 30
    assert isinstance(settings.sensor_interval_seconds, int)


def test_relative_paths_are_resolved_and_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))

    settings = Settings.from_env({"LABMESH_HOME": "~/labmesh", "LABMESH_STORE_DIR": "data/store"})

    assert settings.home == (tmp_path / "user" / "labmesh").resolve()
    assert settings.store_dir == (tmp_path / "data" / "store").resolve()
    assert settings.home.is_absolute() and settings.store_dir.is_absolute()


def test_empty_values_mean_unset(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_PROFILE": "",
            "LABMESH_DEMO": "",
            "LABMESH_STORE_DIR": "",
            "LABMESH_LANDING_SETTLE_SECONDS": "",
        }
    )

    assert settings.profile == "local"
    assert settings.demo is True
    assert settings.store_dir == tmp_path.resolve() / "store"
    assert settings.landing_settle_seconds == 10


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("On", True), ("0", False), ("false", False), ("No", False)],
)
def test_flags_accept_the_usual_spellings(tmp_path: Path, value: str, expected: bool) -> None:
    assert Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_DEMO": value}).demo is expected


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", " true"])
def test_a_flag_labmesh_cannot_read_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_DEMO": value})

    assert str(caught.value).startswith(f"LABMESH_DEMO={value!r}: ")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "name",
    ["LABMESH_LANDING_SETTLE_SECONDS", "LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS", "LABMESH_SENSOR_INTERVAL_SECONDS"],
)
@pytest.mark.parametrize(("value", "message"), [("ten", "expected a number"), ("-1", "must not be negative")])
def test_a_duration_that_is_not_a_non_negative_number_names_the_variable(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env({"LABMESH_HOME": str(tmp_path), name: value})

    assert str(caught.value).startswith(f"{name}={value!r}: ")


@pytest.mark.parametrize(
    "name",
    ["LABMESH_LANDING_SETTLE_SECONDS", "LABMESH_UNKNOWN_EXPERIMENT_GRACE_SECONDS", "LABMESH_SENSOR_INTERVAL_SECONDS"],
)
def test_nan_is_not_a_duration(tmp_path: Path, name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), name: "nan"})


def test_an_infinite_sensor_interval_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LABMESH_SENSOR_INTERVAL_SECONDS"):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_SENSOR_INTERVAL_SECONDS": "inf"})


@pytest.mark.parametrize("profile", ["LOCAL", "prod", "gcp"])
def test_an_unknown_profile_is_refused_with_the_profiles_on_offer(tmp_path: Path, profile: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_PROFILE": profile})

    message = str(caught.value)
    assert message.startswith(f"LABMESH_PROFILE={profile!r}: ")
    assert "local" in message


def test_the_process_environment_is_read_only_when_no_mapping_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABMESH_HOME", str(tmp_path / "from-env"))
    monkeypatch.setenv("LABMESH_SENSOR_INTERVAL_SECONDS", "45")

    assert Settings.from_env().home == (tmp_path / "from-env").resolve()
    assert Settings.from_env().sensor_interval_seconds == 45
    assert Settings.from_env({"LABMESH_HOME": str(tmp_path / "given")}).sensor_interval_seconds == 10


def test_datazone_and_kendra_are_off_until_configured_and_then_read_whole(tmp_path: Path) -> None:
    aws = {"LABMESH_HOME": str(tmp_path), "LABMESH_PROFILE": "aws"}
    assert Settings.from_env(aws).aws.datazone is None  # type: ignore[union-attr]
    assert Settings.from_env(aws).aws.kendra is None  # type: ignore[union-attr]

    settings = Settings.from_env(
        {
            **aws,
            "LABMESH_DATAZONE_DOMAIN_ID": "dzd_abc123",
            "LABMESH_DATAZONE_PROJECT_ID": "prj123",
            "LABMESH_DATAZONE_GLOSSARY_PLATFORMS": "Illumina MiSeq, Oxford Nanopore",
            "LABMESH_DATAZONE_MAX_CALLS_PER_SECOND": "5",
            "LABMESH_KENDRA_INDEX_ID": "0123",
        }
    )

    datazone, kendra = settings.aws.datazone, settings.aws.kendra  # type: ignore[union-attr]
    assert datazone is not None and kendra is not None
    assert (datazone.domain_id, datazone.project_id, datazone.max_per_second) == ("dzd_abc123", "prj123", 5)
    assert datazone.glossary_terms == {"platform": ("Illumina MiSeq", "Oxford Nanopore")}
    assert (kendra.index_id, kendra.max_per_second) == ("0123", 5)


def test_a_bedrock_knowledge_base_takes_both_ids_and_refuses_malformed_ones(tmp_path: Path) -> None:
    aws = {"LABMESH_HOME": str(tmp_path), "LABMESH_PROFILE": "aws"}
    assert Settings.from_env(aws).knowledge_base is None

    settings = Settings.from_env(
        {
            **aws,
            "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID": "KB12EXAMPL",
            "LABMESH_BEDROCK_DATA_SOURCE_ID": "DS12EXAMPL",
            "LABMESH_BEDROCK_KB_ENDPOINT_URL": "http://127.0.0.1:5004",
            "LABMESH_BEDROCK_KB_MAX_CALLS_PER_SECOND": "2",
        }
    )

    knowledge_base = settings.knowledge_base
    assert knowledge_base is not None
    assert (knowledge_base.knowledge_base_id, knowledge_base.data_source_id) == ("KB12EXAMPL", "DS12EXAMPL")
    assert knowledge_base.max_per_second == 2
    assert settings.aws.connection("bedrock-agent-runtime").endpoint_url == "http://127.0.0.1:5004"  # type: ignore[union-attr]
    assert (
        Settings.from_env(
            {"LABMESH_HOME": str(tmp_path), "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID": "KB12EXAMPL"}
        ).knowledge_base
        is None
    )
    with pytest.raises(SettingsError, match="go together"):
        Settings.from_env({**aws, "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID": "KB12EXAMPL"})
    with pytest.raises(SettingsError, match="10 letters and digits"):
        Settings.from_env(
            {**aws, "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID": "kb-1", "LABMESH_BEDROCK_DATA_SOURCE_ID": "DS12EXAMPL"}
        )


def test_datazone_group_projects_are_read_as_a_map_and_unset_means_one_shared_project(tmp_path: Path) -> None:
    base = {
        "LABMESH_HOME": str(tmp_path),
        "LABMESH_PROFILE": "aws",
        "LABMESH_DATAZONE_DOMAIN_ID": "dzd_abc123",
        "LABMESH_DATAZONE_PROJECT_ID": "prj123",
    }
    unset = Settings.from_env(base).aws.datazone  # type: ignore[union-attr]
    assert unset is not None and (unset.group_projects, unset.restricted_project_id) == (None, None)

    mapped = Settings.from_env(
        {
            **base,
            "LABMESH_DATAZONE_GROUP_PROJECTS": " Genomics  Core=prj-gen , proteomics=prj_prot,*=prj123",
            "LABMESH_DATAZONE_RESTRICTED_PROJECT_ID": "prjadmins",
        }
    ).aws.datazone  # type: ignore[union-attr]
    assert mapped is not None
    assert mapped.group_projects == {"Genomics Core": "prj-gen", "proteomics": "prj_prot", "*": "prj123"}
    assert mapped.restricted_project_id == "prjadmins"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"LABMESH_DATAZONE_GROUP_PROJECTS": "genomics"}, "is not group=projectId"),
        ({"LABMESH_DATAZONE_GROUP_PROJECTS": "=prj1"}, "is not group=projectId"),
        ({"LABMESH_DATAZONE_GROUP_PROJECTS": "genomics=prj/1"}, "not a DataZone project id"),
        ({"LABMESH_DATAZONE_GROUP_PROJECTS": "Genomics=prj1,genomics=prj2"}, "mapped to two projects"),
        ({"LABMESH_DATAZONE_RESTRICTED_PROJECT_ID": "admins only"}, "not a DataZone project id"),
    ],
)
def test_a_group_project_map_datazone_would_refuse_is_refused_naming_the_entry(
    tmp_path: Path, extra: dict, message: str
) -> None:
    env = {"LABMESH_DATAZONE_DOMAIN_ID": "dzd_abc", "LABMESH_DATAZONE_PROJECT_ID": "prj1", **extra}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_PROFILE": "aws", **env})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"LABMESH_DATAZONE_DOMAIN_ID": "dzd_abc"}, "go together"),
        (
            {
                "LABMESH_DATAZONE_DOMAIN_ID": "d",
                "LABMESH_DATAZONE_PROJECT_ID": "p",
                "LABMESH_DATAZONE_MAX_CALLS_PER_SECOND": "0",
            },
            "must be positive",
        ),
    ],
)
def test_half_or_impossible_datazone_settings_are_refused(tmp_path: Path, extra: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_PROFILE": "aws", **extra})


def test_the_eln_is_the_folder_unless_elabftw_is_named_with_its_url_and_key(tmp_path: Path) -> None:
    assert Settings.from_env({"LABMESH_HOME": str(tmp_path)}).elabftw is None
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_ELN": "elabftw",
            "LABMESH_ELABFTW_URL": "https://elab.example.org",
            "LABMESH_ELABFTW_API_KEY": "3-abc",
            "LABMESH_ELN_MAPPING": "mapping.yaml",
        }
    )
    assert settings.elabftw is not None and settings.elabftw.scope == 2
    assert settings.elabftw.mapping_path == Path("mapping.yaml").resolve()
    with pytest.raises(SettingsError, match="LABMESH_ELABFTW_URL"):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_ELN": "elabftw"})
    with pytest.raises(SettingsError, match="folder, elabftw"):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_ELN": "labarchives"})


def test_webhook_sources_are_read_with_their_secrets_and_payload_shape(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_WEBHOOK_LIMS_SECRETS": "whsec_new, whsec_old",
            "LABMESH_WEBHOOK_BENCHLING_SECRETS": "whsec_b",
        }
    )
    assert [(s.name, s.secrets, s.payload) for s in settings.webhook_sources] == [
        ("benchling", ("whsec_b",), "benchling"),
        ("lims", ("whsec_new", "whsec_old"), "labmesh"),
    ]


def test_benchling_is_named_with_its_url_key_and_location_field(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_ELN": "benchling",
            "LABMESH_BENCHLING_URL": "https://acme.benchling.com",
            "LABMESH_BENCHLING_API_KEY": "sk_abc",
            "LABMESH_BENCHLING_SCHEMA_ID": "ts_seqrun",
        }
    )
    assert settings.benchling is not None and settings.benchling.location_field == "labmesh data location"
    assert settings.benchling.schema_id == "ts_seqrun"
    with pytest.raises(SettingsError, match="LABMESH_BENCHLING_URL"):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_ELN": "benchling"})


def test_a_benchling_app_source_is_read_with_its_app_definition_id_and_benchlings_jwks_url(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_WEBHOOK_ELN_BENCHLING_APP_DEFINITION_ID": "appdef_x1Y2",
            "LABMESH_WEBHOOK_LIMS_SECRETS": "whsec_l",
        }
    )
    assert [(s.name, s.secrets, s.payload, s.benchling_app_definition_id) for s in settings.webhook_sources] == [
        ("eln", (), "benchling", "appdef_x1Y2"),
        ("lims", ("whsec_l",), "labmesh", None),
    ]
    assert settings.benchling_jwks_url == "https://apps.benchling.com/api/v1/apps/{app_definition_id}/jwks"
    local = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_WEBHOOK_BENCHLING_SECRETS": "whsec_b",
            "LABMESH_WEBHOOK_BENCHLING_BENCHLING_APP_DEFINITION_ID": "appdef_x1Y2",
            "LABMESH_BENCHLING_JWKS_URL": "http://127.0.0.1:9000/apps/{app_definition_id}/jwks",
        }
    )
    [both] = local.webhook_sources
    assert (both.secrets, both.benchling_app_definition_id) == (("whsec_b",), "appdef_x1Y2")
    assert local.benchling_jwks_url == "http://127.0.0.1:9000/apps/{app_definition_id}/jwks"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABMESH_WEBHOOK_LIMS_PAYLOAD": "labmesh"}, "neither secrets nor a Benchling app"),
        ({"LABMESH_WEBHOOK_LIMS_SECRETS": " , "}, "LABMESH_WEBHOOK_LIMS_BENCHLING_APP_DEFINITION_ID"),
        ({"LABMESH_WEBHOOK_B_BENCHLING_APP_DEFINITION_ID": "../evil"}, "expected an id like appdef_"),
        (
            {"LABMESH_WEBHOOK_B_BENCHLING_APP_DEFINITION_ID": "appdef_1", "LABMESH_WEBHOOK_B_PAYLOAD": "labmesh"},
            "Benchling's envelope",
        ),
        ({"LABMESH_BENCHLING_JWKS_URL": "https://apps.benchling.com/jwks"}, "{app_definition_id}"),
        ({"LABMESH_BENCHLING_JWKS_URL": "ftp://x/{app_definition_id}"}, "http(s) URL"),
    ],
    ids=["payload alone", "empty secrets", "bad app id", "app with labmesh payload", "no placeholder", "not http"],
)
def test_a_webhook_source_that_cannot_be_verified_stops_startup_with_the_variable_to_set(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({"LABMESH_HOME": str(tmp_path), **env})


def test_a_poll_interval_of_zero_is_refused_before_it_could_spin(tmp_path: Path) -> None:
    env = {
        "LABMESH_HOME": str(tmp_path),
        "LABMESH_PROFILE": "aws",
        "LABMESH_OMICS_SEQUENCE_STORE_ID": "1234567890",
        "LABMESH_OMICS_ROLE_ARN": "arn:aws:iam::123456789012:role/labmesh-omics-import",
        "LABMESH_OMICS_POLL_SECONDS": "0",
    }

    with pytest.raises(SettingsError, match="LABMESH_OMICS_POLL_SECONDS='0': must be more than 0 seconds"):
        Settings.from_env(env)


def test_the_eln_request_time_limit_is_a_setting_and_never_zero() -> None:
    base = {"LABMESH_ELN": "elabftw", "LABMESH_ELABFTW_URL": "https://elab.example.org", "LABMESH_ELABFTW_API_KEY": "k"}

    assert Settings.from_env(base).elabftw.timeout_seconds == 30
    assert Settings.from_env({**base, "LABMESH_ELN_TIMEOUT_SECONDS": "2.5"}).elabftw.timeout_seconds == 2.5
    with pytest.raises(SettingsError, match="LABMESH_ELN_TIMEOUT_SECONDS"):
        Settings.from_env({**base, "LABMESH_ELN_TIMEOUT_SECONDS": "0"})
