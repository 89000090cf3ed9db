"""The README's `labmesh extract` example runs as written, on the example files the repository ships.

We saw it name files that did not exist. Pinned here: the command in the
README's extract section names only paths in the repository, runs from its
root with exit code 0, describes every file without an error, and shows the
links the README promises (each read to its mate, its run and its sample).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_extract_command() -> list[str]:
    """The `labmesh extract` line of the README's code blocks, as argv."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines() if "labmesh extract " in line]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split("#", 1)[0])


def test_the_readme_extract_example_runs_on_files_the_repository_ships() -> None:
    argv = readme_extract_command()
    assert argv[0] == ".venv/bin/labmesh" and argv[1] == "extract"
    named = [argument for argument in argv[2:] if not argument.startswith("--")]
    missing = [name for name in named if not (ROOT / name).exists()]
    assert not missing, f"the README names files that do not exist: {missing}"

    done = subprocess.run(
        [sys.executable, "-m", "labmesh_dagster.cli", *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    decoder, text, documents = json.JSONDecoder(), done.stdout.strip(), []
    while text:  # --pretty: one indented object after another
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    by_name = {Path(document["file"]).name: document for document in documents}
    assert not [name for name, document in by_name.items() if "error" in document or "skipped" in document]
    reads = by_name["LIV-01_S1_L001_R1_001.fastq.gz"]
    assert reads["format"] == "fastq.gz" and reads["metadata"]["reads"] > 0
    assert reads["links"]["mate"].endswith("LIV-01_S1_L001_R2_001.fastq.gz")
    assert reads["links"]["run"].endswith("RunInfo.xml") and reads["links"]["sample_id"] == "LIV-01"
    assert by_name["calls.vcf.gz"]["metadata"]["samples"] == ["LIV-01", "LIV-02"]
