"""The catalog on Amazon DataZone (aws profile): one asset per experiment and per dataset, published for search.

The local `SqliteCatalog` stays the system of record for operational state
(fingerprints, revisions, files, lineage): it answers every read but `search`,
and every upsert goes to it first, then to DataZone. The `CatalogEntry` an
upsert returns is the registry's, so both profiles answer alike.

How assets are found again. DataZone's ``externalIdentifier`` names each asset
(``labmesh:EXP-1``, ``labmesh:EXP-1:raw``), and ``GetAsset`` takes it as its
identifier when prefixed ``externalIdentifer/`` (sic; the API reference spells
it so, and boto3 sends the slash as the documented ``%2F``). That lookup is
exact by contract and, unlike ``Search``, not eventually consistent, so nothing
depends on how DataZone indexes a member: an asset created a second ago is
found, and one that a semantic index calls "related" never is. ``CreateAsset``
carries a client token derived from the identifier and the content, and a
``ConflictException`` (the identifier exists) is answered by looking it up.

What an upsert does. Each labmesh asset carries, in its experiment form's
``labmeshDigest``, a digest of everything labmesh wrote to it (see
`datazone_forms`). Equal digest: nothing is written; the asset's listing is
read (``GetListing``) and republished only if it does not show that digest (a
crash between revising and publishing heals on the next run). Another digest:
one ``CreateAssetRevision`` (never a second asset), then
``CreateListingChangeSet`` PUBLISH of that revision. A revision sends labmesh's
forms, the ``AssetCommonDetailsForm`` with its ``sourceIdentifier`` set (other
members a steward set there are kept), and every other form of the current
revision unchanged: a README or a form a data steward added in DataZone's portal
survives labmesh's revisions. An experiment's change revises its datasets'
assets too, because each carries the experiment form (as each local index row
carries the experiment's text). Every call goes through one `PacedCaller`,
paced under ``max_per_second`` and retried on throttling and 5xx; what still
fails is raised as `CatalogUnavailable` naming what was being done.

Projects. An experiment's assets are owned by its group's project, and
published; with no group, or a group mapped to no project, they are owned by
the restricted project and never published (`datazone_projects` says why). An
asset cannot be revised into another project, so when the ELN moves an
experiment to another group each of its assets is deleted from the old project
(``DeleteAsset``, which also removes its listing) and created in the new one,
keeping the forms a steward added. Deleting first keeps the externalIdentifier
free; a crash in between leaves no asset, and the next run creates it. DataZone
refuses to delete an asset with subscriptions (or in a data product, or named
by an asset filter): that move stops with `AssetMoveRefused`, which says what
to do, and the asset stays where it was.

Lineage. Each asset's ``AssetCommonDetailsForm.sourceIdentifier`` is its
dataset's OpenLineage ``<namespace>/<name>`` (the experiment's asset: its
landing folder, which registration outputs), the identifier DataZone gives the
lineage nodes of labmesh's run events. DataZone's lineage view then shows the
chain landing -> raw -> processed -> final on the assets themselves.

Search. ``SearchListings`` runs the query against what is published: its
words, tokenized as the local index tokenizes them, as a lexical query (in
double quotes, so DataZone matches the words rather than related ones) against
the forms' ``searchTerms``, and its facets as filters (see `listing_filters`).
Every filter is written so that it keeps at least what the local index would
match, so DataZone decides *which* experiments and datasets are found
(published, and, on a real domain, visible to the caller) while the registry,
given the same query, decides which files of each match and the order, exactly
as `SqliteCatalog.search` does. For the same data, both profiles therefore
return equal results, with these differences:

- something the registry holds but DataZone does not list (not yet published,
  unpublished by a steward, or not yet indexed: DataZone's search is
  eventually consistent) is not found on the aws profile;
- where a form had to be clipped (more than ~120,000 characters of distinct
  terms in one dataset, see `datazone_forms`), DataZone may miss words the
  local index finds, and those datasets are then not found by them;
- a facet value longer than DataZone's 128-character filter limit is not
  filtered on in DataZone (the registry still applies it), and query words
  beyond DataZone's 512-character search text are left to the registry too;
- at most `MAX_LISTINGS` listings are read per query.

Bootstrap needs, on a V2 (SageMaker Unified Studio) domain, policy grants on
the owning project's domain unit: ``CREATE_FORM_TYPE``, ``CREATE_ASSET_TYPE``
and ``CREATE_GLOSSARY`` to create the types and the glossary, and
nothing more for assets, since the same project owns the asset type. A refusal
names the grant it needs (`BootstrapRefused`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from labmesh_dagster.connectors.aws import PacedCaller, clear_failure, error_code
from labmesh_dagster.connectors.catalog.base import (
    Catalog,
    CatalogEntry,
    CatalogUnavailable,
    DatasetRecord,
    DatasetRevision,
    ExperimentNotRegistered,
    ExperimentSummary,
    FacetCounts,
    SearchHit,
    SearchQuery,
)
from labmesh_dagster.connectors.catalog.datazone_forms import (
    ASSET_TYPE,
    ASSET_TYPE_DESCRIPTION,
    COMMON_FORM,
    DATASET_FORM,
    EXPERIMENT_FORM,
    FILTER_VALUE_MAX,
    FORM_TYPES,
    asset_type_forms,
    dataset_form,
    day_number,
    experiment_form,
    external_id,
    form_json,
    form_type_description,
    query_terms,
    source_identifier,
)
from labmesh_dagster.connectors.catalog.datazone_projects import OTHER_GROUPS, GroupProjects, Placement
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.checks import CheckOutcome
from labmesh_dagster.core.defaults import DATAZONE_CALLS_PER_SECOND
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import Zone
from labmesh_dagster.core.manifest import Manifest

GLOSSARY_NAME = "labmesh"
PAGE_SIZE = 50
"""DataZone's largest page for Search and SearchListings."""

