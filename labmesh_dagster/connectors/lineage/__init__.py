"""Where OpenLineage run events go: the local lineage log, and DataZone in the aws profile."""
