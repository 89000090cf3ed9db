"""The evaluation's documents: the demo lab's files plus lab documents written here, with precise facts to ask about.

Search quality is measured on files like those labmesh indexes in a lab:
PDF reports, Markdown protocols and notes with sections, CSV and TSV tables
(QC tables, sample preparation, plate reads, passage logs, a freezer
inventory) and plain text logs, spread over the three demo experiments
(`labmesh_dagster.demo`) and two more experiments in other groups, so that
access can be asked about too. Every fact (a concentration and its unit, an
instrument setting, a sample id, a QC result, a deviation, a storage place,
a date, a person) is written out here, so `questions.yaml` can quote it and
a test can check each quote is in its file. Nothing is random: the bytes are
the same on every run.

`evaluation_files` lists every file with the zone it is published in;
`evaluation_records` the ELN records of the experiments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from benchmarks.evaluation.pdf import text_pdf
from labmesh_dagster import demo
from labmesh_dagster.core.experiment import ExperimentRecord, record_from_mapping
from labmesh_dagster.core.keys import Zone

RNASEQ, AMPLICON, NANOPORE = "DEMO-RNASEQ-001", "DEMO-AMPLICON-002", "DEMO-NANOPORE-003"
PROTEOMICS, STEMCELL = "EVAL-PROTEOMICS-004", "EVAL-STEMCELL-005"

EXTRA_RECORDS: list[dict[str, Any]] = [
    {
        "id": PROTEOMICS,
        "title": "[EVAL] Fibroblast proteome after TGF-beta",
        "description": "Data-independent acquisition of primary lung fibroblasts, control and TGF-beta 48 h.",
        "owner": "Dorothy Example",
        "group": "Proteomics",
        "project": "Matrix remodelling",
        "samples": ["PX-01", "PX-02", "PX-03", "PX-04", "PX-05", "PX-06"],
        "platform": "Thermo Orbitrap Exploris 480",
        "protocol": "S-Trap digestion, DIA",
        "created": "2026-11-12",
        "tags": ["evaluation", "proteomics"],
    },
    {
        "id": STEMCELL,
        "title": "[EVAL] iPSC lines and cardiomyocyte differentiation",
        "description": "Maintenance, banking and cardiac differentiation of two iPSC lines.",
        "owner": "Lise Example",
        "group": "Stem Cells",
        "project": "Cardiac models",
        "samples": ["IPSC-L1", "IPSC-L2"],
        "platform": "Cell culture",
        "protocol": "GiWi cardiomyocyte differentiation",
        "created": "2026-11-02",
        "tags": ["evaluation", "cell-culture"],
    },
]
"""ELN records of the two experiments the evaluation adds to the demo lab's three."""


@dataclass(frozen=True)
class EvalFile:
    """A file of the evaluation: where it is published, its bytes, and its words as a reader sees them.

    ``text`` is what questions quote: a text file's content, a PDF's pages
    (``pages``) one after the other. Sequence files have none.
    """

    zone: Zone
    experiment_id: str
    path: str
    content: bytes
    text: str
    pages: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The object key, which is also the content index's document id: ``raw/EXP-1/notes.md``."""
        return f"{self.zone.value}/{self.experiment_id}/{self.path}"


def _text(zone: Zone, experiment_id: str, path: str, text: str) -> EvalFile:
    return EvalFile(zone, experiment_id, path, text.encode("utf-8"), text)


def _pdf(zone: Zone, experiment_id: str, path: str, pages: list[str], *, title: str, author: str) -> EvalFile:
    content = text_pdf(pages, title=title, author=author)
    return EvalFile(zone, experiment_id, path, content, "\n\n".join(pages), tuple(pages))


