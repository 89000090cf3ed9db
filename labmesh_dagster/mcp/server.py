"""The MCP server (the official ``mcp`` SDK's `MCPServer`): labmesh's tools for AI assistants, as one user.

Four read-only tools: ``search`` (the catalog's datasets and files, and
passages of file contents), ``experiment`` (one experiment's record and
datasets), ``lineage`` (how its data was made) and ``ask`` (an answer with
numbered citations). Each runs `labmesh_dagster.mcp.tools.LabTools` for the
viewer the server acts as, so an assistant sees exactly what that person sees
in the portal, and nothing of an experiment they may not see: not in a search,
not as a lookup ("not found", as for an experiment that does not exist), not
in a lineage (a "restricted" node), not in an answer's citations.

Who the server acts as is settled before it serves:

- over stdio (an assistant starts ``labmesh mcp`` as a subprocess), one person
  for the whole session: ``--user NAME`` from the users store, or ``--token``
  (an API token, as ``Authorization: Bearer`` takes in the portal). It never
  acts as an admin unless ``--admin`` says so, and then says so on stderr; a
  user who is an admin needs ``--admin`` too;
- over streamable HTTP, the person whose API token each request carries as a
  Bearer token (the SDK's bearer middleware answers 401 without a valid one).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.core.access import LOCAL_ADMIN, Viewer
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.mcp.tools import Json, LabTools

NAME = "labmesh"
INSTRUCTIONS = (
    "labmesh is a laboratory's data mesh: experiments from the ELN, their raw, processed and final datasets, "
    "the files in them and how each was made. Use `search` to find experiments, datasets, files and passages "
    "of file contents; `experiment` to read one experiment; `lineage` for how its data was made; and `ask` "
    "for an answer quoted from the lab's files with numbered citations. Everything is limited to the "
    "experiments the user this server acts as may see; an answer that is not `answered` means nothing they "
    "may see answers the question."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class UnknownIdentity(LabmeshError, ValueError):
    """The server was told to act as someone labmesh does not know, or as no one: it does not start."""


def stdio_viewer(access: AccessStores, *, user: str | None, token: str | None, admin: bool) -> Viewer:
    """The one person a stdio server acts as: ``user`` or ``token``'s, or the local admin with ``admin`` alone."""
    if sum(value is not None and value is not False for value in (user, token)) > 1:
        raise UnknownIdentity("say who the server acts as once: --user NAME or --token TOKEN, not both")
    if user is not None:
        account = access.users.get(user)
        if account is None:
            raise UnknownIdentity(f"there is no user {user!r}: add them with `labmesh users add`")
        viewer = account.viewer
    elif token is not None:
        found = access.viewer_for_token(token)
        if found is None:
            raise UnknownIdentity("the token is not valid: unknown, expired or revoked")
        viewer = found
    elif admin:
        return LOCAL_ADMIN
    else:
        raise UnknownIdentity("say who the server acts as: --user NAME, --token TOKEN, or --admin to see everything")
    if viewer.admin and not admin:
        raise UnknownIdentity(f"{viewer.name} is an admin and sees every experiment: add --admin to act as them")
    return viewer


def admin_notice(viewer: Viewer) -> str | None:
    """What the server says on stderr when it acts with an admin's sight (every experiment), else None."""
    if not viewer.admin:
        return None
    return f"labmesh mcp acts as {viewer.name}, an admin: assistants using it see every experiment"


class ApiTokens:
    """The SDK's `TokenVerifier` over labmesh's API tokens: a valid token names its user, groups and admin flag."""

    def __init__(self, access: AccessStores) -> None:
        self.access = access

    async def verify_token(self, token: str) -> AccessToken | None:
        viewer = await anyio.to_thread.run_sync(self.access.viewer_for_token, token)
        if viewer is None:
            return None
        claims = {"groups": sorted(viewer.groups), "admin": viewer.admin}
        return AccessToken(token=token, client_id=viewer.name, scopes=[], subject=viewer.name, claims=claims)


