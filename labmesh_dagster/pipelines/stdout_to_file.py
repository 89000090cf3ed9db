"""Run a tool with its stdout going to a file: ``python -m labmesh_dagster.pipelines.stdout_to_file OUT -- TOOL``.

``samtools flagstat``, ``samtools stats``, ``samtools idxstats`` and
``bcftools stats`` write their report to stdout and have no option to name a
file, while a pipeline's outputs are the files of its output folder. This
opens ``OUT``, puts it in place of stdout and ``exec``s the tool: no shell (so
no quoting of file names), and the tool replaces this process, so the
runner's time limit, memory limit and process group apply to the tool itself
and its exit status is the tool's own. A missing tool exits 127 saying
``tool not installed``, as a shell would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

USAGE = "usage: python -m labmesh_dagster.pipelines.stdout_to_file OUT -- TOOL [ARG...]"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    out, command = args[0], args[2:]
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(descriptor, sys.stdout.fileno())
    os.close(descriptor)
    try:
        os.execvp(command[0], command)
    except FileNotFoundError:
        print(f"tool not installed: {command[0]}", file=sys.stderr)
        return 127
    except PermissionError as exc:
        print(f"cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