RNA_EXTRACTION = """\
# RNA extraction from liver biopsies

Protocol version 3.2, approved by Ada Example on 2026-10-28 for the Fibrosis atlas biopsies.

## Reagents

- TRIzol reagent, 1 mL per 50 mg of tissue
- Chloroform, 0.2 mL per mL of TRIzol
- RNeasy Mini kit (Qiagen), lot 172034521
- RNase-free DNase set, 27 Kunitz units per column
- 70% ethanol, made fresh from molecular-grade ethanol

## Homogenisation

Biopsies arrive in RNAlater and are kept at 4 °C for no longer than 24 hours.
Cut 20-30 mg on a cold plate and homogenise in a Precellys Evolution at 6,500 rpm,
2 cycles of 20 s with a 30 s pause. Keep the lysate on ice between cycles.

## Phase separation

Incubate the homogenate for 5 min at room temperature, add chloroform, shake for 15 s
and centrifuge at 12,000 x g for 15 min at 4 °C. Transfer the upper aqueous phase
to a new tube without touching the interphase.

## Column clean-up and DNase digestion

Mix the aqueous phase with one volume of 70% ethanol and load it on an RNeasy column.
Digest on the column with DNase I for 15 min at 20-25 °C. Elute in 30 µL of RNase-free water.

## Storage

Purified RNA is aliquoted into LoBind tubes and stored at -80 °C in freezer F-12, rack 3.
No more than two freeze-thaw cycles are allowed before library preparation.

## Deviations

On 2026-11-01 the Precellys was out of service: LIV-02 was homogenised with a TissueRuptor II
rotor-stator at medium speed for 30 s instead. Recorded by Ada Example.
"""

LIBRARY_QC = """\
sample_id,rna_conc_ng_per_ul,rin,library_conc_nM,mean_fragment_bp,prep_date,operator,qc_status
LIV-01,212.4,8.7,14.2,342,2026-11-02,Ada Example,PASS
LIV-02,96.8,6.1,9.8,318,2026-11-02,Ada Example,PASS with note: RIN below 7
UHRR-CTRL,500.0,9.8,15.1,355,2026-11-02,Ada Example,PASS
"""

NOVASEQ_LOG = """\
2026-11-03 08:12:04 INFO  Run A01234_0087_HKJ5FDSXY started by Ada Example
2026-11-03 08:12:05 INFO  Flowcell HKJ5FDSXY (S4) loaded on side A, lanes 1-2 used
2026-11-03 08:12:40 INFO  Recipe: 101-10-10-101 cycles, paired end
2026-11-03 08:14:02 INFO  PhiX spike-in 1% confirmed
2026-11-03 09:47:15 WARN  Chiller temperature 23.4 C above set point 22.0 C; recovered after 6 min
2026-11-03 21:30:51 INFO  Cycle 101 of 222 completed
2026-11-04 11:05:33 INFO  Run completed after 222 cycles
2026-11-04 11:06:10 INFO  Output copied to //seqstore/novaseq/A01234_0087
"""

SEQUENCING_REPORT = [
    """\
Sequencing report: Liver biopsy RNA-seq (DEMO-RNASEQ-001)
Prepared by the Genomics Core for Ada Example on 2026-11-06.

Run summary
Instrument Illumina NovaSeq 6000 A01234, run 87, flowcell HKJ5FDSXY.
Total yield was 812 Gb with 91.3% of bases at or above Q30. Clusters passing filter: 78.5%.

Per-sample output
LIV-01 produced 48.2 million read pairs and LIV-02 produced 41.7 million read pairs.
Duplication was 12% for LIV-01 and 19% for LIV-02.""",
    """\
Alignment
Reads were aligned to GRCh38 with STAR 2.7.11a. Unique mapping rate 92.4% for LIV-01 and 88.9% for LIV-02.
Ribosomal content stayed below 2% in both libraries.

Conclusions
Both libraries are fit for differential expression analysis. LIV-02 has lower RNA integrity and
should be interpreted with care; a replacement biopsy was not available.""",
]

FIELD_NOTES = """\
# Field notes: north field soil cores

## Collection

Cores were taken on 2026-10-21 between 09:30 and 11:00 by Grace Example and Tom Example,
from plot N3 of the Wexford research farm.

## Sites

SOIL-A: 52.3361 N, 6.4633 W, under winter wheat stubble, depth 0-15 cm.
SOIL-B: 52.3358 N, 6.4641 W, grass margin beside the drainage ditch, depth 0-15 cm.

## Conditions

Overnight rain of about 8 mm; the soil was wet and sticky. Air temperature 11 °C at sampling.

## Handling

Each core was passed through a 2 mm sieve and 0.25 g went into a PowerBead tube.
Tubes travelled on dry ice and were kept at -20 °C until extraction on 2026-10-23.
"""

