"""Streaming FASTQ statistics: read counts, lengths, GC, N, quality and the Illumina header.

FASTQ files run to tens of gigabytes, and per-read Python work is what makes
a FASTQ reader slow, so records are never looked at one by one on the normal
path. The file is read in blocks of whole records; numpy finds every newline
of a block at once, checks the record structure from those positions, and
lifts all sequence lines (and all quality lines) out as one matrix, one row a
read, through a sliding-window view: a strided copy with no per-read Python.
Counting bases and summing qualities are then a few vectorised passes.

Anything unusual in a block (a ``+`` line repeating the name, non-ASCII bytes,
a broken record) sends that block, and only it, through dnaio record by
record, which either accepts it or names the fault and its line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import dnaio
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.base import Extractor, FileContext, Summary
from labmesh_dagster.extract.compression import (
    MAGIC_LENGTH,
    Readable,
    chain_head,
    codec_error_in_rest,
    open_decompressed,
    read_head,
    sniff_compression,
)
from labmesh_dagster.extract.readahead import QUEUE_DEPTH, AheadStream, ahead

PHRED64_MIN = 64
"""Lowest quality character of Phred+64 data (Illumina 1.3-1.7); Phred+33 data goes far below."""

PHRED64_MAX_ABOVE = 74
"""Phred+33 tops out near 'J' (74); a maximum above it, with nothing below '@', means Phred+64."""

PIECE_SIZE = 64 * 1024
"""Bytes first asked of the stream at a time: what was read before a fault is kept, not lost with the read."""

MAX_PIECE_SIZE = 4 * 1024 * 1024

BLOCK_SIZE = 8 * 1024 * 1024
"""Bytes read per block: large enough that numpy's per-call cost vanishes, small enough to stay in cache."""

PADDED_MATRIX_LIMIT = 3
"""Mixed read lengths go through a padded matrix while it is at most this many times the bases it holds."""

MAX_LANES = 64

_NEWLINE, _CR, _AT, _PLUS = 10, 13, ord("@"), ord("+")
_LOWER_C, _LOWER_N, _UPPER_C, _UPPER_N = ord("c"), ord("n"), ord("C"), ord("N")
_CASE_BIT = 0x20
_WITHOUT_G_BIT = 0xFF ^ (ord("G") ^ ord("C"))

_CASAVA = re.compile(
    r"^@?(?P<instrument>[^:\s]+):(?P<run_number>\d+):(?P<flowcell>[^:\s]+):(?P<lane>\d+):(?P<tile>\d+):\d+:\d+"
    r"(?::(?P<umi>[^\s]+))?(?:\s+(?P<read>[123]):(?P<filtered>[YN]):(?P<control>\d+):(?P<index>\S*))?"
)
"""Illumina CASAVA 1.8+ read names: ``@instrument:run:flowcell:lane:tile:x:y[:UMI] read:filtered:control:index``."""

_LEGACY_ILLUMINA = re.compile(
    r"^@?(?P<instrument>[^:\s]+):(?P<lane>\d+):(?P<tile>\d+):\d+:\d+(?:#(?P<index>[^/\s]*))?(?:/(?P<read>[12]))?"
)
"""Pre-1.8 Illumina read names: ``@instrument:lane:tile:x:y#index/read``."""

_SRA = re.compile(r"^@?(?P<accession>[SED]RR\d+)\.\d+")


def _int_zeros(size: int) -> npt.NDArray[np.int64]:
    return np.zeros(size, dtype=np.int64)


def _joined(items: list[bytes] | list[str]) -> bytes:
    """Concatenate a batch into one bytes object, so counting runs in C over the whole batch."""
    if not items:
        return b""
    if isinstance(items[0], str):
        # dnaio only yields ASCII; "replace" keeps one byte per character for any other input.
        return "".join(items).encode("ascii", "replace")  # type: ignore[arg-type]
    return b"".join(items)  # type: ignore[arg-type]


