"""Tiny lab files made on the spot (FASTQ, BAM, VCF) and invocations over them, for the runner's tests.

The files are generated, never copied: reads from a seeded random genome, a
BAM written by pysam with reads placed on it, and a small VCF, so every test
owns its data and the real tools have something real to read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labmesh_dagster.connectors.store.base import ObjectStore
from labmesh_dagster.core.keys import ObjectKey
from labmesh_dagster.pipelines.spec import Pipeline

EXPERIMENT = "EXP-1"
RUN_ID = "run-0001"


def genome(length: int = 2000, seed: int = 7) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(length))


def fastq_gz(reads: int = 200, length: int = 100, seed: int = 1) -> bytes:
    """Gzipped FASTQ of ``reads`` reads cut from the seeded genome, with good and middling qualities."""
    rng, reference = random.Random(seed), genome()
    lines = []
    for index in range(reads):
        start = rng.randrange(0, len(reference) - length)
        quality = "".join(rng.choice("I?5") for _ in range(length))
        lines.append(f"@read{index}\n{reference[start : start + length]}\n+\n{quality}\n")
    return gzip.compress("".join(lines).encode("ascii"), mtime=0)


def bam(path: Path, reads: int = 60, length: int = 50) -> bytes:
    """A coordinate-sorted BAM of reads placed on one 2 kb reference, written by pysam; its bytes."""
    import pysam

    reference = genome()
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": len(reference)}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for index in range(reads):
            segment = pysam.AlignedSegment(out.header)
            start = index * 25
            segment.query_name = f"read{index}"
            segment.reference_id = 0
            segment.reference_start = start
            segment.mapping_quality = 60
            segment.cigarstring = f"{length}M"
            segment.query_sequence = reference[start : start + length]
            segment.query_qualities = pysam.qualitystring_to_array("I" * length)
            segment.flag = 0
            out.write(segment)
    return path.read_bytes()


def vcf() -> bytes:
    rows = [("chr1", 100, "A", "G", "0/1"), ("chr1", 250, "C", "T", "1/1"), ("chr1", 900, "G", "GA", "0/1")]
    header = (
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=2000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    )
    body = "".join(f"{c}\t{p}\t.\t{r}\t{a}\t50\tPASS\t.\tGT\t{g}\n" for c, p, r, a, g in rows)
    return (header + body).encode("ascii")


def put_raw(store: ObjectStore, relative_path: str, content: bytes, role: str = "input") -> dict[str, str]:
    """Put a raw file of the experiment; the invocation input naming it."""
    key = ObjectKey.for_experiment("raw", EXPERIMENT, relative_path)
    store.put(key, content)
    return {"key": str(key), "sha256": hashlib.sha256(content).hexdigest(), "role": role}


def pipeline(**fields: Any) -> dict[str, Any]:
    """A local pipeline as an invocation carries it (validated by the spec's own model first)."""
    values = {"name": "tool", "version": "1", "outputs": ["*"], **fields}
    return Pipeline.model_validate(values).model_dump(mode="json")


def invocation(
    spec: Mapping[str, Any], inputs: Sequence[Mapping[str, str]], label: str = "test", **extra: Any
) -> dict[str, Any]:
    """An invocation as planning makes one (contract section 2), its id derived the same way."""
    material = json.dumps(
        [spec["name"], spec["version"], label, sorted((item["key"], item["sha256"]) for item in inputs)]
    )
    invocation_id = f"{spec['name']}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"
    return {
        "invocation_id": invocation_id,
        "pipeline": {**spec, **extra},
        "experiment_id": EXPERIMENT,
        "label": label,
        "inputs": [dict(item) for item in inputs],
        "staging_prefix": f"processed/{EXPERIMENT}/_labmesh/runs/{RUN_ID}/{invocation_id}/",
        "publish_prefix": f"processed/{EXPERIMENT}/{spec['name']}/{label}/",
    }
