"""Every content index keeps the port's promises: SQLite FTS5, PostgreSQL, Kendra and a Bedrock knowledge base (over
the model-bound fakes) alike.

Contract: documents put are found by their words, with title, URI, excerpt and
attributes; putting an id again replaces its document (never a second one);
removed ids are deleted and reported; each facet filter (experiment, sample,
platform, group, zone, format, since, until) selects exactly its documents,
alone and all together, a format taking its compressed forms too (``fastq``
finds ``fastq.gz``, as people mean FASTQ files); no viewer (or an admin) sees everything, any other
viewer only the documents whose access list holds one of their principals (their name, their groups,
ignoring case), even under a limit; a document with an empty list (an experiment with no group and no
owner) is seen by admins alone; `update_access` gives an experiment's documents a new list (a grant, a
revoke), idempotently, and leaves other experiments' alone; a document breaking
the port's rules is reported failed (its earlier version kept) while the
others are indexed; two documents with one id in a call are refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.connectors.search.base import CODECS, ContentDocument, ContentFilter, ContentIndex
from labmesh_dagster.connectors.search.bedrock import BedrockKnowledgeBaseIndex
from labmesh_dagster.connectors.search.kendra import KendraContentIndex
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.connectors.search.postgres import PostgresContentIndex
from labmesh_dagster.core.access import Viewer, experiment_principals
from labmesh_dagster.extract.compression import COMPRESSION_SUFFIXES
from labmesh_dagster_tests.fake_bedrock_agent import bedrock_clients
from labmesh_dagster_tests.fake_kendra import FakeKendraClient
from labmesh_dagster_tests.postgres_databases import fresh_database


class Clock:
    """Time that passes only when slept, so pacing and polling cost nothing."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["sqlite", "postgres", "kendra", "bedrock"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContentIndex]:
    if request.param == "sqlite":
        yield SqliteContentIndex(tmp_path / "catalog.sqlite")
        return
    if request.param == "postgres":
        with fresh_database("labmesh_content_test") as url:
            yield PostgresContentIndex(url)
        return
    clock = Clock()
    if request.param == "bedrock":
        agent, runtime = bedrock_clients()
        yield BedrockKnowledgeBaseIndex(
            agent,
            runtime,
            knowledge_base_id=agent.kb.knowledge_base_id,
            data_source_id=agent.kb.data_source_id,
            clock=clock,
            sleep=clock.sleep,
        )
        return
    client = FakeKendraClient(clock=clock)
    yield KendraContentIndex(client, index_id=client.index_id, clock=clock, sleep=clock.sleep)


def doc(
    document_id: str,
    text: str,
    *,
    experiment: str = "EXP-1",
    samples: Sequence[str] = ("S1",),
    platform: str = "NovaSeq",
    group: str | None = None,
    owner: str | None = None,
    zone: str = "raw",
    fmt: str = "fastq.gz",
    created: datetime = datetime(2025, 1, 2, 10, 0, tzinfo=UTC),
    **attributes: Any,
) -> ContentDocument:
    values: dict[str, Any] = {
        "experiment_id": experiment,
        "sample_ids": list(samples),
        "platform": platform,
        "zone": zone,
        "format": fmt,
        "created": created,
        **attributes,
    }
    if group:
        values["group"] = group
    return ContentDocument(
        id=document_id,
        title=document_id.rsplit("/", 1)[-1],
        text=text,
        uri=f"https://lab.example/{document_id}",
        attributes=values,
        principals=tuple(experiment_principals(group, owner)),
    )


LIVER = doc(
    "raw/EXP-1/S1_R1.fastq.gz",
    "Liver tissue reads from sample S1 and S2; mean quality 35, GC 41 percent.",
    samples=("S1", "S2"),
    group="liver-lab",
)
LIVER_TABLE = doc(
    "processed/EXP-1/qc.csv",
    "Quality table for liver tissue sample S3.",
    samples=("S3",),
    group="liver-lab",
    zone="processed",
    fmt="csv",
    created=datetime(2025, 1, 5, 8, 0, tzinfo=UTC),
)
KIDNEY = doc(
    "raw/EXP-2/K10.mzml",
    "Kidney tissue proteomics, sample S10, Orbitrap run.",
    experiment="EXP-2",
    samples=("S10",),
    platform="Orbitrap",
    group="kidney-lab",
    fmt="mzml",
    created=datetime(2025, 2, 1, 12, 0, tzinfo=UTC),
)
# EXP-3 has no group: its owner and the admins see it, nobody else.
PROTOCOL = doc(
    "final/EXP-3/protocol.md", "How tissue samples are prepared.", experiment="EXP-3", samples=(), fmt="md", owner="Ada"
)
ALL = [LIVER, LIVER_TABLE, KIDNEY, PROTOCOL]
EVERY_ID = {document.id for document in ALL}


