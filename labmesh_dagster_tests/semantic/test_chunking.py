"""Passages cut from a file's extracted content, each knowing its place: page, rows, section, lines, field, whole.

Pinned here: a PDF's passages name the page their text is on (pages are split
by form feeds; an empty page still counts), a table's the rows under a repeated
header (a quoted cell spanning lines stays in its row), a workbook's the sheet
and rows, Markdown's the section (not a ``#`` line in fenced code), a long text
file's the lines, with a short overlap between neighbours; a short file is one
passage whole, metadata fields become passages naming the fields, and no
passage outgrows what the model reads.
"""

from __future__ import annotations

from labmesh_dagster.core.passages import LocationKind, PassageLocation
from labmesh_dagster.semantic.chunking import MAX_WORDS, chunk_file, word_count


def test_a_pdf_passage_names_the_page_its_text_is_on() -> None:
    text = "ELISA SOP A. Lab\nCoat the plate with antibody overnight.\fWash three times.\f\fRead the plate at 450 nm."

    passages = chunk_file("raw/EXP-1/sop.pdf", fmt="pdf", text=text, metadata={"pages": 4})

    assert [(p.location.describe(), p.text) for p in passages] == [
        ("page 1", "ELISA SOP A. Lab\nCoat the plate with antibody overnight."),
        ("page 2", "Wash three times."),
        ("page 4", "Read the plate at 450 nm."),
    ]
    assert [p.id for p in passages] == ["raw/EXP-1/sop.pdf#0", "raw/EXP-1/sop.pdf#1", "raw/EXP-1/sop.pdf#2"]


def test_a_pdf_extracted_before_pages_were_marked_says_which_pages_it_came_from() -> None:
    passages = chunk_file("raw/EXP-1/old.pdf", fmt="pdf", text="Coat the plate. Wash it.", metadata={"pages": 9})

    assert [p.location for p in passages] == [PassageLocation(LocationKind.PAGE, 1, 5)]


def test_a_table_passage_names_its_rows_and_repeats_the_header() -> None:
    rows = [f"LIV-{n:02d},{n * 1.5},liver tissue lysed in RIPA buffer and stored at minus eighty" for n in range(1, 41)]
    rows[2] = 'LIV-03,4.5,"a note\nover two lines"'
    text = "sample,concentration,notes\n" + "\n".join(rows) + "\n"

    passages = chunk_file("raw/EXP-1/samples.csv", fmt="csv", text=text, metadata={"delimiter": ","})

    assert len(passages) > 1
    assert all(p.text.startswith("sample,concentration,notes\n") for p in passages)
    assert passages[0].location.kind is LocationKind.ROWS
    assert (passages[0].location.start, passages[-1].location.end) == (1, 40)
    for before, after in zip(passages, passages[1:], strict=False):
        assert after.location.start == (before.location.end or 0) + 1  # rows are not repeated, the header is
    assert 'LIV-03,4.5,"a note\nover two lines"' in passages[0].text
    last_row = passages[0].location.end
    assert last_row is not None
    assert f"LIV-{last_row:02d}," in passages[0].text
    assert f"LIV-{last_row + 1:02d}," not in passages[0].text


def test_a_workbook_passage_names_its_sheet_and_rows() -> None:
    text = "[Plate 1]\nwell\tod450\nA1\t0.51\nA2\t0.73\n[Notes]\nnote\nreader warmed up for 10 min\n"

    passages = chunk_file("raw/EXP-1/plate.xlsx", fmt="xlsx", text=text)

    assert [(p.location, p.text) for p in passages] == [
        (PassageLocation(LocationKind.ROWS, 1, 2, "Plate 1"), "well\tod450\nA1\t0.51\nA2\t0.73"),
        (PassageLocation(LocationKind.ROWS, 1, 1, "Notes"), "note\nreader warmed up for 10 min"),
    ]


def test_a_markdown_passage_names_its_section() -> None:
    methods = " ".join(f"Step {n}: the liver tissue was homogenised in cold buffer." for n in range(25))
    text = (
        "# Liver study\n\nWhy we looked at the liver.\n\n## Methods\n"
        f"{methods}\n\n```\n# not a heading\n```\n\nResults\n=======\n\nThe Q30 was 92 percent.\n"
    )

    passages = chunk_file("raw/EXP-1/notes.md", fmt="md", text=text)

    labels = [p.location.label for p in passages]
    assert labels[0] == "Liver study"
    assert labels[-1] == "Results"
    assert set(labels) == {"Liver study", "Methods", "Results"}
    assert passages[-1].location.describe() == 'section "Results"'
    assert "The Q30 was 92 percent." in passages[-1].text
    assert any("# not a heading" in p.text and p.location.label == "Methods" for p in passages)
    assert passages[-1].location.start == 12  # the setext heading's own line


def test_a_long_text_file_is_cut_by_lines_with_a_short_overlap() -> None:
    text = "\n".join(f"{n:02d} the sequencer reported cluster density and phasing for tile {n}" for n in range(1, 61))

    passages = chunk_file("raw/EXP-1/run.log", fmt="text", text=text)

    assert len(passages) > 2
    assert passages[0].location.start == 1 and passages[-1].location.end == 60
    for before, after in zip(passages, passages[1:], strict=False):
        assert after.location.start == before.location.end  # the last line is read again: it overlaps
    assert all(word_count(p.text) <= MAX_WORDS for p in passages)


def test_a_short_file_is_one_passage_whole_and_its_fields_follow() -> None:
    fields = [
        ("pages", "pages: 3"),
        ("title", "title: ELISA plate reader SOP"),
        ("columns", "columns: " + ", ".join(f"column {n}" for n in range(120))),
    ]

    passages = chunk_file("raw/EXP-1/readme.txt", fmt="text", text="Plates are read at 450 nm.\n", fields=fields)

    assert [(p.location.describe(), p.text) for p in passages[:2]] == [
        ("whole file", "Plates are read at 450 nm."),
        ("field pages, title", "pages: 3\ntitle: ELISA plate reader SOP"),
    ]
    assert {p.location.label for p in passages[2:]} == {"columns"}
    assert all(word_count(p.text) <= MAX_WORDS for p in passages)
    assert [p.ordinal for p in passages] == list(range(len(passages)))


def test_a_file_with_neither_text_nor_fields_has_no_passage() -> None:
    assert chunk_file("raw/EXP-1/blank.txt", fmt="text", text="  \n") == []
