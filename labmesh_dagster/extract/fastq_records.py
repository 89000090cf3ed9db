"""FASTQ read record by record, strictly by the grammar of Cock et al. 2010, naming the fault of a bad file.

The format (Nucleic Acids Research 38:1767, "The Sanger FASTQ file format for
sequences with quality scores, and the Solexa/Illumina FASTQ variants"):

- a title line: ``@`` and the title;
- one or more sequence lines, wrapped as older Sanger tools wrote them, with
  no whitespace in them;
- a ``+`` line, optionally repeating the title exactly;
- one or more quality lines of characters ``!`` (33) to ``~`` (126) whose
  concatenation is as long as the sequence.

A quality line may begin with ``@`` or ``+`` like any other quality
character, so where a record ends is decided by the sequence's length, never
by what a line begins with. Zero-length reads have an empty sequence line and
an empty quality line. Blank lines at the very end of a file are accepted.

This reader runs only where the block reader in ``fastq.py`` meets a record it
does not vouch for: a wrapped record, or a broken one. It reads on until a run
of ordinary four-line records shows the block reader can take over again,
and raises an :class:`ExtractionError` naming the record, the line and the
real cause of the first fault it meets, after folding the records before it
into the statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labmesh_dagster.core.errors import ExtractionError
from labmesh_dagster.extract.fastq_stats import FastqStats

RESYNC_RECORDS = 16
"""Ordinary four-line records read in a row after which the block reader takes over again."""

_OUTSIDE = re.compile(rb"[^!-~]")
"""A byte no sequence or quality line may hold: whitespace, a control byte or a non-ASCII byte."""

_NOT_BLANK = re.compile(rb"[^\r\n]")
"""Anything but a line ending: found at once where more records follow, without copying the rest."""

_WHITESPACE = {
    ord(" "): "a space",
    ord("\t"): "a tab",
    ord("\v"): "a vertical tab",
    ord("\f"): "a form feed",
    ord("\r"): "a carriage return",
}

_SHOWN = 40
"""Characters of a faulty line quoted in an error."""


def _shown(line: bytes) -> str:
    text = line[:_SHOWN].decode("ascii", "backslashreplace")
    return repr(text + ("..." if len(line) > _SHOWN else ""))


@dataclass
class Position:
    """Where the reader stands: lines and records before the data it reads, counted from the file's start."""

    lines: int = 0
    records: int = 0


@dataclass
class Progress:
    """What one call read: ``end`` (offset after the last whole record), lines and records read, and whether
    it stopped for want of data (the rest of the record comes with the next block)."""

    end: int
    lines: int = 0
    records: int = 0
    wants_more: bool = False
    sequences: list[bytes] = field(default_factory=list, repr=False)
    qualities: list[bytes] = field(default_factory=list, repr=False)


class _NeedMore(Exception):
    """The data ends inside a record and more data is to come."""


