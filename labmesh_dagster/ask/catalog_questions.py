"""Questions the catalog's typed metadata answers better than any passage, answered from it and cited to the dataset.

"Which experiments used the NovaSeq last month", "what is the Q30 of LIV-01",
"how many FASTQ files does EXP-1 have", "who owns EXP-2": these ask for
fields, counts and measures that the catalog and the QC documents hold exactly,
while a passage of text holds them, if at all, in passing. They are recognised
by what they name, matched against the catalog's own values (its experiments,
samples and facet values, as `Catalog.facet_counts` lists them for the asker),
not against a fixed list of instruments: a lab's new sequencer is recognised
the day its first experiment is registered.

Everything is read under the asker's access: the catalog's search and counts
take the viewer, and an experiment named by id is looked at only when the
viewer may see it, so an id the asker may not see is answered as if it did not
exist. A question that is not one of these, or that the catalog cannot answer
(no QC has run yet), returns None and goes to the passages.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from labmesh_dagster.ask.base import AnswerEnd, AnswerEvent, CatalogFact, fact_citation
from labmesh_dagster.ask.terms import ENTITY_ID, content_terms, stem, words
from labmesh_dagster.connectors.catalog.base import Catalog, SearchQuery
from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.access import Viewer
from labmesh_dagster.core.answers import AnswerPart
from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import ObjectKey, Zone

ENGINE = "catalog"
FACET_VALUES = 200
"""Facet values read to recognise names (platforms, groups, owners, protocols, formats): a lab has far fewer."""

_MONTHS = {name.casefold(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.casefold(): number for number, name in enumerate(calendar.month_abbr) if name}
_ID_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")

FIELD_WORDS = {
    "platform": ("platform", "instrument", "sequencer", "machine", "scanner", "microscope", "spectrometer"),
    "owner": ("owner", "own", "owns", "owned", "who"),
    "group": ("group", "lab", "team"),
    "protocol": ("protocol", "method"),
    "samples": ("sample", "samples"),
    "created": ("created", "when", "date", "started"),
}
"""Words that ask for one field of a named experiment."""

QC_WORDS = {"q30": "q30_percent", "quality": "mean_quality", "reads": "reads"}


@dataclass(frozen=True)
class Named:
    """What a question names that the catalog knows, each visible to the asker."""

    experiments: tuple[ExperimentRecord, ...]
    samples: dict[str, tuple[str, ...]]  # sample id as the catalog spells it -> the visible experiments that hold it
    filters: dict[str, str]  # SearchQuery facet -> value (platform, group, owner, protocol, format)
    since: date | None = None
    until: date | None = None
    period: str | None = None  # "November 2026", as the answer says it


@dataclass(frozen=True)
class CatalogAnswer:
    """The catalog's answer: a lead sentence and its facts, each cited; no facts means it found nothing."""

    lead: str
    facts: tuple[CatalogFact, ...]

    def events(self) -> Iterator[AnswerEvent]:
        if not self.facts:
            yield AnswerPart(self.lead)
            yield AnswerEnd(answered=False, engine=ENGINE)
            return
        yield AnswerPart(self.lead)
        for number, fact in enumerate(self.facts, 1):
            yield AnswerPart(fact.text, (number,))
        for number, fact in enumerate(self.facts, 1):
            yield fact_citation(number, fact)
        yield AnswerEnd(answered=True, engine=ENGINE)


def answer_from_catalog(
    question: str,
    *,
    viewer: Viewer,
    catalog: Catalog,
    store: ObjectStore | None = None,
    today: date | None = None,
    named: Named | None = None,
) -> CatalogAnswer | None:
    """The catalog's answer to ``question``, or None when it is not a question the catalog answers.

    ``named`` is what `recognise` found in it, when the caller has it already.
    """
    asked = set(words(question))
    if named is None:
        named = recognise(question, viewer=viewer, catalog=catalog, today=today or datetime.now(UTC).date())
    subjects = bool(named.experiments or named.samples)
    if subjects and store is not None and asked & set(QC_WORDS):
        answer = _qc_answer(named, asked, catalog, store)
        if answer is not None:
            return answer
    if subjects and "how" in asked and "many" in asked and (asked & {"file", "files"} or "format" in named.filters):
        return _file_count(named, catalog)
    experiment_words = {stem(word) for word in asked} & {"experiment", "study", "project", "run"}
    if experiment_words and not named.experiments and (named.filters or named.samples or named.since):
        # Answered only when the catalog understood every condition: "used the MiSeq last month", for someone
        # who sees no MiSeq experiment, must not become "anything last month".
        if not _unrecognised(question, named):
            return _experiments(named, catalog, viewer)
        return None
    if len(named.experiments) == 1 and not named.samples:
        field = next((name for name, hints in FIELD_WORDS.items() if asked & set(hints)), None)
        if field is not None:
            return _field(named.experiments[0], field)
    return None


