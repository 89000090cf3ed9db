"""The portal as a person and a script use it, over HTTP: sign in, search, open an experiment, a file, download.

Pinned here: nothing is shown before sign-in; the login form and sign-out
need their CSRF token; a wrong password is refused with the same message as
an unknown name; a user sees only their group's experiments (and those they
own) in search, experiment, file, preview, download and the JSON API, and an
experiment they may not see answers exactly as one that does not exist; an
admin sees all; an API token works without a session; every search, page,
preview and download is in the audit log; nothing from an ELN title or a file
name reaches the page unescaped; the session cookie is HttpOnly and SameSite.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labmesh_dagster.access.audit import AuditFilter
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.landing import QUARANTINE_PREFIX, note_key
from labmesh_dagster_tests.portal.lab import FASTQ, PASSWORD, SCRIPT, PortalLab, add_qc, build_lab


@pytest.fixture
def lab(tmp_path: Path) -> PortalLab:
    return build_lab(tmp_path / "home")


def sign_in(lab: PortalLab, name: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(lab.app)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    answer = client.post(
        "/login", data={"csrf": token.group(1), "name": name, "password": password, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return client


def experiments_in(page: str) -> set[str]:
    return set(re.findall(r'href="/experiments/(EXP-\d+)"', page))


def test_nothing_is_shown_before_sign_in(lab: PortalLab) -> None:
    client = TestClient(lab.app)

    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    assert client.get("/api/search?q=fibrosis").status_code == 401
    assert client.get("/experiments/EXP-1", follow_redirects=False).status_code == 303


def test_sign_in_needs_the_forms_token_and_the_right_password(lab: PortalLab) -> None:
    client = TestClient(lab.app)
    client.get("/login")

    forged = client.post("/login", data={"csrf": "guess", "name": "ada", "password": PASSWORD})
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/login", data={"csrf": token, "name": "ada", "password": "not it at all"})
    unknown = client.post("/login", data={"csrf": token, "name": "nobody", "password": "not it at all"})

    assert forged.status_code == 403
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong user name or password" in wrong.text and "wrong user name or password" in unknown.text


def test_the_session_cookie_cannot_be_read_by_scripts_or_sent_by_other_sites(lab: PortalLab) -> None:
    client = TestClient(lab.app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf": token, "name": "ada", "password": PASSWORD}, follow_redirects=False)

    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_a_user_searches_only_what_their_groups_may_see(lab: PortalLab) -> None:
    ada, bob, root = sign_in(lab, "ada"), sign_in(lab, "bob"), sign_in(lab, "root")

    assert experiments_in(ada.get("/?q=fibrosis").text) == {"EXP-1", "EXP-3"}
    assert experiments_in(bob.get("/?q=fibrosis").text) == {"EXP-2"}
    assert experiments_in(root.get("/?q=fibrosis").text) == {"EXP-1", "EXP-2", "EXP-3"}
    api = bob.get("/api/search", params={"q": "fibrosis"}).json()["results"]
    assert {hit["experiment_id"] for hit in api} == {"EXP-2"}


def test_a_search_shows_a_page_of_datasets_and_offers_more(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    page = ada.get("/?q=fibrosis&limit=1").text
    api = ada.get("/api/search", params={"q": "fibrosis", "limit": "1"}).json()

    assert "The first 1 datasets" in page and 'href="/?q=fibrosis&amp;limit=5"' in page
    assert len(api["results"]) == 1
    assert sum(count for _, count in api["facets"]["experiment"]) == 2  # the counts tell of every hit
    assert "show more" not in ada.get("/?q=fibrosis").text
    for bad in ("0", "201", "ten", "-1"):
        answer = ada.get("/api/search", params={"q": "fibrosis", "limit": bad})
        assert answer.status_code == 400 and "limit must be a whole number" in answer.text


def test_facet_counts_count_only_what_the_user_may_see(lab: PortalLab) -> None:
    bob, root = sign_in(lab, "bob"), sign_in(lab, "root")

    facets = bob.get("/api/search", params={"q": "fibrosis"}).json()["facets"]
    everything = root.get("/api/search", params={"q": "fibrosis"}).json()["facets"]

    assert [value for value, _ in facets["experiment"]] == ["EXP-2"]
    assert {value for value, _ in facets["group"]} == {"Proteomics"}
    assert {value for value, _ in everything["experiment"]} == {"EXP-1", "EXP-2", "EXP-3"}
    page = bob.get("/?q=fibrosis").text
    assert "Genomics" not in page and "ada" not in page


def test_a_facet_link_is_the_same_search_with_the_filter_added(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    page = ada.get("/?q=fibrosis&group=Genomics").text

    assert experiments_in(page) == {"EXP-1"}
    assert 'href="/?q=fibrosis"' in page  # the filter in force, with the link that removes it


def test_another_groups_experiment_answers_as_one_that_does_not_exist(lab: PortalLab) -> None:
    bob = sign_in(lab, "bob")

    hidden = bob.get("/experiments/EXP-1", headers={"accept": "text/html"})
    missing = bob.get("/experiments/EXP-99", headers={"accept": "text/html"})
    private = bob.get("/api/experiments/EXP-3")

    assert hidden.status_code == missing.status_code == private.status_code == 404
    assert hidden.text == missing.text and "Liver" not in hidden.text
    for path in ("/files/raw/EXP-1/run1/LIV-01_R1.fastq.gz", "/download/raw/EXP-1/run1/LIV-01_R1.fastq.gz"):
        assert bob.get(path).status_code == 404, path


def test_an_experiment_page_lists_its_datasets_files(lab: PortalLab) -> None:
    page = sign_in(lab, "ada").get("/experiments/EXP-1").text

    assert "LIV-01_R1.fastq.gz" in page and "verified against landing" in page and "MiSeq" in page
    # Deep links to the experiment's partitions in Dagster.
    assert 'href="http://127.0.0.1:3000/assets/raw_dataset?partition=EXP-1"' in page


def test_a_fastq_file_page_shows_its_first_reads_and_downloads_whole(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    page = ada.get("/files/raw/EXP-1/run1/LIV-01_R1.fastq.gz").text
    download = ada.get("/download/raw/EXP-1/run1/LIV-01_R1.fastq.gz")

    assert "@read0/1" in page and "ACGTACGTAC" in page and "IIIIIHHHGG" in page
    assert download.status_code == 200 and gzip.decompress(download.content) == FASTQ
    assert "attachment" in download.headers["content-disposition"]


def test_an_api_token_reads_the_api_without_a_session(lab: PortalLab) -> None:
    token = lab.access.tokens.create("bob", label="notebook").token
    client = TestClient(lab.app)

    answer = client.get("/api/experiments/EXP-2", headers={"authorization": f"Bearer {token}"})
    refused = client.get("/api/experiments/EXP-2", headers={"authorization": "Bearer not-a-token"})

    assert answer.status_code == 200 and answer.json()["experiment"]["id"] == "EXP-2"
    assert refused.status_code == 401


def test_every_search_page_view_preview_and_download_is_audited(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")
    ada.get("/?q=fibrosis")
    ada.get("/experiments/EXP-1")
    ada.get("/files/raw/EXP-1/run1/LIV-01_R1.fastq.gz")
    ada.get("/download/raw/EXP-1/run1/LIV-01_R1.fastq.gz")

    entries = lab.access.audit.read(AuditFilter(user="ada"))

    kinds = [entry.event.kind.value for entry in reversed(entries)]
    assert kinds == ["login", "search", "view", "preview", "download"]
    assert entries[0].event.file_key == "raw/EXP-1/run1/LIV-01_R1.fastq.gz"


def test_titles_and_file_names_are_never_markup(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")

    for page in (ada.get("/?q=fibrosis").text, ada.get("/experiments/EXP-1").text):
        assert SCRIPT not in page and "&lt;script&gt;" in page


def test_the_status_page_counts_and_quarantines_only_what_the_user_may_see(lab: PortalLab) -> None:
    quarantined = ObjectKey(Zone.LANDING, f"{QUARANTINE_PREFIX}/EXP-1/bad.fastq.gz")
    lab.store.put(quarantined, b"not gzip")
    lab.store.put(
        note_key(quarantined),
        json.dumps({"original_key": "landing/EXP-1/bad.fastq.gz", "reason": "truncated gzip"}).encode(),
    )
    ada, bob = sign_in(lab, "ada"), sign_in(lab, "bob")

    mine, theirs = ada.get("/api/status").json(), bob.get("/api/status").json()

    assert [row["experiment_id"] for row in mine["experiments"]] == ["EXP-1", "EXP-3"]
    assert mine["totals"] == {"raw": 3, "processed": 0, "final": 0}
    assert [item["reason"] for item in mine["quarantined"]] == ["truncated gzip"]
    assert [row["experiment_id"] for row in theirs["experiments"]] == ["EXP-2"] and theirs["quarantined"] == []
    assert "truncated gzip" in ada.get("/status").text and "bad.fastq.gz" not in bob.get("/status").text
    assert [item["reason"] for item in ada.get("/api/experiments/EXP-1").json()["quarantined"]] == ["truncated gzip"]


def test_the_qc_page_plots_what_the_qc_pipeline_measured(lab: PortalLab) -> None:
    add_qc(lab)
    ada, bob = sign_in(lab, "ada"), sign_in(lab, "bob")

    qc = ada.get("/api/experiments/EXP-1/qc").json()["files"]
    page = ada.get("/experiments/EXP-1/qc").text

    assert [(row["name"], row["reads"], row["status"]) for row in qc] == [("LIV-01_R1.fastq.gz", 20, "ok")]
    assert len(qc[0]["per_position_mean_quality"]) == 10
    assert page.count("<svg") == 3 and "Mean quality by position" in page and "<polyline" in page
    assert bob.get("/experiments/EXP-1/qc").status_code == 404


def test_a_fastq_page_plots_the_quality_qc_measured_on_that_file(lab: PortalLab) -> None:
    fastq = "raw/EXP-1/run1/LIV-01_R1.fastq.gz"
    ada = sign_in(lab, "ada")
    before = ada.get(f"/files/{fastq}").text

    add_qc(lab)
    page, shown = ada.get(f"/files/{fastq}").text, ada.get(f"/api/files/{fastq}").json()

    assert "No QC of this file yet" in before and "<svg" not in before
    assert shown["qc"]["input"] == fastq and shown["qc"]["reads"] == 20
    assert len(shown["qc"]["per_position_mean_quality"]) == 10
    assert page.count("<svg") == 1 and "Mean quality by position" in page and "<polyline" in page
    assert 'href="/experiments/EXP-1/qc"' in page
    assert sign_in(lab, "bob").get(f"/api/files/{fastq}").status_code == 404


def test_sign_out_needs_the_pages_token(lab: PortalLab) -> None:
    ada = sign_in(lab, "ada")
    token = re.search(r'name="csrf" value="([^"]+)"', ada.get("/").text).group(1)  # type: ignore[union-attr]

    assert ada.post("/logout", data={"csrf": "guess"}).status_code == 403
    assert ada.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
