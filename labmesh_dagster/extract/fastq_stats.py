"""FASTQ statistics folded in a batch of reads at a time: counts, lengths, GC, N, qualities and read names.

The reader hands reads over as arrays, never one by one: a reads x positions
matrix (zero beyond each read's end when lengths differ) or, for long reads,
one concatenation. Every figure is then a few vectorised passes, and nothing
is folded in until the batch's bytes are known to be valid FASTQ: a quality
byte outside ``!``..``~`` or a sequence byte that is whitespace or not
printable makes :meth:`FastqStats.add_reads` decline the batch, so the reader
can find the record at fault and name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

LOWEST_BYTE, HIGHEST_BYTE = ord("!"), ord("~")
"""Quality characters run from '!' (33) to '~' (126), Cock et al. 2010; sequences use no other bytes either."""

PHRED64_MIN = 64
"""Lowest quality character of Phred+64 data (Illumina 1.3-1.7); Phred+33 data goes far below."""

PHRED64_MAX_ABOVE = 74
"""Phred+33 tops out near 'J' (74); a maximum above it, with nothing below '@', means Phred+64."""

MAX_LANES = 64

_LOWER_C, _LOWER_N, _UPPER_C, _UPPER_N = ord("c"), ord("n"), ord("C"), ord("N")
_CASE_BIT = np.uint8(0x20)
_WITHOUT_G_BIT = np.uint8(0xFF ^ (ord("G") ^ ord("C")))

_SUM_ROWS = 256
"""Rows added up in 16 bits at once: 256 bytes of at most 255 make at most 65,280, which a uint16 holds."""

_SUM_WIDTH = 4096

_HISTOGRAM_LENGTHS = 1 << 16
"""Read lengths below this are counted in an array (8 bytes a length); longer ones, rare, in a dict."""

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

Bytes = npt.NDArray[np.uint8]
Counts = npt.NDArray[np.int64]


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


def byte_sum(values: Bytes) -> int:
    """The sum of a uint8 array, added up 256 rows at a time in 16 bits.

    numpy's ``sum(dtype=uint64)`` widens every byte first, which made it the
    costliest step of counting a block; adding whole rows of bytes as 16-bit
    vectors runs at memory speed instead, and only one value in 256 is then
    widened.
    """
    flat = np.ascontiguousarray(values).reshape(-1)
    group = _SUM_ROWS * _SUM_WIDTH
    whole = flat.size - flat.size % group
    total = 0
    if whole:
        rows = flat[:whole].reshape(-1, _SUM_ROWS, _SUM_WIDTH)
        total += int(rows.sum(axis=1, dtype=np.uint16).sum(dtype=np.uint64))
    rest = flat[whole:]
    lines = rest.size // _SUM_WIDTH
    if lines:
        total += int(rest[: lines * _SUM_WIDTH].reshape(lines, _SUM_WIDTH).sum(axis=0, dtype=np.uint16).sum())
    return total + int(rest[lines * _SUM_WIDTH :].sum(dtype=np.uint64))


def column_sums(matrix: Bytes) -> Counts:
    """Per-column sums of a reads x positions uint8 matrix, 256 rows at a time in 16 bits."""
    rows, width = matrix.shape
    whole = rows - rows % _SUM_ROWS
    sums = np.zeros(width, dtype=np.int64)
    if whole:
        sums += matrix[:whole].reshape(-1, _SUM_ROWS, width).sum(axis=1, dtype=np.uint16).sum(axis=0, dtype=np.int64)
    sums += matrix[whole:].sum(axis=0, dtype=np.int64)
    return sums


def _int_zeros(size: int) -> Counts:
    return np.zeros(size, dtype=np.int64)


def _joined(items: list[bytes] | list[str]) -> bytes:
    """Concatenate a batch into one bytes object, so counting runs in C over the whole batch."""
    if not items:
        return b""
    if isinstance(items[0], str):
        # "replace" keeps one byte per character for any non-ASCII input (and makes it a '?').
        return "".join(items).encode("ascii", "replace")  # type: ignore[arg-type]
    return b"".join(items)  # type: ignore[arg-type]


class _Scratch:
    """Reused work arrays for the byte passes, so a batch's temporaries cost no fresh memory.

    A fresh multi-megabyte array per pass costs a page fault per 4 KiB when
    the allocator hands memory back to the system between batches, which made
    the faults cost more than the counting.
    """

    def __init__(self) -> None:
        self._bytes: Bytes = np.empty(0, dtype=np.uint8)
        self._flags: npt.NDArray[np.bool_] = np.empty(0, dtype=np.bool_)

    def like(self, values: Bytes) -> tuple[Bytes, npt.NDArray[np.bool_]]:
        """A uint8 and a bool array of the shape of ``values``."""
        if self._bytes.size < values.size:
            self._bytes = np.empty(values.size, dtype=np.uint8)
            self._flags = np.empty(values.size, dtype=np.bool_)
        return self._bytes[: values.size].reshape(values.shape), self._flags[: values.size].reshape(values.shape)


def _count(flags: npt.NDArray[np.bool_]) -> int:
    return int(np.count_nonzero(flags))


@dataclass
class FastqStats:
    """An accumulator of FASTQ statistics fed a block (or a batch) of reads at a time.

    Quality totals are kept as raw ASCII values, with Q20/Q30 counts under
    both offsets while both are possible, and the Phred offset is guessed
    only in :meth:`summary`: whether a file is Phred+33 or Phred+64 is known
    once every character has been seen.
    """

    track_positions: bool = False
    reads: int = field(default=0, init=False)
    bases: int = field(default=0, init=False)
    min_length: int | None = field(default=None, init=False)
    max_length: int | None = field(default=None, init=False)
    first_header: str | None = field(default=None, init=False)
    _gc: int = field(default=0, init=False, repr=False)
    _n: int = field(default=0, init=False, repr=False)
    _short_lengths: Counts = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)
    _long_lengths: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _lanes: set[int] = field(default_factory=set, init=False, repr=False)
    _quality_sum: int = field(default=0, init=False, repr=False)
    _quality_max: int | None = field(default=None, init=False, repr=False)
    _below_phred64: bool = field(default=False, init=False, repr=False)
    _at_least: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _position_sums: Counts = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)
    _position_counts: Counts = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)
    _scratch: _Scratch = field(default_factory=_Scratch, init=False, repr=False, compare=False)

    # Quality thresholds counted for Q20 and Q30 under both offsets, as ASCII values.
    _THRESHOLDS = (33 + 20, 33 + 30, 64 + 20, 64 + 30)

    def note_header(self, header: str) -> None:
        """Remember the first read name, and the lane of every batch's first read."""
        if self.first_header is None:
            self.first_header = header
        lane = parse_read_name(header).get("lane")
        if lane is not None and len(self._lanes) < MAX_LANES:
            self._lanes.add(lane)

    def _add_lengths(self, lengths: Counts) -> None:
        shortest, longest = int(lengths.min()), int(lengths.max())
        self.reads += len(lengths)
        self.min_length = shortest if self.min_length is None else min(self.min_length, shortest)
        self.max_length = longest if self.max_length is None else max(self.max_length, longest)
        if longest >= _HISTOGRAM_LENGTHS:
            for value in lengths[lengths >= _HISTOGRAM_LENGTHS].tolist():
                self._long_lengths[value] = self._long_lengths.get(value, 0) + 1
            lengths = lengths[lengths < _HISTOGRAM_LENGTHS]
            if not len(lengths):
                return
            longest = int(lengths.max())
        if len(self._short_lengths) <= longest:
            grown = _int_zeros(max(longest + 1, 2 * len(self._short_lengths)))
            grown[: len(self._short_lengths)] = self._short_lengths
            self._short_lengths = grown
        if shortest == longest:
            self._short_lengths[longest] += len(lengths)
        elif len(lengths) * 4 >= longest:
            self._short_lengths[: longest + 1] += np.bincount(lengths, minlength=longest + 1)
        else:
            # A few long reads: counting into a histogram as long as the longest would cost more.
            np.add.at(self._short_lengths, lengths, 1)

    def _length_counts(self) -> dict[int, int]:
        """Reads of each length."""
        counts = dict(self._long_lengths)
        lengths = np.flatnonzero(self._short_lengths)
        counts.update(zip(lengths.tolist(), self._short_lengths[lengths].tolist(), strict=True))
        return counts

    def add_reads(self, sequences: Bytes, qualities: Bytes, lengths: Counts, *, padding: int = 0) -> bool:
        """Fold reads in; False, with nothing folded, when a byte of them is not valid FASTQ.

        ``sequences`` and ``qualities`` are either reads x positions matrices,
        zero beyond each read's end (``padding`` such zeros in each), or the
        reads' concatenation. Invalid means a sequence byte or a quality byte
        outside '!'..'~': whitespace, a control byte, or one that is not ASCII.
        """
        if len(lengths) == 0:
            return True
        if not (self._printable(sequences, padding) and self._printable(qualities, padding)):
            return False
        self._add_lengths(lengths)
        bases = int(lengths.sum())
        self.bases += bases
        if bases == 0:
            return True
        self._add_bases(sequences)
        self._add_qualities(qualities, padding)
        if self.track_positions:
            self._add_positions(qualities, lengths)
        return True

    def _printable(self, values: Bytes, padding: int) -> bool:
        """No real byte (padding zeros aside) is whitespace, a control byte or beyond ASCII."""
        if values.size == 0:
            return True
        if int(values.max()) > HIGHEST_BYTE:
            return False
        if not padding:
            return int(values.min()) >= LOWEST_BYTE
        _, flags = self._scratch.like(values)
        np.less(values, LOWEST_BYTE, out=flags)
        return _count(flags) == padding

    def _add_bases(self, sequences: Bytes) -> None:
        work, flags = self._scratch.like(sequences)
        c, n = _UPPER_C, _UPPER_N
        if int(sequences.max()) >= _LOWER_C:
            # Soft-masked (lower-case) bases are rare: fold case only when some are there.
            sequences = np.bitwise_or(sequences, _CASE_BIT, out=work)
            c, n = _LOWER_C, _LOWER_N
        np.equal(sequences, n, out=flags)
        self._n += _count(flags)
        # 'C' and 'G' differ in one bit (4) and no other byte maps onto 'C' without it: one comparison counts both.
        np.bitwise_and(sequences, _WITHOUT_G_BIT, out=work)
        np.equal(work, c, out=flags)
        self._gc += _count(flags)

    def _add_qualities(self, qualities: Bytes, padding: int) -> None:
        _, flags = self._scratch.like(qualities)
        self._quality_sum += byte_sum(qualities)
        high = int(qualities.max())
        self._quality_max = high if self._quality_max is None else max(self._quality_max, high)
        if not self._below_phred64:
            np.less(qualities, PHRED64_MIN, out=flags)
            self._below_phred64 = _count(flags) > padding
        # Below '@' the file cannot be Phred+64, so only the Phred+33 thresholds are worth counting.
        thresholds = self._THRESHOLDS[:2] if self._below_phred64 else self._THRESHOLDS
        for threshold in thresholds:
            np.greater_equal(qualities, threshold, out=flags)
            self._at_least[threshold] = self._at_least.get(threshold, 0) + _count(flags)

    def _add_positions(self, qualities: Bytes, lengths: Counts) -> None:
        """Add per-position quality sums and the number of reads reaching each position."""
        longest = int(lengths.max())
        if len(self._position_sums) < longest:
            grow = longest - len(self._position_sums)
            self._position_sums = np.concatenate([self._position_sums, _int_zeros(grow)])
            self._position_counts = np.concatenate([self._position_counts, _int_zeros(grow)])
        if qualities.ndim == 2:
            self._position_sums[: qualities.shape[1]] += column_sums(qualities)
        else:
            # Concatenated reads are long ones, few to a batch: adding each read in turn is cheap next to its length.
            start = 0
            for length in lengths.tolist():
                self._position_sums[:length] += qualities[start : start + length]
                start += length
        reads_of_length = np.bincount(lengths, minlength=longest + 1)
        reads_reaching = np.cumsum(reads_of_length[::-1])[::-1]
        self._position_counts[:longest] += reads_reaching[1 : longest + 1]

    def add_batch(self, sequences: list[bytes] | list[str], qualities: list[bytes] | list[str]) -> None:
        """Fold one batch of reads (sequences and their qualities, in the same order) into the totals."""
        if len(sequences) != len(qualities):
            raise ValueError(f"{len(sequences)} sequences but {len(qualities)} quality strings")
        if not sequences:
            return
        sequence_bytes = np.frombuffer(_joined(sequences), dtype=np.uint8)
        quality_bytes = np.frombuffer(_joined(qualities), dtype=np.uint8)
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        if len(sequence_bytes) != len(quality_bytes) or not np.array_equal(
            lengths, np.fromiter(map(len, qualities), dtype=np.int64, count=len(qualities))
        ):
            raise ValueError("a sequence and its quality differ in length")
        if not self.add_reads(sequence_bytes, quality_bytes, lengths):
            raise ValueError("a sequence or quality byte outside '!'..'~'")

    def quality_offset(self) -> int | None:
        """Guess the Phred offset: 64 when nothing is below '@' and something is above 'J', else 33."""
        if self._quality_max is None:
            return None
        if not self._below_phred64 and self._quality_max > PHRED64_MAX_ABOVE:
            return 64
        return 33

    def n50(self) -> int | None:
        """The read length L such that reads of length >= L hold at least half of all bases."""
        if not self.bases:
            return None
        half, total = self.bases / 2, 0
        counts = self._length_counts()
        for length in sorted(counts, reverse=True):
            total += length * counts[length]
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
            "fixed_length": self.min_length == self.max_length and self.reads > 0,
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