_LIST_WORDS = (
    "experiment experiments study studies project projects run runs ran use used using done performed carried"
    " out data dataset datasets month months last this previous year sample samples file files lab group"
    " platform instrument sequencer machine on in during from with had have has did do does which list show"
)
LIST_WORDS = frozenset(stem(word) for word in _LIST_WORDS.split())
"""Words a question listing experiments may hold besides the names of what it filters on."""


def _unrecognised(question: str, named: Named) -> set[str]:
    """The question's content words that neither the filters, the samples nor the month account for."""
    said = " ".join([*named.filters.values(), *named.samples, named.period or ""])
    known = content_terms(said) | LIST_WORDS | {stem(word) for word in _MONTHS}
    return {term for term in content_terms(question) if term not in known and not term.isdigit()}


def recognise(question: str, *, viewer: Viewer, catalog: Catalog, today: date) -> Named:
    """The experiments, samples, facet values and month the question names, as the asker may see them."""
    experiments: dict[str, ExperimentRecord] = {}
    samples: dict[str, tuple[str, ...]] = {}
    for token in dict.fromkeys(_ID_TOKEN.findall(question)):
        if not ENTITY_ID.match(token):
            continue
        record = _visible_experiment(catalog, viewer, token)
        if record is not None:
            experiments[record.id] = record
            continue
        holders = _sample_holders(catalog, viewer, token)
        if holders:
            samples[holders[0]] = holders[1]
    counts = catalog.facet_counts(SearchQuery(viewer=viewer), top=FACET_VALUES)
    folded = " ".join(words(question))
    filters = {}
    for facet in ("platform", "group", "owner", "protocol", "format"):
        value = _named_value(folded, [value for value, _ in counts.get(facet, [])], facet)
        if value is not None:
            filters[facet] = value
    since, until, period = _period(question, today)
    return Named(tuple(experiments.values()), samples, filters, since, until, period)


def _visible_experiment(catalog: Catalog, viewer: Viewer, token: str) -> ExperimentRecord | None:
    for candidate in dict.fromkeys((token, token.upper())):
        try:
            record = catalog.get_experiment(candidate)
        except ValueError:
            return None
        if record is not None:
            return record if viewer.may_see(catalog.principals(record.id)) else None
    return None


def _sample_holders(catalog: Catalog, viewer: Viewer, token: str) -> tuple[str, tuple[str, ...]] | None:
    """The sample id as the catalog spells it, and the visible experiments with files of it."""
    hits = catalog.search(SearchQuery(sample=token, viewer=viewer, limit=20))
    spelled = {
        sample
        for hit in hits
        for file in hit.files
        for sample in file.sample_ids
        if sample.casefold() == token.casefold()
    }
    if not spelled:
        return None
    return sorted(spelled)[0], tuple(dict.fromkeys(hit.experiment_id for hit in hits))


def _named_value(folded_question: str, values: Sequence[str], facet: str) -> str | None:
    """The facet value the question names: the whole value, or (for a platform) a distinctive word of it."""
    padded = f" {folded_question} "
    best: tuple[int, str] | None = None
    for value in values:
        value_words = words(value)
        if not value_words:
            continue
        if facet == "format":
            value_words = value_words[:1]  # fastq.gz is asked as "FASTQ files"
        whole = " ".join(value_words)
        if f" {whole} " in padded:
            score = len(whole)
        elif facet == "platform" and any(
            len(word) >= 5 and word.isalpha() and f" {word} " in padded for word in value_words
        ):
            score = 1
        else:
            continue
        if best is None or score > best[0]:
            best = (score, value if facet != "format" else value_words[0])
    return best[1] if best else None


