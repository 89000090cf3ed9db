"""The file page links a FASTQ to its mate, its run and its sample sheet, and shows a TIFF's thumbnail.

Pinned here, on an Illumina run folder whose files labmesh's own extraction
describes and links (RunInfo.xml and SampleSheet.csv from the MiSeq test
data, a FASTQ pair named as BCL Convert names them) and a TIFF written by
tifffile: the R1 page links its R2 mate, the run folder (to its own page, and
RunInfo.xml to its file page), and the sample sheet, each to its own page,
page and JSON twin alike; RunInfo.xml's file page lists the run's FASTQ
files; a linked file of an experiment the viewer may not see is left out,
name and all, and one the catalog does not hold is named without a link; the
TIFF page shows its thumbnail, served as PNG and audited as a preview; the
other group's viewer gets 404 for the page, its JSON twin and the thumbnail;
a file name holding markup is escaped.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile

from labmesh_dagster.access.audit import AuditFilter
from labmesh_dagster.core.experiment import ExperimentRecord, Sample
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.steps.manifests import build_manifest
from labmesh_dagster_tests.portal.lab import SCRIPT, PortalLab, build_lab
from labmesh_dagster_tests.portal.test_portal_pages import sign_in

ILLUMINA = Path(__file__).resolve().parents[1] / "data" / "illumina"
RUN = "raw/EXP-4/160805_run"
R1, R2 = f"{RUN}/S-001_S1_L001_R1_001.fastq", f"{RUN}/S-001_S1_L001_R2_001.fastq"
TIFF = f"raw/EXP-4/images/{SCRIPT}.tif"
ODD = "raw/EXP-3/odd_R1.fastq"


def reads(mate: int) -> bytes:
    """Two MiSeq reads of the run that miseq_RunInfo.xml describes (its instrument, run number and flowcell)."""
    return b"".join(
        b"@M04321:123:000000000-AUVNA:1:1101:%d:1333 %d:N:0:1\nACGTACGTAC\n+\nIIIIIHHHGG\n" % (tile, mate)
        for tile in (15589, 15590)
    )


def add_sequencing_run(lab: PortalLab, home: Path) -> None:
    """EXP-4 (Genomics): a MiSeq run folder and a TIFF, described and linked by labmesh's extraction."""
    lab.catalog.upsert_experiment(
        ExperimentRecord(id="EXP-4", title="Liver run", owner="ada", group="Genomics", samples=(Sample("S-001"),)),
        {},
    )
    image = io.BytesIO()
    tifffile.imwrite(image, np.tile(np.arange(64, dtype=np.uint16) * 100, (48, 1)))
    files = {
        f"{RUN}/RunInfo.xml": (ILLUMINA / "miseq_RunInfo.xml").read_bytes(),
        f"{RUN}/SampleSheet.csv": (ILLUMINA / "SampleSheet_v1_miseq.csv").read_bytes(),
        R1: reads(1),
        R2: reads(2),
        TIFF: image.getvalue(),
    }
    for key, data in files.items():
        lab.store.put(ObjectKey.parse(key), data)
    manifest = build_manifest(lab.store, Zone.RAW, "EXP-4", ["S-001"])
    lab.catalog.upsert_dataset(manifest, str(home / "store" / "raw" / "EXP-4"))


def add_odd_links(lab: PortalLab) -> None:
    """EXP-3 (ada's alone): a FASTQ whose links name a file of EXP-2 (bob's) and a file the catalog does not hold."""
    odd = ManifestEntry(
        key=ODD,
        size=1,
        sha256="0" * 64,
        format="fastq",
        created="2024-03-02T10:00:00+00:00",
        metadata={"links": {"mate": "raw/EXP-2/KID-01.csv", "read": 1, "sample_sheet": "raw/EXP-3/gone.csv"}},
    )
    lab.store.put(ObjectKey.parse(odd.key), b"@r\nA\n+\nI\n")
    lab.catalog.upsert_dataset(Manifest.build("EXP-3", "raw", [odd]), "raw/EXP-3")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> PortalLab:
    """One lab for every test here: none of them changes what it holds (only the audit log grows)."""
    home = tmp_path_factory.mktemp("links") / "home"
    lab = build_lab(home)
    add_sequencing_run(lab, home)
    add_odd_links(lab)
    return lab