MAX_LISTINGS = 5000
"""Listings read per query at most (100 pages): a bound on what one search may cost."""

SEARCH_TEXT_MAX = 512
ASSET_DESCRIPTION_MAX = 2048
ASSET_NAME_MAX = 256
GLOSSARY_TERMS_MAX = 20
_EVERY = 2**31 - 1
_NOT_FOUND = frozenset({"ResourceNotFoundException"})
_CONFLICT = frozenset({"ConflictException"})
_KEPT = frozenset({"ConflictException", "ValidationException"})
"""How DeleteAsset may refuse an asset it keeps (subscriptions, a data product, an asset filter): the codes are not
documented per cause, and the request itself (a domain and an asset id DataZone just answered) is valid."""
_REFUSED = frozenset({"AccessDeniedException", "UnauthorizedException"})
_BY_EXTERNAL_ID = "externalIdentifer/"
"""GetAsset's prefix for an external identifier, spelled as the API reference spells it (``externalIdentifer%2F``)."""
DATASET_ZONES = tuple(zone for zone in Zone if zone is not Zone.LANDING)
"""Zones whose datasets are published (landing is the experiment's asset's place, not a dataset)."""

# The policy grant a V2 (SageMaker Unified Studio) domain unit needs for each thing bootstrap creates.
_GRANTS = {
    "create_form_type": "CREATE_FORM_TYPE",
    "create_asset_type": "CREATE_ASSET_TYPE",
    "create_glossary": "CREATE_GLOSSARY",
}


class BootstrapRefused(CatalogUnavailable):
    """DataZone refused to create one of labmesh's types or its glossary; the message says what to grant or remove."""


class AssetMoveRefused(CatalogUnavailable):
    """DataZone kept an asset labmesh must move to another project (its group changed); the message says what to do."""


# Which record field a glossary category names; other categories are looked up among the custom fields.
_CATEGORY_FIELDS = {
    "platform": "platform",
    "instrument": "platform",
    "assay": "protocol",
    "protocol": "protocol",
    "group": "group",
    "project": "project",
    "owner": "owner",
}


@dataclass(frozen=True)
class BootstrapReport:
    """What `DataZoneCatalog.bootstrap` found or made; ``created`` is empty when everything was there."""

    form_types: Mapping[str, str]
    asset_type_revision: str
    glossary_id: str
    terms: Mapping[str, Mapping[str, str]]
    created: tuple[str, ...]

    def term_ids(self, category: str, values: Iterable[str]) -> list[str]:
        """Ids of the category's terms named like one of ``values`` (case-insensitively)."""
        wanted = {value.casefold() for value in values}
        return [term_id for name, term_id in self.terms.get(category, {}).items() if name.casefold() in wanted]


@dataclass(frozen=True)
class _Wanted:
    """An asset as labmesh wants it to be: its own forms (without the digest), and where its data is."""

    external_id: str
    name: str
    description: str
    forms: Mapping[str, Mapping[str, Any]]
    source_identifier: str
    placement: Placement
    glossary_terms: tuple[str, ...] = ()

    def digest(self, report: BootstrapReport) -> str:
        """What labmesh writes, digested: the types' revisions too, so that new types revise every asset."""
        revisions = [report.asset_type_revision, *(f"{name}@{report.form_types[name]}" for name in sorted(self.forms))]
        return _digest(
            self.name, self.description, form_json(self.forms), self.source_identifier, *revisions, *self.glossary_terms
        )

    def forms_with(self, digest: str) -> dict[str, Mapping[str, Any]]:
        """The forms as written: the digest goes into the experiment form, which every labmesh asset carries."""
        return {
            name: {**content, "labmeshDigest": digest} if name == EXPERIMENT_FORM else content
            for name, content in self.forms.items()
        }


@dataclass(frozen=True)
class _Found:
    """An asset's latest revision as ``GetAsset`` answers it."""

    asset_id: str
    external_id: str
    revision: str
    forms_output: tuple[Mapping[str, Any], ...]
    listing_id: str | None
    listing_status: str | None
    project_id: str

    @classmethod
    def from_asset(cls, asset: Mapping[str, Any]) -> _Found:
        listing = asset.get("listing") or {}
        return cls(
            asset_id=asset["id"],
            external_id=asset.get("externalIdentifier") or "",
            revision=str(asset["revision"]),
            forms_output=tuple(asset.get("formsOutput") or ()),
            listing_id=listing.get("listingId"),
            listing_status=listing.get("listingStatus"),
            project_id=str(asset.get("owningProjectId") or ""),
        )

    def content(self, form_name: str) -> dict[str, Any]:
        """A form's content as an object ({} when the asset has no such form or it is not JSON)."""
        return next(
            (_json_object(form.get("content")) for form in self.forms_output if form["formName"] == form_name), {}
        )

    @property
    def digest(self) -> str | None:
        value = self.content(EXPERIMENT_FORM).get("labmeshDigest")
        return value if isinstance(value, str) else None

    @property
    def listed(self) -> bool:
        """Whether the asset has a listing that is, or is becoming, visible in the catalog."""
        return bool(self.listing_id) and self.listing_status in {"ACTIVE", "CREATING"}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _token(*parts: str) -> str:
    """A client token (at most 128 printable ASCII characters) that is the same whenever ``parts`` are."""
    return "labmesh-" + _digest(*parts)[:48]


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _eq(attribute: str, value: str) -> dict[str, Any]:
    return {"filter": {"attribute": attribute, "value": value, "operator": "EQ"}}


