"""`.env.example` lists exactly the settings `Settings.from_env` reads, and its active lines are the defaults.

Pinned here:
- the names Settings asks its environment for are the names `.env.example` lists, active or commented.
  They are found by running `Settings.from_env` over a recording mapping, not by reading settings.py,
  in scenarios that together switch on every branch: the local defaults; the aws profile with
  HealthOmics, DataZone, Kendra and every SQS queue; eLabFTW; Benchling; a webhook source; OIDC sign-in.
  Pattern-named webhook variables (``settings.WEBHOOK_KEY``) count once per suffix, whatever the
  source's name, so ``LABMESH_WEBHOOK_LIMS_SECRETS`` documents ``LABMESH_WEBHOOK_<NAME>_SECRETS``.
  AWS's own region variables, read as fallbacks, are mentioned in the file rather than listed;
- the scenarios do reach every branch: every profile, every ELN, every class with a ``from_env`` reader,
  a webhook source;
- each variable is listed once, and the active lines are what python-dotenv reads from the file;
- an active ``NAME=value`` line changes nothing: Settings built with it equals Settings built without it,
  in the scenario where Settings reads it (the empty environment for the core settings);
- a commented example, once uncommented, is a value Settings accepts.

So a new ``env.get("LABMESH_...")`` in settings.py, on any branch these scenarios reach, fails the first
test until `.env.example` documents it; a new profile, ELN or settings class fails the branch test until a
scenario here switches it on.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest
from dotenv import dotenv_values

from labmesh_dagster import settings as settings_module
from labmesh_dagster.settings import ELNS, PROFILES, WEBHOOK_KEY, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
AWS_OWN_VARIABLES = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION"})
ASSIGNMENT = re.compile(r"(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=.*")

SCENARIOS: dict[str, dict[str, str]] = {
    "local defaults": {},
    "aws with every service and queue": {
        "LABMESH_PROFILE": "aws",
        "LABMESH_OMICS_SEQUENCE_STORE_ID": "1234567890",
        "LABMESH_OMICS_ROLE_ARN": "arn:aws:iam::123456789012:role/labmesh-omics-import",
        "LABMESH_DATAZONE_DOMAIN_ID": "dzd_4p9n6example",
        "LABMESH_DATAZONE_PROJECT_ID": "5r7example",
        "LABMESH_KENDRA_INDEX_ID": "0123abcd-4567-89ab-cdef-0123456789ab",
        "LABMESH_BEDROCK_KNOWLEDGE_BASE_ID": "KB12EXAMPL",
        "LABMESH_BEDROCK_DATA_SOURCE_ID": "DS12EXAMPL",
        "LABMESH_SQS_LANDING_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/landing-events",
        "LABMESH_SQS_FINAL_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/final-events",
        "LABMESH_SQS_ELN_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/eln-events.fifo",
    },
    "eLabFTW as the ELN": {
        "LABMESH_ELN": "elabftw",
        "LABMESH_ELABFTW_URL": "https://elab.example.org",
        "LABMESH_ELABFTW_API_KEY": "3-0123",
    },
    "Benchling as the ELN": {
        "LABMESH_ELN": "benchling",
        "LABMESH_BENCHLING_URL": "https://acme.benchling.com",
        "LABMESH_BENCHLING_API_KEY": "sk_example",
    },
    "a webhook source": {"LABMESH_WEBHOOK_LIMS_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "Bedrock answers with a guardrail": {
        "LABMESH_ANSWERER": "bedrock",
        "LABMESH_BEDROCK_MODEL_ID": "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "LABMESH_BEDROCK_GUARDRAIL_ID": "gr4example",
        "LABMESH_BEDROCK_GUARDRAIL_VERSION": "1",
    },
    "OIDC sign-in": {
        "LABMESH_LOGIN": "oidc",
        "LABMESH_OIDC_ISSUER": "https://login.example.org/realms/lab",
        "LABMESH_OIDC_CLIENT_ID": "labmesh-portal",
    },
}


class RecordingEnvironment(Mapping[str, str]):
    """An environment that notes every name asked for, whether or not it holds a value.

    Iterating it lists the names the test put in, which says nothing about what Settings reads; it only
    notes that Settings scanned the environment (as it does for pattern-named webhook sources, whose
    variables it then asks for by name).
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()
        self.scanned = False

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self._values[name]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(name)
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.asked.add(name)
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        self.scanned = True
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Reading(NamedTuple):
    settings: Settings
    asked: frozenset[str]
    scanned: bool


class Line(NamedTuple):
    number: int
    name: str
    value: str
    active: bool


def read(values: Mapping[str, str]) -> Reading:
    environment = RecordingEnvironment(values)
    settings = Settings.from_env(environment)
    return Reading(settings, frozenset(environment.asked), environment.scanned)


