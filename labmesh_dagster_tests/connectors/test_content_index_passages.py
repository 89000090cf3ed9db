"""The local content indexes (SQLite and PostgreSQL) retrieve passages by words (BM25), by meaning (vectors) and
both fused.

Pinned here: a passage comes back with its document, place and facets; ids
are found by words and paraphrases by meaning, and on a small labelled set the
fused ranking finds every answer in its top 5 (neither alone does), ids first
(where their near twins mislead meaning) and paraphrases in the top 3; the
fusion weighs each ranking by how well it matched, so a paraphrase whose only
matched word is one many passages hold keeps its answer by meaning first, and
every id alone ranks the passage naming it first; a viewer never gets a
passage of an experiment they may not see in any mode, dense included, even
when it is the closest text there is, and facet filters hold the same way;
putting unchanged documents again embeds nothing, and a vector no passage uses
is deleted; a file from before passages gets them in place, found by words at
once and by meaning after `embed_missing`; without an embedder, every mode
ranks by words; a word most passages hold gives way to a rarer one, and alone
ranks the newest passages the viewer may see (their own, however old). Each
holds on SQLite and on PostgreSQL; the upgrades of older SQLite files are
SQLite's alone.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from labmesh_dagster.connectors.search import local, postgres
from labmesh_dagster.connectors.search.base import ContentDocument, ContentFilter
from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.passages import LocationKind, PassageLocation, SearchMode
from labmesh_dagster.semantic.chunking import chunk_file
from labmesh_dagster.semantic.embedding import Embedder, default_embedder
from labmesh_dagster_tests.connectors.content_indexes import (
    LOCAL_BACKENDS,
    IndexOpener,
    LocalIndex,
    index_opener,
    local_index,
    vector_count,
)

GENOMICS = {
    "qc.txt": "Sample LIV-07 failed library QC: the Bioanalyzer trace showed adapter dimers at 128 bp.",
    "run.txt": "The NovaSeq 6000 run produced 1.2 billion read pairs; 92.4% of bases scored Q30 or better.",
    "extraction.txt": "RNA was extracted with TRIzol and cleaned on RNeasy columns; RIN values ranged from 7.9 to 9.3.",
    "storage.txt": "Liver biopsies were snap-frozen in liquid nitrogen and kept at -80 C until needed.",
    "protein.txt": "Cells were lysed in RIPA buffer and total protein measured by BCA assay at 562 nm.",
    "mice.txt": "Twelve C57BL/6 mice were fed a high-fat diet for 16 weeks before sacrifice.",
    "imaging.txt": "Confocal images of hepatocytes were taken with a 63x oil objective; nuclei stained with DAPI.",
    "plate.txt": "Plate P-0042 ELISA: IL-6 standards from 7.8 to 500 pg/mL, samples diluted 1:4.",
    "deviation.txt": "Deviation DV-2291: the freezer alarm went off overnight; the temperature rose to -62 C for 3 h.",
    "analysis.txt": "Differential expression was computed with DESeq2; 418 genes had adjusted p below 0.05.",
    # Near twins of the above that words tell apart and meaning hardly does.
    "qc-2.txt": "Sample LIV-08 failed library QC: the Bioanalyzer trace showed adapter dimers at 131 bp.",
    "qc-3.txt": "Sample LIV-17 failed library QC: the Bioanalyzer trace showed primer dimers at 96 bp.",
    "deviation-2.txt": "Deviation DV-2290: the fridge alarm went off overnight; the temperature rose to 12 C for 1 h.",
    "plate-2.txt": "Plate P-0041 ELISA: TNF-alpha standards from 15.6 to 1000 pg/mL, samples diluted 1:2.",
    "analysis-2.txt": "Differential expression was computed with edgeR; 377 genes had a false discovery rate of 0.1.",
    "run-2.txt": "The MiSeq run produced 24 million read pairs; 85.1% of bases scored Q30 or better.",
}
SECRET = "raw/EXP-2/secret.txt"
SECRET_TEXT = "Sample LIV-07 secret result: the NovaSeq run of the other group gave 99.9% of bases at Q30."

# Each question with the file that answers it: 4 by ids and rare words, 5 paraphrases sharing no content word with
# the answer, 1 in the answer's own words.
LABELLED = [
    ("LIV-07", "qc.txt"),
    ("DV-2291", "deviation.txt"),
    ("P-0042 standards", "plate.txt"),
    ("DESeq2", "analysis.txt"),
    ("what were the animals nourished with", "mice.txt"),
    ("microscopy pictures of liver cells", "imaging.txt"),
    ("how many transcripts changed significantly", "analysis.txt"),
    ("how were tissue specimens preserved", "storage.txt"),
    ("what share of sequencing calls had high accuracy", "run.txt"),
    ("how much protein did the cells contain", "protein.txt"),
]


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.inner = Embedder(cache_entries=0)
        self.model_id = self.inner.model_id
        self.dimension = self.inner.dimension
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts, batch_size=batch_size)


def document(key: str, text: str, experiment: str, group: str) -> ContentDocument:
    name = key.rsplit("/", 1)[-1]
    return ContentDocument(
        id=key,
        title=name,
        text=text,
        uri=f"file:///{key}",
        attributes={"experiment_id": experiment, "group": group},
        principals=(f"group:{group}",),
        passages=tuple(chunk_file(key, fmt="text", text=text)),
    )


def lab_documents() -> list[ContentDocument]:
    documents = [document(f"raw/EXP-1/{name}", text, "EXP-1", "genomics") for name, text in GENOMICS.items()]
    return [*documents, document(SECRET, SECRET_TEXT, "EXP-2", "proteomics")]


@pytest.fixture(scope="module", params=LOCAL_BACKENDS)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    with local_index(request.param, tmp_path_factory.mktemp("lab")) as index:
        assert index.replace(lab_documents()).ok
        yield index


GENOMICIST = Viewer("ada", frozenset({"genomics"}))


def ranks(index: LocalIndex, mode: SearchMode) -> list[int | None]:
    """The rank (from 1) of each labelled answer among the genomicist's top 5, None when missing."""
    found: list[int | None] = []
    for question, answer in LABELLED:
        titles = [hit.title for hit in index.retrieve(question, viewer=GENOMICIST, limit=5, mode=mode)]
        found.append(titles.index(answer) + 1 if answer in titles else None)
    return found