def _words(attribute: str, value: str) -> dict[str, Any]:
    return {"filter": {"attribute": attribute, "value": value, "operator": "TEXT_SEARCH"}}


def _compare(attribute: str, operator: str, value: int) -> dict[str, Any]:
    return {"filter": {"attribute": attribute, "intValue": value, "operator": operator}}


def _combined(operator: str, clauses: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {operator: list(clauses)}


def _fits(value: str | None) -> bool:
    return bool(value) and len(value or "") <= FILTER_VALUE_MAX


def _date_clause(query: SearchQuery) -> dict[str, Any] | None:
    """``since``/``until`` as day comparisons, on the experiment's date or on the dataset's files' range.

    The local index compares ISO text, and text ``>= since`` always has a day
    ``>=`` since's day (likewise for until), so comparing days keeps every
    match; a bound that does not open with an ISO date is left to the registry.
    """
    since = day_number(query.since) if query.since else None
    until = day_number(query.until) if query.until else None
    experiment = f"{EXPERIMENT_FORM}.createdDay"
    experiment_bounds = [_compare(experiment, "GE", since)] if since is not None else []
    experiment_bounds += [_compare(experiment, "LE", until)] if until is not None else []
    dataset_bounds = [_compare(f"{DATASET_FORM}.createdToDay", "GE", since)] if since is not None else []
    dataset_bounds += [_compare(f"{DATASET_FORM}.createdFromDay", "LE", until)] if until is not None else []
    branches = [clause for clause in (_combined("and", experiment_bounds), _combined("and", dataset_bounds)) if clause]
    return _combined("or", branches)


def listing_filters(query: SearchQuery) -> dict[str, Any] | None:
    """The query's facets as a DataZone filter clause that keeps at least what the local index matches.

    Experiment: exact, as locally (``EQ`` on the ``TECHNICAL`` ``experimentId``).
    Sample: a search of the experiment's and the files' ``TECHNICAL`` sample ids,
    which match a whole id (the local match is exact and case-insensitive). Group,
    platform, format, file name: their words, as the local index tokenizes them,
    searched in the matching ``LEXICAL`` ``...Terms`` member, where every word
    must occur (the local column filter is a phrase of those words). Dates: see
    `_date_clause`.
    """
    clauses: list[dict[str, Any]] = []
    if _fits(query.experiment):
        clauses.append(_eq(f"{EXPERIMENT_FORM}.experimentId", query.experiment or ""))
    if _fits(query.sample):
        sample = query.sample or ""
        clauses.append(
            {"or": [_words(f"{EXPERIMENT_FORM}.sampleIds", sample), _words(f"{DATASET_FORM}.sampleIds", sample)]}
        )
    facets = [
        (query.group, f"{EXPERIMENT_FORM}.groupTerms"),
        (query.platform, f"{EXPERIMENT_FORM}.platformTerms"),
        (query.format, f"{DATASET_FORM}.formatTerms"),
        (query.file_name, f"{DATASET_FORM}.fileNameTerms"),
    ]
    for value, attribute in facets:
        terms = query_terms(value)
        if _fits(terms):
            clauses.append(_words(attribute, terms))
    date = _date_clause(query)
    if date:
        clauses.append(date)
    return _combined("and", clauses)


def lexical(words: str) -> str:
    """A lexical query: in double quotes, DataZone matches the words themselves, never semantically related ones.

    (``Search`` API reference: "To run a lexical search query, enclose the query with double quotes".)
    """
    return f'"{words}"' if words else ""


def search_text(text: str) -> str:
    """The query's words as index terms in a lexical query, cut at a word to DataZone's 512 characters.

    Words beyond the cut are left to the registry, which gets the whole query.
    """
    terms = query_terms(text)
    room = SEARCH_TEXT_MAX - 2  # the quotes
    if len(terms) > room:
        cut = terms[: room + 1]
        terms = cut.rsplit(" ", 1)[0] if " " in cut else cut[:room]
    return lexical(terms)


def _listing_key(listing: Mapping[str, Any] | None) -> tuple[str, str | None] | None:
    """(experiment, dataset or None) of a labmesh listing, from its forms; None for anything else."""
    if not listing:
        return None
    forms = _json_object((listing.get("additionalAttributes") or {}).get("forms"))
    experiment = forms.get(EXPERIMENT_FORM)
    if not isinstance(experiment, dict) or not isinstance(experiment.get("experimentId"), str):
        return None
    dataset = forms.get(DATASET_FORM)
    name = dataset.get("dataset") if isinstance(dataset, dict) else None
    return experiment["experimentId"], name if isinstance(name, str) else None


def _asset_item_key(item: Mapping[str, Any] | None) -> tuple[str, str | None] | None:
    """(experiment, dataset or None) of a labmesh inventory asset, from its forms; None for anything else."""
    forms = {
        form.get("formName"): _json_object(form.get("content"))
        for form in ((item or {}).get("additionalAttributes") or {}).get("formsOutput") or ()
    }
    experiment, dataset = forms.get(EXPERIMENT_FORM) or {}, forms.get(DATASET_FORM) or {}
    if not isinstance(experiment.get("experimentId"), str):
        return None
    name = dataset.get("dataset")
    return experiment["experimentId"], name if isinstance(name, str) else None


def _record_values(record: ExperimentRecord, category: str) -> list[str]:
    if category in {"tag", "tags"}:
        return list(record.tags)
    field_name = _CATEGORY_FIELDS.get(category)
    value = getattr(record, field_name) if field_name else record.custom.get(category)
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value if isinstance(item, (str, int))]
    return []


