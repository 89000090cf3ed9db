"""Documents (text, Markdown, YAML, JSON, XML and HTML) are summarised for the content index.

Each file is written here, streamed to ``extract`` through a one-way stream,
and spoiled the ways such files break: cut off, malformed, hostile.
"""

from __future__ import annotations

import io
import itertools
import json

from labmesh_dagster.extract.base import Deadline, FileContext
from labmesh_dagster.extract.documents import extract_text, extract_xml
from labmesh_dagster_tests.extract.test_registry import extract_bytes

# --- plain text -------------------------------------------------------------


def test_a_character_split_between_two_reads_is_still_valid_utf8() -> None:
    content = ("a" * (1024 * 1024 - 1) + "é\n").encode()
    extraction = extract_bytes(content, "notes.txt")
    assert extraction.error is None
    assert extraction.metadata == {"lines": 1, "encoding": "utf-8"}


def test_a_text_file_cut_inside_a_character_is_not_utf8_at_its_end() -> None:
    extraction = extract_bytes("line\nZentrifuge 4 °".encode()[:-1], "notes.txt")
    assert extraction.error is not None and extraction.error.reason == "not_utf8"
    assert "cut off at byte" in extraction.error.detail


# --- Markdown ---------------------------------------------------------------

PROTOCOL = """# ELISA protocol

Coat the plate overnight.

## Reagents

```bash
# not a heading: a comment in a code block
echo wash
```

Blocking
--------

### Wash steps
"""


def test_markdown_gets_its_title_and_headings_but_not_comments_in_code() -> None:
    extraction = extract_bytes(PROTOCOL.encode(), "protocol.md")
    assert extraction.format == "md"
    assert extraction.metadata == {
        "lines": PROTOCOL.count("\n"),
        "encoding": "utf-8",
        "title": "ELISA protocol",
        "headings": [
            {"level": 1, "text": "ELISA protocol"},
            {"level": 2, "text": "Reagents"},
            {"level": 2, "text": "Blocking"},
            {"level": 3, "text": "Wash steps"},
        ],
    }
    assert extraction.text == PROTOCOL


def test_a_front_matter_title_wins_over_the_first_heading() -> None:
    content = "---\ntitle: Plate layout v2\nauthor: A. Lab\ntags: [elisa]\n---\n# Layout\n\nText.\n"
    metadata = extract_bytes(content.encode(), "layout.md").metadata
    assert metadata["title"] == "Plate layout v2"
    assert metadata["front_matter_keys"] == ["title", "author", "tags"]
    assert metadata["headings"] == [{"level": 1, "text": "Layout"}]


def test_markdown_without_headings_has_no_title() -> None:
    metadata = extract_bytes(b"Just a note.\n\n- one\n- two\n", "note.md").metadata
    assert metadata == {"lines": 4, "encoding": "utf-8"}


def test_markdown_that_is_not_utf8_is_not_utf8() -> None:
    extraction = extract_bytes(b"# Caf\xe9\n", "notes.md")
    assert extraction.error is not None and extraction.error.reason == "not_utf8"


# --- YAML and JSON ----------------------------------------------------------


def test_a_yaml_mapping_gets_its_keys_and_its_own_title_name_and_description() -> None:
    content = b"title: NovaSeq run 42\nname: run42\ndescription: HeLa RNA-seq\nlanes: [1, 2]\ndate: 2024-05-01\n"
    extraction = extract_bytes(content, "run.yaml")
    assert extraction.format == "yaml"
    assert extraction.metadata == {
        "parsed": True,
        "type": "object",
        "keys": ["title", "name", "description", "lanes", "date"],
        "key_count": 5,
        "title": "NovaSeq run 42",
        "name": "run42",
        "description": "HeLa RNA-seq",
    }
    assert extraction.text == content.decode()


def test_a_yaml_list_gets_its_length() -> None:
    assert extract_bytes(b"- a\n- b\n- c\n", "samples.yml").metadata == {"parsed": True, "type": "array", "length": 3}


def test_a_yaml_stream_of_documents_is_described_by_its_first_and_counted() -> None:
    metadata = extract_bytes(b"name: first\n---\nname: second\n---\n- x\n", "multi.yaml").metadata
    assert (metadata["name"], metadata["documents"]) == ("first", 3)


def test_malformed_yaml_is_bad_format_with_its_line() -> None:
    extraction = extract_bytes(b"instrument: x\nlanes: [1, 2\nsamples: 3\n", "run.yaml")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert "line 3" in extraction.error.detail


