"""The portal's test lab with words in its files, indexed, for asking: each group has a note that answers alike.

EXP-1 (Genomics, ada's) has a run summary saying its livers' fibrosis stage;
EXP-2 (Proteomics, bob's) a note saying its kidneys'; EXP-3 (no group,
ada's alone) a pilot note. The same question ("what stage was the fibrosis
scored at?") thus has an answer in each group's own files, and a test can tell
whose file an answer cites. The files' text is in the catalog's manifest
entries (as extraction leaves it) and in the local content index, passages and
vectors included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from fastapi import FastAPI

from labmesh_dagster.connectors.search.local import SqliteContentIndex
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import Manifest
from labmesh_dagster.portal.app import PortalContext, mount_portal
from labmesh_dagster.portal.sessions import SessionSigner
from labmesh_dagster.steps.content import index_dataset
from labmesh_dagster_tests.portal.lab import SCRIPT, PortalLab, _entry, build_lab

SUMMARY = f"raw/EXP-1/run1/{SCRIPT}.txt"
KIDNEY_NOTES = "raw/EXP-2/notes.txt"
PILOT = "raw/EXP-3/pilot.txt"
TEXTS = {
    SUMMARY: "Run summary for the liver cohort.\nFibrosis was scored at stage 3 in every liver.\n"
    "The liver RNA was extracted with the RNeasy kit.\n",
    KIDNEY_NOTES: "Kidney notes.\nFibrosis was scored at stage 1 in the kidney sections.\n"
    "Proteins were digested with trypsin.\n",
    PILOT: "Pilot notes.\nThe pilot used 3 mice per condition.\n",
}


@dataclass
class AskLab:
    lab: PortalLab
    index: SqliteContentIndex
    app: FastAPI


def build_ask_lab(home: Path) -> AskLab:
    lab = build_lab(home)
    index = SqliteContentIndex(home / "catalog.sqlite")
    notes = _entry(lab.store, Zone.RAW, "EXP-2", "notes.txt", TEXTS[KIDNEY_NOTES].encode(), "txt")
    for experiment_id in ("EXP-1", "EXP-2", "EXP-3"):
        record = lab.catalog.get_experiment(experiment_id)
        dataset = lab.catalog.get_dataset(experiment_id, Zone.RAW)
        assert record is not None and dataset is not None
        entries = [*dataset.files, notes] if experiment_id == "EXP-2" else list(dataset.files)
        with_text = []
        for entry in entries:
            if entry.key in TEXTS:
                lab.store.put(ObjectKey.parse(entry.key), TEXTS[entry.key].encode())
                entry = replace(entry, text=TEXTS[entry.key], size=len(TEXTS[entry.key].encode()))
            with_text.append(entry)
        manifest = Manifest.build(experiment_id, Zone.RAW, with_text)
        lab.catalog.upsert_dataset(manifest, dataset.location)
        principals = lab.catalog.principals(experiment_id)
        index_dataset(index, manifest, None, record, lambda key: f"file:///{key}", principals)
    context = PortalContext(
        catalog=lambda: lab.catalog,
        store=lambda: lab.store,
        access=lab.access,
        signer=SessionSigner("test-secret"),
        secure_cookies=False,
        content_index=lambda: index,
    )
    app = FastAPI()
    mount_portal(app, context)
    return AskLab(lab, index, app)
