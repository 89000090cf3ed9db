"""The demo lab: a few clearly labelled experiments and instrument files, so a first start shows the flow.

`seed_demo` writes the ELN records; `drop_demo_files` then drops instrument
output into the landing zone over the first minute (as instruments would) and
a report into the final zone, through the store port like any other client.
Every file is generated from a fixed seed: the demo is the same on every machine
and needs no download.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import select
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import pysam
import yaml

from labmesh_dagster.core.keys import ObjectKey, Zone
from labmesh_dagster.ports import Ports
from labmesh_dagster.settings import Settings

DEMO_LABEL = "[DEMO]"

RECORDS: list[dict[str, Any]] = [
    {
        "id": "DEMO-RNASEQ-001",
        "title": f"{DEMO_LABEL} Liver biopsy RNA-seq",
        "description": "Bulk RNA sequencing of two liver biopsies to compare fibrosis markers. Demo data, generated.",
        "owner": "Ada Example",
        "group": "Hepatology",
        "project": "Fibrosis atlas",
        "samples": [{"id": "LIV-01", "tissue": "liver"}, {"id": "LIV-02", "tissue": "liver"}],
        "platform": "Illumina NovaSeq 6000",
        "protocol": "TruSeq stranded mRNA",
        "created": "2026-11-02",
        "tags": ["demo", "rna-seq"],
        "custom_fields": {"read_length": 100, "paired_end": True},
    },
    {
        "id": "DEMO-AMPLICON-002",
        "title": f"{DEMO_LABEL} 16S amplicon survey of soil cores",
        "description": "16S V4 amplicon sequencing of two soil cores from the north field. Demo data, generated.",
        "owner": "Grace Example",
        "group": "Microbial ecology",
        "project": "Soil microbiome",
        "samples": ["SOIL-A", "SOIL-B"],
        "platform": "Illumina MiSeq",
        "protocol": "16S V4 515F/806R",
        "created": "2026-11-05",
        "tags": ["demo", "amplicon"],
    },
]

LIMS_EXPORT: dict[str, Any] = {
    "exported_by": "demo LIMS",
    "experiments": [
        {
            "experiment_id": "DEMO-NANOPORE-003",
            "name": f"{DEMO_LABEL} Nanopore long reads of an E. coli isolate",
            "summary": "Whole-genome long-read sequencing of a clinical E. coli isolate. Demo data, generated.",
            "scientist": "Rosalind Example",
            "team": "Clinical microbiology",
            "samples": [{"sample_id": "ECOLI-7", "organism": "Escherichia coli"}],
            "instrument": "Oxford Nanopore MinION",
            "assay": "Ligation sequencing kit",
            "date": "2026-11-09",
            "keywords": "demo; long-read",
        }
    ],
}


@dataclass(frozen=True)
class IlluminaRun:
    """The run an Illumina read name carries: instrument, run number, flowcell and lane."""

    instrument: str
    run_number: int
    flowcell: str
    lane: int = 1

    def read_names(self, reads: int, read: int, index: str) -> list[str]:
        """CASAVA 1.8 read names as bcl2fastq writes them: one cluster's name in R1 and R2 alike but for the read.

        Tile and coordinates come from the read's number alone, so read 1 and
        read 2 of a pair name the same cluster.
        """
        names = []
        for number in range(reads):
            tile = 1101 + number // 1000
            x, y = 1000 + (number * 7919) % 30000, 1000 + (number * 104729) % 30000
            cluster = f"{self.instrument}:{self.run_number}:{self.flowcell}:{self.lane}:{tile}:{x}:{y}"
            names.append(f"{cluster} {read}:N:0:{index}")
        return names


NOVASEQ_RUN = IlluminaRun("A01234", 87, "HKJ5FDSXY")
"""The demo RNA-seq run: a NovaSeq 6000 S4 flowcell."""

MISEQ_RUN = IlluminaRun("M05678", 112, "000000000-K7V2P")
"""The demo amplicon run: a MiSeq v2 flowcell."""

NANOPORE_RUN_ID = "4f1c9a7e2b8d4e6fa0c3d5b7e9f1a2c4d6e8f0a1"


def nanopore_read_names(seed: int, reads: int, sample: str) -> list[str]:
    """Read names as MinKNOW writes them: a UUID, then the run, read number, channel and start time."""
    rng = random.Random(seed)
    names = []
    for number in range(reads):
        read_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        started = f"2026-11-09T{10 + number // 3600:02d}:{number // 60 % 60:02d}:{number % 60:02d}Z"
        names.append(
            f"{read_id} runid={NANOPORE_RUN_ID} read={number + 17} ch={rng.randint(1, 512)} "
            f"start_time={started} flow_cell_id=FAW12345 sample_id={sample}"
        )
    return names


def fastq(seed: int, names: list[str], lengths: tuple[int, int], gc: float = 0.5, quality: float = 36) -> bytes:
    """Deterministic FASTQ: a read per name, of random length in ``lengths``, with a given GC content.

    Qualities start near ``quality`` and fall along the read, as a sequencer's do.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    weights = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    for name in names:
        length = rng.randint(*lengths)
        sequence = "".join(rng.choices("ACGT", weights=weights, k=length))
        qualities = (33 + min(41, max(2, int(rng.gauss(quality - 8 * i / length, 3)))) for i in range(length))
        out.write(f"@{name}\n{sequence}\n+\n{''.join(map(chr, qualities))}\n")
    return out.getvalue().encode("ascii")


