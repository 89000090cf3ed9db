"""People, groups, API tokens, login safety and the audit log: who is asking, proven, and what they did.

Plain Python over SQLite files, or over PostgreSQL when ``LABMESH_DATABASE_URL``
is set (the ``postgres_*`` twins, which pass the same contract tests), with no
web framework, so the portal, `labmesh api` and the CLI share one
implementation; `stores` opens whichever the settings name:

- `users`: local accounts with Argon2id password hashes, and their groups;
- `tokens`: API tokens for scripts, kept as SHA-256 digests only;
- `throttle`: failed sign-ins per user and per client address, in a sliding window;
- `login`: the one sign-in step the portal calls, which applies the throttle and writes the audit log;
- `oidc`: an identity provider's ID token claims as a `Viewer`;
- `audit`: the append-only record of sign-ins, searches, page views, previews and downloads;
- `commands`: the `labmesh users`, `labmesh tokens` and `labmesh audit` commands;
- `stores`: all of them opened from the settings, on SQLite or on PostgreSQL
  (`postgres_database` holds the PostgreSQL migrations).

Who may see an experiment is decided by `labmesh_dagster.core.access`; this
package only says who the viewer is.
"""
