"""What an environment's disk space is made of: per installed package, and per labmesh requirement.

Run it with the environment's own Python, so it reads that environment's
installed packages:

    .venv/bin/python scripts/venv_size.py [--top 25] [--extras test]

It prints the size of every installed distribution (the files its RECORD
lists, compiled bytecode included), then, for each of labmesh-dagster's own
requirements, the megabytes that only it brings in: what leaving it out (or
moving it to an extra) would save. ``--extras`` names the extras that were
installed, so their requirements count too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as md
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "labmesh-dagster"
MB = 1_000_000


def _size(dist: md.Distribution) -> int:
    total = 0
    for file in dist.files or ():
        with contextlib.suppress(OSError):  # a file the RECORD lists that is not there (removed by hand)
            total += os.path.getsize(str(dist.locate_file(file)))
    return total


def _requirements(dist: md.Distribution, extras: Iterable[str]) -> list[Requirement]:
    """The requirements that apply to this Python with the given extras asked for."""
    wanted = [""] + list(extras)
    applying = []
    for line in dist.requires or ():
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in wanted):
            applying.append(requirement)
    return applying


def _closure(start: Requirement, dists: dict[str, md.Distribution], stop: str) -> set[str]:
    """Every installed distribution ``start`` brings in, itself included (the project itself excluded)."""
    seen: set[str] = set()
    todo = [(canonicalize_name(start.name), sorted(start.extras))]
    while todo:
        name, extras = todo.pop()
        dist = dists.get(name)
        if dist is None or name == stop:
            continue
        key = name + "[" + ",".join(extras) + "]"
        if key in seen:
            continue
        seen.add(key)
        todo.extend((canonicalize_name(r.name), sorted(r.extras)) for r in _requirements(dist, extras))
    return {key.split("[", 1)[0] for key in seen}


def _tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25, help="how many of the largest packages to list")
    parser.add_argument("--extras", default="", help="comma-separated extras of labmesh-dagster that were installed")
    args = parser.parse_args()
    extras = [extra for extra in args.extras.split(",") if extra]

    dists = {canonicalize_name(d.metadata["Name"]): d for d in md.distributions()}
    sizes = {name: _size(dist) for name, dist in dists.items()}
    print(f"{sys.prefix}: {_tree_size(Path(sys.prefix)) / MB:.0f} MB on disk")
    print(f"{len(dists)} distributions, {sum(sizes.values()) / MB:.0f} MB as their RECORDs list them\n")

    print(f"{'MB':>6}  package")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[: args.top]:
        print(f"{size / MB:6.1f}  {dists[name].metadata['Name']} {dists[name].version}")

    project = dists.get(canonicalize_name(PROJECT))
    if project is None:
        return 0
    stop = canonicalize_name(PROJECT)
    closures = {str(r): _closure(r, dists, stop) for r in _requirements(project, extras)}
    print(f"\nwhat each of {PROJECT}'s requirements brings in that no other one does (extras: {extras or 'none'})")
    print(f"{'MB':>6}  requirement: its own packages")
    rows = []
    for requirement, closure in closures.items():
        others = set().union(*(c for r, c in closures.items() if r != requirement))
        own = closure - others
        rows.append((sum(sizes[name] for name in own), requirement, own))
    nothing_own = []
    for size, requirement, own in sorted(rows, key=lambda row: -row[0]):
        if size < MB / 10:
            nothing_own.append(requirement.split(";")[0])
            continue
        names = ", ".join(sorted(own, key=lambda name: -sizes[name])[:8])
        print(f"{size / MB:6.1f}  {requirement}: {names}")
    print(f"{'<0.1':>6}  each of {', '.join(nothing_own)}")
    shared = set().union(*closures.values()) - set().union(*(own for _, _, own in rows))
    print(f"{sum(sizes[name] for name in shared) / MB:6.1f}  shared by several requirements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
