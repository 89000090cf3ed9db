"""The versions tools report about themselves, for the record of what ran.

Tools print their version in every way imaginable (``fastp 0.23.2`` on
stderr, ``seqkit v2.3.0``, ``samtools 1.16.1`` over ``Using htslib 1.16``,
``multiqc, version 1.35``); the first version-looking token of stdout then
stderr is the one the tool means. A tool that cannot be found is
`ToolNotInstalled`, which is how a pipeline learns to fall back.

Asking is not free: ``multiqc --version`` starts a Python that imports
MultiQC, about 1.5 s of CPU for every experiment's report. A `VersionCache`
keeps the answers in a file the local engine's runs share.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from labmesh_dagster.pipelines.tool_process import ToolNotInstalled, resolve_program

VERSION_TIMEOUT_SECONDS = 60.0
UNKNOWN = "unknown"

_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+(?:[-_.]?(?:a|b|rc|alpha|beta|dev|post)\d*)?)")


def parse_version(text: str) -> str | None:
    """The first version-looking token of ``text`` (``fastp 0.23.2`` -> ``0.23.2``), or None."""
    match = _VERSION.search(text)
    return match.group(1) if match else None


class VersionCache:
    """Versions tools reported, kept in a JSON file across runs, under what identifies the installed tool.

    The key is the resolved program's path, size and modification time, and the
    version command's arguments: installing another version of a tool (or
    pip reinstalling a console script) writes a new file, so the next run asks
    again. Only a version the tool printed is kept, never ``unknown`` (a
    timeout may not recur). The file is replaced whole, atomically: two runs
    writing at once can lose one answer, which is asked again next time, and an
    unreadable file is an empty cache.
    """

    MAX_ENTRIES = 512
    """Old answers beyond this are dropped, so a file that lives for years stays small."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(program: str, argv: Sequence[str]) -> str | None:
        """What identifies this installed tool and question; None for a program that cannot be looked at."""
        try:
            stat = os.stat(program)
        except OSError:
            return None
        return json.dumps([os.path.realpath(program), stat.st_size, stat.st_mtime_ns, list(argv[1:])])

    def _read(self) -> dict[str, str]:
        try:
            known = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in known.items()} if isinstance(known, dict) else {}

    def get(self, key: str) -> str | None:
        return self._read().get(key)

    def put(self, key: str, version: str) -> None:
        known = self._read()
        known.pop(key, None)
        known[key] = version
        kept = dict(list(known.items())[-self.MAX_ENTRIES :])
        # A cache that cannot be written only means asking again.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tool-versions-")
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(kept, out)
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def tool_version(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], cache: VersionCache | None = None) -> str:
    """Run one version command; its version, or ``unknown`` when it prints none (or fails to).

    With a ``cache``, a version this installed tool already reported is taken from it instead.
    """
    program = resolve_program(argv, env)
    key = VersionCache.key(program, argv) if cache is not None else None
    if cache is not None and key is not None and (known := cache.get(key)) is not None:
        return known
    try:
        completed = subprocess.run(
            [program, *argv[1:]],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolNotInstalled(argv[0]) from exc
    except subprocess.TimeoutExpired:
        return UNKNOWN
    text = completed.stdout.decode("utf-8", "replace") + "\n" + completed.stderr.decode("utf-8", "replace")
    version = parse_version(text)
    if version is None:
        return UNKNOWN
    if cache is not None and key is not None:
        cache.put(key, version)
    return version


def tool_versions(
    commands: Mapping[str, Sequence[str]], *, cwd: Path, env: Mapping[str, str], cache: VersionCache | None = None
) -> dict[str, str]:
    """Tool name -> version for every version command, in the pipeline's order; the first missing tool raises."""
    return {tool: tool_version(argv, cwd=cwd, env=env, cache=cache) for tool, argv in commands.items()}
