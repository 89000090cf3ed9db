"""The pipelines file: which tools run on which raw files, with what, where.

An operator edits this YAML file, so a mistake in it must come back as a list of
plain sentences, each naming where it is (``pipelines[2] (samtools-stats).resources.memory_mib:
must be greater than 0``), never as a pydantic dump. Everything that can be checked
before a tool runs is checked when the file is loaded: unknown fields, placeholders
a command cannot be given, engines without their settings, references to pipelines
that do not exist and cycles among them. A file that loads is a file whose pipelines
can be planned.

The models are plain pydantic, frozen, with no Dagster in sight: planning, the Pipes
runner and the engines all read the same `Pipeline`, and an invocation carries it as
``Pipeline.model_dump(mode="json")``.
"""

from __future__ import annotations

import difflib
import math
import string
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from labmesh_dagster.core.errors import PipelineFileError

FILE_FORMAT_VERSION = 1
"""The only version of the pipelines file format there is."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

PLACEHOLDERS: frozenset[str] = frozenset(
    {"input", "read1", "read2", "inputs", "input_dir", "output_dir", "name", "threads", "experiment_id"}
)
"""Every placeholder a command, paired command or HealthOmics parameter may hold."""

_COMMON = frozenset({"inputs", "input_dir", "output_dir", "name", "threads", "experiment_id"})
_ONE_INPUT = _COMMON | {"input"}
_PAIR = _COMMON | {"read1", "read2"}

Engine = Literal["local", "ecs", "healthomics"]
Per = Literal["file", "pair", "experiment"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Problems(ValueError):
    """Problems a validator found, each at a location relative to the model it validated.

    Raised from model validators so that the file's error message can name the exact field
    (``command[3]``) instead of the whole pipeline.
    """

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{_render_loc(loc)}: {message}" for loc, message in problems))


class Takes(_Model):
    """Which files a pipeline runs on; every condition given must hold, an empty list allows anything."""

    formats: tuple[str, ...] = Field(default=(), description="Format families (fastq, bam, vcf, ...).")
    platforms: tuple[str, ...] = Field(default=(), description="Experiment platforms, case-insensitive.")
    assays: tuple[str, ...] = Field(default=(), description="Experiment protocols/assays, case-insensitive.")
    samples: Literal["any", "sample_sheet"] = "any"
    outputs_of: tuple[str, ...] = Field(
        default=(), description="Pipelines whose outputs it takes instead of raw files."
    )

    @field_validator("formats", "platforms", "assays", "outputs_of")
    @classmethod
    def _no_empty_items(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if any(not value.strip() for value in values):
            raise ValueError("must not hold an empty item")
        return values


class Resources(_Model):
    """What one invocation may use: the local runner enforces time and memory, ECS sizes the task by them."""

    cpu: float = Field(default=1, gt=0)
    memory_mib: int = Field(default=2048, gt=0)
    timeout_seconds: int = Field(default=3600, gt=0)


class EcsSettings(_Model):
    """Where an ECS task runs; ``task_definition`` is a family or an ARN."""

    image: str = Field(min_length=1)
    task_definition: str = Field(min_length=1)
    cluster: str = Field(default="default", min_length=1)
    container_name: str = Field(default="labmesh", min_length=1)
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool = False


class HealthOmicsSettings(_Model):
    """An AWS HealthOmics workflow run; ``parameters`` values may hold placeholders (inputs become s3:// URIs)."""

    workflow_id: str = Field(min_length=1)
    workflow_type: Literal["PRIVATE", "READY2RUN"] = "PRIVATE"
    workflow_version_name: str | None = None
    role_arn: str = Field(min_length=1)
    output_uri: str = Field(min_length=1)
    parameters: dict[str, str] = Field(default_factory=dict)
    run_group_id: str | None = None
    cache_id: str | None = None
    cache_behavior: Literal["CACHE_ON_FAILURE", "CACHE_ALWAYS"] | None = None
    storage_type: Literal["STATIC", "DYNAMIC"] | None = None
    storage_capacity: int | None = Field(default=None, gt=0)
    priority: int | None = Field(default=None, ge=0)

    @field_validator("output_uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ValueError("must be an s3:// URI")
        return value


class Pipeline(_Model):
    """One pipeline: what it takes, the command or workflow, its version, resources and outputs."""

    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    description: str = ""
    engine: Engine = "local"
    per: Per = "file"
    takes: Takes = Field(default_factory=Takes)
    command: tuple[str, ...] = ()
    paired_command: tuple[str, ...] | None = None
    versions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    resources: Resources = Field(default_factory=Resources)
    fallback: str | None = None
    ecs: EcsSettings | None = None
    healthomics: HealthOmicsSettings | None = None

    @field_validator("outputs")
    @classmethod
    def _relative_globs(cls, globs: tuple[str, ...]) -> tuple[str, ...]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for index, glob in enumerate(globs):
            if not glob.strip():
                problems.append(((index,), "must not be empty"))
            elif glob.startswith("/") or ".." in glob.split("/"):
                problems.append(((index,), "must be a glob relative to {output_dir}, without '..'"))
        if problems:
            raise _Problems(problems)
        return globs

    @field_validator("versions")
    @classmethod
    def _version_commands(cls, versions: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        empty = [((tool,), "must be a non-empty command") for tool, argv in versions.items() if not argv]
        if empty:
            raise _Problems(empty)
        return versions

    # Placeholders are checked field by field (``per`` is declared first, so it is known here), which
    # reports them even when another field of the pipeline is wrong too.
    @field_validator("command")
    @classmethod
    def _command_placeholders(cls, argv: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        per = info.data.get("per", "file")
        return _checked_argv("command", argv, _ONE_INPUT if per in ("file", "pair") else _COMMON, per)

    @field_validator("paired_command")
    @classmethod
    def _paired_placeholders(cls, argv: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        return None if argv is None else _checked_argv("paired_command", argv, _PAIR, info.data.get("per", "file"))

    @field_validator("healthomics")
    @classmethod
    def _parameter_placeholders(
        cls, settings: HealthOmicsSettings | None, info: ValidationInfo
    ) -> HealthOmicsSettings | None:
        if settings is None:
            return None
        per = info.data.get("per", "file")
        allowed = {"file": _ONE_INPUT, "pair": _ONE_INPUT | _PAIR, "experiment": _COMMON}.get(per, _ONE_INPUT)
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for parameter, value in settings.parameters.items():
            problems += _value_problems(("parameters", parameter), value, allowed, per, "parameters")
        if problems:
            raise _Problems(problems)
        return settings

    @model_validator(mode="after")
    def _consistent(self) -> Pipeline:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        runs_command = self.engine in ("local", "ecs")
        if runs_command and not self.command:
            problems.append((("command",), f"is required for engine {self.engine}"))
        if runs_command and not self.outputs:
            problems.append((("outputs",), f"needs at least one glob for engine {self.engine}"))
        if self.paired_command is not None and self.per != "pair":
            problems.append((("paired_command",), f"is only for per: pair, not per: {self.per}"))
        if self.per == "pair" and runs_command and not self.paired_command:
            problems.append((("paired_command",), "is required for per: pair"))
        if self.engine == "ecs" and self.ecs is None:
            problems.append((("ecs",), "is required for engine ecs"))
        if self.engine != "ecs" and self.ecs is not None:
            problems.append((("ecs",), f"is only for engine ecs, not {self.engine}"))
        if self.engine == "healthomics" and self.healthomics is None:
            problems.append((("healthomics",), "is required for engine healthomics"))
        if self.engine != "healthomics" and self.healthomics is not None:
            problems.append((("healthomics",), f"is only for engine healthomics, not {self.engine}"))
        if self.fallback is not None and self.fallback == self.name:
            problems.append((("fallback",), "must name another pipeline, not this one"))
        if problems:
            raise _Problems(problems)
        return self

    @property
    def threads(self) -> int:
        """What ``{threads}`` becomes: whole CPUs, rounded up so a 0.5-CPU pipeline still gets a thread."""
        return max(1, math.ceil(self.resources.cpu))


class PipelinesFile(_Model):
    """The whole file: its format version and its pipelines, with names unique and references resolved."""

    version: Literal[1]
    pipelines: tuple[Pipeline, ...]

    @model_validator(mode="after")
    def _references(self) -> PipelinesFile:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first_index: dict[str, int] = {}
        for index, pipeline in enumerate(self.pipelines):
            if pipeline.name in first_index:
                problems.append(
                    (
                        ("pipelines", index, "name"),
                        f"{pipeline.name!r} is already used by pipelines[{first_index[pipeline.name]}]",
                    )
                )
            else:
                first_index[pipeline.name] = index
        names = set(first_index)
        for index, pipeline in enumerate(self.pipelines):
            for position, other in enumerate(pipeline.takes.outputs_of):
                if other not in names:
                    problems.append(
                        (("pipelines", index, "takes", "outputs_of", position), _unknown_pipeline(other, names))
                    )
                elif other == pipeline.name:
                    problems.append(
                        (
                            ("pipelines", index, "takes", "outputs_of", position),
                            "a pipeline cannot take its own outputs",
                        )
                    )
            if pipeline.fallback is not None and pipeline.fallback not in names:
                problems.append((("pipelines", index, "fallback"), _unknown_pipeline(pipeline.fallback, names)))
        if not problems:
            by_name = {pipeline.name: pipeline for pipeline in self.pipelines}
            for label, edges in (
                ("takes.outputs_of", {p.name: tuple(p.takes.outputs_of) for p in self.pipelines}),
                ("fallback", {p.name: (p.fallback,) if p.fallback else () for p in self.pipelines}),
            ):
                cycle = _find_cycle(edges)
                if cycle is not None:
                    index = list(by_name).index(cycle[0])
                    path = " -> ".join([*cycle, cycle[0]])
                    problems.append((("pipelines", index, *label.split(".")), f"forms a cycle: {path}"))
        if problems:
            raise _Problems(problems)
        return self


def _unknown_pipeline(name: str, names: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"names no pipeline in this file: {name!r}{hint}"


def _find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first cycle found by a depth-first walk in file order, as the names along it, else None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in edges.get(node, ()):
            if state.get(target) == 1:
                return stack[stack.index(target) :]
            if target not in state:
                found = visit(target)
                if found is not None:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found is not None:
                return found
    return None


def placeholders_in(value: str) -> list[str]:
    """The placeholder names in ``value``, str.format style (``{{`` and ``}}`` are literal braces).

    Raises ValueError for braces that do not pair up, and for conversions or format specs,
    which a command has no use for and which would make ``{inputs}`` ambiguous.
    """
    names: list[str] = []
    for _literal, field, spec, conversion in string.Formatter().parse(value):
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{field}}} must be a plain placeholder, without '!' or ':'")
        names.append(field)
    return names


def _checked_argv(where: str, argv: Sequence[str], allowed: frozenset[str], per: str) -> tuple[str, ...]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, element in enumerate(argv):
        problems += _value_problems((index,), element, allowed, per, where)
    if problems:
        raise _Problems(problems)
    return tuple(argv)


def _value_problems(
    loc: tuple[str | int, ...], value: str, allowed: frozenset[str], per: str, where: str
) -> list[tuple[tuple[str | int, ...], str]]:
    try:
        names = placeholders_in(value)
    except ValueError as exc:
        reason = str(exc)
        if "Single" in reason or "unmatched" in reason or "expected '}'" in reason:
            reason = "has a '{' or '}' that is not part of a placeholder (write {{ or }} for a literal brace)"
        return [(loc, reason)]
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name in names:
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{known}}}" for known in sorted(PLACEHOLDERS))
            problems.append((loc, f"unknown placeholder {{{name}}}; known: {known}"))
        elif name not in allowed:
            problems.append((loc, _unavailable(name, where, per)))
        elif name == "inputs" and value != "{inputs}":
            whole = "value" if where == "parameters" else "argument"
            problems.append((loc, f"{{inputs}} must be a whole {whole} on its own, since it becomes one per input"))
    return problems


def _unavailable(name: str, where: str, per: str) -> str:
    if name in ("read1", "read2"):
        if per == "pair" and where == "command":
            return f"{{{name}}} is not available in command, which runs on a file without its mate; use {{input}}"
        return f"{{{name}}} is only available to per: pair pipelines (paired_command)"
    if name == "input" and per == "pair":
        return "{input} is not available in paired_command; use {read1} and {read2}"
    return f"{{{name}}} is not available with per: {per}; use {{inputs}} or {{input_dir}}"


# Locations and messages of pydantic errors, rewritten for the person editing the file.


def _render_loc(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {words} {bound}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == NAME_PATTERN:
            return (
                f"{given!r} must be lowercase letters, digits, '-' or '_', starting with a letter or digit, at most 63"
            )
        return f"{given!r} must be one word, without spaces"
    if kind == "string_type":
        if isinstance(given, int | float) and not isinstance(given, bool):
            return f'must be a string; quote it: "{given}"'
        return "must be a string"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, not {given!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_type", "float_parsing"):
        return "must be a number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("tuple_type", "list_type"):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of fields"
    if kind == "too_short":
        return f"must hold at least {ctx.get('min_length')} item(s)"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"])


def _located_problems(error: Mapping[str, Any], data: Any) -> list[str]:
    loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _Problems):
        return [f"{_describe(loc + sub, data)}: {message}" for sub, message in cause.problems]
    return [f"{_describe(loc, data)}: {_message(error)}" if loc else _message(error)]


def _describe(loc: tuple[str | int, ...], data: Any) -> str:
    """Render a location, naming the pipeline after its index: ``pipelines[2] (samtools-stats).resources``."""
    text = _render_loc(loc)
    if len(loc) >= 2 and loc[0] == "pipelines" and isinstance(loc[1], int):
        name = _raw_name(data, loc[1])
        if name:
            head = f"pipelines[{loc[1]}] ({name})"
            return head + text[len(f"pipelines[{loc[1]}]") :]
    return text


def _raw_name(data: Any, index: int) -> str | None:
    try:
        name = data["pipelines"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and name else None


def parse_pipelines(text: str, source: str) -> tuple[Pipeline, ...]:
    """The pipelines of a file's text; ``source`` names the file in every error.

    Raises `PipelineFileError` listing every problem found, each with its location.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineFileError(source, [f"{where}not valid YAML: {problem}"]) from None
    if data is None:
        raise PipelineFileError(source, ["is empty; it needs 'version: 1' and a 'pipelines' list"])
    if not isinstance(data, dict):
        raise PipelineFileError(source, ["must be a mapping with 'version: 1' and a 'pipelines' list"])
    try:
        parsed = PipelinesFile.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            for problem in _located_problems(error, data):
                if problem not in problems:
                    problems.append(problem)
        raise PipelineFileError(source, problems) from None
    return parsed.pipelines


def load_pipelines(path: str | Path) -> tuple[Pipeline, ...]:
    """The pipelines declared in the file at ``path`` (UTF-8 YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PipelineFileError(str(path), [f"cannot be read: {reason}"]) from None
    return parse_pipelines(text, str(path))


def builtin_pipelines_path() -> Path:
    """The pipelines file shipped with labmesh, used unless ``LABMESH_PIPELINES`` names another."""
    return Path(__file__).with_name("builtin.yaml")


def pipelines_code_version(pipelines: Iterable[Pipeline]) -> str:
    """``fastp@1 multiqc@2 samtools-stats@1``: the processed dataset's code version.

    It changes exactly when a pipeline is added, removed, renamed or has its version bumped,
    which is what marks datasets made by the old pipelines stale. Names cannot hold '@' and
    versions cannot hold spaces, so two different sets never render the same string.
    """
    return " ".join(sorted(f"{pipeline.name}@{pipeline.version}" for pipeline in pipelines))
