"""The lab Kubernetes API over HTTP, for the official `kubernetes` client (see server.py)."""

from aiops_lab.kubeapi.server import LabApiServer, start_lab_api, write_kubeconfig

__all__ = ["LabApiServer", "start_lab_api", "write_kubeconfig"]
