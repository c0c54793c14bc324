# Flags every podman build/run needs on machines without CAP_SYS_RESOURCE and with hybrid
# cgroups (such as the CI machines here): runc instead of crun, and rlimits below the current
# hard limits (podman's defaults are above them, and raising needs the capability).
# shellcheck disable=SC2034 # used by the scripts that source this file
PODMAN_FLAGS=(--runtime runc --ulimit "nofile=$(( $(ulimit -Hn) < 16384 ? $(ulimit -Hn) : 16384 ))" --ulimit "nproc=$(( $(ulimit -Hu) < 8192 ? $(ulimit -Hu) : 8192 ))")
