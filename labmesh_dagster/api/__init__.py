"""`labmesh api`: the HTTP service ELNs push events to (the discovery portal will live in the same app)."""
