"""temporal/docker-compose.yml, checked offline (no registry here serves Temporal's images): it
runs on the images Temporal recommends for self-hosting, the server and the admin tools at one
version, and its setup jobs register what aiops needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from aiops.temporal_setup import SEARCH_ATTRIBUTES

TEMPORAL = Path(__file__).resolve().parents[2] / "temporal"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((TEMPORAL / "docker-compose.yml").read_text())
    return data


def test_no_deprecated_image_and_one_temporal_version() -> None:
    images = {name: svc["image"] for name, svc in compose()["services"].items()}
    assert not any("auto-setup" in image for image in images.values()), images
    versions = {
        image.split(":")[1]
        for image in images.values()
        if image.split(":")[0] in {"temporalio/server", "temporalio/admin-tools"}
    }
    assert len(versions) == 1, f"server and admin tools must be one version: {images}"
    assert images["temporal"].startswith("temporalio/server:")


def test_the_server_starts_only_after_its_schema_job_and_the_scripts_exist() -> None:
    services = compose()["services"]
    needs = services["temporal"]["depends_on"]["temporal-schema"]["condition"]
    assert needs == "service_completed_successfully"
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                script = TEMPORAL / source
                assert script.is_file(), f"{name} mounts missing {source}"
                checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
                assert checked.returncode == 0, checked.stderr


def test_the_namespace_job_registers_every_search_attribute_aiops_uses() -> None:
    script = (TEMPORAL / "setup-namespace.sh").read_text()
    listed = re.search(r"for attribute in ([A-Za-z ]+); do", script)
    assert listed is not None
    assert set(listed.group(1).split()) == set(SEARCH_ATTRIBUTES)
    job = compose()["services"]["temporal-namespace"]
    assert job["environment"]["TEMPORAL_NAMESPACE"] == "aiops"
