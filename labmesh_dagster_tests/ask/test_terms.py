"""What a question names, as the extractive answerer and the catalog questions read it.

Pinned here: sample and experiment ids are found whatever their shape
(``LIV-01``, ``EXP-12``, ``SOIL-C``, ``DEMO-RNASEQ-001``, ``GRCm39``) and compared without
case or dashes, a metric like ``Q30`` is not taken for a sample; numbers are
found with a unit glued on (``93.4%``, ``35.2ng/µl``) but an id's digits are not
a number; units are found alone or glued, however typed (``ul``, ``µl``), and in a
column's name (``conc_nM``), but a lone letter is a unit only after a number (the
possessive in "the specimen's" is not seconds); an abbreviation with a dash
(``LC-MS``) is not a sample id; acronyms and mixed-case names (``MIC``, ``pH``) are
the question's symbols; a question asking for an amount or a date is told from
one that is not, and a date or a time of day is not an amount.
"""

from __future__ import annotations

from labmesh_dagster.ask.terms import (
    amounts,
    content_terms,
    entity_ids,
    holds_unit,
    holds_word,
    numbers,
    symbols,
    units,
    wants_date,
    wants_quantity,
)


def test_ids_of_every_shape_are_found_and_normalised() -> None:
    text = "Compare LIV-01, exp_12, SOIL-C and DEMO-RNASEQ-001 aligned to GRCm39 at Q30."
    assert entity_ids(text) == {"liv01", "exp12", "soilc", "demornaseq001", "grcm39"}


def test_numbers_keep_their_glued_units_apart_from_ids() -> None:
    text = "LIV-01 had 93.4% of bases at Q30, 35.2ng/µl, 2 x 150 bp, an 8.2-fold rise at 37 °C."
    assert numbers(text) == {"93.4", "35.2", "2", "150", "8.2", "37"}
    assert {"%", "ng/µl", "bp", "°c", "q30"} <= units(text)
    assert units("35 ng/ul, 2 ug/ml, 5uL") == {"ng/µl", "µg/ml", "µl"}
    assert holds_unit("sample,conc_nM\nLIV-01,14.2", "nm") and not holds_unit("35.2 ng/µl", "nm")


def test_content_terms_are_stemmed_without_stop_words() -> None:
    assert content_terms("Which libraries were prepared?") == {"library", "prepar"}


def test_questions_asking_for_an_amount_or_a_date() -> None:
    assert wants_quantity("How many read pairs did LIV-02 give?")
    assert wants_quantity("What was the DNA concentration of PIL-02?")
    assert wants_date("When did the run finish?")
    assert not wants_quantity("Which kit was used?") and not wants_date("Which kit was used?")


def test_an_abbreviation_with_a_dash_is_not_a_sample_id() -> None:
    assert entity_ids("What gradient does the DIA LC-MS method run on RNA-SEQ day?") == set()
    assert entity_ids("How many reads did SOIL-C and KO-B2 give?") == {"soilc", "kob2"}


def test_a_lone_letter_is_a_unit_only_after_a_number() -> None:
    assert units("What fraction of the second specimen's data were duplicates?") == set()
    assert units("Spin for 30 s at 12,000 x g") == {"s", "x"}


def test_acronyms_and_mixed_case_names_are_the_questions_symbols() -> None:
    assert symbols("What is the MIC of ceftriaxone, and the pH of the NovaSeq buffer in nM?") == {
        "mic",
        "ph",
        "novaseq",
    }
    assert symbols("WHAT IS THE MIC?") == set()
    assert holds_word({"mics", "were", "measured"}, "mic") and not holds_word({"minimal"}, "mic")


def test_a_date_or_a_time_of_day_is_not_an_amount() -> None:
    assert amounts("Report prepared for Ada Example on 2026-11-06.") == set()
    assert amounts("2026-11-04 08:20 cylinder changed; 3 mice per condition, 92.4% mapped") == {"3", "92.4"}