SOIL_EXTRACTION_LOG = """\
DNA extraction log - DEMO-AMPLICON-002
Kit: DNeasy PowerSoil Pro, lot 169032411
Date: 2026-10-23  Operator: Grace Example
Bead beating: Vortex Adapter at maximum speed for 10 min
SOIL-A  input 0.25 g  eluted 100 uL  Qubit 18.6 ng/uL  A260/280 1.84
SOIL-B  input 0.25 g  eluted 100 uL  Qubit 7.2 ng/uL  A260/280 1.71
Extraction blank EB-1  Qubit below detection (<0.05 ng/uL)
Note: SOIL-B lysate was brown after bead beating; an extra wash with solution CD3 was done.
Extracts stored at -20 C in box AMP-02.
"""

LIBRARY_QUANT = """\
well\tsample\ttype\tfluorescence_rfu\tconc_ng_per_ul\tpcr_cycles
H1\tSTD-1\tstandard\t24900\t20.0\t
H2\tSTD-2\tstandard\t12480\t10.0\t
H3\tSTD-3\tstandard\t2530\t2.0\t
H4\tSTD-4\tstandard\t260\t0.2\t
A1\tSOIL-A\tsample\t15234\t12.4\t30
A2\tSOIL-B\tsample\t9810\t8.0\t32
A3\tNTC\tno-template control\t112\t0.1\t32
A4\tZymoMock\tpositive control\t17750\t14.5\t30
"""

DIVERSITY_REPORT = [
    """\
16S diversity report: north field soil cores (DEMO-AMPLICON-002)
Analysis by Grace Example, 2026-11-12. Pipeline: QIIME 2 2026.4 with DADA2, taxonomy from SILVA 138.2.

Read filtering
After DADA2 denoising and chimera removal, SOIL-A kept 1,402 reads and SOIL-B kept 1,377 reads.
Samples were rarefied to 1,300 reads.

Alpha diversity
SOIL-A: Shannon index 6.21, 1,842 observed ASVs. SOIL-B: Shannon index 5.37, 1,106 observed ASVs.""",
    """\
Community composition
Acidobacteriota dominate SOIL-A at 24% relative abundance; Proteobacteria dominate SOIL-B at 31%.
The ZymoMock positive control recovered all eight expected bacterial genera.

Interpretation
The wheat stubble plot holds the richer community. The margin core is wetter and closer to the ditch,
which may explain its larger share of Proteobacteria.""",
]

ISOLATE_NOTES = """\
# Isolate ECOLI-7

## Origin

Isolated from a urine culture at the regional hospital on 2026-10-30, referred by Dr. Niamh Example
for suspected ESBL production.

## Culture

Grown overnight on MacConkey agar at 37 °C, then a single colony in 5 mL LB broth,
shaken at 200 rpm for 16 h.

## DNA extraction

High-molecular-weight DNA was extracted with the Monarch HMW DNA kit.
Yield 4.1 µg, A260/280 1.89, fragment N50 38 kb on the TapeStation.

## Biosafety and storage

Handled at containment level 2. Glycerol stocks (25% glycerol) are stored at -80 °C
in freezer F-3, box CM-14, position 22.
"""

MINKNOW_LOG = """\
2026-11-09 09:58:12 Flow cell FAW12345 check: 1,412 pores available
2026-11-09 10:00:03 Sequencing started with kit SQK-LSK114, run 4f1c9a7e
2026-11-09 10:00:04 Basecalling with Dorado 0.8, high-accuracy model, minimum q-score 9
2026-11-09 13:15:27 Pores refreshed: nuclease flush and reload of 200 fmol library
2026-11-09 22:00:00 Run stopped after 12 h with 1.9 Gb of estimated bases
"""

