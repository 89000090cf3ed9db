"""A folder of experiment records: the shape a LIMS export or a hand-kept ELN has.

Each ``*.json``, ``*.yaml`` or ``*.yml`` file holds one experiment, a list of
experiments, or an object with an ``experiments`` list (common in LIMS
exports). Write-backs go to a separate outbox folder, never into the records
themselves, so that labmesh's own writes cannot look like a changed experiment.

A poll reads only the files whose modification time or size changed since its
cursor; `folder_index` remembers what each file held, so a fetch reads one file.
Which files to compare comes from the kernel's change feed (`folder_watch`,
inotify) in a process that has watched the folder since its last poll, so a
tick costs what changed in the folder, not what it holds; otherwise (a first
poll, lost events, a share, the periodic reconciliation) the poll lists the
folder, a ``stat`` per file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any

import yaml

from labmesh_dagster.connectors.eln.base import ElnEvent, ElnPoll, ElnSource, InvalidEntryId, cursor_fields
from labmesh_dagster.connectors.eln.folder_index import Claim, FileState, FolderIndex, path_order
from labmesh_dagster.connectors.eln.folder_watch import (
    DEFAULT_RECONCILE_SECONDS,
    WATCH_MODES,
    Dirty,
    FolderWatch,
    WatchUnavailable,
    watch_folder,
)
from labmesh_dagster.core.errors import ExperimentNotFound, InvalidExperimentId, RecordError
from labmesh_dagster.core.experiment import ExperimentRecord, record_from_mapping
from labmesh_dagster.core.ids import validate_experiment_id
from labmesh_dagster.core.text import clean_text

RECORD_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".tsv")
_SUFFIXES = frozenset(RECORD_SUFFIXES)
_ID_COLUMNS = ("experiment_id", "experiment", "id")
_SAMPLE_COLUMNS = ("sample_id", "sample")
CURSOR_VERSION = 2
# A first poll of a large folder is read over several ticks, this many files each, so that no tick nears
# Dagster's 60 s limit on a sensor evaluation (reading and parsing costs about 1 ms a file).
FILES_PER_POLL = 5_000
# The index lives beside the write-backs: the outbox is the one folder labmesh may write to.
INDEX_DIR, INDEX_FILE = ".labmesh", "folder-index.sqlite"


def is_record_name(name: str) -> bool:
    """Whether a file of this name is a record file (if it is a regular file): not hidden, a record suffix."""
    dot = name.rfind(".")
    return not name.startswith(".") and dot > 0 and name[dot:].lower() in _SUFFIXES


def _order(claim: Claim) -> tuple[tuple[str, ...], int]:
    return claim.order


def _name(header: str) -> str:
    return "_".join(header.strip().lower().split())


def _column(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in columns), None)


def experiments_from_table(text: str) -> list[dict[str, Any]]:
    """A LIMS sample sheet: one row per sample (or per experiment), grouped into experiments by their id column.

    Columns with one value across an experiment's rows describe the
    experiment; columns that vary describe its samples. Spreadsheets export
    with a BOM and either delimiter, so both are sniffed.
    """
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    # Headers as record fields are spelt ("Sample ID" -> sample_id), so the usual spellings are recognised.
    columns = [_name(column) for column in reader.fieldnames or []]
    id_column = _column(columns, _ID_COLUMNS)
    if id_column is None:
        raise ValueError(f"no experiment id column (one of {', '.join(_ID_COLUMNS)}) among {columns}")
    sample_column = _column(columns, _SAMPLE_COLUMNS)
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in reader:
        values = {_name(key): (value or "").strip() for key, value in row.items() if key is not None}
        if values.get(id_column):
            grouped.setdefault(values[id_column], []).append(values)
    experiments = []
    for experiment_id, rows in grouped.items():
        varying = {column for column in columns if len({row.get(column, "") for row in rows}) > 1}
        shared = {column: rows[0][column] for column in columns if column not in varying and rows[0].get(column)}
        shared.pop(id_column, None)
        experiment: dict[str, Any] = {**shared, "id": experiment_id}
        if sample_column:
            experiment.pop(sample_column, None)
            experiment["samples"] = [
                {"id": row[sample_column], **{c: row[c] for c in sorted(varying - {sample_column}) if row.get(c)}}
                for row in rows
                if row.get(sample_column)
            ]
        experiments.append(experiment)
    return experiments


# libyaml's parser reads record files ten times faster than the pure-Python one, and builds values with the
# same safe constructors. It is stricter on a few oddities (a lone surrogate escape): a file it refuses is
# parsed again by the pure-Python loader, so what was accepted before still is. Without libyaml, only that one.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)


def _load_yaml(text: str) -> Any:
    if _FAST_LOADER is not None:
        try:
            return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 (libyaml's safe loader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def _load(path: Path) -> Any:
    if path.suffix in {".csv", ".tsv"}:
        return experiments_from_table(path.read_text(encoding="utf-8-sig"))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return _load_yaml(text)


def read_record_file(path: Path) -> tuple[list[ExperimentRecord], list[RecordError]]:
    """Every experiment in one file, and an error for each one that cannot be read."""
    source = clean_text(str(path))
    try:
        data = _load(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        # ValueError covers bad JSON, bad UTF-8, impossible YAML dates and over-long JSON integers.
        return [], [RecordError(source, f"cannot be read: {exc}")]
    if isinstance(data, Mapping) and isinstance(data.get("experiments"), list):
        items = data["experiments"]
    elif isinstance(data, list):
        items = data
    else:
        items = [data]
    records: list[ExperimentRecord] = []
    errors: list[RecordError] = []
    for position, item in enumerate(items):
        item_source = source if len(items) == 1 else f"{source}[{position}]"
        try:
            records.append(record_from_mapping(item, source=item_source))
        except RecordError as exc:
            errors.append(exc)
        except Exception as exc:  # one odd record must not stop the others (nor the sensor tick)
            errors.append(RecordError(item_source, f"cannot be normalised: {type(exc).__name__}: {exc}"))
    return records, errors


RecordReader = Callable[[Path], tuple[list[ExperimentRecord], list[RecordError]]]


@dataclass(frozen=True)
class FolderCursor:
    """Where a folder poll stands: the listing it saw, and the index generation that holds it."""

    listing: str
    epoch: str
    gen: int

    def to_json(self) -> str:
        return json.dumps(
            {"v": CURSOR_VERSION, "listing": self.listing, "epoch": self.epoch, "gen": self.gen}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str | None) -> FolderCursor | None:
        """The cursor in ``text``; None (read the whole folder) for none, or one of another version or connector."""
        data = cursor_fields(text, CURSOR_VERSION)
        if data is None:
            return None
        listing, epoch, gen = data.get("listing"), data.get("epoch"), data.get("gen")
        if not isinstance(listing, str) or not isinstance(epoch, str) or not isinstance(gen, int):
            return None
        return cls(listing, epoch, gen)


@dataclass(frozen=True)
class Scan:
    """How a poll found what changed: from the change feed (``watch``) or by listing the folder, and why."""

    kind: str
    reason: str = ""


@dataclass
class _Read:
    """The files one poll read, and what they hold."""

    records: dict[str, list[ExperimentRecord]] = field(default_factory=dict)
    errors: dict[str, list[RecordError]] = field(default_factory=dict)

    def claims(self, path: str) -> list[Claim]:
        return [Claim(path, position, record.id, record.source) for position, record in enumerate(self.records[path])]


class FolderEln(ElnSource):
    """Experiments as files in ``records_dir``; write-backs in ``outbox_dir``.

    ``index_path`` is where the poll keeps what it saw of each file (see
    `folder_index`); by default a hidden folder of the outbox, the one place
    labmesh may write. ``reader`` reads one record file (tests count its calls).
    ``files_per_poll`` caps the files one poll reads; the rest wait for the next.
    ``watch`` says whether polls follow the kernel's change feed (`folder_watch`:
    ``auto``, ``on`` or ``off``), and ``reconcile_seconds`` how often a watched
    folder is listed all the same; ``clock`` times that (tests move it on).
    `last_scan` tells how the last poll found its changes.
    """

    name = "folder"

    @staticmethod
    def validate_entry_id(entry_id: str) -> str:
        """A LIMS that pushes names the experiment itself, so its entry ids follow the experiment id rules."""
        try:
            return validate_experiment_id(entry_id)
        except InvalidExperimentId as exc:
            raise InvalidEntryId(entry_id, f"an experiment id: {exc.reason}") from exc

    def __init__(
        self,
        records_dir: str | os.PathLike[str],
        outbox_dir: str | os.PathLike[str],
        *,
        index_path: str | os.PathLike[str] | None = None,
        reader: RecordReader = read_record_file,
        files_per_poll: int = FILES_PER_POLL,
        watch: str = "auto",
        reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if files_per_poll < 1:
            raise ValueError("files_per_poll must be at least 1")
        if watch not in WATCH_MODES:
            raise ValueError(f"watch must be one of {', '.join(WATCH_MODES)}, not {watch!r}")
        if reconcile_seconds < 0:
            raise ValueError("reconcile_seconds must not be negative")
        self.records_dir = Path(records_dir)
        self.outbox_dir = Path(outbox_dir)
        self.index = FolderIndex(index_path or self.outbox_dir / INDEX_DIR / INDEX_FILE, self.records_dir)
        self.reader = reader
        self.files_per_poll = files_per_poll
        self.watch = watch
        self.reconcile_seconds = reconcile_seconds
        self.clock = clock
        self.last_scan = Scan("none")

    # Listing

    def _listing(self, folder: str = "") -> dict[str, FileState]:
        """Every record file (under the relative ``folder``), relative path -> its state; hidden ones skipped.

        One ``stat`` per file and nothing read: the cost of a tick where nothing
        changed and no watch tells so. In listing order, not path order: only
        what changed is sorted.
        """
        found: dict[str, FileState] = {}
        start = (self._path(folder), f"{folder}/") if folder else (self.records_dir, "")
        pending: list[tuple[str | Path, str]] = [start]
        while pending:
            current, prefix = pending.pop()
            try:
                entries = list(os.scandir(current))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                dot = name.rfind(".")
                try:
                    if dot > 0 and name[dot:].lower() in _SUFFIXES:
                        # The stat says whether it is a file (through a link, as `is_file`): one call, not two.
                        stat = entry.stat()
                        if S_ISREG(stat.st_mode):
                            found[prefix + name] = (stat.st_mtime_ns, stat.st_size)
                            continue
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, f"{prefix}{name}/"))
                except OSError:  # gone between the listing and the stat: the next poll sees what is there
                    continue
        return found

    def _digest(self, listing: Mapping[str, FileState]) -> str:
        """Changes when any record file is added, removed, rewritten or touched.

        Taken in listing order, which only moves when the folder itself changes
        (and then the poll compares file by file anyway): no sort, and the paths
        and numbers are hashed in two C-built buffers, so 100,000 files digest
        in a small part of their listing's time.
        """
        digest = hashlib.sha256("\0".join(listing).encode("utf-8", "surrogateescape"))
        digest.update(array("q", [value for state in listing.values() for value in state]).tobytes())
        return digest.hexdigest()[:32]

    def _path(self, relative: str) -> Path:
        return self.records_dir.joinpath(*relative.split("/"))

    # The poll

    def _state(self, relative: str) -> FileState | None:
        """A record file's state as the listing would give it; None when it is not (or no longer) one."""
        try:
            stat = os.stat(self._path(relative))
        except (OSError, ValueError):
            return None
        return (stat.st_mtime_ns, stat.st_size) if S_ISREG(stat.st_mode) else None

    def _watch(self) -> FolderWatch | str:
        return watch_folder(
            self.records_dir,
            str(self.index.path.resolve()),
            mode=self.watch,
            is_record=is_record_name,
            clock=self.clock,
            reconcile_seconds=self.reconcile_seconds,
        )

    def poll(self, cursor: str | None) -> ElnPoll:
        """What changed since ``cursor``: the records of the files added or changed since, read now.

        With a watch that vouches for everything since ``cursor``, only the
        paths it names are compared with the index; otherwise the folder is
        listed, and its digest decides whether to look further. Either way,
        only files whose modification time or size differ from the index's are
        read. A record another file (earlier in path order) also defines is an
        error, and the earlier file's record is the experiment's: when that
        changes hands, the file now holding it is read too. Without a cursor,
        or with one the index cannot serve, every file is read, `files_per_poll`
        a poll.
        """
        previous = FolderCursor.from_json(cursor)
        watch = self._watch()
        reason = watch if isinstance(watch, str) else "no cursor"
        if isinstance(watch, FolderWatch) and previous is not None:
            dirty = watch.take(previous)
            if isinstance(dirty, Dirty):
                polled = self._poll_watched(previous, dirty, watch)
                if polled is not None:
                    return polled
                reason = "the index cannot serve the cursor"
            else:
                reason = dirty
        if isinstance(watch, FolderWatch):
            try:
                watch.before_listing()
            except WatchUnavailable as exc:
                watch, reason = str(exc), f"{reason}; {exc}"
        self.last_scan = Scan("listing", reason)
        return self._poll_listed(previous, watch if isinstance(watch, FolderWatch) else None)

    def _poll_watched(self, previous: FolderCursor, dirty: Dirty, watch: FolderWatch) -> ElnPoll | None:
        """The poll when the watch names what changed: those paths are compared with the index, nothing listed."""
        if not dirty.files and not dirty.folders:
            watch.polled(previous, ())
            self.last_scan = Scan("watch")
            return ElnPoll(cursor=previous.to_json(), unchanged=True)
        if not self.index.settle(previous.epoch, previous.gen):
            return None
        self.last_scan = Scan("watch")
        found: dict[str, FileState] = {}
        for relative in dirty.files:
            if (state := self._state(relative)) is not None:
                found[relative] = state
        known = self.index.states(dirty.files)
        for folder in dirty.folders:
            found.update(self._listing(folder))
            known.update(self.index.states_under(folder))
        changed = sorted(
            (relative for relative, state in found.items() if known.get(relative) != state), key=path_order
        )
        removed = [relative for relative in known if relative not in found]
        if not changed and not removed:
            watch.polled(previous, ())
            return ElnPoll(cursor=previous.to_json(), unchanged=True)
        poll, leftover = self._apply(found, changed, removed, previous.epoch, previous.gen, listing="")
        watch.polled(FolderCursor.from_json(poll.cursor), leftover)
        return poll

    def _poll_listed(self, previous: FolderCursor | None, watch: FolderWatch | None) -> ElnPoll:
        """The poll that lists the folder: the listing's digest decides whether to look further."""
        listing = self._listing()
        digest = self._digest(listing)
        if previous is not None and previous.listing == digest:
            if watch is not None:
                watch.listed(previous, ())
            return ElnPoll(cursor=previous.to_json(), unchanged=True)
        known = self.index.open(previous.epoch, previous.gen) if previous is not None else None
        if previous is None or known is None:
            epoch, gen, known = self.index.restart(), 0, {}
        else:
            epoch, gen = previous.epoch, previous.gen
        changed = sorted(
            (relative for relative, state in listing.items() if known.get(relative) != state), key=path_order
        )
        removed = [relative for relative in known if relative not in listing]
        poll, leftover = self._apply(listing, changed, removed, epoch, gen, listing=digest)
        if watch is not None:
            watch.listed(FolderCursor.from_json(poll.cursor), leftover)
        return poll

    def _apply(
        self,
        found: Mapping[str, FileState],
        changed: list[str],
        removed: list[str],
        epoch: str,
        gen: int,
        *,
        listing: str,
    ) -> tuple[ElnPoll, list[str]]:
        """Read the changed files (in path order, `files_per_poll` of them), save the index's next generation.

        Returns the poll and the changed files left for the next poll. More
        than one poll reads: the first in path order now, the others by the
        next polls (they stay changed in the index's eyes), and a cursor whose
        listing matches none, so those polls look.
        """
        more = len(changed) > self.files_per_poll
        changed, leftover = changed[: self.files_per_poll], changed[self.files_per_poll :]
        records, errors, read = self._changes(changed, removed)
        if changed or removed:
            gen += 1
            self.index.save(gen, {relative: (found[relative], read.claims(relative)) for relative in changed}, removed)
        cursor_after = FolderCursor("" if more else listing, epoch, gen)
        return ElnPoll(records=records, errors=errors, cursor=cursor_after.to_json()), leftover

    def _read(self, relatives: Iterable[str], into: _Read) -> None:
        for relative in relatives:
            found, failed = self.reader(self._path(relative))
            into.records[relative] = found
            into.errors[relative] = failed

    def _changes(
        self, changed: list[str], removed: list[str]
    ) -> tuple[tuple[ExperimentRecord, ...], tuple[RecordError, ...], _Read]:
        """The records and errors of the changed files, and of any file an experiment passed to."""
        read = _Read()
        self._read(changed, read)
        touched = set(changed) | set(removed)
        new_claims = [claim for relative in changed for claim in read.claims(relative)]
        affected = {claim.experiment_id for claim in new_claims}
        affected |= {claim.experiment_id for claim in self.index.claims_of_paths(touched)}
        before: dict[str, list[Claim]] = {}
        for claim in self.index.claims_of_experiments(affected):
            before.setdefault(claim.experiment_id, []).append(claim)
        after = {
            experiment_id: [claim for claim in claims if claim.path not in touched]
            for experiment_id, claims in before.items()
        }
        for claim in new_claims:
            after.setdefault(claim.experiment_id, []).append(claim)
        winners = {experiment_id: min(claims, key=_order) for experiment_id, claims in after.items() if claims}
        # An experiment whose first file is now an unchanged one (the file that held it was removed, or renamed
        # to sort later): that file is read again, whole, so its record and its errors are reported afresh.
        handed_over = {
            winner.path
            for experiment_id, winner in winners.items()
            if winner.path not in touched and winner != min(before.get(experiment_id, [winner]), key=_order)
        }
        self._read(sorted(handed_over, key=path_order), read)
        others = {claim.experiment_id for path in handed_over for claim in read.claims(path)} - set(winners)
        for claim in self.index.claims_of_experiments(others):
            if claim.path not in touched and claim.path not in handed_over:
                after.setdefault(claim.experiment_id, []).append(claim)
        for path in handed_over:
            for claim in read.claims(path):
                if claim.experiment_id in others:
                    after.setdefault(claim.experiment_id, []).append(claim)
        winners = {experiment_id: min(claims, key=_order) for experiment_id, claims in after.items() if claims}
        records: list[ExperimentRecord] = []
        errors: list[RecordError] = []
        for relative in sorted(read.records, key=path_order):
            errors += read.errors[relative]
            for claim, record in zip(read.claims(relative), read.records[relative], strict=True):
                winner = winners[record.id]
                if (winner.path, winner.position) == (claim.path, claim.position):
                    records.append(record)
                else:
                    errors.append(
                        RecordError(record.source, f"experiment {record.id} is also defined in {winner.source}")
                    )
        # Files not read whose claim on a changed experiment lost (or still loses) to another: reported from the
        # index, as reading the whole folder would have, so a file that lost its experiment is not left silent.
        losers = [
            (claim, winners[experiment_id])
            for experiment_id in affected
            for claim in after.get(experiment_id, [])
            if claim.path not in read.records and claim != winners[experiment_id]
        ]
        for claim, winner in sorted(losers, key=lambda pair: pair[0].order):
            errors.append(
                RecordError(claim.source, f"experiment {claim.experiment_id} is also defined in {winner.source}")
            )
        return tuple(records), tuple(errors), read

    # One record

    def _candidates(self, experiment_id: str) -> list[str]:
        """Files that may define ``experiment_id``, in path order: those the index names, and ``<id>.<suffix>``."""
        named = [
            f"{experiment_id}{suffix}"
            for suffix in RECORD_SUFFIXES
            if (self.records_dir / f"{experiment_id}{suffix}").is_file()
        ]
        return sorted({*self.index.candidates(experiment_id), *named}, key=path_order)

    def _find(self, experiment_id: str) -> ExperimentRecord | None:
        """The record as the first file (in path order) the index or the naming rule points to holds it now."""
        for relative in self._candidates(experiment_id):
            path = self._path(relative)
            if not path.is_file():
                continue
            found, _ = self.reader(path)
            for record in found:
                if record.id == experiment_id:
                    return record
        return None

    def _scan(self) -> tuple[list[ExperimentRecord], list[RecordError]]:
        """Every file read, the first definition of each experiment kept: when the index knows nothing of one."""
        records: dict[str, ExperimentRecord] = {}
        errors: list[RecordError] = []
        for relative in sorted(self._listing(), key=path_order):
            found, failed = self.reader(self._path(relative))
            errors.extend(failed)
            for record in found:
                if record.id in records:
                    errors.append(
                        RecordError(
                            record.source, f"experiment {record.id} is also defined in {records[record.id].source}"
                        )
                    )
                    continue
                records[record.id] = record
        return list(records.values()), errors

    def fetch(self, experiment_id: str) -> ExperimentRecord:
        """The record, read from the file that defines it; the whole folder only when no file is known to.

        The index may lag the folder by a tick (a file added since), so a miss
        is checked by reading everything, as before the index.
        """
        validate_experiment_id(experiment_id)
        record = self._find(experiment_id)
        if record is not None:
            return record
        for record in self._scan()[0]:
            if record.id == experiment_id:
                return record
        raise ExperimentNotFound(f"no record for experiment {experiment_id} in {self.records_dir}")

    def resolve(self, events: Sequence[ElnEvent]) -> ElnPoll:
        """A LIMS that pushes names the experiment itself: each event's entry id is an experiment id.

        Each is read from its file, as `fetch` finds it. Once a poll has built
        the index, an experiment it does not know is left to the poll of the
        same tick (which reads new files), so an event naming no record costs
        no read of the whole folder; before that, the folder is read once.
        """
        valid: list[ElnEvent] = []
        errors: list[RecordError] = []
        for event in events:
            try:
                self.validate_entry_id(event.entry_id)
            except InvalidEntryId as exc:
                errors.append(RecordError(f"{event.source} event {event.event_id}", str(exc)))
                continue
            valid.append(event)
        wanted = dict.fromkeys(event.entry_id for event in valid if event.kind == "changed")
        found = {experiment_id: self._find(experiment_id) for experiment_id in wanted}
        if None in found.values() and not self.index.path.exists():
            everything = {record.id: record for record in self._scan()[0]}
            found = {experiment_id: record or everything.get(experiment_id) for experiment_id, record in found.items()}
        return ElnPoll(
            records=tuple(record for record in found.values() if record is not None),
            errors=tuple(errors),
            archived=tuple(dict.fromkeys(event.entry_id for event in valid if event.kind == "archived")),
        )

    def _outbox_path(self, experiment_id: str) -> Path:
        return self.outbox_dir / f"{validate_experiment_id(experiment_id)}.json"

    def write_back(self, experiment_id: str, locations: Mapping[str, str]) -> None:
        path = self._outbox_path(experiment_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = json.dumps({"experiment_id": experiment_id, "locations": dict(locations)}, indent=2, sort_keys=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(content + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def read_back(self, experiment_id: str) -> dict[str, str]:
        path = self._outbox_path(experiment_id)
        if not path.exists():
            return {}
        return dict(json.loads(path.read_text(encoding="utf-8")).get("locations", {}))
