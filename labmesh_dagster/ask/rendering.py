"""An answer as text, for the terminal: its parts with their citation numbers, then each citation and its place."""

from __future__ import annotations

from labmesh_dagster.core.answers import AnswerPart, Citation


def part_line(part: AnswerPart) -> str:
    marks = "".join(f"[{number}]" for number in part.citations)
    return f"{part.text} {marks}" if marks else part.text


def citation_lines(citation: Citation) -> list[str]:
    """``[1] report.md, section "Results" (EXP-1, final dataset)`` then where it is: the file's key and the link."""
    where = ", ".join(
        item for item in (citation.experiment_id, f"{citation.dataset} dataset" if citation.dataset else None) if item
    )
    head = f"[{citation.number}] {citation.title}"
    if citation.passage is not None and citation.location:
        head += f", {citation.location}"
    lines = [f"{head} ({where})" if where else head]
    if citation.passage is not None:
        lines.append(f"    {citation.passage.document_id}")
    lines.append(f"    {citation.href}")
    return lines
