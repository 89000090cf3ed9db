"""The errors of people, tokens and the audit log, each a `LabmeshError` the CLI prints as one clear line."""

from __future__ import annotations

from labmesh_dagster.core.errors import LabmeshError


class InvalidUserName(LabmeshError, ValueError):
    """A user name that could not be told apart from another in a principal, a URL or a log line."""


class InvalidGroupName(LabmeshError, ValueError):
    """A group name that is empty or holds control characters."""


class UserExists(LabmeshError):
    """A user of that name (ignoring case) is already there; adding never replaces an account."""


class UnknownUser(LabmeshError, LookupError):
    """No user of that name."""


class UnknownToken(LabmeshError, LookupError):
    """No API token with that id."""


class OidcClaimsError(LabmeshError, ValueError):
    """An ID token whose claims do not name the person (the configured user name claim is missing)."""


class UnusablePassword(LabmeshError, ValueError):
    """A password too short to resist guessing, or too long to hash cheaply."""


class OidcUnavailable(LabmeshError):
    """The identity provider could not be reached, or answered what no provider would: nobody can sign in now."""


class OidcSignInRefused(LabmeshError, ValueError):
    """A sign-in that cannot be trusted: a stale or forged state, a refused code, an ID token that fails a check."""
