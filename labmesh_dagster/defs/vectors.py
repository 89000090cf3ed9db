"""The ``content_vectors`` job: passages indexed by their words get their vectors, apart from ingestion.

Embedding is the one step of publishing whose cost is the model's, not the
files': tens of passages a second on two cores. A large delivery's passages
are therefore left to this job (`SqliteContentIndex.inline_vectors`), which
its sensor starts while the index wants vectors; keyword search and the
catalog have the files at once, search by meaning a little later. Each run
embeds a bounded number (`CATCH_UP_VECTORS`), so a stopped run loses little
and the next one goes on where it stopped.
"""

import dagster as dg

from labmesh_dagster.defs.resources import ContentIndexResource
from labmesh_dagster.steps.content import CATCH_UP_VECTORS

JOB_NAME = "content_vectors"


@dg.op(description="Embed passages the content index keeps without their vector (a bounded number per run).")
def embed_missing_vectors(context: dg.OpExecutionContext, content_index: ContentIndexResource) -> int:
    # Raises the embedder's error: a failed run is what tells the operator the model cannot run.
    embedded = content_index.get_index().embed_missing(limit=CATCH_UP_VECTORS)
    context.log.info(f"embedded {embedded} passages")
    context.add_output_metadata({"embedded": embedded})
    return embedded


@dg.job(
    name=JOB_NAME,
    description="Vectors for passages indexed by their words only, so search by meaning finds them.",
    tags={"dagster/concurrency_key": JOB_NAME},
)
def content_vectors() -> None:
    embed_missing_vectors()
