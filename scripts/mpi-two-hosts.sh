#!/bin/bash
# Runs `mpirun -np 2 COMMAND…` with the two ranks on two "hosts": network namespaces joined by a veth pair
# (10.77.x.1 and 10.77.x.2), so Open MPI starts the second rank through its rsh agent and the ranks talk over its
# TCP transport, as on two machines, instead of shared memory. Needs root (ip netns). Used by
# DistributedCLITests; also by hand: scripts/mpi-two-hosts.sh .build/release/Benchmarks allreduce
set -euo pipefail
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS…]   (as root; runs it as 2 MPI ranks in two network namespaces)" >&2
    exit 2
fi
id=$$
subnet="10.77.$((id % 250)).0/24"
a="rlhf-a-$id" b="rlhf-b-$id"
ipa="10.77.$((id % 250)).1" ipb="10.77.$((id % 250)).2"
work=$(mktemp -d)
cleanup() {
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add "va$id" type veth peer name "vb$id"
ip link set "va$id" netns "$a"
ip link set "vb$id" netns "$b"
ip -n "$a" addr add "$ipa/24" dev "va$id"
ip -n "$b" addr add "$ipb/24" dev "vb$id"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "va$id" up
ip -n "$b" link set "vb$id" up
# Open MPI's rsh agent is called as "agent [options] HOST COMMAND…": run COMMAND in HOST's namespace.
cat >"$work/agent" <<AGENT
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in $ipa) ns=$a ;; $ipb) ns=$b ;; *) echo "unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
chmod +x "$work/agent"
printf '%s slots=1\n%s slots=1\n' "$ipa" "$ipb" >"$work/hosts"
flags=(--allow-run-as-root -x PATH)
for v in RLHF_NUM_THREADS RLHF_CACHE_DIR RLHF_CPU; do [ -n "${!v:-}" ] && flags+=(-x "$v"); done
ip netns exec "$a" mpirun "${flags[@]}" --hostfile "$work/hosts" -np 2 --map-by node \
    --mca plm_rsh_agent "$work/agent" --mca btl tcp,self --mca btl_tcp_if_include "$subnet" \
    --mca oob_tcp_if_include "$subnet" "$@"
