"""Streaming FASTQ statistics: read counts, lengths, GC, N, quality and the Illumina header.

FASTQ files run to tens of gigabytes, and per-read Python work is what makes
a FASTQ reader slow, so ordinary records are never looked at one by one. The
file is read in blocks of whole lines; numpy finds every newline of a block at
once (a read-ahead thread does that, and for long reads ``bytes.find`` does),
checks the four-line record structure from those positions, and lifts all
sequence lines (and all quality lines) out as one reads x positions matrix, a
strided copy with no per-read Python; reads of mixed lengths are zeroed past
their ends, and long reads of very different lengths are joined end to end
instead. Counting bases and qualities is then a few vectorised passes
(:mod:`~labmesh_dagster.extract.fastq_stats`).

A record the block reader does not vouch for (wrapped over several lines, as
older Sanger tools wrote them, or broken) is read by the strict record reader
(:mod:`~labmesh_dagster.extract.fastq_records`), which follows the grammar of
Cock et al. 2010 and names the fault, its record and its line; once ordinary
records resume, the block reader takes over again.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

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
from labmesh_dagster.extract.fastq_records import Position, read_records
from labmesh_dagster.extract.fastq_stats import HIGHEST_BYTE, LOWEST_BYTE, FastqStats, byte_sum, parse_read_name
from labmesh_dagster.extract.readahead import QUEUE_DEPTH, AheadStream, ahead

__all__ = ["FastqStats", "accumulate_fastq", "byte_sum", "extract_fastq", "fastq_stats", "parse_read_name"]

PIECE_SIZE = 64 * 1024
"""Bytes first asked of the stream at a time: what was read before a fault is kept, not lost with the read."""

MAX_PIECE_SIZE = 4 * 1024 * 1024

BLOCK_SIZE = 8 * 1024 * 1024
"""Bytes read per block: large enough that numpy's per-call cost vanishes, small enough to stay in cache."""

READ_AHEAD_FROM_BYTES = 1024 * 1024
"""Stored size from which reading (and inflating) runs in threads of their own. A smaller file, even
compressed, is less than one block, so nothing would overlap: its threads' start and hand-overs cost a
delivery of small files more than they spared (and on a busy machine a thread waits to start)."""

SMALL_FILE_EXPANSION = 8
"""A small file's blocks hold this many times its stored size (gzipped FASTQ inflates three to five
times), so that one block usually holds it all without a fresh 8 MiB buffer to fill with zeros per file:
on the caller's thread that buffer's page faults cost more than reading the file."""

WINDOW_SLACK = 4096
"""Spare bytes after every block, so a read's row of the matrix may run past the block's end; also the
longest read length that goes through a matrix when lengths differ."""

PADDED_SPREAD = 512
"""Mixed read lengths go through a zero-padded matrix while the longest is at most this much above the mean:
beyond it the padding costs more than joining the reads one by one."""

FOLD_BYTES = 512 * 1024
"""Bases folded in at a time: a batch and its temporaries stay in the core's cache. At 1 MiB the batch's
matrices, freed together, outgrow what glibc keeps for reuse, and page faults double the cost."""

MASK_TABLE_WIDTH = 1024
"""Widest reads whose padding is zeroed through a table of masks (a MiB at most)."""

LONG_LINES = 2048
"""Mean line length above which newlines are found with ``bytes.find``, a call per line, not a pass per byte."""

_NEWLINE, _CR, _AT, _PLUS = 10, 13, ord("@"), ord("+")

Bytes = npt.NDArray[np.uint8]
Offsets = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Block:
    """Lines of the file in ``buffer[:size]`` (whole four-line groups, or at its end whatever is left),
    with where their newlines are; the buffer has WINDOW_SLACK spare bytes after ``size``."""

    buffer: bytearray
    size: int
    newlines: Offsets
    at_eof: bool
    plain: _Plain | None = None


@dataclass
class _Balance:
    """Seconds of work per block in each thread, so that checking the records' structure goes to the lighter one.

    Reading (and, through a caller's hashing tee, hashing) can cost more than
    counting or less: the check belongs beside whichever of the two leaves
    the other waiting less. Written by one thread each, read by the other.
    """

    reading: float = 0.0
    counting: float = 0.0