def test_a_passage_comes_back_with_its_document_place_and_facets(lab: LocalIndex) -> None:
    (hit,) = lab.retrieve("DV-2291", viewer=GENOMICIST, limit=1, mode=SearchMode.KEYWORD)

    assert hit.passage.id == "raw/EXP-1/deviation.txt#0"
    assert hit.passage.text == GENOMICS["deviation.txt"]
    assert hit.passage.location == PassageLocation(LocationKind.WHOLE)
    assert (hit.title, hit.uri) == ("deviation.txt", "file:///raw/EXP-1/deviation.txt")
    assert hit.attributes["experiment_id"] == "EXP-1"


def test_ids_are_found_by_words_and_paraphrases_by_meaning(lab: LocalIndex) -> None:
    keyword, dense = ranks(lab, SearchMode.KEYWORD), ranks(lab, SearchMode.DENSE)

    assert keyword[:4] == [1, 1, 1, 1]
    assert keyword[4:9] == [None] * 5  # no content word of a paraphrase is in its answer
    assert all(rank is not None for rank in dense[4:9])


def test_the_fused_ranking_is_at_least_as_good_as_either_alone(lab: LocalIndex) -> None:
    def mrr(found: list[int | None]) -> float:
        return sum(1 / rank for rank in found if rank) / len(found)

    def recall(found: list[int | None]) -> float:
        return sum(rank is not None for rank in found) / len(found)

    keyword, dense, hybrid = (ranks(lab, mode) for mode in SearchMode)

    assert recall(hybrid) == 1.0 >= max(recall(keyword), recall(dense))
    assert mrr(hybrid) > mrr(keyword)
    assert hybrid[:4] == [1, 1, 1, 1] != dense[:4]  # an id's near twin is as close in meaning; its words tell
    assert all(rank is not None and rank <= 3 for rank in hybrid[4:])


def test_a_paraphrase_matching_one_common_word_keeps_its_answer_by_meaning_first(lab: LocalIndex) -> None:
    question = "how were the samples preserved over the long term"  # only "samples" is in any passage

    by_words = lab.retrieve(question, viewer=GENOMICIST, limit=5, mode=SearchMode.KEYWORD)
    (first, *_) = lab.retrieve(question, viewer=GENOMICIST, limit=5)

    assert by_words and "storage.txt" not in {hit.title for hit in by_words}
    assert first.title == "storage.txt"


