"""Temporal workflow classes only: deterministic, no I/O, no heavy top-level imports."""

from workflows.detection import DetectionLoopWorkflow
from workflows.incident import IncidentWorkflow

ALL_WORKFLOWS = (IncidentWorkflow, DetectionLoopWorkflow)

__all__ = ["ALL_WORKFLOWS", "DetectionLoopWorkflow", "IncidentWorkflow"]
