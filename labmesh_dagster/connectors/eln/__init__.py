"""The ELN / LIMS port and its implementations."""

from labmesh_dagster.connectors.eln.base import ElnPoll, ElnSource

__all__ = ["ElnPoll", "ElnSource"]
