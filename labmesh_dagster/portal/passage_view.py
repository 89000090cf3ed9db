"""The passage a chat citation opens on a file's page: ``/files/<key>?passage=<ordinal>#passage-<ordinal>``.

The passage is cut again from the file's manifest entry, by the very function
publishing used to cut what the content index holds
(`labmesh_dagster.steps.content.file_passages`): the same entry gives the same
passages with the same ordinals, so the page shows exactly what was cited,
without asking the index (Kendra or Bedrock cannot look a passage up by id).
The caller has already checked that the viewer may see the file. When the
file changed since the answer (a new revision with fewer passages), the page
says so instead of showing another passage.
"""

from __future__ import annotations

from typing import Any

from labmesh_dagster.core.manifest import ManifestEntry
from labmesh_dagster.steps.content import file_passages


def cited_passage(entry: ManifestEntry, ordinal: str | None) -> dict[str, Any] | None:
    """The passage numbered ``ordinal`` (the URL's ``passage``) as the page shows it, or None when none is asked."""
    if ordinal is None or ordinal == "":
        return None
    if not ordinal.isdigit():
        return {"ordinal": None, "text": None, "location": None, "note": f"{ordinal!r} is not a passage number."}
    number = int(ordinal)
    passages = file_passages(entry)
    if number >= len(passages):
        note = "This passage is not in the file as it is now: it changed since the answer cited it."
        return {"ordinal": number, "text": None, "location": None, "note": note}
    passage = passages[number]
    return {
        "ordinal": number,
        "id": passage.id,
        "text": passage.text,
        "location": passage.location.describe(),
        "note": None,
    }
