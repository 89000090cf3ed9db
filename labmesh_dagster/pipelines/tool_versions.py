"""The versions tools report about themselves, for the record of what ran.

Tools print their version in every way imaginable (``fastp 0.23.2`` on
stderr, ``seqkit v2.3.0``, ``samtools 1.16.1`` over ``Using htslib 1.16``,
``multiqc, version 1.35``); the first version-looking token of stdout then
stderr is the one the tool means. A tool that cannot be found is
`ToolNotInstalled`, which is how a pipeline learns to fall back.
"""

from __future__ import annotations

import re
import subprocess
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


def tool_version(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    """Run one version command; its version, or ``unknown`` when it prints none (or fails to)."""
    program = resolve_program(argv, env)
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
    return parse_version(text) or UNKNOWN


def tool_versions(commands: Mapping[str, Sequence[str]], *, cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Tool name -> version for every version command, in the pipeline's order; the first missing tool raises."""
    return {tool: tool_version(argv, cwd=cwd, env=env) for tool, argv in commands.items()}
