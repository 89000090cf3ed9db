"""mzML runs are summarised from one forward pass: header facts, spectrum counts and MS levels.

The documents are written here the way ProteoWizard's msconvert writes a
Thermo Q Exactive run (parameter groups, component lists, base64 peak
arrays, an index and a SHA-1 file checksum), so the tests exercise the
structure real files have without shipping one.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import itertools
import re
import zlib
from collections.abc import Iterator

import numpy as np
import pytest

from labmesh_dagster.extract.base import Deadline, FileContext
from labmesh_dagster.extract.mzml import extract_mzml
from labmesh_dagster_tests.extract.test_registry import OneWayStream, extract_bytes

HEADER = """<?xml version="1.0" encoding="utf-8"?>
<mzML xmlns="http://psi.hupo.org/ms/mzml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      id="HeLa_QC_01" version="1.1.0">
  <cvList count="2">
    <cv id="MS" fullName="Proteomics Standards Initiative Mass Spectrometry Ontology" version="4.1.30" URI="https://raw.githubusercontent.com/HUPO-PSI/psi-ms-CV/master/psi-ms.obo"/>
    <cv id="UO" fullName="Unit Ontology" version="09:04:2014" URI="https://raw.githubusercontent.com/bio-ontology-research-group/unit-ontology/master/unit.obo"/>
  </cvList>
  <fileDescription>
    <fileContent>
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000580" name="MSn spectrum" value=""/>
    </fileContent>
    <sourceFileList count="1">
      <sourceFile id="RAW1" name="HeLa_QC_01.raw" location="file:///D:/data/2024">
        <cvParam cvRef="MS" accession="MS:1000768" name="Thermo nativeID format" value=""/>
        <cvParam cvRef="MS" accession="MS:1000563" name="Thermo RAW format" value=""/>
        <cvParam cvRef="MS" accession="MS:1000569" name="SHA-1" value="8c2e4c2e5b0e1d1bd8a5a1f2a0c9a7d3b1e4f6a2"/>
      </sourceFile>
    </sourceFileList>
  </fileDescription>
  <referenceableParamGroupList count="1">
    <referenceableParamGroup id="CommonInstrumentParams">
      <cvParam cvRef="MS" accession="MS:1001911" name="Q Exactive" value=""/>
      <cvParam cvRef="MS" accession="MS:1000529" name="instrument serial number" value="Exactive Series slot #2533"/>
    </referenceableParamGroup>
  </referenceableParamGroupList>
  <sampleList count="2">
    <sample id="S1" name="HeLa digest 200 ng"/>
    <sample id="S2" name="iRT peptides"/>
  </sampleList>
  <softwareList count="2">
    <software id="Xcalibur" version="4.1.31.9">
      <cvParam cvRef="MS" accession="MS:1000532" name="Xcalibur" value=""/>
    </software>
    <software id="pwiz" version="3.0.21193">
      <cvParam cvRef="MS" accession="MS:1000615" name="ProteoWizard software" value=""/>
    </software>
  </softwareList>
  <instrumentConfigurationList count="1">
    <instrumentConfiguration id="IC1">
      <referenceableParamGroupRef ref="CommonInstrumentParams"/>
      <componentList count="3">
        <source order="1">
          <cvParam cvRef="MS" accession="MS:1000073" name="electrospray ionization" value=""/>
        </source>
        <analyzer order="2">
          <cvParam cvRef="MS" accession="MS:1000484" name="orbitrap" value=""/>
        </analyzer>
        <detector order="3">
          <cvParam cvRef="MS" accession="MS:1000624" name="inductive detector" value=""/>
        </detector>
      </componentList>
      <softwareRef ref="Xcalibur"/>
    </instrumentConfiguration>
  </instrumentConfigurationList>
  <dataProcessingList count="1">
    <dataProcessing id="pwiz_Reader_Thermo_conversion">
      <processingMethod order="0" softwareRef="pwiz">
        <cvParam cvRef="MS" accession="MS:1000544" name="Conversion to mzML" value=""/>
      </processingMethod>
    </dataProcessing>
  </dataProcessingList>
  <run id="HeLa_QC_01" defaultInstrumentConfigurationRef="IC1" startTimeStamp="2024-05-01T09:30:12Z"
       defaultSourceFileRef="RAW1" sampleRef="S1">
    <spectrumList count="{declared}" defaultDataProcessingRef="pwiz_Reader_Thermo_conversion">
