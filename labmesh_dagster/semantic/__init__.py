"""Search by meaning, offline: sentence embeddings, passages cut from files' content, vectors and rank fusion.

Plain domain code (no Dagster): the local content index and the content step use it.
Importing it loads no model; `embedding.default_embedder` loads it on first use.
"""
