"""labmesh deployed: Dagster's instance on PostgreSQL and its processes (code server, webserver, daemon, portal).

`instance` renders the instance files (`labmesh dev`'s SQLite one and a
deployment's PostgreSQL one, from one source); `local` starts the production
shape on one machine (`labmesh deploy local`).
"""