"""

FOOTER = """    </chromatogramList>
  </run>
</mzML>"""


def _array(values: np.ndarray, accession: str, name: str, compress: bool) -> str:
    raw = values.astype("<f8").tobytes()
    encoded = base64.b64encode(zlib.compress(raw) if compress else raw).decode("ascii")
    compression = ("MS:1000574", "zlib compression") if compress else ("MS:1000576", "no compression")
    return f"""          <binaryDataArray encodedLength="{len(encoded)}">
            <cvParam cvRef="MS" accession="MS:1000523" name="64-bit float" value=""/>
            <cvParam cvRef="MS" accession="{compression[0]}" name="{compression[1]}" value=""/>
            <cvParam cvRef="MS" accession="{accession}" name="{name}" value=""
                     unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
            <binary>{encoded}</binary>
          </binaryDataArray>
"""


def spectrum(index: int, ms_level: int, minutes: float, peaks: int = 20) -> str:
    rng = np.random.default_rng(index)
    mz = np.sort(rng.uniform(350, 1500, peaks))
    intensity = rng.uniform(1e3, 1e7, peaks)
    kind = ("MS:1000579", "MS1 spectrum") if ms_level == 1 else ("MS:1000580", "MSn spectrum")
    arrays = _array(mz, "MS:1000514", "m/z array", compress=index % 2 == 0) + _array(
        intensity, "MS:1000515", "intensity array", compress=False
    )
    return f"""      <spectrum index="{index}" id="controllerType=0 controllerNumber=1 scan={index + 1}"
                defaultArrayLength="{peaks}">
        <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="{ms_level}"/>
        <cvParam cvRef="MS" accession="{kind[0]}" name="{kind[1]}" value=""/>
        <cvParam cvRef="MS" accession="MS:1000127" name="centroid spectrum" value=""/>
        <cvParam cvRef="MS" accession="MS:1000504" name="base peak m/z" value="{mz[int(np.argmax(intensity))]:.4f}"/>
        <scanList count="1">
          <cvParam cvRef="MS" accession="MS:1000795" name="no combination" value=""/>
          <scan instrumentConfigurationRef="IC1">
            <cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="{minutes}"
                     unitCvRef="UO" unitAccession="UO:0000031" unitName="minute"/>
          </scan>
        </scanList>
        <binaryDataArrayList count="2">
{arrays}        </binaryDataArrayList>
      </spectrum>
"""


def mzml(levels: list[int], declared: int | None = None) -> str:
    """A plain mzML run whose spectra have the given MS levels, one every 0.01 minute from minute 1."""
    spectra = "".join(spectrum(index, level, round(1 + index / 100, 4)) for index, level in enumerate(levels))
    chromatogram = """    </spectrumList>
    <chromatogramList count="1" defaultDataProcessingRef="pwiz_Reader_Thermo_conversion">
      <chromatogram index="0" id="TIC" defaultArrayLength="0">
        <cvParam cvRef="MS" accession="MS:1000235" name="total ion current chromatogram" value=""/>
        <binaryDataArrayList count="0"/>
      </chromatogram>