def test_every_id_alone_ranks_the_passage_naming_it_first_though_meaning_confuses_twins(
    lab: LocalIndex,
) -> None:
    ids = ["LIV-07", "LIV-08", "LIV-17", "DV-2290", "DV-2291", "P-0041", "P-0042"]

    def first_names_it(mode: SearchMode) -> list[bool]:
        return [the_id in lab.retrieve(the_id, viewer=GENOMICIST, limit=1, mode=mode)[0].passage.text for the_id in ids]

    assert all(first_names_it(SearchMode.HYBRID))
    assert not all(first_names_it(SearchMode.DENSE))


@pytest.mark.parametrize("mode", list(SearchMode))
def test_another_groups_passage_is_never_returned_even_when_it_is_the_closest(
    lab: LocalIndex, mode: SearchMode
) -> None:
    for viewer in (GENOMICIST, Viewer("bob", frozenset({"genomics", "imaging"})), Viewer("eve")):
        hits = lab.retrieve(SECRET_TEXT, viewer=viewer, limit=50, mode=mode)
        assert SECRET not in {hit.passage.document_id for hit in hits}
        assert all(hit.attributes["experiment_id"] == "EXP-1" for hit in hits)
    assert lab.retrieve(SECRET_TEXT, viewer=Viewer("eve"), limit=50, mode=mode) == []

    owners = lab.retrieve(SECRET_TEXT, viewer=Viewer("pia", frozenset({"proteomics"})), limit=50, mode=mode)
    assert [hit.passage.document_id for hit in owners] == [SECRET]
    assert lab.retrieve(SECRET_TEXT, limit=1, mode=mode)[0].passage.document_id == SECRET  # labmesh sees all


@pytest.mark.parametrize("mode", list(SearchMode))
def test_facet_filters_hold_in_every_mode(lab: LocalIndex, mode: SearchMode) -> None:
    hits = lab.retrieve(SECRET_TEXT, filters=ContentFilter(experiment_id="EXP-1"), limit=50, mode=mode)

    assert hits and {hit.attributes["experiment_id"] for hit in hits} == {"EXP-1"}
    assert lab.retrieve(SECRET_TEXT, filters=ContentFilter(group="nobody"), mode=mode) == []


@pytest.fixture(params=LOCAL_BACKENDS)
def open_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexOpener]:
    with index_opener(request.param, tmp_path) as opener:
        yield opener


def test_putting_unchanged_documents_again_embeds_nothing(open_index: IndexOpener) -> None:
    embedder = CountingEmbedder()
    index = open_index(embedder=lambda: embedder)
    documents = lab_documents()
    index.replace(documents)
    assert len(embedder.texts) == len(documents)

    embedder.texts.clear()
    index.replace(documents)
    assert embedder.texts == []

    changed = document("raw/EXP-1/qc.txt", "Sample LIV-07 passed library QC on the second try.", "EXP-1", "genomics")
    index.replace([changed], removed_ids=["raw/EXP-1/plate.txt"])
    assert embedder.texts == ["qc.txt\nSample LIV-07 passed library QC on the second try."]
    assert vector_count(index) == len(documents) - 1  # the old qc and the plate's vectors are gone
    (hit,) = index.retrieve("second try", limit=1, mode=SearchMode.DENSE)
    assert hit.passage.text == changed.text


# The layout labmesh wrote before passages (commit 7ff8f64), as it was.
OLD_SCHEMA = """
CREATE TABLE content_documents (
    doc INTEGER PRIMARY KEY, document_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, uri TEXT NOT NULL,
    text TEXT NOT NULL, attributes TEXT NOT NULL
);
CREATE TABLE content_values (doc INTEGER NOT NULL, name TEXT NOT NULL, text_value TEXT, number_value REAL);
CREATE TABLE content_principals (doc INTEGER NOT NULL, principal TEXT NOT NULL, PRIMARY KEY (doc, principal));
CREATE VIRTUAL TABLE content_fts USING fts5(title, text, tokenize = 'porter unicode61');
"""


