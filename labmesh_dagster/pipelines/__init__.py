"""Code that runs outside the Dagster process, launched through Dagster Pipes."""