def _period(question: str, today: date) -> tuple[date | None, date | None, str | None]:
    """The month the question names: "last month", "this month", "in March [2026]", "2026-03"."""
    folded = question.casefold()
    year, month = today.year, today.month
    if "last month" in folded or "previous month" in folded:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    elif "this month" in folded:
        pass
    elif match := re.search(r"\b(\d{4})-(\d{2})\b", folded):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            return None, None, None
    else:
        named = [(token, _MONTHS[token]) for token in words(question) if token in _MONTHS and len(token) >= 3]
        # "may" is a word too: only a month when a year or "in" goes with it
        named = [(token, number) for token, number in named if token != "may" or re.search(r"\bin may\b", folded)]
        if not named:
            return None, None, None
        month = named[0][1]
        year_match = re.search(r"\b(19|20)\d{2}\b", folded)
        year = int(year_match.group()) if year_match else (today.year if month <= today.month else today.year - 1)
    last = calendar.monthrange(year, month)[1]
    return date(year, month, 1), date(year, month, last), f"{calendar.month_name[month]} {year}"


def _experiments(named: Named, catalog: Catalog, viewer: Viewer) -> CatalogAnswer:
    query = SearchQuery(
        viewer=viewer,
        sample=next(iter(named.samples), None),
        since=named.since.isoformat() if named.since else None,
        until=named.until.isoformat() if named.until else None,
        limit=50,
        **named.filters,
    )
    hits = catalog.search(query)
    said = _filters_said(named)
    by_experiment: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for hit in hits:
        titles[hit.experiment_id] = hit.title
        by_experiment.setdefault(hit.experiment_id, [])
        if hit.dataset:
            by_experiment[hit.experiment_id].append(f"{hit.dataset} ({len(hit.files)} file(s))")
    facts = []
    for experiment_id, datasets in by_experiment.items():
        record = catalog.get_experiment(experiment_id)
        details = [f"platform {record.platform}"] if record and record.platform else []
        details += [f"group {record.group}"] if record and record.group else []
        details += [f"datasets matching: {', '.join(datasets)}"] if datasets else []
        text = f"{experiment_id} ({titles[experiment_id]})" + (f": {'; '.join(details)}." if details else ".")
        facts.append(CatalogFact(text, experiment_id, titles[experiment_id]))
    if not facts:
        return CatalogAnswer(f"No experiment you may see {said}, by the catalog.", ())
    noun = "experiment" if len(facts) == 1 else "experiments"
    return CatalogAnswer(f"{len(facts)} {noun} you may see {said}, by the catalog:", tuple(facts))


def _filters_said(named: Named) -> str:
    parts = []
    if "platform" in named.filters:
        parts.append(f"used the {named.filters['platform']}")
    for facet, say in (("group", "of group"), ("owner", "owned by"), ("protocol", "with protocol")):
        if facet in named.filters:
            parts.append(f"{say} {named.filters[facet]}")
    if "format" in named.filters:
        parts.append(f"with {named.filters['format'].upper()} files")
    if named.samples:
        parts.append(f"with sample {next(iter(named.samples))}")
    said = " and ".join(parts)
    if named.period:
        said = f"{said}, with data from {named.period}" if said else f"have data from {named.period}"
    return said or "match"


def _subject_experiments(named: Named, catalog: Catalog) -> list[ExperimentRecord]:
    records = list(named.experiments)
    for holders in named.samples.values():
        for experiment_id in holders:
            record = catalog.get_experiment(experiment_id)
            if record is not None and record.id not in {r.id for r in records}:
                records.append(record)
    return records