ASSEMBLY_REPORT = [
    """\
Genome assembly report: ECOLI-7 (DEMO-NANOPORE-003)
Rosalind Example, Clinical microbiology, 2026-11-14.

Assembly
Reads were assembled with Flye 2.9.5 and polished with Medaka 2.0.
The chromosome is circular, 5,131,204 bp long, at 142x coverage.

Plasmids
pECO7-1 is 93,410 bp, replicon IncFII, and carries blaCTX-M-15.
pECO7-2 is a small cryptic plasmid of 4,072 bp.""",
    """\
Typing
MLST assigns sequence type ST131, serotype O25b:H4.

Resistance genes
Acquired resistance genes found by AMRFinderPlus: blaCTX-M-15, aac(6')-Ib-cr and tet(A).

Conclusion
ECOLI-7 is an ESBL-producing ST131 isolate, consistent with the ceftriaxone resistance the hospital measured.""",
]

LCMS_METHOD = """\
# LC-MS/MS method: DIA on the Exploris 480

## Chromatography

Column Aurora Ultimate 25 cm x 75 µm C18, kept at 50 °C. Flow 300 nL/min.
Gradient 3-28% B over 90 min, then 28-40% B in 10 min; B is 80% acetonitrile with 0.1% formic acid.

## Mass spectrometry

MS1 at 120,000 resolution over 350-1400 m/z, AGC target 300%.
DIA with 40 variable windows, MS2 at 30,000 resolution, HCD collision energy 28%.

## Injection

500 ng of peptides per injection, loaded in 0.1% formic acid.
A HeLa digest standard is injected after every 12 samples.
"""

PROTEOMICS_PREP = """\
sample_id,condition,protein_ug_bca,digest,trypsin_ratio,peptide_ug_after_cleanup,notes
PX-01,control,105.2,S-Trap,1:25,61.0,
PX-02,control,98.7,S-Trap,1:25,58.3,
PX-03,control,101.9,S-Trap,1:25,60.1,
PX-04,TGF-beta 48 h,110.4,S-Trap,1:25,64.8,
PX-05,TGF-beta 48 h,87.6,S-Trap,1:25,41.2,partial loss during cleanup
PX-06,TGF-beta 48 h,103.3,S-Trap,1:25,59.9,
"""

PROTEOMICS_QC = [
    """\
Proteomics QC summary (EVAL-PROTEOMICS-004)
Dorothy Example, Proteomics, 2026-11-20.

Identifications
Searched with DIA-NN 1.9 against UniProt human reviewed proteins (20,428 entries) at 1% FDR.
Proteins identified per sample ranged from 6,812 (PX-05) to 7,455 (PX-02).

Reproducibility
Median CV of protein intensities within a condition: 8.4% for control and 11.7% for TGF-beta.""",
    """\
System suitability
The HeLa standard gave 7,902 proteins in every block. Retention time drift stayed below 0.3 min across the batch.

Flags
PX-05 was flagged for a lower peptide load after cleanup; a re-injection on 2026-11-18 confirmed its profile.""",
]

MS_MAINTENANCE_LOG = """\
2026-11-14 09:10 Dorothy Example: ion transfer tube replaced, source cleaned
2026-11-14 11:40 Dorothy Example: mass calibration passed, error 0.8 ppm
2026-11-16 15:05 Dorothy Example: unstable spray during PX-03 injection; emitter changed and column re-equilibrated
2026-11-17 08:30 Kary Example: nitrogen generator service, instrument idle for 3 h
"""

PASSAGE_LOG = """\
date\tline\tpassage\tsplit_ratio\tconfluence_pct\tmedium\toperator\tobservation
2026-11-02\tIPSC-L1\tP23\t1:8\t80\tmTeSR Plus\tLise Example\tcompact colonies
2026-11-02\tIPSC-L2\tP31\t1:6\t75\tmTeSR Plus\tLise Example\tspontaneous differentiation at colony edges, scraped off
2026-11-06\tIPSC-L1\tP24\t1:8\t85\tmTeSR Plus\tKary Example\tnormal
2026-11-06\tIPSC-L2\tP32\t1:6\t70\tmTeSR Plus\tKary Example\tnormal
2026-11-10\tIPSC-L1\tP25\t1:10\t90\tmTeSR Plus\tLise Example\tnormal; cells banked
"""

