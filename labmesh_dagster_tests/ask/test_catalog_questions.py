"""Questions the catalog answers, from its typed metadata and the QC documents, cited to the dataset, under access.

Pinned here, on the portal's test lab (ada in Genomics owns EXP-1 on the MiSeq
with sample LIV-01 and a FASTQ whose QC has run; bob in Proteomics owns EXP-2
on the Orbitrap): "which experiments used the MiSeq in March 2024" lists ada's
experiment, the platform recognised from the catalog's own values, with
"last month" read against the day asked; the Q30 of LIV-01 comes from the
figures extracted from its raw file (QC does not count it) and its mean
quality from its QC document; "how many FASTQ files" counts the dataset's
files; "who owns EXP-2" reads the record; each answer cites the experiment's
page, never a passage.
Bob, asking the same, is told of nothing of ada's: his answers list no
experiment, and an id he may not see is not recognised at all.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import replace
from datetime import date

import pytest

from labmesh_dagster.ask.base import collect
from labmesh_dagster.ask.catalog_questions import answer_from_catalog
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.answers import Answer
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.extract import extract
from labmesh_dagster_tests.portal.lab import PortalLab, add_qc, build_lab

ADA = Viewer("ada", frozenset({"Genomics"}))
BOB = Viewer("bob", frozenset({"Proteomics"}))


# Qualities from '#' (2) to 'I' (40): the offset is plain, so QC can count the bases at Q30 (6 of 10).
FASTQ = b"".join(b"@read%d/1\nACGTACGTAC\n+\nIIIIII####\n" % n for n in range(20))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> PortalLab:
    lab = build_lab(tmp_path_factory.mktemp("ask-catalog") / "home")
    raw = lab.catalog.get_dataset("EXP-1", Zone.RAW)
    assert raw is not None
    entries = []
    for entry in raw.files:
        if entry.format == "fastq.gz":
            data = gzip.compress(FASTQ)
            lab.store.put(ObjectKey.parse(entry.key), data)
            metadata = extract(io.BytesIO(data), "LIV-01_R1.fastq.gz").metadata
            entry = replace(entry, size=len(data), sha256=hashlib.sha256(data).hexdigest(), metadata=metadata)
        entries.append(entry)
    lab.catalog.upsert_dataset(Manifest.build("EXP-1", "raw", entries), raw.location)
    add_qc(lab)
    return lab


def catalog_answer(lab: PortalLab, question: str, viewer: Viewer, today: date = date(2024, 4, 15)) -> Answer | None:
    found = answer_from_catalog(question, viewer=viewer, catalog=lab.catalog, store=lab.store, today=today)
    return None if found is None else collect(question, found.events())


def test_which_experiments_used_a_platform_in_a_month(lab: PortalLab) -> None:
    answer = catalog_answer(lab, "Which experiments used the MiSeq in March 2024?", ADA)
    assert answer is not None and answer.answered and answer.engine == "catalog"
    assert answer.parts[0].text == "1 experiment you may see used the MiSeq, with data from March 2024, by the catalog:"
    (citation,) = answer.citations
    assert (citation.experiment_id, citation.href, citation.passage) == ("EXP-1", "/experiments/EXP-1", None)
    assert "platform MiSeq" in answer.parts[1].text and answer.parts[1].citations == (1,)


def test_last_month_is_the_month_before_the_day_asked(lab: PortalLab) -> None:
    answer = catalog_answer(lab, "which experiments used the miseq last month", ADA, today=date(2024, 4, 2))
    assert answer is not None and [c.experiment_id for c in answer.citations] == ["EXP-1"]
    later = catalog_answer(lab, "which experiments used the miseq last month", ADA, today=date(2024, 6, 2))
    assert later is not None and not later.answered and later.citations == ()


def test_the_q30_of_a_sample_comes_from_its_qc_document(lab: PortalLab) -> None:
    answer = catalog_answer(lab, "What is the Q30 of LIV-01?", ADA)
    assert answer is not None and answer.answered
    assert answer.parts[1].text == (
        "LIV-01_R1.fastq.gz (sample LIV-01) of EXP-1 has 60.0% of bases at Q30 or better,"
        " as extracted when it was published."
    )
    assert answer.citations[0].dataset == "raw"


def test_the_mean_quality_comes_from_the_qc_document(lab: PortalLab) -> None:
    answer = catalog_answer(lab, "What is the mean quality of LIV-01?", ADA)
    assert answer is not None
    assert answer.parts[1].text == (
        "LIV-01_R1.fastq.gz (sample LIV-01) of EXP-1 has a mean base quality of 24.8, as QC measured it."
    )
    assert answer.citations[0].dataset == "processed"


def test_how_many_files_of_a_format_an_experiment_has(lab: PortalLab) -> None:
    answer = catalog_answer(lab, "How many FASTQ files does EXP-1 have?", ADA)
    assert answer is not None and answer.parts[0].text == "EXP-1 has 1 FASTQ files, by the catalog:"
    assert answer.parts[1].text == "The raw dataset of EXP-1 holds 1 FASTQ file(s): run1/LIV-01_R1.fastq.gz."


def test_a_field_of_a_named_experiment(lab: PortalLab) -> None:
    answer = catalog_answer(lab, "Who owns EXP-2?", BOB)
    assert answer is not None and answer.parts[1].text == "EXP-2 (Kidney proteomics) has owner bob."


def test_another_group_is_told_nothing_of_experiments_it_may_not_see(lab: PortalLab) -> None:
    listed = catalog_answer(lab, "Which experiments used the MiSeq in March 2024?", BOB)
    # The MiSeq is no platform of bob's experiments: the question is not the catalog's to answer for him.
    assert listed is None or (not listed.answered and "EXP-1" not in listed.text)
    assert catalog_answer(lab, "What is the Q30 of LIV-01?", BOB) is None
    assert catalog_answer(lab, "How many FASTQ files does EXP-1 have?", BOB) is None
    assert catalog_answer(lab, "Who owns EXP-1?", BOB) is None


def test_a_question_about_content_is_not_the_catalogs(lab: PortalLab) -> None:
    assert catalog_answer(lab, "What did the run summary say about fibrosis?", ADA) is None
