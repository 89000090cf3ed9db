"""Every event labmesh produces is a valid OpenLineage 2-0-2 run event, and every facet valid by its own schema.

Pinned here, for each asset (experiment, raw, processed, final), each store
(S3 and local file URIs) and each outcome (COMPLETE, FAIL): the START and the
end event validate against `OpenLineage.json` and each facet against the
schema its `_schemaURL` names, filed under the key that schema declares, all
resolved from the vendored files without the network. The validator itself
is shown to reject broken events, so a pass means something.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import ValidationError
from referencing.exceptions import Unresolvable

from labmesh_dagster.lineage.events import event_to_dict
from labmesh_dagster_tests.lineage.samples import ASSET_ZONES, events_for
from labmesh_dagster_tests.lineage.schemas import schema_documents, validate_event, validator

JOB_FACETS = ["documentation", "jobType", "ownership"]
RUN_FACETS = ["nominalTime", "processing_engine", "labmesh_run"]
DATASET_FACETS = {"documentation", "storage", "labmesh_dataset", "ownership"}


@pytest.mark.parametrize("store", ["s3", "local"])
@pytest.mark.parametrize("asset", sorted(ASSET_ZONES))
@pytest.mark.parametrize("error", [None, "RuntimeError: the pipeline exited with status 3"])
def test_every_event_and_facet_validates(asset: str, store: str, error: str | None) -> None:
    start, end = (event_to_dict(event) for event in events_for(asset, store=store, error=error))

    start_facets = validate_event(start)
    end_facets = validate_event(end)

    assert [start["eventType"], end["eventType"]] == ["START", "FAIL" if error else "COMPLETE"]
    assert set(JOB_FACETS + RUN_FACETS) <= set(start_facets)
    assert ("errorMessage" in end_facets) == bool(error)
    has_files = asset != "experiment" and not error
    assert ("labmesh_files" in end_facets) == has_files
    # Versions are manifest digests: inputs have them whenever read, outputs only once published.
    read_a_manifest = asset in ("processed_dataset", "final_dataset")
    assert ("version" in end_facets) == (read_a_manifest or has_files)
    assert set(end_facets) >= DATASET_FACETS


def test_the_labmesh_facet_schemas_extend_the_openlineage_base_types() -> None:
    documents = schema_documents()
    own = [url for url in documents if "labmesh" in url]

    assert len(own) == 4
    for url in own:
        validator({"$schema": "https://json-schema.org/draft/2020-12/schema"}).validate(documents[url])
        (definition,) = documents[url]["$defs"].values()
        assert definition["allOf"][0]["$ref"].startswith("https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/")


def _complete() -> dict[str, Any]:
    return event_to_dict(events_for("processed_dataset")[1])


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda event: event["run"].update(runId="run-1"), "is not a 'uuid'"),
        (lambda event: event.update(eventTime="2026-11-29"), "is not a 'date-time'"),
        (lambda event: event.update(eventType="DONE"), "is not one of"),
        (lambda event: event["job"].pop("namespace"), "'namespace' is a required property"),
        (lambda event: event["run"]["facets"]["nominalTime"].pop("_producer"), "'_producer' is a required property"),
        (
            lambda event: event["outputs"][0]["outputFacets"]["labmesh_files"]["files"][0].pop("sha256"),
            "'sha256' is a required property",
        ),
        (
            lambda event: event["outputs"][0]["facets"]["storage"].update(storageLayer=3),
            "3 is not of type 'string'",
        ),
    ],
)
def test_the_validator_rejects_broken_events(break_it: Any, message: str) -> None:
    event = _complete()
    validate_event(event)
    broken = copy.deepcopy(event)
    break_it(broken)

    with pytest.raises(ValidationError, match=message):
        validate_event(broken)


def test_a_facet_filed_under_the_wrong_key_or_in_the_wrong_place_is_rejected() -> None:
    misnamed = _complete()
    misnamed["run"]["facets"]["nominal"] = misnamed["run"]["facets"].pop("nominalTime")
    misplaced = _complete()
    misplaced["outputs"][0]["facets"]["nominalTime"] = misplaced["run"]["facets"]["nominalTime"]

    with pytest.raises(AssertionError, match="must be filed as"):
        validate_event(misnamed)
    with pytest.raises(AssertionError, match="is not a DatasetFacet"):
        validate_event(misplaced)


def test_schemas_resolve_offline_and_an_unknown_reference_fails() -> None:
    with pytest.raises(Unresolvable):
        validator({"$ref": "https://openlineage.io/spec/facets/9-9-9/NoSuchFacet.json"}).validate({})

    unknown = _complete()
    unknown["run"]["facets"]["nominalTime"]["_schemaURL"] = "https://example.org/Other.json#/$defs/Other"
    with pytest.raises(AssertionError, match="names a schema the tests do not hold"):
        validate_event(unknown)
