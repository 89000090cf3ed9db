"""Lineage for the portal lab: EXP-1's landing -> raw -> processed -> final runs, one of them reading EXP-2's data.

The events are the lineage tests' own (`labmesh_dagster_tests.lineage.samples`),
so they look like production's. The processed run also reads the Proteomics
group's EXP-2 raw dataset, and its QC summary is derived from EXP-2's CSV as
well as EXP-1's reads: ada (Genomics) must see that run's input and that
file only as "restricted".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.lineage.sqlite import SqliteLineageLog
from labmesh_dagster.lineage.events import event_to_dict
from labmesh_dagster.portal.app import PortalContext
from labmesh_dagster.portal.lineage import create_lineage_router
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster_tests.lineage.samples import chain
from labmesh_dagster_tests.portal.lab import PortalLab

SECRET = b"lineage test secret"
OTHER_FILE = "raw/EXP-2/KID-01.csv"
OTHER_DATASET = {
    "namespace": "s3://lm-raw",
    "name": "EXP-2",
    "facets": {
        "documentation": {"description": "Kidney proteomics (EXP-2), raw zone"},
        "labmesh_dataset": {"experimentId": "EXP-2", "zone": "raw"},
    },
}


def cross_experiment_events() -> list[dict[str, Any]]:
    """EXP-1's chain, with the processed run reading EXP-2's raw dataset and one of its files."""
    events = [event_to_dict(event) for event in chain()]
    for event in events:
        if event["job"]["name"] != "processed_dataset":
            continue
        event["inputs"] = [*event.get("inputs", []), json.loads(json.dumps(OTHER_DATASET))]
        for output in event.get("outputs", []):
            for item in (output.get("outputFacets") or {}).get("labmesh_files", {}).get("files", []):
                if item["key"].endswith("summary.json"):
                    item["derivedFrom"] = [*item["derivedFrom"], OTHER_FILE]
    return events


def add_lineage(lab: PortalLab, log_path: Path) -> SqliteLineageLog:
    """Record the events in a lineage log and serve the lineage page and API from ``lab.app``."""
    log = SqliteLineageLog(log_path)
    assert log.emit(cross_experiment_events()) == []
    # The same catalog, store, access stores and cookie secret `build_lab` gives the rest of the portal.
    context = PortalContext(
        catalog=lambda: lab.catalog,
        store=lambda: lab.store,
        access=lab.access,
        signer=SessionSigner("test-secret"),
        secure_cookies=False,
    )
    lab.app.include_router(create_lineage_router(context, lambda: log, secret=SECRET))
    return log