class _RecordReader:
    """One pass over ``data[start:end]``, a line at a time; every fault raised names its line and record."""

    def __init__(self, data: bytes | bytearray, start: int, end: int, at_eof: bool, where: Position, name: str) -> None:
        self.data, self.end, self.at_eof = data, end, at_eof
        self.pos = start
        self.line = 0  # lines read so far in this call
        self.where = where
        self.name = name

    def fault(self, reason: str, line: int, record: int, cause: str) -> ExtractionError:
        return ExtractionError(self.name, reason, f"line {line}, record {record}: {cause}")

    def number(self, offset: int = 0) -> int:
        """The file's 1-based line number of the line last read, or ``offset`` lines after it."""
        return self.where.lines + self.line + offset

    def next_line(self) -> tuple[bytes, bool] | None:
        """The next line without its line ending, and whether it had one; None at the end of the file."""
        if self.pos >= self.end:
            if self.at_eof:
                return None
            raise _NeedMore
        newline = self.data.find(b"\n", self.pos, self.end)
        if newline < 0:
            if not self.at_eof:
                raise _NeedMore
            line, terminated, self.pos = bytes(self.data[self.pos : self.end]), False, self.end
        else:
            line, terminated, self.pos = bytes(self.data[self.pos : newline]), True, newline + 1
        self.line += 1
        return (line[:-1] if line.endswith(b"\r") else line), terminated

    def only_blank_lines_left(self) -> bool:
        """True when nothing but line endings follows; with more data to come, the caller must wait for it."""
        if _NOT_BLANK.search(self.data, self.pos, self.end) is not None:
            return False
        if not self.at_eof:
            raise _NeedMore
        self.pos = self.end
        return True

    def check_bytes(self, line: bytes, record: int, what: str) -> None:
        """Raise on the first byte of a sequence or quality line outside '!'..'~', naming what it is."""
        found = _OUTSIDE.search(line)
        if found is None:
            return
        column, byte = found.start() + 1, line[found.start()]
        place = f"{what}, column {column}"
        if byte in _WHITESPACE:
            raise self.fault("whitespace", self.number(), record, f"{_WHITESPACE[byte]} in the {place}")
        if what == "quality":
            raise self.fault(
                "bad_quality",
                self.number(),
                record,
                f"quality character 0x{byte:02X} at column {column} is outside '!'..'~' (33-126)",
            )
        kind = "a non-ASCII byte" if byte >= 0x80 else "a control byte"
        raise self.fault("bad_format", self.number(), record, f"{kind} (0x{byte:02X}) in the {place}")

    def record(self, record: int) -> tuple[bytes, bytes, bool] | None:
        """Read one record: (sequence, quality, whether it was an ordinary four-line one); None at the end."""
        got = self.next_line()
        if got is None:
            return None
        title_line, terminated = got
        title_number = self.number()
        if not title_line:
            if self.only_blank_lines_left():
                return None
            raise self.fault("bad_format", title_number, record, "a blank line where a record should start")
        if not title_line.startswith(b"@"):
            raise self.fault(
                "bad_format", title_number, record, f"expected '@' to start a record, found {_shown(title_line)}"
            )
        if not terminated:
            raise self.fault("truncated", title_number, record, "the file ends inside the title line")
        sequence_lines, plus, plus_terminated = self.sequence_lines(title_number, record)
        sequence = b"".join(sequence_lines)
        self.check_plus(plus, plus_terminated, title_line[1:], record)
        quality_lines = self.quality_lines(len(sequence), plus_terminated, record)
        return sequence, b"".join(quality_lines), len(sequence_lines) == 1 and len(quality_lines) == 1

    def sequence_lines(self, title_number: int, record: int) -> tuple[list[bytes], bytes, bool]:
        """The sequence lines, then the '+' line that ends them; one empty line is a zero-length read."""
        lines: list[bytes] = []
        while True:
            got = self.next_line()
            if got is None or (not got[0] and self.only_blank_lines_left()):
                where = "after its title" if not lines else "inside its sequence"
                raise self.fault("truncated", self.number(), record, f"the file ends {where}, before its '+' line")
            line, terminated = got
            if line.startswith(b"+"):
                return lines, line, terminated
            if line.startswith(b"@"):
                raise self.missing_plus(lines, title_number, record)
            if not line and (lines or not self.next_is_plus()):
                raise self.fault("bad_format", self.number(), record, "a blank line inside the sequence")
            self.check_bytes(line, record, "sequence")
            if not terminated:
                raise self.fault("truncated", self.number(), record, "the file ends inside the sequence")
            lines.append(line)

    def missing_plus(self, lines: list[bytes], title_number: int, record: int) -> ExtractionError:
        """The sequence lines ran into a line starting with '@', which no sequence holds: '+' is missing.

        Where a four-line record has its '+' line is where the fault most
        likely is, so that is the line named, with the '@' line after it.
        """
        if len(lines) <= 1:
            return self.fault(
                "bad_format", self.number(), record, "expected the '+' line, found a line starting with '@'"
            )
        return self.fault(
            "bad_format",
            title_number + 2,
            record,
            f"expected the '+' line, found {_shown(lines[1])}; "
            f"no '+' line follows before line {self.number()}, which starts with '@'",
        )

    def next_is_plus(self) -> bool:
        """True when the next line is a '+' line (an empty line before it is a zero-length sequence)."""
        return self.pos >= self.end or self.data.startswith(b"+", self.pos)

    def check_plus(self, plus: bytes, terminated: bool, title: bytes, record: int) -> None:
        """The '+' line is bare or repeats the title exactly."""
        repeated = plus[1:]
        if not repeated or repeated == title:
            return
        if not terminated and title.startswith(repeated):
            raise self.fault("truncated", self.number(), record, "the file ends inside the '+' line")
        raise self.fault(
            "bad_format",
            self.number(),
            record,
            f"the '+' line repeats {_shown(repeated)}, not the record's title {_shown(title)}",
        )

    def quality_lines(self, length: int, plus_terminated: bool, record: int) -> list[bytes]:
        """Quality lines until they hold as many characters as the sequence has bases."""
        lines: list[bytes] = []
        read = 0
        while not lines or read < length:
            got = self.next_line() if plus_terminated else None
            if got is None or (not got[0] and read < length and self.only_blank_lines_left()):
                return self.quality_at_end(lines, read, length, record)
            line, terminated = got
            if not line:
                if length == 0:
                    return [line]
                raise self.fault(
                    "length_mismatch",
                    self.number(),
                    record,
                    f"a blank line where the quality goes on: {read} quality characters for {length} bases",
                )
            if line.startswith(b"@") and lines and read + len(line) > length:
                # The quality ended short, and this line is the next record's title.
                raise self.fault(
                    "length_mismatch",
                    self.number(-1),
                    record,
                    f"a quality of {read} characters for a sequence of {length} bases",
                )
            self.check_bytes(line, record, "quality")
            read += len(line)
            lines.append(line)
            if read > length:
                raise self.fault(
                    "length_mismatch",
                    self.number(),
                    record,
                    f"a quality of {read} characters for a sequence of {length} bases",
                )
            if not terminated and read < length:
                raise self.fault(
                    "truncated", self.number(), record, f"the file ends inside the quality ({read} of {length})"
                )
        return lines

    def quality_at_end(self, lines: list[bytes], read: int, length: int, record: int) -> list[bytes]:
        """The file ended before the quality was complete: a zero-length read's, or a fault."""
        if length == 0 and not lines:
            return [b""]
        if not lines:
            raise self.fault("truncated", self.number(), record, "the file ends after the '+' line, before the quality")
        raise self.fault(
            "length_mismatch",
            self.number(),
            record,
            f"a quality of {read} characters for a sequence of {length} bases, in the file's last record",
        )


