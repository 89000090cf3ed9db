"""What every test fake of an AWS client shares: being held to botocore's own service model.

moto serves neither HealthOmics, DataZone nor Kendra, so the tests fake those
clients. A fake is only worth having if it is as strict as the service, so
each one checks every request and every response against the model botocore
ships for the service:

- ``ParamValidator`` first, as a real boto3 client does before sending: a
  missing required member, an unknown member, a wrong type or a value below a
  minimum raises `botocore.exceptions.ParamValidationError`, exactly as boto3 would;
- then the constraints botocore leaves to the service (maximum lengths and
  counts, enums, patterns): a violation raises a ``ValidationException``
  `ClientError` listing every problem, as the service would answer.

Patterns are Java regular expressions matched against the whole value (the
services reject a value with anything around the allowed text); they are
translated to Python's ``re`` where the two differ (``\\p{..}`` classes, ``.``
and Java's ASCII-only ``\\w``/``\\d``/``\\s``), and a construct the translation does
not know is refused with `ModelViolation` rather than passed unjudged.
Responses are checked the same way, with timestamps required to be
``datetime`` as botocore parses them; a response that breaks the model is a bug
in the fake and raises `ModelViolation`. Errors are raised only with codes the
operation declares, as instances of the modeled exception classes that
``client.exceptions`` offers.
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import random
import re
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import botocore.session
from botocore import xform_name
from botocore.errorfactory import BaseClientExceptions, ClientExceptionsFactory
from botocore.exceptions import ClientError, DataNotFoundError, ParamValidationError
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel, Shape
from botocore.paginate import Paginator
from botocore.validate import ParamValidator

# Java's "." stops at every line terminator, Python's only at "\n".
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
# Escapes that mean the same in Java and in Python's re with re.ASCII.
_SHARED_ESCAPES = frozenset("dDwWsSbBtnrfA")
# Literal characters Python warns about (or may one day read as set operators) inside a class.
_CLASS_OPERATOR_CHARS = frozenset("|&~")
_LAST_CODE_POINT = 0x10FFFF


class ModelViolation(AssertionError):
    """A response the fake built that the model does not allow, or a request it cannot judge: a bug in the fake."""


@functools.cache
def load_model(service_name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service_name)


def operation_model(service_name: str, operation_name: str) -> OperationModel:
    try:
        return load_model(service_name).operation_model(operation_name)
    except OperationNotFoundError as error:
        raise ModelViolation(f"{service_name} has no operation {operation_name}") from error


def matches(pattern: str, value: str) -> bool:
    """Whether the service accepts ``value`` for a member with this (Java) ``pattern``."""
    return compiled(pattern).fullmatch(value) is not None


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    translated = python_pattern(pattern)
    try:
        # re.ASCII because Java's \w, \d, \s and \b are ASCII-only unless a flag says otherwise.
        return re.compile(translated, re.ASCII)
    except re.error as error:
        raise _unjudged(pattern, f"what Python's re refuses ({error})") from error


def python_pattern(pattern: str) -> str:
    """The Python ``re`` pattern matching what a Java pattern matches, or `ModelViolation` if it cannot be judged."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            text, index = _escape(pattern, index, in_class=False)
        elif char == "[":
            text, index = _character_class(pattern, index)
        elif char == ".":
            text, index = _JAVA_DOT, index + 1
        elif pattern.startswith("(?<", index) and not pattern.startswith(("(?<=", "(?<!"), index):
            raise _unjudged(pattern, "named groups")
        else:
            text, index = char, index + 1
        parts.append(text)
    return "".join(parts)


def _unjudged(pattern: str, construct: str) -> ModelViolation:
    # Refuse rather than pass a value the fake cannot judge: a silent pass would hide a bad request.
    return ModelViolation(f"the fake cannot check the pattern {pattern!r}: it does not translate {construct}")


def _escape(pattern: str, index: int, *, in_class: bool) -> tuple[str, int]:
    """One escape starting at ``pattern[index] == "\\"``, as Python text, and the index after it."""
    if index + 1 >= len(pattern):
        raise _unjudged(pattern, "a trailing backslash")
    letter = pattern[index + 1]
    if letter in "pP":
        return _property_class(pattern, index, in_class=in_class)
    if letter == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", pattern[index + 2 : index + 6]):
        return pattern[index : index + 6], index + 6
    if letter == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", pattern[index + 2 : index + 4]):
        return pattern[index : index + 4], index + 4
    if letter in _SHARED_ESCAPES and not (in_class and letter in "bBA"):
        return pattern[index : index + 2], index + 2
    if letter.isdigit() and letter != "0" and not in_class:
        return pattern[index : index + 2], index + 2
    if not letter.isalnum():
        return pattern[index : index + 2], index + 2
    raise _unjudged(pattern, f"\\{letter}")


