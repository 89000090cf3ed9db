"""One port per outside system, each with its implementations.

Callers (steps, Dagster assets and sensors, the CLI) only see the ports, so a
lab can swap the local folder for S3 or the SQLite catalog for DataZone
without any caller changing.
"""
