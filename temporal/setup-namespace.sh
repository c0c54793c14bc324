#!/usr/bin/env bash
# Creates the aiops namespace (if missing) and registers the search attributes incidents carry,
# on any Temporal reachable with the `temporal` CLI (self-hosted; for Temporal Cloud create the
# namespace in the Cloud UI and pass --api-key/--tls through TEMPORAL_* environment variables).
# Keep the list in step with aiops/temporal_setup.py.
set -euo pipefail
ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-aiops}"
TEMPORAL="${TEMPORAL_CLI:-temporal}"

"$TEMPORAL" operator namespace describe --address "$ADDRESS" -n "$NAMESPACE" >/dev/null 2>&1 \
  || "$TEMPORAL" operator namespace create --address "$ADDRESS" -n "$NAMESPACE" --retention 30d

for attribute in AiopsService AiopsNamespace AiopsSeverity AiopsFault AiopsStatus AiopsPlaybook; do
  "$TEMPORAL" operator search-attribute create --address "$ADDRESS" -n "$NAMESPACE" \
    --name "$attribute" --type Keyword 2>/dev/null || true
done
"$TEMPORAL" operator search-attribute list --address "$ADDRESS" -n "$NAMESPACE" | grep Aiops
