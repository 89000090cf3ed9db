"""Lineage as OpenLineage sees it: run events for materializations, and the graph they describe.

Plain Python, no Dagster or boto3: the assets build events here and hand them
to whichever lineage port the profile picked (DataZone's `PostLineageEvent`,
a JSON-lines file), and the portal and the CLI rebuild the graph from the same
events, so what a lab sees locally is what its catalog receives in AWS.
"""
