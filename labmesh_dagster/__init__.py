"""labmesh: a laboratory data mesh on Dagster."""

__version__ = "0.1.0"