def ids(index: ContentIndex, text: str = "", **options: Any) -> set[str]:
    return {hit.id for hit in index.search(text, limit=100, **options)}


def listed(index: ContentIndex, text: str = "") -> list[str]:
    return sorted(hit.id for hit in index.search(text, limit=100))


def test_documents_are_found_by_their_words_with_title_uri_excerpt_and_attributes(index: ContentIndex) -> None:
    report = index.replace(ALL)

    assert sorted(report.indexed) == sorted(document.id for document in ALL) and not report.failed
    hits = index.search("orbitrap")
    assert [hit.id for hit in hits] == [KIDNEY.id]
    hit = hits[0]
    assert hit.title == "K10.mzml"
    assert hit.uri == "https://lab.example/raw/EXP-2/K10.mzml"
    assert "Orbitrap" in hit.excerpt
    assert hit.attributes["experiment_id"] == "EXP-2"
    assert hit.attributes["sample_ids"] == ["S10"]
    assert hit.attributes["created"] == datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
    assert ids(index, "liver") == {LIVER.id, LIVER_TABLE.id}
    assert ids(index, "zebrafish") == set()


def test_a_document_matching_more_words_ranks_first(index: ContentIndex) -> None:
    index.replace(ALL)

    assert [hit.id for hit in index.search("kidney proteomics tissue")][0] == KIDNEY.id


def test_putting_an_id_again_replaces_its_document_and_never_adds_a_second(index: ContentIndex) -> None:
    index.replace(ALL)
    revised = doc(LIVER.id, "Spleen tissue reads, re-extracted.", samples=("S1", "S2"), group="liver-lab")

    index.replace([revised])
    index.replace([revised])

    assert listed(index) == sorted(document.id for document in ALL)
    assert ids(index, "spleen") == {LIVER.id}
    assert LIVER.id not in ids(index, "liver")


def test_removed_ids_are_deleted_and_reported_and_an_id_put_again_is_kept(index: ContentIndex) -> None:
    index.replace(ALL)

    report = index.replace([PROTOCOL], removed_ids=[LIVER_TABLE.id, KIDNEY.id, PROTOCOL.id, "raw/EXP-9/never.txt"])

    assert set(report.deleted) == {LIVER_TABLE.id, KIDNEY.id, "raw/EXP-9/never.txt"}
    assert report.indexed == (PROTOCOL.id,)
    assert listed(index) == sorted([LIVER.id, PROTOCOL.id])
    assert ids(index, "kidney") == set()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ContentFilter(experiment_id="EXP-1"), {LIVER.id, LIVER_TABLE.id}),
        (ContentFilter(sample_id="S1"), {LIVER.id}),
        (ContentFilter(sample_id="S2"), {LIVER.id}),
        (ContentFilter(platform="Orbitrap"), {KIDNEY.id}),
        (ContentFilter(group="kidney-lab"), {KIDNEY.id}),
        (ContentFilter(zone="processed"), {LIVER_TABLE.id}),
        (ContentFilter(format="fastq.gz"), {LIVER.id}),
        (ContentFilter(format="fastq"), {LIVER.id}),  # compressed or not
        (ContentFilter(format="FASTQ"), {LIVER.id}),
        (ContentFilter(format="fastq.bz2"), set()),
        (ContentFilter(format="csv.gz"), set()),
        (ContentFilter(format="csv"), {LIVER_TABLE.id}),
        (ContentFilter(since=date(2025, 1, 5)), {LIVER_TABLE.id, KIDNEY.id}),
        (ContentFilter(until=date(2025, 1, 5)), {LIVER.id, LIVER_TABLE.id, PROTOCOL.id}),
        (ContentFilter(until=datetime(2025, 1, 2, 9, 59)), set()),
        (ContentFilter(since=datetime(2025, 1, 2, 10, 0), until=datetime(2025, 1, 2, 10, 0)), {LIVER.id, PROTOCOL.id}),
        (ContentFilter(experiment_id="EXP-1", zone="raw"), {LIVER.id}),
        (ContentFilter(experiment_id="exp-1"), set()),
        (
            ContentFilter(
                experiment_id="EXP-1",
                sample_id="S2",
                platform="NovaSeq",
                group="liver-lab",
                zone="raw",
                format="fastq.gz",
                since=date(2025, 1, 1),
                until=date(2025, 1, 2),
            ),
            {LIVER.id},
        ),
    ],
)
def test_each_filter_selects_exactly_its_documents(
    index: ContentIndex, filters: ContentFilter, expected: set[str]
) -> None:
    index.replace(ALL)

    assert ids(index, "tissue", filters=filters) == expected
    assert ids(index, "", filters=filters) == expected


