"""The MCP server: search, experiment lookup, lineage and ask for AI assistants, under the asker's access."""