DIFFERENTIATION = """\
# Cardiomyocyte differentiation (GiWi)

## Day 0

Start when the monolayer reaches 85-95% confluence. Replace the medium with RPMI 1640
plus B-27 minus insulin containing 6 µM CHIR99021.

## Day 2

Remove CHIR99021 after exactly 48 h and feed RPMI plus B-27 minus insulin.

## Day 3

Add 5 µM IWP2 for 48 h.

## Day 7 onward

Switch to RPMI plus B-27 with insulin and refresh every 2-3 days. Beating is expected from day 8 to 10.

## Metabolic selection

On days 10 to 14, culture in glucose-free RPMI with 4 mM sodium lactate to enrich cardiomyocytes.

## Quality control

On day 15, flow cytometry for cardiac troponin T (cTnT); batches below 80% cTnT-positive cells are discarded.
"""

CELL_LINE_QC = [
    """\
Cell line QC: IPSC-L1 and IPSC-L2 (EVAL-STEMCELL-005)
Lise Example, Stem Cells, 2026-11-13.

Mycoplasma
MycoAlert test on 2026-11-08: IPSC-L1 ratio 0.62, negative; IPSC-L2 ratio 0.71, negative. Positive control ratio 4.8.

Karyotype
G-banding of 20 metaphases by the Cytogenetics Core on 2026-11-12.
IPSC-L1: 46,XX, normal. IPSC-L2: 46,XY with a gain of 20q11.21 in 6 of 20 metaphases.""",
    """\
Recommendation
IPSC-L2 must not be used beyond passage 35. Thaw an earlier bank of IPSC-L2 for new differentiations.""",
]

INCUBATOR_LOG = """\
2026-11-04 07:50 INC-4 alarm: CO2 at 3.1% (set point 5.0%)
2026-11-04 08:20 CO2 cylinder B changed by facilities
2026-11-04 08:45 INC-4 back at 5.0% CO2
2026-11-09 16:00 Humidity pan of INC-4 refilled with sterile water
2026-11-11 10:15 Dry-heat decontamination of INC-4 at 180 °C booked for 2026-11-20
"""

CRYO_INVENTORY = """\
vial_id,line,passage,frozen_on,cells_per_vial,medium,location
CB-0139,IPSC-L1,P25,2026-11-10,1.0e6,CryoStor CS10,LN2 tank T2 rack 5 box 3 position 1
CB-0140,IPSC-L1,P25,2026-11-10,1.0e6,CryoStor CS10,LN2 tank T2 rack 5 box 3 position 2
CB-0141,IPSC-L1,P25,2026-11-10,1.0e6,CryoStor CS10,LN2 tank T2 rack 5 box 3 position 3
CB-0097,IPSC-L2,P28,2026-09-15,1.5e6,CryoStor CS10,LN2 tank T1 rack 2 box 7 position 4
CB-0098,IPSC-L2,P28,2026-09-15,1.5e6,CryoStor CS10,LN2 tank T1 rack 2 box 7 position 5
"""


def _generated_files() -> list[EvalFile]:
    raw, final = Zone.RAW, Zone.FINAL
    return [
        _text(raw, RNASEQ, "protocols/rna-extraction.md", RNA_EXTRACTION),
        _text(raw, RNASEQ, "library-prep/library-qc.csv", LIBRARY_QC),
        _text(raw, RNASEQ, "run-2026-11-03/run-log.txt", NOVASEQ_LOG),
        _pdf(
            final,
            RNASEQ,
            "report/sequencing-report.pdf",
            SEQUENCING_REPORT,
            title="Sequencing report DEMO-RNASEQ-001",
            author="Genomics Core",
        ),
        _text(raw, AMPLICON, "field-notes.md", FIELD_NOTES),
        _text(raw, AMPLICON, "dna-extraction-log.txt", SOIL_EXTRACTION_LOG),
        _text(raw, AMPLICON, "pcr/library-quant.tsv", LIBRARY_QUANT),
        _pdf(
            final,
            AMPLICON,
            "report/diversity-report.pdf",
            DIVERSITY_REPORT,
            title="16S diversity report",
            author="Grace Example",
        ),
        _text(raw, NANOPORE, "isolate-notes.md", ISOLATE_NOTES),
        _text(raw, NANOPORE, "minknow-run-log.txt", MINKNOW_LOG),
        _pdf(
            final,
            NANOPORE,
            "assembly-report.pdf",
            ASSEMBLY_REPORT,
            title="Genome assembly report ECOLI-7",
            author="Rosalind Example",
        ),
        _text(raw, PROTEOMICS, "methods/lcms-method.md", LCMS_METHOD),
        _text(raw, PROTEOMICS, "sample-prep.csv", PROTEOMICS_PREP),
        _text(raw, PROTEOMICS, "maintenance-log.txt", MS_MAINTENANCE_LOG),
        _pdf(
            final, PROTEOMICS, "qc-summary.pdf", PROTEOMICS_QC, title="Proteomics QC summary", author="Dorothy Example"
        ),
        _text(raw, STEMCELL, "passage-log.tsv", PASSAGE_LOG),
        _text(raw, STEMCELL, "protocols/cardiomyocyte-differentiation.md", DIFFERENTIATION),
        _text(raw, STEMCELL, "incubator-log.txt", INCUBATOR_LOG),
        _text(raw, STEMCELL, "cryo-inventory.csv", CRYO_INVENTORY),
        _pdf(final, STEMCELL, "cell-line-qc.pdf", CELL_LINE_QC, title="Cell line QC", author="Lise Example"),
    ]


