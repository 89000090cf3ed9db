"""The pipelines file, as an operator writes it.

Contract: a good file loads into frozen `Pipeline` models with the documented defaults; a bad file
raises `PipelineFileError` whose message names the file and every problem by its location
(``pipelines[1] (samtools-stats).resources.memory_mib: must be greater than 0``), never a pydantic dump;
placeholders are checked at load time (unknown names, names the pipeline's ``per`` cannot give,
``{inputs}`` not a whole argument); engines need exactly their own settings; ``paired_command`` only
with per: pair; names are unique and ``outputs_of``/``fallback`` name pipelines of the same file without
cycles; the code version changes exactly when a pipeline is added, removed, renamed or re-versioned.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from labmesh_dagster.core.errors import PipelineFileError
from labmesh_dagster.pipelines.spec import (
    PLACEHOLDERS,
    Pipeline,
    builtin_pipelines_path,
    load_pipelines,
    parse_pipelines,
    pipelines_code_version,
)

GOOD = """\
version: 1
pipelines:
  - name: fastp
    version: "1"
    description: QC and adapter report of each FASTQ
    per: pair
    takes: {formats: [fastq]}
    command: [fastp, --in1, "{input}", --json, "{output_dir}/{name}.fastp.json", --thread, "{threads}"]
    paired_command: [fastp, --in1, "{read1}", --in2, "{read2}", --json, "{output_dir}/{name}.fastp.json"]
    versions: {fastp: [fastp, --version]}
    outputs: ["*.fastp.json"]
    resources: {cpu: 2.5}
  - name: samtools-stats
    version: "1"
    engine: ecs
    takes: {formats: [bam, cram], samples: sample_sheet}
    command: [samtools, stats, "{input}"]
    outputs: ["*.stats.txt"]
    ecs: {image: "123.dkr.ecr.eu-west-1.amazonaws.com/labmesh:1.0", task_definition: labmesh-pipelines}
  - name: omics-fastqc
    version: "3"
    engine: healthomics
    per: pair
    healthomics:
      workflow_id: "1234567"
      role_arn: arn:aws:iam::123456789012:role/omics
      output_uri: s3://bucket/prefix/
      parameters: {fastq_r1: "{read1}", fastq_r2: "{read2}", sample_name: "{name}"}
  - name: multiqc
    version: "2"
    per: experiment
    takes: {outputs_of: [fastp, samtools-stats]}
    command: [multiqc, --outdir, "{output_dir}", "{input_dir}", "{inputs}"]
    outputs: [multiqc_report.html]
