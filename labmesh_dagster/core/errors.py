"""The errors labmesh raises on purpose, one small class per thing that can go wrong.

Each carries enough to name the file, event or key at fault, because the rule is
that bad input is reported clearly and never stops the other files of a tick.
"""

from __future__ import annotations


class LabmeshError(Exception):
    """Base of every error labmesh raises deliberately."""


class InvalidExperimentId(LabmeshError, ValueError):
    """An experiment id that may not become a key, a path or a partition."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"invalid experiment id {value!r}: {reason}")


class InvalidObjectKey(LabmeshError, ValueError):
    """A key that does not follow `<zone>/<experiment_id>/<relative path>`."""


class RecordError(LabmeshError, ValueError):
    """An ELN or LIMS record that cannot be read or normalised."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ExperimentNotFound(LabmeshError, LookupError):
    """The ELN has no record for the experiment id asked for."""


class ObjectNotFound(LabmeshError, LookupError):
    """The store holds no object under the key asked for."""


class ObjectExists(LabmeshError, FileExistsError):
    """A write that must not replace anything found an object already there (raw is never overwritten)."""


class RawConflict(LabmeshError):
    """Raw already holds a different file under this name; raw is never overwritten."""


class LayoutError(LabmeshError, ValueError):
    """A `labmesh sync` layout pattern that cannot name an experiment and a path."""


class WriteBackNotVisible(LabmeshError):
    """The ELN accepted the data locations, but reading the entry back does not show them (yet)."""

    def __init__(self, experiment_id: str, expected: object, found: object) -> None:
        super().__init__(
            f"experiment {experiment_id}: the ELN entry reads back {found!r} after the write-back of {expected!r}; "
            "the write-back is tried again"
        )


class StoreUnavailable(LabmeshError):
    """The store kept failing (throttling, 5xx, network) after its retries; nothing was changed by labmesh."""


class ChecksumMismatch(LabmeshError):
    """A copy whose checksum differs from its source; the source is kept."""

    def __init__(self, key: str, expected: str, actual: str) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        super().__init__(f"checksum mismatch for {key}: expected {expected}, got {actual}")


class ExtractionError(LabmeshError):
    """A file whose metadata could not be extracted, with a machine-readable reason code.

    Reason codes are stable strings (``truncated``, ``bad_format``, ``bad_gzip``, ...)
    so that manifests, the catalog and people can group failures by cause.
    """

    def __init__(self, name: str, reason: str, detail: str) -> None:
        self.name = name
        self.reason = reason
        self.detail = detail
        super().__init__(f"{name}: {reason}: {detail}")


class PipelineFileError(LabmeshError, ValueError):
    """A pipelines file that cannot be used, with every problem found, each named by where it is.

    ``problems`` holds one ``"<location>: <what is wrong>"`` line per problem, so an operator
    fixes the whole file in one pass instead of one error per attempt.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{source}: {self.problems[0]}"
        else:
            message = f"{source}: {len(self.problems)} problems\n" + "\n".join(
                f"{source}: {problem}" for problem in self.problems
            )
        super().__init__(message)