def _demo_files(sequences: bool) -> list[EvalFile]:
    """The demo lab's files where promotion puts them: instrument output in raw, the report in final."""
    files = []
    for drop in demo.demo_drops():
        zone = Zone.RAW if drop.key.zone is Zone.LANDING else drop.key.zone
        # Binary instrument output (reads, alignments and their index) is data, not a document to read.
        sequence = ".fastq" in drop.key.name or drop.key.name.endswith((".bam", ".bai"))
        if sequence and not sequences:
            continue
        content = drop.content()
        text = "" if sequence else content.decode("utf-8")
        files.append(EvalFile(zone, drop.key.experiment_id, drop.key.relative_path, content, text))
    return files


ROUTINE_STUDIES = [
    # (group, owner, sample prefix, tissue, platform)
    ("Hepatology", "Ada Example", "HEP", "liver organoid", "Illumina NovaSeq 6000"),
    ("Hepatology", "Carl Example", "HCC", "tumour resection", "Illumina NextSeq 2000"),
    ("Microbial ecology", "Grace Example", "RIV", "river sediment", "Illumina MiSeq"),
    ("Microbial ecology", "Tom Example", "GUT", "mouse caecum", "Illumina MiSeq"),
    ("Clinical microbiology", "Rosalind Example", "KPN", "blood culture isolate", "Oxford Nanopore MinION"),
    ("Clinical microbiology", "Linus Example", "SAU", "wound swab isolate", "Illumina NextSeq 2000"),
    ("Proteomics", "Dorothy Example", "PLA", "plasma", "Thermo Orbitrap Exploris 480"),
    ("Proteomics", "Emmy Example", "CSF", "cerebrospinal fluid", "Bruker timsTOF Pro 2"),
    ("Stem Cells", "Lise Example", "NPC", "neural progenitor", "Cell culture"),
    ("Stem Cells", "Kary Example", "HSC", "cord blood", "Illumina NextSeq 2000"),
    ("Immunology", "Barbara Example", "PBM", "PBMC", "10x Chromium"),
    ("Immunology", "Francis Example", "TCL", "T cell clone", "Illumina NovaSeq 6000"),
]
"""Routine studies whose files surround the ones asked about: similar words, other samples and numbers.

A question then has to find its passage among many that look alike, as in a
lab's store, rather than among a handful of files that differ in every word.
"""


def routine_id(number: int) -> str:
    return f"EVAL-ROUTINE-{number:03d}"