def _property_class(pattern: str, index: int, *, in_class: bool) -> tuple[str, int]:
    r"""``\p{X}`` / ``\P{X}`` (general categories only) as explicit code point ranges."""
    negated = pattern[index + 1] == "P"
    if pattern.startswith("{", index + 2):
        end = pattern.find("}", index + 3)
        if end < 0:
            raise _unjudged(pattern, "an unclosed \\p{")
        name, after = pattern[index + 3 : end], end + 1
    else:
        name, after = pattern[index + 2 : index + 3], index + 3
    name = name.removeprefix("Is")
    if not re.fullmatch(r"[LMNPSZC][a-z]?", name):
        raise _unjudged(pattern, f"\\p{{{name}}} (only Unicode general categories are known)")
    ranges = category_ranges(name)
    if negated:
        ranges = _complement(ranges)
    text = "".join(_range_text(start, end) for start, end in ranges)
    return (text if in_class else f"[{text}]"), after


def _character_class(pattern: str, index: int) -> tuple[str, int]:
    """A ``[...]`` class starting at ``index``, refusing Java's nested classes and intersections."""
    parts = ["["]
    position = index + 1
    if pattern.startswith("^", position):
        parts.append("^")
        position += 1
    if pattern.startswith("]", position):
        raise _unjudged(pattern, "a class opening with ]")
    while position < len(pattern):
        char = pattern[position]
        if char == "]":
            parts.append("]")
            return "".join(parts), position + 1
        if char == "[":
            raise _unjudged(pattern, "nested classes")
        if pattern.startswith("&&", position):
            raise _unjudged(pattern, "class intersections")
        if char == "\\":
            text, position = _escape(pattern, position, in_class=True)
        else:
            text, position = ("\\" + char if char in _CLASS_OPERATOR_CHARS else char), position + 1
        parts.append(text)
    raise _unjudged(pattern, "an unclosed class")


def _range_text(start: int, end: int) -> str:
    return f"\\U{start:08x}" if start == end else f"\\U{start:08x}-\\U{end:08x}"


@functools.cache
def _category_runs() -> tuple[tuple[int, int, str], ...]:
    """Every code point's general category, as runs of equal category (computed once: about 4000 runs)."""
    categories = map(unicodedata.category, map(chr, range(_LAST_CODE_POINT + 1)))
    runs: list[tuple[int, int, str]] = []
    start = 0
    for category, group in itertools.groupby(categories):
        length = sum(1 for _ in group)
        runs.append((start, start + length - 1, category))
        start += length
    return tuple(runs)


