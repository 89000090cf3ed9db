"""The final zone's one rule: an experiment's final files, listed, against what the catalog holds.

Contract: an experiment whose listed files differ from its cataloged final
dataset has changed, once none of its files is still being written; one whose
files were all removed is noticed only when asked to check it (it lists
nothing); files of unregistered experiments and files outside any experiment
folder are reported, never requested; labmesh's own manifest is not a file
people put there; the run key is the files' fingerprint, the same whichever
way the folder was looked at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from labmesh_dagster.connectors.store.base import ObjectInfo
from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.steps.final_zone import FileState, FinalPlan, file_state, final_run_key, plan_final

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def put(key: str, age_seconds: float = 60, size: int = 4) -> ObjectInfo:
    return ObjectInfo(ObjectKey(Zone.FINAL, key), size, NOW - timedelta(seconds=age_seconds), "e")


def check(
    listed: list[ObjectInfo], cataloged: dict[str, set[FileState]], also_check: tuple[str, ...] = ()
) -> FinalPlan:
    return plan_final(
        listed,
        registered={"EXP-1", "EXP-2"},
        also_check=also_check,
        cataloged_files=lambda experiment_id: cataloged.get(experiment_id, set()),
        now=NOW,
        settle_seconds=10,
    )


def test_an_experiment_whose_files_differ_from_the_catalog_has_changed() -> None:
    report, kept = put("EXP-1/report.md"), put("EXP-2/figure.png")

    result = check([report, kept, put("EXP-2/_labmesh/manifest.json")], {"EXP-2": {file_state(kept)}})

    assert result.changed == {"EXP-1": [report]}


def test_files_still_being_written_hold_their_whole_experiment_back() -> None:
    result = check([put("EXP-1/done.md"), put("EXP-1/writing.md", age_seconds=2)], {})

    assert result.changed == {} and result.settling == {"EXP-1"}


def test_an_experiment_whose_files_were_all_removed_is_noticed_when_asked_to_check_it() -> None:
    cataloged = {"EXP-1": {file_state(put("EXP-1/gone.md"))}}

    assert check([], cataloged).changed == {}
    assert check([], cataloged, also_check=("EXP-1",)).changed == {"EXP-1": []}


def test_unregistered_and_stray_files_are_reported_and_never_requested() -> None:
    stray = put("loose-file.md")

    result = check([put("EXP-404/report.md"), stray], {})

    assert result.changed == {} and result.unregistered == {"EXP-404"} and result.outside_experiments == [stray]


def test_the_run_key_is_the_files_fingerprint_in_any_order() -> None:
    a, b = put("EXP-1/a.md"), put("EXP-1/b.md")

    assert final_run_key("EXP-1", [a, b]) == final_run_key("EXP-1", [b, a])
    assert final_run_key("EXP-1", [a]) != final_run_key("EXP-1", [a, b])
