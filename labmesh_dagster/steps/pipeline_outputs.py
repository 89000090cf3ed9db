"""Publishing a pipeline's outputs, and knowing when a run of it can be reused.

A runner (local, ECS or HealthOmics) writes only under its invocation's
staging prefix, ``processed/<experiment>/_labmesh/runs/<run id>/<invocation>/``.
What it wrote becomes part of the processed dataset only here, and only when
the invocation succeeded: each output is copied to its place under the
invocation's publish prefix, and a *receipt* is written last, at
``processed/<experiment>/_labmesh/pipelines/<invocation id>.json``.

The receipt is what makes a re-run cheap and a crash harmless:

- the invocation id hashes the pipeline, its version and its inputs'
  checksums, so a receipt says "these exact inputs were run through this
  exact pipeline, and here is what came out, with checksums";
- it is written after every output is in place, so a run stopped halfway
  leaves no receipt and the next run does the invocation again;
- it is trusted only while every output it names is still there with the same
  sha256, so an output someone deleted or overwrote is made again.

Staging is the run's own scratch space: a run removes what it staged when it
ends, and the next run of the experiment removes whatever a crashed one left
(runs of one experiment never overlap: one run per experiment at a time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.errors import ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Provenance, ProvenanceInput

RECEIPTS_FOLDER = "_labmesh/pipelines"
STAGING_FOLDER = "_labmesh/runs"
RECEIPT_VERSION = 1


@dataclass(frozen=True)
class PublishedOutput:
    """One output in its place in the processed dataset."""

    name: str
    key: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublishedOutput:
        return cls(name=str(data["name"]), key=str(data["key"]), sha256=str(data["sha256"]), size=int(data["size"]))


@dataclass(frozen=True)
class Receipt:
    """What one successful invocation made, and how: the evidence a re-run is checked against."""

    invocation_id: str
    pipeline: str
    version: str
    engine: str
    engine_run_id: str | None
    run_id: str
    command_line: str
    tool_versions: Mapping[str, str]
    inputs: tuple[Mapping[str, str], ...]
    outputs: tuple[PublishedOutput, ...]
    started: str | None
    ended: str | None
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "receipt_version": RECEIPT_VERSION,
            "invocation_id": self.invocation_id,
            "pipeline": self.pipeline,
            "version": self.version,
            "engine": self.engine,
            "engine_run_id": self.engine_run_id,
            "run_id": self.run_id,
            "command_line": self.command_line,
            "tool_versions": dict(self.tool_versions),
            "inputs": [dict(item) for item in self.inputs],
            "outputs": [output.to_dict() for output in self.outputs],
            "started": self.started,
            "ended": self.ended,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        return cls(
            invocation_id=str(data["invocation_id"]),
            pipeline=str(data["pipeline"]),
            version=str(data["version"]),
            engine=str(data["engine"]),
            engine_run_id=data.get("engine_run_id"),
            run_id=str(data["run_id"]),
            command_line=str(data.get("command_line") or ""),
            tool_versions={str(tool): str(version) for tool, version in (data.get("tool_versions") or {}).items()},
            inputs=tuple({"key": str(item["key"]), "sha256": str(item["sha256"])} for item in data.get("inputs") or ()),
            outputs=tuple(PublishedOutput.from_dict(item) for item in data.get("outputs") or ()),
            started=data.get("started"),
            ended=data.get("ended"),
        )

    def provenance(self) -> Provenance:
        """How each of this receipt's outputs was made: the manifest's ``produced_by`` of each."""
        return Provenance(
            pipeline=self.pipeline,
            version=self.version,
            invocation_id=self.invocation_id,
            engine=self.engine,
            engine_run_id=self.engine_run_id,
            run_id=self.run_id,
            command_line=self.command_line,
            tool_versions=dict(self.tool_versions),
            inputs=tuple(ProvenanceInput(key=item["key"], sha256=item["sha256"]) for item in self.inputs),
        )


def receipt_key(experiment_id: str, invocation_id: str) -> ObjectKey:
    return ObjectKey.for_experiment(Zone.PROCESSED, experiment_id, f"{RECEIPTS_FOLDER}/{invocation_id}.json")


def _inputs(invocation: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    return tuple({"key": str(item["key"]), "sha256": str(item["sha256"])} for item in invocation["inputs"])


def reusable_receipt(store: ObjectStore, invocation: Mapping[str, Any]) -> Receipt | None:
    """The receipt of an earlier run of exactly this invocation, if every output it names is still intact."""
    key = receipt_key(str(invocation["experiment_id"]), str(invocation["invocation_id"]))
    try:
        receipt = Receipt.from_dict(json.loads(store.read_bytes(key)))
    except ObjectNotFound:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: the invocation runs again and writes a good one
    if receipt.invocation_id != invocation["invocation_id"] or receipt.inputs != _inputs(invocation):
        return None
    for output in receipt.outputs:
        target = ObjectKey.parse(output.key)
        try:
            if store.stat(target).size != output.size or store.sha256(target) != output.sha256:
                return None
        except ObjectNotFound:
            return None
    return Receipt(**{**receipt.__dict__, "reused": True})


def publish_outputs(
    store: ObjectStore, invocation: Mapping[str, Any], result: Mapping[str, Any], *, run_id: str
) -> Receipt:
    """Copy a succeeded invocation's staged outputs into place, then write its receipt (last, so it is evidence)."""
    if result.get("status") != "succeeded":
        raise ValueError(f"{invocation['invocation_id']} did not succeed; its outputs are not published")
    prefix = str(invocation["publish_prefix"])
    staging = str(invocation["staging_prefix"])
    published: list[PublishedOutput] = []
    for output in sorted(result.get("outputs") or (), key=lambda item: str(item["name"])):
        staged = str(output["key"])
        if not staged.startswith(staging):
            raise ValueError(f"{invocation['invocation_id']} reported {staged}, outside its staging prefix {staging}")
        target = ObjectKey.parse(prefix + str(output["name"]))
        store.copy(ObjectKey.parse(staged), target)
        published.append(
            PublishedOutput(
                name=str(output["name"]), key=str(target), sha256=str(output["sha256"]), size=int(output["size"])
            )
        )
    pipeline = invocation["pipeline"]
    receipt = Receipt(
        invocation_id=str(invocation["invocation_id"]),
        pipeline=str(pipeline["name"]),
        version=str(pipeline["version"]),
        engine=str(result.get("engine") or pipeline.get("engine") or "local"),
        engine_run_id=result.get("engine_run_id"),
        run_id=run_id,
        command_line=str(result.get("command_line") or ""),
        tool_versions={str(tool): str(version) for tool, version in (result.get("tool_versions") or {}).items()},
        inputs=_inputs(invocation),
        outputs=tuple(published),
        started=result.get("started"),
        ended=result.get("ended"),
    )
    body = (json.dumps(receipt.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
    store.put(receipt_key(str(invocation["experiment_id"]), receipt.invocation_id), body)
    return receipt


def clear_staging(store: ObjectStore, experiment_id: str) -> int:
    """Remove every run's staged outputs of the experiment (none is running but the caller); returns how many."""
    prefix = f"{experiment_id}/{STAGING_FOLDER}/"
    folders: set[str] = set()
    removed = 0
    for info in list(store.list(Zone.PROCESSED, prefix)):
        store.delete(info.key)
        removed += 1
        parts = info.key.path.split("/")[:-1]
        folders.update("/".join(parts[:depth]) for depth in range(3, len(parts) + 1))
    # A directory store keeps emptied folders; staging's are ours, deepest first. (S3 has no folders to remove.)
    for folder in sorted(folders, key=lambda path: path.count("/"), reverse=True):
        store.remove_empty_folder(Zone.PROCESSED, folder)
    return removed


def provenance_by_key(receipts: Sequence[Receipt]) -> dict[str, Provenance]:
    """Published key -> how it was made, for the manifest; a key two pipelines wrote goes to the later one."""
    return {output.key: receipt.provenance() for receipt in receipts for output in receipt.outputs}
