"""A keyword match's strength is its BM25 score as a share of the question's IDF mass, as FTS5 scores it.

Pinned against SQLite's own ``bm25()``: a passage holding every word of the
question once, at average length, has strength 1; one holding some of the
words has the share of the IDF mass those words carry, so a rare word (an id)
is most of it and a common one little; IDF is FTS5's, floored where most rows
hold the word.
"""

from __future__ import annotations

import sqlite3

import pytest

from labmesh_dagster.semantic.match_strength import FTS5_MIN_IDF, bm25_idf, keyword_strength

# Equal lengths (four words each), so every passage is at average length and BM25's length term is 1.
PASSAGES = [
    "sample liv07 failed qc",
    "sample liv08 passed qc",
    "sample liv17 passed qc",
    "plate p0042 elisa standards",
    "plate p0041 elisa standards",
    "freezer alarm rose overnight",
]


def fts5_scores(question: list[str]) -> dict[int, float]:
    """Each matching row's BM25 score (higher is better) for the words of ``question``, any of them."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE passages USING fts5(text)")
    db.executemany("INSERT INTO passages (rowid, text) VALUES (?, ?)", enumerate(PASSAGES, start=1))
    rows = db.execute(
        "SELECT rowid, -bm25(passages) FROM passages WHERE passages MATCH ?", (" OR ".join(question),)
    ).fetchall()
    return {rowid: score for rowid, score in rows}


def question_idfs(question: list[str]) -> list[float]:
    return [bm25_idf(sum(word in passage.split() for passage in PASSAGES), len(PASSAGES)) for word in question]


def test_a_passage_holding_every_word_once_is_a_full_match() -> None:
    question = ["liv07", "failed"]

    assert keyword_strength(fts5_scores(question)[1], question_idfs(question)) == pytest.approx(1.0)


def test_a_partial_match_holds_the_share_of_the_idf_mass_of_its_words() -> None:
    question = ["liv08", "sample"]  # the id is in one passage of six, "sample" in three
    rare, common = question_idfs(question)
    scores = fts5_scores(question)

    assert keyword_strength(scores[2], [rare, common]) == pytest.approx(1.0)
    assert keyword_strength(scores[1], [rare, common]) == pytest.approx(common / (rare + common))
    assert common / (rare + common) < 0.1


def test_a_word_most_passages_hold_weighs_next_to_nothing_as_in_fts5() -> None:
    question = ["qc", "liv17"]  # "qc" is in half the passages: FTS5's IDF of it is its floor

    assert question_idfs(question)[0] == bm25_idf(3, 6) == FTS5_MIN_IDF
    assert keyword_strength(fts5_scores(question)[1], question_idfs(question)) < 1e-6
    assert keyword_strength(fts5_scores(question)[3], question_idfs(question)) == pytest.approx(1.0)


def test_a_question_without_a_weighed_word_has_no_strength() -> None:
    assert keyword_strength(3.0, []) == 0.0
