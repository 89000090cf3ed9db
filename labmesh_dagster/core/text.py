"""Making text from outside safe to store: lone surrogates replaced, keys made strings.

File names that are not valid UTF-8 reach Python as lone surrogates
(surrogateescape), and JSON may spell them out (``"\\ud800"``). Neither can be
encoded as UTF-8, so SQLite, the manifest and the logs would fail on them. Text
from records and extractors passes through here once, at the edge.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def clean_text(text: str) -> str:
    """``text`` with anything that cannot be UTF-8 replaced by U+FFFD."""
    if is_clean_text(text):
        return text
    # Through UTF-16 with surrogatepass, a lone surrogate becomes an undecodable unit -> U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def is_clean_text(text: str) -> bool:
    if text.isascii():  # most text is, and this needs no copy: a thousand-file publish asks tens of thousands of times
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_data(value: Any) -> Any:
    """A JSON-like value with every string cleaned and every mapping key a clean string."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_data(item) for item in value]
    return value


def words_of(value: Any) -> Iterator[str]:
    """Every key and scalar inside nested metadata, as text for keyword indexes.

    Keys come sorted, so the same metadata gives the same text whether it was
    just extracted or read back from a manifest (JSON keeps keys sorted);
    otherwise an unchanged dataset would look changed to every index.
    """
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield str(key)
            yield from words_of(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from words_of(item)
    elif value is not None:
        yield str(value)


def human_size(size: int) -> str:
    """Bytes as people read them: ``512 B``, ``2.5 MB`` (decimal units, as file browsers show)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
