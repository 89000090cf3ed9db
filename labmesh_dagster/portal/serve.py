"""`labmesh api` as one server: the ELN webhook endpoint and the discovery portal, side by side.

`labmesh dev` starts it next to Dagster (the portal on :8000, Dagster on
:3000). Started that way it is handed the read end of a pipe that Dagster's
process holds: end-of-file there means Dagster has exited, and the server
stops with it, so Ctrl-C stops both.

Session cookies are ``Secure`` unless the server listens on the machine's own
loopback address, where the browser reaches it over plain HTTP; anything that
listens beyond the machine belongs behind TLS.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
import threading

import uvicorn
from fastapi import FastAPI

from labmesh_dagster.access.stores import AccessStores
from labmesh_dagster.api.app import create_app_from_settings
from labmesh_dagster.ask.engines import open_answerer
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster.ports import Ports


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_app(ports: Ports, *, host: str) -> FastAPI:
    """The webhook endpoint and the portal in one app, as configured."""
    settings = ports.settings
    app = create_app_from_settings(settings, ports.inbox())
    context = PortalContext(
        catalog=ports.catalog,
        store=ports.store,
        access=AccessStores.open(settings.access),
        signer=SessionSigner(settings.access.portal_secret or secrets.token_urlsafe(32)),
        secure_cookies=not is_loopback(host),
        dagster_url=settings.dagster_url,
        rejections=ports.eln_rejections,
        # One index for the server's life: Kendra's is prepared (DescribeIndex) once, not per search.
        content_index=functools.cache(ports.content_index),
        answerer=functools.cache(lambda: open_answerer(settings.answers, ports.clients)),
    )
    mount_portal(app, context)
    from labmesh_dagster.portal.lineage import create_lineage_router

    secret = settings.access.portal_secret
    app.include_router(create_lineage_router(context, ports.lineage_log, secret=secret.encode() if secret else None))
    return app


def serve(app: FastAPI, *, host: str, port: int, watch_fd: int | None = None) -> None:
    """Serve until Ctrl-C, or until the pipe ``watch_fd`` reads end-of-file (the platform that started us is gone)."""
    quiet = watch_fd is not None  # beside Dagster's console, one line per request would drown it
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, access_log=not quiet, log_level="warning" if quiet else "info")
    )
    if watch_fd is not None:

        def stop_when_the_platform_exits() -> None:
            while os.read(watch_fd, 1):
                pass
            server.should_exit = True

        threading.Thread(target=stop_when_the_platform_exits, daemon=True).start()
    server.run()
