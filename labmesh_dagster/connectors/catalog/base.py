"""The catalog port: experiments and their datasets, searchable, with lineage.

Upserts are keyed by experiment and by (experiment, dataset): publishing the
same content again changes nothing, and publishing new content makes a new
revision of the same entry, never a second entry. That is what makes every
materialization safe to repeat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.manifest import Manifest, ManifestEntry


@dataclass(frozen=True)
class CatalogEntry:
    """The outcome of an upsert: the stable entry id, its revision, and whether it changed."""

    entry_id: str
    revision: int
    changed: bool


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset as the catalog holds it."""

    entry_id: str
    experiment_id: str
    dataset: str
    location: str
    revision: int
    manifest_digest: str
    files: tuple[ManifestEntry, ...]


@dataclass(frozen=True)
class LineageEdge:
    """``target`` was made from ``source`` by ``activity`` (keys as ``<zone>/<key>``)."""

    source: str
    target: str
    activity: str


@dataclass(frozen=True)
class SearchQuery:
    """Keywords plus facet filters; every part is optional and they combine with AND."""

    text: str = ""
    experiment: str | None = None
    sample: str | None = None
    group: str | None = None
    platform: str | None = None
    format: str | None = None
    file_name: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class FileHit:
    key: str
    name: str
    format: str
    size: int
    sample_ids: tuple[str, ...]


@dataclass(frozen=True)
class SearchHit:
    """One matching dataset (or an experiment with no matching dataset yet) and its matching files."""

    experiment_id: str
    title: str
    dataset: str | None
    entry_id: str
    location: str | None
    files: tuple[FileHit, ...]


@dataclass(frozen=True)
class ExperimentSummary:
    experiment_id: str
    title: str
    group: str | None
    platform: str | None
    revision: int
    datasets: dict[str, int]
    archived: bool = False


class Catalog(ABC):
    """Where experiments and datasets are registered and found."""

    @abstractmethod
    def upsert_experiment(self, record: ExperimentRecord, locations: dict[str, str]) -> CatalogEntry:
        """Register or update an experiment and where its data lives."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        """The registered record, or None if the experiment is unknown."""

    @abstractmethod
    def experiment_fingerprints(self) -> dict[str, str]:
        """Fingerprint of every registered experiment, to tell changed ELN records from unchanged ones."""

    @abstractmethod
    def upsert_dataset(self, experiment_id: str, dataset: str, location: str, manifest: Manifest) -> CatalogEntry:
        """Register or update one experiment's dataset with all its files."""

    @abstractmethod
    def get_dataset(self, experiment_id: str, dataset: str) -> DatasetRecord | None:
        """The registered dataset, or None."""

    @abstractmethod
    def replace_lineage(self, experiment_id: str, dataset: str, edges: Iterable[LineageEdge]) -> None:
        """Set the edges that produced ``dataset`` (replacing earlier ones, so repeats add nothing)."""

    @abstractmethod
    def lineage(self, experiment_id: str) -> list[LineageEdge]:
        """Every recorded edge of an experiment."""

    @abstractmethod
    def search(self, query: SearchQuery) -> list[SearchHit]:
        """Datasets and files matching the query, best first."""

    @abstractmethod
    def summaries(self) -> list[ExperimentSummary]:
        """Every experiment with its datasets' file counts."""

    @abstractmethod
    def set_archived(self, experiment_id: str, archived: bool) -> bool:
        """Mark a registered experiment archived in the ELN (or active again); its data stays. True if it changed."""

    @abstractmethod
    def archived_experiments(self) -> set[str]:
        """Ids of the experiments marked archived."""