@functools.cache
def category_ranges(name: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges of a general category (``L``) or subcategory (``Lu``), adjacent runs merged."""
    merged: list[tuple[int, int]] = []
    for start, end, category in _category_runs():
        if not category.startswith(name):
            continue
        if merged and merged[-1][1] + 1 == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def _complement(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    gaps: list[tuple[int, int]] = []
    next_start = 0
    for start, end in ranges:
        if start > next_start:
            gaps.append((next_start, start - 1))
        next_start = end + 1
    if next_start <= _LAST_CODE_POINT:
        gaps.append((next_start, _LAST_CODE_POINT))
    return tuple(gaps)


def service_problems(value: Any, shape: Shape, name: str = "", *, response: bool = False) -> list[str]:
    """What botocore does not check and the service does: maxima, enums, patterns (and datetimes in responses)."""
    checker = _PROBLEMS_BY_TYPE.get(shape.type_name)
    return checker(value, shape, name, response) if checker else []


def _structure_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    members = shape.members
    return [
        problem
        for member, member_value in value.items()
        if member in members
        for problem in service_problems(member_value, members[member], f"{name}.{member}", response=response)
    ]


def _list_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    if not isinstance(value, (list, tuple)):
        return []
    problems = _count_problems(len(value), shape, name, "items")
    for index, item in enumerate(value):
        problems += service_problems(item, shape.member, f"{name}[{index}]", response=response)
    return problems


def _map_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    # botocore checks no size of a map at all, so both bounds are the service's.
    problems = _count_problems(len(value), shape, name, "entries", check_min=True)
    for key, item in value.items():
        problems += service_problems(key, shape.key, f"{name} key {key!r}", response=response)
        problems += service_problems(item, shape.value, f"{name}[{key!r}]", response=response)
    return problems


def _count_problems(count: int, shape: Shape, name: str, unit: str, *, check_min: bool = False) -> list[str]:
    meta = shape.metadata
    if "max" in meta and count > meta["max"]:
        return [f"{name}: {count} {unit}, at most {meta['max']} allowed"]
    if check_min and "min" in meta and count < meta["min"]:
        return [f"{name}: {count} {unit}, at least {meta['min']} required"]
    return []


def _string_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    if not isinstance(value, str):
        return []
    meta = shape.metadata
    problems = _count_problems(len(value), shape, name, "characters")
    if shape.enum and value not in shape.enum:
        problems.append(f"{name}: {value!r} is not one of {', '.join(shape.enum)}")
    if "pattern" in meta and not matches(meta["pattern"], value):
        problems.append(f"{name}: {value!r} does not match the pattern {meta['pattern']}")
    return problems


def _blob_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray)):
        return []
    # botocore checks no length of a blob, so both bounds are the service's.
    return _count_problems(len(value), shape, name, "bytes", check_min=True)


def _number_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    meta = shape.metadata
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "max" in meta and value > meta["max"]:
        return [f"{name}: {value} is above the maximum {meta['max']}"]
    return []


def _timestamp_problems(value: Any, shape: Shape, name: str, response: bool) -> list[str]:
    if response and not isinstance(value, datetime):
        return [f"{name}: {value!r} must be a datetime, as botocore parses timestamps"]
    return []


_PROBLEMS_BY_TYPE: dict[str, Callable[[Any, Shape, str, bool], list[str]]] = {
    "structure": _structure_problems,
    "list": _list_problems,
    "map": _map_problems,
    "string": _string_problems,
    "blob": _blob_problems,
    "integer": _number_problems,
    "long": _number_problems,
    "float": _number_problems,
    "double": _number_problems,
    "timestamp": _timestamp_problems,
}


def check_params(service_name: str, operation_name: str, params: Mapping[str, Any]) -> None:
    """Raise what boto3 raises client-side, before anything is sent."""
    report = ParamValidator().validate(params, operation_model(service_name, operation_name).input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def check_constraints(service_name: str, operation_name: str, params: Mapping[str, Any]) -> None:
    """Raise the ``ValidationException`` the service answers for constraints botocore leaves to it."""
    problems = service_problems(params, operation_model(service_name, operation_name).input_shape)
    if problems:
        raise service_error(service_name, operation_name, "ValidationException", "; ".join(problems))


def check_request(service_name: str, operation_name: str, params: Mapping[str, Any]) -> None:
    """Raise what boto3 (client-side) or the service (``ValidationException``) would for an invalid request."""
    check_params(service_name, operation_name, params)
    check_constraints(service_name, operation_name, params)


def check_response(service_name: str, operation_name: str, response: Mapping[str, Any]) -> None:
    shape = operation_model(service_name, operation_name).output_shape
    if shape is None:
        problems = [f"no output is modeled, yet the fake answered {dict(response)!r}"] if response else []
    else:
        report = ParamValidator().validate(response, shape)
        problems = [report.generate_report()] if report.has_errors() else []
        problems += service_problems(response, shape, response=True)
    if problems:
        raise ModelViolation(f"{operation_name} response breaks the {service_name} model: " + "; ".join(problems))


@functools.cache
def client_exceptions(service_name: str) -> BaseClientExceptions:
    """The modeled exception classes, as ``boto3.client(service_name).exceptions`` offers them."""
    return ClientExceptionsFactory().create_client_exceptions(load_model(service_name))


def declared_errors(service_name: str, operation_name: str) -> frozenset[str]:
    return frozenset(error.name for error in operation_model(service_name, operation_name).error_shapes)


def service_error(service_name: str, operation_name: str, code: str, message: str) -> ClientError:
    """A `ClientError` as botocore raises it, only with an error code the operation declares."""
    declared = declared_errors(service_name, operation_name)
    if code not in declared:
        raise ModelViolation(f"{operation_name} declares no {code}; it declares {', '.join(sorted(declared))}")
    error_shape = load_model(service_name).shape_for(code)
    status = error_shape.metadata.get("error", {}).get("httpStatusCode", 500 if "Internal" in code else 400)
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    exception_class = client_exceptions(service_name).from_code(code)
    return exception_class(parsed, operation_name)


def first_declared(service_name: str, operation_name: str, codes: Iterable[str]) -> str:
    """The first of ``codes`` the operation declares: how a fake says "not found" where the model has no such code."""
    declared = declared_errors(service_name, operation_name)
    for code in codes:
        if code in declared:
            return code
    raise ModelViolation(f"{operation_name} declares none of {', '.join(codes)}")


class FakeServiceClient:
    """The parts of a model-bound fake client that do not depend on the service.

    Every call is checked (`check_params` first, as boto3 does before sending,
    then recorded as having reached the service, then throttled if a test asked
    for it, then `check_constraints`), and every answer goes through
    `check_response`. ``calls`` holds each call's operation and parameters,
    ``call_counts`` the number per operation and ``call_times`` their clock
    readings, so a test can pin a client's request rate (`peak_calls_per_second`).
    """

    service_name: ClassVar[str]

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.call_counts: Counter[str] = Counter()
        self.call_times: defaultdict[str, list[float]] = defaultdict(list)
        self._clock = clock
        self._throttled: Counter[str] = Counter()

    @property
    def exceptions(self) -> BaseClientExceptions:
        return client_exceptions(self.service_name)

    def throttle(self, operation_name: str, times: int = 1) -> None:
        """Make the next ``times`` calls of the operation raise ``ThrottlingException``, as a busy service does."""
        if "ThrottlingException" not in declared_errors(self.service_name, operation_name):
            raise ModelViolation(f"{operation_name} declares no ThrottlingException")
        self._throttled[operation_name] += times

    def peak_calls_per_second(self, operation_name: str | None = None) -> int:
        """The most calls (of one operation, or of all) that fell within any one second of the clock."""
        if operation_name is None:
            times = sorted(moment for moments in self.call_times.values() for moment in moments)
        else:
            times = sorted(self.call_times.get(operation_name, []))
        return max((bisect.bisect_left(times, moment + 1.0) - index for index, moment in enumerate(times)), default=0)

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in _paginator_configs(self.service_name)

    def get_paginator(self, operation_name: str) -> Paginator:
        """botocore's own paginator, driving this fake's method as it would drive the real client's."""
        config = _paginator_configs(self.service_name).get(operation_name)
        if config is None:
            raise ModelViolation(f"{self.service_name} has no paginator for {operation_name}")
        model = operation_model(self.service_name, _operation_names(self.service_name)[operation_name])
        return Paginator(getattr(self, operation_name), config, model)

    def _receive(self, operation_name: str, params: Mapping[str, Any]) -> None:
        check_params(self.service_name, operation_name, params)
        self.calls.append((operation_name, _snapshot(params)))
        self.call_counts[operation_name] += 1
        self.call_times[operation_name].append(self._clock())
        if self._throttled[operation_name] > 0:
            self._throttled[operation_name] -= 1
            raise self._error(operation_name, "ThrottlingException", "Rate exceeded")
        check_constraints(self.service_name, operation_name, params)

    def _reply(self, operation_name: str, response: dict[str, Any]) -> dict[str, Any]:
        check_response(self.service_name, operation_name, response)
        return response

    def _error(self, operation_name: str, code: str, message: str) -> ClientError:
        return service_error(self.service_name, operation_name, code, message)

    def _missing(self, operation_name: str, message: str) -> ClientError:
        """Not found, answered with ResourceNotFoundException where declared, else ValidationException."""
        code = first_declared(self.service_name, operation_name, ("ResourceNotFoundException", "ValidationException"))
        return self._error(operation_name, code, message)


def _snapshot(params: Mapping[str, Any]) -> dict[str, Any]:
    """The request as sent, safe from later changes by the caller (streams, which cannot be copied, are kept)."""
    try:
        return copy.deepcopy(dict(params))
    except TypeError:
        return dict(params)


@functools.cache
def _operation_names(service_name: str) -> dict[str, str]:
    return {xform_name(name): name for name in load_model(service_name).operation_names}


@functools.cache
def _paginator_configs(service_name: str) -> dict[str, dict[str, Any]]:
    loader = botocore.session.get_session().get_component("data_loader")
    try:
        pagination = loader.load_service_model(service_name, "paginators-1")["pagination"]
    except DataNotFoundError:
        return {}
    return {xform_name(name): config for name, config in pagination.items()}


class ThrottledShare:
    """A fake service client on which about ``share`` of all calls is throttled (seeded: every run alike).

    The throttling reaches the fake as its own ``ThrottlingException``, so what is tested is the caller's
    retrying, as a busy service would exercise it. Attributes that are not operations pass through.
    """

    def __init__(self, fake: FakeServiceClient, share: float, seed: int = 7) -> None:
        self.fake = fake
        self.share = share
        self.random = random.Random(seed)
        self.injected = 0
        self.operations = {xform_name(name): name for name in load_model(fake.service_name).operation_names}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.fake, name)
        if name not in self.operations:
            return attribute

        def call(**params: Any) -> Any:
            if self.random.random() < self.share:
                self.fake.throttle(self.operations[name])
                self.injected += 1
            return attribute(**params)

        return call