"""


def _error(text: str) -> str:
    with pytest.raises(PipelineFileError) as caught:
        parse_pipelines(textwrap.dedent(text), "pipelines.yaml")
    return str(caught.value)


def _one(pipeline: str) -> str:
    """A file with one pipeline (given as its YAML lines, indented by four spaces)."""
    return "version: 1\npipelines:\n  - " + textwrap.dedent(pipeline).strip().replace("\n", "\n    ") + "\n"


def test_a_good_file_loads_with_its_defaults() -> None:
    fastp, samtools, omics, multiqc = parse_pipelines(GOOD, "pipelines.yaml")

    assert fastp.name == "fastp" and fastp.engine == "local" and fastp.per == "pair"
    assert fastp.command[0] == "fastp" and fastp.versions == {"fastp": ("fastp", "--version")}
    assert fastp.resources.cpu == 2.5 and fastp.threads == 3
    assert fastp.resources.memory_mib == 2048 and fastp.resources.timeout_seconds == 3600
    assert samtools.takes.formats == ("bam", "cram") and samtools.takes.samples == "sample_sheet"
    assert samtools.ecs is not None and samtools.ecs.cluster == "default" and samtools.ecs.container_name == "labmesh"
    assert omics.healthomics is not None and omics.healthomics.workflow_type == "PRIVATE"
    assert multiqc.takes.outputs_of == ("fastp", "samtools-stats") and multiqc.fallback is None
    dumped = fastp.model_dump(mode="json")
    assert dumped["command"][0] == "fastp" and Pipeline.model_validate(dumped) == fastp


def test_pipelines_are_frozen() -> None:
    (pipeline,) = parse_pipelines(_one('name: a\nversion: "1"\ncommand: [x]\noutputs: ["*"]'), "x.yaml")
    with pytest.raises(pydantic.ValidationError):
        pipeline.version = "2"  # type: ignore[misc]


def test_load_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert [pipeline.name for pipeline in load_pipelines(path)] == [
        "fastp",
        "samtools-stats",
        "omics-fastqc",
        "multiqc",
    ]

    path.write_text(GOOD.replace("memory_mib", "memory_mib").replace("{cpu: 2.5}", "{cpu: 0}"), encoding="utf-8")
    with pytest.raises(PipelineFileError, match=rf"^{path}: pipelines\[0\] \(fastp\)\.resources\.cpu: must be"):
        load_pipelines(path)
    with pytest.raises(PipelineFileError, match=r"missing\.yaml: cannot be read: No such file or directory"):
        load_pipelines(tmp_path / "missing.yaml")


def test_the_builtin_path_is_the_packaged_file() -> None:
    path = builtin_pipelines_path()
    assert path.name == "builtin.yaml" and path.parent.name == "pipelines"
    if path.exists():
        assert load_pipelines(path)


def test_a_field_out_of_range_names_the_pipeline_and_field() -> None:
    text = GOOD.replace('outputs: ["*.stats.txt"]', 'outputs: ["*.stats.txt"]\n    resources: {memory_mib: 0}')
    assert _error(text) == "pipelines.yaml: pipelines[1] (samtools-stats).resources.memory_mib: must be greater than 0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "pipelines.yaml: is empty; it needs 'version: 1' and a 'pipelines' list"),
        ("- a\n- b\n", "pipelines.yaml: must be a mapping with 'version: 1' and a 'pipelines' list"),
        (
            "version: 1\npipelines: [\n",
            "pipelines.yaml: line 3, column 1: not valid YAML: expected the node content, but found '<stream end>'",
        ),
        ("version: 2\npipelines: []\n", "pipelines.yaml: version: must be 1, not 2"),
        ("version: 1\n", "pipelines.yaml: pipelines: is required"),
        ("version: 1\npipelines: {}\n", "pipelines.yaml: pipelines: must be a list"),
        (
            _one('name: Fastp\nversion: "1"\ncommand: [x]\noutputs: ["*"]'),
            "pipelines.yaml: pipelines[0] (Fastp).name: 'Fastp' must be lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit, at most 63",
        ),
        (
            _one('name: a\nversion: 1\ncommand: [x]\noutputs: ["*"]'),
            'pipelines.yaml: pipelines[0] (a).version: must be a string; quote it: "1"',
        ),
        (
            _one('name: a\nversion: ""\ncommand: [x]\noutputs: ["*"]'),
            "pipelines.yaml: pipelines[0] (a).version: must not be empty",
        ),
        (
            _one('name: a\nversion: "1"\ncommand: [x]\noutputs: ["*"]\ncolour: red'),
            "pipelines.yaml: pipelines[0] (a).colour: is not a known field",
        ),
        (
            _one('name: a\nversion: "1"\nengine: lambda\ncommand: [x]\noutputs: ["*"]'),
            "pipelines.yaml: pipelines[0] (a).engine: must be 'local', 'ecs' or 'healthomics', not 'lambda'",
        ),
        (
            _one('name: a\nversion: "1"\ncommand: [x]\noutputs: ["*"]\nresources: {timeout_seconds: soon}'),
            "pipelines.yaml: pipelines[0] (a).resources.timeout_seconds: must be a whole number",
        ),
        (
            _one('name: a\nversion: "1"\noutputs: ["*"]'),
            "pipelines.yaml: pipelines[0] (a).command: is required for engine local",
        ),
        (
            _one('name: a\nversion: "1"\ncommand: [x]'),
            "pipelines.yaml: pipelines[0] (a).outputs: needs at least one glob for engine local",
        ),
        (
            _one('name: a\nversion: "1"\ncommand: [x]\noutputs: ["../escape/*"]'),
            "pipelines.yaml: pipelines[0] (a).outputs[0]: must be a glob relative to {output_dir}, without '..'",
        ),
        (
            _one('name: a\nversion: "1"\ncommand: [x]\noutputs: ["*"]\nversions: {x: []}'),
            "pipelines.yaml: pipelines[0] (a).versions.x: must be a non-empty command",
        ),
    ],
)
def test_each_kind_of_bad_file_gets_its_own_message(text: str, message: str) -> None:
    assert _error(text) == message


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ('engine: ecs\ncommand: [x]\noutputs: ["*"]', "pipelines[0] (a).ecs: is required for engine ecs"),
        ("engine: healthomics", "pipelines[0] (a).healthomics: is required for engine healthomics"),
        (
            'command: [x]\noutputs: ["*"]\necs: {image: i, task_definition: t}',
            "pipelines[0] (a).ecs: is only for engine ecs, not local",
        ),
        (
            'command: [x]\noutputs: ["*"]\npaired_command: [y]',
            "pipelines[0] (a).paired_command: is only for per: pair, not per: file",
        ),
        (
            'per: pair\ncommand: [x, "{input}"]\noutputs: ["*"]',
            "pipelines[0] (a).paired_command: is required for per: pair",
        ),
        (
            'engine: healthomics\nhealthomics: {workflow_id: "1", role_arn: r, output_uri: "https://x/"}',
            "pipelines[0] (a).healthomics.output_uri: must be an s3:// URI",
        ),
        (
            "engine: healthomics\n"
            'healthomics: {workflow_id: "1", role_arn: r, output_uri: "s3://b/", workflow_type: PUBLIC}',
            "pipelines[0] (a).healthomics.workflow_type: must be 'PRIVATE' or 'READY2RUN', not 'PUBLIC'",
        ),
        (
            'command: [x]\noutputs: ["*"]\nfallback: a',
            "pipelines[0] (a).fallback: must name another pipeline, not this one",
        ),
    ],
)
def test_engines_and_per_need_their_own_settings(pipeline: str, message: str) -> None:
    assert _error(_one('name: a\nversion: "1"\n' + pipeline)) == f"pipelines.yaml: {message}"


@pytest.mark.parametrize(
    ("per", "command", "message"),
    [
        (
            "file",
            '[x, "{inptu}"]',
            "command[1]: unknown placeholder {inptu}; known: {experiment_id}, {input}, {input_dir}, {inputs}, "
            "{name}, {output_dir}, {read1}, {read2}, {threads}",
        ),
        (
            "file",
            '[x, "--in={inputs}"]',
            "command[1]: {inputs} must be a whole argument on its own, since it becomes one per input",
        ),
        ("file", '[x, "{read1}"]', "command[1]: {read1} is only available to per: pair pipelines (paired_command)"),
        (
            "experiment",
            '[x, "{input}"]',
            "command[1]: {input} is not available with per: experiment; use {inputs} or {input_dir}",
        ),
        ("file", '[x, "{input!r}"]', "command[1]: {input} must be a plain placeholder, without '!' or ':'"),
        (
            "file",
            '[x, "{input"]',
            "command[1]: has a '{' or '}' that is not part of a placeholder (write {{ or }} for a literal brace)",
        ),
    ],
)
def test_placeholders_are_checked_at_load_time(per: str, command: str, message: str) -> None:
    text = _one(f'name: a\nversion: "1"\nper: {per}\ncommand: {command}\noutputs: ["*"]')
    assert _error(text) == f"pipelines.yaml: pipelines[0] (a).{message}"


def test_pair_commands_get_the_placeholders_their_inputs_give() -> None:
    text = _one(
        'name: a\nversion: "1"\nper: pair\ncommand: [x, "{read1}"]\n'
        'paired_command: [x, "{input}", "{read2}"]\noutputs: ["*"]'
    )
    assert _error(text) == (
        "pipelines.yaml: 2 problems\n"
        "pipelines.yaml: pipelines[0] (a).command[1]: {read1} is not available in command, which runs on a file "
        "without its mate; use {input}\n"
        "pipelines.yaml: pipelines[0] (a).paired_command[1]: {input} is not available in paired_command; "
        "use {read1} and {read2}"
    )


def test_healthomics_parameters_are_checked_like_commands() -> None:
    text = _one(
        'name: a\nversion: "1"\nengine: healthomics\n'
        'healthomics: {workflow_id: "1", role_arn: r, output_uri: "s3://b/",'
        ' parameters: {r: "{read1}", all: "x{inputs}"}}'
    )
    assert _error(text) == (
        "pipelines.yaml: 2 problems\n"
        "pipelines.yaml: pipelines[0] (a).healthomics.parameters.r: {read1} is only available to per: pair pipelines "
        "(paired_command)\n"
        "pipelines.yaml: pipelines[0] (a).healthomics.parameters.all: {inputs} must be a whole value on its own, "
        "since it becomes one per input"
    )


def test_literal_braces_and_every_placeholder_are_accepted() -> None:
    assert {
        "input",
        "read1",
        "read2",
        "inputs",
        "input_dir",
        "output_dir",
        "name",
        "threads",
        "experiment_id",
    } == PLACEHOLDERS
    text = _one(
        'name: a\nversion: "1"\ncommand: [awk, "{{print $1}}", "{input}", "{inputs}", "{input_dir}",'
        ' "{output_dir}/{name}",'
        ' "{threads}", "{experiment_id}"]\noutputs: ["*"]'
    )
    (pipeline,) = parse_pipelines(text, "pipelines.yaml")
    assert pipeline.command[1] == "{{print $1}}"


def test_every_problem_of_a_file_is_listed() -> None:
    text = GOOD.replace("{cpu: 2.5}", "{cpu: -1, memory_mib: 0}").replace(
        "task_definition: labmesh-pipelines", "extra: 1"
    )
    assert _error(text).splitlines() == [
        "pipelines.yaml: 4 problems",
        "pipelines.yaml: pipelines[0] (fastp).resources.cpu: must be greater than 0",
        "pipelines.yaml: pipelines[0] (fastp).resources.memory_mib: must be greater than 0",
        "pipelines.yaml: pipelines[1] (samtools-stats).ecs.task_definition: is required",
        "pipelines.yaml: pipelines[1] (samtools-stats).ecs.extra: is not a known field",
    ]


def test_names_are_unique_and_references_resolve() -> None:
    duplicate = GOOD.replace("name: omics-fastqc", "name: fastp")
    assert _error(duplicate) == "pipelines.yaml: pipelines[2] (fastp).name: 'fastp' is already used by pipelines[0]"
    unknown = GOOD.replace("outputs_of: [fastp, samtools-stats]", "outputs_of: [fastp, samtools-stat]")
    assert _error(unknown) == (
        "pipelines.yaml: pipelines[3] (multiqc).takes.outputs_of[1]: names no pipeline in this file: "
        "'samtools-stat' (did you mean 'samtools-stats'?)"
    )
    own = GOOD.replace("outputs_of: [fastp, samtools-stats]", "outputs_of: [multiqc]")
    assert (
        _error(own)
        == "pipelines.yaml: pipelines[3] (multiqc).takes.outputs_of[0]: a pipeline cannot take its own outputs"
    )
    fallback = GOOD.replace("resources: {cpu: 2.5}", "resources: {cpu: 2.5}\n    fallback: builtin-qc")
    assert (
        _error(fallback)
        == "pipelines.yaml: pipelines[0] (fastp).fallback: names no pipeline in this file: 'builtin-qc'"
        " (did you mean 'multiqc'?)"
    )


def test_cycles_are_refused() -> None:
    outputs = GOOD.replace("takes: {formats: [fastq]}", "takes: {formats: [fastq], outputs_of: [multiqc]}")
    assert _error(outputs) == (
        "pipelines.yaml: pipelines[0] (fastp).takes.outputs_of: forms a cycle: fastp -> multiqc -> fastp"
    )
    fallbacks = GOOD.replace("resources: {cpu: 2.5}", "resources: {cpu: 2.5}\n    fallback: multiqc").replace(
        "outputs: [multiqc_report.html]", "outputs: [multiqc_report.html]\n    fallback: fastp"
    )
    assert (
        _error(fallbacks) == "pipelines.yaml: pipelines[0] (fastp).fallback: forms a cycle: fastp -> multiqc -> fastp"
    )


def test_the_code_version_names_each_pipeline_and_its_version() -> None:
    pipelines = parse_pipelines(GOOD, "pipelines.yaml")
    assert pipelines_code_version(pipelines) == "fastp@1 multiqc@2 omics-fastqc@3 samtools-stats@1"
    assert pipelines_code_version(reversed(pipelines)) == pipelines_code_version(pipelines)

    described = parse_pipelines(GOOD.replace("QC and adapter report", "Quality report"), "pipelines.yaml")
    assert pipelines_code_version(described) == pipelines_code_version(pipelines)
    bumped = parse_pipelines(GOOD.replace('version: "2"', 'version: "2.1"'), "pipelines.yaml")
    assert pipelines_code_version(bumped) == "fastp@1 multiqc@2.1 omics-fastqc@3 samtools-stats@1"
    assert pipelines_code_version(pipelines[:3]) == "fastp@1 omics-fastqc@3 samtools-stats@1"
    assert pipelines_code_version(()) == ""