def _find_newlines(
    buffer: bytearray, size: int, long_lines: bool, flags: npt.NDArray[np.bool_] | None = None
) -> Offsets:
    """Positions of the newlines in ``buffer[:size]``: one numpy pass, or a ``find`` per line when lines are long.

    ``flags``, at least ``size`` long, is reused for the comparison, sparing a fresh array per block.
    """
    if not long_lines:
        data = np.frombuffer(buffer, dtype=np.uint8, count=size)
        return np.flatnonzero(np.equal(data, _NEWLINE, out=None if flags is None else flags[:size]))
    positions = []
    find = buffer.find
    at = find(b"\n", 0, size)
    while at >= 0:
        positions.append(at)
        at = find(b"\n", at + 1, size)
    return np.array(positions, dtype=np.int64)


def _blocks(stream: Readable, block_size: int, balance: _Balance) -> Generator[_Block, None, None]:
    """Read the stream into blocks of whole four-line groups, finding their newlines.

    It runs in the read-ahead thread, but for a small file, on the caller's.
    The lines after the last multiple of four are carried into the next
    block. The last block, at the end of the data, holds whatever is left (a
    final record without its newline, a broken one, blank lines) and says so.
    A fault of the stream is raised after the blocks of what was read before
    it. Finding newlines is numpy work that releases the GIL, so it overlaps
    the counting.
    """
    carry = memoryview(b"")
    fault: BaseException | None = None
    # Buffers are reused round-robin, more of them than blocks can be in flight (queued, being
    # counted, being filled), because a fresh 8 MiB buffer costs thousands of page faults.
    pool: list[bytearray] = [bytearray()] * (QUEUE_DEPTH + 3)
    piece = PIECE_SIZE
    turn = 0
    long_lines = False
    flags = np.empty(0, dtype=np.bool_)
    while True:
        started = time.thread_time()
        # A buffer is left for another only once a block of it is handed on; until then (a record
        # longer than the buffer) it is replaced by one twice the size of what it holds.
        size = max(block_size, 2 * len(carry))
        if len(pool[turn]) < size + WINDOW_SLACK:
            pool[turn] = bytearray(size + WINDOW_SLACK)
        buffer = pool[turn]
        buffer[: len(carry)] = carry
        filled, fault = _fill(stream, memoryview(buffer)[:size], len(carry), piece)
        # Pieces grow once the data flows: small first reads keep what precedes an early fault,
        # large later ones spare a call per 64 KiB.
        piece = min(piece * 4, MAX_PIECE_SIZE)
        if len(flags) < filled:
            flags = np.empty(size, dtype=np.bool_)
        newlines = _find_newlines(buffer, filled, long_lines, flags)
        if len(newlines):
            long_lines = filled / len(newlines) > LONG_LINES
        whole = len(newlines) - len(newlines) % 4
        balance.reading = time.thread_time() - started
        plain = None
        if whole and balance.reading < balance.counting:
            # Checked here, while the block is still in this core's cache, when this thread has room.
            plain = _plain_records(np.frombuffer(buffer, dtype=np.uint8), buffer, newlines[:whole], 0)
        if filled < size and fault is None:
            carry = memoryview(b"")
            yield _Block(buffer, filled, newlines, True, plain)
            return
        if whole:
            cut = int(newlines[whole - 1]) + 1
            yield _Block(buffer, cut, newlines[:whole], False, plain)
            carry = memoryview(buffer)[cut:filled]
            turn = (turn + 1) % len(pool)
        else:
            carry = memoryview(buffer)[:filled]
        if fault is not None:
            carry = memoryview(b"")
            raise fault


def _fill(stream: Readable, view: memoryview, start: int, piece: int) -> tuple[int, BaseException | None]:
    """Read into ``view`` from ``start`` until it is full or the data ends: (bytes filled, fault if any).

    Reads go in pieces straight into the buffer (no copy), so that on a fault
    of the stream everything read before it is kept and counted.
    """
    readinto = getattr(stream, "readinto1", None) or getattr(stream, "readinto", None)
    filled = start
    try:
        while filled < len(view):
            end = min(filled + piece, len(view))
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


class _Masks:
    """Row ``n`` is ``n`` ones then zeros: multiplying a read's row by it zeroes what lies past the read's end.

    For short reads, gathering rows of a table costs a copy per read, less
    than comparing every position with every length; the table grows to the
    widest reads met and no further than MASK_TABLE_WIDTH, beyond which the
    comparison is the cheaper (the table would grow as the square of it).
    """

    def __init__(self) -> None:
        self._table: Bytes = np.zeros((1, 0), dtype=np.uint8)

    def of(self, lengths: Offsets, width: int) -> Bytes:
        if width > MASK_TABLE_WIDTH:
            return (np.arange(width) < lengths[:, None]).view(np.uint8)
        if width > self._table.shape[1]:
            self._table = np.tri(width + 1, width, -1, dtype=np.uint8)
        return self._table[lengths, :width]