def token_viewer() -> Viewer:
    """The viewer the current HTTP request's Bearer token names (`ApiTokens` verified it before the call)."""
    access = get_access_token()
    if access is None or access.claims is None:
        raise ToolError("this request carries no valid API token")
    return Viewer(
        name=access.client_id, groups=frozenset(access.claims.get("groups", ())), admin=bool(access.claims.get("admin"))
    )


def build_server(
    tools: LabTools,
    viewer_of: Callable[[], Viewer],
    *,
    access: AccessStores | None = None,
    auth: AuthSettings | None = None,
) -> MCPServer:
    """The MCP server with labmesh's tools, each run for ``viewer_of()`` (fixed over stdio, per request over HTTP).

    ``auth`` (with ``access``) requires a labmesh API token on every HTTP request.
    """
    verifier = ApiTokens(access) if auth is not None and access is not None else None
    server: MCPServer = MCPServer(NAME, instructions=INSTRUCTIONS, token_verifier=verifier, auth=auth)

    async def run(work: Callable[[Viewer], Json]) -> Json:
        viewer = viewer_of()
        try:
            return await anyio.to_thread.run_sync(functools.partial(work, viewer))
        except (LabmeshError, LookupError, ValueError) as error:
            raise ToolError(str(error)) from error

    @server.tool(annotations=READ_ONLY)
    async def search(
        query: str = "",
        experiment: str | None = None,
        sample: str | None = None,
        platform: str | None = None,
        group: str | None = None,
        format: str | None = None,
        limit: int = 10,
    ) -> dict[str, Any]:
        """Find experiments' datasets and files in the catalog, and passages of file contents, by words and facets.

        ``query`` holds words or ids (sample, experiment, file name); the facets narrow to one experiment id,
        sample id, instrument platform, group or file format (``fastq`` also finds ``fastq.gz``). Returns
        ``datasets`` (with their matching files) and ``passages`` (file text with its place: page, rows,
        section or lines). Only experiments you may see are searched.
        """
        return await run(
            lambda viewer: tools.search(
                viewer,
                query,
                experiment=experiment,
                sample=sample,
                platform=platform,
                group=group,
                format=format,
                limit=limit,
            )
        )

    @server.tool(annotations=READ_ONLY)
    async def experiment(experiment_id: str) -> dict[str, Any]:
        """One experiment's ELN record (title, owner, group, samples, platform, protocol, dates) and its datasets.

        An experiment that does not exist and one you may not see answer alike: not found.
        """
        return await run(lambda viewer: tools.experiment(viewer, experiment_id))

    @server.tool(annotations=READ_ONLY)
    async def lineage(experiment_id: str, expand: list[str] | None = None) -> dict[str, Any]:
        """How an experiment's data was made: datasets by zone and the pipeline runs between them, as nodes and edges.

        ``expand`` lists dataset node ids whose files (and the files they were derived from) to include.
        Nodes of experiments you may not see show only as "restricted".
        """
        return await run(lambda viewer: tools.lineage(viewer, experiment_id, expand or ()))

    @server.tool(annotations=READ_ONLY)
    async def ask(question: str) -> dict[str, Any]:
        """Answer a question from the lab's files and catalog, quoting them with numbered citations.

        The answer's ``parts`` each name the ``citations`` (file, place, experiment, link) that back them.
        ``answered`` false means nothing you may see answers it: the answer never guesses.
        """
        return await run(lambda viewer: tools.ask(viewer, question))

    if tools.asker is None:
        server.remove_tool("ask")
    return server


def http_auth(resource_url: str, issuer_url: str) -> AuthSettings:
    """Bearer-token settings for streamable HTTP: labmesh (its portal) issues the tokens, this server checks them."""
    # labmesh's API tokens are the portal's, good for every labmesh API rather than issued for one resource:
    # `ApiTokens` checks them against the access store, so no audience is there to compare.
    return AuthSettings(
        issuer_url=issuer_url,  # type: ignore[arg-type]
        resource_server_url=resource_url,  # type: ignore[arg-type]
        validate_token_resource=False,
    )


def say(text: str | None) -> None:
    if text:
        print(text, file=sys.stderr)
