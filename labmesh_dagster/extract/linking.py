"""Links between the files of one dataset: read pairs, and FASTQ files to their Illumina run and sample sheet.

Each file is extracted alone, but a sequencing run is a set of files that
only make sense together: ``S1_L001_R1_001.fastq.gz`` has a mate, was written
by the run that ``RunInfo.xml`` describes, and belongs to the sample that
``SampleSheet.csv`` lists. Linking reads only the metadata extraction already
produced, so a dataset is linked again, cheaply, every time it is described,
and a file added later joins its run without anything being re-read.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_LINKED_FILES = 500
"""Most FASTQ keys listed on a run or a sample sheet; a NovaSeq run can have thousands."""

_READ_TOKEN = re.compile(r"(?<=[._-])(R?)([12])(?=[._-])")
"""The read number in a file name: ``_R1_``, ``_R2.``, ``.1.`` or ``_2.`` (the last such token counts)."""

_BCL_CONVERT_NAME = re.compile(r"^(?P<sample>.+?)_S(?P<number>\d+)(?:_L(?P<lane>\d{3}))?_[RI]\d_\d{3}\.f(?:ast)?q")
"""bcl2fastq / BCL Convert output names: ``<Sample>_S<n>[_L<lane>]_R<read>_001.fastq.gz``."""


@dataclass(frozen=True)
class DescribedFile:
    """What linking needs of one file: its key, its format and the metadata its extraction gave."""

    key: str
    format: str
    metadata: Mapping[str, Any]


@dataclass
class _Links:
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, key: str, **links: Any) -> None:
        self.values.setdefault(key, {}).update(links)


def _base_format(fmt: str) -> str:
    return fmt.split(".", 1)[0]


def _read_token(name: str) -> tuple[int, int, str] | None:
    """(position, read number, prefix) of the read-number token in a file name, or None."""
    matches = list(_READ_TOKEN.finditer(name))
    if not matches:
        return None
    last = matches[-1]
    return last.start(), int(last.group(2)), last.group(1)


def read_number(key: str, metadata: Mapping[str, Any]) -> int | None:
    """Read 1 or 2 of a pair: from the read names when they say, else from the file name."""
    from_names = (metadata.get("read_name") or {}).get("read")
    if from_names in (1, 2):
        return int(from_names)
    token = _read_token(posixpath.basename(key))
    return token[1] if token else None


def mate_key(key: str) -> str | None:
    """The key the other read of the pair would have: the read-number token swapped (R1 <-> R2)."""
    directory, name = posixpath.split(key)
    token = _read_token(name)
    if token is None:
        return None
    position, number, prefix = token
    swapped = name[:position] + prefix + str(3 - number) + name[position + len(prefix) + 1 :]
    return posixpath.join(directory, swapped) if directory else swapped


def _read_stem(name: str | None) -> str | None:
    """A read name without its comment and ``/1`` ``/2`` suffix: what both mates share."""
    if not name:
        return None
    stem = name.split()[0]
    return stem[:-2] if stem.endswith(("/1", "/2")) else stem


def _pair_problem(first: Mapping[str, Any], second: Mapping[str, Any]) -> str | None:
    """Why two FASTQ files cannot be mates, or None when their counts and first read names agree."""
    if first.get("reads") != second.get("reads"):
        return f"read counts differ ({first.get('reads')} and {second.get('reads')})"
    if _read_stem(first.get("first_read")) != _read_stem(second.get("first_read")):
        return "their first reads have different names"
    return None


def _link_pairs(fastqs: Mapping[str, DescribedFile], links: _Links) -> None:
    for key, file in fastqs.items():
        number = read_number(key, file.metadata)
        mate = mate_key(key)
        if number is None or mate is None or mate not in fastqs or mate == key:
            continue
        if "reads" not in file.metadata or "reads" not in fastqs[mate].metadata:
            # A file that could not be read whole cannot vouch for its mate: say nothing either way.
            links.add(key, read=number, mate=mate, pair_consistent=None)
            continue
        problem = _pair_problem(file.metadata, fastqs[mate].metadata)
        links.add(key, read=number, mate=mate, pair_consistent=problem is None)
        if problem:
            links.add(key, pair_problem=problem)


def _flowcell_of(metadata: Mapping[str, Any]) -> str | None:
    flowcell = (metadata.get("read_name") or {}).get("flowcell")
    return str(flowcell) if flowcell else None


def _same_flowcell(a: str, b: str) -> bool:
    """Flowcell ids as RunInfo and read names write them (some prefix the side, ``A``/``B``, or not)."""
    a, b = a.upper(), b.upper()
    return a == b or a.endswith(b) or b.endswith(a)


def _link_runs(runs: Sequence[DescribedFile], fastqs: Mapping[str, DescribedFile], links: _Links) -> None:
    for run in runs:
        flowcell = run.metadata.get("flowcell")
        if not flowcell:
            continue
        members = []
        for key, file in fastqs.items():
            read_flowcell = _flowcell_of(file.metadata)
            if read_flowcell and _same_flowcell(str(flowcell), read_flowcell):
                links.add(key, run=run.key, run_id=run.metadata.get("run_id"))
                members.append(key)
        if members:
            links.add(run.key, fastq_files=sorted(members)[:MAX_LINKED_FILES], fastq_file_count=len(members))


def _sheet_samples(sheet: DescribedFile) -> dict[str, Mapping[str, Any]]:
    """The sheet's samples by every name a FASTQ file may carry: Sample_ID and Sample_Name."""
    by_name: dict[str, Mapping[str, Any]] = {}
    for sample in sheet.metadata.get("samples") or []:
        if not isinstance(sample, Mapping):
            continue
        for field_name in ("sample_id", "sample_name"):
            value = sample.get(field_name)
            if value:
                by_name.setdefault(str(value), sample)
    return by_name


