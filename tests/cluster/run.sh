#!/usr/bin/env bash
# The cluster matrix (issue 12): installs what it needs (setup.sh), then runs check.js for every
# cell and prints one summary line per cell. Exit status non-zero when any check of any cell failed.
#
#   tests/cluster/run.sh                  # all-Node cells: the checker's own proof
#   tests/cluster/run.sh --with-sockeye   # plus node,sockeye,node and sockeye,sockeye,sockeye
#   tests/cluster/run.sh --sockeye-only   # only the cells with sockeye nodes
#   CLUSTER_WITH_SOCKEYE=1 tests/cluster/run.sh   # same as --with-sockeye
#
# Cells: classic and sharded for each node mix, plus a JWT variant (classic) of each mix; with the
# all-Node cells also selftest.js (deliberately broken Node nodes must be caught).
# Sockeye cells run $SOCKEYE_CLUSTER_NODE (default target/release/examples/cluster-node; build it
# with `cargo build --release -p sockeye-server --example cluster-node`); a missing binary fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
with_node=1
with_sockeye=${CLUSTER_WITH_SOCKEYE:-0}
for arg in "$@"; do
  case $arg in
    --with-sockeye) with_sockeye=1 ;;
    --sockeye-only) with_sockeye=1 with_node=0 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

"$here/setup.sh"

cells=()
if ((with_node)); then
  cells+=("classic node,node,node" "sharded node,node,node" "classic node,node,node --jwt-secret")
fi
if ((with_sockeye)); then
  cells+=("classic node,sockeye,node" "sharded node,sockeye,node"
    "classic sockeye,sockeye,sockeye" "sharded sockeye,sockeye,sockeye"
    "classic node,sockeye,node --jwt-secret")
fi

# CLUSTER_MODES=classic (or sharded) keeps only the cells of that mode.
if [[ -n ${CLUSTER_MODES:-} ]]; then
  kept=()
  for cell in "${cells[@]}"; do
    [[ " $CLUSTER_MODES " == *" ${cell%% *} "* ]] && kept+=("$cell")
  done
  cells=("${kept[@]}")
fi

mkdir -p "$here/.logs"
summaries=()
status=0
start=$SECONDS
for cell in "${cells[@]}"; do
  read -r mode nodes flags <<<"$cell"
  out="$here/.logs/run-$mode-${nodes//,/-}${flags:+-jwt}.txt"
  printf '\n=== cluster check: MODE=%s NODES=%s %s\n' "$mode" "$nodes" "${flags:-}"
  cell_start=$SECONDS
  rc=0
  # shellcheck disable=SC2086 # flags is one optional word
  MODE=$mode NODES=$nodes node "$here/check.js" ${flags:-} 2>&1 | tee "$out" || rc=$?
  line=$(grep '^SUMMARY ' "$out" | tail -1 || true)
  [[ -n $line ]] || line="SUMMARY $mode $nodes${flags:+ jwt}: no summary (check.js exit $rc)"
  summaries+=("$line [$((SECONDS - cell_start)) s wall]")
  if ((rc != 0)); then status=1; fi
done

if ((with_node)); then
  # The checker's own proof that it can fail: broken copies of node-node.js must be caught.
  printf '\n=== cluster checker self-test (selftest.js: broken nodes must fail)\n'
  cell_start=$SECONDS
  rc=0
  node "$here/selftest.js" 2>&1 | tee "$here/.logs/run-selftest.txt" || rc=$?
  summaries+=("$(grep '^SUMMARY ' "$here/.logs/run-selftest.txt" | tail -1 || echo "SUMMARY selftest: no summary") [$((SECONDS - cell_start)) s wall]")
  if ((rc != 0)); then status=1; fi
fi

printf '\n=== cluster matrix (%d s)\n' "$((SECONDS - start))"
printf '%s\n' "${summaries[@]}"
exit $status
