"""Dagster objects only, thin: each calls into `labmesh_dagster.steps`."""
