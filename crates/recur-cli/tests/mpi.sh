#!/usr/bin/env bash
# CI: data-parallel training over MPI (issue 17). Installs Open MPI and what the `mpi` crate's
# build needs from Debian's packages when they are missing, then runs the 2-rank tests of
# tests/mpi.rs on loopback (`mpirun --allow-run-as-root --oversubscribe -np 2 ...`: one model
# trained by 2 processes against 1; same bits twice; resume; signals; a dying rank; an error on
# one rank), then a 2-rank run across two network namespaces when the machine allows it. About a
# minute on 2 cores, most of it the build with the feature.
set -euo pipefail
cd "$(dirname "$0")/../../.."

have_mpi_build_deps() {
    command -v mpirun >/dev/null 2>&1 \
        && command -v mpicc >/dev/null 2>&1 \
        && ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1
}
if ! have_mpi_build_deps; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi-dev openmpi-bin libclang-dev >/dev/null
    fi
fi
# The MPI tests are a requirement, not an extra: a machine without them fails here.
have_mpi_build_deps || { echo "Open MPI (libopenmpi-dev, openmpi-bin) or libclang-dev missing"; exit 1; }

cargo test --release -p recur-cli --features mpi --test mpi

# Two "hosts" in network namespaces: the exchange crosses a network interface. Only where this
# machine lets us make namespaces (root with CAP_NET_ADMIN and iproute2).
if command -v ip >/dev/null 2>&1 && ip netns add "recur-probe-$$" 2>/dev/null; then
    ip netns del "recur-probe-$$"
    bash crates/recur-cli/tests/mpi_netns.sh target/release/recur
else
    echo "SKIP: the two-namespace run (cannot create network namespaces here)"
fi
