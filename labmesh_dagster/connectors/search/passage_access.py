"""Access as words of the passages' full-text table, so FTS5 intersects doclists instead of testing each match.

Every passage's FTS row carries, in its ``keys`` column, one opaque word per
principal of its document's access list. A viewer with few principals then
adds ``keys : (k1 OR k2 ...)`` to the MATCH expression: FTS5 skips through the
doclists of the question's words and of the viewer's keys together, and never
reads a row the viewer may not see. A viewer with many principals would make
that clause a long ``OR`` whose doclists cost more than they spare, so their
access stays a test of each match against the documents they may see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

KEY_PRINCIPALS = 8
"""Up to this many principals, access is a clause of the MATCH expression; beyond, a test against a list."""


def access_key(principal: str) -> str:
    """The one word standing for ``principal`` (as stored, compared exactly) in the passages' ``keys`` column.

    A digest, as the tokenizer would split ``group:genomics core`` into words
    that plain text also holds. Written in decimal digits after a fixed
    letter pair: the porter stemmer strips letter suffixes only, so no two
    keys can stem to the same word.
    """
    digest = int.from_bytes(hashlib.blake2b(principal.encode("utf-8"), digest_size=8).digest(), "big")
    return f"ka{digest:020d}"


def passage_keys(principals: Collection[str]) -> str:
    """The ``keys`` column of a passage whose document lists ``principals``."""
    return " ".join(access_key(principal) for principal in sorted(principals))


def access_clause(principals: Collection[str] | None) -> str | None:
    """The MATCH clause keeping a viewer's passages, or None when they see all or have too many principals."""
    if principals is None or len(principals) > KEY_PRINCIPALS:
        return None
    if not principals:
        return "keys : ka"  # a word no key is: a viewer without principals sees nothing
    return "keys : (" + " OR ".join(access_key(principal) for principal in sorted(principals)) + ")"
