"""Plain-Python domain model: experiments, ids, zones and keys, manifests, errors.

Nothing in this package imports Dagster or boto3, so the same rules hold in
assets, sensors, the CLI and code that runs outside Dagster through Pipes.
"""