def _file_count(named: Named, catalog: Catalog) -> CatalogAnswer:
    wanted = named.filters.get("format")
    sample = next(iter(named.samples), None)
    facts = []
    total = 0
    for record in _subject_experiments(named, catalog):
        for zone in (Zone.RAW, Zone.PROCESSED, Zone.FINAL):
            dataset = catalog.get_dataset(record.id, zone)
            if dataset is None:
                continue
            files = [
                entry
                for entry in dataset.files
                if (wanted is None or _format_matches(entry.format, wanted))
                and (sample is None or sample in entry.sample_ids)
            ]
            if not files:
                continue
            kind = f"{wanted.upper()} " if wanted else ""
            names = ", ".join(ObjectKey.parse(entry.key).relative_path for entry in files[:10])
            more = f" and {len(files) - 10} more" if len(files) > 10 else ""
            text = f"The {zone.value} dataset of {record.id} holds {len(files)} {kind}file(s): {names}{more}."
            facts.append(CatalogFact(text, record.id, record.title, zone=zone.value))
            total += len(files)
    what = f"{wanted.upper()} files" if wanted else "files"
    subject = ", ".join(r.id for r in named.experiments) or (sample or "")
    if not facts:
        return CatalogAnswer(f"The catalog lists no {what} of {subject} that you may see.", ())
    return CatalogAnswer(f"{subject} has {total} {what}, by the catalog:", tuple(facts))


def _format_matches(fmt: str, wanted: str) -> bool:
    return fmt == wanted or fmt.split(".", 1)[0] == wanted


def _qc_answer(named: Named, asked: set[str], catalog: Catalog, store: ObjectStore) -> CatalogAnswer | None:
    """Q30, mean quality or reads of the named samples' or experiments' FASTQ files.

    From the QC pipeline's documents where they hold the measure, else from the
    figures extraction took from the raw file when it was published (Q30 is
    one of those, not of QC's).
    """
    from labmesh_dagster.portal.qc_view import is_qc_document, qc_row

    measure = next(QC_WORDS[word] for word in ("q30", "quality", "reads") if word in asked)
    sample = next(iter(named.samples), None)
    facts = []
    for record in _subject_experiments(named, catalog):
        processed = catalog.get_dataset(record.id, Zone.PROCESSED)
        raw = catalog.get_dataset(record.id, Zone.RAW)
        fastqs = {entry.key: entry for entry in (raw.files if raw else ()) if entry.format.startswith("fastq")}
        wanted = {key: entry for key, entry in fastqs.items() if sample is None or sample in entry.sample_ids}
        measured: set[str] = set()
        for entry in processed.files if processed else ():
            if not is_qc_document(entry):
                continue
            row = qc_row(store, entry)
            if row is None or row.get(measure) is None or row["input"] not in wanted:
                continue
            measured.add(row["input"])
            samples = wanted[row["input"]].sample_ids
            facts.append(_qc_fact(record, row["name"], row[measure], measure, samples, Zone.PROCESSED, entry.key))
        for key, entry in wanted.items():
            value = entry.metadata.get(measure)
            if key not in measured and isinstance(value, (int, float)):
                name = ObjectKey.parse(key).name
                facts.append(_qc_fact(record, name, value, measure, entry.sample_ids, Zone.RAW, key))
    if not facts:
        return None  # nothing measured it: the passages may still say
    return CatalogAnswer(f"As measured for {sample or ', '.join(r.id for r in named.experiments)}:", tuple(facts))


def _qc_fact(
    record: ExperimentRecord,
    name: str,
    value: object,
    measure: str,
    samples: Sequence[str],
    zone: Zone,
    key: str,
) -> CatalogFact:
    of = f" (sample {', '.join(samples)})" if samples else ""
    said = {
        "q30_percent": f"{value}% of bases at Q30 or better",
        "mean_quality": f"a mean base quality of {value}",
        "reads": f"{value} reads",
    }[measure]
    source = "as QC measured it" if zone is Zone.PROCESSED else "as extracted when it was published"
    text = f"{name}{of} of {record.id} has {said}, {source}."
    return CatalogFact(text, record.id, record.title, zone=zone.value, file_key=key)


def _field(record: ExperimentRecord, field: str) -> CatalogAnswer:
    value = ", ".join(record.sample_ids) if field == "samples" else getattr(record, field)
    if not value:
        return CatalogAnswer(f"The catalog's record of {record.id} has no {field}.", ())
    said = {"created": "was created", "samples": "has samples"}.get(field, f"has {field}")
    fact = CatalogFact(f"{record.id} ({record.title}) {said} {value}.", record.id, record.title)
    return CatalogAnswer("From the catalog's record:", (fact,))