def test_a_file_from_before_passages_gets_them_in_place(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for doc, (name, group) in enumerate([("storage.txt", "genomics"), ("mice.txt", "proteomics")], start=1):
        key, text = f"raw/EXP-{doc}/{name}", GENOMICS[name]
        db.execute(
            "INSERT INTO content_documents VALUES (?, ?, ?, ?, ?, ?)",
            (doc, key, name, f"file:///{key}", text, json.dumps({"experiment_id": f"EXP-{doc}"})),
        )
        db.execute("INSERT INTO content_fts (rowid, title, text) VALUES (?, ?, ?)", (doc, name, text))
        db.execute("INSERT INTO content_values VALUES (?, 'experiment_id', ?, NULL)", (doc, f"EXP-{doc}"))
        db.execute("INSERT INTO content_principals VALUES (?, ?)", (doc, f"group:{group}"))
    db.commit()
    db.close()

    index = SqliteContentIndex(path)
    (hit,) = index.retrieve("liquid nitrogen", viewer=GENOMICIST, mode=SearchMode.KEYWORD)
    assert (hit.passage.id, hit.passage.location.kind) == ("raw/EXP-1/storage.txt#0", LocationKind.WHOLE)
    assert index.retrieve("liquid nitrogen", mode=SearchMode.DENSE) == []  # no vectors yet
    assert [hit.id for hit in index.search("nitrogen")] == ["raw/EXP-1/storage.txt"]  # documents as before

    assert index.embed_missing() == 2
    again = SqliteContentIndex(path)
    assert again.embed_missing() == 0
    hits = again.retrieve("how were tissue specimens preserved", viewer=GENOMICIST, mode=SearchMode.DENSE)
    assert [hit.passage.id for hit in hits] == ["raw/EXP-1/storage.txt#0"]


def test_without_an_embedder_every_mode_ranks_by_words(open_index: IndexOpener) -> None:
    index = open_index(embedder=None)
    index.replace(lab_documents())

    assert index.retrieve("how were tissue specimens preserved", mode=SearchMode.DENSE) == []
    by_words = index.retrieve("frozen liver", mode=SearchMode.KEYWORD)
    assert [hit.passage.id for hit in index.retrieve("frozen liver")] == [hit.passage.id for hit in by_words]
    assert by_words[0].passage.document_id == "raw/EXP-1/storage.txt"


def test_the_default_embedder_is_the_one_shared_by_the_process(open_index: IndexOpener) -> None:
    assert open_index().model_id == default_embedder().model_id


def test_common_words_give_way_to_rare_ones_and_alone_rank_the_newest_a_viewer_may_see(
    open_index: IndexOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (local, postgres):
        monkeypatch.setattr(module, "COMMON_MATCHES", 20)
        monkeypatch.setattr(module, "COMMON_WINDOW", 10)
    index = open_index(embedder=None)
    mine = document("raw/EXP-1/old.txt", "Old buffer notes for sample LIV-07.", "EXP-1", "genomics")
    others = [
        document(f"raw/EXP-2/n{n}.txt", f"Buffer batch {n} was made fresh.", "EXP-2", "proteomics") for n in range(40)
    ]
    index.replace([mine, *others])  # the genomicist's passage is the oldest of 41 holding "buffer"

    (rare_first, *_) = index.retrieve("buffer LIV-07", mode=SearchMode.KEYWORD)
    assert rare_first.passage.document_id == "raw/EXP-1/old.txt"
    assert len(index.retrieve("buffer", limit=50, mode=SearchMode.KEYWORD)) == 10  # the newest window
    hits = index.retrieve("buffer", viewer=GENOMICIST, limit=50, mode=SearchMode.KEYWORD)
    assert [hit.passage.document_id for hit in hits] == ["raw/EXP-1/old.txt"]


def test_passages_numbered_the_first_way_are_cut_again_and_access_still_holds(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    SqliteContentIndex(path, embedder=None).replace(lab_documents())
    db = sqlite3.connect(path)
    db.execute("UPDATE content_state SET value = 1 WHERE name = 'passages_cut'")  # layout 1, as briefly written
    db.execute("UPDATE content_passages SET passage = passage + 1")  # not numbered by document any more
    db.commit()
    db.close()

    index = SqliteContentIndex(path, embedder=None)
    hits = index.retrieve(SECRET_TEXT, viewer=GENOMICIST, limit=50, mode=SearchMode.KEYWORD)

    assert hits and SECRET not in {hit.passage.document_id for hit in hits}
    owners = index.retrieve(SECRET_TEXT, viewer=Viewer("pia", frozenset({"proteomics"})), mode=SearchMode.KEYWORD)
    assert [hit.passage.id for hit in owners] == [f"{SECRET}#0"]
