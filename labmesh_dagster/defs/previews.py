"""Dagster features labmesh relies on although Dagster still marks them as previews.

Dagster warns at every use of a preview. labmesh chose these on purpose
(partitioned asset checks; Pipes, whose own code uses a preview member), so
their warnings are silenced where labmesh uses them, and a normal start prints
nothing a person would have to act on.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._utils.warnings import PreviewWarning


@contextmanager
def chosen_previews() -> Iterator[None]:
    """Run the block without Dagster's preview warnings (and only those)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=PreviewWarning)
        yield
