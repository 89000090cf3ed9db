"""The catalog port: experiments and their datasets, searchable.

Upserts are keyed by experiment and by (experiment, zone): publishing the
same content again changes nothing, and publishing new content makes a new
revision of the same entry, never a second entry. That is what makes every
materialization safe to repeat. Each revision records the Dagster run that
made it. Lineage is not the catalog's: it is kept as OpenLineage run events
(`connectors.lineage`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.errors import LabmeshError
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry


class CatalogUnavailable(LabmeshError):
    """The catalog service kept failing (throttling, 5xx, access, network) after its retries."""


class ExperimentNotRegistered(LabmeshError, LookupError):
    """A dataset published for an experiment the catalog does not know: `experiment` must run first."""

    def __init__(self, experiment_id: str) -> None:
        self.experiment_id = experiment_id
        super().__init__(f"experiment {experiment_id} is not registered in the catalog; materialize `experiment` first")


class RevisionNotFound(LabmeshError, LookupError):
    """Check outcomes recorded for a dataset revision the catalog never published."""

    def __init__(self, experiment_id: str, zone: str, revision: int) -> None:
        super().__init__(f"the catalog has no revision {revision} of the {zone} dataset of experiment {experiment_id}")


@dataclass(frozen=True)
class CatalogEntry:
    """The outcome of an upsert: the stable entry id, its revision, and whether it changed."""

    entry_id: str
    revision: int
    changed: bool


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset as the catalog holds it, with the run that made its current revision."""

    entry_id: str
    experiment_id: str
    zone: Zone
    location: str
    revision: int
    manifest_digest: str
    files: tuple[ManifestEntry, ...]
    run_id: str | None = None


@dataclass(frozen=True)
class DatasetRevision:
    """One published revision of a dataset: what it held, when, the run that made it, and what its checks found.

    ``checks`` is None when they are not known: the revision was published
    before the catalog kept check outcomes, or its run has not recorded them yet.
    """

    experiment_id: str
    zone: Zone
    revision: int
    manifest_digest: str
    file_count: int
    total_bytes: int
    published_at: str
    run_id: str | None = None
    checks: tuple[CheckOutcome, ...] | None = None


@dataclass(frozen=True)
class SearchQuery:
    """Keywords plus facet filters; every part is optional and they combine with AND.

    ``viewer`` is who asks: the catalog forms results only from the experiments
    they may see (`labmesh_dagster.core.access`), inside its query, so a limit
    or a count never reflects what was hidden. None, or an admin, sees every
    experiment: that is the CLI on the lab's own machine.

    ``group``, ``platform``, ``format`` and ``file_name`` match the words of the
    value (``fastq`` finds ``fastq.gz``); ``owner``, ``protocol`` and ``zone``
    match the whole value, ignoring case, as the portal's facets offer them.
    """

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
    owner: str | None = None
    protocol: str | None = None
    zone: str | None = None
    viewer: Viewer | None = None


FACETS = ("experiment", "group", "owner", "platform", "protocol", "format", "zone", "sample", "month")
"""The facets `Catalog.facet_counts` counts hits by; ``month`` (``YYYY-MM``) gives the date range."""

FacetCounts = dict[str, list[tuple[str, int]]]


@dataclass(frozen=True)
class FileHit:
    key: str
    name: str
    format: str
    size: int
    sample_ids: tuple[str, ...]


@dataclass(frozen=True)
class SearchHit:
    """One matching dataset (or an experiment with no matching dataset yet) and its matching files.

    ``group``, ``owner``, ``platform`` and ``protocol`` are the experiment's, as
    the search already holds them, so a result can show which of its fields
    matched without asking for the record.
    """

    experiment_id: str
    title: str
    dataset: str | None
    entry_id: str
    location: str | None
    files: tuple[FileHit, ...]
    group: str | None = None
    owner: str | None = None
    platform: str | None = None
    protocol: str | None = None


@dataclass(frozen=True)
class ExperimentSummary:
    experiment_id: str
    title: str
    group: str | None
    platform: str | None
    revision: int
    datasets: dict[str, int]
    archived: bool = False
    run_id: str | None = None


