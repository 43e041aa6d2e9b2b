#!/usr/bin/env bash
# What request ids cost the load generator: server-tokio pinned to core 1 (--sink null),
# the load generator on core 0, runs alternately with ids (the default) and with --no-ids,
# order alternating, N pairs. Prints each run's req/s and the load generator's own CPU per
# request (user + system µs, from its rusage), each pair's with/without ratios and their
# medians. Needs release builds (cargo build --release).
#
#   scripts/ids-overhead.sh [pairs=6] [seconds=5] [loadgen flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-6}
secs=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
# shellcheck disable=SC1091 # sourced from this folder
. scripts/ab-lib.sh
start_null_server ids-overhead
# One run: "<req/s> <loadgen CPU µs per request>".
run() {
  python3 - "$addr" "$secs" "$@" <<'PY'
import json, resource, subprocess, sys
addr, secs, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
cmd = ["taskset", "-c", "0", "./target/release/loadgen", f"http://{addr}/ingest",
       "-c", "32", "-t", "1", "-d", f"{secs}s", "--json", "--no-progress", *extra]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(f'{r["rate"]:.0f} {cpu / max(r["completed"], 1) * 1e6:.3f}')
PY
}
extra=("$@")
run_a() { run --no-ids "${extra[@]}"; }
run_b() { run "${extra[@]}"; }
ab_pairs "$pairs" "no ids" "ids" "load generator"
