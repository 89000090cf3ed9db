"""Where a dataset is and what opens it, as the Dagster UI shows them: the one place the portal will change.

A location is text to copy, never a link: a browser will not open a
``file://`` link from a web page, so the UI would show a link that does
nothing. Locations are path values (a local path, or an ``s3://`` URI, as
dagster-aws's own S3 IO manager shows its objects), which the UI copies on a
click.

What opens a dataset is, until the portal has a page for it, the `labmesh
files` command that lists the dataset's files with their locations, shown
as text to copy under `SEE_FILES`. Once the portal exists,
`where_to_see_files` and `see_files` give the page's URL instead, and
nothing else changes.
"""

import shlex

import dagster as dg

from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.locations import copyable_location

SEE_FILES = "see_files"


def location_value(uri: str) -> dg.PathMetadataValue:
    """A store location (``file://`` or ``s3://``) as a path people copy: the local path, or the S3 URI."""
    return dg.MetadataValue.path(copyable_location(uri))


def where_to_see_files(experiment_id: str, zone: Zone | None = None) -> str:
    """What takes a person to a dataset's files (without a zone, every dataset of the experiment's).

    For now the `labmesh files` command that lists them with their locations;
    the portal's page for them once it exists.
    """
    return shlex.join(["labmesh", "files", experiment_id, *([Zone(zone).value] if zone else [])])


def see_files(experiment_id: str, zone: Zone | None = None) -> dict[str, dg.MetadataValue]:
    """The metadata entry that takes a person to the files: a command to copy (a URL once the portal exists)."""
    return {SEE_FILES: dg.MetadataValue.text(where_to_see_files(experiment_id, zone))}
