"""The versions tools report, asked once per installed tool when a `VersionCache` is given.

A fake tool on PATH counts how often it is asked, so each scenario says how many times the tool ran.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labmesh_dagster.pipelines.tool_versions import UNKNOWN, VersionCache, tool_version, tool_versions


def install(bin_dir: Path, name: str, prints: str) -> Path:
    """A tool that appends a line to ``asked.log`` beside it each time it runs, and prints ``prints``."""
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho asked >> "{bin_dir}/asked.log"\necho "{prints}"\n', encoding="utf-8")
    tool.chmod(0o755)
    return tool


def times_asked(bin_dir: Path) -> int:
    log = bin_dir / "asked.log"
    return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return tmp_path / "bin"


@pytest.fixture
def env(bin_dir: Path) -> dict[str, str]:
    return {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}


def test_a_tool_is_asked_its_version_once_and_later_runs_read_the_cache_file(
    tmp_path: Path, bin_dir: Path, env: dict[str, str]
) -> None:
    install(bin_dir, "mytool", "mytool, version 1.35")
    cache_file = tmp_path / "cache" / "tool-versions.json"

    first = tool_version(["mytool", "--version"], cwd=tmp_path, env=env, cache=VersionCache(cache_file))
    # Another run: a new process, so a new cache object on the same file.
    second = tool_version(["mytool", "--version"], cwd=tmp_path, env=env, cache=VersionCache(cache_file))

    assert first == second == "1.35"
    assert times_asked(bin_dir) == 1
    assert list(json.loads(cache_file.read_text(encoding="utf-8")).values()) == ["1.35"]


def test_another_version_installed_in_the_same_place_is_asked_again(
    tmp_path: Path, bin_dir: Path, env: dict[str, str]
) -> None:
    cache = VersionCache(tmp_path / "tool-versions.json")
    install(bin_dir, "mytool", "mytool 1.2.3")
    assert tool_version(["mytool", "--version"], cwd=tmp_path, env=env, cache=cache) == "1.2.3"

    tool = install(bin_dir, "mytool", "mytool 1.10.0")
    stat = tool.stat()
    os.utime(tool, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a file system's coarse clock

    assert tool_version(["mytool", "--version"], cwd=tmp_path, env=env, cache=cache) == "1.10.0"
    assert times_asked(bin_dir) == 2


def test_other_arguments_are_another_question(tmp_path: Path, bin_dir: Path, env: dict[str, str]) -> None:
    cache = VersionCache(tmp_path / "tool-versions.json")
    install(bin_dir, "mytool", "mytool 2.0")

    tool_versions({"a": ["mytool", "--version"], "b": ["mytool", "version"]}, cwd=tmp_path, env=env, cache=cache)
    tool_versions({"a": ["mytool", "--version"], "b": ["mytool", "version"]}, cwd=tmp_path, env=env, cache=cache)

    assert times_asked(bin_dir) == 2


def test_a_tool_that_prints_no_version_is_asked_every_time(tmp_path: Path, bin_dir: Path, env: dict[str, str]) -> None:
    cache = VersionCache(tmp_path / "tool-versions.json")
    install(bin_dir, "quiet", "usage: quiet [options]")

    answers = [tool_version(["quiet", "--version"], cwd=tmp_path, env=env, cache=cache) for _ in range(2)]

    assert answers == [UNKNOWN, UNKNOWN]
    assert times_asked(bin_dir) == 2


def test_without_a_cache_the_tool_is_asked_every_time(tmp_path: Path, bin_dir: Path, env: dict[str, str]) -> None:
    install(bin_dir, "mytool", "mytool 1.2.3")

    for _ in range(3):
        assert tool_version(["mytool", "--version"], cwd=tmp_path, env=env) == "1.2.3"

    assert times_asked(bin_dir) == 3


def test_a_damaged_cache_file_is_an_empty_cache_and_is_written_anew(
    tmp_path: Path, bin_dir: Path, env: dict[str, str]
) -> None:
    cache_file = tmp_path / "tool-versions.json"
    cache_file.write_text('{"half a', encoding="utf-8")
    install(bin_dir, "mytool", "mytool 1.2.3")

    assert tool_version(["mytool", "--version"], cwd=tmp_path, env=env, cache=VersionCache(cache_file)) == "1.2.3"

    assert list(json.loads(cache_file.read_text(encoding="utf-8")).values()) == ["1.2.3"]


def test_a_cache_that_cannot_be_written_only_means_asking_again(
    tmp_path: Path, bin_dir: Path, env: dict[str, str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    cache = VersionCache(tmp_path / "a-file" / "tool-versions.json")
    install(bin_dir, "mytool", "mytool 1.2.3")

    answers = [tool_version(["mytool", "--version"], cwd=tmp_path, env=env, cache=cache) for _ in range(2)]

    assert answers == ["1.2.3", "1.2.3"]
    assert times_asked(bin_dir) == 2