def test_a_sample_id_matches_whole_ids_only(index: ContentIndex) -> None:
    index.replace(ALL)

    assert ids(index, filters=ContentFilter(sample_id="S")) == set()
    assert ids(index, filters=ContentFilter(sample_id="S10")) == {KIDNEY.id}


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        (None, EVERY_ID),
        (Viewer("root", admin=True), EVERY_ID),
        (Viewer("bob", frozenset({"liver-lab"})), {LIVER.id, LIVER_TABLE.id}),
        (Viewer("bob", frozenset({"other-lab", "Kidney-Lab"})), {KIDNEY.id}),
        (Viewer("bob"), set()),
        (Viewer("ada"), {PROTOCOL.id}),
        (Viewer(" ADA ", frozenset({"liver-lab"})), {LIVER.id, LIVER_TABLE.id, PROTOCOL.id}),
        (Viewer("bob", frozenset({"not a\ngroup"})), set()),
    ],
)
def test_a_viewer_sees_the_documents_whose_list_holds_their_name_or_a_group(
    index: ContentIndex, viewer: Viewer | None, expected: set[str]
) -> None:
    index.replace(ALL)

    assert ids(index, "tissue", viewer=viewer) == expected
    assert ids(index, "", viewer=viewer) == expected


def test_a_document_whose_experiment_lists_nobody_is_seen_by_admins_only(index: ContentIndex) -> None:
    orphan = doc("final/EXP-4/notes.txt", "tissue notes of nobody's experiment", experiment="EXP-4")
    assert orphan.principals == ()

    index.replace([orphan])

    assert ids(index, "tissue") == {orphan.id}
    assert ids(index, "tissue", viewer=Viewer("root", admin=True)) == {orphan.id}
    for viewer in (Viewer("bob"), Viewer("bob", frozenset({"liver-lab", "kidney-lab"}))):
        assert ids(index, "tissue", viewer=viewer) == set()
        assert ids(index, "", viewer=viewer) == set()


def test_access_is_applied_before_the_limit(index: ContentIndex) -> None:
    hidden = [
        doc(f"raw/EXP-2/k{number}.txt", "tissue tissue tissue tissue", experiment="EXP-2", group="kidney-lab")
        for number in range(12)
    ]
    index.replace([*hidden, LIVER_TABLE])

    hits = index.search("tissue", viewer=Viewer("bob", frozenset({"liver-lab"})), limit=1)

    assert [hit.id for hit in hits] == [LIVER_TABLE.id]


