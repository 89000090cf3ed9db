"""Plain text tables for the CLI: columns padded to their widest cell, the last column left as it is.

The last column is free text (a title, a label, a list of groups) and may be
long; padding it would only add trailing spaces.
"""

from __future__ import annotations

from collections.abc import Sequence


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` (the first is the header) as aligned columns."""
    if not rows:
        return
    padded = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(padded)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:padded], widths, strict=True)) + "  " + row[padded]
        )