def read_records(
    data: bytes | bytearray,
    start: int,
    end: int,
    *,
    at_eof: bool,
    where: Position,
    stats: FastqStats,
    name: str,
) -> Progress:
    """Read records from ``data[start:end]`` into ``stats`` until the data ends or ordinary records resume.

    ``where`` says how many lines and records of the file precede ``start``.
    Returns how far it got; ``wants_more`` when the data ends inside a
    record that the next block completes. A fault raises ExtractionError
    after the records before it are folded into ``stats``.
    """
    reader = _RecordReader(data, start, end, at_eof, where, name)
    progress = Progress(end=start)
    plain_run = 0
    try:
        while plain_run < RESYNC_RECORDS:
            record = reader.record(where.records + progress.records + 1)
            if record is None:
                progress.end, progress.lines = reader.pos, reader.line
                break
            sequence, quality, plain = record
            if progress.records == 0 and stats.first_header is None:
                stats.note_header(_title_at(data, progress.end))
            progress.sequences.append(sequence)
            progress.qualities.append(quality)
            progress.records += 1
            progress.end, progress.lines = reader.pos, reader.line
            plain_run = plain_run + 1 if plain else 0
    except _NeedMore:
        progress.wants_more = True
    finally:
        stats.add_batch(progress.sequences, progress.qualities)
        progress.sequences, progress.qualities = [], []
    return progress


def _title_at(data: bytes | bytearray, start: int) -> str:
    """The title of the record starting at ``start``, as text."""
    newline = data.find(b"\n", start)
    line = bytes(data[start + 1 : newline if newline >= 0 else len(data)])
    return line.rstrip(b"\r").decode("ascii", "replace")