"""
    header = HEADER.replace("{declared}", str(len(levels) if declared is None else declared))
    return header + spectra + chromatogram + FOOTER


def indexed(document: str) -> bytes:
    """Wrap an mzML in indexedmzML with real byte offsets and the SHA-1 fileChecksum msconvert writes."""
    body = document.split("\n", 1)[1].replace("\n", "\n  ")
    head = '<?xml version="1.0" encoding="utf-8"?>\n<indexedmzML xmlns="http://psi.hupo.org/ms/mzml">\n  '
    prefix = (head + body + "\n").encode("utf-8")
    offsets = [
        (match.group(2).decode(), match.start())
        for match in re.finditer(rb'<(spectrum|chromatogram) index="\d+" id="([^"]+)"', prefix)
    ]
    entries = "".join(f'      <offset idRef="{ref}">{offset}</offset>\n' for ref, offset in offsets)
    index_offset = len(prefix)
    tail = (
        f'  <indexList count="1">\n    <index name="spectrum">\n{entries}    </index>\n  </indexList>\n'
        f"  <indexListOffset>{index_offset}</indexListOffset>\n  <fileChecksum>"
    ).encode()
    digest = hashlib.sha1(prefix + tail, usedforsecurity=False).hexdigest()
    return prefix + tail + f"{digest}</fileChecksum>\n</indexedmzML>\n".encode()


LEVELS = [1, 2, 2, 2, 1, 2, 2, 1, 2, 2]


def test_an_indexed_mzml_gets_its_instrument_run_software_samples_and_spectrum_counts() -> None:
    extraction = extract_bytes(indexed(mzml(LEVELS)), "HeLa_QC_01.mzML")
    assert extraction.format == "mzml"
    assert extraction.error is None and extraction.partial is None
    metadata = extraction.metadata
    assert metadata["indexed"] is True
    assert (metadata["spectra"], metadata["spectra_declared"]) == (len(LEVELS), len(LEVELS))
    assert (metadata["chromatograms"], metadata["chromatograms_declared"]) == (1, 1)
    assert metadata["ms_levels"] == {"1": LEVELS.count(1), "2": LEVELS.count(2)}
    assert metadata["spectrum_representation"] == {"centroid": len(LEVELS)}
    assert metadata["scan_start_seconds"] == {"min": 60.0, "max": round(1 + (len(LEVELS) - 1) / 100, 4) * 60}
    assert metadata["instrument_model"] == "Q Exactive"
    assert metadata["instrument_serial_number"] == "Exactive Series slot #2533"
    assert metadata["instrument_configurations"] == [
        {
            "id": "IC1",
            "model": "Q Exactive",
            "serial_number": "Exactive Series slot #2533",
            "source": ["electrospray ionization"],
            "analyzer": ["orbitrap"],
            "detector": ["inductive detector"],
        }
    ]
    assert metadata["software"] == [
        {"id": "Xcalibur", "version": "4.1.31.9", "name": "Xcalibur"},
        {"id": "pwiz", "version": "3.0.21193", "name": "ProteoWizard software"},
    ]
    assert (metadata["run_id"], metadata["start_time"]) == ("HeLa_QC_01", "2024-05-01T09:30:12+00:00")
    assert metadata["source_files"] == [
        {
            "name": "HeLa_QC_01.raw",
            "location": "file:///D:/data/2024",
            "sha1": "8c2e4c2e5b0e1d1bd8a5a1f2a0c9a7d3b1e4f6a2",
        }
    ]
    assert metadata["file_content"] == ["MS1 spectrum", "MSn spectrum"]
    assert metadata["file_checksum"]["matches"] is True
    assert "warnings" not in metadata
    assert extraction.samples == ("HeLa digest 200 ng", "iRT peptides")
    assert "Q Exactive" in extraction.text and "HeLa_QC_01.raw" in extraction.text


def test_a_changed_byte_in_an_indexed_mzml_no_longer_matches_its_file_checksum() -> None:
    data = indexed(mzml(LEVELS)).replace(b"HeLa digest 200 ng", b"HeLa digest 400 ng")
    extraction = extract_bytes(data, "HeLa_QC_01.mzML")
    assert extraction.error is None
    assert extraction.metadata["file_checksum"]["matches"] is False


def test_a_plain_mzml_larger_than_one_read_is_counted_in_full() -> None:
    levels = [1 if index % 10 == 0 else 2 for index in range(400)]
    data = mzml(levels).encode()
    assert len(data) > 2 * 64 * 1024
    extraction = extract_bytes(data, "run.mzML")
    assert extraction.metadata["indexed"] is False
    assert extraction.metadata["spectra"] == 400
    assert extraction.metadata["ms_levels"] == {"1": 40, "2": 360}
    assert "file_checksum" not in extraction.metadata


def test_a_spectrum_list_whose_count_disagrees_with_its_spectra_says_so() -> None:
    extraction = extract_bytes(mzml(LEVELS, declared=12).encode(), "run.mzML")
    assert extraction.error is None
    assert (extraction.metadata["spectra"], extraction.metadata["spectra_declared"]) == (10, 12)
    assert extraction.metadata["warnings"] == ["spectrumList declares 12 spectra but the file holds 10"]


def test_an_ms_level_given_through_a_parameter_group_is_counted() -> None:
    document = mzml([1, 1, 1]).replace(
        '<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>',
        '<referenceableParamGroupRef ref="MS1"/>',
    )
    document = document.replace(
        "</referenceableParamGroupList>",
        '<referenceableParamGroup id="MS1"><cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>'
        "</referenceableParamGroup></referenceableParamGroupList>",
    ).replace('referenceableParamGroupList count="1"', 'referenceableParamGroupList count="2"')
    assert extract_bytes(document.encode(), "run.mzML").metadata["ms_levels"] == {"1": 3}


def test_a_truncated_mzml_is_truncated_with_the_spectra_read_before_the_cut() -> None:
    data = indexed(mzml(LEVELS))
    cut = data.index(b'<spectrum index="6"') + 300
    extraction = extract_bytes(data[:cut], "HeLa_QC_01.mzML")
    assert extraction.error is not None
    assert (extraction.error.reason, extraction.error.name) == ("truncated", "HeLa_QC_01.mzML")
    assert "ends before it is complete" in extraction.error.detail
    assert extraction.metadata == {"spectra_before_error": 6, "chromatograms_before_error": 0}


def test_an_mzml_cut_inside_a_tag_is_truncated_too() -> None:
    data = mzml(LEVELS).encode()
    cut = data.index(b'<spectrum index="3"') + len(b"<spectrum ind")
    extraction = extract_bytes(data[:cut], "run.mzML")
    assert extraction.error is not None and extraction.error.reason == "truncated"
    assert "unclosed token" in extraction.error.detail


def test_an_mzml_broken_in_its_middle_is_bad_format_with_the_line() -> None:
    document = mzml(LEVELS)
    broken = document.replace('<spectrum index="5"', '<spectrum index="5" index="5"', 1).encode()
    line = document[: document.index('<spectrum index="5"')].count("\n") + 1
    extraction = extract_bytes(broken, "run.mzML")
    assert extraction.error is not None and extraction.error.reason == "bad_format"
    assert f"line {line}" in extraction.error.detail
    assert extraction.metadata["spectra_before_error"] == 5


def _ticking_clock(step: float) -> Iterator[float]:
    return itertools.count(0.0, step)


def test_an_mzml_that_runs_out_of_time_reports_the_spectra_counted_so_far() -> None:
    total = 3000
    data = mzml([2] * total).encode()
    ticks = _ticking_clock(1.0)
    ctx = FileContext(name="long.mzML", deadline=Deadline(2.5, clock=lambda: next(ticks)))
    summary = extract_mzml(io.BytesIO(data), ctx)  # type: ignore[arg-type]
    assert ctx.partial_reason == "time_budget"
    assert 0 < summary.metadata["spectra"] < total
    assert summary.metadata["spectra_declared"] == total
    assert "warnings" not in summary.metadata


@pytest.mark.parametrize("piece", [1, 7, 13, 4096])
def test_the_file_checksum_is_verified_whatever_the_read_sizes(piece: int) -> None:
    ctx = FileContext(name="HeLa_QC_01.mzML")
    summary = extract_mzml(OneWayStream(indexed(mzml(LEVELS[:3])), piece=piece), ctx)  # type: ignore[arg-type]
    assert summary.metadata["file_checksum"]["matches"] is True


def test_a_gzipped_mzml_is_read_through_its_compression() -> None:
    extraction = extract_bytes(gzip.compress(indexed(mzml(LEVELS))), "HeLa_QC_01.mzML.gz")
    assert extraction.format == "mzml.gz"
    assert (extraction.metadata["spectra"], extraction.metadata["file_checksum"]["matches"]) == (10, True)
