#!/usr/bin/env bash
# Copies the repository's playbooks/*.yaml and policies/default.yaml into config/ and rewrites
# config/kustomization.yaml, whose generators turn them into the ConfigMaps aiops-playbooks and
# aiops-policies. Kustomize reads no file outside this folder, hence the copies; run this after
# changing playbooks/ or policies/ (tests/deploy fails while the copies differ).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

shopt -s nullglob
playbooks=("$root"/playbooks/*.yaml)
if [ "${#playbooks[@]}" -eq 0 ] || [ ! -f "$root/policies/default.yaml" ]; then
  echo "sync-config: need $root/playbooks/*.yaml and $root/policies/default.yaml" >&2
  exit 1
fi

rm -rf "$here/config/playbooks" "$here/config/policies"
mkdir -p "$here/config/playbooks" "$here/config/policies"
cp "${playbooks[@]}" "$here/config/playbooks/"
cp "$root/policies/default.yaml" "$here/config/policies/"

{
  echo "# Written by ../sync-config.sh from the repository's playbooks/ and policies/; do not edit."
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "configMapGenerator:"
  echo "  - name: aiops-playbooks"
  echo "    files:"
  for path in "${playbooks[@]}"; do echo "      - playbooks/$(basename "$path")"; done
  echo "  - name: aiops-policies"
  echo "    files:"
  echo "      - policies/default.yaml"
} >"$here/config/kustomization.yaml"
echo "sync-config: ${#playbooks[@]} playbooks and policies/default.yaml copied into $here/config"