def parse_read_name(header: str) -> dict[str, Any]:
    """What an Illumina (or SRA) read name says about its run, lane, index and read number."""
    match = _CASAVA.match(header)
    if match:
        fields: dict[str, Any] = {
            "convention": "casava1.8",
            "instrument": match["instrument"],
            "run_number": int(match["run_number"]),
            "flowcell": match["flowcell"],
            "lane": int(match["lane"]),
        }
        if match["read"]:
            fields["read"] = int(match["read"])
            fields["index"] = match["index"] or None
        if match["umi"]:
            fields["umi"] = True
        return fields
    match = _LEGACY_ILLUMINA.match(header)
    if match:
        fields = {"convention": "illumina_legacy", "instrument": match["instrument"], "lane": int(match["lane"])}
        if match["read"]:
            fields["read"] = int(match["read"])
        if match["index"]:
            fields["index"] = match["index"]
        return fields
    match = _SRA.match(header)
    if match:
        return {"convention": "sra", "accession": match["accession"]}
    return {}


@dataclass
class FastqStats:
    """An accumulator of FASTQ statistics fed a block (or a batch) of reads at a time.

    Quality totals are kept as raw ASCII values, with Q20/Q30 counts under
    both offsets, and the Phred offset is guessed only in :meth:`summary`:
    whether a file is Phred+33 or Phred+64 is known once every character
    has been seen.
    """

    track_positions: bool = False
    reads: int = field(default=0, init=False)
    bases: int = field(default=0, init=False)
    min_length: int | None = field(default=None, init=False)
    max_length: int | None = field(default=None, init=False)
    first_header: str | None = field(default=None, init=False)
    _gc: int = field(default=0, init=False, repr=False)
    _n: int = field(default=0, init=False, repr=False)
    _length_counts: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _lanes: set[int] = field(default_factory=set, init=False, repr=False)
    _quality_sum: int = field(default=0, init=False, repr=False)
    _quality_min: int | None = field(default=None, init=False, repr=False)
    _quality_max: int | None = field(default=None, init=False, repr=False)
    _at_least: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _position_sums: npt.NDArray[np.int64] = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)
    _position_counts: npt.NDArray[np.int64] = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)

    # Quality thresholds counted for Q20 and Q30 under both offsets, as ASCII values.
    _THRESHOLDS = (33 + 20, 33 + 30, 64 + 20, 64 + 30)

    def note_header(self, header: str) -> None:
        """Remember the first read name, and the lane of every block's first read."""
        if self.first_header is None:
            self.first_header = header
        lane = parse_read_name(header).get("lane")
        if lane is not None and len(self._lanes) < MAX_LANES:
            self._lanes.add(lane)

    def _add_lengths(self, lengths: npt.NDArray[np.int64]) -> None:
        shortest, longest = int(lengths.min()), int(lengths.max())
        self.reads += len(lengths)
        self.min_length = shortest if self.min_length is None else min(self.min_length, shortest)
        self.max_length = longest if self.max_length is None else max(self.max_length, longest)
        if shortest == longest:
            self._length_counts[longest] = self._length_counts.get(longest, 0) + len(lengths)
        else:
            values, counts = np.unique(lengths, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self._length_counts[value] = self._length_counts.get(value, 0) + count

    def _add_bases(
        self, sequence: npt.NDArray[np.uint8], quality: npt.NDArray[np.uint8], bases: int, padded: bool
    ) -> None:
        """Fold sequence and quality bytes of ``bases`` real bases (any padding zeroed) into the totals."""
        self.bases += bases
        if bases == 0:
            return
        c, n = _UPPER_C, _UPPER_N
        if int(sequence.max()) >= _LOWER_C:
            # Soft-masked (lower-case) bases are rare: fold case only when some are there.
            sequence = sequence | np.uint8(_CASE_BIT)
            c, n = _LOWER_C, _LOWER_N
        # 'C' and 'G' differ in one bit (4) and no other byte maps onto 'C' without it: one comparison counts both.
        self._gc += int(np.count_nonzero((sequence & _WITHOUT_G_BIT) == c))
        self._n += int(np.count_nonzero(sequence == n))
        self._quality_sum += byte_sum(quality)
        high = int(quality.max())
        # Padding is zero, so the lowest real value is the lowest non-zero one (qualities are >= '!').
        low = int(np.min(quality, where=quality > 0, initial=255)) if padded else int(quality.min())
        self._quality_min = low if self._quality_min is None else min(self._quality_min, low)
        self._quality_max = high if self._quality_max is None else max(self._quality_max, high)
        # Below '@' the file cannot be Phred+64, so only the Phred+33 thresholds are worth counting.
        thresholds = self._THRESHOLDS[:2] if self._quality_min < PHRED64_MIN else self._THRESHOLDS
        for threshold in thresholds:
            self._at_least[threshold] = self._at_least.get(threshold, 0) + int(np.count_nonzero(quality >= threshold))

    def _add_position_sums(self, quality: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]) -> None:
        """Add per-position quality sums (from a reads x positions matrix) and read counts."""
        longest = quality.shape[1] if quality.ndim == 2 else 0
        if longest == 0:
            return
        if len(self._position_sums) < longest:
            grow = longest - len(self._position_sums)
            self._position_sums = np.concatenate([self._position_sums, _int_zeros(grow)])
            self._position_counts = np.concatenate([self._position_counts, _int_zeros(grow)])
        self._position_sums[:longest] += quality.sum(axis=0, dtype=np.int64)
        reads_of_length = np.bincount(lengths, minlength=longest + 1)
        reads_reaching = np.cumsum(reads_of_length[::-1])[::-1]
        self._position_counts[:longest] += reads_reaching[1 : longest + 1]

    def add_matrices(
        self,
        sequences: npt.NDArray[np.uint8],
        qualities: npt.NDArray[np.uint8],
        lengths: npt.NDArray[np.int64],
        padded: bool = False,
    ) -> None:
        """Fold reads given as reads x positions matrices; ``padded`` when they are zero beyond each read's end."""
        if len(lengths) == 0:
            return
        self._add_lengths(lengths)
        self._add_bases(sequences, qualities, int(lengths.sum()), padded)
        if self.track_positions:
            self._add_position_sums(qualities, lengths)

    def add_reads(self, reads: _Reads) -> None:
        """Fold the reads lifted out of one block."""
        if reads.sequences.ndim == 2:
            self.note_header(reads.first_header)
            self.add_matrices(reads.sequences, reads.qualities, reads.lengths, padded=reads.padded)
            return
        self.note_header(reads.first_header)
        self._add_lengths(reads.lengths)
        self._add_bases(reads.sequences, reads.qualities, len(reads.sequences), padded=False)
        if self.track_positions and len(reads.qualities):
            self._add_position_sums(_padded_rows(reads.qualities, reads.lengths), reads.lengths)

    def add_batch(self, sequences: list[bytes] | list[str], qualities: list[bytes] | list[str]) -> None:
        """Fold one batch of reads (sequences and their qualities, in the same order) into the totals."""
        if len(sequences) != len(qualities):
            raise ValueError(f"{len(sequences)} sequences but {len(qualities)} quality strings")
        if not sequences:
            return
        sequence_bytes = np.frombuffer(_joined(sequences), dtype=np.uint8)
        quality_bytes = np.frombuffer(_joined(qualities), dtype=np.uint8)
        if len(sequence_bytes) != len(quality_bytes):
            raise ValueError("sequences and qualities of the batch differ in total length")
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        self._add_lengths(lengths)
        self._add_bases(sequence_bytes, quality_bytes, len(sequence_bytes), padded=False)
        if self.track_positions and len(quality_bytes):
            self._add_position_sums(_padded_rows(quality_bytes, lengths), lengths)

    def quality_offset(self) -> int | None:
        """Guess the Phred offset: 64 when nothing is below '@' and something is above 'J', else 33."""
        if self._quality_min is None or self._quality_max is None:
            return None
        if self._quality_min >= PHRED64_MIN and self._quality_max > PHRED64_MAX_ABOVE:
            return 64
        return 33

    def n50(self) -> int | None:
        """The read length L such that reads of length >= L hold at least half of all bases."""
        if not self.bases:
            return None
        half, total = self.bases / 2, 0
        for length in sorted(self._length_counts, reverse=True):
            total += length * self._length_counts[length]
            if total >= half:
                return length
        return None

    def summary(self) -> dict[str, Any]:
        """The statistics as a JSON-ready dict; values that need at least one base are None without one."""
        offset = self.quality_offset()
        has_bases = self.bases > 0
        summary: dict[str, Any] = {
            "reads": self.reads,
            "bases": self.bases,
            "min_length": self.min_length,
            "mean_length": round(self.bases / self.reads, 2) if self.reads else None,
            "max_length": self.max_length,
            "gc_percent": round(100 * self._gc / self.bases, 2) if has_bases else None,
            "n_percent": round(100 * self._n / self.bases, 4) if has_bases else None,
            "mean_quality": round(self._quality_sum / self.bases - offset, 2) if offset is not None else None,
            "quality_encoding": f"phred{offset}" if offset is not None else None,
        }
        if self.track_positions:
            summary["per_position_mean_quality"] = self._per_position_means(offset)
        return summary

    def details(self) -> dict[str, Any]:
        """Figures beyond the core statistics: N50, Q20/Q30, read-length spread, lanes and the read name."""
        offset = self.quality_offset()
        details: dict[str, Any] = {
            "n50": self.n50(),
            "q20_percent": None,
            "q30_percent": None,
            "fixed_length": len(self._length_counts) == 1,
        }
        if offset is not None and self.bases:
            details["q20_percent"] = round(100 * self._at_least.get(offset + 20, 0) / self.bases, 2)
            details["q30_percent"] = round(100 * self._at_least.get(offset + 30, 0) / self.bases, 2)
        if self.first_header is not None:
            details["first_read"] = self.first_header[:200]
            parsed = parse_read_name(self.first_header)
            if parsed:
                details["read_name"] = parsed
        if self._lanes:
            details["lanes"] = sorted(self._lanes)
        return details

    def _per_position_means(self, offset: int | None) -> list[float]:
        if offset is None or self.max_length is None:
            return []
        sums = self._position_sums[: self.max_length]
        counts = self._position_counts[: self.max_length]
        with np.errstate(invalid="ignore", divide="ignore"):
            means: list[float] = np.round(sums / counts - offset, 2).tolist()
        return means


