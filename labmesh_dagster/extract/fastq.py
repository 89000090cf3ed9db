"""Streaming FASTQ statistics: read counts, lengths, GC, N and quality.

FASTQ files run to tens of gigabytes, so records are parsed by dnaio (in C)
and summarised a batch at a time with numpy: Python touches each read once to
collect it, never each base. Memory stays bounded by the batch size whatever
the file size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import dnaio
import numpy as np
import numpy.typing as npt

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.base import Extractor, FileContext, Summary
from labmesh_dagster.extract.compression import Readable, codec_error_in_rest, open_decompressed

_GC_BYTES = np.frombuffer(b"GCgc", dtype=np.uint8)
_N_BYTES = np.frombuffer(b"Nn", dtype=np.uint8)

PHRED64_MIN = 64
"""Lowest quality character of Phred+64 data (Illumina 1.3-1.7); Phred+33 data goes far below."""

PHRED64_MAX_ABOVE = 74
"""Phred+33 tops out near 'J' (74); a maximum above it, with nothing below '@', means Phred+64."""

BATCH_BASES = 4_000_000
"""Most bases held in one batch, which bounds memory whatever the read lengths."""


def _joined(items: list[bytes] | list[str]) -> bytes:
    """Concatenate a batch into one bytes object, so counting runs in C over the whole batch."""
    if not items:
        return b""
    if isinstance(items[0], str):
        # dnaio only yields ASCII; "replace" keeps one byte per character for any other input.
        return "".join(items).encode("ascii", "replace")  # type: ignore[arg-type]
    return b"".join(items)  # type: ignore[arg-type]


def _int_zeros(size: int) -> npt.NDArray[np.int64]:
    return np.zeros(size, dtype=np.int64)


@dataclass
class FastqStats:
    """An accumulator of FASTQ statistics fed one batch of reads at a time.

    Quality sums are kept as raw ASCII values and the Phred offset is guessed
    only in :meth:`summary`, because whether a file is Phred+33 or Phred+64
    can only be known once every quality character has been seen.
    """

    track_positions: bool = False
    reads: int = field(default=0, init=False)
    bases: int = field(default=0, init=False)
    min_length: int | None = field(default=None, init=False)
    max_length: int | None = field(default=None, init=False)
    _byte_counts: npt.NDArray[np.int64] = field(default_factory=lambda: _int_zeros(256), init=False, repr=False)
    _quality_sum: int = field(default=0, init=False, repr=False)
    _quality_min: int | None = field(default=None, init=False, repr=False)
    _quality_max: int | None = field(default=None, init=False, repr=False)
    _position_sums: npt.NDArray[np.int64] = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)
    _position_counts: npt.NDArray[np.int64] = field(default_factory=lambda: _int_zeros(0), init=False, repr=False)

    def add_batch(self, sequences: list[bytes] | list[str], qualities: list[bytes] | list[str]) -> None:
        """Fold one batch of reads (sequences and their qualities, in the same order) into the totals."""
        if len(sequences) != len(qualities):
            raise ValueError(f"{len(sequences)} sequences but {len(qualities)} quality strings")
        if not sequences:
            return
        sequence_bytes = _joined(sequences)
        quality_bytes = _joined(qualities)
        if len(sequence_bytes) != len(quality_bytes):
            raise ValueError("sequences and qualities of the batch differ in total length")
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        shortest, longest = int(lengths.min()), int(lengths.max())
        self.reads += len(sequences)
        self.bases += len(sequence_bytes)
        self.min_length = shortest if self.min_length is None else min(self.min_length, shortest)
        self.max_length = longest if self.max_length is None else max(self.max_length, longest)
        self._byte_counts += np.bincount(np.frombuffer(sequence_bytes, dtype=np.uint8), minlength=256)
        if not quality_bytes:
            return
        quality = np.frombuffer(quality_bytes, dtype=np.uint8)
        self._quality_sum += int(quality.sum(dtype=np.int64))
        low, high = int(quality.min()), int(quality.max())
        self._quality_min = low if self._quality_min is None else min(self._quality_min, low)
        self._quality_max = high if self._quality_max is None else max(self._quality_max, high)
        if self.track_positions:
            self._add_positions(quality, lengths, longest)

    def _add_positions(self, quality: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64], longest: int) -> None:
        """Add per-position quality sums and read counts for one batch."""
        if len(self._position_sums) < longest:
            self._position_sums = np.concatenate([self._position_sums, _int_zeros(longest - len(self._position_sums))])
            self._position_counts = np.concatenate(
                [self._position_counts, _int_zeros(longest - len(self._position_counts))]
            )
        if int(lengths.min()) == longest:
            # The usual case (one read length per run): the batch is already a reads x positions matrix.
            self._position_sums[:longest] += quality.reshape(-1, longest).sum(axis=0, dtype=np.int64)
            self._position_counts[:longest] += len(lengths)
            return
        # Mixed lengths (trimmed reads): give every base its position within its read, then sum by position.
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = np.arange(quality.size, dtype=np.int64) - starts
        # float64 weights are exact here: a batch's sums stay far below 2**53.
        sums = np.bincount(positions, weights=quality, minlength=longest)
        self._position_sums[:longest] += np.rint(sums).astype(np.int64)
        reads_of_length = np.bincount(lengths, minlength=longest + 1)
        reads_reaching = np.cumsum(reads_of_length[::-1])[::-1]
        self._position_counts[:longest] += reads_reaching[1 : longest + 1]

    def quality_offset(self) -> int | None:
        """Guess the Phred offset: 64 when nothing is below '@' and something is above 'J', else 33."""
        if self._quality_min is None or self._quality_max is None:
            return None
        if self._quality_min >= PHRED64_MIN and self._quality_max > PHRED64_MAX_ABOVE:
            return 64
        return 33

    def summary(self) -> dict[str, Any]:
        """The statistics as a JSON-ready dict; values that need at least one base are None without one."""
        offset = self.quality_offset()
        counts = self._byte_counts
        has_bases = self.bases > 0
        summary: dict[str, Any] = {
            "reads": self.reads,
            "bases": self.bases,
            "min_length": self.min_length,
            "mean_length": round(self.bases / self.reads, 2) if self.reads else None,
            "max_length": self.max_length,
            "gc_percent": round(100 * int(counts[_GC_BYTES].sum()) / self.bases, 2) if has_bases else None,
            "n_percent": round(100 * int(counts[_N_BYTES].sum()) / self.bases, 4) if has_bases else None,
            "mean_quality": round(self._quality_sum / self.bases - offset, 2) if offset is not None else None,
            "quality_encoding": f"phred{offset}" if offset is not None else None,
        }
        if self.track_positions:
            summary["per_position_mean_quality"] = self._per_position_means(offset)
        return summary

    def _per_position_means(self, offset: int | None) -> list[float]:
        if offset is None or self.max_length is None:
            return []
        sums = self._position_sums[: self.max_length]
        counts = self._position_counts[: self.max_length]
        means: list[float] = np.round(sums / counts - offset, 2).tolist()
        return means


class _LineCountingStream(io.RawIOBase):
    """Counts newlines on the way to the parser and remembers whether the data ended.

    dnaio reports a last record cut inside its quality line as a length
    mismatch; knowing that its line is the file's final, unterminated line is
    what lets that be called "truncated" rather than "bad_format".
    """

    def __init__(self, inner: BinaryIO) -> None:
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


def _format_error_reason(exc: dnaio.FastqFormatError, counted: _LineCountingStream) -> str:
    """'truncated' when the faulty record is the one cut off by the end of the data, else 'bad_format'.

    dnaio also says "premature end of file" of a short file that never was
    FASTQ, hence the check that the data at least starts like FASTQ.
    """
    if counted.first_byte != b"@":
        return "bad_format"
    if "Premature end of file" in str(exc):
        return "truncated"
    if counted.is_final_unterminated_line(getattr(exc, "line", None)):
        return "truncated"
    return "bad_format"


def accumulate_fastq(stream: Readable, name: str, stats: FastqStats, *, batch_size: int = 20000) -> None:
    """Parse a (possibly compressed) FASTQ stream into ``stats``, raising ExtractionError on bad data.

    Every complete record read before an error is already in ``stats`` when
    the error is raised, which lets a caller say how far a broken file got.
    When the parser fails on compressed data, the rest is decompressed to see
    whether the codec itself objects, and if so its reason is the one raised.
    """
    decompressed = open_decompressed(stream, name)
    counted = _LineCountingStream(decompressed)
    sequences: list[str] = []
    qualities: list[str] = []
    batch_bases = 0
    try:
        reader = dnaio.open(io.BufferedReader(counted), fileformat="fastq")  # type: ignore[call-overload]
        for record in reader:
            sequences.append(record.sequence)
            qualities.append(record.qualities or "")
            batch_bases += len(record.sequence)
            # Batches are bounded in bases as well as reads: 20,000 long reads (nanopore) would
            # otherwise make a batch, and the per-base arrays built from it, hundreds of MB.
            if len(sequences) >= batch_size or batch_bases >= BATCH_BASES:
                stats.add_batch(sequences, qualities)
                sequences.clear()
                qualities.clear()
                batch_bases = 0
    except ExtractionError:
        raise
    except EOFError as exc:
        raise ExtractionError(name, "truncated", str(exc)) from exc
    except dnaio.FastqFormatError as exc:
        reason = _format_error_reason(exc, counted)
        codec_error = codec_error_in_rest(decompressed)
        if codec_error is not None:
            raise ExtractionError(
                name, codec_error.reason, f"{codec_error.detail} (parsing had already failed: {exc})"
            ) from exc
        raise ExtractionError(name, reason, str(exc)) from exc
    finally:
        stats.add_batch(sequences, qualities)


def fastq_stats(
    stream: BinaryIO, name: str, *, track_positions: bool = False, batch_size: int = 20000
) -> dict[str, Any]:
    """Summarise a FASTQ stream (plain, gzip, bzip2, xz or zstd), reading it once and in batches.

    Raises ExtractionError with reason ``truncated`` (data or a record cut
    short), ``bad_gzip`` / ``bad_bzip2`` / ``bad_xz`` / ``bad_zstd`` (corrupt
    compressed data) or ``bad_format`` (not valid FASTQ). An empty stream is
    not an error: it has 0 reads.
    """
    stats = FastqStats(track_positions=track_positions)
    accumulate_fastq(stream, name, stats, batch_size=batch_size)
    return stats.summary()


def extract_fastq(stream: BinaryIO, ctx: FileContext) -> Summary:
    """The registry's FASTQ extractor: statistics, plus the reads counted before any fault."""
    stats = FastqStats()
    try:
        accumulate_fastq(stream, ctx.name, stats)
    except ExtractionError:
        ctx.partial["reads_before_error"] = stats.reads
        raise
    summary = stats.summary()
    text = (
        f"FASTQ reads={summary['reads']} bases={summary['bases']} "
        f"mean_length={summary['mean_length']} gc_percent={summary['gc_percent']}"
    )
    return Summary(metadata=summary, text=text)


EXTRACTORS: dict[str, Extractor] = {"fastq": extract_fastq}
