"""Defaults that the settings state and the code beneath them falls back on when called without settings.

`Settings` reads each from its environment variable with these as defaults;
an extractor run by `labmesh extract` or a boto3 client built in a test uses
the same values, so a default is written once.
"""

EXTRACT_SECONDS = 600.0
"""LABMESH_EXTRACT_SECONDS: the time one file's extraction may take before it stops, marked partial."""

AWS_MAX_ATTEMPTS = 8
"""LABMESH_AWS_MAX_ATTEMPTS: attempts per AWS call, with backoff on throttling and 5xx between them."""

DATAZONE_CALLS_PER_SECOND = 10.0
"""LABMESH_DATAZONE_MAX_CALLS_PER_SECOND: DataZone allows about 20 a second per account; labmesh keeps under."""

ELN_TIMEOUT_SECONDS = 30.0
"""LABMESH_ELN_TIMEOUT_SECONDS: how long one request to eLabFTW or Benchling may take before it is retried."""

KENDRA_CALLS_PER_SECOND = 5.0
"""LABMESH_KENDRA_MAX_CALLS_PER_SECOND: Kendra's document APIs allow fewer calls than DataZone's."""

BEDROCK_CALLS_PER_SECOND = 5.0
"""LABMESH_BEDROCK_KB_MAX_CALLS_PER_SECOND: the knowledge base document and Retrieve APIs have small quotas."""
