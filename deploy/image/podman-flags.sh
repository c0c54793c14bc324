# Flags every podman build/run needs on machines without CAP_SYS_RESOURCE and with hybrid
# cgroups (such as the CI machines here): runc instead of crun, rlimits within the current ones.
PODMAN_FLAGS=(--runtime runc --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit "nproc=$(ulimit -Su):$(ulimit -Hu)")