def _gz_fastq(seed: int, names: list[str], lengths: tuple[int, int], gc: float, quality: float = 36) -> bytes:
    return gzip.compress(fastq(seed, names, lengths, gc, quality), mtime=0)


ECOLI_CONTIG = "ECOLI-7_contig_1"
"""The isolate's draft assembly has one contig in the demo; the BAM and the VCF are against it."""
ECOLI_CONTIG_LENGTH = 12_000
ECOLI_SAMPLE = "ECOLI-7"


def _ecoli_contig() -> str:
    return "".join(random.Random(700).choices("ACGT", k=ECOLI_CONTIG_LENGTH))


def _ecoli_variants() -> list[tuple[int, str, str]]:
    """(1-based position, reference base, alternative base) of the isolate's SNVs against the contig."""
    rng = random.Random(701)
    contig = _ecoli_contig()
    variants = []
    for position in sorted(rng.sample(range(200, ECOLI_CONTIG_LENGTH - 200), 12)):
        ref = contig[position - 1]
        variants.append((position, ref, rng.choice([base for base in "ACGT" if base != ref])))
    return variants


UNMAPPED_EVERY = 15
"""Every 15th read is left unmapped, as an aligner leaves some."""


@cache
def _ecoli_reads() -> tuple[tuple[int, str, str, str, bool], ...]:
    """(start, name, sequence, qualities, mapped) of ECOLI-7's long reads, sorted by start on the contig."""
    rng = random.Random(702)
    contig = list(_ecoli_contig())
    for position, _ref, alt in _ecoli_variants():
        contig[position - 1] = alt
    isolate = "".join(contig)
    names = [name.split()[0] for name in nanopore_read_names(703, 60, ECOLI_SAMPLE)]
    reads: list[tuple[int, str, str, str]] = []
    for name in names:
        length = rng.randint(400, 1200)
        start = rng.randint(0, ECOLI_CONTIG_LENGTH - length)
        sequence = list(isolate[start : start + length])
        for _ in range(length // 200):
            spot = rng.randrange(length)
            sequence[spot] = rng.choice([base for base in "ACGT" if base != sequence[spot]])
        qualities = "".join(chr(33 + min(40, max(3, int(rng.gauss(18, 4))))) for _ in range(length))
        reads.append((start, name, "".join(sequence), qualities))
    reads.sort()
    return tuple((*read, index % UNMAPPED_EVERY != UNMAPPED_EVERY - 1) for index, read in enumerate(reads))


@cache
def ecoli_alignment() -> tuple[bytes, bytes]:
    """A coordinate-sorted BAM of ECOLI-7's long reads on its contig, and its BAI index.

    The reads carry the isolate's variants (so the VCF's calls are what the reads show) and a few
    sequencing errors; a few reads are unmapped. The read group names the sample, which is how the
    platform links the file to ECOLI-7. Blocks are written uncompressed (BGZF level 0), so the bytes
    do not depend on the machine's zlib: the demo is the same everywhere.
    """
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": ECOLI_CONTIG, "LN": ECOLI_CONTIG_LENGTH}],
        "RG": [{"ID": "ECOLI-7.run1", "SM": ECOLI_SAMPLE, "PL": "ONT", "PM": "MinION", "LB": "ECOLI-7.lig"}],
        "CO": [f"{DEMO_LABEL} labmesh demo: long reads of ECOLI-7 on its draft contig, generated"],
    }
    with tempfile.TemporaryDirectory(prefix="labmesh-demo-") as folder:
        path = Path(folder, "ECOLI-7.bam")
        with pysam.AlignmentFile(str(path), "wb0", header=header) as bam:
            for index, (start, name, sequence, qualities, mapped) in enumerate(_ecoli_reads()):
                segment = pysam.AlignedSegment(bam.header)
                segment.query_name = name
                segment.query_sequence = sequence
                segment.query_qualities = pysam.qualitystring_to_array(qualities)
                segment.reference_id = 0
                segment.reference_start = start
                segment.set_tag("RG", "ECOLI-7.run1")
                if mapped:
                    segment.flag = 16 if index % 2 else 0
                    segment.mapping_quality = 60
                    segment.cigarstring = f"{len(sequence)}M"
                else:
                    # Placed where its mate would be if it had one: samtools keeps such reads in coordinate order.
                    segment.flag = 4
                bam.write(segment)
        pysam.index(str(path))
        return path.read_bytes(), Path(f"{path}.bai").read_bytes()


