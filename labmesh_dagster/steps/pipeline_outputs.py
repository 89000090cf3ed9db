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
from dataclasses import dataclass, replace
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
    """What one successful invocation made (``outputs``), and how (``made``: the manifest's `Provenance` of each
    of them): the evidence a re-run is checked against."""

    made: Provenance
    outputs: tuple[PublishedOutput, ...]
    started: str | None = None
    ended: str | None = None
    reused: bool = False

    @property
    def input_keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.made.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "receipt_version": RECEIPT_VERSION,
            **self.made.to_dict(),
            "outputs": [output.to_dict() for output in self.outputs],
            "started": self.started,
            "ended": self.ended,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        return cls(
            made=Provenance.from_dict(data),
            outputs=tuple(PublishedOutput.from_dict(item) for item in data.get("outputs") or ()),
            started=data.get("started"),
            ended=data.get("ended"),
        )


def receipt_key(experiment_id: str, invocation_id: str) -> ObjectKey:
    return ObjectKey.for_experiment(Zone.PROCESSED, experiment_id, f"{RECEIPTS_FOLDER}/{invocation_id}.json")


def _inputs(invocation: Mapping[str, Any]) -> tuple[ProvenanceInput, ...]:
    return tuple(ProvenanceInput.from_dict(item) for item in invocation["inputs"])


def reusable_receipt(store: ObjectStore, invocation: Mapping[str, Any]) -> Receipt | None:
    """The receipt of an earlier run of exactly this invocation, if every output it names is still intact."""
    key = receipt_key(str(invocation["experiment_id"]), str(invocation["invocation_id"]))
    try:
        receipt = Receipt.from_dict(json.loads(store.read_bytes(key)))
    except ObjectNotFound:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: the invocation runs again and writes a good one
    if receipt.made.invocation_id != invocation["invocation_id"] or receipt.made.inputs != _inputs(invocation):
        return None
    for output in receipt.outputs:
        target = ObjectKey.parse(output.key)
        try:
            if store.stat(target).size != output.size or store.sha256(target) != output.sha256:
                return None
        except ObjectNotFound:
            return None
    return replace(receipt, reused=True)


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
    receipt = Receipt(
        made=Provenance.of_invocation(invocation, result, run_id),
        outputs=tuple(published),
        started=result.get("started"),
        ended=result.get("ended"),
    )
    body = (json.dumps(receipt.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
    store.put(receipt_key(str(invocation["experiment_id"]), receipt.made.invocation_id), body)
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


def retire_obsolete(store: ObjectStore, experiment_id: str, current: Sequence[Receipt]) -> list[str]:
    """Remove what invocations that no longer apply made (a version bumped, an input changed or removed, a
    pipeline dropped, a fallback no longer needed), with their receipts; returns the keys removed.

    Only files a receipt names are ever removed: they were made by labmesh and can be made again. A file
    a current invocation also made is kept, and files people put beside them have no receipt and stay.
    """
    keep = {output.key for receipt in current for output in receipt.outputs}
    current_ids = {receipt.made.invocation_id for receipt in current}
    removed: list[str] = []
    for info in list(store.list(Zone.PROCESSED, f"{experiment_id}/{RECEIPTS_FOLDER}/")):
        if not info.key.name.endswith(".json") or info.key.name[: -len(".json")] in current_ids:
            continue
        try:
            obsolete = Receipt.from_dict(json.loads(store.read_bytes(info.key)))
        except ObjectNotFound:
            continue
        except (ValueError, KeyError, TypeError):
            obsolete = None  # unreadable: nothing it names can be trusted, only the receipt itself goes
        for output in obsolete.outputs if obsolete else ():
            if output.key not in keep and output.key.startswith(f"{Zone.PROCESSED.value}/{experiment_id}/"):
                store.delete(ObjectKey.parse(output.key))
                removed.append(output.key)
        store.delete(info.key)
    return removed


def provenance_by_key(receipts: Sequence[Receipt]) -> dict[str, Provenance]:
    """Published key -> how it was made, for the manifest; a key two pipelines wrote goes to the later one."""
    return {output.key: receipt.made for receipt in receipts for output in receipt.outputs}
