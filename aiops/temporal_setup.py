"""What a Temporal namespace needs for aiops: the custom search attributes incidents carry, so
they can be found in the Temporal UI (e.g. `AiopsService = "cartservice"`).

temporal/setup-namespace.sh registers the same list on a self-hosted cluster; keep them in step.
"""

from __future__ import annotations

SEARCH_ATTRIBUTES: dict[str, str] = {
    "AiopsService": "Keyword",
    "AiopsNamespace": "Keyword",
    "AiopsSeverity": "Keyword",
    "AiopsFault": "Keyword",
    "AiopsStatus": "Keyword",
    "AiopsPlaybook": "Keyword",
}