def documented_as(name: str) -> str:
    """The name `.env.example` lists ``name`` under: a webhook variable by its pattern, anything else as is."""
    match = WEBHOOK_KEY.fullmatch(name)
    return f"LABMESH_WEBHOOK_<NAME>_{match.group(2)}" if match else name


def env_example_lines() -> list[Line]:
    """Every ``NAME=value`` and ``# NAME=value`` line, the value parsed as python-dotenv parses it."""
    lines = []
    for number, text in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        match = ASSIGNMENT.fullmatch(text.strip())
        if match is None:
            continue
        assignment = text.strip().removeprefix(match["commented"] or "")
        value = dotenv_values(stream=io.StringIO(assignment), interpolate=False)[match["name"]]
        lines.append(Line(number, match["name"], value or "", match["commented"] is None))
    return lines


def settings_objects(value: object) -> Iterator[object]:
    """``value`` and every settings object inside it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for field in dataclasses.fields(value):
            yield from settings_objects(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from settings_objects(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from settings_objects(item)


def scenario_reading(name: str, readings: dict[str, Reading]) -> dict[str, str]:
    """The first scenario in which Settings reads ``name`` (its pattern, for a webhook variable)."""
    for scenario, reading in readings.items():
        if documented_as(name) in {documented_as(asked) for asked in reading.asked}:
            return SCENARIOS[scenario]
    pytest.fail(f"{name}: no scenario makes Settings read it")


@pytest.fixture(scope="module")
def readings() -> dict[str, Reading]:
    return {scenario: read(values) for scenario, values in SCENARIOS.items()}


def test_env_example_lists_exactly_the_variables_settings_reads(readings: dict[str, Reading]) -> None:
    asked = set().union(*(reading.asked for reading in readings.values()))
    read_by_settings = {documented_as(name) for name in asked - AWS_OWN_VARIABLES}
    listed = {documented_as(line.name) for line in env_example_lines()}

    undocumented, never_read = sorted(read_by_settings - listed), sorted(listed - read_by_settings)
    assert not undocumented and not never_read, (
        f"Settings reads these but .env.example does not list them: {undocumented}; "
        f".env.example lists these but Settings never reads them: {never_read}"
    )


def test_aws_own_region_variables_are_mentioned_beside_labmesh_aws_region(readings: dict[str, Reading]) -> None:
    asked = set().union(*(reading.asked for reading in readings.values()))
    text = ENV_EXAMPLE.read_text(encoding="utf-8")

    assert asked & AWS_OWN_VARIABLES, "Settings no longer falls back to AWS's region variables: drop this test"
    unmentioned = sorted(name for name in asked & AWS_OWN_VARIABLES if name not in text)
    assert not unmentioned, f".env.example does not mention the fallbacks {unmentioned}"


def test_the_scenarios_switch_on_every_branch_of_settings(readings: dict[str, Reading]) -> None:
    built = [reading.settings for reading in readings.values()]
    classes_built = {type(found) for settings in built for found in settings_objects(settings)}
    classes_reading_the_environment = {
        value
        for value in vars(settings_module).values()
        if isinstance(value, type)
        and value.__module__ == settings_module.__name__
        and any(hasattr(value, reader) for reader in ("from_env", "all_from_env"))
    }

    assert {settings.profile for settings in built} == set(PROFILES), "add a scenario for each profile"
    assert {settings.eln for settings in built} == set(ELNS), "add a scenario for each ELN"
    never_built = sorted(cls.__name__ for cls in classes_reading_the_environment - classes_built)
    assert not never_built, f"no scenario builds {never_built}: add one that switches it on"
    webhook = readings["a webhook source"]
    assert webhook.scanned and webhook.settings.webhook_sources, "the webhook scenario configures no source"


def test_each_variable_is_listed_once_and_the_active_lines_are_what_dotenv_reads() -> None:
    lines = env_example_lines()

    repeated = sorted(name for name, count in Counter(line.name for line in lines).items() if count > 1)
    assert not repeated, f".env.example lists these more than once: {repeated}"
    assert {line.name: line.value for line in lines if line.active} == dotenv_values(ENV_EXAMPLE, interpolate=False)


@pytest.mark.parametrize("line", [line for line in env_example_lines() if line.active], ids=lambda line: line.name)
def test_an_active_line_holds_the_default_settings_uses(
    line: Line, readings: dict[str, Reading], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths resolve the same way in both calls
    scenario = scenario_reading(line.name, readings)

    assert Settings.from_env({**scenario, line.name: line.value}) == Settings.from_env(scenario), (
        f".env.example line {line.number}: {line.name}={line.value} is active but is not the default; "
        "comment it out or put the default there"
    )


@pytest.mark.parametrize("line", [line for line in env_example_lines() if not line.active], ids=lambda line: line.name)
def test_a_commented_example_once_uncommented_is_a_value_settings_accepts(
    line: Line, readings: dict[str, Reading], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = scenario_reading(line.name, readings)

    Settings.from_env({**scenario, line.name: line.value})
