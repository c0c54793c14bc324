"""Temporal workflow classes only: deterministic, no I/O, no heavy top-level imports."""

from workflows.incident import IncidentWorkflow

ALL_WORKFLOWS = (IncidentWorkflow,)

__all__ = ["ALL_WORKFLOWS", "IncidentWorkflow"]