def _asset_name(record: ExperimentRecord, zone: Zone | None) -> str:
    label = f"{record.id} {zone.value}" if zone else record.id
    return f"{label}: {record.title}"[:ASSET_NAME_MAX]


class DataZoneCatalog(Catalog):
    """The catalog published to one DataZone domain, its assets owned by their groups' projects, over a local registry.

    ``project_id`` owns labmesh's form types, asset type and glossary.
    ``group_projects`` maps group names (and ``*``, every other group) to the
    projects that own their experiments' assets; None maps every group to
    ``project_id``. Experiments with no group or an unmapped one go, unpublished,
    to ``restricted_project_id`` (``project_id`` if None). See `datazone_projects`.
    """

    def __init__(
        self,
        client: Any,
        *,
        domain_id: str,
        project_id: str,
        registry: Catalog,
        max_per_second: float = DATAZONE_CALLS_PER_SECOND,
        glossary_terms: Mapping[str, Sequence[str]] | None = None,
        group_projects: Mapping[str, str] | None = None,
        restricted_project_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.domain_id = domain_id
        self.project_id = project_id
        self.projects = GroupProjects.build(
            {OTHER_GROUPS: project_id} if group_projects is None else group_projects,
            restricted_project_id=restricted_project_id or project_id,
        )
        self.registry = registry
        self.glossary_terms = {category: list(values) for category, values in (glossary_terms or {}).items()}
        self.call = PacedCaller(client, max_per_second=max_per_second, clock=clock, sleep=sleep)
        self._report: BootstrapReport | None = None

    def _request(
        self, doing: str, operation: str, /, *, passthrough: frozenset[str] = frozenset(), **params: Any
    ) -> dict[str, Any]:
        """One DataZone call through the pacer; what fails after retries becomes `CatalogUnavailable` naming ``doing``.

        ``doing`` and ``operation`` are positional-only because DataZone has request members called ``action``.
        """
        with clear_failure("DataZone", doing, CatalogUnavailable, passthrough=passthrough):
            response: dict[str, Any] = self.call(operation, domainIdentifier=self.domain_id, **params)
        return response

    def _search_all(
        self, doing: str, operation: str, /, *, limit: int = MAX_LISTINGS, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item of a paginated Search or SearchListings, up to ``limit``."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page_params: dict[str, Any] = {**params, "maxResults": PAGE_SIZE}
            if token:
                page_params["nextToken"] = token
            page = self._request(doing, operation, **page_params)
            items += page.get("items") or []
            token = page.get("nextToken")
            if not token or len(items) >= limit:
                return items[:limit]

    # Bootstrap: form types, the asset type, the glossary and its terms, each found before it is made.

    def bootstrap(self) -> BootstrapReport:
        """Make sure the domain has labmesh's form types, asset type, glossary and terms; create only what is missing.

        Idempotent: a second call reads and creates nothing. A form type whose
        model changed gets a new revision, and so does the asset type then, so
        that assets move to it on their next revision.
        """
        created: list[str] = []
        form_types = {name: self._form_type(name, smithy, created) for name, smithy in FORM_TYPES.items()}
        asset_type_revision = self._asset_type(form_types, created)
        glossary_id, is_new = self._glossary(created)
        terms = self._terms(glossary_id, is_new, created) if self.glossary_terms else {}
        self._report = BootstrapReport(form_types, asset_type_revision, glossary_id, terms, tuple(created))
        return self._report

    def _ready(self) -> BootstrapReport:
        """The bootstrap report, bootstrapping once per catalog object if no one has yet.

        Publishing needs the types' revisions, and searches name their members.
        """
        return self._report or self.bootstrap()

    def _form_type(self, name: str, smithy: str, created: list[str]) -> str:
        """The revision of labmesh's form type ``name``, created only when the domain has no such model.

        The description names the digest of labmesh's model (`form_type_description`);
        equal descriptions are equal models, however DataZone renders the Smithy text.
        """
        description = form_type_description(name)
        try:
            found = self._request(
                f"read form type {name}", "get_form_type", formTypeIdentifier=name, passthrough=_NOT_FOUND
            )
        except ClientError:
            found = {}
        if found.get("description") == description and found.get("status", "ENABLED") == "ENABLED":
            return str(found["revision"])
        made = self._create_type(
            f"form type {name}",
            "create_form_type",
            exists=bool(found),
            name=name,
            model={"smithy": smithy},
            owningProjectIdentifier=self.project_id,
            status="ENABLED",
            description=description,
        )
        created.append(f"form type {name} revision {made['revision']}")
        return str(made["revision"])

    def _asset_type(self, form_types: Mapping[str, str], created: list[str]) -> str:
        """The revision of ``LabmeshAsset``, compared on labmesh's own slots only.

        DataZone adds an ``AssetCommonDetailsForm`` slot to every custom asset
        type (``CreateAssetType`` API reference, example 1); it is DataZone's,
        not a difference.
        """
        forms = asset_type_forms(form_types)
        try:
            found = self._request(
                f"read asset type {ASSET_TYPE}", "get_asset_type", identifier=ASSET_TYPE, passthrough=_NOT_FOUND
            )
        except ClientError:
            found = {}
        slots = found.get("formsOutput") or {}
        have = {
            name: (slots[name].get("typeName"), slots[name].get("typeRevision"), bool(slots[name].get("required")))
            for name in forms
            if name in slots
        }
        want = {name: (slot["typeIdentifier"], slot["typeRevision"], slot["required"]) for name, slot in forms.items()}
        if found and have == want:
            return str(found["revision"])
        made = self._create_type(
            f"asset type {ASSET_TYPE}",
            "create_asset_type",
            exists=bool(found),
            name=ASSET_TYPE,
            description=ASSET_TYPE_DESCRIPTION,
            formsInput=forms,
            owningProjectIdentifier=self.project_id,
        )
        created.append(f"asset type {ASSET_TYPE} revision {made['revision']}")
        return str(made["revision"])

    def _create_type(self, what: str, operation: str, /, *, exists: bool, **params: Any) -> dict[str, Any]:
        """Create a type (or the glossary), turning DataZone's refusals into a plain `BootstrapRefused`.

        The API reference documents type names as unique in the domain, so a
        type of that name whose model labmesh did not write is a conflict that
        only a person can settle; a V2 domain refuses a project that lacks the
        domain unit's policy grant.
        """
        try:
            return self._request(f"create {what}", operation, passthrough=_CONFLICT | _REFUSED, **params)
        except ClientError as exc:
            code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
            if code in _CONFLICT:
                differs = "has another model than this labmesh's" if exists else "belongs to another project"
                raise BootstrapRefused(
                    f"DataZone refused to create {what}: a type of that name {differs} in domain {self.domain_id}, "
                    f"and names are unique in a domain ({code}: {message}). Delete that type, or point labmesh "
                    f"at another domain or project."
                ) from exc
            grant = _GRANTS[operation]
            raise BootstrapRefused(
                f"DataZone refused to create {what} in domain {self.domain_id}: {code}: {message}. "
                f"On a V2 (SageMaker Unified Studio) domain, project {self.project_id} needs the {grant} policy grant "
                f"on its domain unit (AddPolicyGrant, policyType {grant}); on a V1 domain, the caller needs "
                f"datazone:{''.join(part.title() for part in operation.split('_'))} on the domain."
            ) from exc

    def _glossary(self, created: list[str]) -> tuple[str, bool]:
        """The id of the project's ``labmesh`` glossary, and whether it was just created.

        Found by a lexical search for its name (a name filter is not documented
        for Search; its filters are form members, ``__DataZoneGlossaryTerms``,
        ``creationTime`` and ``lastUpdatedTime``), then matched on the name exactly.
        """
        items = self._search_all(
            "find the labmesh glossary",
            "search",
            searchScope="GLOSSARY",
            owningProjectIdentifier=self.project_id,
            searchText=lexical(GLOSSARY_NAME),
        )
        for item in items:
            glossary = item.get("glossaryItem") or {}
            if glossary.get("name") == GLOSSARY_NAME:
                return str(glossary["id"]), False
        made = self._create_type(
            f"glossary {GLOSSARY_NAME}",
            "create_glossary",
            exists=False,
            name=GLOSSARY_NAME,
            owningProjectIdentifier=self.project_id,
            description="labmesh: the words experiments and datasets are described and found by",
            status="ENABLED",
            clientToken=_token("glossary", self.domain_id, self.project_id, GLOSSARY_NAME),
        )
        created.append(f"glossary {GLOSSARY_NAME}")
        return str(made["id"]), True

    def _terms(self, glossary_id: str, is_new: bool, created: list[str]) -> dict[str, dict[str, str]]:
        """Per category, its value terms' ids: a term per category, and a term per value that *is a* category term.

        The project's terms are listed whole and kept when they are the glossary's (no documented filter names
        a term's glossary).
        """
        existing: dict[str, str] = {}
        if not is_new:
            items = self._search_all(
                "list the labmesh glossary terms",
                "search",
                limit=_EVERY,
                searchScope="GLOSSARY_TERM",
                owningProjectIdentifier=self.project_id,
            )
            for item in items:
                term = item.get("glossaryTermItem") or {}
                if term.get("glossaryId") == glossary_id:
                    existing[term["name"]] = term["id"]
        terms: dict[str, dict[str, str]] = {}
        for category, values in self.glossary_terms.items():
            if category not in existing:
                existing[category] = self._term(glossary_id, category, f"labmesh facet: {category}", None, created)
            for value in values:
                if value not in existing:
                    description = f"a {category} (labmesh)"
                    existing[value] = self._term(glossary_id, value, description, existing[category], created)
            terms[category] = {value: existing[value] for value in values}
        return terms

    def _term(self, glossary_id: str, name: str, description: str, parent: str | None, created: list[str]) -> str:
        relations: dict[str, Any] = {"termRelations": {"isA": [parent]}} if parent else {}
        made = self._request(
            f"create glossary term {name!r}",
            "create_glossary_term",
            glossaryIdentifier=glossary_id,
            name=name,
            shortDescription=description[:1024],
            status="ENABLED",
            clientToken=_token("term", glossary_id, name),
            **relations,
        )
        created.append(f"glossary term {name}")
        return str(made["id"])

    # Publishing.

    def upsert_experiment(
        self, record: ExperimentRecord, locations: dict[str, str], *, run_id: str | None = None
    ) -> CatalogEntry:
        """Registry first, then the experiment's asset and (their experiment form changed with it) its datasets'."""
        entry = self.registry.upsert_experiment(record, locations, run_id=run_id)
        self._ready()
        found = self._assets_of(record.id, DATASET_ZONES)
        wanted = [self._experiment_asset(record, locations)]
        for zone in DATASET_ZONES:
            have = found.get(external_id(record.id, zone))
            if have is not None:
                wanted.append(self._stored_dataset_asset(record, have, zone))
        self._reconcile(wanted, found)
        return entry

    def upsert_dataset(self, manifest: Manifest, location: str, *, run_id: str | None = None) -> CatalogEntry:
        """Registry first (it refuses an unknown experiment), then the dataset's asset and its experiment's."""
        entry = self.registry.upsert_dataset(manifest, location, run_id=run_id)
        experiment_id = manifest.experiment_id
        record = self.registry.get_experiment(experiment_id)
        if record is None:
            raise ExperimentNotRegistered(experiment_id)
        self._ready()
        locations = self.registry.experiment_locations(experiment_id)
        wanted = [
            self._experiment_asset(record, locations),
            self._dataset_asset(record, manifest.zone, location, manifest),
        ]
        self._reconcile(wanted, self._assets_of(experiment_id, (manifest.zone,)))
        return entry

    def published_asset(self, experiment_id: str, zone: Zone | None = None) -> dict[str, Any] | None:
        """The experiment's (or its dataset in ``zone``'s) DataZone asset as GetAsset returns it, or None."""
        return self._get_asset(external_id(experiment_id, zone))

    def _glossary_terms(self, record: ExperimentRecord) -> tuple[str, ...]:
        report = self._ready()
        ids = [
            term_id
            for category in self.glossary_terms
            for term_id in report.term_ids(category, _record_values(record, category))
        ]
        return tuple(dict.fromkeys(ids))[:GLOSSARY_TERMS_MAX]

    def _experiment_asset(self, record: ExperimentRecord, locations: Mapping[str, str]) -> _Wanted:
        """The experiment's asset; its data's place is its landing folder, the dataset registration outputs."""
        landing = locations.get(Zone.LANDING.value)
        return _Wanted(
            external_id=external_id(record.id),
            name=_asset_name(record, None),
            description=record.description[:ASSET_DESCRIPTION_MAX],
            forms={EXPERIMENT_FORM: experiment_form(record)},
            source_identifier=source_identifier(landing) if landing else "",
            placement=self.projects.placement(record.group),
            glossary_terms=self._glossary_terms(record),
        )

    def _dataset_asset(self, record: ExperimentRecord, zone: Zone, location: str, manifest: Manifest) -> _Wanted:
        content = dataset_form(manifest, location=location, record=record)
        return _Wanted(
            external_id=external_id(record.id, zone),
            name=_asset_name(record, zone),
            description=record.description[:ASSET_DESCRIPTION_MAX],
            forms={EXPERIMENT_FORM: experiment_form(record), DATASET_FORM: content},
            source_identifier=source_identifier(location),
            placement=self.projects.placement(record.group),
            glossary_terms=self._glossary_terms(record),
        )

    def _stored_dataset_asset(self, record: ExperimentRecord, found: _Found, zone: Zone) -> _Wanted:
        """A published dataset rebuilt from the registry (or kept as it is, if the registry lost it)."""
        stored: DatasetRecord | None = self.registry.get_dataset(record.id, zone)
        if stored is None:
            kept = {EXPERIMENT_FORM: experiment_form(record), DATASET_FORM: found.content(DATASET_FORM)}
            source = found.content(COMMON_FORM).get("sourceIdentifier")
            return _Wanted(
                external_id=found.external_id,
                name=_asset_name(record, zone),
                description=record.description[:ASSET_DESCRIPTION_MAX],
                forms=kept,
                source_identifier=source if isinstance(source, str) else "",
                placement=self.projects.placement(record.group),
                glossary_terms=self._glossary_terms(record),
            )
        manifest = Manifest(experiment_id=record.id, zone=zone, entries=stored.files)
        return self._dataset_asset(record, zone, stored.location, manifest)

    def _get_asset(self, external: str) -> dict[str, Any] | None:
        """GetAsset by external identifier, or None when DataZone has no such asset."""
        self._ready()
        try:
            return self._request(
                f"read asset {external}", "get_asset", identifier=_BY_EXTERNAL_ID + external, passthrough=_NOT_FOUND
            )
        except ClientError:
            return None

    def _assets_of(self, experiment_id: str, zones: Sequence[Zone]) -> dict[str, _Found]:
        """The experiment's asset and its datasets' in ``zones`` that exist, by externalIdentifier."""
        found: dict[str, _Found] = {}
        for external in [external_id(experiment_id), *(external_id(experiment_id, zone) for zone in zones)]:
            asset = self._get_asset(external)
            if asset is not None:
                found[external] = _Found.from_asset(asset)
        return found

    def _listed(self, found: _Found, digest: str) -> bool:
        """Whether the asset's listing is active and shows the revision with ``digest``."""
        if found.listing_status != "ACTIVE" or not found.listing_id:
            return False
        try:
            listing = self._request(
                f"read the listing of {found.external_id}",
                "get_listing",
                identifier=found.listing_id,
                passthrough=_NOT_FOUND,
            )
        except ClientError:
            return False
        item = (listing.get("item") or {}).get("assetListing") or {}
        experiment = _json_object(item.get("forms")).get(EXPERIMENT_FORM)
        return isinstance(experiment, dict) and experiment.get("labmeshDigest") == digest

    def _reconcile(self, wanted: Sequence[_Wanted], found: Mapping[str, _Found]) -> None:
        """Create, move, revise, publish or unpublish what differs from what is wanted; leave the rest alone."""
        report = self._ready()
        for asset in wanted:
            digest = asset.digest(report)
            have = found.get(asset.external_id)
            listed = have is not None and have.listed
            if have is not None and have.project_id != asset.placement.project_id:
                self._delete_to_move(have, asset)
                (asset_id, revision), listed = self._create(asset, digest, replacing=have), False
            elif have is None:
                asset_id, revision = self._create(asset, digest)
            elif have.digest != digest:
                asset_id, revision = have.asset_id, self._revise(have, asset, digest)
            elif self._listed(have, digest) if asset.placement.listed else not listed:
                continue
            else:
                asset_id, revision = have.asset_id, have.revision
            if asset.placement.listed:
                self._publish(asset_id, revision, asset.external_id)
            elif listed:
                self._unpublish(asset_id, revision, asset.external_id)

    def _forms_input(self, asset: _Wanted, digest: str, found: _Found | None = None) -> list[dict[str, str]]:
        """labmesh's forms, the common form with the source identifier, and (revising) every other form as it is."""
        report = self._ready()
        own = asset.forms_with(digest)
        forms = [
            {
                "formName": name,
                "typeIdentifier": name,
                "typeRevision": report.form_types[name],
                "content": form_json(content),
            }
            for name, content in own.items()
        ]
        common = found.content(COMMON_FORM) if found else {}
        if asset.source_identifier:
            common = {**common, "sourceIdentifier": asset.source_identifier}
        if common:
            forms.append({"formName": COMMON_FORM, "content": form_json(common)})
        for form in found.forms_output if found else ():
            if form["formName"] not in own and form["formName"] != COMMON_FORM:
                kept = {"formName": form["formName"], "typeIdentifier": form.get("typeName")}
                kept |= {"typeRevision": form.get("typeRevision"), "content": form.get("content")}
                forms.append({key: value for key, value in kept.items() if value is not None})
        return forms

    def _terms_input(self, asset: _Wanted) -> dict[str, Any]:
        return {"glossaryTerms": list(asset.glossary_terms)} if asset.glossary_terms else {}

    def _create(self, asset: _Wanted, digest: str, *, replacing: _Found | None = None) -> tuple[str, str]:
        """A new asset in the asset's project; ``replacing`` (the asset deleted to move it) gives the forms to keep.

        The client token names the project and the asset replaced, so that moving
        back to a project is a new request, never a replay of the first creation there.
        """
        moved_from = replacing.asset_id if replacing else ""
        try:
            made = self._request(
                f"create asset {asset.external_id}",
                "create_asset",
                passthrough=_CONFLICT,
                name=asset.name,
                description=asset.description,
                externalIdentifier=asset.external_id,
                typeIdentifier=ASSET_TYPE,
                typeRevision=self._ready().asset_type_revision,
                owningProjectIdentifier=asset.placement.project_id,
                formsInput=self._forms_input(asset, digest, replacing),
                clientToken=_token("asset", asset.external_id, asset.placement.project_id, moved_from, digest),
                **self._terms_input(asset),
            )
        except ClientError as exc:
            # The identifier is taken (an earlier run's create whose answer was lost): look it up, exactly.
            existing = self._get_asset(asset.external_id)
            if existing is None:
                raise CatalogUnavailable(
                    f"DataZone refused to create asset {asset.external_id} and has no asset of that "
                    f"externalIdentifier: {error_code(exc)}"
                ) from exc
            have = _Found.from_asset(existing)
            if have.digest != digest:
                return have.asset_id, self._revise(have, asset, digest)
            return have.asset_id, have.revision
        return str(made["id"]), str(made["revision"])

    def _revise(self, found: _Found, asset: _Wanted, digest: str) -> str:
        # The token names the revision revised from too, so content that comes back (A, B, A) is revised again.
        made = self._request(
            f"revise asset {asset.external_id}",
            "create_asset_revision",
            identifier=found.asset_id,
            name=asset.name,
            description=asset.description,
            typeRevision=self._ready().asset_type_revision,
            formsInput=self._forms_input(asset, digest, found),
            clientToken=_token("revision", found.asset_id, found.revision, digest),
            **self._terms_input(asset),
        )
        return str(made["revision"])

    def _delete_to_move(self, found: _Found, asset: _Wanted) -> None:
        """Delete the asset from the project that owns it, so that it can be created in its group's new project.

        Already gone (an earlier run deleted it and stopped) is done. A refusal is
        `AssetMoveRefused`: the asset stays where it was, nothing else is lost.
        """
        doing = f"delete asset {found.external_id} from project {found.project_id}"
        try:
            self._request(doing, "delete_asset", identifier=found.asset_id, passthrough=_NOT_FOUND | _KEPT)
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                return
            message = exc.response.get("Error", {}).get("Message", "")
            raise AssetMoveRefused(
                f"DataZone refused to delete asset {found.external_id} (id {found.asset_id}) from project "
                f"{found.project_id}, which labmesh does to move it to project {asset.placement.project_id}, where its "
                f"experiment's group now belongs: {error_code(exc)}: {message}. DataZone keeps an asset that has "
                f"subscriptions, belongs to a data product or is named by an asset filter: revoke its subscriptions "
                f"or remove it from them, or transfer it yourself (UpdateAssetOwner), then materialize the "
                f"experiment again."
            ) from exc

    def _unpublish(self, asset_id: str, revision: str, name: str) -> None:
        """Take the asset out of the catalog: its experiment is restricted (no group, or one mapped to no project)."""
        self._request(
            f"unpublish asset {name}",
            "create_listing_change_set",
            entityIdentifier=asset_id,
            entityType="ASSET",
            entityRevision=revision,
            action="UNPUBLISH",
        )

    def _publish(self, asset_id: str, revision: str, name: str) -> None:
        """List the revision. No client token: publishing a listed revision again changes nothing, and a token
        would turn the republishing of a revision a steward unpublished into a replay of the first answer."""
        self._request(
            f"publish asset {name} revision {revision}",
            "create_listing_change_set",
            entityIdentifier=asset_id,
            entityType="ASSET",
            entityRevision=revision,
            action="PUBLISH",
        )

    # Search.

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """What DataZone lists for the query, and the restricted project holds for it, as the registry's hits for it.

        Restricted experiments are never listed, so the restricted project's
        inventory is searched too (``Search``, the same text and filters); the
        registry then applies the viewer, as for every other hit.
        """
        self._ready()  # the filters name the forms' members, which DataZone only knows once the types exist
        params: dict[str, Any] = {"additionalAttributes": ["FORMS"]}
        text = search_text(query.text)
        if text:
            params["searchText"] = text
            params["searchIn"] = [
                {"attribute": f"{EXPERIMENT_FORM}.searchTerms"},
                {"attribute": f"{DATASET_FORM}.searchTerms"},
            ]
        filters = listing_filters(query)
        if filters:
            params["filters"] = filters
        items = self._search_all("search the published listings", "search_listings", **params)
        listed = {key for key in (_listing_key(item.get("assetListing")) for item in items) if key}
        listed |= self._restricted_matches(params)
        if not listed:
            return []
        hits = self.registry.search(replace(query, limit=_EVERY))
        return [hit for hit in hits if (hit.experiment_id, hit.dataset) in listed][: query.limit]

    def _restricted_matches(self, params: Mapping[str, Any]) -> set[tuple[str, str | None]]:
        """(experiment, dataset) of the restricted project's assets the query matches, of restricted experiments only.

        The restricted project may be labmesh's shared one too, whose assets a
        steward took out of the catalog are not to be found: only experiments
        the registry places there count.
        """
        items = self._search_all(
            "search the restricted project's inventory",
            "search",
            searchScope="ASSET",
            owningProjectIdentifier=self.projects.restricted_project_id,
            **params,
        )
        keys = {key for key in (_asset_item_key(item.get("assetItem")) for item in items) if key}
        return {key for key in keys if self._restricted(key[0])}

    def _restricted(self, experiment_id: str) -> bool:
        record = self.registry.get_experiment(experiment_id)
        return record is not None and not self.projects.placement(record.group).listed

    # Reads the registry answers: it is the system of record for operational state.

    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        return self.registry.get_experiment(experiment_id)

    def experiment_fingerprints(self) -> dict[str, str]:
        return self.registry.experiment_fingerprints()

    def get_dataset(self, experiment_id: str, zone: Zone) -> DatasetRecord | None:
        return self.registry.get_dataset(experiment_id, zone)

    def experiment_locations(self, experiment_id: str) -> dict[str, str]:
        return self.registry.experiment_locations(experiment_id)

    def record_checks(self, experiment_id: str, zone: Zone, revision: int, outcomes: Sequence[CheckOutcome]) -> None:
        self.registry.record_checks(experiment_id, zone, revision, outcomes)

    def dataset_revisions(self, experiment_id: str, zone: Zone, *, limit: int = 20) -> list[DatasetRevision]:
        return self.registry.dataset_revisions(experiment_id, zone, limit=limit)

    def checks_needing_attention(self, *, viewer: Viewer | None = None) -> list[DatasetRevision]:
        return self.registry.checks_needing_attention(viewer=viewer)

    def set_archived(self, experiment_id: str, archived: bool) -> bool:
        return self.registry.set_archived(experiment_id, archived)

    def archived_experiments(self) -> set[str]:
        return self.registry.archived_experiments()

    def summaries(self, *, viewer: Viewer | None = None) -> list[ExperimentSummary]:
        return self.registry.summaries(viewer=viewer)

    # Access and facet counts: the registry keeps who may see each experiment and counts under it.

    def facet_counts(self, query: SearchQuery, *, top: int = 20) -> FacetCounts:
        return self.registry.facet_counts(query, top=top)

    def grant(self, experiment_id: str, principal: str) -> bool:
        return self.registry.grant(experiment_id, principal)

    def revoke(self, experiment_id: str, principal: str) -> bool:
        return self.registry.revoke(experiment_id, principal)

    def principals(self, experiment_id: str) -> frozenset[str]:
        return self.registry.principals(experiment_id)
