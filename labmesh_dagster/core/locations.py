"""Where data is, written for people to copy: a plain path for the local store, the URI for S3.

Stores name locations as URIs (``file:///lab/raw/EXP-1/``, ``s3://lab-raw/EXP-1/``),
which is what lineage and the catalog need. People need something they can
paste: a browser will not open a ``file://`` link from a web page (the Dagster
UI), and a terminal or a file manager wants the path. An ``s3://`` URI is
already what the AWS CLI and the console's search take.
"""

from __future__ import annotations

import os
from urllib.parse import unquote_to_bytes, urlsplit

_LOCAL_HOSTS = frozenset({"", "localhost"})


def copyable_location(uri: str) -> str:
    """The path of a ``file://`` URI on this machine (a folder keeps its trailing slash); any other URI as it is.

    The inverse of `pathlib.Path.as_uri`, which quotes the path's bytes, so
    names that are not UTF-8 come back as the file system holds them. A file
    URI naming another host (``file://nas01/...``) is no path here and is kept.
    """
    if not uri.lower().startswith("file:"):
        return uri
    parts = urlsplit(uri)
    if parts.netloc.lower() not in _LOCAL_HOSTS or not parts.path.startswith("/"):
        return uri
    return os.fsdecode(unquote_to_bytes(parts.path))
