"""The portal's one search box over file contents, and the fields each catalog hit matched, over HTTP.

Pinned here, on the portal's lab with its files' text in the local content
index (the word "fibrosis" is in a file of every experiment): a user gets
content hits, each linking its file and its experiment, only from the
experiments they may see, and no count or excerpt of any other (the other
group's, or an experiment with no group but the owner's); an admin gets them
all; the page and the JSON API show the same hits; a question in other words
than the file's finds it by meaning, for those who may see it only, while a
word no file holds finds nothing however near the nearest passage; each hit
shows its passages with where they are (rows of a table, the whole file) and
links each to its place on the file's page, a file listed once with its best
passages; a ``<script>`` in a file's
text or name comes back escaped, the query's words marked; the catalog's
facet filters narrow the content hits where the index has them, and with
one it lacks (owner) the section says file contents were not searched; a
grant lets the grantee find the files at once; each catalog hit names the
fields that matched the words; a portal without a content index still searches.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.core.passages import LocationKind, Passage, PassageHit, PassageLocation, SearchMode
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.content_search import (
    PASSAGES_SHOWN,
    excerpt,
    file_rows,
    highlighted,
    relevant,
    words_pattern,
)
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster.steps.content import index_dataset
from labmesh_dagster.steps.content_access import change_grant
from labmesh_dagster_tests.portal.lab import PASSWORD, SCRIPT, PortalLab, build_lab

SUMMARY = f"raw/EXP-1/run1/{SCRIPT}.txt"  # Genomics; its name tries script injection
PROTEINS = "raw/EXP-2/KID-01.csv"  # Proteomics
PILOT = "raw/EXP-3/pilot.txt"  # no group: ada's alone


class ContentLab:
    def __init__(self, lab: PortalLab, home: Path) -> None:
        self.lab = lab
        self.index = SqliteContentIndex(home / "catalog.sqlite")
        context = PortalContext(
            catalog=lambda: lab.catalog,
            store=lambda: lab.store,
            access=lab.access,
            signer=SessionSigner("test-secret"),
            secure_cookies=False,
            content_index=lambda: self.index,
        )
        self.app = FastAPI()
        mount_portal(self.app, context)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> ContentLab:
    """One lab for the module (building it hashes passwords); the test that grants takes its grant back."""
    home = tmp_path_factory.mktemp("content") / "home"
    portal = build_lab(home)
    content = ContentLab(portal, home)
    extra = {
        SUMMARY: f" {SCRIPT} fibrosis again",
        PROTEINS: " fibrosis marker ALB",
        PILOT: "Biopsies were snap-frozen in liquid nitrogen and kept at -80 C until needed.\n",
    }
    for experiment_id in ("EXP-1", "EXP-2", "EXP-3"):
        record = portal.catalog.get_experiment(experiment_id)
        dataset = portal.catalog.get_dataset(experiment_id, Zone.RAW)
        assert record is not None and dataset is not None
        entries = [
            replace(entry, text=portal.store.read_bytes(ObjectKey.parse(entry.key)).decode() + extra.get(entry.key, ""))
            for entry in dataset.files
            if not entry.format.startswith("fastq")
        ]
        manifest = Manifest.build(experiment_id, Zone.RAW, entries)
        # The catalog's entries get the same text, so that a file's page cuts the passages the index holds.
        texts = {entry.key: entry for entry in entries}
        files = [texts.get(entry.key, entry) for entry in dataset.files]
        portal.catalog.upsert_dataset(Manifest.build(experiment_id, Zone.RAW, files), dataset.location)
        principals = portal.catalog.principals(experiment_id)
        index_dataset(content.index, manifest, None, record, lambda key: f"file:///{key}", principals)
    return content


@pytest.fixture(scope="module")
def users(lab: ContentLab) -> dict[str, TestClient]:
    return {name: sign_in(lab.app, name) for name in ("ada", "bob", "root")}


def sign_in(app: FastAPI, name: str) -> TestClient:
    client = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post(
        "/login", data={"csrf": token.group(1), "name": name, "password": PASSWORD, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return client


def contents(client: TestClient, **params: str) -> dict[str, Any]:
    answer = client.get("/api/search", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["contents"])


def keys(client: TestClient, **params: str) -> set[str]:
    return {hit["key"] for hit in contents(client, **params)["hits"]}


def section(page: str) -> str:
    """The "In file contents" section of a search page."""
    found = re.search(r'<section class="contents".*?</section>', page, re.S)
    assert found, page
    return found.group(0)


def test_each_user_gets_content_hits_only_from_experiments_they_may_see(users: dict[str, TestClient]) -> None:
    ada, bob, root = users["ada"], users["bob"], users["root"]

    assert keys(ada, q="fibrosis") == {SUMMARY, PILOT}
    assert keys(bob, q="fibrosis") == {PROTEINS}
    assert keys(root, q="fibrosis") == {SUMMARY, PROTEINS, PILOT}

    for client, hidden in ((ada, ("KID-01.csv", "ALB", "marker")), (bob, ("pilot", "summary", "EXP-1", "EXP-3"))):
        html = section(client.get("/", params={"q": "fibrosis"}).text)
        for text in hidden:
            assert text not in html
    bob_page = section(bob.get("/", params={"q": "fibrosis"}).text)
    assert "1 file</p>" in bob_page
    assert keys(bob, q="pilot notes") == set()
    assert "0 files" in section(bob.get("/", params={"q": "pilot"}).text)


def test_a_content_hit_links_its_file_and_experiment_on_the_page_and_in_the_api(users: dict[str, TestClient]) -> None:
    ada = users["ada"]

    (hit,) = contents(ada, q="pilot")["hits"]
    page = section(ada.get("/", params={"q": "pilot"}).text)

    assert hit["experiment_id"] == "EXP-3" and hit["zone"] == "raw" and hit["href"] == "/files/raw/EXP-3/pilot.txt"
    assert 'href="/files/raw/EXP-3/pilot.txt"' in page and 'href="/experiments/EXP-3"' in page
    assert "<mark>pilot</mark>" in hit["excerpt_html"] and "<mark>pilot</mark>" in page
    assert ada.get(hit["href"]).status_code == 200


def test_a_script_in_a_files_text_or_name_comes_back_escaped(users: dict[str, TestClient]) -> None:
    ada = users["ada"]

    page = ada.get("/", params={"q": "again"}).text
    (hit,) = contents(ada, q="again")["hits"]

    assert SCRIPT not in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in section(page)
    assert hit["key"] == SUMMARY  # JSON carries the text as it is, for its reader to escape
    assert "<script>" not in hit["excerpt_html"] and "&lt;script&gt;" in hit["excerpt_html"]
    assert "<mark>again</mark>" in hit["excerpt_html"]
    assert ada.get(hit["href"]).status_code == 200  # the name is percent-encoded in the link


def test_facet_filters_narrow_the_content_hits_where_the_index_has_them(users: dict[str, TestClient]) -> None:
    ada = users["ada"]

    assert keys(ada, q="fibrosis", experiment="EXP-3") == {PILOT}
    assert keys(ada, q="fibrosis", group="Genomics") == {SUMMARY}
    assert keys(ada, q="fibrosis", format="txt", since="2024-03-01", until="2024-03-02") == {SUMMARY, PILOT}
    assert keys(ada, q="fibrosis", until="2024-03-01") == set()
    assert keys(ada, q="fibrosis", experiment="EXP-2") == set()  # a filter never opens another group's files
    by_owner = contents(ada, q="fibrosis", owner="ada")
    assert not by_owner["searched"] and "owner" in by_owner["note"]
    assert "not searched" in section(ada.get("/", params={"q": "fibrosis", "owner": "ada"}).text)
    assert not contents(ada, experiment="EXP-1")["searched"]  # no words: the catalog's datasets alone


def test_a_grant_lets_the_grantee_find_the_files_at_once(lab: ContentLab, users: dict[str, TestClient]) -> None:
    bob = users["bob"]
    assert keys(bob, q="fibrosis") == {PROTEINS}

    change_grant(lab.lab.catalog, lab.index, lab.lab.store, "EXP-3", "user:bob", grant=True)
    try:
        assert keys(bob, q="fibrosis") == {PROTEINS, PILOT}
    finally:
        change_grant(lab.lab.catalog, lab.index, lab.lab.store, "EXP-3", "user:bob", grant=False)

    assert keys(bob, q="fibrosis") == {PROTEINS}


@pytest.mark.parametrize(
    ("query", "field"),
    [("LIV-01", "sample"), ("Liver", "title"), ("MiSeq", "platform"), ("genomics", "group"), ("fibrosis", None)],
)
def test_each_catalog_hit_names_the_fields_its_words_matched(
    users: dict[str, TestClient], query: str, field: str | None
) -> None:
    ada = users["ada"]

    results = ada.get("/api/search", params={"q": query}).json()["results"]
    page = ada.get("/", params={"q": query}).text

    assert results
    for result in results:
        if field is None:  # the description holds it: a field the hit does not carry
            assert result["matched"] == ["other ELN fields"]
        else:
            assert field in result["matched"]
    assert "Matched in: " in page


def test_a_portal_without_a_content_index_still_searches_the_catalog(lab: ContentLab) -> None:
    ada = sign_in(lab.lab.app, "ada")

    answer = ada.get("/api/search", params={"q": "fibrosis"}).json()

    assert answer["contents"] == {"searched": False, "hits": [], "note": None}
    assert answer["results"]
    assert "In file contents" not in ada.get("/", params={"q": "fibrosis"}).text


def test_an_excerpt_is_escaped_whole_and_only_the_query_words_are_marked() -> None:
    shown = highlighted('a <mark>x</mark> & "Fibrosis" fibrotic tissues', ["fibrosis", "tissue"])

    assert (
        str(shown) == "a &lt;mark&gt;x&lt;/mark&gt; &amp; &#34;<mark>Fibrosis</mark>&#34; fibrotic <mark>tissues</mark>"
    )


def test_a_question_in_other_words_finds_the_file_by_meaning_for_those_who_may_see_it(
    users: dict[str, TestClient],
) -> None:
    ada, bob, root = users["ada"], users["bob"], users["root"]
    question = "how were tissue specimens preserved"  # the pilot's notes say biopsies were snap-frozen

    (hit,) = contents(ada, q=question)["hits"]
    (passage,) = hit["passages"]

    assert hit["key"] == PILOT and passage["location"] == "whole file"
    assert passage["href"] == f"/files/{PILOT}?passage=0#passage-0"
    assert "snap-frozen" in passage["excerpt"] and "<mark>" not in passage["excerpt_html"]  # none of its words
    assert f'href="/files/{PILOT}?passage=0#passage-0">whole file</a>' in section(
        ada.get("/", params={"q": question}).text
    )
    opened = ada.get(passage["href"])
    assert opened.status_code == 200 and 'id="passage-0"' in opened.text and "snap-frozen" in opened.text
    assert keys(root, q=question) == {PILOT}
    assert keys(bob, q=question) == set()  # the nearest passage he may see is not near enough


def test_a_hit_says_where_its_passage_is_and_links_its_place(users: dict[str, TestClient]) -> None:
    bob = users["bob"]

    (hit,) = contents(bob, q="marker")["hits"]
    (passage,) = hit["passages"]
    page = section(bob.get("/", params={"q": "marker"}).text)

    assert hit["key"] == PROTEINS and passage["location"].startswith("rows ")
    assert "<mark>marker</mark>" in passage["excerpt_html"] and hit["excerpt_html"] == passage["excerpt_html"]
    assert f'<a href="{passage["href"]}">{passage["location"]}</a>' in page
    assert "<mark>marker</mark>" in page


def test_a_file_is_listed_once_at_its_best_passages_rank_with_its_best_passages() -> None:
    def hit(key: str, ordinal: int, text: str) -> PassageHit:
        place = PassageLocation(LocationKind.LINES, 10 * ordinal + 1, 10 * ordinal + 10)
        return PassageHit(
            Passage(key, ordinal, text, place), key.rsplit("/", 1)[-1], f"file:///{key}", 1.0 / (ordinal + 1)
        )

    ranked = [hit(SUMMARY, 4, "fibrosis stage 3"), hit(PILOT, 0, "fibrosis noted"), hit(SUMMARY, 1, "fibrosis again")]
    ranked += [hit(SUMMARY, ordinal, "more fibrosis") for ordinal in range(5, 10)]

    first, second = file_rows(ranked, ["fibrosis"])

    assert (first["key"], second["key"]) == (SUMMARY, PILOT)
    assert [passage["ordinal"] for passage in first["passages"]] == [4, 1, 5][:PASSAGES_SHOWN]
    assert first["passages"][0]["location"] == "lines 41-50"
    assert first["passages"][0]["href"].endswith("?passage=4#passage-4")
    assert first["excerpt_html"] == first["passages"][0]["excerpt_html"]
    assert [row["key"] for row in file_rows(ranked, ["fibrosis"], limit=1)] == [SUMMARY]


def test_a_long_passages_excerpt_starts_near_the_first_word_of_the_question() -> None:
    text = " ".join(f"line{n}" for n in range(200)) + " the <b>fibrosis</b> score\n\nwas 3 " + "tail " * 100

    shown = excerpt(text, ["fibrosis"], width=120)

    assert shown.startswith("…") and shown.endswith("…") and len(shown) <= 122
    assert "<b>fibrosis</b> score was 3" in shown  # whitespace runs made single spaces
    assert "&lt;b&gt;<mark>fibrosis</mark>&lt;/b&gt;" in str(highlighted(shown, ["fibrosis"]))
    assert excerpt("short and whole", ["fibrosis"]) == "short and whole"


@pytest.mark.parametrize(
    ("text", "held"),
    [("Fibrotic TISSUES", True), ("a tissue", True), ("ECM", False), ("an ox and a cow", True), ("oxygen", False)],
)
def test_the_words_pattern_matches_as_the_highlighting_does(text: str, held: bool) -> None:
    words = ["tissue", "ox"]
    pattern = words_pattern(words)

    assert (pattern.search(text) is not None) is held
    assert ("<mark>" in str(highlighted(text, words))) is held


class CountingIndex:
    """The lab's content index, counting the retrievals the portal asks of it."""

    def __init__(self, index: SqliteContentIndex) -> None:
        self.index = index
        self.modes: list[SearchMode] = []

    def retrieve(self, text: str, **query: Any) -> list[PassageHit]:
        self.modes.append(query.get("mode"))
        return self.index.retrieve(text, **query)


def test_a_hybrid_retrieval_that_measured_meaning_is_asked_once(lab: ContentLab) -> None:
    counting = CountingIndex(lab.index)
    question = "how were tissue specimens preserved"

    retrieved = counting.retrieve(question, mode=SearchMode.HYBRID)
    hits = relevant(counting, question, retrieved, ["tissue"])  # type: ignore[arg-type]

    assert counting.modes == [SearchMode.HYBRID]  # no second, meaning-only retrieval
    assert hits and all(hit.meaning is not None for hit in hits if "tissue" not in hit.passage.text.lower())