def _distance(sheet_key: str, file_key: str) -> int | None:
    """How many folders up from the FASTQ the sheet sits, or None when it is not in one of its ancestors."""
    sheet_dir, file_dir = posixpath.dirname(sheet_key), posixpath.dirname(file_key)
    if sheet_dir and file_dir != sheet_dir and not file_dir.startswith(sheet_dir + "/"):
        return None
    return file_dir.count("/") - sheet_dir.count("/") if sheet_dir else file_dir.count("/") + 1


def _link_sample_sheets(sheets: Sequence[DescribedFile], fastqs: Mapping[str, DescribedFile], links: _Links) -> None:
    indexed = [(sheet, _sheet_samples(sheet)) for sheet in sheets]
    members: dict[str, list[str]] = {}
    for key, _file in fastqs.items():
        match = _BCL_CONVERT_NAME.match(posixpath.basename(key))
        if match is None:
            continue
        candidates = []
        for sheet, samples in indexed:
            sample = samples.get(match["sample"])
            distance = _distance(sheet.key, key)
            if sample is not None and distance is not None:
                candidates.append((distance, sheet.key, sample))
        if not candidates:
            continue
        _, sheet_key, sample = min(candidates, key=lambda candidate: (candidate[0], candidate[1]))
        links.add(key, sample_sheet=sheet_key, sample_id=sample.get("sample_id") or match["sample"])
        if sample.get("project"):
            links.add(key, project=sample["project"])
        members.setdefault(sheet_key, []).append(key)
    for sheet_key, keys in members.items():
        links.add(sheet_key, fastq_files=sorted(keys)[:MAX_LINKED_FILES], fastq_file_count=len(keys))


def link_files(files: Sequence[DescribedFile]) -> dict[str, dict[str, Any]]:
    """The links of each file that has any: key -> {mate, read, pair_consistent, run, sample_sheet, ...}."""
    fastqs = {file.key: file for file in files if _base_format(file.format) == "fastq"}
    runs = [file for file in files if file.format == "illumina_runinfo"]
    sheets = [file for file in files if file.format == "illumina_samplesheet"]
    links = _Links()
    _link_pairs(fastqs, links)
    _link_runs(runs, fastqs, links)
    _link_sample_sheets(sheets, fastqs, links)
    return links.values