class _Records:
    """Consecutive four-line records, from the newlines that end their lines: where each line starts and ends.

    ``newlines`` holds four newlines a record, so as a matrix its columns end
    the title, sequence, '+' and quality lines, and each line starts one past
    the newline before it. Line ends exclude a carriage return (CRLF files).
    """

    def __init__(self, data: Bytes, newlines: Offsets, start: int) -> None:
        self.lines = newlines.reshape(-1, 4)
        self.ends = self.lines
        if (data[self.lines[:, 3] - 1] == _CR).any():
            starts = np.empty_like(newlines)
            starts[0] = start
            starts[1:] = newlines[:-1] + 1
            self.ends = (newlines - ((data[newlines - 1] == _CR) & (newlines > starts))).reshape(-1, 4)
        self.title_starts = np.empty(len(self.lines), dtype=np.int64)
        self.title_starts[0] = start
        self.title_starts[1:] = self.lines[:-1, 3] + 1

    @property
    def title_ends(self) -> Offsets:
        return self.ends[:, 0]

    @property
    def sequence_starts(self) -> Offsets:
        return self.lines[:, 0] + 1

    @property
    def lengths(self) -> Offsets:
        return self.ends[:, 1] - self.lines[:, 0] - 1

    @property
    def plus_starts(self) -> Offsets:
        return self.lines[:, 1] + 1

    @property
    def plus_ends(self) -> Offsets:
        return self.ends[:, 2]

    @property
    def quality_starts(self) -> Offsets:
        return self.lines[:, 2] + 1

    @property
    def quality_lengths(self) -> Offsets:
        return self.ends[:, 3] - self.lines[:, 2] - 1


def _rows(data: Bytes, starts: Offsets, width: int) -> Bytes:
    """``width`` bytes from each start, as a matrix, copied row by row in C (no per-read Python)."""
    if width == 0:
        return np.zeros((len(starts), 0), dtype=np.uint8)
    # Every window of ``width`` bytes, as a view (numpy's sliding_window_view costs more per call than a batch's copy).
    windows = np.ndarray((len(data) - width + 1, width), dtype=np.uint8, buffer=data, strides=(1, 1))
    return windows[starts]  # type: ignore[no-any-return]


def _titles_repeated(data: Bytes, buffer: bytearray, records: _Records, which: Offsets) -> npt.NDArray[np.bool_]:
    """For the records ``which``, whether their '+' line repeats their title exactly (what follows '@' and '+')."""
    title_starts, plus_starts = records.title_starts[which] + 1, records.plus_starts[which] + 1
    widths = records.title_ends[which] - title_starts
    same = widths == records.plus_ends[which] - plus_starts
    width = int(widths.max())
    if width > WINDOW_SLACK:
        starts, ends, pluses = title_starts.tolist(), (title_starts + widths).tolist(), plus_starts.tolist()
        equal = [buffer[t:e] == buffer[p : p + e - t] for t, e, p in zip(starts, ends, pluses, strict=True)]
        return np.array(equal, dtype=np.bool_) & same
    beyond = np.arange(width) >= widths[:, None]
    return same & ((_rows(data, title_starts, width) == _rows(data, plus_starts, width)) | beyond).all(axis=1)  # type: ignore[no-any-return]


def _plain_count(data: Bytes, buffer: bytearray, records: _Records, lengths: Offsets) -> int:
    """How many of the leading records are ordinary four-line records this reader vouches for.

    A title line starting with '@', a sequence line not starting with '@' or
    '+' (it would end or break the record in the format's grammar), a '+'
    line that is bare or repeats the title, and a quality line as long as the
    sequence line: then the four-line reading and the grammar's agree.
    """
    # The first byte of each record's sequence, '+' and quality lines, and of the next record's title.
    firsts = data[records.lines + 1]
    ok = records.quality_lengths == lengths
    ok &= firsts[:, 1] == _PLUS
    ok[0] &= data[records.title_starts[0]] == _AT
    ok[1:] &= firsts[:-1, 3] == _AT
    sequence_firsts = firsts[:, 0]
    ok &= (lengths == 0) | ((sequence_firsts != _AT) & (sequence_firsts != _PLUS))
    repeats = np.flatnonzero(records.plus_ends - records.plus_starts != 1)
    if len(repeats):
        ok[repeats] &= _titles_repeated(data, buffer, records, repeats)
    return len(ok) if ok.all() else int(np.argmin(ok))


