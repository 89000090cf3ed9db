"""Files of one run are linked: read 1 to read 2, FASTQ files to their RunInfo.xml and their sample sheet.

Pinned here: mates are found by the read token of their names and judged by
their read counts and first read names; a FASTQ belongs to the run whose
flowcell its read names carry; bcl2fastq / BCL Convert names find their sample
in the nearest sample sheet above them; files with nothing to link get nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from labmesh_dagster.extract.linking import DescribedFile, link_files, mate_key, read_number


def fastq(key: str, reads: int = 100, flowcell: str = "HJK7LDSX2", read: int | None = None) -> DescribedFile:
    read_name: dict[str, Any] = {"instrument": "A00123", "run_number": 45, "flowcell": flowcell, "lane": 1}
    if read is not None:
        read_name["read"] = read
    first = f"A00123:45:{flowcell}:1:1101:1000:2000 {read or 1}:N:0:ACGT"
    return DescribedFile(key, "fastq.gz", {"reads": reads, "first_read": first, "read_name": read_name})


RUNINFO = DescribedFile("run/RunInfo.xml", "illumina_runinfo", {"flowcell": "HJK7LDSX2", "run_id": "RUN45"})
SHEET = DescribedFile(
    "run/SampleSheet.csv",
    "illumina_samplesheet",
    {"samples": [{"sample_id": "S1", "sample_name": "liver-1", "lane": 1, "project": "Liver"}]},
)


@pytest.mark.parametrize(
    ("key", "mate"),
    [
        ("run/S1_S1_L001_R1_001.fastq.gz", "run/S1_S1_L001_R2_001.fastq.gz"),
        ("reads_2.fq", "reads_1.fq"),
        ("SRR1.1.fastq", "SRR1.2.fastq"),
        ("sample.R1.fastq.gz", "sample.R2.fastq.gz"),
    ],
)
def test_the_mate_of_a_file_swaps_its_read_token(key: str, mate: str) -> None:
    assert mate_key(key) == mate


def test_a_file_without_a_read_token_has_no_mate() -> None:
    assert mate_key("run/reads.fastq.gz") is None
    assert read_number("run/reads.fastq.gz", {}) is None


def test_the_read_names_say_which_read_a_file_holds_before_its_name_does() -> None:
    assert read_number("odd_R1_name.fastq", {"read_name": {"read": 2}}) == 2


def test_mates_with_the_same_reads_are_a_consistent_pair() -> None:
    links = link_files(
        [fastq("run/S1_S1_L001_R1_001.fastq.gz", read=1), fastq("run/S1_S1_L001_R2_001.fastq.gz", read=2)]
    )
    assert links["run/S1_S1_L001_R1_001.fastq.gz"]["mate"] == "run/S1_S1_L001_R2_001.fastq.gz"
    assert links["run/S1_S1_L001_R1_001.fastq.gz"]["read"] == 1
    assert links["run/S1_S1_L001_R2_001.fastq.gz"]["read"] == 2
    assert all(link["pair_consistent"] for link in links.values())


def test_mates_whose_read_counts_differ_are_flagged_with_the_reason() -> None:
    links = link_files([fastq("a_R1.fastq", reads=100), fastq("a_R2.fastq", reads=99)])
    assert links["a_R1.fastq"]["pair_consistent"] is False
    assert "read counts differ (100 and 99)" in links["a_R1.fastq"]["pair_problem"]


def test_fastq_files_join_the_run_whose_flowcell_their_reads_name() -> None:
    files = [RUNINFO, fastq("run/S1_S1_L001_R1_001.fastq.gz"), fastq("other/x_R1.fastq.gz", flowcell="BBBBBBXX")]
    links = link_files(files)
    assert links["run/S1_S1_L001_R1_001.fastq.gz"]["run"] == "run/RunInfo.xml"
    assert links["run/S1_S1_L001_R1_001.fastq.gz"]["run_id"] == "RUN45"
    assert "run" not in links.get("other/x_R1.fastq.gz", {})
    assert links["run/RunInfo.xml"]["fastq_files"] == ["run/S1_S1_L001_R1_001.fastq.gz"]


def test_a_flowcell_written_with_its_side_letter_still_matches() -> None:
    runinfo = DescribedFile("RunInfo.xml", "illumina_runinfo", {"flowcell": "AHJK7LDSX2", "run_id": "R"})
    assert link_files([runinfo, fastq("x_R1.fq")])["x_R1.fq"]["run"] == "RunInfo.xml"


def test_bcl_convert_names_find_their_sample_by_id_or_name_in_the_sheet_above_them() -> None:
    files = [
        SHEET,
        fastq("run/fastq/S1_S1_L001_R1_001.fastq.gz"),
        fastq("run/fastq/liver-1_S1_L001_R2_001.fastq.gz"),
        fastq("elsewhere/S1_S1_L001_R1_001.fastq.gz"),
    ]
    links = link_files(files)
    for key in ("run/fastq/S1_S1_L001_R1_001.fastq.gz", "run/fastq/liver-1_S1_L001_R2_001.fastq.gz"):
        assert links[key]["sample_sheet"] == "run/SampleSheet.csv"
        assert links[key]["sample_id"] == "S1"
        assert links[key]["project"] == "Liver"
    assert "sample_sheet" not in links.get("elsewhere/S1_S1_L001_R1_001.fastq.gz", {})
    assert links["run/SampleSheet.csv"]["fastq_file_count"] == 2


def test_files_with_nothing_to_link_get_no_links() -> None:
    assert link_files([DescribedFile("notes.md", "md", {}), fastq("reads.fastq.gz")]) == {}


def test_mates_that_could_not_be_read_whole_are_linked_but_not_judged() -> None:
    broken = DescribedFile("a_R2.fastq", "fastq", {"reads_before_error": 3})
    links = link_files([fastq("a_R1.fastq"), broken])
    assert links["a_R1.fastq"]["mate"] == "a_R2.fastq"
    assert links["a_R1.fastq"]["pair_consistent"] is None
