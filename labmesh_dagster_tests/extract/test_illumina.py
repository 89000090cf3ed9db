"""Illumina run folder files give the keys that link reads to their run and their sample.

Pinned here: RunInfo.xml of MiSeq, HiSeq, NextSeq, NovaSeq 6000, NovaSeq X
and iSeq (schema versions 2, 5 and 6) gives run id, run number, flowcell and
instrument as a FASTQ read name from that run spells them, a date in ISO 8601
whatever the instrument wrote, reads and flowcell layout; RunParameters.xml of
three generations gives what each holds and nothing it does not; sample
sheets v1 and v2 give samples with lane, indexes and project (v2 joins the
project from ``[Cloud_Data]``), capped; broken, foreign, oversized and
entity-bomb XML, and a sheet without samples, are handled as the module says.
Every file goes through ``extract`` from a one-way stream.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from labmesh_dagster.extract import Extraction
from labmesh_dagster.extract.base import MAX_SAMPLES
from labmesh_dagster.extract.illumina import SAMPLE_SHEET_LIMIT, XML_LIMIT, iso_date, read_sample_sheet
from labmesh_dagster_tests.extract.test_registry import extract_bytes

DATA = Path(__file__).parent.parent / "data" / "illumina"

RUNINFO_FILES = [
    "miseq_RunInfo.xml",
    "hiseq2500_RunInfo.xml",
    "nextseq500_RunInfo.xml",
    "novaseq6000_RunInfo.xml",
    "novaseqx_RunInfo.xml",
    "iseq100_RunInfo.xml",
]


def extract_file(name: str, as_name: str) -> Extraction:
    extraction = extract_bytes((DATA / name).read_bytes(), as_name)
    assert extraction.error is None, extraction.error
    return extraction


def assert_failed(extraction: Extraction, reason: str, name: str) -> str:
    assert extraction.error is not None, extraction
    assert (extraction.error.reason, extraction.error.name) == (reason, name)
    return extraction.error.detail


# RunInfo.xml ------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNINFO_FILES)
def test_runinfo_keys_agree_with_the_run_folder_name_they_come_from(name: str) -> None:
    extraction = extract_file(name, "run/RunInfo.xml")
    metadata = extraction.metadata
    assert extraction.format == "illumina_runinfo"
    _date, instrument, number, flowcell_part = metadata["run_id"].split("_", 3)
    assert metadata["instrument"] == instrument
    assert metadata["run_number"] == int(number)
    assert flowcell_part.endswith(metadata["flowcell"])
    assert metadata["date"][:10].replace("-", "")[-6:] == _date[-6:]
    assert metadata["lane_count"] >= 1
    assert [read["number"] for read in metadata["reads"]] == list(range(1, len(metadata["reads"]) + 1))
    assert metadata["run_id"] in extraction.text and metadata["flowcell"] in extraction.text


def test_a_fastq_read_name_from_the_run_links_to_its_runinfo_by_instrument_run_number_and_flowcell() -> None:
    metadata = extract_file("novaseq6000_RunInfo.xml", "RunInfo.xml").metadata
    read_name = "@A00987:45:HKTGFDSXX:2:1101:10004:1000 1:N:0:TAAGGCGA+CTCTCTAT"
    instrument, run_number, flowcell = read_name[1:].split(":")[:3]
    assert (metadata["instrument"], metadata["run_number"], metadata["flowcell"]) == (
        instrument,
        int(run_number),
        flowcell,
    )


def test_a_miseq_runinfo_v2_is_summarised_in_full() -> None:
    extraction = extract_file("miseq_RunInfo.xml", "RunInfo.xml")
    assert extraction.metadata == {
        "schema_version": 2,
        "run_id": "160805_M04321_0123_000000000-AUVNA",
        "run_number": 123,
        "flowcell": "000000000-AUVNA",
        "instrument": "M04321",
        "platform": "MiSeq",
        "date": "2016-08-05",
        "date_raw": "160805",
        "reads": [
            {"number": 1, "cycles": 151, "is_indexed": False},
            {"number": 2, "cycles": 8, "is_indexed": True},
            {"number": 3, "cycles": 8, "is_indexed": True},
            {"number": 4, "cycles": 151, "is_indexed": False},
        ],
        "read_structure": "151T8B8B151T",
        "lane_count": 1,
        "surface_count": 2,
        "swath_count": 1,
        "tile_count": 19,
    }
    assert extraction.text == (
        "Illumina RunInfo 160805_M04321_0123_000000000-AUVNA: instrument M04321, platform MiSeq, run 123, "
        "flowcell 000000000-AUVNA, date 2016-08-05, reads 151T8B8B151T, lanes 1"
    )


def test_novaseq_x_runinfo_v6_keeps_the_reverse_complement_flag_and_its_utc_date() -> None:
    metadata = extract_file("novaseqx_RunInfo.xml", "RunInfo.xml").metadata
    assert metadata["schema_version"] == 6
    assert [read["is_reverse_complement"] for read in metadata["reads"]] == [False, False, True, False]
    assert metadata["date"] == "2023-10-10T15:04:06+00:00"
    assert metadata["platform"] == "NovaSeq X"


@pytest.mark.parametrize("name", ["nextseq500_RunInfo.xml", "novaseq6000_RunInfo.xml", "novaseqx_RunInfo.xml"])
def test_listed_tiles_match_the_layout_counts(name: str) -> None:
    metadata = extract_file(name, "RunInfo.xml").metadata
    per_lane = metadata["surface_count"] * metadata["swath_count"] * metadata["tile_count"]
    assert metadata["tiles_listed"] == metadata["lane_count"] * per_lane


def test_a_gzipped_runinfo_is_read_through_the_compression() -> None:
    data = gzip.compress((DATA / "novaseq6000_RunInfo.xml").read_bytes())
    extraction = extract_bytes(data, "RunInfo.xml.gz")
    assert extraction.format == "illumina_runinfo.gz"
    assert extraction.metadata["flowcell"] == "HKTGFDSXX"


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("160805", "2016-08-05"),
        ("20160805", "2016-08-05"),
        ("3/9/2017", "2017-03-09"),
        ("1/15/2019 3:04:56 PM", "2019-01-15T15:04:56"),
        ("1/15/2019 3:04:56 AM", "2019-01-15T03:04:56"),
        ("12/13/2018 15:04:56", "2018-12-13T15:04:56"),
        ("2023-10-10T15:04:06Z", "2023-10-10T15:04:06+00:00"),
        ("2016-08-05", "2016-08-05"),
        ("25/08/2016", "2016-08-25"),
        ("05.08.2016", "2016-08-05"),
        ("last Tuesday", None),
        ("", None),
    ],
)
def test_dates_as_instruments_write_them_become_iso_8601(written: str, iso: str | None) -> None:
    assert iso_date(written) == iso


def test_a_truncated_runinfo_is_bad_format_with_the_parsers_position() -> None:
    data = (DATA / "miseq_RunInfo.xml").read_bytes()
    extraction = extract_bytes(data[: len(data) // 2], "RunInfo.xml")
    detail = assert_failed(extraction, "bad_format", "RunInfo.xml")
    assert detail.startswith("broken XML:") and "line" in detail


def test_xml_that_is_not_runinfo_is_named_by_its_root_element() -> None:
    data = (DATA / "miseq_RunParameters.xml").read_bytes()
    extraction = extract_bytes(data, "RunInfo.xml")
    assert extraction.format == "illumina_runinfo"
    assert "<RunParameters>" in assert_failed(extraction, "bad_format", "RunInfo.xml")


def test_a_runinfo_without_a_run_is_bad_format() -> None:
    extraction = extract_bytes(b'<?xml version="1.0"?>\n<RunInfo Version="2"></RunInfo>\n', "RunInfo.xml")
    assert "<Run>" in assert_failed(extraction, "bad_format", "RunInfo.xml")


def test_an_entity_expansion_bomb_is_refused_quickly() -> None:
    entities = '<!ENTITY a0 "dha">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE RunInfo [{entities}]><RunInfo><Run Id="&a9;"/></RunInfo>'
    extraction = extract_bytes(bomb.encode(), "RunInfo.xml")
    assert "amplification" in assert_failed(extraction, "bad_format", "RunInfo.xml")


def test_an_external_entity_is_never_read() -> None:
    document = (
        '<?xml version="1.0"?><!DOCTYPE RunInfo [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        '<RunInfo Version="2"><Run Id="r" Number="1"><Flowcell>&x;</Flowcell></Run></RunInfo>'
    )
    extraction = extract_bytes(document.encode(), "RunInfo.xml")
    assert "undefined entity &x;" in assert_failed(extraction, "bad_format", "RunInfo.xml")
    assert extraction.metadata == {}


def test_xml_over_the_size_limit_is_too_large() -> None:
    padding = b"<!-- " + b"x" * (XML_LIMIT + 1) + b" -->"
    data = b'<?xml version="1.0"?>\n<RunInfo Version="2">' + padding + b"</RunInfo>"
    extraction = extract_bytes(data, "RunInfo.xml")
    assert_failed(extraction, "too_large", "RunInfo.xml")


# RunParameters.xml ------------------------------------------------------------


def test_miseq_runparameters_give_software_kit_and_folders_from_their_setup_shape() -> None:
    extraction = extract_file("miseq_RunParameters.xml", "RunParameters.xml")
    assert extraction.format == "illumina_runparameters"
    assert extraction.metadata == {
        "root": "RunParameters",
        "run_parameters_version": "MiSeq_1_1",
        "application_name": "MiSeq Control Software",
        "application_version": "2.6.2.1",
        "instrument": "M04321",
        "platform": "MiSeq",
        "run_id": "160805_M04321_0123_000000000-AUVNA",
        "run_number": 123,
        "experiment_name": "Amplicon16S_run42",
        "flowcell": "000000000-AUVNA",
        "chemistry": "Amplicon",
        "reagent_kit_version": "Version3",
        "reagent_kit_serial": "MS4335123-600V3",
        "rta_version": "1.18.54",
        "run_start_date": "2016-08-05",
        "run_start_date_raw": "160805",
        "output_folder": r"\\seqstore\MiSeqOutput\160805_M04321_0123_000000000-AUVNA",
    }
    assert "MiSeq Control Software" in extraction.text


def test_novaseq_6000_runparameters_give_the_flowcell_mode_from_their_rfids() -> None:
    metadata = extract_file("novaseq6000_RunParameters.xml", "RunParameters.xml").metadata
    assert metadata["application_name"] == "NovaSeq Control Software"
    assert (metadata["flowcell"], metadata["flowcell_mode"]) == ("HKTGFDSXX", "S4")
    assert (metadata["instrument"], metadata["run_number"], metadata["rta_version"]) == ("A00987", 45, "v3.4.4")
    assert "chemistry" not in metadata and "reagent_kit_version" not in metadata


def test_novaseq_x_runparameters_give_flowcell_and_reagents_from_their_consumables() -> None:
    metadata = extract_file("novaseqx_RunParameters.xml", "RunParameters.xml").metadata
    assert metadata["instrument_type"] == "NovaSeqXPlus"
    assert (metadata["flowcell"], metadata["flowcell_mode"]) == ("22FKJ5LT3", "10B")
    assert (metadata["reagent_kit_serial"], metadata["reagent_kit_mode"]) == ("LC5678901-300C", "300c")
    assert (metadata["instrument"], metadata["run_number"]) == ("LH00123", 45)
    assert metadata["run_start_date"] == "2023-10-10T15:04:06+00:00"


def test_runparameters_of_an_unknown_shape_give_what_is_found_and_the_root() -> None:
    document = (
        b"<InstrumentSettings><Experiment><ExperimentName>pilot</ExperimentName></Experiment></InstrumentSettings>"
    )
    extraction = extract_bytes(document, "RunParameters.xml")
    assert extraction.error is None
    assert extraction.metadata == {"root": "InstrumentSettings", "experiment_name": "pilot"}


def test_broken_runparameters_are_bad_format() -> None:
    extraction = extract_bytes(b"<RunParameters><Setup><ApplicationName>MCS</Setup>", "RunParameters.xml")
    assert "mismatched tag" in assert_failed(extraction, "bad_format", "RunParameters.xml")


# Sample sheets ----------------------------------------------------------------


def test_a_v1_sample_sheet_gives_header_reads_and_samples_with_indexes_and_projects() -> None:
    extraction = extract_file("SampleSheet_v1_miseq.csv", "SampleSheet.csv")
    metadata = extraction.metadata
    assert extraction.format == "illumina_samplesheet"
    assert (metadata["version"], metadata["data_section"], metadata["encoding"]) == (1, "Data", "utf-8")
    assert metadata["sections"] == ["Header", "Reads", "Settings", "Data"]
    assert (metadata["experiment_name"], metadata["date"], metadata["workflow"]) == (
        "Amplicon16S_run42",
        "2016-08-05",
        "GenerateFASTQ",
    )
    assert metadata["header"]["IEMFileVersion"] == "4"
    assert metadata["reads"] == [{"name": "Read1", "cycles": 151}, {"name": "Read2", "cycles": 151}]
    assert metadata["samples"][3] == {
        "sample_id": "NTC-1",
        "sample_name": "water_blank",
        "lane": None,
        "index": "TCCTGAGC",
        "index2": "CTCTCTAT",
        "project": "Controls",
    }
    assert (metadata["sample_rows"], metadata["sample_count"]) == (4, 4)
    assert metadata["projects"] == ["SoilMicrobiome", "Controls"]
    assert metadata["lanes"] == []
    assert metadata["index_lengths"] == {"index": [8], "index2": [8]}
    assert extraction.samples == ("S-001", "S-002", "S-003", "NTC-1")
    assert "warnings" not in metadata


def test_a_v2_sample_sheet_joins_projects_from_cloud_data_and_lists_each_lane() -> None:
    extraction = extract_file("SampleSheet_v2_novaseqx.csv", "SampleSheet.csv")
    metadata = extraction.metadata
    assert (metadata["version"], metadata["data_section"]) == (2, "BCLConvert_Data")
    assert (metadata["run_name"], metadata["instrument_type"]) == ("Tumour_normal_pairs_Oct", "NovaSeqXPlus")
    assert [read["name"] for read in metadata["reads"]] == ["Read1", "Read2", "Index1", "Index2"]
    assert (metadata["sample_rows"], metadata["sample_count"]) == (6, 4)
    assert metadata["lanes"] == [1, 2, 3]
    assert metadata["samples"][0] == {
        "sample_id": "TN-01-T",
        "sample_name": None,
        "lane": 1,
        "index": "GTCGGAGCTT",
        "index2": "AGCCTCATGA",
        "project": "Oncology_TN",
    }
    assert metadata["samples"][-1]["project"] == "Germline_Ctrl"
    assert metadata["projects"] == ["Oncology_TN", "Germline_Ctrl"]
    assert metadata["index_lengths"] == {"index": [10], "index2": [10]}
    assert extraction.samples == ("TN-01-T", "TN-01-N", "TN-02-T", "TN-02-N")


def test_a_sample_sheet_without_a_data_section_has_no_samples_and_says_so() -> None:
    data = b"[Header]\nFileFormatVersion,2\nRunName,dry_run\n\n[Reads]\nRead1Cycles,51\n"
    extraction = extract_bytes(data, "SampleSheet.csv")
    assert extraction.error is None
    metadata = extraction.metadata
    assert (metadata["data_section"], metadata["samples"], metadata["sample_count"]) == (None, [], 0)
    assert metadata["warnings"] == ["no [Data] or [BCLConvert_Data] section: the sheet names no samples"]
    assert extraction.samples == ()


def test_a_single_index_sheet_has_no_index2() -> None:
    data = b"[Header]\nIEMFileVersion,5\n[Data]\nLane,Sample_ID,index\n1,A,ACGTACGT\n2,B,TTGGCCAA\n"
    metadata = extract_bytes(data, "SampleSheet.csv").metadata
    assert [(s["lane"], s["index2"]) for s in metadata["samples"]] == [(1, None), (2, None)]
    assert metadata["index_lengths"] == {"index": [8], "index2": []}


def test_a_windows_1252_sample_sheet_is_decoded() -> None:
    text = (
        "[Header]\r\nIEMFileVersion,4\r\nInvestigator Name,José Müller\r\n"
        "[Data]\r\nSample_ID,Sample_Project\r\nS1,Übung\r\n"
    )
    extraction = extract_bytes(text.encode("cp1252"), "SampleSheet.csv")
    assert extraction.metadata["encoding"] == "cp1252"
    assert extraction.metadata["investigator"] == "José Müller"
    assert extraction.metadata["projects"] == ["Übung"]


def test_sample_rows_are_capped_while_all_are_counted() -> None:
    rows = "".join(f"{lane},S{n},ACGTACGT\n" for n in range(MAX_SAMPLES + 200) for lane in (1, 2))
    metadata = read_sample_sheet("[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nLane,Sample_ID,Index\n" + rows)
    assert len(metadata["samples"]) == MAX_SAMPLES
    assert (metadata["sample_rows"], metadata["sample_count"]) == (2 * (MAX_SAMPLES + 200), MAX_SAMPLES + 200)
    assert metadata["lanes"] == [1, 2]


def test_a_sample_sheet_over_the_size_limit_is_too_large() -> None:
    line = b"S,ACGTACGT\n"
    data = b"[Data]\nSample_ID,index\n" + line * (SAMPLE_SHEET_LIMIT // len(line) + 1)
    extraction = extract_bytes(data, "SampleSheet.csv")
    assert_failed(extraction, "too_large", "SampleSheet.csv")


def test_binary_garbage_after_a_section_header_is_bad_format() -> None:
    extraction = extract_bytes(b"[Header]\n" + bytes(range(256)) * 20, "SampleSheet.csv")
    assert extraction.format == "illumina_samplesheet"
    assert "not text" in assert_failed(extraction, "bad_format", "SampleSheet.csv")


def _samples_by_id(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {sample["sample_id"]: sample for sample in metadata["samples"]}


def test_a_v2_sheet_with_projects_in_another_apps_data_section_gets_them() -> None:
    text = (
        "[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nSample_ID,Index\nA,AAAA\nB,CCCC\n"
        "[DragenGermline_Data]\nSample_ID,ReferenceGenomeDir,Sample_Project\nA,hg38,Cardio\n"
    )
    samples = _samples_by_id(read_sample_sheet(text))
    assert (samples["A"]["project"], samples["B"]["project"]) == ("Cardio", None)