def test_yaml_asking_for_python_objects_is_refused_not_run() -> None:
    extraction = extract_bytes(b"x: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "evil.yaml")
    assert extraction.error is not None and extraction.error.reason == "bad_format"


def test_yaml_over_the_parse_limit_is_not_parsed_but_read_to_the_end() -> None:
    big = b"values:\n" + b"  - 1234567\n" * (9 * 1024 * 1024 // 12)
    assert extract_bytes(big, "big.yaml").metadata == {"parsed": False}


def test_a_json_document_reports_its_own_title() -> None:
    document = {"title": "Growth curve", "wells": 96}
    metadata = extract_bytes(json.dumps(document).encode(), "curve.json").metadata
    assert metadata == {
        "parsed": True,
        "type": "object",
        "keys": ["title", "wells"],
        "key_count": 2,
        "title": "Growth curve",
    }


# --- XML --------------------------------------------------------------------

PLATE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by the plate reader -->
<pr:PlateRun xmlns:pr="urn:example:platereader:1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
             version="2.1" xsi:schemaLocation="urn:example:platereader:1 plate.xsd">
  <pr:Protocol>Absorbance 450 nm</pr:Protocol>
  <pr:Wells>
    <pr:Well id="A1">0.412</pr:Well>
    <pr:Well id="A2">0.020</pr:Well>
  </pr:Wells>
</pr:PlateRun>
"""


def test_an_xml_document_gets_its_root_namespace_elements_and_text() -> None:
    extraction = extract_bytes(PLATE_XML.encode(), "run.xml")
    assert extraction.format == "xml"
    assert extraction.metadata == {
        "root": "PlateRun",
        "namespace": "urn:example:platereader:1",
        "namespaces": {"pr": "urn:example:platereader:1", "xsi": "http://www.w3.org/2001/XMLSchema-instance"},
        "root_attributes": {"version": "2.1", "schemaLocation": "urn:example:platereader:1 plate.xsd"},
        "elements": 5,
        "max_depth": 3,
    }
    assert extraction.text == "Absorbance 450 nm 0.412 0.020"


def test_a_large_xml_is_read_to_its_end_with_the_text_kept_short() -> None:
    rows = "".join(f"<row n='{n}'>value {n}</row>" for n in range(50_000))
    extraction = extract_bytes(f"<table>{rows}</table>".encode(), "big.xml")
    assert extraction.metadata["elements"] == 50_001
    assert extraction.text.startswith("value 0 value 1 ")
    assert len(extraction.text) <= 2000


def test_a_truncated_xml_is_truncated() -> None:
    data = PLATE_XML.encode()
    extraction = extract_bytes(data[: data.index(b"A2")], "run.xml")
    assert extraction.error is not None
    assert (extraction.error.reason, extraction.error.name) == ("truncated", "run.xml")


def test_an_xml_with_a_mismatched_tag_is_bad_format_with_the_elements_before_it() -> None:
    broken = PLATE_XML.replace("</pr:Protocol>", "</pr:Protocl>").encode()
    extraction = extract_bytes(broken, "run.xml")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert "mismatched tag: line 5" in extraction.error.detail
    assert extraction.metadata == {"elements_before_error": 2}


def test_an_entity_expansion_bomb_is_refused_without_expanding_it() -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{n} "{f"&a{n - 1};" * 10}">' for n in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE bomb [{entities}]><bomb>&a9;</bomb>'.encode()
    extraction = extract_bytes(bomb, "bomb.xml")
    assert extraction.error is not None and extraction.error.reason == "bad_format"


def test_a_text_file_that_runs_out_of_time_reports_the_lines_counted_so_far() -> None:
    data = b"a line of a long log\n" * 200_000
    ticks = itertools.count(0.0, 1.0)
    ctx = FileContext(name="long.log", deadline=Deadline(1.5, clock=lambda: next(ticks)))
    summary = extract_text(io.BytesIO(data), ctx)  # type: ignore[arg-type]
    assert ctx.partial_reason == "time_budget"
    assert 0 < summary.metadata["lines"] < 200_000


def test_an_xml_that_runs_out_of_time_reports_the_elements_read_so_far() -> None:
    data = b"<table>" + b"<row>value</row>" * 200_000 + b"</table>"
    ticks = itertools.count(0.0, 1.0)
    ctx = FileContext(name="big.xml", deadline=Deadline(1.5, clock=lambda: next(ticks)))
    summary = extract_xml(io.BytesIO(data), ctx)  # type: ignore[arg-type]
    assert ctx.partial_reason == "time_budget"
    assert 0 < summary.metadata["elements_read"] < 200_001
    assert "elements" not in summary.metadata


# --- HTML (tools' reports) --------------------------------------------------

FASTP_LIKE_REPORT = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fastp report: S1</title>
<style>body { font-family: sans-serif }</style>
<script>var data = {"reads": [1, 2, 3]}; function plot() { return "never indexed"; }</script></head>
<body><h1>fastp report</h1><table><tr><td>total reads:</td><td>2.000 M</td></tr>
<tr><td>Q30 bases:</td><td>91.2%</td></tr></table><br>
<p>An unclosed paragraph &amp; an entity
</body></html>
"""


def test_a_tools_html_report_gives_its_title_and_visible_text_never_its_scripts() -> None:
    extraction = extract_bytes(FASTP_LIKE_REPORT.encode(), "S1.fastp.html")
    assert extraction.error is None and extraction.format == "html"
    assert extraction.metadata["title"] == "fastp report: S1"
    assert extraction.text == (
        "fastp report: S1 fastp report total reads: 2.000 M Q30 bases: 91.2% An unclosed paragraph & an entity"
    )


def test_html_is_known_by_its_root_whatever_its_name_and_by_its_suffix_when_it_is_not_xml_shaped() -> None:
    assert extract_bytes(FASTP_LIKE_REPORT.encode(), "report").format == "html"
    assert extract_bytes(b"plain words, no tags\n", "notes.html").format == "html"


def test_a_large_html_report_is_read_to_its_end_with_the_text_kept_short() -> None:
    script = "<script>" + "x" * (3 * 1024 * 1024) + "</script>"
    rows = "".join(f"<p>row {n}</p>" for n in range(20_000))
    extraction = extract_bytes(f"<html><body>{script}{rows}</body></html>".encode(), "multiqc_report.html")
    assert extraction.error is None
    assert extraction.metadata["elements"] == 20_003
    assert extraction.text.startswith("row 0 row 1 ") and len(extraction.text) <= 2000