class Catalog(ABC):
    """Where experiments and datasets are registered and found."""

    @abstractmethod
    def upsert_experiment(
        self, record: ExperimentRecord, locations: dict[str, str], *, run_id: str | None = None
    ) -> CatalogEntry:
        """Register or update an experiment and where its data lives; ``run_id`` made the revision."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        """The registered record, or None if the experiment is unknown."""

    @abstractmethod
    def experiment_locations(self, experiment_id: str) -> dict[str, str]:
        """Where the experiment's data lives, by zone, as registered ({} for an unknown experiment)."""

    @abstractmethod
    def experiment_fingerprints(self) -> dict[str, str]:
        """Fingerprint of every registered experiment, to tell changed ELN records from unchanged ones."""

    @abstractmethod
    def upsert_dataset(self, manifest: Manifest, location: str, *, run_id: str | None = None) -> CatalogEntry:
        """Register or update the dataset ``manifest`` lists (an experiment's files in one zone).

        Raises `ExperimentNotRegistered` for an experiment the catalog does not know.
        """

    @abstractmethod
    def get_dataset(self, experiment_id: str, zone: Zone) -> DatasetRecord | None:
        """The registered dataset, or None."""

    @abstractmethod
    def record_checks(self, experiment_id: str, zone: Zone, revision: int, outcomes: Sequence[CheckOutcome]) -> None:
        """Keep what the checks of one published revision found, replacing what was kept for it before.

        Idempotent: the same outcomes recorded again change nothing. Raises
        `RevisionNotFound` for a revision the catalog never published.
        """

    @abstractmethod
    def dataset_revisions(self, experiment_id: str, zone: Zone, *, limit: int = 20) -> list[DatasetRevision]:
        """The dataset's revisions, newest first, each with its check outcomes where known ([] if none).

        A catalog from before revisions were kept holds the then current one only.
        """

    @abstractmethod
    def checks_needing_attention(self, *, viewer: Viewer | None = None) -> list[DatasetRevision]:
        """Each dataset whose current revision's checks failed or are not known, of experiments ``viewer`` may see.

        Ordered by experiment and zone; the viewer is applied inside the query, as for `summaries`.
        """

    @abstractmethod
    def search(self, query: SearchQuery) -> list[SearchHit]:
        """Datasets and files matching the query, best first."""

    @abstractmethod
    def facet_counts(self, query: SearchQuery, *, top: int = 20) -> FacetCounts:
        """For each of `FACETS`, how many of the query's hits (without its limit) carry each value.

        Counted under the query's viewer, like `search`, so a count never tells of
        a hidden experiment. A hit counts once under each value its matching files
        (or its experiment) carry. ``experiment`` and ``sample``, whose values are
        nearly one per hit, list those of the first hits, in the order `search`
        returns them (at most ``top``); ``month`` lists every month, in order; the
        others list their ``top`` values, most hits first.
        """

    @abstractmethod
    def grant(self, experiment_id: str, principal: str) -> bool:
        """Let ``principal`` (``user:NAME`` or ``group:NAME``) see the experiment besides its ELN access.

        True if it was not granted before. Raises `ExperimentNotRegistered` for an unknown experiment.
        """

    @abstractmethod
    def revoke(self, experiment_id: str, principal: str) -> bool:
        """Take back a grant (the ELN's own access stays). True if there was one."""

    @abstractmethod
    def principals(self, experiment_id: str) -> frozenset[str]:
        """Everyone who may see the experiment, admins aside: its ELN access plus grants (empty if unknown)."""

    @abstractmethod
    def summaries(self, *, viewer: Viewer | None = None) -> list[ExperimentSummary]:
        """Every experiment (that ``viewer`` may see, if given) with its datasets' file counts."""

    @abstractmethod
    def set_archived(self, experiment_id: str, archived: bool) -> bool:
        """Mark a registered experiment archived in the ELN (or active again); its data stays. True if it changed."""

    @abstractmethod
    def archived_experiments(self) -> set[str]:
        """Ids of the experiments marked archived."""
