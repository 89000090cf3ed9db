"""The settings of people and the audit log: where they are kept, how sign-in is limited, and OIDC.

Contract: with only ``LABMESH_HOME`` the access file and the audit log lie
beneath it, sign-in is by password, and OIDC is off; each variable overrides
its default; ``LABMESH_LOGIN=oidc`` needs the issuer and the client id, and
reads the rest with their defaults; values labmesh cannot use are refused by
name; ``LABMESH_DATABASE_URL`` moves the accounts and the audit log to that
PostgreSQL database (the same URL as the rest of labmesh's state), never
shown in the settings' repr.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labmesh_dagster.settings import OidcSettings, Secret, Settings, SettingsError


def test_the_access_file_and_the_audit_log_live_under_the_home(tmp_path: Path) -> None:
    access = Settings.from_env({"LABMESH_HOME": str(tmp_path)}).access

    assert (access.access_path, access.audit_path) == (tmp_path / "access.sqlite", tmp_path / "audit.sqlite")
    assert (access.login, access.oidc, access.database_url) == ("password", None, None)


def test_a_database_url_moves_the_accounts_and_the_audit_log_to_postgresql(tmp_path: Path) -> None:
    url = "postgresql://labmesh:s3cr3t@db.internal:5432/labmesh"

    settings = Settings.from_env({"LABMESH_HOME": str(tmp_path), "LABMESH_DATABASE_URL": url})

    assert settings.access.database_url == settings.database_url == url
    assert "s3cr3t" not in repr(settings.access)


def test_each_variable_overrides_its_default(tmp_path: Path) -> None:
    access = Settings.from_env(
        {
            "LABMESH_HOME": str(tmp_path),
            "LABMESH_ACCESS_PATH": str(tmp_path / "secure" / "people.sqlite"),
            "LABMESH_AUDIT_PATH": str(tmp_path / "audit" / "log.sqlite"),
            "LABMESH_LOGIN_FAILURES_PER_USER": "3",
            "LABMESH_LOGIN_FAILURES_PER_ADDRESS": "50",
            "LABMESH_LOGIN_WINDOW_SECONDS": "900",
        }
    ).access

    assert access.access_path == tmp_path / "secure" / "people.sqlite"
    assert access.audit_path == tmp_path / "audit" / "log.sqlite"
    assert (access.login_failures_per_user, access.login_failures_per_address, access.login_window_seconds) == (
        3,
        50,
        900,
    )


def test_oidc_reads_the_provider_and_defaults_the_claims() -> None:
    oidc = Settings.from_env(
        {
            "LABMESH_LOGIN": "oidc",
            "LABMESH_OIDC_ISSUER": "https://login.example.org/realms/lab/",
            "LABMESH_OIDC_CLIENT_ID": "labmesh-portal",
            "LABMESH_OIDC_CLIENT_SECRET": "s3cr3t",
            "LABMESH_OIDC_ADMIN_GROUPS": "lab-admins, it",
        }
    ).access.oidc

    assert oidc == OidcSettings(
        issuer="https://login.example.org/realms/lab",
        client_id="labmesh-portal",
        client_secret=Secret("LABMESH_OIDC_CLIENT_SECRET", "s3cr3t"),
        groups_claim="groups",
        user_claim="preferred_username",
        admin_groups=("lab-admins", "it"),
    )
    assert "s3cr3t" not in repr(oidc)
    assert oidc.display_name == "login.example.org" and oidc.scopes == ("openid", "profile", "email")


def test_oidc_names_the_provider_asks_for_scopes_and_is_told_its_callback() -> None:
    oidc = Settings.from_env(
        {
            "LABMESH_LOGIN": "oidc",
            "LABMESH_OIDC_ISSUER": "https://login.example.org",
            "LABMESH_OIDC_CLIENT_ID": "labmesh-portal",
            "LABMESH_OIDC_PROVIDER_NAME": "Lab Keycloak",
            "LABMESH_OIDC_SCOPES": "profile groups",
            "LABMESH_OIDC_REDIRECT_URL": "https://portal.example.org/auth/callback",
        }
    ).access.oidc

    assert oidc is not None
    assert oidc.display_name == "Lab Keycloak"
    assert oidc.scopes == ("openid", "profile", "groups")  # "openid" always: it is what makes it OpenID Connect
    assert oidc.redirect_url == "https://portal.example.org/auth/callback"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABMESH_LOGIN": "ldap"}, "LABMESH_LOGIN='ldap': people sign in with password or oidc"),
        ({"LABMESH_LOGIN": "oidc"}, "needs LABMESH_OIDC_ISSUER and LABMESH_OIDC_CLIENT_ID"),
        (
            {"LABMESH_LOGIN": "oidc", "LABMESH_OIDC_ISSUER": "login.example.org", "LABMESH_OIDC_CLIENT_ID": "x"},
            "expected the provider's http(s) issuer URL",
        ),
        (
            {
                "LABMESH_LOGIN": "oidc",
                "LABMESH_OIDC_ISSUER": "https://login.example.org",
                "LABMESH_OIDC_CLIENT_ID": "x",
                "LABMESH_OIDC_REDIRECT_URL": "/auth/callback",
            },
            "expected the portal's full http(s) URL ending in /auth/callback",
        ),
        ({"LABMESH_LOGIN_FAILURES_PER_USER": "0"}, "LABMESH_LOGIN_FAILURES_PER_USER='0': must be at least 1"),
        ({"LABMESH_LOGIN_FAILURES_PER_ADDRESS": "many"}, "LABMESH_LOGIN_FAILURES_PER_ADDRESS='many'"),
        ({"LABMESH_LOGIN_WINDOW_SECONDS": "0"}, "LABMESH_LOGIN_WINDOW_SECONDS='0': must be more than 0"),
    ],
)
def test_values_labmesh_cannot_use_are_refused_by_name(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LABMESH_HOME": str(tmp_path), **env})

    assert message in str(caught.value)
