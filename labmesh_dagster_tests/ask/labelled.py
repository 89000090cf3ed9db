"""A small labelled set for the extractive answerer: passages of a made-up lab, questions, and the passage that answers.

Written for labmesh (no outside source). Half the answerable questions are
paraphrased so they share few words with their answer ("animals per group" for
"3 mice per condition"); the unanswerable ones ask what no passage says, some
naming an id that is in no passage (``LIV-07``) or a topic close to the
passages' ("the antibody for the western blot"). The answerer's weights and
threshold were tuned on it; `benchmarks/` holds the larger evaluation set.
"""

from __future__ import annotations

from labmesh_dagster.core.passages import LocationKind, Passage, PassageHit, PassageLocation


def _hit(key: str, ordinal: int, text: str, location: PassageLocation, samples: tuple[str, ...] = ()) -> PassageHit:
    experiment = key.split("/")[1]
    return PassageHit(
        passage=Passage(key, ordinal, text, location),
        title=key.rsplit("/", 1)[-1],
        uri=f"/lab/{key}",
        score=1.0,
        attributes={"experiment_id": experiment, "zone": key.split("/")[0], "sample_ids": list(samples)},
    )


def _section(label: str) -> PassageLocation:
    return PassageLocation(LocationKind.SECTION, label=label)


def _lines(start: int, end: int) -> PassageLocation:
    return PassageLocation(LocationKind.LINES, start, end)


PASSAGES = [
    _hit(
        "raw/EXP-1/notes/library_prep.md",
        0,
        "# Library preparation\nLibraries were prepared with the Illumina TruSeq Stranded mRNA kit from 500 ng of "
        "total RNA. Fragmentation ran for 8 minutes at 94 °C.",
        _section("Library preparation"),
    ),
    _hit(
        "raw/EXP-1/notes/library_prep.md",
        1,
        "# RNA integrity\nAll liver samples had a RIN above 8.5; LIV-03 was the lowest at 8.6.",
        _section("RNA integrity"),
    ),
    _hit(
        "processed/EXP-1/qc/summary.txt",
        0,
        "Sample LIV-01 yielded 24.1 million read pairs with 93.4% of bases at Q30 or above.\n"
        "Sample LIV-02 yielded 19.8 million read pairs with 91.0% of bases at Q30 or above.\n"
        "Adapter content stayed below 0.5% in every library.",
        _lines(1, 3),
        ("LIV-01", "LIV-02"),
    ),
    _hit(
        "raw/EXP-1/notes/sequencing.md",
        0,
        "# Sequencing\nThe pooled library was loaded at 650 pM on a NovaSeq 6000 S4 flow cell. Reads were 2 x 150 bp, "
        "paired-end. The run finished on 12 November 2026 without errors.",
        _section("Sequencing"),
    ),
    _hit(
        "final/EXP-1/report.md",
        0,
        "# Results\nDifferential expression analysis found 412 genes up-regulated in fibrotic liver (FDR < 0.05). "
        "Col1a1 showed the largest increase, 8.2-fold.",
        _section("Results"),
    ),
    _hit(
        "final/EXP-1/report.md",
        1,
        "# Methods\nReads were aligned to GRCm39 with STAR 2.7.11 and counted with featureCounts.",
        _section("Methods"),
    ),
    _hit(
        "raw/EXP-2/protocol.md",
        0,
        "# Sample preparation\nKidney tissue was lysed in 8 M urea and digested overnight with trypsin at 37 °C. "
        "Peptides were desalted on C18 StageTips and measured on an Orbitrap Exploris 480.",
        _section("Sample preparation"),
    ),
    _hit(
        "raw/EXP-2/concentrations.csv",
        0,
        "sample,protein_ug_per_ul,assay\nKID-01,2.4,BCA\nKID-02,1.9,BCA",
        PassageLocation(LocationKind.ROWS, 1, 2),
        ("KID-01", "KID-02"),
    ),
    _hit(
        "raw/EXP-3/pilot.txt",
        0,
        "DNA concentration of PIL-02 was 35.2 ng/µl measured on a Qubit.\nThe pilot used 3 mice per condition.",
        _lines(1, 2),
        ("PIL-02",),
    ),
]

ANSWERABLE: list[tuple[str, str]] = [
    # (question, the passage id that answers it)
    ("How many read pairs did LIV-02 give?", "processed/EXP-1/qc/summary.txt#0"),
    ("What percentage of bases reached Q30 for LIV-01?", "processed/EXP-1/qc/summary.txt#0"),
    ("Which kit was used to make the libraries?", "raw/EXP-1/notes/library_prep.md#0"),
    ("What was the RIN of the liver samples?", "raw/EXP-1/notes/library_prep.md#1"),
    ("At what temperature was the kidney tissue digested?", "raw/EXP-2/protocol.md#0"),
    ("Which mass spectrometer measured the peptides?", "raw/EXP-2/protocol.md#0"),
    ("What was the protein concentration of KID-01?", "raw/EXP-2/concentrations.csv#0"),
    ("At what concentration was the pool loaded on the flow cell?", "raw/EXP-1/notes/sequencing.md#0"),
    ("What read length was sequenced?", "raw/EXP-1/notes/sequencing.md#0"),
    ("When did the sequencing run finish?", "raw/EXP-1/notes/sequencing.md#0"),
    ("How many genes were up-regulated in fibrosis?", "final/EXP-1/report.md#0"),
    ("Which gene rose the most?", "final/EXP-1/report.md#0"),
    ("Which reference genome were the reads mapped to?", "final/EXP-1/report.md#1"),
    ("What was the DNA concentration of PIL-02 in ng/µl?", "raw/EXP-3/pilot.txt#0"),
    ("How many animals per group did the pilot have?", "raw/EXP-3/pilot.txt#0"),
    ("Was there much adapter contamination?", "processed/EXP-1/qc/summary.txt#0"),
    ("How much input material went into each library?", "raw/EXP-1/notes/library_prep.md#0"),
    ("What enzyme cut the proteins?", "raw/EXP-2/protocol.md#0"),
    ("Which sample had the worst RNA integrity?", "raw/EXP-1/notes/library_prep.md#1"),
    ("Which aligner was used?", "final/EXP-1/report.md#1"),
]

UNANSWERABLE: list[str] = [
    "What is the Q30 of LIV-07?",
    "What was the DNA concentration of PIL-09?",
    "Who funded this project?",
    "What is the boiling point of ethanol?",
    "Which antibody was used for the western blot?",
    "How many cells were sorted by FACS?",
    "What is the capital of France?",
    "What was the weather on the day of sampling?",
    "Which ethics committee approved the mouse work?",
    "What was the mass spectrometer's resolution setting?",
]