def _routine_files(number: int, study: tuple[str, str, str, str, str]) -> list[EvalFile]:
    """Four files of a routine study, their figures drawn from a generator seeded with the study's number."""
    group, owner, prefix, tissue, platform = study
    rng = random.Random(1000 + number)
    experiment = routine_id(number)
    samples = [f"{prefix}-{index:02d}" for index in range(1, 7)]
    day = 1 + number
    qc = ["sample_id,conc_ng_per_ul,integrity,library_conc_nM,mean_fragment_bp,operator,qc_status"]
    for sample in samples:
        integrity = round(rng.uniform(5.5, 9.8), 1)
        status = "PASS" if integrity >= 6.5 else "FAIL: low integrity"
        qc.append(
            f"{sample},{rng.uniform(20, 400):.1f},{integrity},{rng.uniform(2, 20):.1f},"
            f"{rng.randint(250, 480)},{owner},{status}"
        )
    freezer, rack = f"F-{rng.randint(1, 9)}", rng.randint(1, 8)
    spin, minutes = rng.choice((500, 1000, 3000, 16000)), rng.choice((5, 10, 20))
    protocol = f"""\
# Sample handling for {tissue} ({experiment})

## Receipt

Samples {samples[0]} to {samples[-1]} are logged on arrival and checked against the manifest by {owner}.

## Processing

Spin at {spin} x g for {minutes} min at {rng.choice((4, 20))} °C, then wash twice in cold PBS.
Lyse in {rng.choice((200, 350, 600))} µL of buffer RLT with beta-mercaptoethanol.

## Storage

Aliquots are stored at {rng.choice((-20, -80))} °C in freezer {freezer}, rack {rack}, until analysis.
"""

    def clock(hour: int) -> str:
        return f"{hour:02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"

    log = [
        f"2026-11-{day:02d} {clock(8)} INFO  Run {experiment} started by {owner}",
        f"2026-11-{day:02d} {clock(9)} INFO  Consumables checked, lot {rng.randint(100000, 999999)}",
        f"2026-11-{day:02d} {clock(rng.randint(10, 19))} WARN  Fluidics pressure {rng.uniform(1.1, 2.9):.1f} bar"
        f" outside range; run paused for {rng.randint(2, 15)} min",
        f"2026-11-{day + 1:02d} {clock(rng.randint(1, 9))} INFO  Run completed",
    ]
    q30 = rng.uniform(80, 95)
    report = [
        f"""\
Summary report: {tissue} study ({experiment})
{group}, {owner}, 2026-11-{day + 3:02d}. Platform {platform}.

Output
Total yield {rng.randint(20, 900)} Gb; {q30:.1f}% of bases at or above Q30.
Samples {samples[0]} to {samples[-1]} each produced {rng.randint(10, 30)} to {rng.randint(31, 60)} million reads.

Quality
Mapping or identification rate {rng.uniform(70, 97):.1f}% on average. No sample was excluded.""",
        f"""\
Conclusions
The {tissue} data are fit for the planned analysis. Storage follows the handling protocol (freezer {freezer}).""",
    ]
    return [
        _text(Zone.RAW, experiment, "qc/sample-qc.csv", "\n".join(qc) + "\n"),
        _text(Zone.RAW, experiment, "protocols/sample-handling.md", protocol),
        _text(Zone.RAW, experiment, "run-log.txt", "\n".join(log) + "\n"),
        _pdf(Zone.FINAL, experiment, "report/summary.pdf", report, title=f"Summary report {experiment}", author=owner),
    ]


def _routine_records() -> list[dict[str, Any]]:
    return [
        {
            "id": routine_id(number),
            "title": f"[EVAL] Routine {tissue} study",
            "description": f"Routine processing of {tissue} samples.",
            "owner": owner,
            "group": group,
            "samples": [f"{prefix}-{index:02d}" for index in range(1, 7)],
            "platform": platform,
            "created": f"2026-11-{1 + number:02d}",
            "tags": ["evaluation", "routine"],
        }
        for number, (group, owner, prefix, tissue, platform) in enumerate(ROUTINE_STUDIES, start=10)
    ]


def evaluation_files(*, sequences: bool = True) -> list[EvalFile]:
    """Every file of the evaluation, the demo lab's and the generated ones, in a fixed order.

    ``sequences=False`` leaves out the demo's FASTQ files, which hold no text to quote and take
    seconds to generate.
    """
    routine = [file for number, study in enumerate(ROUTINE_STUDIES, start=10) for file in _routine_files(number, study)]
    return _demo_files(sequences) + _generated_files() + routine


def evaluation_records() -> list[ExperimentRecord]:
    """The ELN records of the evaluation's experiments: the demo's (its LIMS export's too) and the generated ones."""
    mappings = [*demo.RECORDS, *demo.LIMS_EXPORT["experiments"], *EXTRA_RECORDS, *_routine_records()]
    return [record_from_mapping(mapping, source="labmesh evaluation") for mapping in mappings]