def test_a_fastq_links_its_mate_its_run_folder_and_its_sample_sheet(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    links = ada.get(f"/api/files/{R1}").json()["links"]
    page = ada.get(f"/files/{R1}").text

    assert [(link["relation"], link["key"], link["href"]) for link in links] == [
        ("mate", R2, f"/files/{R2}"),
        ("run", f"{RUN}/RunInfo.xml", f"/runs/{RUN}/RunInfo.xml"),  # the run folder's page
        ("sample_sheet", f"{RUN}/SampleSheet.csv", f"/files/{RUN}/SampleSheet.csv"),
    ]
    assert links[0]["label"] == "read 2 of the pair" and links[0]["note"] == ""
    assert links[1]["folder"] == f"{RUN}/" and "160805_M04321_0123_000000000-AUVNA" in links[1]["label"]
    assert links[1]["file_href"] == f"/files/{RUN}/RunInfo.xml"
    assert "S-001" in links[2]["label"]
    for href in (
        f"/files/{R2}",
        f"/runs/{RUN}/RunInfo.xml",
        f"/files/{RUN}/RunInfo.xml",
        f"/files/{RUN}/SampleSheet.csv",
    ):
        assert f'href="{href}"' in page
        assert ada.get(href).status_code == 200


def test_a_run_lists_its_fastq_files(lab: PortalLab) -> None:
    links = sign_in(lab, "ada").get(f"/api/files/{RUN}/RunInfo.xml").json()["links"]

    assert [(link["relation"], link["href"], link["of"]) for link in links] == [
        ("fastq_file", f"/files/{R1}", 2),
        ("fastq_file", f"/files/{R2}", 2),
    ]


def test_a_link_to_a_hidden_experiment_is_left_out_and_an_uncataloged_file_is_not_linked(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    links = ada.get("/api/files/raw/EXP-3/odd_R1.fastq").json()["links"]
    page = ada.get("/files/raw/EXP-3/odd_R1.fastq").text

    assert [(link["relation"], link["key"], link["href"]) for link in links] == [
        ("sample_sheet", "raw/EXP-3/gone.csv", None)
    ]
    assert "KID-01" not in page and "gone.csv" in page and "not in the catalog" in page


def test_a_tiff_shows_a_png_thumbnail_audited_as_a_preview(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    shown = ada.get(f"/api/files/{TIFF}").json()
    page = ada.get(f"/files/{TIFF}").text
    thumbnail = ada.get(shown["thumbnail"])

    assert shown["thumbnail"] == "/thumbnail/raw/EXP-4/images/%3Cscript%3Ewindow.pwned%3D1%3C/script%3E.tif"
    assert f'src="{shown["thumbnail"]}"' in page
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/png"
    assert thumbnail.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert SCRIPT not in page and "&lt;script&gt;" in page
    assert ada.get(f"/thumbnail/{R1}").status_code == 404  # only TIFF images have one
    [latest, *_] = lab.access.audit.read(AuditFilter(user="ada"))
    assert (latest.event.kind.value, latest.event.file_key, latest.event.detail) == ("preview", TIFF, "thumbnail")


def test_the_other_groups_viewer_gets_404_for_every_new_route(lab: PortalLab) -> None:
    bob = sign_in(lab, "bob")

    for path in (f"/files/{R1}", f"/api/files/{R1}", f"/thumbnail/{TIFF}", f"/api/files/{TIFF}"):
        answer = bob.get(path)
        assert answer.status_code == 404, path
        assert "S-001" not in answer.text and "AUVNA" not in answer.text
