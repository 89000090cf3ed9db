"""The flow's steps as plain Python over the ports.

Each step is what one Dagster asset or sensor does, minus Dagster: the assets
and sensors in `labmesh_dagster.defs` only call these, so the flow can be read,
tested and reused (by the CLI, say) without an orchestrator.
"""
