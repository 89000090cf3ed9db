"""Planning: which pipeline runs on which files, as invocations any engine can run.

Given the pipelines, the experiment's record and its raw manifest, planning decides
every invocation (contract section 2) before anything runs, in plain Python:

- a pipeline takes the files its ``takes`` allows: by format family (what the content
  says, or the name's suffix when the content could not be read, so that an empty or
  corrupt FASTQ still reaches QC, which reports it), by the experiment's platform and
  assay (case-insensitive), and with ``samples: sample_sheet`` only files linked to one
  of the record's samples;
- ``per: file`` gives one invocation per file, ``per: pair`` one per R1/R2 mate pair
  (Illumina names, same folder; a mate without its partner runs ``command`` alone),
  ``per: experiment`` one over everything it takes;
- a pipeline with ``outputs_of`` (MultiQC) takes what the pipelines it names published,
  so it is planned in a later stage; `stages` gives the order.

The invocation id hashes the pipeline's name and version, the label and each input's key
and checksum: the same inputs under the same version give the same id on every run,
which is what lets a re-run reuse the published outputs instead of running again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labmesh_dagster.core.experiment import ExperimentRecord
from labmesh_dagster.core.keys import LABMESH_DIR, ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest, ManifestEntry
from labmesh_dagster.extract.compression import COMPRESSION_SUFFIXES, strip_compression_suffix
from labmesh_dagster.extract.formats import format_by_suffix
from labmesh_dagster.pipelines.spec import Pipeline

INVOCATION_ID_HEX = 16

# Formats that say the content could not be told (or read): the name's suffix decides then.
_UNKNOWN_CONTENT = frozenset({"empty", "binary", "text", *COMPRESSION_SUFFIXES.values()})

# Illumina mate names: S1_R1, S1_1, S1.R1, each optionally followed by _001 (bcl2fastq's chunk number).
_MATE = re.compile(r"^(?P<stem>.+?)(?P<separator>_[Rr]|_|\.[Rr])(?P<mate>[12])(?P<chunk>_001)?$")


@dataclass(frozen=True)
class _Input:
    key: ObjectKey
    sha256: str

    @property
    def folder(self) -> str:
        """The folder below the experiment, '' at its top: ``fastq`` for ``raw/EXP-1/fastq/S1.fastq.gz``."""
        relative = self.key.relative_path
        return relative.rsplit("/", 1)[0] if "/" in relative else ""


def file_stem(name: str) -> str:
    """A file's name without its compression and format suffixes: ``S1_R1.fastq.gz`` -> ``S1_R1``.

    Only the last suffix goes after compression is removed, so ``S1.fastp.json`` -> ``S1.fastp``;
    a name that is only a suffix (``.hidden``) is kept whole.
    """
    base = strip_compression_suffix(name.rsplit("/", 1)[-1])
    dot = base.rfind(".")
    return base[:dot] if dot > 0 else base


def mate_of(name: str) -> tuple[str, int] | None:
    """(common stem, 1 or 2) when ``name`` is an Illumina mate file, else None: ``S1_R2_001.fastq.gz`` -> ("S1", 2)."""
    match = _MATE.match(file_stem(name))
    return (match["stem"], int(match["mate"])) if match else None


def stages(pipelines: Sequence[Pipeline]) -> list[list[Pipeline]]:
    """The pipelines in the order they can run: each stage takes only outputs of earlier stages.

    Within a stage the file's order is kept. A name in ``outputs_of`` that is not among
    ``pipelines`` (a fallback left out, say) does not hold anything back.
    """
    given = {pipeline.name for pipeline in pipelines}
    remaining = list(pipelines)
    done: set[str] = set()
    ordered: list[list[Pipeline]] = []
    while remaining:
        ready = [p for p in remaining if all(name in done or name not in given for name in p.takes.outputs_of)]
        if not ready:
            names = ", ".join(p.name for p in remaining)
            raise ValueError(f"pipelines take each other's outputs in a cycle: {names}")
        ordered.append(ready)
        done.update(p.name for p in ready)
        remaining = [p for p in remaining if p.name not in done]
    return ordered


def invocation_id(pipeline: Pipeline, label: str, inputs: Iterable[Mapping[str, str]]) -> str:
    """``<name>-`` + 16 hex of sha256 over (name, version, label, sorted (key, sha256) of the inputs)."""
    pairs = sorted((str(item["key"]), str(item["sha256"])) for item in inputs)
    canonical = json.dumps([pipeline.name, pipeline.version, label, pairs], separators=(",", ":"), ensure_ascii=True)
    return f"{pipeline.name}-{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:INVOCATION_ID_HEX]}"


def _families(entry: ManifestEntry) -> set[str]:
    """The format families an entry counts as: its content's, and its name's when the content was not readable."""
    content = entry.format.lower()
    for codec in COMPRESSION_SUFFIXES.values():
        if content.endswith("." + codec):
            content = content[: -len(codec) - 1]
            break
    families = set() if content in _UNKNOWN_CONTENT else {content}
    if entry.error or not families:
        named = format_by_suffix(entry.name)
        if named is not None:
            families.add(named)
    return families


def _fits_experiment(pipeline: Pipeline, record: ExperimentRecord) -> bool:
    takes = pipeline.takes
    if takes.platforms and (record.platform or "").casefold() not in {p.casefold() for p in takes.platforms}:
        return False
    return not takes.assays or (record.protocol or "").casefold() in {a.casefold() for a in takes.assays}


def _raw_inputs(pipeline: Pipeline, record: ExperimentRecord, manifest: Manifest) -> list[_Input]:
    formats = {fmt.casefold() for fmt in pipeline.takes.formats}
    samples = set(record.sample_ids)
    chosen: list[_Input] = []
    for entry in manifest.entries:
        key = ObjectKey.parse(entry.key)
        if key.is_labmesh_internal:
            continue
        if formats and not formats & _families(entry):
            continue
        if pipeline.takes.samples == "sample_sheet" and not samples & set(entry.sample_ids):
            continue
        chosen.append(_Input(key, entry.sha256))
    return chosen


def _output_inputs(pipeline: Pipeline, outputs_by_pipeline: Mapping[str, Sequence[Mapping[str, str]]]) -> list[_Input]:
    suffixes = tuple(fmt.casefold() for fmt in pipeline.takes.formats)
    chosen: dict[str, _Input] = {}
    for producer in pipeline.takes.outputs_of:
        for output in outputs_by_pipeline.get(producer, ()):
            key = ObjectKey.parse(str(output["key"]))
            if suffixes and not key.name.casefold().endswith(suffixes):
                continue
            chosen[str(key)] = _Input(key, str(output["sha256"]))
    return [chosen[key] for key in sorted(chosen)]


@dataclass(frozen=True)
class _Group:
    label: str
    name: str
    folder: str | None
    inputs: tuple[tuple[_Input, str], ...]
    paired: bool = False


def _joined(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder and name else folder or name


def _file_group(item: _Input) -> _Group:
    stem = file_stem(item.key.name)
    return _Group(_joined(item.folder, stem), stem, item.folder, ((item, "input"),))


def _pair_groups(items: Sequence[_Input]) -> list[_Group]:
    """Mates found by name in the same folder, with the same separator and suffix; lone mates run alone."""
    mates: dict[tuple[str, ...], dict[int, list[_Input]]] = {}
    groups: list[_Group] = []
    for item in items:
        match = _MATE.match(file_stem(item.key.name))
        if match is None:
            groups.append(_file_group(item))
            continue
        tail = item.key.name[len(file_stem(item.key.name)) :].lower()
        slot = (item.folder, match["stem"], match["separator"].upper(), match["chunk"] or "", tail)
        mates.setdefault(slot, {}).setdefault(int(match["mate"]), []).append(item)
    for (folder, stem, *_rest), found in mates.items():
        ones, twos = found.get(1, []), found.get(2, [])
        if len(ones) == 1 and len(twos) == 1:
            inputs = ((ones[0], "read1"), (twos[0], "read2"))
            groups.append(_Group(_joined(folder, stem), stem, folder, inputs, paired=True))
        else:
            groups.extend(_file_group(item) for item in ones + twos)
    return groups


def _groups(pipeline: Pipeline, items: Sequence[_Input], experiment_id: str) -> list[_Group]:
    if not items:
        return []
    if pipeline.per == "experiment":
        ordered = tuple((item, "input") for item in sorted(items, key=lambda item: str(item.key)))
        return [_Group(experiment_id, experiment_id, None, ordered)]
    groups = _pair_groups(items) if pipeline.per == "pair" else [_file_group(item) for item in items]
    return _distinct_labels(groups)


def _distinct_labels(groups: list[_Group]) -> list[_Group]:
    """Two groups with one label (``S1.fastq`` beside ``S1.fastq.gz``) are told apart by their first file's full name.

    Otherwise both would publish ``{name}``-named outputs over each other.
    """
    counts: dict[str, int] = {}
    for group in groups:
        counts[group.label] = counts.get(group.label, 0) + 1
    distinct: list[_Group] = []
    for group in groups:
        if counts[group.label] > 1:
            first = group.inputs[0][0]
            name = first.key.name
            group = _Group(_joined(first.folder, name), name, group.folder, group.inputs, group.paired)
        distinct.append(group)
    return sorted(distinct, key=lambda group: group.label)


def plan_invocations(
    pipelines: Sequence[Pipeline],
    record: ExperimentRecord,
    raw_manifest: Manifest,
    *,
    run_id: str,
    outputs_by_pipeline: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """Every invocation of ``pipelines`` on the experiment's files, pipeline by pipeline, in label order.

    Pipelines with ``outputs_of`` take the published outputs in ``outputs_by_pipeline``
    (pipeline name -> ``[{"key", "sha256"}]``) instead of the raw manifest; plan them after
    the stages they take from (see `stages`). Besides contract section 2's fields each
    invocation carries ``name``, what ``{name}`` becomes, so every engine names outputs alike.
    """
    outputs_by_pipeline = outputs_by_pipeline or {}
    experiment_id = record.id
    runs_root = ObjectKey.for_experiment(Zone.PROCESSED, experiment_id, f"{LABMESH_DIR}/runs/{run_id}/x")
    invocations: list[dict[str, Any]] = []
    for pipeline in pipelines:
        if not _fits_experiment(pipeline, record):
            continue
        if pipeline.takes.outputs_of:
            items = _output_inputs(pipeline, outputs_by_pipeline)
        else:
            items = _raw_inputs(pipeline, record, raw_manifest)
        dumped = pipeline.model_dump(mode="json")
        for group in _groups(pipeline, items, experiment_id):
            inputs = [{"key": str(item.key), "sha256": item.sha256, "role": role} for item, role in group.inputs]
            identifier = invocation_id(pipeline, group.label, inputs)
            publish = _joined(pipeline.name, group.folder or "")
            invocations.append(
                {
                    "invocation_id": identifier,
                    "pipeline": dumped,
                    "experiment_id": experiment_id,
                    "label": group.label,
                    "name": group.name,
                    "inputs": inputs,
                    "staging_prefix": str(runs_root)[: -len("x")] + f"{identifier}/",
                    "publish_prefix": f"{ObjectKey.for_experiment(Zone.PROCESSED, experiment_id, publish)}/",
                }
            )
    return invocations