@dataclass(frozen=True)
class _Plain:
    """Consecutive four-line records, their read lengths, and how many of the leading ones are ordinary."""

    records: _Records
    lengths: Offsets
    count: int


def _plain_records(data: Bytes, buffer: bytearray, newlines: Offsets, start: int) -> _Plain:
    """The records whose newlines are ``newlines`` (four a record, the first line at ``start``), checked."""
    records = _Records(data, newlines, start)
    lengths = records.lengths
    return _Plain(records, lengths, _plain_count(data, buffer, records, lengths))


class _BlockReader:
    """Reads one file's blocks in order into ``stats``; the strict record reader takes what it does not vouch for."""

    def __init__(self, name: str, stats: FastqStats, balance: _Balance) -> None:
        self.name = name
        self.stats = stats
        self.balance = balance
        self.lines = 0  # lines of the file before the data of the current block
        self.pending = b""  # the start of a record that the next block completes
        self.masks = _Masks()

    def feed(self, block: _Block) -> None:
        buffer, size, newlines = block.buffer, block.size, block.newlines
        if self.pending:
            buffer = bytearray(len(self.pending) + size + WINDOW_SLACK)
            buffer[: len(self.pending)] = self.pending
            buffer[len(self.pending) : len(self.pending) + size] = memoryview(block.buffer)[:size]
            size += len(self.pending)
            newlines = _find_newlines(buffer, size, long_lines=size > LONG_LINES * max(len(newlines), 1))
        data = np.frombuffer(buffer, dtype=np.uint8)
        checked = None if self.pending else block.plain
        self.balance.counting = 0.0
        position, line = 0, 0
        while position < size:
            whole = (len(newlines) - line) // 4
            if whole:
                if checked is None:
                    checked = _plain_records(data, buffer, newlines[line : line + 4 * whole], position)
                taken = self._take_plain(data, buffer, checked)
                checked = None
                if taken:
                    position = int(newlines[line + 4 * taken - 1]) + 1
                    line += 4 * taken
                    continue
            if not block.at_eof and len(newlines) - line < 4:
                break  # the rest of a record, completed by the next block
            progress = read_records(
                buffer,
                position,
                size,
                at_eof=block.at_eof,
                where=Position(lines=self.lines + line, records=self.stats.reads),
                stats=self.stats,
                name=self.name,
            )
            position, line = progress.end, line + progress.lines
            if progress.wants_more:
                break
        self.pending = bytes(buffer[position:size])
        self.lines += line

    def _take_plain(self, data: Bytes, buffer: bytearray, plain: _Plain) -> int:
        """Fold the leading ordinary records in; how many were taken (0: the first needs the record reader)."""
        if plain.count == 0:
            return 0
        records = plain.records
        title = bytes(buffer[records.title_starts[0] + 1 : records.title_ends[0]]).decode("ascii", "replace")
        self.stats.note_header(title)
        started = time.thread_time()
        folded = self._fold(data, buffer, records, plain.lengths[: plain.count])
        self.balance.counting += time.thread_time() - started
        return folded

    def _fold(self, data: Bytes, buffer: bytearray, records: _Records, lengths: Offsets) -> int:
        """Fold the leading records, as many as ``lengths`` has; fewer when a byte of one is not valid FASTQ.

        Reads go in batches of about FOLD_BYTES: every pass over a batch then
        runs in cache, and its temporaries are reused rather than allocated.
        """
        count = len(lengths)
        longest, shortest, bases = int(lengths.max()), int(lengths.min()), int(lengths.sum())
        if longest == shortest or (longest <= WINDOW_SLACK and longest - bases / count <= PADDED_SPREAD):
            rows = max(1, FOLD_BYTES // max(longest, 1))
            bounds = list(range(0, count, rows)) + [count]
            joined = False
        else:
            # Long reads of very different lengths (nanopore): joined end to end, batches by bases.
            ends = np.searchsorted(np.cumsum(lengths), np.arange(FOLD_BYTES, bases, FOLD_BYTES), side="right")
            bounds = [0, *sorted(set(ends.tolist()) - {0, count}), count]
            joined = True
        sequence_starts, quality_starts = records.sequence_starts[:count], records.quality_starts[:count]
        for first, last in zip(bounds[:-1], bounds[1:], strict=True):
            span = slice(first, last)
            folded = self._fold_batch(data, buffer, sequence_starts[span], quality_starts[span], lengths[span], joined)
            if folded < last - first:
                return first + folded
        return count

    def _fold_batch(
        self,
        data: Bytes,
        buffer: bytearray,
        sequence_starts: Offsets,
        quality_starts: Offsets,
        lengths: Offsets,
        joined: bool,
    ) -> int:
        """Fold one batch of reads; how many were folded (fewer when one holds a byte that is not valid FASTQ)."""
        count = len(lengths)
        longest, shortest = int(lengths.max()), int(lengths.min())
        padding = 0
        if joined:
            # Slicing each read is cheap next to its length.
            view = memoryview(buffer)
            starts, ends = sequence_starts.tolist(), (sequence_starts + lengths).tolist()
            sequences = np.frombuffer(b"".join([view[s:e] for s, e in zip(starts, ends, strict=True)]), np.uint8)
            starts, ends = quality_starts.tolist(), (quality_starts + lengths).tolist()
            qualities = np.frombuffer(b"".join([view[s:e] for s, e in zip(starts, ends, strict=True)]), np.uint8)
        else:
            sequences, qualities = _rows(data, sequence_starts, longest), _rows(data, quality_starts, longest)
            if shortest != longest:
                inside = self.masks.of(lengths, longest)
                sequences *= inside
                qualities *= inside
                padding = count * longest - int(lengths.sum())
        if self.stats.add_reads(sequences, qualities, lengths, padding=padding):
            return count
        bad = _first_invalid_read(sequences, qualities, lengths)
        if bad:
            self._fold_batch(data, buffer, sequence_starts[:bad], quality_starts[:bad], lengths[:bad], joined)
        return bad


def _invalid(values: Bytes) -> npt.NDArray[np.bool_]:
    return (values < LOWEST_BYTE) | (values > HIGHEST_BYTE)  # type: ignore[no-any-return]


def _first_invalid_read(sequences: Bytes, qualities: Bytes, lengths: Offsets) -> int:
    """The index of the first read holding a byte outside '!'..'~' (zero padding past a read's end is no fault)."""
    if sequences.ndim == 2:
        inside = np.arange(sequences.shape[1]) < lengths[:, None]
        bad = ((_invalid(sequences) | _invalid(qualities)) & inside).any(axis=1)
        return int(np.argmax(bad))
    first = int(np.flatnonzero(_invalid(sequences) | _invalid(qualities))[0])
    return int(np.searchsorted(np.cumsum(lengths), first, side="right"))


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
    cores inflating and counting overlap; a file ``ctx`` knows to be smaller
    than `READ_AHEAD_FROM_BYTES` is read on the caller's thread. When parsing fails on compressed
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
    balance = _Balance()
    reader = _BlockReader(name, stats, balance)
    # Reading (and newline finding) run one block ahead in a thread, checking and counting here;
    # inflating, when the data is compressed, gets a thread of its own. Each stage releases the GIL
    # for most of its work, so two cores share them. (Plain data gains nothing from a third
    # thread: the copy it needs costs what it would spare, even when the caller hashes the bytes.)
    threaded = ctx is None or ctx.size is None or ctx.size >= READ_AHEAD_FROM_BYTES
    if not threaded and ctx is not None and ctx.size is not None:
        block_size = min(block_size, max(PIECE_SIZE, SMALL_FILE_EXPANSION * ctx.size))
    source: Readable = AheadStream(decompressed) if compressed and threaded else decompressed
    with (
        closing(source) if isinstance(source, AheadStream) else nullcontext(),
        ahead(_blocks(source, block_size, balance))
        if threaded
        else closing(_blocks(source, block_size, balance)) as blocks,
    ):
        for block in blocks:
            try:
                reader.feed(block)
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
            if ctx is not None and ctx.deadline.expired():
                ctx.stop_early("time_budget")
                return


def fastq_stats(
    stream: BinaryIO, name: str, *, track_positions: bool = False, block_size: int = BLOCK_SIZE
) -> dict[str, Any]:
    """Summarise a FASTQ stream (plain, gzip, bzip2, xz or zstd), reading it once and in blocks.

    Raises ExtractionError with reason ``truncated`` (data or a record cut
    short), ``bad_gzip`` / ``bad_bzip2`` / ``bad_xz`` / ``bad_zstd`` (corrupt
    compressed data), ``length_mismatch`` (a quality longer or shorter than
    its sequence), ``bad_quality`` (a quality character outside '!'..'~'),
    ``whitespace`` (a space, tab or other whitespace inside a sequence or
    quality line) or ``bad_format`` (not valid FASTQ); the detail names the
    line and the record. An empty stream is not an error: it has 0 reads.
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