def ecoli_variants_vcf() -> bytes:
    """ECOLI-7's SNVs the reads cover, as a plain VCF 4.2: haploid calls with the BAM's own read depth."""
    lines = [
        "##fileformat=VCFv4.2",
        "##source=labmesh demo (generated)",
        f"##contig=<ID={ECOLI_CONTIG},length={ECOLI_CONTIG_LENGTH}>",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth of the sample">',
        f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{ECOLI_SAMPLE}",
    ]
    reads = [(start, len(sequence)) for start, _name, sequence, _qualities, mapped in _ecoli_reads() if mapped]
    for position, ref, alt in _ecoli_variants():
        depth = sum(1 for start, length in reads if start < position <= start + length)
        if depth:
            quality = min(60, 10 * depth)
            fields = [ECOLI_CONTIG, str(position), ".", ref, alt, str(quality), "PASS", f"DP={depth}", "GT:DP"]
            lines.append("\t".join([*fields, f"1:{depth}"]))
    return ("\n".join(lines) + "\n").encode("ascii")


@dataclass(frozen=True)
class DemoDrop:
    """A file the demo drops ``after`` seconds from start."""

    after: float
    key: ObjectKey
    content: Callable[[], bytes]


def demo_drops() -> list[DemoDrop]:
    """The demo's files and when they land: what a NovaSeq, a MiSeq and a MinION would write.

    The E. coli isolate also has its reads aligned (a BAM with its index) and its variants called
    (a VCF), so the built-in samtools and bcftools pipelines have input.
    """
    rnaseq, amplicon, nanopore = "DEMO-RNASEQ-001", "DEMO-AMPLICON-002", "DEMO-NANOPORE-003"
    drops = []
    for seed, (sample, index) in enumerate([("LIV-01", "CGTACTAG+CTCTCTAT"), ("LIV-02", "AGGCAGAA+TATCCTCT")]):
        for read in (1, 2):
            names = NOVASEQ_RUN.read_names(2000, read, index)
            drops.append(
                DemoDrop(
                    5,
                    ObjectKey.for_experiment(Zone.LANDING, rnaseq, f"run-2026-11-03/{sample}_R{read}.fastq.gz"),
                    partial(_gz_fastq, 100 * seed + read, names, (100, 100), 0.48),
                )
            )
    for seed, (sample, index) in enumerate([("SOIL-A", "ATTACTCG"), ("SOIL-B", "TCCGGAGA")]):
        drops.append(
            DemoDrop(
                20,
                ObjectKey.for_experiment(Zone.LANDING, amplicon, f"{sample}.fastq"),
                partial(fastq, 200 + seed, MISEQ_RUN.read_names(1500, 1, index), (250, 250), 0.55),
            )
        )
    drops.append(
        DemoDrop(
            20,
            ObjectKey.for_experiment(Zone.LANDING, amplicon, "SampleSheet.csv"),
            lambda: b"Sample_ID,Sample_Name,index\nSOIL-A,north core A,ATTACTCG\nSOIL-B,north core B,TCCGGAGA\n",
        )
    )
    drops.append(
        DemoDrop(
            40,
            ObjectKey.for_experiment(Zone.LANDING, nanopore, "ECOLI-7.fastq.gz"),
            partial(_gz_fastq, 300, nanopore_read_names(300, 400, "ECOLI-7"), (500, 5000), 0.51, 18),
        )
    )
    drops.extend(
        [
            DemoDrop(
                40,
                ObjectKey.for_experiment(Zone.LANDING, nanopore, "alignment/ECOLI-7.bam"),
                lambda: ecoli_alignment()[0],
            ),
            DemoDrop(
                40,
                ObjectKey.for_experiment(Zone.LANDING, nanopore, "alignment/ECOLI-7.bam.bai"),
                lambda: ecoli_alignment()[1],
            ),
            DemoDrop(40, ObjectKey.for_experiment(Zone.LANDING, nanopore, "variants/ECOLI-7.vcf"), ecoli_variants_vcf),
        ]
    )
    drops.append(
        DemoDrop(
            60,
            ObjectKey.for_experiment(Zone.FINAL, rnaseq, "report/fibrosis-summary.md"),
            lambda: (
                f"# {DEMO_LABEL} Fibrosis marker summary\n\nLIV-01 and LIV-02 show comparable COL1A1 expression.\n"
            ).encode(),
        )
    )
    return drops


