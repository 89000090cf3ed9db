"""A location people copy is a path for the local store and the URI itself for S3, never a ``file://`` link.

Pinned here: a ``file://`` URI as `Path.as_uri` writes it comes back as the
path, percent-decoded (spaces, ``%``, unicode, and bytes that are not UTF-8
as the file system holds them), a folder keeping its trailing slash; ``localhost``
is this machine; a file URI of another host and every ``s3://`` URI are kept as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labmesh_dagster.core.locations import copyable_location


@pytest.mark.parametrize(
    "path",
    ["/lab/store/raw/EXP-1/run1/S1_R1.fastq.gz", "/lab/store/raw/EXP-1/run 1/100% über+a#b?.csv", "/"],
)
def test_a_file_uri_comes_back_as_its_path(path: str) -> None:
    assert copyable_location(Path(path).as_uri()) == path


def test_a_folder_keeps_its_trailing_slash_and_localhost_is_this_machine() -> None:
    assert copyable_location(Path("/lab/store/raw/EXP-1").as_uri() + "/") == "/lab/store/raw/EXP-1/"
    assert copyable_location("file://localhost/lab/raw/EXP-1/") == "/lab/raw/EXP-1/"


def test_a_name_that_is_not_utf8_comes_back_as_the_file_system_holds_it() -> None:
    path = os.fsdecode(b"/lab/raw/EXP-1/caf\xe9.txt")

    assert copyable_location(Path(path).as_uri()) == path


@pytest.mark.parametrize(
    "uri", ["s3://lm-raw/EXP-1/", "s3://lm-raw/EXP-1/run 1/S1.fastq", "file://nas01/lab/raw/EXP-1/"]
)
def test_s3_uris_and_other_hosts_files_are_kept_as_they_are(uri: str) -> None:
    assert copyable_location(uri) == uri