_EVERY_OTHER_BYTE = np.uint64(0x00FF00FF00FF00FF)
_LANE_ADDER = np.uint64(0x0001000100010001)


def byte_sum(values: npt.NDArray[np.uint8]) -> int:
    """The sum of a uint8 array, eight bytes at a time.

    numpy's ``sum(dtype=uint64)`` widens every byte first, which makes it the
    costliest step of counting a block. Read as 64-bit words instead: adding
    the even and odd bytes of a word gives four 16-bit lanes (each at most
    510), and one multiplication gathers the lanes into the top 16 bits.
    """
    flat = np.ascontiguousarray(values).reshape(-1)
    whole = flat.size - flat.size % 8
    words = flat[:whole].view(np.uint64)
    lanes = (words & _EVERY_OTHER_BYTE) + ((words >> np.uint64(8)) & _EVERY_OTHER_BYTE)
    total = int(((lanes * _LANE_ADDER) >> np.uint64(48)).sum(dtype=np.uint64))
    return total + int(flat[whole:].sum(dtype=np.uint64))


def _padded_rows(values: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """Concatenated reads as a reads x longest matrix, zero beyond each read's end."""
    longest = int(lengths.max()) if len(lengths) else 0
    starts = np.cumsum(lengths) - lengths
    padded = np.concatenate([values, np.zeros(longest, dtype=np.uint8)])
    rows = sliding_window_view(padded, longest)[starts] if longest else np.zeros((len(lengths), 0), np.uint8)
    return np.where(np.arange(longest) < lengths[:, None], rows, 0).astype(np.uint8)


class _LineCountingStream(io.RawIOBase):
    """Counts newlines on the way to the parser and remembers whether the data ended.

    dnaio reports a last record cut inside its quality line as a length
    mismatch; knowing that its line is the file's final, unterminated line is
    what lets that be called "truncated" rather than "bad_format".
    """

    def __init__(self, inner: Readable) -> None:
        super().__init__()
        self._inner = inner
        self.newlines = 0
        self.first_byte = b""
        self.at_eof = False
        self.ends_with_newline = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        if not data:
            self.at_eof = True
            return 0
        view[: len(data)] = data
        if not self.first_byte:
            self.first_byte = data[:1]
        self.newlines += data.count(b"\n")
        self.ends_with_newline = data.endswith(b"\n")
        return len(data)

    def is_final_unterminated_line(self, line: int | None) -> bool:
        """True when 0-based ``line`` is the file's last line and that line has no newline."""
        return self.at_eof and not self.ends_with_newline and line == self.newlines


def _format_error_reason(exc: dnaio.FastqFormatError, counted: _LineCountingStream, file_starts_here: bool) -> str:
    """'truncated' when the faulty record is the one cut off by the end of the data.

    'length_mismatch' when a complete record's quality differs in length from
    its sequence, else 'bad_format'. dnaio also says "premature end of file"
    of a short file that never was FASTQ, hence the check that the data at
    least starts like FASTQ.
    """
    if file_starts_here and counted.first_byte != b"@":
        return "bad_format"
    message = str(exc)
    if "Premature end of file" in message:
        return "truncated"
    if counted.is_final_unterminated_line(getattr(exc, "line", None)):
        return "truncated"
    if "Length of sequence and qualities differ" in message:
        return "length_mismatch"
    return "bad_format"


@dataclass
class _Position:
    """Where the reader is in the file: lines before the current block, and whether this is its first block."""

    lines: int = 0
    first_block: bool = True


def _first_non_ascii(block: bytes) -> tuple[int, int] | None:
    """(start of the record holding the first non-ASCII byte, that byte's 0-based line), or None."""
    data = np.frombuffer(block, dtype=np.uint8)
    high = np.flatnonzero(data >= 128)
    if not len(high):
        return None
    line = block.count(b"\n", 0, int(high[0]))
    record_line = line - line % 4
    record_start = 0
    for _ in range(record_line):
        record_start = block.index(b"\n", record_start) + 1
    return record_start, line


def _diagnose(block: bytes, at_eof: bool, where: _Position, stats: FastqStats, name: str) -> None:
    """Read a block the slow way, with dnaio, adding its records; raise the fault it finds, at its file line.

    dnaio refuses a whole buffer that holds a non-ASCII byte, so the records
    before such a byte are read first, then the byte is reported at its line.
    """
    non_ascii = _first_non_ascii(block)
    if non_ascii is not None:
        record_start, byte_line = non_ascii
        _diagnose(block[:record_start], False, where, stats, name)
        raise ExtractionError(
            name, "bad_format", f"error in FASTQ file at line {where.lines + byte_line + 1}: a non-ASCII byte"
        )
    counted = _LineCountingStream(io.BytesIO(block))
    sequences: list[str] = []
    qualities: list[str] = []
    try:
        for record in dnaio.open(io.BufferedReader(counted), fileformat="fastq"):  # type: ignore[call-overload]
            if stats.first_header is None:
                stats.note_header(record.name)
            sequences.append(record.sequence)
            qualities.append(record.qualities or "")
    except dnaio.FastqFormatError as exc:
        stats.add_batch(sequences, qualities)
        if not at_eof:
            # Only the file's real end can cut a record short; a block's end never does.
            counted.at_eof = False
        reason = _format_error_reason(exc, counted, where.first_block)
        line = getattr(exc, "line", None)
        message = str(exc).split(": ", 1)[-1]
        place = f"line {where.lines + line + 1}" if line is not None else "an unknown line"
        raise ExtractionError(name, reason, f"error in FASTQ file at {place}: {message}") from exc
    stats.add_batch(sequences, qualities)


def _rows(buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    """``width`` bytes from each start, as a matrix, copied row by row in C (no per-read Python)."""
    if width == 0:
        return np.zeros((len(starts), 0), dtype=np.uint8)
    return sliding_window_view(buffer, width)[starts]


@dataclass(frozen=True)
class _Reads:
    """A block's reads lifted out of the text: a matrix a read per row, or (long reads) one concatenation."""

    sequences: npt.NDArray[np.uint8]
    qualities: npt.NDArray[np.uint8]
    lengths: npt.NDArray[np.int64]
    padded: bool
    first_header: str


def _lift_reads(data: npt.NDArray[np.uint8], newlines: npt.NDArray[np.int64]) -> _Reads | None:
    """The reads of a block of whole records, without per-read Python; None if it needs dnaio's eye.

    ``newlines`` are the positions of the block's newlines, four per record.
    None stands for anything the vectorised path does not vouch for: a broken
    record, a ``+`` line with a name, non-ASCII sequence or quality bytes.
    """
    starts = np.empty_like(newlines)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    ends = np.maximum(newlines - (data[np.maximum(newlines - 1, 0)] == _CR), starts)
    header_starts, sequence_starts, plus_starts, quality_starts = (starts[i::4] for i in range(4))
    header_ends, sequence_ends, plus_ends, quality_ends = (ends[i::4] for i in range(4))
    lengths = sequence_ends - sequence_starts
    if (
        not np.all(header_ends > header_starts)
        or not np.all(data[header_starts] == _AT)
        or not np.all(data[plus_starts] == _PLUS)
        or np.any(plus_ends - plus_starts != 1)
        or not np.array_equal(quality_ends - quality_starts, lengths)
    ):
        return None
    header = data[header_starts[0] + 1 : header_ends[0]].tobytes().decode("ascii", "replace")
    longest, shortest = int(lengths.max()), int(lengths.min())
    if shortest == longest:
        sequences, qualities = _rows(data, sequence_starts, longest), _rows(data, quality_starts, longest)
        padded = False
    elif len(lengths) * longest <= PADDED_MATRIX_LIMIT * max(int(lengths.sum()), 1):
        extended = np.concatenate([data, np.zeros(longest, dtype=np.uint8)])
        inside = np.arange(longest) < lengths[:, None]
        sequences = np.where(inside, _rows(extended, sequence_starts, longest), 0).astype(np.uint8)
        qualities = np.where(inside, _rows(extended, quality_starts, longest), 0).astype(np.uint8)
        padded = True
    else:
        # Long reads of very different lengths (nanopore): per-read slicing is cheap next to their length.
        raw = data.tobytes()
        pairs = zip(sequence_starts.tolist(), sequence_ends.tolist(), quality_starts.tolist(), strict=True)
        sequences = np.frombuffer(b"".join(raw[s:e] for s, e, _ in pairs), dtype=np.uint8)
        qualities = np.frombuffer(
            b"".join(
                raw[q : q + e - s]
                for s, e, q in zip(
                    sequence_starts.tolist(), sequence_ends.tolist(), quality_starts.tolist(), strict=True
                )
            ),
            dtype=np.uint8,
        )
        padded = False
    if sequences.size and (int(sequences.max()) >= 128 or int(qualities.max()) >= 128):
        return None
    return _Reads(sequences, qualities, lengths, padded, header)


@dataclass(frozen=True)
class _Block:
    """Whole records of the file (or, at its end, whatever is left), with where its newlines are."""

    data: npt.NDArray[np.uint8]
    newlines: npt.NDArray[np.int64]
    at_eof: bool


def _blocks(stream: Readable, block_size: int) -> Iterator[_Block]:
    """Read the stream into blocks of whole records, lifting their reads out; runs in the read-ahead thread.

    A record never spans two blocks: the lines after the last multiple of
    four are carried into the next block. At the end of the data, what is
    left is yielded as is (a final record without its newline, or a broken
    one) for the caller to judge. A fault of the stream is raised after the
    blocks of what was read before it. Finding newlines and copying rows is
    numpy work that releases the GIL, so it overlaps the counting.
    """
    carry = np.zeros(0, dtype=np.uint8)
    fault: BaseException | None = None
    ended = False
    # Buffers are reused round-robin, more of them than blocks can be in flight (queued, being
    # counted, being filled), because a fresh 8 MiB buffer costs thousands of page faults.
    pool: list[npt.NDArray[np.uint8]] = [np.empty(0, dtype=np.uint8)] * (QUEUE_DEPTH + 3)
    piece = PIECE_SIZE
    turn = 0
    while not ended:
        # A buffer is left for another only once a block of it is handed on; until then (a record
        # longer than the buffer) it is replaced by one twice the size of what it holds.
        size = max(block_size, 2 * len(carry))
        if len(pool[turn]) < size:
            pool[turn] = np.empty(size, dtype=np.uint8)
        buffer = pool[turn]
        buffer[: len(carry)] = carry
        filled, fault = _fill(stream, buffer, len(carry), piece)
        # Pieces grow once the data flows: small first reads keep what precedes an early fault,
        # large later ones spare a call per 64 KiB.
        piece = min(piece * 4, MAX_PIECE_SIZE)
        ended = filled < len(buffer)
        data = buffer[:filled]
        newlines = np.flatnonzero(data == _NEWLINE)
        whole = len(newlines) - len(newlines) % 4
        if whole:
            cut = int(newlines[whole - 1]) + 1
            yield _Block(data[:cut], newlines[:whole], False)
            carry = data[cut:]
            turn = (turn + 1) % len(pool)
        else:
            carry = data
    if fault is not None:
        raise fault
    if len(carry):
        yield _Block(carry, np.flatnonzero(carry == _NEWLINE), True)


def _fill(stream: Readable, buffer: npt.NDArray[np.uint8], start: int, piece: int) -> tuple[int, BaseException | None]:
    """Read into ``buffer`` from ``start`` until it is full or the data ends: (bytes filled, fault if any).

    Reads go in pieces straight into the buffer (no copy), so that on a fault
    of the stream everything read before it is kept and counted.
    """
    view = memoryview(buffer)  # type: ignore[arg-type]
    readinto = getattr(stream, "readinto1", None) or getattr(stream, "readinto", None)
    filled = start
    try:
        while filled < len(buffer):
            end = min(filled + piece, len(buffer))
            if readinto is not None:
                count = readinto(view[filled:end])
            else:
                data = stream.read(end - filled) or b""
                count = len(data)
                view[filled : filled + count] = data
            if not count:
                break
            filled += count
    except Exception as exc:
        return filled, exc
    return filled, None


def accumulate_fastq(
    stream: Readable,
    name: str,
    stats: FastqStats,
    *,
    ctx: FileContext | None = None,
    block_size: int = BLOCK_SIZE,
) -> None:
    """Parse a (possibly compressed) FASTQ stream into ``stats``, raising ExtractionError on bad data.

    With a ``ctx`` the stream comes from the registry, already decompressed
    (``ctx.codec`` says whether it is a decoder, whose reading deserves a
    thread of its own); without one it is sniffed and opened here.

    Every complete record read before an error is already in ``stats`` when
    the error is raised, which lets a caller say how far a broken file got.
    Decompression (and the source's I/O) run in a read-ahead thread, so on two
    cores inflating and counting overlap. When parsing fails on compressed
    data, the rest is decompressed to see whether the codec itself objects,
    and if so its reason is the one raised.
    """
    if ctx is not None and ctx.codec is not None:
        compressed, decompressed = True, stream  # a decoder already: no layer more to copy through
    elif ctx is not None:
        compressed, decompressed = False, stream  # plain bytes, handed over by the registry
    else:
        head = read_head(stream, MAGIC_LENGTH)
        compressed = sniff_compression(head) is not None
        decompressed = open_decompressed(chain_head(head, stream), name)
    where = _Position()
    # Reading (and newline finding) run one block ahead in a thread, lifting and counting here;
    # inflating, when the data is compressed here or upstream, gets a thread of its own. Each
    # stage releases the GIL for most of its work, so two cores share it.
    source: Readable = AheadStream(decompressed) if compressed else decompressed
    with (
        closing(source) if isinstance(source, AheadStream) else nullcontext(),
        ahead(_blocks(source, block_size)) as blocks,
    ):
        for block in blocks:
            try:
                reads = None if block.at_eof else _lift_reads(block.data, block.newlines)
                if reads is not None:
                    stats.add_reads(reads)
                else:
                    _diagnose(block.data.tobytes(), block.at_eof, where, stats, name)
            except ExtractionError as exc:
                # Corrupt compressed data often inflates to garbage before the codec notices:
                # read on to the codec's own verdict, which names the real cause.
                blocks.close()
                if isinstance(source, AheadStream):
                    source.close()
                codec_error = codec_error_in_rest(decompressed)  # type: ignore[arg-type]
                if codec_error is not None:
                    detail = f"{codec_error.detail} (parsing had already failed: {exc.detail})"
                    raise ExtractionError(name, codec_error.reason, detail) from exc
                raise
            where.lines += len(block.newlines)
            where.first_block = False
            if ctx is not None and ctx.deadline.expired():
                ctx.stop_early("time_budget")
                return


def fastq_stats(
    stream: BinaryIO, name: str, *, track_positions: bool = False, block_size: int = BLOCK_SIZE
) -> dict[str, Any]:
    """Summarise a FASTQ stream (plain, gzip, bzip2, xz or zstd), reading it once and in blocks.

    Raises ExtractionError with reason ``truncated`` (data or a record cut
    short), ``bad_gzip`` / ``bad_bzip2`` / ``bad_xz`` / ``bad_zstd`` (corrupt
    compressed data), ``length_mismatch`` (a quality line longer or shorter
    than its sequence) or ``bad_format`` (not valid FASTQ). An empty stream
    is not an error: it has 0 reads.
    """
    stats = FastqStats(track_positions=track_positions)
    accumulate_fastq(stream, name, stats, block_size=block_size)
    return stats.summary()


def extract_fastq(stream: BinaryIO, ctx: FileContext) -> Summary:
    """The registry's FASTQ extractor: statistics, the Illumina read name, and the reads counted before any fault."""
    stats = FastqStats()
    try:
        accumulate_fastq(stream, ctx.name, stats, ctx=ctx)
    except ExtractionError:
        ctx.partial["reads_before_error"] = stats.reads
        raise
    metadata = {**stats.summary(), **stats.details()}
    read_name = metadata.get("read_name", {})
    text = (
        f"FASTQ reads={metadata['reads']} bases={metadata['bases']} "
        f"mean_length={metadata['mean_length']} gc_percent={metadata['gc_percent']}"
    )
    for key in ("instrument", "flowcell", "run_number", "lane", "accession"):
        if key in read_name:
            text += f" {key}={read_name[key]}"
    return Summary(metadata=metadata, text=text)


EXTRACTORS: dict[str, Extractor] = {"fastq": extract_fastq}
