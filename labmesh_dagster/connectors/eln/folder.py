"""A folder of experiment records: the shape a LIMS export or a hand-kept ELN has.

Each ``*.json``, ``*.yaml`` or ``*.yml`` file holds one experiment, a list of
experiments, or an object with an ``experiments`` list (common in LIMS
exports). Write-backs go to a separate outbox folder, never into the records
themselves, so that labmesh's own writes cannot look like a changed experiment.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from labmesh_dagster.connectors.eln.base import ElnEvent, ElnPoll, ElnSource, InvalidEntryId
from labmesh_dagster.core.errors import ExperimentNotFound, InvalidExperimentId, RecordError
from labmesh_dagster.core.experiment import ExperimentRecord, record_from_mapping
from labmesh_dagster.core.ids import validate_experiment_id
from labmesh_dagster.core.text import clean_text

RECORD_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".tsv")
_ID_COLUMNS = ("experiment_id", "experiment", "id")
_SAMPLE_COLUMNS = ("sample_id", "sample")


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


def _load(path: Path) -> Any:
    if path.suffix in {".csv", ".tsv"}:
        return experiments_from_table(path.read_text(encoding="utf-8-sig"))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


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


class FolderEln(ElnSource):
    """Experiments as files in ``records_dir``; write-backs in ``outbox_dir``."""

    name = "folder"

    @staticmethod
    def validate_entry_id(entry_id: str) -> str:
        """A LIMS that pushes names the experiment itself, so its entry ids follow the experiment id rules."""
        try:
            return validate_experiment_id(entry_id)
        except InvalidExperimentId as exc:
            raise InvalidEntryId(entry_id, f"an experiment id: {exc.reason}") from exc

    def __init__(self, records_dir: str | os.PathLike[str], outbox_dir: str | os.PathLike[str]) -> None:
        self.records_dir = Path(records_dir)
        self.outbox_dir = Path(outbox_dir)

    def _record_files(self) -> Iterator[Path]:
        if not self.records_dir.is_dir():
            return
        for path in sorted(self.records_dir.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(self.records_dir).parts)
            if path.is_file() and path.suffix.lower() in RECORD_SUFFIXES and not hidden:
                yield path

    def _listing_digest(self) -> str:
        """Changes when any record file is added, removed, rewritten or touched."""
        digest = hashlib.sha256()
        for path in self._record_files():
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:32]

    def poll(self, cursor: str | None) -> ElnPoll:
        # A folder has no change feed: a cheap listing digest decides whether to
        # read anything at all; when something changed, every record is read and
        # the caller compares fingerprints with what the catalog already holds.
        listing = self._listing_digest()
        if cursor == listing:
            return ElnPoll(cursor=listing, unchanged=True)
        records, errors = self._scan()
        return ElnPoll(records=tuple(records), errors=tuple(errors), cursor=listing)

    def _scan(self) -> tuple[list[ExperimentRecord], list[RecordError]]:
        records: dict[str, ExperimentRecord] = {}
        errors: list[RecordError] = []
        for path in self._record_files():
            found, failed = read_record_file(path)
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
        validate_experiment_id(experiment_id)
        records, _ = self._scan()
        for record in records:
            if record.id == experiment_id:
                return record
        raise ExperimentNotFound(f"no record for experiment {experiment_id} in {self.records_dir}")

    def resolve(self, events: Sequence[ElnEvent]) -> ElnPoll:
        """A LIMS that pushes names the experiment itself: each event's entry id is an experiment id."""
        valid: list[ElnEvent] = []
        errors: list[RecordError] = []
        for event in events:
            try:
                self.validate_entry_id(event.entry_id)
            except InvalidEntryId as exc:
                errors.append(RecordError(f"{event.source} event {event.event_id}", str(exc)))
                continue
            valid.append(event)
        records, _ = self._scan()  # unreadable files are reported by the poll, once
        wanted = {event.entry_id for event in valid if event.kind == "changed"}
        return ElnPoll(
            records=tuple(record for record in records if record.id in wanted),
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