def home_is_empty(settings: Settings) -> bool:
    """No records and no data yet: the only time the demo seeds itself."""
    for folder in (settings.eln_dir, settings.store_dir):
        if folder.exists() and any(path.is_file() for path in folder.rglob("*")):
            return False
    return True


def seed_demo(settings: Settings) -> list[Path]:
    """Write the demo's ELN records (idempotent: existing files are left as they are)."""
    settings.eln_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for record in RECORDS:
        path = settings.eln_dir / f"{record['id']}.yaml"
        if not path.exists():
            path.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
            written.append(path)
    export = settings.eln_dir / "demo-lims-export.json"
    if not export.exists():
        export.write_text(json.dumps(LIMS_EXPORT, indent=2) + "\n", encoding="utf-8")
        written.append(export)
    return written


DEMO_USER = "demo"
DEMO_PASSWORD = "labmesh demo lab"
"""The demo lab's portal account: printed at start, for the lab's own machine only."""


def add_demo_user(settings: Settings) -> tuple[str, str]:
    """A portal user in the demo experiments' groups (kept if it exists); its name and password."""
    from labmesh_dagster.access.errors import UserExists
    from labmesh_dagster.access.stores import open_users

    groups = [record["group"] for record in RECORDS] + [item["team"] for item in LIMS_EXPORT["experiments"]]
    with contextlib.suppress(UserExists):
        open_users(settings.access).add(DEMO_USER, DEMO_PASSWORD, groups=groups)
    return DEMO_USER, DEMO_PASSWORD


def drop_demo_files(
    settings: Settings, *, speed: float = 1.0, keep_going: Callable[[], bool] = lambda: True
) -> list[ObjectKey]:
    """Drop the demo's instrument files on schedule; stops early when ``keep_going`` turns false."""
    store = Ports(settings).store()
    start = time.monotonic()
    dropped: list[ObjectKey] = []
    for drop in sorted(demo_drops(), key=lambda item: item.after):
        while time.monotonic() - start < drop.after / speed:
            if not keep_going():
                return dropped
            time.sleep(0.2)
        if not store.exists(drop.key):
            store.put(drop.key, drop.content())
            dropped.append(drop.key)
            print(f"labmesh demo: dropped {drop.key}", file=sys.stderr, flush=True)
    return dropped


def main(argv: list[str] | None = None) -> None:
    """``python -m labmesh_dagster.demo [--watch-fd N]``: drop the files; stop if the platform that started us exits.

    `labmesh dev` hands in the read end of a pipe the platform holds open: it
    reads end-of-file once the platform has exited. Started by hand, the
    dropper watches its parent instead.
    """
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--watch-fd"]:
        watched = int(args[1])
        drop_demo_files(Settings.from_env(), keep_going=lambda: not select.select([watched], [], [], 0)[0])
        return
    parent = os.getppid()
    drop_demo_files(Settings.from_env(), keep_going=lambda: os.getppid() == parent)


if __name__ == "__main__":
    main()
