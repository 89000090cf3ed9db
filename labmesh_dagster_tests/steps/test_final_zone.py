"""The final zone's one rule: an experiment's final files, listed, against what the catalog holds.

Contract: an experiment whose listed files differ from its cataloged final
dataset has changed, once none of its files is still being written; one whose
files were all removed is noticed only when asked to check it (it lists
nothing); files of unregistered experiments and files outside any experiment
folder are reported, never requested; labmesh's own manifest is not a file
people put there; the run key names the files and the catalog revision they
would replace, the same whichever way the folder was looked at, and files
whose run failed get a new one each retry period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from labmesh_dagster.connectors.catalog.base import DatasetRecord
from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.steps.final_zone import FinalPlan, final_run_key, plan_final

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def put(key: str, age_seconds: float = 60, size: int = 4) -> ObjectInfo:
    return ObjectInfo(ObjectKey(Zone.FINAL, key), size, NOW - timedelta(seconds=age_seconds), "e")


def cataloged(*files: ObjectInfo, revision: int = 1) -> DatasetRecord:
    """The final dataset the catalog holds, listing ``files`` as they were when published."""
    entries = [ManifestEntry(str(info.key), info.size, "0" * 64, "md", info.modified.isoformat()) for info in files]
    experiment_id = files[0].key.experiment_id if files else "EXP-1"
    return DatasetRecord(f"dataset:{experiment_id}/final", experiment_id, Zone.FINAL, "", revision, "", tuple(entries))


def check(listed: list[ObjectInfo], catalog: dict[str, DatasetRecord], also_check: tuple[str, ...] = ()) -> FinalPlan:
    return plan_final(
        listed,
        registered={"EXP-1", "EXP-2"},
        also_check=also_check,
        cataloged=catalog.get,
        now=NOW,
        settle_seconds=10,
    )


def test_an_experiment_whose_files_differ_from_the_catalog_has_changed() -> None:
    report, kept = put("EXP-1/report.md"), put("EXP-2/figure.png")

    result = check([report, kept, put("EXP-2/_labmesh/manifest.json")], {"EXP-2": cataloged(kept, revision=3)})

    assert result.changed == {"EXP-1": [report]} and result.revisions == {"EXP-1": 0}


def test_files_still_being_written_hold_their_whole_experiment_back() -> None:
    result = check([put("EXP-1/done.md"), put("EXP-1/writing.md", age_seconds=2)], {})

    assert result.changed == {} and result.settling == {"EXP-1"}


def test_an_experiment_whose_files_were_all_removed_is_noticed_when_asked_to_check_it() -> None:
    catalog = {"EXP-1": cataloged(put("EXP-1/gone.md"), revision=2)}

    assert check([], catalog).changed == {}
    assert check([], catalog, also_check=("EXP-1",)).changed == {"EXP-1": []}


def test_unregistered_and_stray_files_are_reported_and_never_requested() -> None:
    stray = put("loose-file.md")

    result = check([put("EXP-404/report.md"), stray], {})

    assert result.changed == {} and result.unregistered == {"EXP-404"} and result.outside_experiments == [stray]


def key(files: list[ObjectInfo], revision: int = 1, now: datetime = NOW) -> str:
    return final_run_key("EXP-1", files, revision=revision, now=now, retry_seconds=3600)


def test_the_run_key_names_the_files_and_the_revision_they_would_replace() -> None:
    a, b = put("EXP-1/a.md"), put("EXP-1/b.md")

    assert key([a, b]) == key([b, a])
    assert key([a]) != key([a, b])
    # A file put back after its removal was published is a new run, not the first one again.
    assert key([a], revision=1) != key([a], revision=3)


def test_files_whose_run_failed_get_a_new_run_key_each_retry_period() -> None:
    a = put("EXP-1/a.md", age_seconds=60)

    assert key([a]) == key([a], now=NOW + timedelta(minutes=50))  # not old enough for a retry yet
    assert key([a], now=NOW + timedelta(hours=1)) != key([a], now=NOW + timedelta(hours=2))