def test_a_grant_and_a_revoke_change_one_experiments_list_idempotently(index: ContentIndex) -> None:
    index.replace(ALL)
    kidney_user = Viewer("carol", frozenset({"kidney-lab"}))
    before = experiment_principals("liver-lab", None)
    granted = before | {"group:kidney-lab", "user:dan"}

    def exp1(principals: frozenset[str]) -> list[ContentDocument]:
        return [replace(document, principals=tuple(principals)) for document in (LIVER, LIVER_TABLE)]

    for _ in range(2):
        report = index.update_access("EXP-1", granted, lambda: exp1(granted))
        assert sorted(report.indexed) == sorted([LIVER.id, LIVER_TABLE.id]) and not report.failed
        assert ids(index, "tissue", viewer=kidney_user) == {LIVER.id, LIVER_TABLE.id, KIDNEY.id}
        assert ids(index, "tissue", viewer=Viewer("Dan")) == {LIVER.id, LIVER_TABLE.id}
        assert ids(index, "tissue", viewer=Viewer("ada")) == {PROTOCOL.id}  # other experiments keep theirs

    index.update_access("EXP-1", before, lambda: exp1(before))

    assert ids(index, "tissue", viewer=kidney_user) == {KIDNEY.id}
    assert ids(index, "tissue", viewer=Viewer("dan")) == set()
    assert ids(index, "tissue", viewer=Viewer("bob", frozenset({"liver-lab"}))) == {LIVER.id, LIVER_TABLE.id}
    assert listed(index) == sorted(EVERY_ID)  # nothing added or lost
    assert ids(index, "liver") == {LIVER.id, LIVER_TABLE.id}  # the words are still found


def test_revoking_everything_leaves_an_experiment_to_admins(index: ContentIndex) -> None:
    index.replace(ALL)

    index.update_access("EXP-3", frozenset(), lambda: [replace(PROTOCOL, principals=())])

    assert ids(index, "tissue", viewer=Viewer("ada")) == set()
    assert ids(index, "tissue", viewer=Viewer("root", admin=True)) == EVERY_ID


def test_a_document_breaking_the_rules_is_reported_and_the_others_indexed(index: ContentIndex) -> None:
    index.replace([LIVER])
    undeclared = doc("raw/EXP-1/colour.txt", "tissue colour chart", colour="red")
    bad_group = doc("raw/EXP-1/secret.txt", "tissue secrets", group="bell\x07ring")
    bad_principal = replace(doc("raw/EXP-1/other.txt", "tissue other"), principals=("everyone",))
    mistyped = doc(LIVER.id, "tissue replaced", created="yesterday")  # type: ignore[arg-type]
    undecodable = doc("raw/EXP-1/caf\udce9.txt", "tissue cafe")
    too_long = doc("raw/EXP-1/" + "x" * 2048, "tissue long")

    report = index.replace([undeclared, KIDNEY, bad_group, bad_principal, mistyped, undecodable, too_long])

    assert report.indexed == (KIDNEY.id,)
    assert set(report.failed) == {undeclared.id, bad_group.id, bad_principal.id, LIVER.id, undecodable.id, too_long.id}
    assert "colour" in report.failed[undeclared.id]
    assert "access list" in report.failed[bad_group.id]
    assert "group:NAME or user:NAME" in report.failed[bad_principal.id]
    assert "created" in report.failed[LIVER.id]
    assert "UTF-8" in report.failed[undecodable.id]
    assert "2048" in report.failed[too_long.id]
    assert ids(index, "tissue") == {LIVER.id, KIDNEY.id}
    assert ids(index, "replaced") == set()


def test_titles_texts_and_uris_that_cannot_be_utf8_are_cleaned_not_refused(index: ContentIndex) -> None:
    odd = ContentDocument(
        id="raw/EXP-1/odd.txt", title="caf\udce9 notes", text="tissue caf\udce9", uri="file:///caf\udce9.txt"
    )

    report = index.replace([odd])

    assert report.indexed == (odd.id,)
    (hit,) = index.search("tissue")
    assert hit.title == "caf\ufffd notes"


def test_two_documents_with_one_id_in_a_call_are_refused(index: ContentIndex) -> None:
    with pytest.raises(ValueError, match="given twice"):
        index.replace([LIVER, LIVER])


def test_limits_cap_the_hits(index: ContentIndex) -> None:
    index.replace(ALL)

    assert len(index.search("tissue", limit=2)) == 2
    assert index.search("tissue", limit=0) == []
    assert index.search("?!", limit=10) == []


def test_prepare_is_idempotent(index: ContentIndex) -> None:
    index.prepare()
    index.prepare()
    index.replace([LIVER])
    index.prepare()

    assert listed(index) == [LIVER.id]


def test_the_codecs_a_format_may_end_in_are_those_extraction_undoes() -> None:
    assert set(CODECS) == set(COMPRESSION_SUFFIXES.values())
