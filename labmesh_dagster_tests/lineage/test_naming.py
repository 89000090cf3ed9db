"""Datasets and jobs are named by the OpenLineage naming spec, so labmesh's lineage joins other producers'.

Pinned here: S3 is namespace ``s3://{bucket}`` with the key or prefix as the
name, ``s3a``/``s3n`` included, read literally (spaces, unicode, ``%``, ``#``
and ``?`` are part of a key); the local file system is namespace ``file`` with
the absolute, percent-decoded path as the name, and another host's files get
``file://{host}``; folders lose their trailing slash and roots are ``/``, as
in openlineage-java; anything else is refused. Jobs are ``labmesh``/asset.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from labmesh_dagster.lineage.naming import DatasetName, JobName, dataset_location, dataset_name, job_name


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("s3://lm-raw/EXP-1/", "s3://lm-raw", "EXP-1"),
        ("s3://lm-raw/EXP-1", "s3://lm-raw", "EXP-1"),
        ("s3://lm-raw/EXP-1/run1/S1_R1.fastq.gz", "s3://lm-raw", "EXP-1/run1/S1_R1.fastq.gz"),
        ("s3://lm-raw", "s3://lm-raw", "/"),
        ("s3://lm-raw/", "s3://lm-raw", "/"),
        ("s3://acme.lab-raw.eu-west-1/EXP-1/", "s3://acme.lab-raw.eu-west-1", "EXP-1"),
        ("s3a://lm-raw/EXP-1/", "s3://lm-raw", "EXP-1"),
        ("s3n://lm-raw/EXP-1/", "s3://lm-raw", "EXP-1"),
        ("s3://lm-raw/EXP-1/run 1/Probe ß 100%.fastq", "s3://lm-raw", "EXP-1/run 1/Probe ß 100%.fastq"),
        ("s3://lm-raw/EXP-1/a#1?v=2.csv", "s3://lm-raw", "EXP-1/a#1?v=2.csv"),
        ("s3://lm-raw/EXP-1/%20literal", "s3://lm-raw", "EXP-1/%20literal"),
        ("s3://lm-raw/EXP-1/日本語/試料.fastq", "s3://lm-raw", "EXP-1/日本語/試料.fastq"),
    ],
)
def test_s3_uris_name_the_bucket_and_the_key(uri: str, namespace: str, name: str) -> None:
    assert dataset_name(uri) == DatasetName(namespace, name)


@pytest.mark.parametrize(
    "path",
    ["/srv/labmesh/raw/EXP-1", "/srv/lab data/zürich/raw/EXP-1", "/tmp/a#b?c%d/EXP-1", "/data/日本語/EXP-1"],
)
def test_file_uris_name_the_absolute_path_whatever_it_holds(path: str) -> None:
    uri = PurePosixPath(path).as_uri()

    assert dataset_name(uri) == DatasetName("file", path)
    assert dataset_name(uri + "/") == DatasetName("file", path)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///srv/raw/EXP-1/", ("file", "/srv/raw/EXP-1")),
        ("file:/srv/raw/EXP-1", ("file", "/srv/raw/EXP-1")),
        ("file://localhost/srv/raw/EXP-1", ("file", "/srv/raw/EXP-1")),
        ("FILE:///srv/raw/EXP-1", ("file", "/srv/raw/EXP-1")),
        ("file://nas01/export/raw/EXP-1/", ("file://nas01", "/export/raw/EXP-1")),
        ("file:///", ("file", "/")),
    ],
)
def test_file_uri_spellings(uri: str, expected: tuple[str, str]) -> None:
    namespace, name = dataset_name(uri)

    assert (namespace, name) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3:///EXP-1/", "names no bucket"),
        ("file:relative/EXP-1", "absolute path"),
        ("gs://bucket/EXP-1/", "s3:// or file://"),
        ("/srv/raw/EXP-1", "s3:// or file://"),
        ("", "s3:// or file://"),
    ],
)
def test_uris_lineage_cannot_name_are_refused(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataset_name(uri)


@pytest.mark.parametrize(
    "uri",
    ["s3://lm-raw/EXP-1/", "s3://lm-raw/", "file:///srv/lab%20data/raw/EXP-1/", "file://nas01/export/raw/EXP-1"],
)
def test_a_location_names_the_same_dataset_again(uri: str) -> None:
    name = dataset_name(uri)
    location = dataset_location(*name)
    again = dataset_name(location if "://" in location else PurePosixPath(location).as_uri())

    assert again == name


def test_locations_read_like_what_people_type() -> None:
    assert dataset_location("s3://lm-raw", "EXP-1") == "s3://lm-raw/EXP-1"
    assert dataset_location("s3://lm-raw", "/") == "s3://lm-raw/"
    assert dataset_location("file", "/srv/lab data/raw/EXP-1") == "/srv/lab data/raw/EXP-1"
    assert dataset_location("file://nas01", "/export/EXP-1") == "file://nas01/export/EXP-1"


def test_jobs_are_assets_in_the_labmesh_namespace() -> None:
    assert job_name("raw_dataset") == JobName("labmesh", "raw_dataset")
    assert job_name("raw_dataset", namespace="labmesh-staging") == ("labmesh-staging", "raw_dataset")
    with pytest.raises(ValueError, match="asset name"):
        job_name("")
