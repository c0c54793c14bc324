"""Each reliability test gets its own Temporal dev server, started as `aiops dev` starts it: a
restart must find its SQLite file, and the shipped worker's budget look-ups (every incident the
namespace ran in the last hour) must see only this test's incidents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.reliability.processes import DevServer


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[tuple[DevServer, Client]]:
    server = DevServer(tmp_path / "temporal")
    try:
        client = await server.start()
        yield server, client
    finally:
        server.stop()
